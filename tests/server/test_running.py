"""Which protocol the server runs (server/running.py, server/uvicorn_check.py): the fast lane
where uvicorn has what it needs, else the timed protocol alone with one warning, and no
server at all on a uvicorn without what the timers need."""

from __future__ import annotations

import gc
import logging
from pathlib import Path

import pytest

from opstatus.server import build_app, uvicorn_check
from opstatus.server.fast_lane import FastLaneProtocol
from opstatus.server.protocol import TimedHttpToolsProtocol
from opstatus.server.running import (
    COLLECTOR_THRESHOLDS,
    CannotServe,
    build,
    protocol_for,
    settle_collector,
)
from opstatus.settings import Settings
from opstatus.stores import MemoryStore


def settings(home: Path, **extra: object) -> Settings:
    return Settings(home=home, maintenance_interval=0, **extra)  # type: ignore[arg-type]


def test_the_installed_uvicorn_is_supported_whole() -> None:
    assert uvicorn_check.missing_for_protocol() == []
    assert uvicorn_check.fast_lane_unavailable() is None
    low, high = uvicorn_check.SUPPORTED
    assert low <= uvicorn_check.version()[:2] < high


def test_the_pin_in_pyproject_is_the_supported_range() -> None:
    pyproject = Path(__file__).resolve().parents[2] / "pyproject.toml"
    assert f'"uvicorn{uvicorn_check.pin()}"' in pyproject.read_text(encoding="utf-8")


def test_the_fast_lane_runs_where_it_may(tmp_path: Path) -> None:
    app = build_app(settings(tmp_path), store=MemoryStore())
    protocol = protocol_for(settings(tmp_path), app, False)
    assert issubclass(protocol, FastLaneProtocol)
    assert protocol.lane.reads is app.fast_reads


def test_without_fast_reads_or_with_the_access_log_the_app_answers(tmp_path: Path) -> None:
    off = settings(tmp_path, fast_reads=False)
    app = build_app(off, store=MemoryStore())
    assert not issubclass(protocol_for(off, app, False), FastLaneProtocol)
    on = settings(tmp_path)
    app = build_app(on, store=MemoryStore())
    logged = protocol_for(on, app, True)
    assert issubclass(logged, TimedHttpToolsProtocol)
    assert not issubclass(logged, FastLaneProtocol)


def test_a_uvicorn_outside_the_range_runs_without_the_lane_and_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(uvicorn_check, "version", lambda: (0, 44, 0))
    reason = uvicorn_check.fast_lane_unavailable()
    assert reason is not None and "0.44.0 is outside the range" in reason
    on = settings(tmp_path)
    app = build_app(on, store=MemoryStore())
    with caplog.at_level(logging.WARNING, logger="opstatus.server"):
        protocol = protocol_for(on, app, False)
    assert issubclass(protocol, TimedHttpToolsProtocol)
    assert not issubclass(protocol, FastLaneProtocol)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "the protocol lane is off" in warnings[0].getMessage()


def test_a_uvicorn_whose_hook_moved_runs_without_the_lane(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    monkeypatch.delattr(HttpToolsProtocol, "_start_asgi_task")
    reason = uvicorn_check.fast_lane_unavailable()
    assert reason is not None and "HttpToolsProtocol._start_asgi_task" in reason


def test_a_uvicorn_whose_protocol_lost_a_field_the_lane_reads_runs_without_the_lane(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import inspect

    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    source = inspect.getsource(HttpToolsProtocol).replace("self.pipeline", "self.queue")
    monkeypatch.setattr(uvicorn_check.inspect, "getsource", lambda obj: source)
    reason = uvicorn_check.fast_lane_unavailable()
    assert reason is not None and "HttpToolsProtocol.pipeline" in reason


def test_a_uvicorn_without_what_the_timers_need_does_not_serve(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    monkeypatch.delattr(HttpToolsProtocol, "on_response_complete")
    with pytest.raises(CannotServe, match="on_response_complete"):
        build(settings(tmp_path))


def test_serving_freezes_what_start_up_built_and_collects_young_objects_less_often() -> None:
    before = gc.get_threshold()
    try:
        settle_collector()
        assert gc.get_threshold() == COLLECTOR_THRESHOLDS
        assert gc.get_freeze_count() > 1000
        assert COLLECTOR_THRESHOLDS[0] > before[0]
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
