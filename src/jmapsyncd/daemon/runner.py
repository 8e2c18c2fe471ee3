"""The daemon: scheduled pulls, pushes on file events, server push, one worker, clean shutdown.

Promise: :meth:`Daemon.run` syncs once, tells systemd it is ready, then keeps the account and the
vdir in step until SIGTERM/SIGINT. Every pass (scheduled, after local edits, or after the server
announced a change over its EventSource, RFC 8620 §7.3) runs on the one worker, so a file event
never races a pull. While server push works the scheduled pull is only a safety net
(``push_pull_interval``, at least 30 minutes); without push, or while the stream keeps failing,
the daemon polls every ``pull_interval``. A failing server is retried with exponential backoff
and jitter (honouring ``Retry-After``); local edits stay pending meanwhile. Refused credentials
stop the daemon at once with exit status 3 rather than hammering the server.

The daemon keeps a small JSON file beside the state database (:func:`status_path`, written
atomically) saying whether push is active and when the last push event arrived; ``jmapsyncd
status`` reads it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

from apscheduler.schedulers.background import BackgroundScheduler

from jmapsyncd.daemon.backoff import Backoff
from jmapsyncd.daemon.notify import Notifier
from jmapsyncd.daemon.push import PushListener, PushState, PushStatus
from jmapsyncd.daemon.watcher import VdirWatcher
from jmapsyncd.daemon.worker import Worker
from jmapsyncd.errors import (
    ConfigError,
    JMAPAuthError,
    JMAPError,
    JmapsyncdError,
    JMAPTransportError,
)
from jmapsyncd.sync.engine import SyncEngine, SyncReport

log = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_CONFIG = 2
EXIT_AUTH = 3

#: The scheduled pull while server push works: a safety net, not the way changes arrive.
PUSH_PULL_INTERVAL = 1800.0

#: ``make_push(session, on_change, on_status)``: a listener for the session, or None (no push).
MakePush = Callable[[Any, Callable[[], None], Callable[[PushStatus], None]], PushListener | None]


def status_path(state_db: Path) -> Path:
    """The daemon's status file: ``<state_db>.status.json``."""
    return state_db.with_name(state_db.name + ".status.json")


def write_json_atomically(path: Path, data: dict[str, Any]) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder and a rename."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=2)
            handle.write("\n")
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


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
        make_push: MakePush | None = None,
        push_pull_interval: float | None = None,
        status_file: Path | None = None,
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
        self._make_push = make_push
        self.push_pull_interval = (
            push_pull_interval
            if push_pull_interval is not None
            else max(pull_interval, PUSH_PULL_INTERVAL)
        )
        self.status_file = status_file
        self._push: PushListener | None = None
        self._push_tried = False
        self._push_status: PushStatus | None = None
        self._push_lock = threading.Lock()
        self._status_lock = threading.Lock()
        self._current_interval = float(pull_interval)
        #: passes asked for by server push (after debouncing), for tests and the status file
        self.push_requests = 0

    # -- public ----------------------------------------------------------------------------------

    def run(self, *, install_signals: bool = True) -> int:
        """Run until stopped; returns the process exit status."""
        if install_signals:
            signal.signal(signal.SIGTERM, self._on_signal)
            signal.signal(signal.SIGINT, self._on_signal)
        self._worker.start()
        self._scheduler.add_job(self._scheduled, "interval", seconds=self.pull_interval, id="pull")
        self._scheduler.start()
        self._worker.submit("sync", self._pass)
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

    @property
    def push_status(self) -> PushStatus | None:
        """What server push is doing; None before it was tried or when it is off."""
        return self._push_status

    @property
    def current_pull_interval(self) -> float:
        return self._current_interval

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
        except ConfigError as exc:
            # A password_command that fails will not heal by retrying.
            log.error("configuration error: %s; stopping", exc)
            self.notifier.status("stopped: configuration error")
            self.exit_code = EXIT_CONFIG
            self._stop.set()
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
        if not self._push_tried:
            self._push_tried = True
            self._start_push()
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

    # -- server push -----------------------------------------------------------------------------

    def _start_push(self) -> None:
        # On the worker thread, after the first good pass: the session is known by then.
        if self._make_push is None or self._engine is None:
            log.info("push is off; polling every %gs", self.pull_interval)
            self._write_status()
            return
        try:
            session = self._engine.client.get_session()
            listener = self._make_push(session, self._remote_change, self._on_push_status)
        except Exception as exc:  # push is an optimisation: polling still works
            log.warning("push: cannot start (%s); polling every %gs", exc, self.pull_interval)
            self._write_status()
            return
        if listener is None:
            log.info("server offers no push; polling every %gs", self.pull_interval)
            self._write_status()
            return
        self._push = listener
        if self._stop.is_set():
            return
        listener.start()

    def _remote_change(self) -> None:
        # Called once per burst of server changes (the listener debounces).
        self.push_requests += 1
        self._write_status()
        if self._stop.is_set() or time.monotonic() < self._retry_at:
            return  # backing off: the retry timer will run the pass
        self._worker.submit("sync", self._pass)

    def _on_push_status(self, status: PushStatus) -> None:
        with self._push_lock:
            previous = self._push_status
            self._push_status = status
            was_covered = previous is not None and previous.covers_changes
            if status.covers_changes and not was_covered:
                log.info(
                    "push active via EventSource; scheduled pull every %gs as a safety net",
                    self.push_pull_interval,
                )
                self._set_pull_interval(self.push_pull_interval)
            elif not status.covers_changes and not self._stop.is_set():
                if status.state is PushState.UNAVAILABLE and (
                    previous is None or previous.state is not PushState.UNAVAILABLE
                ):
                    log.warning(
                        "%s (%s); polling every %gs",
                        "push is off"
                        if "credentials" in status.detail
                        else "server offers no push",
                        status.detail,
                        self.pull_interval,
                    )
                elif was_covered:
                    log.warning(
                        "push is not working (%s); polling every %gs",
                        status.detail or status.state.value,
                        self.pull_interval,
                    )
                self._set_pull_interval(self.pull_interval)
        if previous is None or previous.state is not status.state:
            self._write_status()

    def _set_pull_interval(self, seconds: float) -> None:
        if seconds == self._current_interval or self._stop.is_set():
            return
        self._current_interval = seconds
        try:
            self._scheduler.reschedule_job("pull", trigger="interval", seconds=seconds)
        except Exception as exc:  # the scheduler may be shutting down
            log.debug("could not change the pull interval: %s", exc)

    def status_data(self) -> dict[str, Any]:
        """What the status file holds."""
        status = self._push_status
        if self._make_push is None:
            mode = "off"
        elif status is not None and status.covers_changes:
            mode = "push"
        else:
            mode = "polling"
        push: dict[str, Any] = {"mode": mode, "requests": self.push_requests}
        if status is not None:
            push.update(status.to_json())
        return {
            "pid": os.getpid(),
            "running": not self._stop.is_set(),
            "updated": datetime.now(UTC).isoformat(timespec="seconds"),
            "pull_interval": self._current_interval,
            "push": push,
        }

    def _write_status(self) -> None:
        if self.status_file is None:
            return
        with self._status_lock:
            try:
                write_json_atomically(self.status_file, self.status_data())
            except OSError as exc:
                log.debug("could not write %s: %s", self.status_file, exc)

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
        if self._push is not None and not self._push.stop(timeout=2.0):
            log.warning("the push stream did not close in time")
        if self._watcher is not None:
            self._watcher.stop()
        # The pass in flight finishes its current item (or rolls it back) and stops.
        if not self._worker.stop(timeout=55, final=self._close_engine):
            log.error("the sync in flight did not stop in time")
        self._write_status()
        log.info("jmapsyncd stopped")
