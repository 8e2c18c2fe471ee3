"""The state database: schema, migrations, uniqueness, journal rows, tokens, errors, conflicts."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from jmapsyncd.errors import StoreError
from jmapsyncd.state import SCHEMA_VERSION, CollectionRow, ItemState, StateDB, SyncedPair
from jmapsyncd.state.schema import MIGRATIONS
from jmapsyncd.sync.plan import ItemStatus

WHEN = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


@pytest.fixture
def db(tmp_path: Path) -> Iterator[StateDB]:
    with StateDB(tmp_path / "state" / "state.sqlite") as opened:
        yield opened


@pytest.fixture
def cal(db: StateDB) -> CollectionRow:
    return db.upsert_collection("acc", "cal1", "calendar", "cal1", "Work", "#FF0000")


def raw(path: Path, sql: str) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


class TestSchema:
    def test_new_database_is_at_the_current_version(self, db: StateDB) -> None:
        assert db.schema_version == SCHEMA_VERSION
        assert raw(db.path, "SELECT value FROM meta WHERE key='schema_version'") == [
            (str(SCHEMA_VERSION),)
        ]

    def test_database_uses_wal(self, db: StateDB) -> None:
        assert raw(db.path, "PRAGMA journal_mode") == [("wal",)]

    def test_reopening_keeps_data_and_version(self, tmp_path: Path) -> None:
        path = tmp_path / "s.sqlite"
        with StateDB(path) as first:
            first.set_token("acc", "CalendarEvent", "s1")
        with StateDB(path) as second:
            assert second.schema_version == SCHEMA_VERSION
            assert second.get_token("acc", "CalendarEvent") == "s1"

    def test_newer_schema_is_refused(self, tmp_path: Path) -> None:
        path = tmp_path / "s.sqlite"
        StateDB(path).close()
        conn = sqlite3.connect(path)
        with conn:
            conn.execute("UPDATE meta SET value = '999' WHERE key = 'schema_version'")
        conn.close()
        with pytest.raises(StoreError, match="newer"):
            StateDB(path)

    def test_failing_migration_leaves_the_previous_version(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        path = tmp_path / "s.sqlite"
        StateDB(path).close()
        bad = ("CREATE TABLE half_done (x INTEGER)", "THIS IS NOT SQL")
        monkeypatch.setattr("jmapsyncd.state.db.MIGRATIONS", (*MIGRATIONS, bad))
        monkeypatch.setattr("jmapsyncd.state.db.SCHEMA_VERSION", SCHEMA_VERSION + 1)
        with pytest.raises(StoreError, match=f"version {SCHEMA_VERSION + 1}"):
            StateDB(path)
        tables = {r[0] for r in raw(path, "SELECT name FROM sqlite_master WHERE type='table'")}
        assert "half_done" not in tables
        assert raw(path, "SELECT value FROM meta") == [(str(SCHEMA_VERSION),)]

    def test_a_version_1_database_is_migrated_keeping_its_rows(self, tmp_path: Path) -> None:
        # Schema v2 adds the journal of sent text; a database made by v1 must open and keep rows.
        path = tmp_path / "s.sqlite"
        with sqlite3.connect(path) as conn:
            conn.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
            for statement in MIGRATIONS[0]:
                conn.execute(statement)
            conn.execute("INSERT INTO meta VALUES ('schema_version', '1')")
            conn.execute(
                "INSERT INTO collections (account_id, jmap_id, kind, folder) "
                "VALUES ('a', 'Default', 'calendar', 'Default')"
            )
        conn.close()
        with StateDB(path) as db:
            assert db.schema_version == SCHEMA_VERSION
            [row] = db.collections()
            assert row.jmap_id == "Default"
            item = db.begin_create(row.id, href="x.ics", uid="x", local_etag="e", local_hash="h")
            done = db.finish_create(item.id, jmap_id="J", server_hash="s")
            pending = db.mark_pending(done.id, ItemState.PENDING_UPDATE, "h2", "TEXT")
            assert pending.pending_text == "TEXT"
            assert db.settle(pending.id).pending_text is None

    def test_a_file_that_is_not_sqlite_is_a_store_error(self, tmp_path: Path) -> None:
        path = tmp_path / "garbage.sqlite"
        path.write_bytes(b"this is not a database, just text" * 100)
        with pytest.raises(StoreError):
            StateDB(path)


class TestCollections:
    def test_upsert_inserts_then_updates(self, db: StateDB, cal: CollectionRow) -> None:
        assert cal == CollectionRow(cal.id, "acc", "cal1", "calendar", "cal1", "Work", "#FF0000")
        again = db.upsert_collection("acc", "cal1", "calendar", "cal1", "Renamed", None)
        assert again.id == cal.id
        assert db.collections() == [again]
        assert again.name == "Renamed"

    def test_calendar_and_tasklist_ids_are_separate(self, db: StateDB) -> None:
        a = db.upsert_collection("acc", "X", "calendar", "X")
        b = db.upsert_collection("acc", "X", "tasklist", "X-tasks")
        assert a.id != b.id
        assert db.get_collection("acc", "tasklist", "X") == b

    def test_one_folder_cannot_serve_two_collections(self, db: StateDB, cal: CollectionRow) -> None:
        with pytest.raises(StoreError):
            db.upsert_collection("acc", "other", "calendar", cal.folder)

    def test_collections_can_be_filtered_by_account(self, db: StateDB, cal: CollectionRow) -> None:
        db.upsert_collection("acc2", "c", "calendar", "c-2")
        assert db.collections("acc") == [cal]

    def test_deleting_a_collection_cascades(self, db: StateDB, cal: CollectionRow) -> None:
        db.record_synced(
            cal.id, jmap_id="E1", href="a.ics", uid="a", local_etag="t", local_hash="h",
            server_hash="h",
        )  # fmt: skip
        db.record_error("boom", collection_id=cal.id)
        db.record_conflict(cal.id, href="a.ics", resolution="keep-both")
        db.record_run(cal.id, "pull")
        db.delete_collection(cal.id)
        assert db.items(cal.id) == []
        assert db.errors() == []
        assert db.conflicts(include_resolved=True) == []
        assert db.runs() == []


class TestItems:
    def synced(self, db: StateDB, cal: CollectionRow, jmap_id: str, href: str) -> None:
        db.record_synced(
            cal.id,
            jmap_id=jmap_id,
            href=href,
            uid=href.removesuffix(".ics"),
            local_etag="t",
            local_hash="h",
            server_hash="h",
        )

    def test_synced_items_are_the_planner_status(self, db: StateDB, cal: CollectionRow) -> None:
        self.synced(db, cal, "E1", "a.ics")
        assert db.item_status(cal.id) == {"E1": ItemStatus("E1", "a.ics", "t", "h", "h", "a")}

    def test_record_synced_replaces_the_row_with_the_same_id(
        self, db: StateDB, cal: CollectionRow
    ) -> None:
        self.synced(db, cal, "E1", "a.ics")
        self.synced(db, cal, "E1", "b.ics")
        assert [i.href for i in db.items(cal.id)] == ["b.ics"]

    def test_record_synced_replaces_the_row_with_the_same_href(
        self, db: StateDB, cal: CollectionRow
    ) -> None:
        self.synced(db, cal, "E1", "a.ics")
        self.synced(db, cal, "E2", "a.ics")
        assert [i.jmap_id for i in db.items(cal.id)] == ["E2"]

    def test_pending_create_is_journalled_and_hidden_from_the_planner(
        self, db: StateDB, cal: CollectionRow
    ) -> None:
        row = db.begin_create(cal.id, href="n.ics", uid="n", local_etag="t", local_hash="h")
        assert row.status is ItemState.PENDING_CREATE
        assert row.jmap_id is None
        assert db.item_status(cal.id) == {}
        assert db.pending_items() == [row]

    def test_finish_create_records_the_server_id(self, db: StateDB, cal: CollectionRow) -> None:
        row = db.begin_create(cal.id, href="n.ics", uid="n", local_etag="t", local_hash="h")
        done = db.finish_create(row.id, jmap_id="E9", server_hash="h")
        assert done.status is ItemState.SYNCED
        assert db.pending_items() == []
        assert db.item_status(cal.id) == {"E9": ItemStatus("E9", "n.ics", "t", "h", "h", "n")}

    def test_finish_create_of_a_synced_row_is_refused(
        self, db: StateDB, cal: CollectionRow
    ) -> None:
        row = db.begin_create(cal.id, href="n.ics", uid="n", local_etag="t", local_hash="h")
        db.finish_create(row.id, jmap_id="E9", server_hash="h")
        with pytest.raises(StoreError):
            db.finish_create(row.id, jmap_id="E10", server_hash="h")

    def test_two_rows_cannot_share_a_jmap_id(self, db: StateDB, cal: CollectionRow) -> None:
        self.synced(db, cal, "E1", "a.ics")
        row = db.begin_create(cal.id, href="n.ics", uid="n", local_etag="t", local_hash="h")
        with pytest.raises(StoreError):
            db.finish_create(row.id, jmap_id="E1", server_hash="h")
        assert db.item_by_href(cal.id, "n.ics") == row

    def test_several_pending_creates_coexist(self, db: StateDB, cal: CollectionRow) -> None:
        db.begin_create(cal.id, href="a.ics", uid="a", local_etag="t", local_hash="h")
        db.begin_create(cal.id, href="b.ics", uid="b", local_etag="t", local_hash="h")
        assert len(db.pending_items(cal.id)) == 2

    def test_begin_create_replaces_the_stale_status_of_the_same_file(
        self, db: StateDB, cal: CollectionRow
    ) -> None:
        self.synced(db, cal, "E1", "a.ics")
        db.begin_create(cal.id, href="a.ics", uid="a", local_etag="t2", local_hash="h2")
        [row] = db.items(cal.id)
        assert row.jmap_id is None
        assert row.status is ItemState.PENDING_CREATE

    def test_mark_pending_journals_an_update(self, db: StateDB, cal: CollectionRow) -> None:
        self.synced(db, cal, "E1", "a.ics")
        item = db.item_by_jmap_id(cal.id, "E1")
        assert item is not None
        pending = db.mark_pending(item.id, ItemState.PENDING_UPDATE, "h2")
        assert (pending.status, pending.pending_hash) == (ItemState.PENDING_UPDATE, "h2")
        # still planner status: re-planning re-sends the update, which is idempotent
        assert "E1" in db.item_status(cal.id)

    def test_settle_after_a_crashed_update_adopts_the_server_hash(
        self, db: StateDB, cal: CollectionRow
    ) -> None:
        self.synced(db, cal, "E1", "a.ics")
        item = db.item_by_jmap_id(cal.id, "E1")
        assert item is not None
        db.mark_pending(item.id, ItemState.PENDING_UPDATE, "h2")
        settled = db.settle(item.id, server_hash="h-server-now")
        assert (settled.status, settled.pending_hash) == (ItemState.SYNCED, None)
        assert db.item_status(cal.id)["E1"] == ItemStatus(
            "E1", "a.ics", "t", "h", "h-server-now", "a"
        )

    def test_settle_of_a_row_that_is_not_pending_is_refused(
        self, db: StateDB, cal: CollectionRow
    ) -> None:
        self.synced(db, cal, "E1", "a.ics")
        item = db.item_by_jmap_id(cal.id, "E1")
        assert item is not None
        with pytest.raises(StoreError):
            db.settle(item.id)

    def test_mark_pending_takes_only_update_or_delete(
        self, db: StateDB, cal: CollectionRow
    ) -> None:
        self.synced(db, cal, "E1", "a.ics")
        item = db.item_by_jmap_id(cal.id, "E1")
        assert item is not None
        with pytest.raises(ValueError, match="pending-update or pending-delete"):
            db.mark_pending(item.id, ItemState.PENDING_CREATE)

    def test_forget_item(self, db: StateDB, cal: CollectionRow) -> None:
        self.synced(db, cal, "E1", "a.ics")
        item = db.item_by_href(cal.id, "a.ics")
        assert item is not None
        db.forget_item(item.id)
        assert db.items(cal.id) == []


class TestTransactions:
    def test_an_exception_rolls_back_every_write_of_the_transaction(
        self, db: StateDB, cal: CollectionRow
    ) -> None:
        def failing_run() -> None:
            with db.transaction():
                db.set_token("acc", "CalendarEvent", "s2")
                db.record_error("x", collection_id=cal.id)
                raise RuntimeError("crash")

        with pytest.raises(RuntimeError):
            failing_run()
        assert db.get_token("acc", "CalendarEvent") is None
        assert db.errors() == []

    def test_an_unfinished_transaction_is_lost_as_a_whole_on_crash(self, tmp_path: Path) -> None:
        path = tmp_path / "s.sqlite"
        with StateDB(path) as before:
            before.set_token("acc", "CalendarEvent", "s1")
        # A process that dies in the middle of a transaction, without any cleanup.
        code = (
            "import os, sys\n"
            "from jmapsyncd.state import StateDB\n"
            "db = StateDB(sys.argv[1])\n"
            "with db.transaction():\n"
            "    db.set_token('acc', 'CalendarEvent', 's2')\n"
            "    db.record_error('half')\n"
            "    os._exit(3)\n"
        )
        proc = subprocess.run([sys.executable, "-c", code, str(path)], check=False)
        assert proc.returncode == 3
        with StateDB(path) as after:
            assert after.get_token("acc", "CalendarEvent") == "s1"
            assert after.errors() == []


class TestTokensErrorsConflictsRuns:
    def test_tokens_per_account_and_type(self, db: StateDB) -> None:
        assert db.get_token("acc", "CalendarEvent") is None
        db.set_token("acc", "CalendarEvent", "s1", now=WHEN)
        db.set_token("acc", "Task", "t1")
        db.set_token("acc", "CalendarEvent", "s2")
        assert db.get_token("acc", "CalendarEvent") == "s2"
        assert db.get_token("acc", "Task") == "t1"
        assert db.get_token("other", "Task") is None
        db.clear_token("acc", "Task")
        assert db.get_token("acc", "Task") is None

    def test_errors_are_listed_and_cleared_by_filter(self, db: StateDB, cal: CollectionRow) -> None:
        e1 = db.record_error("bad ics", collection_id=cal.id, href="a.ics", now=WHEN)
        db.record_error("rejected", collection_id=cal.id, jmap_id="E2", now=WHEN)
        assert (e1.message, e1.href, e1.at) == ("bad ics", "a.ics", "2026-01-02T03:04:05+00:00")
        db.clear_errors(href="a.ics")
        assert [e.message for e in db.errors(cal.id)] == ["rejected"]
        db.clear_errors()
        assert db.errors() == []

    def test_conflicts_stay_listed_until_resolved(self, db: StateDB, cal: CollectionRow) -> None:
        c = db.record_conflict(
            cal.id, href="a.ics", jmap_id="E1", copy_href="copy.ics", resolution="keep-both"
        )
        assert db.conflicts() == [c]
        assert not c.resolved
        db.resolve_conflict(c.id)
        assert db.conflicts() == []
        assert [x.resolved for x in db.conflicts(include_resolved=True)] == [True]

    def test_runs_keep_the_last_success_per_direction(
        self, db: StateDB, cal: CollectionRow
    ) -> None:
        db.record_run(cal.id, "pull", now=WHEN)
        db.record_run(cal.id, "pull", now=WHEN.replace(hour=9))
        db.record_run(cal.id, "push", now=WHEN)
        assert [(r.direction, r.finished_at[11:13]) for r in db.runs()] == [
            ("pull", "09"),
            ("push", "03"),
        ]


class TestDownloadJournal:
    """Schema v3: files about to be written from server objects, until their rows are recorded."""

    def pair(self, href: str, jmap_id: str = "E1", etag: str = "") -> SyncedPair:
        return SyncedPair(jmap_id, href, href.removesuffix(".ics"), etag, "lh", "sh")

    def test_a_journaled_download_is_pending_until_recorded(
        self, db: StateDB, cal: CollectionRow
    ) -> None:
        db.begin_downloads(cal.id, [self.pair("a.ics"), self.pair("b.ics", "E2")])
        assert db.pending_downloads(cal.id) == [self.pair("a.ics"), self.pair("b.ics", "E2")]
        db.record_synced_many(cal.id, [self.pair("a.ics", etag="t1")])
        assert db.pending_downloads(cal.id) == [self.pair("b.ics", "E2")]
        assert db.item_status(cal.id) == {"E1": ItemStatus("E1", "a.ics", "t1", "lh", "sh", "a")}
        db.end_downloads(cal.id, ["b.ics"])
        assert db.pending_downloads(cal.id) == []
        assert "E2" not in db.item_status(cal.id)

    def test_journaling_the_same_file_again_keeps_the_newest(
        self, db: StateDB, cal: CollectionRow
    ) -> None:
        db.begin_downloads(cal.id, [self.pair("a.ics")])
        db.begin_downloads(cal.id, [self.pair("a.ics", "E9")])
        assert db.pending_downloads(cal.id) == [self.pair("a.ics", "E9")]

    def test_deleting_the_collection_drops_its_journal(
        self, db: StateDB, cal: CollectionRow
    ) -> None:
        db.begin_downloads(cal.id, [self.pair("a.ics")])
        db.delete_collection(cal.id)
        assert db.pending_downloads(cal.id) == []

    def test_record_synced_many_is_one_transaction(self, db: StateDB, cal: CollectionRow) -> None:
        db.record_synced_many(cal.id, [self.pair("a.ics", "E1", "t")])
        # A synced row without a JMAP id breaks a CHECK: a refused write rolls every pair back.
        pairs = [self.pair(f"n{k}.ics", f"N{k}", "t") for k in range(3)]
        bad = SyncedPair(None, "bad.ics", None, "t", "lh", "sh")  # type: ignore[arg-type]
        with pytest.raises(StoreError):
            db.record_synced_many(cal.id, [*pairs, bad])
        assert set(db.item_status(cal.id)) == {"E1"}
        db.record_synced_many(cal.id, pairs)
        assert set(db.item_status(cal.id)) == {"E1", "N0", "N1", "N2"}


class TestSessionResource:
    def test_the_session_is_stored_and_replaced(self, db: StateDB) -> None:
        assert db.get_session() is None
        db.set_session({"version": 1, "session": {"apiUrl": "/a"}})
        db.set_session({"version": 1, "session": {"apiUrl": "/b"}})
        assert db.get_session() == {"version": 1, "session": {"apiUrl": "/b"}}

    def test_an_unreadable_stored_session_is_none(self, db: StateDB) -> None:
        with db.transaction():
            db._db.execute("INSERT INTO meta (key, value) VALUES ('session', '{broken')")
        assert db.get_session() is None
