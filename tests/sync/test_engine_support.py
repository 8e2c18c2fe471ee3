"""Shared helpers for the sync engine tests (this module holds no tests).

A :class:`World` is one account, one vdir and one state database wired into a
:class:`~jmapsyncd.sync.engine.SyncEngine`, plus a :class:`ServerSide` that edits the account the
way another JMAP client would: through the fake server's store, or through a second client on a
real server. Test bodies use only these two, so one body runs against every server.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import pytest

from jmapsyncd.jmap import JMAPClient
from jmapsyncd.state import StateDB
from jmapsyncd.state.rows import CollectionKind
from jmapsyncd.sync.engine import SyncEngine, SyncReport
from jmapsyncd.sync.plan import ConflictPolicy
from jmapsyncd.vdir import Vdir, extract_uid, href_for_uid, safe_name
from tests.conftest import ServerAccount
from tests.fakeserver import FakeJMAPServer

__all__ = [
    "SERVERS",
    "ClientSide",
    "FakeSide",
    "ServerSide",
    "World",
    "fake_world",
    "ics_event",
    "ics_task",
    "jscal_event",
    "open_world",
    "server_world",
    "summary_text",
    "tree_snapshot",
]


def ics_event(
    uid: str, summary: str, *, start: str = "20260105T100000Z", end: str = "20260105T110000Z"
) -> str:
    """A minimal VEVENT in UTC (no time zone data to churn)."""
    return (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\nBEGIN:VEVENT\r\n"
        f"UID:{uid}\r\nDTSTAMP:20260101T000000Z\r\nDTSTART:{start}\r\nDTEND:{end}\r\n"
        f"SUMMARY:{summary}\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    )


def ics_task(uid: str, summary: str) -> str:
    return (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\nBEGIN:VTODO\r\n"
        f"UID:{uid}\r\nDTSTAMP:20260101T000000Z\r\nSUMMARY:{summary}\r\nEND:VTODO\r\n"
        "END:VCALENDAR\r\n"
    )


def jscal_event(uid: str, title: str, start: str = "2026-01-05T10:00:00") -> dict[str, Any]:
    return {
        "@type": "Event",
        "uid": uid,
        "title": title,
        "start": start,
        "duration": "PT1H",
        "timeZone": "Etc/UTC",
    }


class ServerSide(Protocol):
    """Edits made on the server by someone else, and what the server holds."""

    def default_calendar(self) -> str: ...
    def add_calendar(self, name: str) -> str: ...
    def add_event(self, calendar_id: str, jscal: dict[str, Any]) -> str: ...
    def update_event(self, event_id: str, patch: dict[str, Any]) -> None: ...
    def destroy_event(self, event_id: str) -> None: ...
    def events(self) -> dict[str, dict[str, Any]]: ...
    def calendars(self) -> dict[str, dict[str, Any]]: ...
    def update_calendar(self, calendar_id: str, patch: dict[str, Any]) -> None: ...
    def destroy_calendar(self, calendar_id: str) -> None: ...


@dataclass
class FakeSide:
    srv: FakeJMAPServer

    def default_calendar(self) -> str:
        return self.srv.store.default_calendar_id

    def add_calendar(self, name: str) -> str:
        return self.srv.store.add_calendar(name)

    def add_event(self, calendar_id: str, jscal: dict[str, Any]) -> str:
        return self.srv.store.add_event(calendar_id, jscal)

    def update_event(self, event_id: str, patch: dict[str, Any]) -> None:
        self.srv.store.update_event(event_id, patch)

    def destroy_event(self, event_id: str) -> None:
        self.srv.store.destroy_event(event_id)

    def events(self) -> dict[str, dict[str, Any]]:
        with self.srv.store.lock:
            return {k: dict(v) for k, v in self.srv.store.events.items()}

    def calendars(self) -> dict[str, dict[str, Any]]:
        with self.srv.store.lock:
            return {k: dict(v) for k, v in self.srv.store.calendars.items()}

    def update_calendar(self, calendar_id: str, patch: dict[str, Any]) -> None:
        self.srv.store.update_calendar(calendar_id, patch)

    def destroy_calendar(self, calendar_id: str) -> None:
        self.srv.store.destroy_calendar(calendar_id)


@dataclass
class ClientSide:
    """Server edits through a second client (for real servers)."""

    client: JMAPClient

    def default_calendar(self) -> str:
        calendars, _ = self.client.fetch_calendars()
        return str(calendars[0]["id"])

    def add_calendar(self, name: str) -> str:
        return self.client.create_calendar(name)

    def add_event(self, calendar_id: str, jscal: dict[str, Any]) -> str:
        result = self.client.set_events(create={"a": {**jscal, "calendarIds": {calendar_id: True}}})
        result.raise_first_error()
        return str(result.created["a"]["id"])

    def update_event(self, event_id: str, patch: dict[str, Any]) -> None:
        self.client.set_events(update={event_id: patch}).raise_first_error()

    def destroy_event(self, event_id: str) -> None:
        self.client.set_events(destroy=[event_id]).raise_first_error()

    def events(self) -> dict[str, dict[str, Any]]:
        objects, _ = self.client.get_all_events()
        return {str(o["id"]): o for o in objects}

    def calendars(self) -> dict[str, dict[str, Any]]:
        calendars, _ = self.client.fetch_calendars()
        return {str(c["id"]): c for c in calendars}

    def update_calendar(self, calendar_id: str, patch: dict[str, Any]) -> None:
        self.client.update_calendar(calendar_id, patch)

    def destroy_calendar(self, calendar_id: str) -> None:
        self.client.delete_calendar(calendar_id)


@dataclass
class World:
    """An engine over a tmp vdir and state database, and a way to edit the server."""

    tmp: Path
    url: str
    username: str
    password: str
    server: ServerSide
    policy: ConflictPolicy = ConflictPolicy.KEEP_BOTH
    engine: SyncEngine = field(init=False)
    db: StateDB = field(init=False)
    client: JMAPClient = field(init=False)

    def __post_init__(self) -> None:
        self.root = self.tmp / "vdir"
        self.db_path = self.tmp / "state" / "state.sqlite"
        self._start()

    def _start(self) -> None:
        self.client = JMAPClient(self.url, username=self.username, password=self.password)
        try:
            self.db = StateDB(self.db_path)
        except BaseException:
            self.client.close()
            raise
        self.vdir = Vdir(self.root)
        self.vdir.cleanup_temp_files()
        self.engine = SyncEngine(self.client, self.vdir, self.db, policy=self.policy)
        self.engine.on_close(self.client.close)
        self.engine.on_close(self.db.close)

    def close(self) -> None:
        self.engine.close()

    def restart(self, policy: ConflictPolicy | None = None) -> None:
        """A new process: new client, new engine, same state database and vdir."""
        self.close()
        if policy is not None:
            self.policy = policy
        self._start()

    def sync(self) -> SyncReport:
        return self.engine.sync()

    def sync_clean(self) -> SyncReport:
        report = self.sync()
        assert report.errors == [], report.errors
        return report

    # -- the local side ---------------------------------------------------------------------------

    def folder(self, collection_id: str, kind: CollectionKind = "calendar") -> Path:
        """The folder the engine keeps the collection in (by default named after its id)."""
        for row in self.db.collections():
            if row.jmap_id == collection_id and row.kind == kind:
                return self.root / row.folder
        return self.root / safe_name(collection_id)

    def write(
        self, collection_id: str, name: str, text: str | bytes, kind: CollectionKind = "calendar"
    ) -> Path:
        path = self.folder(collection_id, kind) / name
        data = text.encode("utf-8") if isinstance(text, str) else text
        try:
            before: int | None = path.stat().st_mtime_ns
        except FileNotFoundError:
            before = None
        # Not atomic on purpose: like an editor, and the mtime moves.
        with open(path, "wb") as fp:
            fp.write(data)
        _bump_mtime(path, before)
        return path

    def write_uid(
        self, collection_id: str, uid: str, text: str, kind: CollectionKind = "calendar"
    ) -> Path:
        return self.write(collection_id, href_for_uid(uid), text, kind)

    def files(self, collection_id: str, kind: CollectionKind = "calendar") -> dict[str, str]:
        folder = self.folder(collection_id, kind)
        return {
            p.name: p.read_text(encoding="utf-8")
            for p in sorted(folder.iterdir())
            if p.name.endswith(".ics") and not p.is_symlink()
        }

    def local_uids(self, collection_id: str, kind: CollectionKind = "calendar") -> list[str]:
        texts = self.files(collection_id, kind).values()
        return sorted(u for t in texts if (u := extract_uid(t)))

    def local_summaries(
        self, collection_id: str, kind: CollectionKind = "calendar"
    ) -> dict[str, str]:
        """UID -> SUMMARY of every file in the folder."""
        out: dict[str, str] = {}
        for text in self.files(collection_id, kind).values():
            uid = extract_uid(text)
            assert uid is not None
            assert uid not in out, f"two files hold {uid}"
            out[uid] = summary_text(text)
        return out

    def summary_of(self, collection_id: str, uid: str) -> str:
        """The SUMMARY of the file named after ``uid``."""
        return summary_text((self.folder(collection_id) / href_for_uid(uid)).read_text("utf-8"))

    # -- the server side --------------------------------------------------------------------------

    def server_titles(self, calendar_id: str | None = None) -> dict[str, str]:
        """UID -> title of every event on the server (of one calendar)."""
        out: dict[str, str] = {}
        for obj in self.server.events().values():
            if calendar_id is not None and calendar_id not in (obj.get("calendarIds") or {}):
                continue
            uid = str(obj["uid"])
            assert uid not in out, f"two server events hold {uid}"
            out[uid] = str(obj.get("title", ""))
        return out

    def server_event_id(self, uid: str) -> str:
        [event_id] = [i for i, o in self.server.events().items() if o.get("uid") == uid]
        return event_id


def summary_text(text: str) -> str:
    """The unescaped SUMMARY of an iCalendar text ("" if none)."""
    for line in text.replace("\r\n ", "").splitlines():
        if line.upper().startswith("SUMMARY"):
            return _unescape(line.split(":", 1)[1])
    return ""


def _unescape(value: str) -> str:
    """RFC 5545 §3.3.11 TEXT unescaping."""
    out: list[str] = []
    chars = iter(value)
    for c in chars:
        if c == "\\":
            nxt = next(chars, "")
            out.append("\n" if nxt in "nN" and nxt else nxt)
        else:
            out.append(c)
    return "".join(out)


def _bump_mtime(path: Path, before: int | None) -> None:
    """Make the mtime differ from anything written in the same clock tick before.

    A coarse clock gives two quick writes the same mtime; an editor's next save would then keep
    the file's etag. Real saves are seconds apart, tests' are not.
    """
    st = path.stat()
    mtime = max(st.st_mtime_ns, (before or 0) + 1_000_000) + 1_000_000
    os.utime(path, ns=(st.st_atime_ns, mtime))


@contextmanager
def open_world(
    tmp: Path,
    url: str,
    username: str,
    password: str,
    server: ServerSide,
    policy: ConflictPolicy = ConflictPolicy.KEEP_BOTH,
) -> Iterator[World]:
    world = World(tmp, url, username, password, server, policy)
    try:
        yield world
    finally:
        world.close()


@contextmanager
def fake_world(
    tmp: Path,
    dialect: str = "ietf",
    *,
    tasks: bool = False,
    policy: ConflictPolicy = ConflictPolicy.KEEP_BOTH,
) -> Iterator[tuple[FakeJMAPServer, World]]:
    with ExitStack() as stack:
        srv = stack.enter_context(FakeJMAPServer(dialect=dialect, tasks=tasks))
        world = stack.enter_context(
            open_world(tmp, srv.session_url, srv.username, srv.password, FakeSide(srv), policy)
        )
        yield srv, world


def tree_snapshot(root: Path) -> set[str]:
    """Every path under ``root`` (relative), symlinks not followed."""
    out: set[str] = set()
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        for name in [*dirnames, *filenames]:
            out.add(os.path.relpath(os.path.join(dirpath, name), root))
    return out


#: Parameters for :func:`server_world`: the fake server's dialects and the real servers.
SERVERS = [
    pytest.param("fake-stalwart"),
    pytest.param("fake-ietf"),
    pytest.param("cyrus36_account", marks=pytest.mark.integration, id="cyrus-3.6"),
    pytest.param("cyrus310_account", marks=pytest.mark.integration, id="cyrus-3.10"),
]


@contextmanager
def server_world(
    request: pytest.FixtureRequest,
    tmp: Path,
    policy: ConflictPolicy = ConflictPolicy.KEEP_BOTH,
) -> Iterator[World]:
    """A world on the server named by ``request.param`` (one of :data:`SERVERS`)."""
    name: str = request.param
    if name.startswith("fake-"):
        with (
            FakeJMAPServer(dialect=name.removeprefix("fake-")) as srv,
            open_world(
                tmp, srv.session_url, srv.username, srv.password, FakeSide(srv), policy
            ) as w,
        ):
            yield w
        return
    account: ServerAccount = request.getfixturevalue(name)
    with (
        JMAPClient(account.url, username=account.username, password=account.password) as other,
        open_world(
            tmp, account.url, account.username, account.password, ClientSide(other), policy
        ) as w,
    ):
        yield w
