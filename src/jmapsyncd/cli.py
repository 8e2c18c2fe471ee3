"""The ``jmapsyncd`` command: thin glue from the command line to the engine and the daemon.

Exit statuses (also in the README): 0 ok; 1 unexpected failure or another jmapsyncd holds the
state database; 2 bad configuration; 3 credentials refused; 4 server unreachable or failing;
5 the server answered something that is not usable JMAP. Every failure prints one line that says
why; no traceback unless ``-v`` is given twice.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import logging
import os
import sys
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from jmapsyncd import __version__
from jmapsyncd.config import Settings, load_config
from jmapsyncd.errors import (
    ConfigError,
    JMAPAuthError,
    JMAPError,
    JmapsyncdError,
    JMAPTransportError,
    StoreError,
)

log = logging.getLogger("jmapsyncd")

EXIT_OK, EXIT_FAILURE, EXIT_CONFIG, EXIT_AUTH, EXIT_UNREACHABLE, EXIT_PROTOCOL = 0, 1, 2, 3, 4, 5


class AlreadyRunning(JmapsyncdError):
    """Another jmapsyncd process holds the state database."""


@contextlib.contextmanager
def single_instance(state_db: Path) -> Iterator[None]:
    """Hold an exclusive lock beside the state database: one writer, ever."""
    state_db.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    lock_path = state_db.with_name(state_db.name + ".lock")
    with open(lock_path, "a+b") as handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise AlreadyRunning(
                f"another jmapsyncd is using {state_db} (lock {lock_path})"
            ) from None
        yield


def _client(settings: Settings, password: str | None = None) -> Any:
    from jmapsyncd.jmap import JMAPClient

    client = JMAPClient(
        settings.url,
        username=settings.username,
        password=password if password is not None else settings.resolve_password(),
        timeout=settings.timeout,
    )
    if not settings.verify_tls:
        client.set_verify_tls(False)
    return client


def _engine(settings: Settings, progress: Any = None, password: str | None = None) -> Any:
    """Client, vdir and state database wired into a :class:`SyncEngine` that closes them."""
    from jmapsyncd.state import StateDB
    from jmapsyncd.sync.engine import SyncEngine
    from jmapsyncd.vdir import Vdir

    client = _client(settings, password)
    try:
        vdir = Vdir(settings.vdir)
        vdir.cleanup_temp_files()  # left by a crash; no write is in flight yet
        db = StateDB(settings.state_db)
    except BaseException:
        client.close()
        raise
    engine = SyncEngine(
        client,
        vdir,
        db,
        policy=settings.conflict_resolution,
        include=settings.include,
        exclude=settings.exclude,
        progress=progress,
    )
    engine.on_close(client.close)
    engine.on_close(db.close)
    return engine


class _Progress:
    """A one-line progress bar on a terminal; silent elsewhere."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream
        self.active = stream.isatty()
        self._last = 0.0

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        if not self.active or (now - self._last < 0.1 and done < total):
            return
        self._last = now
        width = 30
        filled = width * done // max(total, 1)
        self.stream.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total} items")
        if done >= total:
            self.stream.write("\n")
        self.stream.flush()


# -- commands ------------------------------------------------------------------------------------


def cmd_sync(settings: Settings, args: argparse.Namespace) -> int:
    with single_instance(settings.state_db):
        engine = _engine(settings, progress=_Progress(sys.stderr))
        try:
            report = engine.sync()
        finally:
            engine.close()
    how = " (full listing)" if report.full else ""
    print(
        f"synced{how}: {report.downloaded} downloaded, {report.uploaded} uploaded, "
        f"{report.deleted_local} deleted locally, {report.deleted_remote} deleted on the server, "
        f"{report.conflicts} conflict(s)"
    )
    for error in report.errors:
        print(f"  not synced: {error}", file=sys.stderr)
    for warning in report.warnings:
        print(f"  partly synced: {warning}", file=sys.stderr)
    return EXIT_OK


def cmd_run(settings: Settings, args: argparse.Namespace) -> int:
    from functools import partial

    from jmapsyncd.daemon.push import listener_for
    from jmapsyncd.daemon.runner import Daemon, status_path

    # A password_command that fails is a configuration error now, not a retry loop later.
    password = settings.resolve_password()
    with single_instance(settings.state_db):
        daemon = Daemon(
            lambda: _engine(settings, password=password),
            settings.vdir,
            pull_interval=settings.pull_interval,
            make_push=partial(listener_for, settings) if settings.push == "auto" else None,
            status_file=status_path(settings.state_db),
        )
        return daemon.run()


def _push_data(settings: Settings) -> dict[str, Any]:
    """The daemon's push status from its status file, or that no daemon is running."""
    from jmapsyncd.daemon.runner import status_path

    try:
        data = json.loads(status_path(settings.state_db).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {"running": False, "mode": None}
    push = data.get("push") if isinstance(data, dict) else None
    if not isinstance(push, dict):
        return {"running": False, "mode": None}
    running = bool(data.get("running")) and _alive(data.get("pid"))
    return {**push, "running": running, "pull_interval": data.get("pull_interval")}


def _alive(pid: Any) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _push_line(push: dict[str, Any]) -> str:
    if not push.get("running"):
        return "daemon: not running"
    interval = push.get("pull_interval")
    every = f"{interval:g}s" if isinstance(interval, int | float) else "?"
    last = push.get("last_event") or "none yet"
    if push.get("mode") == "push":
        return f"push: active via EventSource (last push event {last}; safety pull every {every})"
    if push.get("mode") == "off":
        return f"push: off in the configuration; polling every {every}"
    why = f" ({push['detail']})" if push.get("detail") else ""
    return f"push: not active{why}; polling every {every}"


def _status_data(settings: Settings) -> dict[str, Any]:
    from jmapsyncd.state import StateDB

    if not settings.state_db.exists():
        return {
            "state_db": str(settings.state_db),
            "collections": [],
            "synced": False,
            "push": _push_data(settings),
        }
    with StateDB(settings.state_db) as db:
        runs: dict[int, dict[str, str]] = {}
        for run in db.runs():
            runs.setdefault(run.collection_id, {})[run.direction] = run.finished_at
        errors = db.errors()
        conflicts = db.conflicts()
        collections = []
        for row in db.collections():
            collections.append(
                {
                    "id": row.jmap_id,
                    "kind": row.kind,
                    "name": row.name,
                    "folder": str(settings.vdir / row.folder),
                    "items": len(db.items(row.id)),
                    "last_pull": runs.get(row.id, {}).get("pull"),
                    "last_push": runs.get(row.id, {}).get("push"),
                    "errors": [e.message for e in errors if e.collection_id == row.id],
                    "conflicts": [
                        {
                            "file": c.href,
                            "copy": c.copy_href,
                            "resolution": c.resolution,
                            "at": c.at,
                        }
                        for c in conflicts
                        if c.collection_id == row.id
                    ],
                }
            )
    return {
        "state_db": str(settings.state_db),
        "collections": collections,
        "synced": True,
        "push": _push_data(settings),
    }


def cmd_status(settings: Settings, args: argparse.Namespace) -> int:
    data = _status_data(settings)
    if args.health:
        return _health(settings, data)
    if args.json:
        print(json.dumps(data, indent=2))
        return EXIT_OK
    print(_push_line(data["push"]))
    if not data["collections"]:
        print(f"nothing synced yet (state database {data['state_db']})")
        return EXIT_OK
    for c in data["collections"]:
        print(f"{c['name'] or c['id']} ({c['kind']}): {c['items']} item(s) in {c['folder']}")
        print(f"  last pull {c['last_pull'] or 'never'}, last push {c['last_push'] or 'never'}")
        for error in c["errors"]:
            print(f"  error: {error}")
        for conflict in c["conflicts"]:
            kept = f", your version kept as {conflict['copy']}" if conflict["copy"] else ""
            print(f"  conflict: {conflict['file']} ({conflict['resolution']}{kept})")
    return EXIT_OK


def _health(settings: Settings, data: dict[str, Any]) -> int:
    """Healthy when some collection was synced within three pull intervals (or 15 minutes).

    While server push works the daemon pulls on a timer only as a safety net; its status file
    gives that longer interval.
    """
    stamps = [c["last_pull"] for c in data["collections"] if c["last_pull"]]
    if not stamps:
        print("unhealthy: no successful sync recorded yet")
        return EXIT_FAILURE
    newest = max(datetime.fromisoformat(s) for s in stamps)
    if newest.tzinfo is None:
        newest = newest.replace(tzinfo=UTC)
    age = (datetime.now(UTC) - newest).total_seconds()
    interval = float(settings.pull_interval)
    push = data.get("push") or {}
    if push.get("running") and isinstance(push.get("pull_interval"), int | float):
        interval = max(interval, float(push["pull_interval"]))
    if age > max(3 * interval, 900):
        print(f"unhealthy: last successful sync {age:.0f}s ago")
        return EXIT_FAILURE
    print(f"healthy: last successful sync {age:.0f}s ago")
    return EXIT_OK


def cmd_calendars(settings: Settings, args: argparse.Namespace) -> int:
    from jmapsyncd.sync.engine import TASKS_CAPABILITY

    with _client(settings) as client:
        calendars, _state = client.fetch_calendars()
        lists = client.get_task_lists() if client.get_session().has(TASKS_CAPABILITY) else []
    rows = [("calendar", c) for c in calendars] + [("task list", t) for t in lists]
    if args.json:
        print(json.dumps([{"kind": k, **c} for k, c in rows], indent=2, default=str))
        return EXIT_OK
    for kind, c in rows:
        color = f" {c['color']}" if c.get("color") else ""
        print(f"{c.get('id')}\t{kind}\t{c.get('name')}{color}")
    return EXIT_OK


COMMANDS = {"sync": cmd_sync, "run": cmd_run, "status": cmd_status, "calendars": cmd_calendars}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="jmapsyncd",
        description="Sync the calendars and task lists of a JMAP account with a vdir.",
    )
    parser.add_argument("--version", action="version", version=f"jmapsyncd {__version__}")
    parser.add_argument(
        "--config", type=Path, help="config file (default: $XDG_CONFIG_HOME/jmapsyncd/config.toml)"
    )
    parser.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=0,
        help="more logging (twice: debug, with tracebacks)",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    sub.add_parser("sync", help="one two-way sync, then exit")
    sub.add_parser("run", help="run the daemon (pull on a timer, push local edits)")
    p_status = sub.add_parser("status", help="what is synced, errors and conflicts")
    p_status.add_argument("--json", action="store_true", help="machine-readable output")
    p_status.add_argument(
        "--health",
        action="store_true",
        help="exit 0 if a sync succeeded recently (for health checks)",
    )
    p_cal = sub.add_parser("calendars", help="the calendars and task lists the server offers")
    p_cal.add_argument("--json", action="store_true", help="machine-readable output")
    return parser


def _setup_logging(settings_level: str, verbose: int) -> None:
    level = logging.DEBUG if verbose else getattr(logging, settings_level, logging.INFO)
    logging.basicConfig(
        level=level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if verbose < 2:
        # Library chatter (HTTP connection pools, the scheduler) only at -vv.
        for noisy in ("urllib3", "niquests", "apscheduler", "watchdog"):
            logging.getLogger(noisy).setLevel(max(level, logging.WARNING))


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="jmapsyncd: %(message)s")
    try:
        settings = load_config(args.config, os.environ)
        logging.getLogger().handlers.clear()
        _setup_logging(settings.log_level, args.verbose)
        return COMMANDS[args.command](settings, args)
    except ConfigError as exc:
        return _fail(EXIT_CONFIG, f"configuration error: {exc}", args.verbose)
    except AlreadyRunning as exc:
        return _fail(EXIT_FAILURE, str(exc), args.verbose)
    except JMAPAuthError as exc:
        return _fail(EXIT_AUTH, f"the server refused the credentials: {exc.reason}", args.verbose)
    except JMAPTransportError as exc:
        return _fail(EXIT_UNREACHABLE, f"cannot reach the server: {exc.reason}", args.verbose)
    except JMAPError as exc:
        return _fail(EXIT_PROTOCOL, f"the server's answer is not usable: {exc}", args.verbose)
    except StoreError as exc:
        return _fail(EXIT_FAILURE, f"local storage: {exc}", args.verbose)
    except JmapsyncdError as exc:
        return _fail(EXIT_FAILURE, str(exc), args.verbose)
    except KeyboardInterrupt:
        return 130


def _fail(code: int, message: str, verbose: int) -> int:
    if verbose >= 2:
        log.exception(message)
    print(f"jmapsyncd: {message}", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
