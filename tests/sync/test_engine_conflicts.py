"""An item changed on both sides between two passes, under each conflict policy.

``keep-both`` loses nothing: the server version stays in place and the local version becomes a
new item with a new UID, uploaded and recorded as a conflict. ``server-wins`` and ``local-wins``
drop one side's edit on purpose. Deleted on one side and edited on the other: the edit wins.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from jmapsyncd.sync.engine import same_content
from jmapsyncd.sync.plan import ConflictPolicy
from jmapsyncd.vdir import href_for_uid
from tests.sync.test_engine_support import (
    SERVERS,
    World,
    ics_event,
    jscal_event,
    server_world,
)


@pytest.fixture(params=SERVERS)
def world(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[World]:
    with server_world(request, tmp_path) as w:
        yield w


def _edited_on_both_sides(world: World, policy: ConflictPolicy) -> str:
    """One synced event, then edited on the server ("Server") and in the vdir ("Local")."""
    cal = world.server.default_calendar()
    world.restart(policy)
    event_id = world.server.add_event(cal, jscal_event("both", "Original"))
    world.sync_clean()
    world.server.update_event(event_id, {"title": "Server"})
    world.write_uid(cal, "both", ics_event("both", "Local"))
    return cal


def test_keep_both_keeps_the_server_version_in_place_and_the_local_one_as_a_copy(
    world: World,
) -> None:
    cal = _edited_on_both_sides(world, ConflictPolicy.KEEP_BOTH)
    report = world.sync_clean()
    assert report.conflicts == 1

    local = world.local_summaries(cal)
    server = world.server_titles(cal)
    assert local["both"] == "Server"
    [copy_uid] = [u for u in local if u != "both"]
    assert local[copy_uid] == "Local"
    assert server == local

    [conflict] = world.db.conflicts()
    assert conflict.href == href_for_uid("both")
    assert conflict.copy_href == href_for_uid(copy_uid)
    assert conflict.resolution == "keep-both"

    # settled: nothing more to do, and no second copy
    report = world.sync_clean()
    assert (report.changed, report.conflicts) == (0, 0)
    assert world.local_summaries(cal) == local
    assert world.server_titles(cal) == server


def test_server_wins_drops_the_local_edit(world: World) -> None:
    cal = _edited_on_both_sides(world, ConflictPolicy.SERVER_WINS)
    report = world.sync_clean()
    assert report.conflicts == 1
    assert world.local_summaries(cal) == {"both": "Server"}
    assert world.server_titles(cal) == {"both": "Server"}
    assert world.sync_clean().changed == 0


def test_local_wins_overwrites_the_server_edit(world: World) -> None:
    cal = _edited_on_both_sides(world, ConflictPolicy.LOCAL_WINS)
    report = world.sync_clean()
    assert report.conflicts == 1
    assert world.local_summaries(cal) == {"both": "Local"}
    assert world.server_titles(cal) == {"both": "Local"}
    assert world.sync_clean().changed == 0


def test_deleted_locally_and_edited_on_the_server_the_edit_wins(world: World) -> None:
    cal = world.server.default_calendar()
    event_id = world.server.add_event(cal, jscal_event("del-local", "Original"))
    world.sync_clean()
    (world.folder(cal) / href_for_uid("del-local")).unlink()
    world.server.update_event(event_id, {"title": "Edited on the server"})
    world.sync_clean()
    assert world.local_summaries(cal) == {"del-local": "Edited on the server"}
    assert world.server_titles(cal) == {"del-local": "Edited on the server"}
    assert world.sync_clean().changed == 0


def test_deleted_on_the_server_and_edited_locally_the_edit_wins(world: World) -> None:
    cal = world.server.default_calendar()
    event_id = world.server.add_event(cal, jscal_event("del-server", "Original"))
    world.sync_clean()
    world.server.destroy_event(event_id)
    world.write_uid(cal, "del-server", ics_event("del-server", "Edited in the vdir"))
    world.sync_clean()
    assert world.server_titles(cal) == {"del-server": "Edited in the vdir"}
    assert world.local_summaries(cal) == {"del-server": "Edited in the vdir"}
    assert world.sync_clean().changed == 0


def test_edited_identically_on_both_sides_is_no_conflict(world: World) -> None:
    cal = world.server.default_calendar()
    event_id = world.server.add_event(cal, jscal_event("same", "Original"))
    world.sync_clean()
    world.server.update_event(event_id, {"title": "Same edit"})
    world.write_uid(cal, "same", ics_event("same", "Same edit"))
    report = world.sync_clean()
    assert report.conflicts == 0
    assert world.db.conflicts() == []
    assert world.local_summaries(cal) == {"same": "Same edit"}
    assert world.server_titles(cal) == {"same": "Same edit"}
    assert world.sync_clean().changed == 0


def test_created_independently_on_both_sides_with_the_same_uid_and_content_is_linked(
    world: World,
) -> None:
    cal = world.server.default_calendar()
    world.sync_clean()
    world.server.add_event(cal, jscal_event("twin", "Twin"))
    world.write_uid(cal, "twin", ics_event("twin", "Twin"))
    report = world.sync_clean()
    assert report.conflicts == 0
    assert world.local_summaries(cal) == {"twin": "Twin"}
    assert world.server_titles(cal) == {"twin": "Twin"}
    assert world.sync_clean().changed == 0


def test_created_independently_with_the_same_uid_and_different_content_keeps_both(
    world: World,
) -> None:
    cal = world.server.default_calendar()
    world.sync_clean()
    world.server.add_event(cal, jscal_event("twin", "Server twin"))
    world.write_uid(cal, "twin", ics_event("twin", "Local twin"))
    report = world.sync_clean()
    assert report.conflicts == 1
    local = world.local_summaries(cal)
    assert local["twin"] == "Server twin"
    assert sorted(local.values()) == ["Local twin", "Server twin"]
    assert world.server_titles(cal) == local
    assert world.sync_clean().changed == 0


# -- recognising that both sides say the same thing ----------------------------------------------


def test_same_content_ignores_defaults_a_server_spells_out() -> None:
    # Cyrus answers a create with RFC 8984 defaults filled in; the file means the same thing.
    server = {
        **jscal_event("twin", "Twin"),
        "id": "E-twin",
        "calendarIds": {"Default": True},
        "freeBusyStatus": "busy",
        "privacy": "public",
        "status": "confirmed",
        "priority": 0,
        "showWithoutTime": False,
        "useDefaultAlerts": False,
        "descriptionContentType": "text/plain",
        "isDraft": False,
        "sequence": 0,
    }
    assert same_content(ics_event("twin", "Twin"), server)


def test_same_content_still_sees_a_non_default_value() -> None:
    server = {**jscal_event("twin", "Twin"), "freeBusyStatus": "free"}
    assert not same_content(ics_event("twin", "Twin"), server)
    assert not same_content(ics_event("twin", "Other"), jscal_event("twin", "Twin"))


# -- a lost answer after the server applied our change (every server) --------------------------


class Crash(BaseException):
    """The process dies here."""


@pytest.mark.parametrize("nth", [1, 2, 3], ids=["destroy", "update", "create"])
@pytest.mark.parametrize("lost", ["set_events", "get_events"])
def test_an_answer_lost_after_the_server_applied_local_edits_links_instead_of_copying(
    world: World, lost: str, nth: int
) -> None:
    cal = world.server.default_calendar()
    for uid in ("a", "b"):
        world.server.add_event(cal, jscal_event(uid, uid))
    world.sync_clean()
    world.write_uid(cal, "a", ics_event("a", "a edited"))
    (world.folder(cal) / href_for_uid("b")).unlink()
    world.write_uid(cal, "c", ics_event("c", "c new"))
    world.restart()
    real_set = world.client.set_events
    real = getattr(world.client, lost)
    applied: list[str] = []

    def set_events(*args: Any, **kwargs: Any) -> Any:
        result = real_set(*args, **kwargs)
        applied.append("set")
        if lost == "set_events" and len(applied) == nth:
            raise Crash(lost)
        return result

    def fetch_back(*args: Any, **kwargs: Any) -> Any:
        result = real(*args, **kwargs)
        if len(applied) == nth:
            raise Crash(lost)
        return result

    world.client.set_events = set_events  # type: ignore[method-assign]
    if lost != "set_events":
        setattr(world.client, lost, fetch_back)
    with pytest.raises(Crash):
        world.sync()
    world.restart()
    for _ in range(3):
        report = world.sync_clean()
        assert report.conflicts == 0
        if report.changed == 0:
            break
    assert world.db.conflicts() == []
    assert world.local_summaries(cal) == {"a": "a edited", "c": "c new"}
    assert world.server_titles(cal) == {"a": "a edited", "c": "c new"}


# -- a UID taken by an event of another calendar --------------------------------------------------


def test_an_event_file_copied_into_another_calendar_folder_is_uploaded_there(
    world: World,
) -> None:
    home = world.server.default_calendar()
    other = world.server.add_calendar("Second")
    world.server.add_event(home, jscal_event("copied", "Copied"))
    world.sync_clean()
    text = (world.folder(home) / href_for_uid("copied")).read_bytes()
    (world.folder(other) / "copy.ics").write_bytes(text)

    report = world.sync_clean()
    assert world.server_titles(home) == {"copied": "Copied"}
    assert list(world.server_titles(other).values()) == ["Copied"]
    assert world.local_summaries(other) == world.server_titles(other)
    assert world.local_summaries(home) == {"copied": "Copied"}
    [uid] = world.server_titles(other)
    if uid != "copied":
        # the server keeps UIDs unique per account: the copy got a fresh one, in place
        assert world.local_uids(other) == [uid]
        assert report.conflicts == 1
        [conflict] = world.db.conflicts()
        assert (conflict.href, conflict.copy_href) == ("copy.ics", "copy.ics")
    assert world.sync_clean().changed == 0
