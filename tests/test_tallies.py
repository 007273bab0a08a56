"""The lock-free tallies expose exactly what prometheus_client's own metrics would."""

from __future__ import annotations

import random

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from opstatus.metrics import LATENCY_BUCKETS
from opstatus.tallies import CounterTally, HistogramTally


def test_same_exposition_as_prometheus_client() -> None:
    ours, theirs = CollectorRegistry(), CollectorRegistry()
    counter = CounterTally("c", "Counted.", ["route", "status"])
    histogram = HistogramTally("h", "Timed.", ["route"], LATENCY_BUCKETS)
    ours.register(counter)
    ours.register(histogram)
    their_counter = Counter("c", "Counted.", ["route", "status"], registry=theirs)
    their_histogram = Histogram("h", "Timed.", ["route"], buckets=LATENCY_BUCKETS, registry=theirs)
    rng = random.Random(7)
    values = [*LATENCY_BUCKETS, 0.0, 11.0]  # on every bound (le is inclusive), and past all
    values += [rng.choice([0.0001, 0.003, 0.2, 4.0]) for _ in range(200)]
    for i, seconds in enumerate(values):
        route, status = f"r{i % 3}", str(200 + i % 2)
        counter.inc((route, status))
        their_counter.labels(route, status).inc()
        histogram.observe((route,), seconds)
        their_histogram.labels(route).observe(seconds)
    assert _samples(ours) == _samples(theirs)
    assert counter.value(("r0", "200")) == their_counter.labels("r0", "200")._value.get()


def _samples(registry: CollectorRegistry) -> list[str]:
    """The exposition's sample lines, without the _created timestamps only the library has."""
    lines = generate_latest(registry).decode().splitlines()
    return sorted(line for line in lines if "_created" not in line and not line.startswith("#"))
