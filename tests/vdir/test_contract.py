"""The store contract, run against the vdir on disk and its in-memory twin alike."""

from __future__ import annotations

from pathlib import Path

import pytest

from jmapsyncd.errors import PreconditionFailed, StoreError
from jmapsyncd.vdir import Collection, Item, MemoryStore, Store, Vdir, href_for_uid


def ics(uid: str, summary: str = "Meeting") -> Item:
    return Item(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\nBEGIN:VEVENT\r\n"
        f"UID:{uid}\r\nDTSTAMP:20260101T000000Z\r\nDTSTART:20260102T100000Z\r\n"
        f"SUMMARY:{summary}\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    )


@pytest.fixture(params=["vdir", "memory"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    if request.param == "vdir":
        return Vdir(tmp_path / "vdir")
    return MemoryStore()


@pytest.fixture
def coll(store: Store) -> Collection:
    return store.create_collection("cal-1")


class TestItems:
    def test_new_collection_is_empty(self, coll: Collection) -> None:
        assert list(coll.list()) == []

    def test_upload_names_the_item_from_its_uid(self, coll: Collection) -> None:
        href, etag = coll.upload(ics("abc-123@example.com"))
        assert href == "abc-123@example.com.ics"
        assert list(coll.list()) == [(href, etag)]

    def test_get_returns_the_uploaded_text_and_the_listed_etag(self, coll: Collection) -> None:
        item = ics("u1", "Dentist é")
        href, etag = coll.upload(item)
        got, got_etag = coll.get(href)
        assert got.text == item.text
        assert got.uid == "u1"
        assert got_etag == etag

    def test_upload_to_an_explicit_href(self, coll: Collection) -> None:
        href, _ = coll.upload(ics("u1"), href="chosen.ics")
        assert href == "chosen.ics"
        assert coll.has("chosen.ics")

    def test_upload_of_an_existing_href_is_refused(self, coll: Collection) -> None:
        coll.upload(ics("u1", "first"))
        with pytest.raises(PreconditionFailed):
            coll.upload(ics("u1", "second"))
        assert coll.get("u1.ics")[0].text == ics("u1", "first").text

    def test_upload_without_uid_needs_an_href(self, coll: Collection) -> None:
        with pytest.raises(StoreError):
            coll.upload(Item("BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n"))

    def test_unsafe_uid_gets_a_hashed_name(self, coll: Collection) -> None:
        href, _ = coll.upload(ics("../../etc/passwd"))
        assert href == href_for_uid("../../etc/passwd")
        assert "/" not in href
        assert not href.startswith(".")

    def test_update_with_the_current_etag_changes_text_and_etag(self, coll: Collection) -> None:
        href, etag = coll.upload(ics("u1", "old"))
        new_etag = coll.update(href, ics("u1", "new"), etag)
        assert new_etag != etag
        assert coll.get(href) == (ics("u1", "new"), new_etag)

    def test_update_with_a_stale_etag_is_refused(self, coll: Collection) -> None:
        href, etag = coll.upload(ics("u1", "old"))
        coll.update(href, ics("u1", "mid"), etag)
        with pytest.raises(PreconditionFailed):
            coll.update(href, ics("u1", "new"), etag)
        assert coll.get(href)[0] == ics("u1", "mid")

    def test_update_of_a_missing_item_is_refused(self, coll: Collection) -> None:
        with pytest.raises(PreconditionFailed):
            coll.update("nope.ics", ics("nope"), "x")

    def test_delete_with_the_current_etag_removes_the_item(self, coll: Collection) -> None:
        href, etag = coll.upload(ics("u1"))
        coll.delete(href, etag)
        assert list(coll.list()) == []
        assert not coll.has(href)

    def test_delete_with_a_stale_etag_is_refused(self, coll: Collection) -> None:
        href, etag = coll.upload(ics("u1", "a"))
        coll.update(href, ics("u1", "b"), etag)
        with pytest.raises(PreconditionFailed):
            coll.delete(href, etag)
        assert coll.has(href)

    def test_delete_of_a_missing_item_is_refused(self, coll: Collection) -> None:
        with pytest.raises(PreconditionFailed):
            coll.delete("nope.ics", "x")

    def test_get_of_a_missing_item_is_refused(self, coll: Collection) -> None:
        with pytest.raises(PreconditionFailed):
            coll.get("nope.ics")

    @pytest.mark.parametrize(
        "href", ["../x.ics", "a/b.ics", ".hidden.ics", "x.txt", "", "x\x00.ics", "/abs.ics"]
    )
    def test_bad_hrefs_are_refused(self, coll: Collection, href: str) -> None:
        with pytest.raises(StoreError):
            coll.upload(ics("u1"), href=href)
        with pytest.raises(StoreError):
            coll.get(href)
        with pytest.raises(StoreError):
            coll.update(href, ics("u1"), "x")
        with pytest.raises(StoreError):
            coll.delete(href, "x")

    def test_text_that_is_not_utf8_encodable_is_refused(self, coll: Collection) -> None:
        with pytest.raises(StoreError):
            coll.upload(Item("UID:u1\r\nSUMMARY:\udc80\r\n"))
        assert list(coll.list()) == []

    def test_many_items_are_listed_once_each(self, coll: Collection) -> None:
        uploaded = dict(coll.upload(ics(f"u{i}")) for i in range(20))
        assert dict(coll.list()) == uploaded


class TestMetadata:
    def test_unset_metadata_is_none(self, coll: Collection) -> None:
        assert coll.get_displayname() is None
        assert coll.get_color() is None

    def test_displayname_round_trips_utf8(self, coll: Collection) -> None:
        coll.set_displayname("Büro 📅")
        assert coll.get_displayname() == "Büro 📅"

    def test_displayname_is_kept_on_one_line(self, coll: Collection) -> None:
        coll.set_displayname("two\nlines")
        assert coll.get_displayname() == "two lines"

    def test_displayname_none_removes_it(self, coll: Collection) -> None:
        coll.set_displayname("x")
        coll.set_displayname(None)
        assert coll.get_displayname() is None

    @pytest.mark.parametrize(
        ("given", "stored"),
        [
            ("#ff0000", "#FF0000"),
            ("#0f0", "#00FF00"),
            ("#11223344", "#112233"),
            ("Tomato", "#FF6347"),
        ],
    )
    def test_color_is_stored_as_rrggbb(self, coll: Collection, given: str, stored: str) -> None:
        coll.set_color(given)
        assert coll.get_color() == stored

    def test_color_that_is_not_a_colour_is_refused(self, coll: Collection) -> None:
        coll.set_color("red")
        with pytest.raises(StoreError):
            coll.set_color("not-a-colour")
        assert coll.get_color() == "#FF0000"

    def test_color_none_removes_it(self, coll: Collection) -> None:
        coll.set_color("blue")
        coll.set_color(None)
        assert coll.get_color() is None

    def test_metadata_is_not_listed_as_items(self, coll: Collection) -> None:
        coll.set_displayname("Work")
        coll.set_color("red")
        assert list(coll.list()) == []


class TestCollections:
    def test_created_collection_is_listed_under_its_safe_name(self, store: Store) -> None:
        store.create_collection("Ab-1")
        assert list(store.list_collections()) == ["Ab-1"]

    def test_create_is_idempotent_and_keeps_items(self, store: Store) -> None:
        href, etag = store.create_collection("c").upload(ics("u1"))
        again = store.create_collection("c")
        assert list(again.list()) == [(href, etag)]

    def test_unsafe_collection_id_gets_a_hashed_name(self, store: Store) -> None:
        coll = store.create_collection("../../outside")
        assert coll.name == store.collection_name("../../outside")
        assert "/" not in coll.name
        assert list(store.list_collections()) == [coll.name]

    def test_get_collection_opens_an_existing_one(self, store: Store) -> None:
        store.create_collection("c").upload(ics("u1"))
        assert [h for h, _ in store.get_collection("c").list()] == ["u1.ics"]

    def test_get_collection_of_a_missing_one_is_refused(self, store: Store) -> None:
        with pytest.raises(StoreError):
            store.get_collection("missing")

    def test_delete_collection_removes_items_and_metadata(self, store: Store) -> None:
        coll = store.create_collection("c")
        coll.upload(ics("u1"))
        coll.set_displayname("C")
        coll.set_color("red")
        store.delete_collection("c")
        assert list(store.list_collections()) == []
        with pytest.raises(StoreError):
            list(coll.list())

    def test_delete_of_a_missing_collection_is_quiet(self, store: Store) -> None:
        store.delete_collection("missing")
        assert list(store.list_collections()) == []
