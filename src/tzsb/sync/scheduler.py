"""The schedule inside ``tzsb serve``: every few seconds, a pass of each link that is due.

Every server process runs a scheduler thread; a link's lease in the database (``SyncRunner``)
lets exactly one of them — on one host or several sharing a PostgreSQL database — run a link at a
time, and another takes the link over when the holder dies and its lease runs out.
"""

from __future__ import annotations

import logging
import threading

from tzsb.sync.runner import SyncRunner

logger = logging.getLogger(__name__)


class SyncScheduler:
    def __init__(self, runner: SyncRunner, tick_seconds: float) -> None:
        self.runner = runner
        self.tick_seconds = tick_seconds
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="tzsb-sync-schedule", daemon=True)

    def start(self) -> None:
        self._thread.start()

    @property
    def alive(self) -> bool:
        """Whether the schedule's thread runs (readiness asks)."""
        return self._thread.is_alive()

    def stop(self, timeout: float = 10.0) -> None:
        """Ask the thread to stop after its current batch's pass; wait for it at most ``timeout``."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _loop(self) -> None:
        while not self._stop.wait(self.tick_seconds):
            try:
                for report in self.runner.run_due():
                    if report.state == "busy":
                        continue
                    logger.info(
                        "sync link %s (%s): %s, %d record(s), %d parked%s",
                        report.link,
                        report.direction,
                        report.state,
                        report.records,
                        report.parked,
                        f": {report.error}" if report.error else "",
                    )
            except Exception:
                logger.exception("the sync schedule's pass failed; it runs again in %.0f s", self.tick_seconds)
