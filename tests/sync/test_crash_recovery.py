"""The write orders of docs/sync.md: a crash between two steps plans to no loss, no duplicate.

Each test performs the first step of an action with the real vdir and state database, "crashes"
(closes everything without the second step), reopens, settles the journal as docs/sync.md says
and checks what the planner decides.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from jmapsyncd.state import CollectionRow, ItemState, StateDB
from jmapsyncd.sync.plan import (
    Action,
    DownloadNew,
    ForgetStatus,
    RecordStatus,
    ServerEntry,
    UploadNew,
    UploadUpdate,
    plan,
)
from jmapsyncd.sync.scan import scan_local
from jmapsyncd.vdir import Item, Vdir, VdirCollection, content_hash


def ics(uid: str, summary: str) -> str:
    return (
        f"BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:{uid}\r\nSUMMARY:{summary}\r\n"
        "END:VEVENT\r\nEND:VCALENDAR\r\n"
    )


@dataclass
class World:
    tmp: Path
    db: StateDB
    coll: VdirCollection
    cal: CollectionRow
    #: the server: JMAP id -> the iCalendar text our converter makes from the object
    server: dict[str, str]

    def restart(self) -> None:
        self.db.close()
        self.db = StateDB(self.tmp / "state.sqlite")
        vdir = Vdir(self.tmp / "vdir")
        vdir.cleanup_temp_files()
        self.coll = vdir.get_collection(self.coll.name)

    def server_view(self) -> dict[str, ServerEntry]:
        return {
            jid: ServerEntry(content_hash(text), Item(text).uid)
            for jid, text in self.server.items()
        }

    def plan(self) -> list[Action]:
        status = self.db.item_status(self.cal.id)
        local = scan_local(self.coll, status).entries
        return plan(self.server_view(), local, status)

    def synced(self, jmap_id: str, text: str) -> str:
        """Download ``text`` as server object ``jmap_id`` completely; returns the href."""
        self.server[jmap_id] = text
        href, etag = self.coll.upload(Item(text))
        self.db.record_synced(
            self.cal.id,
            jmap_id=jmap_id,
            href=href,
            uid=Item(text).uid,
            local_etag=etag,
            local_hash=content_hash(text),
            server_hash=content_hash(text),
        )
        return href


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    db = StateDB(tmp_path / "state.sqlite")
    coll = Vdir(tmp_path / "vdir").create_collection("cal")
    cal = db.upsert_collection("acc", "cal", "calendar", coll.name)
    w = World(tmp_path, db, coll, cal, {})
    yield w
    w.db.close()


def test_crash_after_download_new_wrote_the_file_links_it(world: World) -> None:
    world.server["E1"] = ics("u1", "new")
    world.coll.upload(Item(world.server["E1"]))  # step 1 done, record_synced never ran
    world.restart()
    [action] = world.plan()
    assert isinstance(action, RecordStatus)
    assert (action.jmap_id, action.href, action.had_status) == ("E1", "u1.ics", False)


def test_crash_after_download_update_wrote_the_file_records_it(world: World) -> None:
    href = world.synced("E1", ics("u1", "v1"))
    world.server["E1"] = ics("u1", "v2")
    _, etag = world.coll.get(href)
    world.coll.update(href, Item(world.server["E1"]), etag)  # the row still says v1
    world.restart()
    [action] = world.plan()
    assert isinstance(action, RecordStatus)
    assert action.local_hash == action.server_hash == content_hash(ics("u1", "v2"))


def test_crash_after_delete_local_removed_the_file_forgets_the_row(world: World) -> None:
    href = world.synced("E1", ics("u1", "v1"))
    del world.server["E1"]
    world.coll.delete(href, world.coll.get(href)[1])  # forget_item never ran
    world.restart()
    assert world.plan() == [ForgetStatus("E1", href)]


def test_crash_after_the_server_accepted_a_create_links_by_uid(world: World) -> None:
    text = ics("mine", "local")
    href, etag = world.coll.upload(Item(text))
    row = world.db.begin_create(
        world.cal.id, href=href, uid="mine", local_etag=etag, local_hash=content_hash(text)
    )
    world.server["E7"] = ics("mine", "local, as the server renders it")  # accepted, then crash
    world.restart()
    # settle: a pending create whose UID the server has is linked, not created again
    [pending] = world.db.pending_items()
    assert pending.id == row.id
    found = [jid for jid, e in world.server_view().items() if e.uid == pending.uid]
    assert found == ["E7"]
    world.db.finish_create(pending.id, jmap_id="E7", server_hash=content_hash(world.server["E7"]))
    assert world.plan() == []


def test_crash_before_the_server_accepted_a_create_uploads_again(world: World) -> None:
    text = ics("mine", "local")
    href, etag = world.coll.upload(Item(text))
    world.db.begin_create(
        world.cal.id, href=href, uid="mine", local_etag=etag, local_hash=content_hash(text)
    )
    world.restart()
    [pending] = world.db.pending_items()
    assert not [e for e in world.server_view().values() if e.uid == pending.uid]
    world.db.forget_item(pending.id)
    assert world.plan() == [UploadNew(href, etag)]


def test_unsettled_pending_create_is_not_uploaded_twice_by_mistake(world: World) -> None:
    """Why settling comes first: the planner never sees a pending create as synced status."""
    text = ics("mine", "local")
    href, etag = world.coll.upload(Item(text))
    world.db.begin_create(
        world.cal.id, href=href, uid="mine", local_etag=etag, local_hash=content_hash(text)
    )
    assert world.db.item_status(world.cal.id) == {}
    assert world.db.pending_items()[0].status is ItemState.PENDING_CREATE


@pytest.mark.parametrize("server_accepted", [True, False])
def test_crash_during_an_update_sends_it_again(world: World, server_accepted: bool) -> None:
    href = world.synced("E1", ics("u1", "v1"))
    edited = ics("u1", "edited locally")
    _, etag = world.coll.get(href)
    new_etag = world.coll.update(href, Item(edited), etag)
    item = world.db.item_by_href(world.cal.id, href)
    assert item is not None
    world.db.mark_pending(item.id, ItemState.PENDING_UPDATE, content_hash(edited))
    if server_accepted:
        world.server["E1"] = ics("u1", "edited locally (server rendering)")
    world.restart()
    [pending] = world.db.pending_items()
    world.db.settle(pending.id, server_hash=content_hash(world.server["E1"]))
    assert world.plan() == [UploadUpdate("E1", href, new_etag)]


def test_a_server_edit_to_a_locally_deleted_item_comes_back(world: World) -> None:
    href = world.synced("E1", ics("u1", "v1"))
    world.coll.delete(href, world.coll.get(href)[1])
    world.server["E1"] = ics("u1", "edited on the server")
    assert world.plan() == [DownloadNew("E1", href, replaces_status=True)]
