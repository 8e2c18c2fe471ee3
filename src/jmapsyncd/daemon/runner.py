"""The daemon: scheduled pulls, pushes on file events, one worker, backoff, clean shutdown.

Promise: :meth:`Daemon.run` syncs once, tells systemd it is ready, then keeps the account and the
vdir in step until SIGTERM/SIGINT. Every pass (scheduled, or after local edits) runs on the one
worker, so a file event never races a pull. A failing server is retried with exponential backoff
and jitter (honouring ``Retry-After``); local edits stay pending meanwhile. Refused credentials
stop the daemon at once with exit status 3 rather than hammering the server.
"""

from __future__ import annotations

import logging
import random
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from apscheduler.schedulers.background import BackgroundScheduler

from jmapsyncd.daemon.notify import Notifier
from jmapsyncd.daemon.watcher import VdirWatcher
from jmapsyncd.daemon.worker import Worker
from jmapsyncd.errors import JMAPAuthError, JMAPError, JmapsyncdError, JMAPTransportError
from jmapsyncd.sync.engine import SyncEngine, SyncReport

log = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_AUTH = 3


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff with full jitter between ``base`` and ``cap`` seconds."""

    base: float = 5.0
    cap: float = 900.0

    def delay(self, failures: int, retry_after: float | None = None) -> float:
        ceiling = min(self.cap, self.base * 2 ** max(0, failures - 1))
        delay = random.uniform(ceiling / 2, ceiling)  # jitter, not cryptography
        if retry_after is not None:
            delay = max(delay, min(retry_after, self.cap))
        return delay


class Daemon:
    """Long-running sync of one account; ``make_engine`` runs on the worker thread."""

    def __init__(
        self,
        make_engine: Callable[[], SyncEngine],
        vdir_root: Path,
        *,
        pull_interval: float,
        watch: bool = True,
        notifier: Notifier | None = None,
        backoff: Backoff | None = None,
        debounce: float = 0.5,
    ) -> None:
        self._make_engine = make_engine
        self._engine: SyncEngine | None = None
        self.vdir_root = vdir_root
        self.pull_interval = pull_interval
        self.watch = watch
        self.notifier = notifier or Notifier()
        self.backoff = backoff or Backoff()
        self.debounce = debounce
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._failures = 0
        self._retry_at = 0.0
        self._retry_timer: threading.Timer | None = None
        self.exit_code = EXIT_OK
        self.last_report: SyncReport | None = None
        interval = self.notifier.watchdog_interval
        self._worker = Worker(on_idle=self._ping, idle_interval=interval or 30.0)
        self._scheduler = BackgroundScheduler(timezone="UTC")
        self._watcher: VdirWatcher | None = None

    # -- public ----------------------------------------------------------------------------------

    def run(self, *, install_signals: bool = True) -> int:
        """Run until stopped; returns the process exit status."""
        if install_signals:
            signal.signal(signal.SIGTERM, self._on_signal)
            signal.signal(signal.SIGINT, self._on_signal)
        self._worker.start()
        self._worker.submit("sync", self._pass)
        self._scheduler.add_job(self._scheduled, "interval", seconds=self.pull_interval, id="pull")
        self._scheduler.start()
        if self.watch:
            self._watcher = VdirWatcher(
                self.vdir_root, self._local_change, debounce=self.debounce, ignore=self._is_ours
            )
            self._watcher.start()
        log.info(
            "jmapsyncd running: pull every %ss, watching %s",
            self.pull_interval,
            self.vdir_root if self.watch else "nothing",
        )
        self._stop.wait()
        self._shutdown()
        return self.exit_code

    def stop(self) -> None:
        self._stop.set()

    def wait_ready(self, timeout: float | None = None) -> bool:
        """True once the first pass has finished (for tests)."""
        return self._ready.wait(timeout)

    # -- jobs ------------------------------------------------------------------------------------

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        log.info("received %s, stopping", signal.Signals(signum).name)
        self._stop.set()
        if self._engine is not None:
            self._engine.stop_requested.set()

    def _scheduled(self) -> None:
        if time.monotonic() < self._retry_at:
            return  # backing off: the retry timer will run the pass
        self._worker.submit("sync", self._pass)

    def _local_change(self, paths: set[Path]) -> None:
        log.debug("local change in %d file(s)", len(paths))
        if time.monotonic() < self._retry_at:
            return  # the server is failing; the edits stay pending until the retry
        self._worker.submit("sync", self._pass)

    def _is_ours(self, path: Path) -> bool:
        engine = self._engine
        return engine is not None and engine.is_own_write(path)

    def _ping(self) -> None:
        if self.notifier.watchdog_interval is not None:
            self.notifier.watchdog()

    def _pass(self) -> None:
        if self._stop.is_set():
            return
        try:
            if self._engine is None:
                self._engine = self._make_engine()
                self._engine.progress = lambda _done, _total: self._ping()
            report = self._engine.sync()
        except JMAPAuthError as exc:
            log.error(
                "the server refused our credentials (%s); stopping: fix the "
                "configuration and start again",
                exc.reason,
            )
            self.notifier.status("stopped: authentication failed")
            self.exit_code = EXIT_AUTH
            self._stop.set()
            self._ready.set()
            return
        except JMAPTransportError as exc:
            self._schedule_retry(exc.retry_after, str(exc))
            self._ready.set()
            return
        except (JMAPError, JmapsyncdError) as exc:
            self._schedule_retry(None, str(exc))
            self._ready.set()
            return
        self._failures = 0
        self._retry_at = 0.0
        self.last_report = report
        if report.changed or report.conflicts:
            log.info(
                "synced: %d down, %d up, %d deleted here, %d deleted on the server, %d conflict(s)",
                report.downloaded,
                report.uploaded,
                report.deleted_local,
                report.deleted_remote,
                report.conflicts,
            )
        if not self._ready.is_set():
            self._ready.set()
            self.notifier.ready(f"synced {report.changed} item(s)")
        self.notifier.status(
            f"in sync; {len(report.errors)} item(s) in error" if report.errors else "in sync"
        )

    def _schedule_retry(self, retry_after: float | None, reason: str) -> None:
        self._failures += 1
        delay = self.backoff.delay(self._failures, retry_after)
        self._retry_at = time.monotonic() + delay
        log.warning(
            "sync failed (%s); retrying in %.0fs (attempt %d)", reason, delay, self._failures
        )
        self.notifier.status(f"server trouble; retrying in {delay:.0f}s")
        if self._retry_timer is not None:
            self._retry_timer.cancel()
        self._retry_timer = threading.Timer(delay, self._retry)
        self._retry_timer.daemon = True
        self._retry_timer.start()

    def _retry(self) -> None:
        self._retry_at = 0.0
        self._worker.submit("sync", self._pass)

    def _close_engine(self) -> None:
        # Runs on the worker thread: SQLite connections belong to the thread that opened them.
        if self._engine is not None:
            self._engine.close()

    # -- shutdown --------------------------------------------------------------------------------

    def _shutdown(self) -> None:
        self.notifier.stopping()
        if self._engine is not None:
            self._engine.stop_requested.set()
        if self._retry_timer is not None:
            self._retry_timer.cancel()
        self._scheduler.shutdown(wait=False)
        if self._watcher is not None:
            self._watcher.stop()
        # The pass in flight finishes its current item (or rolls it back) and stops.
        if not self._worker.stop(timeout=55, final=self._close_engine):
            log.error("the sync in flight did not stop in time")
        log.info("jmapsyncd stopped")
