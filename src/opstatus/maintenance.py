"""The server's own background sweeps: no cron, no second process.

While the server runs, :func:`run_maintenance` calls :meth:`OperationService.maintain` every
``interval`` seconds: fail the operations whose producers were lost, remove the operations
whose retention is over (leaving tombstones), and forget old tombstones. Each step handles a
small batch, so that a backlog (after a long downtime, say) is worked off in short
transactions between requests rather than in one long one. Several server processes sharing
a store may all sweep: every step re-checks its rule inside the store's transaction.
"""

from __future__ import annotations

import asyncio
import logging

from .service import OperationService

log = logging.getLogger("opstatus.maintenance")

#: At most this many batches per tick; the rest waits for the next tick.
MAX_BATCHES_PER_TICK = 20


async def maintain_once(service: OperationService, batch: int) -> None:
    """One tick: batches until the sweeps come back short (or the tick's budget is spent)."""
    for _ in range(MAX_BATCHES_PER_TICK):
        report = await service.maintain(batch)
        if report.lapsed or report.expired or report.forgotten:
            log.info(
                "maintenance: %d lost producers failed, %d expired operations removed, "
                "%d tombstones forgotten",
                report.lapsed,
                report.expired,
                report.forgotten,
            )
        if not report.full(batch):
            return
        await asyncio.sleep(0)  # let requests in between batches


async def run_maintenance(service: OperationService, interval: float, batch: int) -> None:
    """Sweep now and then every ``interval`` seconds, until cancelled. Failures are logged
    and retried at the next tick: a store that is down now may be back then."""
    while True:
        try:
            await maintain_once(service, batch)
        except Exception:
            log.exception("maintenance failed; retrying in %g s", interval)
        await asyncio.sleep(interval)
