"""Building the local input for the planner, and choosing collections."""

from __future__ import annotations

from pathlib import Path

import pytest

from jmapsyncd.sync.plan import ItemStatus, LocalEntry
from jmapsyncd.sync.scan import scan_local
from jmapsyncd.sync.selection import is_selected
from jmapsyncd.vdir import Collection, Item, MemoryCollection, Vdir


class CountingCollection(MemoryCollection):
    """Counts reads, to show which files scan_local opens."""

    def __init__(self) -> None:
        super().__init__("c")
        self.reads: list[str] = []

    def get(self, href: str) -> tuple[Item, str]:
        self.reads.append(href)
        return super().get(href)


def test_unchanged_files_are_not_read() -> None:
    coll = CountingCollection()
    href, etag = coll.upload(Item("UID:a\r\n"))
    status = {"E1": ItemStatus("E1", href, etag, "stored-hash", "s", "a")}
    scan = scan_local(coll, status)
    assert scan.entries == {href: LocalEntry(etag, "stored-hash", "a")}
    assert coll.reads == []


def test_changed_and_new_files_are_read_for_hash_and_uid() -> None:
    coll = CountingCollection()
    href, etag = coll.upload(Item("UID:a\r\n"))
    new_etag = coll.update(href, Item("UID:a\r\nX:1\r\n"), etag)
    other, other_etag = coll.upload(Item("UID:b\r\n"))
    status = {"E1": ItemStatus("E1", href, etag, "old", "s", "a")}
    scan = scan_local(coll, status)
    assert scan.entries == {
        href: LocalEntry(new_etag, Item("UID:a\r\nX:1\r\n").hash, "a"),
        other: LocalEntry(other_etag, Item("UID:b\r\n").hash, "b"),
    }
    assert sorted(coll.reads) == sorted([href, other])


def test_unreadable_files_are_still_listed(tmp_path: Path) -> None:
    coll: Collection = Vdir(tmp_path).create_collection("c")
    (tmp_path / "c" / "bad.ics").write_bytes(b"UID:\xff\r\n")
    scan = scan_local(coll)
    assert scan.entries["bad.ics"].hash is None
    assert "bad.ics" in scan.unreadable


@pytest.mark.parametrize(
    ("include", "exclude", "expected"),
    [
        ([], [], True),
        (["Work"], [], True),
        (["work"], [], True),
        (["cal-1"], [], True),
        (["Home"], [], False),
        ([], ["WORK"], False),
        (["Work"], ["cal-1"], False),
        ([], ["cal-2"], True),
    ],
)
def test_collection_selection(include: list[str], exclude: list[str], expected: bool) -> None:
    assert is_selected("cal-1", "Work", include, exclude) is expected


def test_collection_without_name_is_matched_by_id_only() -> None:
    assert is_selected("x", None, ["x"], []) is True
    assert is_selected("x", None, ["Work"], []) is False
