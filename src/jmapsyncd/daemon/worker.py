"""One worker thread that runs every pull and push, one at a time.

A file event can therefore never race a pull: both are jobs on the same queue. Jobs of the same
kind coalesce (a burst of file events becomes one push), and the worker pings the systemd watchdog
while it is alive, so a hung sync is noticed by the service manager.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

log = logging.getLogger(__name__)


@dataclass
class _Pending:
    kinds: dict[str, Callable[[], None]] = field(default_factory=dict)  # insertion-ordered


class Worker:
    """Runs submitted jobs on one thread; a job submitted while one of its kind waits is merged."""

    def __init__(
        self,
        *,
        on_idle: Callable[[], None] | None = None,
        idle_interval: float | None = None,
        name: str = "jmapsyncd-worker",
    ) -> None:
        self._cond = threading.Condition()
        self._pending = _Pending()
        self._stopping = False
        self._busy = False
        self._final: Callable[[], None] | None = None
        self._on_idle = on_idle
        self._idle_interval = idle_interval
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def submit(self, kind: str, job: Callable[[], None]) -> bool:
        """Queue ``job`` unless one of ``kind`` already waits; True if it was queued."""
        with self._cond:
            if self._stopping:
                return False
            if kind in self._pending.kinds:
                return False
            self._pending.kinds[kind] = job
            self._cond.notify()
            return True

    def stop(self, timeout: float | None = None, final: Callable[[], None] | None = None) -> bool:
        """Finish the job in flight, drop the queue, run ``final`` on the worker thread, stop.

        Returns True if the thread ended within ``timeout``.
        """
        with self._cond:
            self._final = final
            self._stopping = True
            self._pending.kinds.clear()
            self._cond.notify()
        if self._thread.is_alive():
            self._thread.join(timeout)
        return not self._thread.is_alive()

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Block until nothing is queued or running (for tests and ``sync`` one-shots)."""
        with self._cond:
            return self._cond.wait_for(
                lambda: not self._pending.kinds and not self._busy, timeout=timeout
            )

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._pending.kinds and not self._stopping:
                    self._cond.wait(timeout=self._idle_interval)
                    if not self._pending.kinds and not self._stopping and self._on_idle:
                        self._on_idle()
                if self._stopping:
                    final = self._final
                    self._cond.notify_all()
                    break
                kind = next(iter(self._pending.kinds))
                job = self._pending.kinds.pop(kind)
                self._busy = True
            try:
                job()
            except Exception:
                # One failed pass must not end the daemon; the job logs its own details.
                log.exception("%s failed", kind)
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()
            if self._on_idle:
                self._on_idle()
        if final is not None:
            try:
                final()
            except Exception:
                log.exception("closing down failed")
