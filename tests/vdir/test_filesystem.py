"""What only the on-disk vdir must guarantee: confinement to the root, atomic writes, etags."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jmapsyncd.errors import PreconditionFailed, StoreError
from jmapsyncd.vdir import Item, Vdir, VdirCollection

EVIL_IDS = [
    "..",
    "../..",
    "../outside",
    "/tmp/abs",
    "a/../../b",
    "x\x00y",
    "ctl\x1b[31m",
    ".hidden",
    "~",
    "a" * 5000,
    "\\..\\win",
    "",
]


def ics(uid: str, summary: str = "x") -> Item:
    return Item(
        f"BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:{uid}\r\nSUMMARY:{summary}\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    )


def all_paths(base: Path) -> set[Path]:
    return {Path(dirpath) / n for dirpath, dirs, files in os.walk(base) for n in dirs + files}


@pytest.fixture
def layout(tmp_path: Path) -> tuple[Vdir, Path]:
    """A vdir at tmp/vdir next to a folder tmp/outside that must never be touched."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.ics").write_text("UID:secret\r\n")
    return Vdir(tmp_path / "vdir"), outside


class TestConfinement:
    @pytest.mark.parametrize("evil", EVIL_IDS)
    def test_evil_collection_ids_and_uids_stay_inside_the_root(
        self, layout: tuple[Vdir, Path], evil: str
    ) -> None:
        vdir, outside = layout
        before = all_paths(outside.parent) - all_paths(vdir.root)
        coll = vdir.create_collection(evil)
        if evil:
            coll.upload(ics(evil))
        after = all_paths(outside.parent) - all_paths(vdir.root)
        assert after == before
        for path in all_paths(vdir.root):
            assert path.resolve().is_relative_to(vdir.root)
            assert path.parent in (vdir.root, coll.path)

    @settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(collection_id=st.text(max_size=300), uid=st.text(min_size=1, max_size=300))
    def test_any_ids_stay_inside_the_root(
        self, tmp_path: Path, collection_id: str, uid: str
    ) -> None:
        vdir = Vdir(tmp_path / "v")
        coll = vdir.create_collection(collection_id)
        try:
            href, _ = coll.upload(Item("BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n", uid=uid))
        except PreconditionFailed:  # the same name drawn twice in this test's lifetime
            href = None
        if href is not None:
            assert (coll.path / href).resolve().parent == coll.path.resolve()
        assert coll.path.resolve().parent == vdir.root
        for dirpath, _, _ in os.walk(tmp_path):
            assert Path(dirpath).resolve().is_relative_to(tmp_path.resolve())
        assert sorted(p.name for p in tmp_path.iterdir()) == ["v"]

    def test_collection_name_with_a_slash_is_refused(self, layout: tuple[Vdir, Path]) -> None:
        vdir, _ = layout
        for name in ["../outside", "a/b", "..", ".", "", "/tmp"]:
            with pytest.raises(StoreError):
                vdir.get_collection(name)
            with pytest.raises(StoreError):
                vdir.delete_collection(name)

    def test_item_symlink_pointing_outside_is_refused_and_not_listed(
        self, layout: tuple[Vdir, Path]
    ) -> None:
        vdir, outside = layout
        coll = vdir.create_collection("c")
        (coll.path / "evil.ics").symlink_to(outside / "secret.ics")
        assert list(coll.list()) == []
        with pytest.raises(StoreError):
            coll.get("evil.ics")
        with pytest.raises(StoreError):
            coll.update("evil.ics", ics("x"), "whatever")
        with pytest.raises(StoreError):
            coll.delete("evil.ics", "whatever")
        assert (outside / "secret.ics").read_bytes() == b"UID:secret\r\n"

    @pytest.mark.parametrize("durable", [True, False])
    def test_a_create_never_writes_through_an_item_symlink(
        self, layout: tuple[Vdir, Path], durable: bool
    ) -> None:
        # Creates skip resolving the item path (a cost per downloaded item): the hard link that
        # creates the file never follows the link that is in the way, so nothing gets out.
        vdir, outside = layout
        coll = vdir.create_collection("c")
        (coll.path / "evil.ics").symlink_to(outside / "secret.ics")
        with pytest.raises(PreconditionFailed):
            coll.upload(ics("x"), "evil.ics", durable=durable)
        coll.flush()
        assert (outside / "secret.ics").read_bytes() == b"UID:secret\r\n"
        assert sorted(os.listdir(coll.path)) == ["evil.ics"]

    def test_metadata_symlink_pointing_outside_is_refused(self, layout: tuple[Vdir, Path]) -> None:
        vdir, outside = layout
        coll = vdir.create_collection("c")
        (outside / "name").write_text("outside")
        (coll.path / "displayname").symlink_to(outside / "name")
        with pytest.raises(StoreError):
            coll.get_displayname()
        with pytest.raises(StoreError):
            coll.set_displayname("new")
        assert (outside / "name").read_text() == "outside"

    def test_collection_symlink_pointing_outside_is_refused(
        self, layout: tuple[Vdir, Path]
    ) -> None:
        vdir, outside = layout
        (vdir.root / "c").symlink_to(outside)
        assert list(vdir.list_collections()) == []
        with pytest.raises(StoreError):
            vdir.get_collection("c")
        with pytest.raises(StoreError):
            vdir.create_collection("c").upload(ics("new"))
        with pytest.raises(StoreError):
            vdir.delete_collection("c")
        assert sorted(p.name for p in outside.iterdir()) == ["secret.ics"]

    def test_item_symlink_inside_the_root_is_readable(self, layout: tuple[Vdir, Path]) -> None:
        vdir, _ = layout
        coll = vdir.create_collection("c")
        href, _ = coll.upload(ics("real"))
        (coll.path / "alias.ics").symlink_to(coll.path / href)
        assert coll.get("alias.ics")[0].uid == "real"


class TestAtomicWrites:
    def test_no_temp_file_is_left_after_writes(self, layout: tuple[Vdir, Path]) -> None:
        vdir, _ = layout
        coll = vdir.create_collection("c")
        href, etag = coll.upload(ics("u"))
        coll.update(href, ics("u", "2"), coll.update(href, ics("u", "1"), etag))
        coll.set_color("red")
        assert sorted(os.listdir(coll.path)) == ["color", "u.ics"]

    def test_failed_create_leaves_no_temp_file(self, layout: tuple[Vdir, Path]) -> None:
        vdir, _ = layout
        coll = vdir.create_collection("c")
        coll.upload(ics("u"))
        with pytest.raises(PreconditionFailed):
            coll.upload(ics("u", "other"))
        assert os.listdir(coll.path) == ["u.ics"]

    def test_cleanup_removes_only_stale_temp_files(self, layout: tuple[Vdir, Path]) -> None:
        vdir, _ = layout
        coll = vdir.create_collection("c")
        coll.upload(ics("u"))
        stale = coll.path / ".jmapsyncd-dead.tmp"
        stale.write_text("half")
        (vdir.root / ".jmapsyncd-root.tmp").write_text("half")
        removed = vdir.cleanup_temp_files()
        assert sorted(p.name for p in removed) == [".jmapsyncd-dead.tmp", ".jmapsyncd-root.tmp"]
        assert os.listdir(coll.path) == ["u.ics"]

    def test_files_are_private(self, layout: tuple[Vdir, Path]) -> None:
        vdir, _ = layout
        coll = vdir.create_collection("c")
        href, _ = coll.upload(ics("u"))
        assert stat.S_IMODE(os.stat(coll.path / href).st_mode) == 0o600

    def test_file_content_is_the_exact_text(self, layout: tuple[Vdir, Path]) -> None:
        vdir, _ = layout
        coll = vdir.create_collection("c")
        href, _ = coll.upload(ics("u", "Zoë"))
        assert (coll.path / href).read_bytes() == ics("u", "Zoë").text.encode()


class TestDeferredDurability:
    """``durable=False`` skips the flushes; :meth:`flush` makes every such write durable."""

    def test_a_deferred_write_is_complete_and_visible_at_once(
        self, layout: tuple[Vdir, Path]
    ) -> None:
        vdir, _ = layout
        coll = vdir.create_collection("c")
        href, etag = coll.upload(ics("u"), durable=False)
        etag = coll.update(href, ics("u", "2"), etag, durable=False)
        assert coll.get(href) == (ics("u", "2"), etag)
        assert os.listdir(coll.path) == ["u.ics"]
        coll.flush()
        coll.flush()  # nothing left to flush: a no-op

    @pytest.fixture
    def fsyncs(self, monkeypatch: pytest.MonkeyPatch) -> list[int]:
        """Every ``os.fsync`` made (each still made)."""
        calls: list[int] = []
        real_fsync = os.fsync

        def fsync(fd: int) -> None:
            calls.append(fd)
            real_fsync(fd)

        monkeypatch.setattr(os, "fsync", fsync)
        return calls

    def test_flush_syncs_the_file_system_once_for_many_writes(
        self, layout: tuple[Vdir, Path], fsyncs: list[int]
    ) -> None:
        vdir, _ = layout
        coll = vdir.create_collection("c")
        fsyncs.clear()  # the new folder's own
        for n in range(20):
            coll.upload(ics(f"u{n}"), durable=False)
        assert fsyncs == []
        coll.flush()
        # syncfs(2) where Linux has it; otherwise one fsync per file and one of the folder
        assert len(fsyncs) in (0, 21)
        coll.upload(ics("last"))
        assert len(fsyncs) in (2, 23)  # a durable write: the file and the folder

    def test_without_syncfs_flush_fsyncs_each_file_and_the_folder(
        self, layout: tuple[Vdir, Path], monkeypatch: pytest.MonkeyPatch, fsyncs: list[int]
    ) -> None:
        vdir, _ = layout
        coll = vdir.create_collection("c")
        monkeypatch.setattr("jmapsyncd.vdir.filesystem._flush_filesystem", lambda _: False)
        fsyncs.clear()  # the new folder's own
        for n in range(3):
            coll.upload(ics(f"u{n}"), durable=False)
        coll.flush()
        assert len(fsyncs) == 4

    def test_a_failing_flush_is_a_store_error(
        self, layout: tuple[Vdir, Path], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        vdir, _ = layout
        coll = vdir.create_collection("c")
        coll.upload(ics("u"), durable=False)

        def broken(_: Path) -> bool:
            raise OSError(5, "Input/output error")

        monkeypatch.setattr("jmapsyncd.vdir.filesystem._flush_filesystem", broken)
        with pytest.raises(StoreError, match="cannot flush"):
            coll.flush()


class TestEtags:
    def test_an_edit_by_another_program_changes_the_etag(self, layout: tuple[Vdir, Path]) -> None:
        vdir, _ = layout
        coll = vdir.create_collection("c")
        href, etag = coll.upload(ics("u"))
        # An editor that writes in place keeps the inode; the size changes.
        with open(coll.path / href, "a") as fp:
            fp.write("X-EXTRA:1\r\n")
        os.utime(coll.path / href, ns=(0, os.stat(coll.path / href).st_mtime_ns + 1))
        assert dict(coll.list())[href] != etag
        with pytest.raises(PreconditionFailed):
            coll.update(href, ics("u", "mine"), etag)
        assert "X-EXTRA:1" in coll.get(href)[0].text

    def test_rapid_rewrites_of_the_same_size_never_repeat_an_etag(
        self, layout: tuple[Vdir, Path]
    ) -> None:
        vdir, _ = layout
        coll = vdir.create_collection("c")
        href, etag = coll.upload(ics("u", "0"))
        seen = [etag]
        for i in range(1, 30):
            etag = coll.update(href, ics("u", str(i % 10)), etag)
            seen.append(etag)
        assert len(set(seen)) == len(seen)
        with pytest.raises(PreconditionFailed):
            coll.update(href, ics("u", "x"), seen[0])

    def test_a_rewrite_is_always_newer_than_the_file_it_replaces(
        self, layout: tuple[Vdir, Path]
    ) -> None:
        # Stands in for a coarse clock: the replaced file looks newer than "now".
        vdir, _ = layout
        coll = vdir.create_collection("c")
        href, _ = coll.upload(ics("u", "0"))
        future = os.stat(coll.path / href).st_mtime_ns + 10**12
        os.utime(coll.path / href, ns=(future, future))
        etag = dict(coll.list())[href]
        coll.update(href, ics("u", "1"), etag)
        assert os.stat(coll.path / href).st_mtime_ns > future

    def test_etag_returned_by_upload_matches_listing(self, layout: tuple[Vdir, Path]) -> None:
        vdir, _ = layout
        coll = vdir.create_collection("c")
        href, etag = coll.upload(ics("u"))
        assert dict(coll.list()) == {href: etag}


class TestFolderContents:
    def test_folder_with_foreign_files_is_not_deleted(self, layout: tuple[Vdir, Path]) -> None:
        vdir, _ = layout
        coll = vdir.create_collection("c")
        coll.upload(ics("u"))
        (coll.path / "notes.txt").write_text("mine")
        with pytest.raises(StoreError):
            vdir.delete_collection("c")
        assert sorted(os.listdir(coll.path)) == ["notes.txt", "u.ics"]

    def test_listing_ignores_non_items(self, layout: tuple[Vdir, Path]) -> None:
        vdir, _ = layout
        coll = vdir.create_collection("c")
        (coll.path / "notes.txt").write_text("x")
        (coll.path / ".hidden.ics").write_text("x")
        (coll.path / "sub.ics").mkdir()
        (coll.path / ".jmapsyncd-x.tmp").write_text("x")
        assert list(coll.list()) == []

    def test_user_named_items_are_listed(self, layout: tuple[Vdir, Path]) -> None:
        vdir, _ = layout
        coll = vdir.create_collection("c")
        (coll.path / "My Event.ics").write_text("UID:z\r\n")
        assert [h for h, _ in coll.list()] == ["My Event.ics"]
        assert coll.get("My Event.ics")[0].uid == "z"

    def test_non_utf8_file_is_a_store_error(self, layout: tuple[Vdir, Path]) -> None:
        vdir, _ = layout
        coll = vdir.create_collection("c")
        (coll.path / "bad.ics").write_bytes(b"UID:\xff\r\n")
        with pytest.raises(StoreError):
            coll.get("bad.ics")

    def test_root_is_created_and_collections_are_folders(self, tmp_path: Path) -> None:
        vdir = Vdir(tmp_path / "a" / "b")
        coll = vdir.create_collection("x")
        assert isinstance(coll, VdirCollection)
        assert coll.path.is_dir()
        assert vdir.get_collection("x").path == coll.path

    def test_root_that_is_a_file_is_refused(self, tmp_path: Path) -> None:
        (tmp_path / "f").write_text("")
        with pytest.raises(StoreError):
            Vdir(tmp_path / "f")
