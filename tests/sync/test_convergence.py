"""A Hypothesis state machine: random edits on both sides, syncs, failures; the sides converge.

The machine drives the fake server (IETF dialect) through its store, as another client would,
and a tmp vdir through plain file writes, as an editor would. Between syncs it remembers the
latest edit of each item on each side. A sync may fail: the server answers 500 at one call, or
the process dies just before or just after one step (a client call or a state database write),
after which a new engine is started on the same database and vdir.

After every sync that did not fail, with the default ``keep-both`` policy:

* both sides hold the same UIDs with the same titles, each UID once (no duplicates);
* every edit made since the last such sync is there, on the item or on a conflict copy (an
  edit wins over a deletion, a conflict keeps both versions) -- nothing is lost;
* a deletion that nothing contradicts is carried out;
* syncing again changes nothing.

Edits made before a failed sync may have been carried over already; an edit on the other side
after that may then legitimately replace them, so the machine stops holding them to the
strict rules (they still may not vanish unless the other side acted on the item).

``JMAPSYNCD_CONVERGENCE_EXAMPLES`` and ``JMAPSYNCD_CONVERGENCE_STEPS`` raise the effort.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, precondition, rule

from jmapsyncd.errors import JMAPError
from jmapsyncd.jmap import JMAPClient
from jmapsyncd.state import StateDB
from jmapsyncd.sync.engine import SyncEngine, SyncReport
from jmapsyncd.vdir import Vdir, extract_uid, href_for_uid, safe_name
from tests.fakeserver import FakeJMAPServer, Fault
from tests.sync.test_engine_support import ics_event, jscal_event, summary_text

_CLIENT_CALLS = frozenset(
    {"pull", "fetch_calendars", "event_changes", "get_events", "get_all_events", "set_events"}
)
_DB_WRITES = frozenset(
    {
        "record_synced",
        "record_synced_many",
        "begin_downloads",
        "end_downloads",
        "begin_create",
        "finish_create",
        "mark_pending",
        "settle",
        "forget_item",
        "record_conflict",
        "set_token",
    }
)


class Crash(BaseException):
    """The process dies here."""


class Trap:
    """Counts the steps of a pass and springs at step ``at``."""

    def __init__(self, srv: FakeJMAPServer) -> None:
        self.srv = srv
        self.at: int | None = None
        self.mode = ""
        self.count = 0
        self.sprung = False

    def arm(self, at: int, mode: str) -> None:
        self.at, self.mode, self.count, self.sprung = at, mode, 0, False

    def disarm(self) -> None:
        self.at = None

    def run(self, fn: Callable[..., Any], client_call: bool, *args: Any, **kwargs: Any) -> Any:
        here = self.count
        self.count += 1
        if here != self.at:
            return fn(*args, **kwargs)
        self.at = None
        self.sprung = True
        if self.mode == "500" and client_call:
            self.srv.faults.append(Fault(status=500))
            return fn(*args, **kwargs)
        if self.mode != "after":
            raise Crash("before")
        fn(*args, **kwargs)
        raise Crash("after")


def _trapped(obj: Any, name: str, trap: Trap, client_call: bool) -> Any:
    method = object.__getattribute__(obj, name)

    def call(*args: Any, **kwargs: Any) -> Any:
        return trap.run(method, client_call, *args, **kwargs)

    return call


class TrappedClient(JMAPClient):
    trap: Trap

    def __getattribute__(self, name: str) -> Any:
        if name in _CLIENT_CALLS:
            return _trapped(self, name, object.__getattribute__(self, "trap"), True)
        return super().__getattribute__(name)


class TrappedDB(StateDB):
    trap: Trap

    def __getattribute__(self, name: str) -> Any:
        if name in _DB_WRITES:
            return _trapped(self, name, object.__getattribute__(self, "trap"), False)
        return super().__getattribute__(name)


@dataclass
class Pending:
    """The latest edit of one item on one side since the last sync that did not fail."""

    title: str | None  # None: deleted
    #: the calendar the item was deleted from
    calendar: str = ""
    #: made before a failed sync, which may have carried it over already
    weak: bool = False
    #: made after the other side's weak edit was dropped: a deletion may be overruled
    uncertain: bool = False


class Convergence(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.tmp = Path(tempfile.mkdtemp(prefix="jmapsyncd-convergence-"))
        self.srv = FakeJMAPServer(dialect="ietf").start()
        self.cal = self.srv.store.default_calendar_id
        self.other = self.srv.store.add_calendar("Other")
        self.cals = (self.cal, self.other)
        self.trap = Trap(self.srv)
        self.engine: SyncEngine | None = None
        self.counter = 0
        self.pending: dict[tuple[str, str], Pending] = {}
        #: (side, UID) moved to another calendar since the last sync that did not fail
        self.moved: set[tuple[str, str]] = set()
        self._start()

    # -- plumbing --------------------------------------------------------------------------------

    def _start(self) -> None:
        client = TrappedClient(
            self.srv.session_url, username=self.srv.username, password=self.srv.password
        )
        client.trap = self.trap
        db = TrappedDB(self.tmp / "state.sqlite")
        db.trap = self.trap
        vdir = Vdir(self.tmp / "vdir")
        vdir.cleanup_temp_files()
        self.engine = SyncEngine(client, vdir, db)
        self.engine.on_close(client.close)
        self.engine.on_close(db.close)

    def _restart(self) -> None:
        assert self.engine is not None
        self.engine.close()
        self._start()

    def teardown(self) -> None:
        if self.engine is not None:
            self.engine.close()
        self.srv.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)

    @property
    def folder(self) -> Path:
        return self.folder_of(self.cal)

    def folder_of(self, calendar_id: str) -> Path:
        return self.tmp / "vdir" / safe_name(calendar_id)

    def _new(self, prefix: str) -> str:
        self.counter += 1
        return f"{prefix}{self.counter}"

    def _local(self, calendar_id: str | None = None) -> dict[str, tuple[str, str]]:
        """UID -> (file name, title) of every item file of a calendar; each UID once."""
        out: dict[str, tuple[str, str]] = {}
        folder = self.folder_of(calendar_id or self.cal)
        if not folder.is_dir():
            return out
        for path in sorted(folder.glob("*.ics")):
            text = path.read_text(encoding="utf-8")
            uid = extract_uid(text)
            assert uid is not None, path.name
            assert uid not in out, f"{uid} is in {out[uid][0]} and {path.name}"
            out[uid] = (path.name, summary_text(text))
        return out

    def _server(self, calendar_id: str | None = None) -> dict[str, tuple[str, str]]:
        """UID -> (JMAP id, title) of every server event of a calendar; each UID once."""
        out: dict[str, tuple[str, str]] = {}
        with self.srv.store.lock:
            for event_id, obj in sorted(self.srv.store.events.items()):
                if (calendar_id or self.cal) not in obj["calendarIds"]:
                    continue
                uid = str(obj["uid"])
                assert uid not in out, f"the server holds {uid} twice"
                out[uid] = (event_id, str(obj.get("title", "")))
        return out

    def _everywhere(self, side: str) -> set[tuple[str, str, str]]:
        """(calendar, UID, title) of every item on one side."""
        view = self._local if side == "local" else self._server
        return {(cal, uid, title) for cal in self.cals for uid, (_, title) in view(cal).items()}

    def _note(
        self,
        side: str,
        uid: str,
        title: str | None,
        calendar: str = "",
        replaces: str | None = None,
    ) -> None:
        """Remember an edit (``title``) or deletion (None) of ``uid`` made on ``side``.

        ``replaces`` is the title the item had there: an earlier edit with that title is
        superseded wherever it came from (the engine may have given it a fresh UID meanwhile).
        """
        other = "local" if side == "server" else "server"
        uncertain = False
        for key, entry in list(self.pending.items()):
            if replaces is not None and entry.title == replaces:
                del self.pending[key]
                uncertain = uncertain or key[0] == other
        theirs = self.pending.get((other, uid))
        if theirs is not None and theirs.weak:
            # It may have been carried over already: then this edit replaces it on purpose.
            del self.pending[(other, uid)]
            uncertain = True
        mine = self.pending.get((side, uid))
        if mine is not None and mine.uncertain:
            uncertain = True
        self.pending[(side, uid)] = Pending(title, calendar, uncertain=uncertain)

    def _note_move(self, side: str, uid: str) -> None:
        """A move brings no new content, but it may take the item out of a deletion's way."""
        self.moved.add((side, uid))
        other = "local" if side == "server" else "server"
        theirs = self.pending.get((other, uid))
        if theirs is not None and theirs.title is None:
            theirs.uncertain = True

    def _write(self, uid: str, title: str, name: str | None = None, calendar: str = "") -> None:
        path = self.folder_of(calendar or self.cal) / (name or href_for_uid(uid))
        try:
            before: int | None = path.stat().st_mtime_ns
        except FileNotFoundError:
            before = None
        path.write_bytes(ics_event(uid, title).encode("utf-8"))
        st = path.stat()
        # A fresh mtime even on a coarse clock, as seconds between two real saves give.
        mtime = max(st.st_mtime_ns, (before or 0) + 1_000_000) + 1_000_000
        os.utime(path, ns=(st.st_atime_ns, mtime))

    # -- server edits ----------------------------------------------------------------------------

    @rule()
    def server_create(self) -> None:
        uid, title = self._new("u"), self._new("server ")
        self.srv.store.add_event(self.cal, jscal_event(uid, title))
        self._note("server", uid, title)

    def _server_items(self) -> list[tuple[str, str, str]]:
        """(calendar, UID, JMAP id) of every server event."""
        return [(c, u, v[0]) for c in self.cals for u, v in sorted(self._server(c).items())]

    def _local_items(self) -> list[tuple[str, str, str]]:
        """(calendar, UID, file name) of every item file."""
        return [(c, u, v[0]) for c in self.cals for u, v in sorted(self._local(c).items())]

    @precondition(lambda self: bool(self.srv.store.events))
    @rule(data=st.data())
    def server_edit(self, data: st.DataObject) -> None:
        cal, uid, event_id = data.draw(st.sampled_from(self._server_items()))
        title = self._new("server ")
        old = self._server(cal)[uid][1]
        self.srv.store.update_event(event_id, {"title": title})
        self._note("server", uid, title, replaces=old)

    @precondition(lambda self: bool(self.srv.store.events))
    @rule(data=st.data())
    def server_delete(self, data: st.DataObject) -> None:
        cal, uid, event_id = data.draw(st.sampled_from(self._server_items()))
        old = self._server(cal)[uid][1]
        self.srv.store.destroy_event(event_id)
        self._note("server", uid, None, cal, replaces=old)

    # -- local edits -----------------------------------------------------------------------------

    @precondition(lambda self: self.folder.is_dir())
    @rule()
    def local_create(self) -> None:
        uid, title = self._new("u"), self._new("local ")
        self._write(uid, title)
        self._note("local", uid, title)

    @precondition(lambda self: bool(self._local_items()))
    @rule(data=st.data())
    def local_edit(self, data: st.DataObject) -> None:
        cal, uid, name = data.draw(st.sampled_from(self._local_items()))
        title = self._new("local ")
        old = self._local(cal)[uid][1]
        self._write(uid, title, name, cal)
        self._note("local", uid, title, replaces=old)

    @precondition(lambda self: bool(self._local_items()))
    @rule(data=st.data())
    def local_delete(self, data: st.DataObject) -> None:
        cal, uid, name = data.draw(st.sampled_from(self._local_items()))
        old = self._local(cal)[uid][1]
        (self.folder_of(cal) / name).unlink()
        self._note("local", uid, None, cal, replaces=old)

    @precondition(lambda self: bool(self._local_items()))
    @rule(data=st.data())
    def local_touch(self, data: st.DataObject) -> None:
        """Saved without a change: a new mtime, the same content."""
        cal, _, name = data.draw(st.sampled_from(self._local_items()))
        path = self.folder_of(cal) / name
        st_ = path.stat()
        os.utime(path, ns=(st_.st_atime_ns, st_.st_mtime_ns + 5_000_000))

    @precondition(lambda self: self.folder.is_dir())
    @rule()
    def twin_create(self) -> None:
        """The same new UID on both sides, with different content."""
        uid = self._new("u")
        server_title, local_title = self._new("server "), self._new("local ")
        self.srv.store.add_event(self.cal, jscal_event(uid, server_title))
        self._write(uid, local_title)
        self._note("server", uid, server_title)
        self._note("local", uid, local_title)

    # -- moves between calendars ----------------------------------------------------------------

    @precondition(lambda self: bool(self.srv.store.events))
    @rule(data=st.data())
    def server_move(self, data: st.DataObject) -> None:
        source = data.draw(st.sampled_from([c for c in self.cals if self._server(c)]))
        target = self.other if source == self.cal else self.cal
        uid = data.draw(st.sampled_from(sorted(self._server(source))))
        event_id, _ = self._server(source)[uid]
        if uid in self._server(target):
            return  # one UID per calendar
        self.srv.store.update_event(event_id, {"calendarIds": {target: True}})
        self._note_move("server", uid)

    @precondition(lambda self: self.folder.is_dir() and self.folder_of(self.other).is_dir())
    @rule(data=st.data())
    def local_move(self, data: st.DataObject) -> None:
        sources = [c for c in self.cals if self._local(c)]
        if not sources:
            return
        source = data.draw(st.sampled_from(sources))
        target = self.other if source == self.cal else self.cal
        uid = data.draw(st.sampled_from(sorted(self._local(source))))
        name, _ = self._local(source)[uid]
        if uid in self._local(target) or (self.folder_of(target) / name).exists():
            return  # one UID per calendar; and mv would replace a file of the same name
        (self.folder_of(source) / name).rename(self.folder_of(target) / name)
        self._note_move("local", uid)

    # -- syncs -----------------------------------------------------------------------------------

    def _sync(self) -> SyncReport:
        assert self.engine is not None
        return self.engine.sync()

    @rule()
    def sync(self) -> None:
        self.trap.disarm()
        report = self._sync()
        self._check(report)

    @rule(
        at=st.integers(min_value=0, max_value=30), mode=st.sampled_from(["500", "before", "after"])
    )
    def sync_failing(self, at: int, mode: str) -> None:
        self.trap.arm(at, mode)
        try:
            report = self._sync()
        except Crash:
            self._failed()
            self._restart()
            return
        except JMAPError:
            assert mode == "500"
            self._failed()
            return
        finally:
            self.trap.disarm()
        # The pass was shorter than ``at`` steps: it was a plain sync.
        assert not self.trap.sprung
        self._check(report)

    def _failed(self) -> None:
        for entry in self.pending.values():
            entry.weak = True

    def _check(self, report: SyncReport) -> None:
        assert report.errors == [], report.errors
        everywhere = self._everywhere("server")
        assert self._everywhere("local") == everywhere
        server = {(cal, uid) for cal, uid, _ in everywhere}
        titles = {title for _, _, title in everywhere}
        for (side, uid), entry in sorted(self.pending.items()):
            other = "local" if side == "server" else "server"
            if entry.title is not None:
                assert entry.title in titles, f"the {side} edit {entry.title!r} of {uid} is lost"
            elif (
                not (entry.weak or entry.uncertain)
                and (other, uid) not in self.pending
                and (other, uid) not in self.moved
            ):
                assert (entry.calendar, uid) not in server, (
                    f"the {side} deletion of {uid} is undone"
                )
        self.pending.clear()
        self.moved.clear()
        again = self._sync()
        assert (again.changed, again.conflicts, again.errors) == (0, 0, [])


TestConvergence = Convergence.TestCase
TestConvergence.settings = settings(
    max_examples=int(os.environ.get("JMAPSYNCD_CONVERGENCE_EXAMPLES", "25")),
    stateful_step_count=int(os.environ.get("JMAPSYNCD_CONVERGENCE_STEPS", "25")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
