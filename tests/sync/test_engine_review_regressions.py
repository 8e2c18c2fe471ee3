"""Regression tests for sync engine bugs found in review (each fails on the code before the fix).

- A calendar folder swapped for a symlink in the middle of a pass was written through.
- Switching include/exclude back to an earlier selection never brought its calendars back.
- A crash after a removed folder was made again left that folder empty for good.
- A newly selected calendar never got the events it already had on the server.
- A folder adopted under include/exclude was taken for a calendar deleted on the server.
- A stale stored session resource was never replaced by one-shot processes.
- Journaled downloads of a calendar deleted on the server blocked the deletion of its folder.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

import tests.fakeserver.api as fake_api
import tests.fakeserver.server as fake_server
from jmapsyncd.state.rows import CollectionRow
from jmapsyncd.sync.engine import SyncEngine, SyncReport
from jmapsyncd.sync.plan import Action
from jmapsyncd.vdir import VdirCollection
from tests.fakeserver.session import build_session
from tests.sync.test_engine_faults import Crash
from tests.sync.test_engine_support import World, fake_world, ics_event, jscal_event


def _select(w: World, include: Sequence[str] = (), exclude: Sequence[str] = ()) -> None:
    """Give the world's process an engine with this calendar selection (``include``/``exclude``)."""
    w.engine = SyncEngine(w.client, w.vdir, w.db, policy=w.policy, include=include, exclude=exclude)
    w.engine.on_close(w.client.close)
    w.engine.on_close(w.db.close)


def _crash(*args: object, **kwargs: object) -> Any:
    raise Crash("the process dies here")


def test_a_calendar_folder_swapped_for_a_symlink_mid_pass_is_not_written_through(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The folder was checked at scan time only: a download went through the symlink, outside
    # the vdir root.
    outside = tmp_path / "outside"
    outside.mkdir()
    with fake_world(tmp_path / "world") as (srv, w):
        cal = srv.store.default_calendar_id
        w.sync_clean()
        folder = w.folder(cal)
        srv.store.add_event(cal, jscal_event("victim", "Server event"))
        w.restart()
        execute = SyncEngine._execute

        def swap_then_execute(
            self: SyncEngine,
            kind: Any,
            row: CollectionRow,
            coll: VdirCollection,
            fetched: dict[str, dict[str, Any]],
            actions: list[Action],
            report: SyncReport,
        ) -> bool:
            # After the scan, someone moves the folder away and links it to elsewhere.
            if actions and not folder.is_symlink():
                os.rename(folder, tmp_path / "moved")
                os.symlink(outside, folder)
            return execute(self, kind, row, coll, fetched, actions, report)

        monkeypatch.setattr(SyncEngine, "_execute", swap_then_execute)
        w.sync()
        monkeypatch.undo()
        assert folder.is_symlink(), "the folder was never swapped: the test checks nothing"
        assert list(outside.iterdir()) == [], "written outside the vdir root"


def test_switching_back_to_an_earlier_selection_brings_its_calendars_back(
    tmp_path: Path,
) -> None:
    # The earlier selection's stale state token was reused: the calendar it had, removed
    # meanwhile, never came back.
    with fake_world(tmp_path) as (srv, w):
        srv.store.update_calendar(srv.store.default_calendar_id, {"name": "Work"})
        extra = srv.store.add_calendar("Extra")
        w.restart()
        _select(w, include=["Work", "Extra"])
        w.sync_clean()
        assert w.folder(extra).is_dir()
        w.restart()
        _select(w, include=["Work"])
        w.sync_clean()
        assert not w.folder(extra).exists()
        w.restart()
        _select(w, include=["Work", "Extra"])
        w.sync_clean()
        assert w.folder(extra).is_dir()


def test_a_crash_after_a_removed_folder_was_made_again_does_not_leave_it_empty(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The folder was made again before its events were listed: after a crash in between, the
    # next process took the empty folder for an up-to-date one.
    with fake_world(tmp_path) as (srv, w):
        cal = srv.store.default_calendar_id
        for k in range(3):
            srv.store.add_event(cal, jscal_event(f"r{k}", f"r {k}"))
        w.sync_clean()
        assert w.local_uids(cal) == ["r0", "r1", "r2"]
        shutil.rmtree(w.folder(cal))  # the user removes the folder: it is to be filled anew
        w.restart()
        monkeypatch.setattr(w.client, "get_all_events", _crash)
        with pytest.raises(Crash):
            w.sync()
        w.restart()
        w.sync_clean()
        assert w.local_uids(cal) == ["r0", "r1", "r2"]


def test_a_newly_selected_calendar_gets_its_existing_events(tmp_path: Path) -> None:
    # Only changes since the last token were pulled: events the calendar had before it was
    # selected were never downloaded.
    with fake_world(tmp_path) as (srv, w):
        cal = srv.store.default_calendar_id
        other = srv.store.add_calendar("Other")
        srv.store.add_event(other, jscal_event("old", "Old event in Other"))
        w.restart()
        _select(w, exclude=["Other"])
        w.sync_clean()
        srv.store.add_event(cal, jscal_event("later", "A later change"))
        w.sync_clean()
        w.restart()
        _select(w)  # Other is selected now
        w.sync_clean()
        assert w.local_summaries(other) == {"old": "Old event in Other"}


def test_a_folder_adopted_under_include_is_not_mistaken_for_a_server_deletion(
    tmp_path: Path,
) -> None:
    # A local folder outside the selection was recorded, then, missing from the server's
    # selected calendars, taken for a calendar deleted there.
    with fake_world(tmp_path) as (srv, w):
        srv.store.update_calendar(srv.store.default_calendar_id, {"name": "Work"})
        w.restart()
        _select(w, include=["Work"])
        w.sync_clean()
        mine = w.root / "mine"
        mine.mkdir()
        (mine / "displayname").write_text("Mine")
        (mine / "a.ics").write_bytes(ics_event("a", "mine a").encode())
        first = w.sync()
        second = w.sync()
        assert first.errors == []
        assert second.errors == []
        assert (mine / "a.ics").read_bytes() == ics_event("a", "mine a").encode()


def test_a_stale_stored_session_is_replaced_by_one_shot_processes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Each process started from the stored session resource and never fetched it again:
    # capabilities the server added (here JMAP Tasks) were never seen.
    with fake_world(tmp_path) as (srv, w):
        w.sync_clean()
        assert w.db.get_session() is not None
        # The server starts offering JMAP Tasks: its session resource and sessionState change.
        srv.tasks = True
        srv._core.tasks = True
        monkeypatch.setattr(fake_api, "_session_state", lambda core: "1")

        def build_changed_session(*args: Any, **kwargs: Any) -> dict[str, Any]:
            return {**build_session(*args, **kwargs), "state": "1"}

        monkeypatch.setattr(fake_server, "build_session", build_changed_session)
        for _ in range(3):
            w.restart()
            w.sync_clean()
        assert "tasklist" in {row.kind for row in w.db.collections()}
        stored = w.db.get_session()
        assert stored is not None
        assert stored["session"]["state"] == "1"


def test_journaled_downloads_of_a_calendar_deleted_on_the_server_do_not_block_its_deletion(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Files downloaded but not yet recorded (a crash in between) were taken for unsynced local
    # edits: the folder of the deleted calendar was kept, with an error on every pass.
    with fake_world(tmp_path) as (srv, w):
        cal = srv.store.add_calendar("Doomed")
        w.restart()
        w.sync_clean()
        for k in range(3):
            srv.store.add_event(cal, jscal_event(f"d{k}", f"d {k}"))
        w.restart()
        monkeypatch.setattr(w.db, "record_synced_many", _crash)
        with pytest.raises(Crash):
            w.sync()
        w.restart()
        folder = w.folder(cal)
        assert folder.is_dir()
        srv.store.destroy_calendar(cal)
        w.sync_clean()
        assert not folder.exists()
        assert [row for row in w.db.collections() if row.jmap_id == cal] == []
