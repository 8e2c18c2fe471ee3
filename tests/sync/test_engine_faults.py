"""The sync engine when things go wrong: lost change history, paging, server failures mid-pass,
hostile server data, bad local files, and a crash at every step of a pass.

All against the fake server, whose store can be edited directly and whose answers can fail.
The promises checked: nothing is lost, nothing is copied twice, nothing is written outside the
vdir, a bad item is reported and left alone while every other item keeps syncing, and the
state token is stored only when the pass is complete.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from jmapsyncd.errors import JMAPError, SyncInterrupted
from jmapsyncd.sync.plan import ConflictPolicy
from jmapsyncd.vdir import Item, VdirCollection, href_for_uid
from tests.fakeserver import FakeJMAPServer, Fault
from tests.sync.test_engine_support import (
    World,
    fake_world,
    ics_event,
    jscal_event,
    tree_snapshot,
)


@pytest.fixture(params=["ietf", "stalwart"])
def fake(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[FakeJMAPServer, World]]:
    with fake_world(tmp_path / "w", request.param) as pair:
        yield pair


def _token(w: World) -> str | None:
    return w.db.get_token(w.engine.account_id(), "CalendarEvent")


def _converged(w: World, cal: str) -> dict[str, str]:
    """Both sides hold the same UIDs with the same titles, each once; returns them."""
    local = w.local_summaries(cal)
    server = w.server_titles(cal)
    assert local == server
    return local


# -- change history ------------------------------------------------------------------------------


def test_cannot_calculate_changes_falls_back_to_a_lossless_full_reconcile(
    fake: tuple[FakeJMAPServer, World],
) -> None:
    srv, w = fake
    cal = srv.store.default_calendar_id
    ids = {u: srv.store.add_event(cal, jscal_event(u, u.upper())) for u in "abcde"}
    w.sync_clean()
    # both sides move on
    srv.store.update_event(ids["a"], {"title": "A on the server"})
    srv.store.destroy_event(ids["b"])
    srv.store.add_event(cal, jscal_event("f", "F from the server"))
    w.write_uid(cal, "c", ics_event("c", "C in the vdir"))
    (w.folder(cal) / href_for_uid("d")).unlink()
    w.write_uid(cal, "g", ics_event("g", "G from the vdir"))
    srv.force_cannot_calculate = "CalendarEvent"

    report = w.sync_clean()
    assert report.full is True
    assert report.conflicts == 0
    assert _converged(w, cal) == {
        "a": "A on the server",
        "c": "C in the vdir",
        "e": "E",
        "f": "F from the server",
        "g": "G from the vdir",
    }
    report = w.sync_clean()
    assert report.full is False
    assert report.changed == 0


def test_history_forgotten_by_the_server_means_a_full_pass_without_copies(
    fake: tuple[FakeJMAPServer, World],
) -> None:
    srv, w = fake
    cal = srv.store.default_calendar_id
    for u in "abc":
        srv.store.add_event(cal, jscal_event(u, u))
    w.sync_clean()
    srv.store.add_event(cal, jscal_event("d", "d"))
    srv.store.forget_history()
    report = w.sync_clean()
    assert report.full is True
    assert report.downloaded == 1
    assert report.uploaded == 0
    assert _converged(w, cal) == {"a": "a", "b": "b", "c": "c", "d": "d"}


def test_changes_come_in_several_pages_and_all_are_applied(
    fake: tuple[FakeJMAPServer, World],
) -> None:
    srv, w = fake
    cal = srv.store.default_calendar_id
    first = srv.store.add_event(cal, jscal_event("p0", "p0"))
    w.sync_clean()
    srv.limits["maxChanges"] = 2
    for n in range(1, 8):
        srv.store.add_event(cal, jscal_event(f"p{n}", f"p{n}"))
    srv.store.update_event(first, {"title": "p0 edited"})
    srv.requests.clear()
    report = w.sync_clean()
    assert report.full is False
    assert report.downloaded == 8
    pages = [
        r
        for r in srv.requests
        if r.json and any(c[0] == "CalendarEvent/changes" for c in r.json["methodCalls"])
    ]
    assert len(pages) >= 4
    expected = {f"p{n}": f"p{n}" for n in range(1, 8)} | {"p0": "p0 edited"}
    assert _converged(w, cal) == expected
    assert w.sync_clean().changed == 0


# -- a server failure in the middle of a pass -----------------------------------------------------

_CLIENT_CALLS = (
    "pull",
    "fetch_calendars",
    "event_changes",
    "get_events",
    "get_all_events",
    "set_events",
    "create_calendar",
    "update_calendar",
)


class StepCounter:
    """Counts the client calls of a pass and makes call number ``fail_at`` meet a 500."""

    def __init__(self, srv: FakeJMAPServer, w: World, fail_at: int | None) -> None:
        self.srv = srv
        self.fail_at = fail_at
        self.calls: list[str] = []
        for name in _CLIENT_CALLS:
            setattr(w.client, name, self._wrap(name, getattr(w.client, name)))

    def _wrap(self, name: str, method: Callable[..., Any]) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            if len(self.calls) == self.fail_at:
                self.srv.faults.append(Fault(status=500, path="/jmap/"))
            self.calls.append(name)
            return method(*args, **kwargs)

        return call


def _busy_pass_setup(srv: FakeJMAPServer, w: World) -> tuple[str, dict[str, str]]:
    """Synced items, then edits on both sides; returns the calendar and the expected end."""
    cal = srv.store.default_calendar_id
    ids = {u: srv.store.add_event(cal, jscal_event(u, u)) for u in ("a", "b", "c", "d", "e")}
    w.sync_clean()
    srv.store.update_event(ids["a"], {"title": "a server"})
    srv.store.destroy_event(ids["b"])
    srv.store.add_event(cal, jscal_event("f", "f server"))
    w.write_uid(cal, "c", ics_event("c", "c local"))
    (w.folder(cal) / href_for_uid("d")).unlink()
    w.write_uid(cal, "g", ics_event("g", "g local"))
    expected = {"a": "a server", "c": "c local", "e": "e", "f": "f server", "g": "g local"}
    # A fresh process for the pass under test, so its client calls can be wrapped.
    w.restart()
    return cal, expected


@pytest.mark.slow
def test_a_500_at_any_call_of_a_pass_loses_nothing_and_the_next_pass_completes(
    tmp_path: Path,
) -> None:
    # How many client calls does the busy pass make?
    with fake_world(tmp_path / "probe", "ietf") as (srv, w):
        _busy_pass_setup(srv, w)
        counter = StepCounter(srv, w, None)
        w.sync_clean()
        total = len(counter.calls)
    assert total >= 4

    for fail_at in range(total):
        with fake_world(tmp_path / f"fail{fail_at}", "ietf") as (srv, w):
            cal, expected = _busy_pass_setup(srv, w)
            old_token = _token(w)
            counter = StepCounter(srv, w, fail_at)
            with pytest.raises(JMAPError):
                w.sync()
            # never a newer token (after our first write the token is dropped: a full pass)
            assert _token(w) in (old_token, None), f"token moved after a failure at {fail_at}"
            assert srv.faults == []
            report = w.sync_clean()
            assert report.conflicts == 0, f"failure at {counter.calls[fail_at]} ({fail_at})"
            assert _converged(w, cal) == expected, f"failure at {counter.calls[fail_at]}"
            assert _token(w) != old_token
            assert w.sync_clean().changed == 0


def test_the_token_is_stored_only_after_every_item_of_the_pass(
    fake: tuple[FakeJMAPServer, World],
) -> None:
    srv, w = fake
    _busy_pass_setup(srv, w)
    order: list[str] = []
    db = w.db
    for name in ("record_synced_many", "finish_create", "forget_item", "set_token"):
        method = getattr(db, name)

        def spy(*args: Any, _name: str = name, _method: Any = method, **kwargs: Any) -> Any:
            # The event token only: the calendar state is stored once the calendars are done.
            if _name != "set_token" or args[1] == "CalendarEvent":
                order.append(_name)
            return _method(*args, **kwargs)

        setattr(db, name, spy)
    w.sync_clean()
    assert order.count("set_token") == 1
    assert order[-1] == "set_token"
    assert len(order) > 1


# -- hostile server data -------------------------------------------------------------------------

HOSTILE_STRINGS = [
    "../../escaped",
    "/etc/passwd",
    "/tmp/absolute",
    "a/b/c",
    "..",
    ".",
    "nul\x00byte",
    "ctl\x01\x1b[31m\r\n",
    "x" * 10_000,
    "back\\slash",
    ".hidden",
    "",
]


def _outside_snapshot(tmp: Path, vdir_root: Path) -> set[str]:
    return {p for p in tree_snapshot(tmp) if not (tmp / p).is_relative_to(vdir_root)}


@pytest.mark.parametrize("dialect", ["ietf", "stalwart"])
def test_hostile_event_uids_stay_inside_the_vdir(tmp_path: Path, dialect: str) -> None:
    with fake_world(tmp_path / "w", dialect) as (srv, w):
        cal = srv.store.default_calendar_id
        w.sync_clean()
        before = _outside_snapshot(tmp_path, w.root)
        for n, uid in enumerate(HOSTILE_STRINGS):
            srv.store.add_event(cal, {**jscal_event(uid, f"hostile {n}"), "id": f"h{n}"})
        srv.store.add_event(cal, jscal_event("fine", "A fine event"))
        report = w.sync()
        after = _outside_snapshot(tmp_path, w.root)
        assert after == before
        # nothing escaped the collection folder either
        folders = {p.name for p in w.root.iterdir()}
        assert folders == {w.folder(cal).name}
        assert w.local_summaries(cal)["fine"] == "A fine event"
        for path in w.folder(cal).iterdir():
            assert path.is_file()
            assert not path.is_symlink()
        # no control character reaches a file; those items are reported instead
        for path in w.folder(cal).iterdir():
            text = path.read_bytes().decode("utf-8")
            assert all(c.isprintable() or c in "\r\n" for c in text), path.name
        for n, uid in enumerate(HOSTILE_STRINGS):
            if not uid.isprintable() or not uid:
                assert any(f"h{n} has an unusable UID" in e for e in report.errors), uid
        # a second pass changes nothing and loses nothing on the server
        w.sync()
        assert len(srv.store.events) == len(HOSTILE_STRINGS) + 1


@pytest.mark.parametrize("dialect", ["ietf", "stalwart"])
def test_hostile_calendar_ids_and_names_stay_inside_the_vdir(tmp_path: Path, dialect: str) -> None:
    with fake_world(tmp_path / "w", dialect) as (srv, w):
        before = _outside_snapshot(tmp_path, w.root)
        cal_ids = []
        for n, value in enumerate(HOSTILE_STRINGS):
            if value == "":
                continue
            cal_id = srv.store.add_calendar(value, id=value if value else None)
            srv.store.add_event(cal_id, jscal_event(f"in-{n}", f"event {n}"))
            cal_ids.append(cal_id)
        good = srv.store.add_calendar("Good")
        srv.store.add_event(good, jscal_event("good", "Good"))
        w.sync()
        assert _outside_snapshot(tmp_path, w.root) == before
        for entry in w.root.iterdir():
            assert entry.is_dir()
            assert not entry.name.startswith(".")
            assert entry.resolve().parent == w.root.resolve()
            displayname = entry / "displayname"
            if displayname.exists():
                assert "\n" not in displayname.read_text().strip()
        assert w.local_summaries(good) == {"good": "Good"}
        w.sync()
        assert _outside_snapshot(tmp_path, w.root) == before


def test_events_sharing_a_uid_on_the_server_are_neither_lost_nor_multiplied(
    fake: tuple[FakeJMAPServer, World],
) -> None:
    srv, w = fake
    cal = srv.store.default_calendar_id
    srv.store.add_event(cal, {**jscal_event("dup", "first"), "id": "dup-1"})
    srv.store.add_event(cal, {**jscal_event("dup", "second"), "id": "dup-2"})
    srv.store.add_event(cal, jscal_event("single", "single"))
    w.sync()
    w.sync()
    report = w.sync()
    assert report.changed == 0
    assert sorted(e["title"] for e in srv.store.events.values()) == ["first", "second", "single"]
    titles = sorted(
        line.split(":", 1)[1]
        for text in w.files(cal).values()
        for line in text.splitlines()
        if line.startswith("SUMMARY")
    )
    assert "single" in titles
    assert len(titles) == len(set(titles))


def test_an_event_the_converter_cannot_handle_is_skipped_and_reported(
    fake: tuple[FakeJMAPServer, World],
) -> None:
    srv, w = fake
    cal = srv.store.default_calendar_id
    srv.store.add_event(
        cal, {**jscal_event("broken", "Broken"), "start": "not a date", "id": "broken-1"}
    )
    srv.store.add_event(cal, jscal_event("fine", "Fine"))
    report = w.sync()
    assert w.local_summaries(cal).get("fine") == "Fine"
    assert "broken" not in w.local_summaries(cal)
    assert any(href_for_uid("broken") in e for e in report.errors), report.errors
    assert {e["uid"] for e in srv.store.events.values()} == {"broken", "fine"}


# -- bad local files -----------------------------------------------------------------------------

BAD_FILES: dict[str, bytes] = {
    "not-ical.ics": b"this is not iCalendar at all\n",
    "latin1.ics": ics_event("latin", "Caf\xe9").encode("latin-1"),
    "empty.ics": b"",
    "two-uids.ics": (
        ics_event("two-a", "A").replace("END:VCALENDAR\r\n", "")
        + ics_event("two-b", "B").split("PRODID:-//test//EN\r\n", 1)[1]
    ).encode(),
    "no-uid.ics": ics_event("x", "No UID").replace("UID:x\r\n", "").encode(),
}


def _bad_file_setup(srv: FakeJMAPServer, w: World) -> str:
    cal = srv.store.default_calendar_id
    srv.store.add_event(cal, jscal_event("keep", "Keep"))
    w.sync_clean()
    for name, data in BAD_FILES.items():
        w.write(cal, name, data)
    outside = w.tmp / "outside.ics"
    outside.write_bytes(ics_event("outside", "Outside").encode())
    os.symlink(outside, w.folder(cal) / "link-outside.ics")
    return cal


def test_bad_local_files_are_reported_and_never_pushed_deleted_or_rewritten(
    fake: tuple[FakeJMAPServer, World],
) -> None:
    srv, w = fake
    cal = _bad_file_setup(srv, w)
    # every other item keeps syncing
    w.write_uid(cal, "good", ics_event("good", "Good"))
    keep_id = w.server_event_id("keep")
    srv.store.update_event(keep_id, {"title": "Keep, edited on the server"})
    contents = {name: (w.folder(cal) / name).read_bytes() for name in BAD_FILES}
    stats = {name: (w.folder(cal) / name).stat().st_mtime_ns for name in BAD_FILES}

    report = w.sync()
    for name in BAD_FILES:
        assert any(name in e for e in report.errors), (name, report.errors)
        assert any(name in (e.href or "") or name in e.message for e in w.db.errors()), name
    assert w.server_titles(cal) == {"keep": "Keep, edited on the server", "good": "Good"}
    assert w.summary_of(cal, "keep") == "Keep, edited on the server"
    assert w.summary_of(cal, "good") == "Good"

    # later passes: still reported, still untouched, nothing reaches the server
    w.sync()
    for name, data in contents.items():
        path = w.folder(cal) / name
        assert path.read_bytes() == data, name
        assert path.stat().st_mtime_ns == stats[name], name
    assert (w.tmp / "outside.ics").read_bytes() == ics_event("outside", "Outside").encode()
    assert (w.folder(cal) / "link-outside.ics").is_symlink()
    uids = {e["uid"] for e in srv.store.events.values()}
    assert uids == {"keep", "good"}


def test_a_bad_file_that_was_synced_before_is_frozen_not_deleted_on_the_server(
    fake: tuple[FakeJMAPServer, World],
) -> None:
    srv, w = fake
    cal = srv.store.default_calendar_id
    srv.store.add_event(cal, jscal_event("frozen", "Frozen"))
    w.sync_clean()
    w.write(cal, href_for_uid("frozen"), b"garbage, the editor crashed\n")
    report = w.sync()
    assert any(href_for_uid("frozen") in e for e in report.errors)
    assert w.server_titles(cal) == {"frozen": "Frozen"}
    # a server edit meanwhile does not overwrite the broken file either
    srv.store.update_event(w.server_event_id("frozen"), {"title": "Frozen, edited"})
    w.sync()
    assert (w.folder(cal) / href_for_uid("frozen")).read_bytes() == b"garbage, the editor crashed\n"
    # once fixed, it syncs again
    w.write_uid(cal, "frozen", ics_event("frozen", "Fixed"))
    report = w.sync()
    assert report.errors == [] or all(href_for_uid("frozen") not in e for e in report.errors)
    assert w.server_titles(cal)["frozen"] in {"Fixed", "Frozen, edited"}
    assert "Fixed" in {*w.server_titles(cal).values(), *w.local_summaries(cal).values()}


def test_a_symlink_pointing_outside_is_not_followed_and_is_reported(
    fake: tuple[FakeJMAPServer, World],
) -> None:
    srv, w = fake
    _bad_file_setup(srv, w)
    report = w.sync()
    assert any("link-outside.ics" in e for e in report.errors), report.errors
    assert "outside" not in {e["uid"] for e in srv.store.events.values()}


def test_a_synced_file_replaced_by_a_symlink_outside_is_not_deleted_on_the_server(
    fake: tuple[FakeJMAPServer, World],
) -> None:
    srv, w = fake
    cal = srv.store.default_calendar_id
    srv.store.add_event(cal, jscal_event("victim", "Victim"))
    w.sync_clean()
    path = w.folder(cal) / href_for_uid("victim")
    outside = w.tmp / "elsewhere.ics"
    outside.write_bytes(ics_event("victim", "Elsewhere").encode())
    path.unlink()
    os.symlink(outside, path)
    report = w.sync()
    assert any(href_for_uid("victim") in e for e in report.errors), report.errors
    assert w.server_titles(cal) == {"victim": "Victim"}
    assert path.is_symlink()
    assert outside.read_bytes() == ics_event("victim", "Elsewhere").encode()


# -- crashes ---------------------------------------------------------------------------------------


class Crash(BaseException):
    """The process dies here (not an Exception: nothing may catch it and carry on)."""


_DB_WRITES = (
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
    "upsert_collection",
    "begin_adoption",
    "end_adoption",
)


class Crasher:
    """Dies at step ``at`` of a pass: a step is a client call or a state database write.

    ``mode`` "before": the step never happens. "after": the step happens (the server applied
    the call, the row is committed) and the process dies before it hears of it.
    """

    def __init__(self, w: World, at: int | None, mode: str) -> None:
        self.at = at
        self.mode = mode
        self.steps: list[str] = []
        for name in _CLIENT_CALLS:
            setattr(w.client, name, self._wrap(name, getattr(w.client, name)))
        for name in _DB_WRITES:
            setattr(w.db, name, self._wrap(name, getattr(w.db, name)))

    def _wrap(self, name: str, method: Callable[..., Any]) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            here = len(self.steps)
            self.steps.append(name)
            if here == self.at and self.mode == "before":
                raise Crash(name)
            result = method(*args, **kwargs)
            if here == self.at:
                raise Crash(name)
            return result

        return call


def _crash_and_settle(w: World, at: int, mode: str) -> str:
    """Die at step ``at`` of a pass, restart, and sync until nothing changes; says where."""
    crasher = Crasher(w, at, mode)
    with pytest.raises(Crash):
        w.sync()
    where = f"crash {mode} step {at} ({crasher.steps[at]})"
    w.restart()
    for _ in range(3):
        report = w.sync()
        assert report.errors == [], (where, report.errors)
        if report.changed == 0 and report.collections_created == 0:
            break
    assert report.changed == 0, where
    return where


def _crash_setup(srv: FakeJMAPServer, w: World) -> str:
    cal, _ = _busy_pass_setup(srv, w)
    # plus one conflict (keep-both): both sides edit "e"
    srv.store.update_event(w.server_event_id("e"), {"title": "e server"})
    w.write_uid(cal, "e", ics_event("e", "e local"))
    w.restart()
    return cal


def _check_after_crash(w: World, cal: str, where: str) -> None:
    local = w.local_summaries(cal)
    server = w.server_titles(cal)
    assert local == server, where
    copies = {u: t for u, t in local.items() if u.startswith("e-conflict-")}
    rest = {u: t for u, t in local.items() if u not in copies}
    assert rest == {
        "a": "a server",
        "c": "c local",
        "e": "e server",
        "f": "f server",
        "g": "g local",
    }, where
    assert list(copies.values()) == ["e local"], where


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["before", "after"])
def test_a_crash_at_any_step_ends_with_exactly_one_copy_on_both_sides(
    tmp_path: Path, mode: str
) -> None:
    with fake_world(tmp_path / "probe", "ietf") as (srv, w):
        _crash_setup(srv, w)
        probe = Crasher(w, None, mode)
        w.sync_clean()
        total = len(probe.steps)
    assert total > 10

    for at in range(total):
        with fake_world(tmp_path / f"{mode}{at}", "ietf") as (srv, w):
            cal = _crash_setup(srv, w)
            where = _crash_and_settle(w, at, mode)
            _check_after_crash(w, cal, where)


def _new_local_calendar(w: World) -> Path:
    folder = w.root / "holidays"
    folder.mkdir()
    (folder / "displayname").write_text("Holidays\n")
    (folder / "trip.ics").write_text(ics_event("trip", "Trip"))
    (folder / "fair.ics").write_text(ics_event("fair", "Fair"))
    return folder


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["before", "after"])
def test_a_crash_while_a_new_folder_becomes_a_calendar_makes_one_calendar(
    tmp_path: Path, mode: str
) -> None:
    # Creating the calendar and recording it were two steps: a crash between them made a
    # second "Holidays" on the next run (and mirrored the first, empty, as another folder).
    with fake_world(tmp_path / "probe") as (srv, w):
        w.sync_clean()
        _new_local_calendar(w)
        w.restart()
        probe = Crasher(w, None, mode)
        w.sync_clean()
        total = len(probe.steps)
    assert "create_calendar" in probe.steps

    for at in range(total):
        with fake_world(tmp_path / f"{mode}{at}") as (srv, w):
            w.sync_clean()
            folder = _new_local_calendar(w)
            w.restart()
            where = _crash_and_settle(w, at, mode)
            holidays = [k for k, c in srv.store.calendars.items() if c["name"] == "Holidays"]
            assert len(holidays) == 1, where
            assert w.server_titles(holidays[0]) == {"trip": "Trip", "fair": "Fair"}, where
            assert w.folder(holidays[0]) == folder, where
            folders = sorted(p.name for p in w.root.iterdir() if p.is_dir())
            assert len(folders) == 2, (where, folders)  # the default calendar and this one


@pytest.mark.parametrize("policy", list(ConflictPolicy))
def test_a_crash_right_after_the_server_applied_an_upload_links_instead_of_copying(
    tmp_path: Path, policy: ConflictPolicy
) -> None:
    with fake_world(tmp_path, "stalwart", policy=policy) as (srv, w):
        cal = srv.store.default_calendar_id
        w.sync_clean()
        for n in range(3):
            w.write_uid(cal, f"new{n}", ics_event(f"new{n}", f"new {n}"))
        w.restart()
        set_events = w.client.set_events

        def applied_then_lost(*args: Any, **kwargs: Any) -> Any:
            set_events(*args, **kwargs)
            raise Crash("answer lost")

        w.client.set_events = applied_then_lost  # type: ignore[method-assign]
        with pytest.raises(Crash):
            w.sync()
        assert len(srv.store.events) == 3
        w.restart()
        report = w.sync()
        assert report.errors == []
        assert report.conflicts == 0
        assert _converged(w, cal) == {f"new{n}": f"new {n}" for n in range(3)}
        assert w.sync().changed == 0


# -- per-item failures of server changes -----------------------------------------------------------


def test_a_file_edited_while_the_server_edit_is_being_written_loses_neither_edit(
    fake: tuple[FakeJMAPServer, World], monkeypatch: pytest.MonkeyPatch
) -> None:
    srv, w = fake
    cal = srv.store.default_calendar_id
    event_id = srv.store.add_event(cal, jscal_event("race", "Original"))
    w.sync_clean()
    srv.store.update_event(event_id, {"title": "Server edit"})
    update = VdirCollection.update
    path = w.folder(cal) / href_for_uid("race")  # looked up here: the hook runs in the writer

    def user_saves_first(
        self: VdirCollection, href: str, item: Item, etag: str, *, durable: bool = True
    ) -> str:
        # The user's editor saves in the window between the scan and the download.
        st = path.stat()
        path.write_text(ics_event("race", "Local edit"), encoding="utf-8")
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
        monkeypatch.setattr(VdirCollection, "update", update)
        return update(self, href, item, etag, durable=durable)

    monkeypatch.setattr(VdirCollection, "update", user_saves_first)
    report = w.sync()
    assert any(href_for_uid("race") in e for e in report.errors), report.errors
    assert w.summary_of(cal, "race") == "Local edit"  # not overwritten

    w.sync_clean()
    w.sync_clean()
    titles = set(w.server_titles(cal).values())
    assert titles == set(w.local_summaries(cal).values())
    assert {"Server edit", "Local edit"} <= titles


def test_a_file_edited_while_the_server_deletion_is_applied_keeps_the_edit(
    fake: tuple[FakeJMAPServer, World], monkeypatch: pytest.MonkeyPatch
) -> None:
    srv, w = fake
    cal = srv.store.default_calendar_id
    event_id = srv.store.add_event(cal, jscal_event("race", "Original"))
    w.sync_clean()
    srv.store.destroy_event(event_id)
    delete = VdirCollection.delete

    def user_saves_first(self: VdirCollection, href: str, etag: str) -> None:
        w.write_uid(cal, "race", ics_event("race", "Local edit"))
        monkeypatch.setattr(VdirCollection, "delete", delete)
        delete(self, href, etag)

    monkeypatch.setattr(VdirCollection, "delete", user_saves_first)
    w.sync()
    assert w.summary_of(cal, "race") == "Local edit"
    w.sync_clean()
    assert _converged(w, cal) == {"race": "Local edit"}
    assert w.sync_clean().changed == 0


def test_a_server_event_that_cannot_be_written_is_reported_on_every_pass(
    fake: tuple[FakeJMAPServer, World],
) -> None:
    srv, w = fake
    cal = srv.store.default_calendar_id
    w.sync_clean()
    srv.store.add_event(cal, {**jscal_event("broken", "Broken"), "start": "not a date"})
    srv.store.add_event(cal, jscal_event("fine", "Fine"))
    tokens = []
    for n in range(3):
        # local edits meanwhile must not turn the passes into full listings
        w.write_uid(cal, "local", ics_event("local", f"local {n}"))
        if n == 2:
            w.restart()  # a new process remembers it as well
        report = w.sync()
        assert any(href_for_uid("broken") in e for e in report.errors), report.errors
        assert any(href_for_uid("broken") in e.message for e in w.db.errors())
        assert report.full is False
        tokens.append(_token(w))
    # the object is refused until it changes: it does not hold the state back
    assert None not in tokens
    assert len(set(tokens)) == 3
    assert w.local_summaries(cal) == {"fine": "Fine", "local": "local 2"}
    # once the server fixes it, it arrives
    srv.store.update_event(w.server_event_id("broken"), {"start": "2026-01-05T10:00:00"})
    w.sync_clean()
    assert w.local_summaries(cal) == {"broken": "Broken", "fine": "Fine", "local": "local 2"}


def test_control_characters_in_a_server_title_do_not_reach_the_file(
    fake: tuple[FakeJMAPServer, World],
) -> None:
    srv, w = fake
    cal = srv.store.default_calendar_id
    srv.store.add_event(cal, jscal_event("ctl", "bell\x07 nul\x00 vt\x0b"))
    w.sync()
    for path in w.folder(cal).iterdir():
        text = path.read_bytes().decode("utf-8")
        assert all(c.isprintable() or c in "\r\n\t" for c in text), path.name


# -- the journal of server calls ------------------------------------------------------------------


def _create_applied_then_crash(w: World) -> None:
    set_events = w.client.set_events

    def applied_then_lost(*args: Any, **kwargs: Any) -> Any:
        set_events(*args, **kwargs)
        raise Crash("answer lost")

    w.client.set_events = applied_then_lost  # type: ignore[method-assign]
    with pytest.raises(Crash):
        w.sync()
    w.restart()


def test_a_file_deleted_after_a_crashed_create_is_deleted_on_the_server_too(
    fake: tuple[FakeJMAPServer, World],
) -> None:
    srv, w = fake
    cal = srv.store.default_calendar_id
    w.sync_clean()
    w.write_uid(cal, "gone", ics_event("gone", "Created, then deleted"))
    w.restart()
    _create_applied_then_crash(w)
    assert [e["uid"] for e in srv.store.events.values()] == ["gone"]
    # the user deletes the file before the next pass
    (w.folder(cal) / href_for_uid("gone")).unlink()
    w.sync_clean()
    w.sync_clean()
    assert w.local_summaries(cal) == {}
    assert srv.store.events == {}
    assert w.db.pending_items() == []


def test_a_file_edited_after_a_crashed_create_sends_the_edit(
    fake: tuple[FakeJMAPServer, World],
) -> None:
    srv, w = fake
    cal = srv.store.default_calendar_id
    w.sync_clean()
    w.write_uid(cal, "later", ics_event("later", "First"))
    w.restart()
    _create_applied_then_crash(w)
    w.write_uid(cal, "later", ics_event("later", "Second"))
    report = w.sync_clean()
    assert report.conflicts == 0
    assert _converged(w, cal) == {"later": "Second"}
    assert w.db.pending_items() == []


def test_a_server_edit_after_a_crashed_create_is_downloaded(
    fake: tuple[FakeJMAPServer, World],
) -> None:
    srv, w = fake
    cal = srv.store.default_calendar_id
    w.sync_clean()
    w.write_uid(cal, "theirs", ics_event("theirs", "Ours"))
    w.restart()
    _create_applied_then_crash(w)
    srv.store.update_event(w.server_event_id("theirs"), {"title": "Theirs"})
    w.sync_clean()
    assert _converged(w, cal) == {"theirs": "Theirs"}
    assert w.sync_clean().changed == 0
    assert w.db.pending_items() == []


# -- shutdown between two items ----------------------------------------------------------------


def test_a_stop_requested_mid_pass_ends_it_between_items_and_the_next_pass_finishes(
    fake: tuple[FakeJMAPServer, World],
) -> None:
    srv, w = fake
    cal = srv.store.default_calendar_id
    w.sync_clean()
    for n in range(5):
        srv.store.add_event(cal, jscal_event(f"s{n}", f"s{n}"))
    old_token = _token(w)
    write_download = w.engine._write_download

    def then_stop(*args: Any, **kwargs: Any) -> Any:
        result = write_download(*args, **kwargs)
        w.engine.stop_requested.set()
        return result

    w.engine._write_download = then_stop  # type: ignore[method-assign]
    with pytest.raises(SyncInterrupted):
        w.sync()
    assert len(w.files(cal)) == 1
    # The file written before the stop is recorded too, not left for the next pass to link.
    [coll_row] = [r for r in w.db.collections() if r.kind == "calendar"]
    assert len(w.db.items(coll_row.id)) == 1
    assert _token(w) in (old_token, None)  # never past what was applied
    w.engine._write_download = write_download  # type: ignore[method-assign]
    w.engine.stop_requested.clear()
    report = w.sync_clean()
    assert report.downloaded == 4
    assert _converged(w, cal) == {f"s{n}": f"s{n}" for n in range(5)}


def test_a_crash_after_an_upload_then_a_server_deletion_deletes_the_file(
    fake: tuple[FakeJMAPServer, World],
) -> None:
    srv, w = fake
    cal = srv.store.default_calendar_id
    w.sync_clean()
    w.write_uid(cal, "brief", ics_event("brief", "Brief"))
    w.restart()
    finish_create = w.db.finish_create

    def recorded_then_crash(*args: Any, **kwargs: Any) -> Any:
        finish_create(*args, **kwargs)
        raise Crash("after finish_create")

    w.db.finish_create = recorded_then_crash  # type: ignore[method-assign]
    with pytest.raises(Crash):
        w.sync()
    srv.store.destroy_event(w.server_event_id("brief"))
    w.restart()
    w.sync_clean()
    assert w.local_summaries(cal) == {}
    assert srv.store.events == {}


@pytest.mark.parametrize("policy", list(ConflictPolicy))
def test_an_update_applied_with_its_answer_lost_then_edited_again_sends_the_newest(
    tmp_path: Path, policy: ConflictPolicy
) -> None:
    with fake_world(tmp_path, "ietf", policy=policy) as (srv, w):
        cal = srv.store.default_calendar_id
        srv.store.add_event(cal, jscal_event("ev", "v1"))
        w.sync_clean()
        w.write_uid(cal, "ev", ics_event("ev", "v2"))
        w.restart()
        _create_applied_then_crash(w)  # here: the update's answer is lost
        assert w.server_titles(cal) == {"ev": "v2"}
        w.write_uid(cal, "ev", ics_event("ev", "v3"))
        report = w.sync_clean()
        # The journal holds the text of v2, so the server's v2 is recognised as ours under
        # every policy and v3 is a plain upload.
        assert report.conflicts == 0
        assert w.db.conflicts() == []
        assert _converged(w, cal) == {"ev": "v3"}
        assert w.sync_clean().changed == 0


def test_an_update_applied_with_its_answer_lost_links_on_restart(
    fake: tuple[FakeJMAPServer, World],
) -> None:
    srv, w = fake
    cal = srv.store.default_calendar_id
    srv.store.add_event(cal, jscal_event("ev", "v1"))
    w.sync_clean()
    w.write_uid(cal, "ev", ics_event("ev", "v2"))
    w.restart()
    _create_applied_then_crash(w)
    report = w.sync_clean()
    assert report.conflicts == 0
    assert _converged(w, cal) == {"ev": "v2"}
    assert w.db.pending_items() == []


def test_an_update_whose_answer_was_lost_and_a_foreign_edit_meanwhile_is_a_conflict(
    fake: tuple[FakeJMAPServer, World],
) -> None:
    srv, w = fake
    cal = srv.store.default_calendar_id
    srv.store.add_event(cal, jscal_event("ev", "v1"))
    w.sync_clean()
    w.write_uid(cal, "ev", ics_event("ev", "v2"))
    w.restart()
    _create_applied_then_crash(w)
    srv.store.update_event(w.server_event_id("ev"), {"title": "theirs"})
    report = w.sync_clean()
    # keep-both: nothing is lost, whoever was last
    assert report.conflicts == 1
    assert sorted(_converged(w, cal).values()) == ["theirs", "v2"]


def test_a_crash_after_a_download_then_a_server_deletion_deletes_the_file(
    fake: tuple[FakeJMAPServer, World],
) -> None:
    # The feed from the old token may leave out the object altogether (created and destroyed
    # since, RFC 8620 §5.2), but its file was written and recorded before the crash.
    srv, w = fake
    cal = srv.store.default_calendar_id
    w.sync_clean()
    srv.store.add_event(cal, jscal_event("fleeting", "Fleeting"))
    w.restart()
    record_synced_many = w.db.record_synced_many

    def recorded_then_crash(*args: Any, **kwargs: Any) -> Any:
        record_synced_many(*args, **kwargs)
        raise Crash("after record_synced_many")

    w.db.record_synced_many = recorded_then_crash  # type: ignore[method-assign]
    with pytest.raises(Crash):
        w.sync()
    assert w.local_uids(cal) == ["fleeting"]
    srv.store.destroy_event(w.server_event_id("fleeting"))
    w.restart()
    w.sync_clean()
    assert w.local_summaries(cal) == {}
    assert srv.store.events == {}


# -- the download journal: a chunk written, the process dies before its rows are committed --------


def _crash_before_recording_downloads(srv: FakeJMAPServer, w: World, n: int) -> str:
    cal = srv.store.default_calendar_id
    w.sync_clean()
    for k in range(n):
        srv.store.add_event(cal, jscal_event(f"chunk{k}", f"chunk {k} v1"))
    w.restart()

    def crash(*args: Any, **kwargs: Any) -> Any:
        raise Crash("before record_synced_many")

    w.db.record_synced_many = crash  # type: ignore[method-assign]
    with pytest.raises(Crash):
        w.sync()
    # Every file of the chunk is on disk, no row says so.
    assert len(w.local_uids(cal)) == n
    w.restart()
    return cal


def test_files_of_an_unrecorded_chunk_then_server_edits_are_downloads_not_conflicts(
    fake: tuple[FakeJMAPServer, World],
) -> None:
    # Before the journal, each file the crash left unrecorded was taken for a local item: after
    # a server edit, every one became a keep-both conflict copy of a version nobody edited.
    srv, w = fake
    cal = _crash_before_recording_downloads(srv, w, 5)
    for k in range(5):
        srv.store.update_event(w.server_event_id(f"chunk{k}"), {"title": f"chunk {k} v2"})
    report = w.sync_clean()
    assert report.conflicts == 0
    assert w.local_summaries(cal) == {f"chunk{k}": f"chunk {k} v2" for k in range(5)}
    assert w.server_titles(cal) == w.local_summaries(cal)
    assert w.sync().changed == 0


def test_files_of_an_unrecorded_chunk_whose_events_the_server_deleted_are_deleted(
    fake: tuple[FakeJMAPServer, World],
) -> None:
    # Before the journal, such a file was uploaded again as a new local item.
    srv, w = fake
    cal = _crash_before_recording_downloads(srv, w, 3)
    srv.store.destroy_event(w.server_event_id("chunk1"))
    w.sync_clean()
    assert w.local_summaries(cal) == {"chunk0": "chunk 0 v1", "chunk2": "chunk 2 v1"}
    assert w.server_titles(cal) == w.local_summaries(cal)


def test_a_file_of_an_unrecorded_chunk_edited_before_the_restart_loses_nothing(
    fake: tuple[FakeJMAPServer, World],
) -> None:
    # A file that differs from the journaled text may be our file edited since, or a file the
    # user made under that name first (the download then never happened): which one cannot be
    # told, so it is a conflict, and keep-both keeps both versions.
    srv, w = fake
    cal = _crash_before_recording_downloads(srv, w, 2)
    w.write_uid(cal, "chunk0", ics_event("chunk0", "chunk 0 local"))
    w.sync_clean()
    titles = sorted(w.server_titles(cal).values())
    assert titles == ["chunk 0 local", "chunk 0 v1", "chunk 1 v1"]
    assert sorted(w.local_summaries(cal).values()) == titles
    assert w.sync().changed == 0
