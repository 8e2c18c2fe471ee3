"""The sync engine end to end: one pass brings the account and the vdir together.

The round trip runs on every server we know (real Cyrus 3.6 and 3.10, the fake server's
Stalwart and IETF dialects); the rest runs on the fake server, whose store can be edited
directly.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from jmapsyncd.vdir import extract_uid, href_for_uid, safe_name
from tests.sync.test_engine_support import (
    SERVERS,
    World,
    fake_world,
    ics_event,
    ics_task,
    jscal_event,
    server_world,
)


@pytest.fixture(params=SERVERS)
def world(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[World]:
    """An engine against one server kind, fresh account, empty vdir."""
    with server_world(request, tmp_path) as w:
        yield w


# -- the round trip ----------------------------------------------------------------------------


def test_round_trip_between_server_and_vdir(world: World) -> None:
    cal = world.server.default_calendar()
    world.sync_clean()

    # created on the server -> the file appears
    event_id = world.server.add_event(cal, jscal_event("rt-server", "From the server"))
    report = world.sync_clean()
    assert report.downloaded == 1
    assert world.local_summaries(cal) == {"rt-server": "From the server"}

    # a new file -> on the server
    world.write_uid(cal, "rt-local", ics_event("rt-local", "From the vdir"))
    report = world.sync_clean()
    assert report.uploaded == 1
    assert world.server_titles(cal) == {
        "rt-server": "From the server",
        "rt-local": "From the vdir",
    }

    # the file edited -> the server follows
    world.write_uid(cal, "rt-local", ics_event("rt-local", "Edited in the vdir"))
    report = world.sync_clean()
    assert report.uploaded == 1
    assert world.server_titles(cal)["rt-local"] == "Edited in the vdir"

    # the file deleted -> deleted on the server
    (world.folder(cal) / href_for_uid("rt-local")).unlink()
    report = world.sync_clean()
    assert report.deleted_remote == 1
    assert world.server_titles(cal) == {"rt-server": "From the server"}

    # edited on the server -> the file follows
    world.server.update_event(event_id, {"title": "Edited on the server"})
    report = world.sync_clean()
    assert report.downloaded == 1
    assert world.local_summaries(cal) == {"rt-server": "Edited on the server"}

    # destroyed on the server -> the file goes
    world.server.destroy_event(event_id)
    report = world.sync_clean()
    assert report.deleted_local == 1
    assert world.local_summaries(cal) == {}

    # nothing changed -> nothing to do
    report = world.sync_clean()
    assert report.changed == 0
    assert report.full is False


def test_second_pass_after_a_download_and_an_upload_is_a_no_op(world: World) -> None:
    cal = world.server.default_calendar()
    world.server.add_event(cal, jscal_event("noop-a", "A"))
    world.sync_clean()
    world.write_uid(cal, "noop-b", ics_event("noop-b", "B"))
    world.sync_clean()
    before = world.files(cal)
    report = world.sync_clean()
    assert (report.changed, report.conflicts) == (0, 0)
    assert world.files(cal) == before
    assert world.engine.db.conflicts() == []


def test_restart_resumes_with_an_incremental_pass(world: World) -> None:
    cal = world.server.default_calendar()
    world.server.add_event(cal, jscal_event("restart-a", "A"))
    assert world.sync_clean().full is True
    world.restart()
    world.server.add_event(cal, jscal_event("restart-b", "B"))
    report = world.sync_clean()
    assert report.full is False
    assert report.downloaded == 1
    assert world.local_summaries(cal) == {"restart-a": "A", "restart-b": "B"}


# -- tasks -------------------------------------------------------------------------------------


@pytest.mark.parametrize("dialect", ["ietf", "stalwart"])
def test_tasks_sync_both_ways_in_task_list_folders(tmp_path: Path, dialect: str) -> None:
    # Stalwart numbers calendars and task lists on their own: the first of each is "b".
    with fake_world(tmp_path, dialect, tasks=True) as (srv, w):
        task_list = srv.store.default_task_list_id
        task_id = srv.store.add_task(task_list, {"@type": "Task", "uid": "t-srv", "title": "Buy"})
        w.sync_clean()
        assert w.local_summaries(task_list, "tasklist") == {"t-srv": "Buy"}
        text = w.files(task_list, "tasklist")[href_for_uid("t-srv")]
        assert "BEGIN:VTODO" in text
        # tasks never land in a calendar folder, and the two folders differ
        calendar = srv.store.default_calendar_id
        assert w.local_uids(calendar) == []
        assert w.folder(calendar) != w.folder(task_list, "tasklist")

        w.write_uid(task_list, "t-local", ics_task("t-local", "Call"), "tasklist")
        assert w.sync_clean().uploaded == 1
        titles = {t["uid"]: t.get("title") for t in srv.store.tasks.values()}
        assert titles == {"t-srv": "Buy", "t-local": "Call"}
        new = next(t for t in srv.store.tasks.values() if t["uid"] == "t-local")
        assert new["taskListId"] == task_list

        srv.store.update_task(task_id, {"title": "Buy milk"})
        w.write_uid(task_list, "t-local", ics_task("t-local", "Call mum"), "tasklist")
        w.sync_clean()
        assert w.local_summaries(task_list, "tasklist") == {
            "t-srv": "Buy milk",
            "t-local": "Call mum",
        }
        titles = {t["uid"]: t.get("title") for t in srv.store.tasks.values()}
        assert titles == {"t-srv": "Buy milk", "t-local": "Call mum"}

        (w.folder(task_list, "tasklist") / href_for_uid("t-srv")).unlink()
        assert w.sync_clean().deleted_remote == 1
        assert [t["uid"] for t in srv.store.tasks.values()] == ["t-local"]

        # a removed task-list folder comes back under the same name
        folder = w.folder(task_list, "tasklist")
        for path in folder.iterdir():
            path.unlink()
        folder.rmdir()
        w.sync_clean()
        assert w.local_summaries(task_list, "tasklist") == {"t-local": "Call mum"}
        assert w.folder(task_list, "tasklist") == folder


# -- collections -------------------------------------------------------------------------------


def test_calendar_rename_and_recolour_on_the_server_update_the_folder(world: World) -> None:
    cal = world.server.add_calendar("Work")
    world.server.update_calendar(cal, {"color": "#112233"})
    world.sync_clean()
    folder = world.folder(cal)
    assert (folder / "displayname").read_text().strip() == "Work"
    assert (folder / "color").read_text().strip().upper() == "#112233"

    world.server.update_calendar(cal, {"name": "Job", "color": "#aabbcc"})
    world.sync_clean()
    assert (folder / "displayname").read_text().strip() == "Job"
    assert (folder / "color").read_text().strip().upper() == "#AABBCC"


def test_local_displayname_edit_renames_the_calendar_on_the_server(world: World) -> None:
    cal = world.server.add_calendar("Work")
    world.sync_clean()
    (world.folder(cal) / "displayname").write_text("Office\n")
    world.sync_clean()
    assert world.server.calendars()[cal]["name"] == "Office"
    # and it stays that way
    world.sync_clean()
    assert world.server.calendars()[cal]["name"] == "Office"
    assert (world.folder(cal) / "displayname").read_text().strip() == "Office"


def test_new_local_folder_with_a_displayname_becomes_a_calendar(world: World) -> None:
    world.sync_clean()
    folder = world.root / "my-new-calendar"
    folder.mkdir()
    (folder / "displayname").write_text("Holidays\n")
    (folder / "color").write_text("#00FF00\n")
    (folder / "trip.ics").write_text(ics_event("trip", "Trip"))
    report = world.sync_clean()
    assert report.collections_created == 1
    [(cal_id, cal)] = [
        (k, c) for k, c in world.server.calendars().items() if c["name"] == "Holidays"
    ]
    assert str(cal.get("color", "")).upper() == "#00FF00"
    assert world.server_titles(cal_id) == {"trip": "Trip"}
    # the folder keeps its name and is not mirrored a second time
    assert sorted(p.name for p in world.root.iterdir()).count("my-new-calendar") == 1
    assert world.folder(cal_id) == folder
    report = world.sync_clean()
    assert report.changed == 0
    assert report.collections_created == 0
    holidays = [c for c in world.server.calendars().values() if c["name"] == "Holidays"]
    assert len(holidays) == 1


def test_new_local_folder_without_a_displayname_is_left_alone(tmp_path: Path) -> None:
    with fake_world(tmp_path, "ietf") as (srv, w):
        w.sync_clean()
        folder = w.root / "scratch"
        folder.mkdir()
        (folder / "x.ics").write_text(ics_event("x", "X"))
        before = dict(srv.store.calendars)
        w.sync_clean()
        assert srv.store.calendars.keys() == before.keys()
        assert srv.store.events == {}


def test_calendar_deleted_on_the_server_removes_its_folder(world: World) -> None:
    cal = world.server.add_calendar("Old")
    world.server.add_event(cal, jscal_event("old-1", "One"))
    world.sync_clean()
    folder = world.folder(cal)
    assert folder.is_dir()
    world.server.destroy_calendar(cal)
    report = world.sync_clean()
    assert report.collections_deleted == 1
    assert not folder.exists()
    assert all(c.jmap_id != cal for c in world.db.collections())


def test_calendar_deleted_on_the_server_keeps_a_folder_with_unsynced_edits(
    world: World,
) -> None:
    cal = world.server.add_calendar("Old")
    world.server.add_event(cal, jscal_event("old-1", "One"))
    world.sync_clean()
    world.write_uid(cal, "old-1", ics_event("old-1", "One, edited"))
    world.write_uid(cal, "old-2", ics_event("old-2", "Two, new"))
    world.server.destroy_calendar(cal)
    report = world.sync()
    assert any("unsynced" in e for e in report.errors), report.errors
    assert world.local_summaries(cal) == {"old-1": "One, edited", "old-2": "Two, new"}
    assert any("unsynced" in e.message for e in world.db.errors())
    # reported again, not deleted later either (the calendar state is not stored past the
    # deletion while the folder stays, so the next pass sees the deletion again)
    report = world.sync()
    assert any("unsynced" in e for e in report.errors), report.errors
    assert world.local_summaries(cal) == {"old-1": "One, edited", "old-2": "Two, new"}
    assert len(world.db.errors()) == 1


def test_event_moved_between_calendars_on_the_server_moves_between_folders(
    world: World,
) -> None:
    home = world.server.default_calendar()
    work = world.server.add_calendar("Work")
    event_id = world.server.add_event(home, jscal_event("mover", "Moving"))
    world.sync_clean()
    assert world.local_uids(home) == ["mover"]
    world.server.update_event(event_id, {"calendarIds": {work: True}})
    world.sync_clean()
    assert world.local_uids(home) == []
    assert world.local_summaries(work) == {"mover": "Moving"}
    # the server still has it exactly once
    assert [e["uid"] for e in world.server.events().values()] == ["mover"]
    assert world.sync_clean().changed == 0


def test_event_moved_between_folders_locally_moves_on_the_server(world: World) -> None:
    home = world.server.default_calendar()
    work = world.server.add_calendar("Work")
    world.server.add_event(home, jscal_event("mover", "Moving"))
    world.sync_clean()
    src = world.folder(home) / href_for_uid("mover")
    src.rename(world.folder(work) / href_for_uid("mover"))
    world.sync_clean()
    events = list(world.server.events().values())
    assert [(e["uid"], list(e["calendarIds"])) for e in events] == [("mover", [work])]
    assert world.local_uids(home) == []
    assert world.local_uids(work) == ["mover"]
    assert world.sync_clean().changed == 0


def test_folder_names_follow_safe_names_of_calendar_ids(tmp_path: Path) -> None:
    with fake_world(tmp_path, "stalwart") as (srv, w):
        cal = srv.store.add_calendar("Plain")
        w.sync_clean()
        assert (w.root / safe_name(cal)).is_dir()
        files = w.files(cal)
        assert all(extract_uid(t) for t in files.values())


def test_new_local_folder_holding_tasks_becomes_a_task_list(tmp_path: Path) -> None:
    with fake_world(tmp_path, "stalwart", tasks=True) as (srv, w):
        w.sync_clean()
        folder = w.root / "chores"
        folder.mkdir()
        (folder / "displayname").write_text("Chores\n")
        (folder / "dishes.ics").write_text(ics_task("dishes", "Dishes"))
        report = w.sync_clean()
        assert report.collections_created == 1
        [list_id] = [k for k, t in srv.store.task_lists.items() if t["name"] == "Chores"]
        assert [(t["uid"], t["taskListId"]) for t in srv.store.tasks.values()] == [
            ("dishes", list_id)
        ]
        assert not any(c["name"] == "Chores" for c in srv.store.calendars.values())
        assert w.sync_clean().changed == 0


def test_new_local_folder_holding_tasks_without_server_tasks_is_reported(tmp_path: Path) -> None:
    with fake_world(tmp_path, "ietf", tasks=False) as (srv, w):
        w.sync_clean()
        folder = w.root / "chores"
        folder.mkdir()
        (folder / "displayname").write_text("Chores\n")
        (folder / "dishes.ics").write_text(ics_task("dishes", "Dishes"))
        calendars = set(srv.store.calendars)
        report = w.sync()
        assert any("chores" in e for e in report.errors), report.errors
        assert set(srv.store.calendars) == calendars
        assert (folder / "dishes.ics").exists()


def test_a_removed_calendar_folder_is_downloaded_again_not_deleted_on_the_server(
    tmp_path: Path,
) -> None:
    with fake_world(tmp_path, "ietf") as (srv, w):
        cal = srv.store.default_calendar_id
        for uid in ("a", "b"):
            srv.store.add_event(cal, jscal_event(uid, uid))
        w.sync_clean()
        for path in w.folder(cal).iterdir():
            path.unlink()
        w.folder(cal).rmdir()
        w.sync_clean()
        assert w.local_summaries(cal) == {"a": "a", "b": "b"}
        assert w.server_titles(cal) == {"a": "a", "b": "b"}
        assert w.sync_clean().changed == 0


def test_an_uploaded_event_deleted_on_the_server_before_the_next_pass_is_deleted_locally(
    world: World,
) -> None:
    # The change feed from before our create may leave out an id created and destroyed
    # since (RFC 8620 §5.2); the file must go all the same.
    cal = world.server.default_calendar()
    world.sync_clean()
    world.write_uid(cal, "short-lived", ics_event("short-lived", "Short-lived"))
    assert world.sync_clean().uploaded == 1
    world.server.destroy_event(world.server_event_id("short-lived"))
    report = world.sync_clean()
    assert report.deleted_local == 1
    assert world.local_summaries(cal) == {}
    assert world.server_titles(cal) == {}


def test_an_uploaded_event_edited_on_the_server_before_the_next_pass_is_downloaded(
    world: World,
) -> None:
    cal = world.server.default_calendar()
    world.sync_clean()
    world.write_uid(cal, "fresh", ics_event("fresh", "Fresh"))
    world.sync_clean()
    world.server.update_event(world.server_event_id("fresh"), {"title": "Fresh, edited"})
    assert world.sync_clean().downloaded == 1
    assert world.local_summaries(cal) == {"fresh": "Fresh, edited"}
