"""The state database: JMAP ids ⇄ vdir paths ⇄ content hashes, state tokens, errors, conflicts.

Promises:

* :class:`StateDB` is the only code that speaks SQL to the state file. It opens the file in WAL
  mode with foreign keys on and ``synchronous=FULL`` (a committed row survives a power cut), and
  brings the schema up to :data:`~jmapsyncd.state.schema.SCHEMA_VERSION` with the ordered
  migrations of :mod:`jmapsyncd.state.schema`, each in its own transaction.
* Every write method runs in a transaction of its own, or joins the one opened by
  :meth:`StateDB.transaction`; a crash rolls back an unfinished transaction as a whole.
* Returned values are frozen dataclasses (:mod:`jmapsyncd.state.rows`).
* One writer: the daemon holds one :class:`StateDB`; a second process may read.

The order of file writes, server calls and rows that makes a crash recoverable is described in
``docs/sync.md``; the journal states of :class:`~jmapsyncd.state.rows.ItemState` serve it.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, cast

from sqlite_utils import Database

from jmapsyncd.errors import StoreError
from jmapsyncd.state.rows import (
    CollectionKind,
    CollectionRow,
    ConflictRow,
    Direction,
    ErrorRow,
    ItemRow,
    ItemState,
    RunRow,
    SyncedPair,
)
from jmapsyncd.state.schema import MIGRATIONS, SCHEMA_VERSION
from jmapsyncd.sync.plan import ItemStatus

__all__ = ["StateDB"]

_ITEM_COLUMNS = (
    "id, collection_id, jmap_id, uid, href, local_etag, local_hash, server_hash, status, "
    "pending_hash, pending_text"
)


def _now(now: datetime | None) -> str:
    return (now or datetime.now(UTC)).isoformat(timespec="seconds")


def _item(row: Mapping[str, Any]) -> ItemRow:
    return ItemRow(
        id=row["id"],
        collection_id=row["collection_id"],
        jmap_id=row["jmap_id"],
        uid=row["uid"],
        href=row["href"],
        local_etag=row["local_etag"],
        local_hash=row["local_hash"],
        server_hash=row["server_hash"],
        status=ItemState(row["status"]),
        pending_hash=row["pending_hash"],
        pending_text=row["pending_text"],
    )


def _collection(row: Mapping[str, Any]) -> CollectionRow:
    return CollectionRow(
        id=row["id"],
        account_id=row["account_id"],
        jmap_id=row["jmap_id"],
        kind=cast(CollectionKind, row["kind"]),
        folder=row["folder"],
        name=row["name"],
        color=row["color"],
    )


class StateDB:
    """The repository for all persistent sync state. Use as a context manager, or call close()."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        if str(path) != ":memory:":
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            except OSError as exc:
                raise StoreError(f"cannot create the folder for {self.path}: {exc}") from exc
        try:
            conn = sqlite3.connect(str(path), timeout=30)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open the state database {self.path}: {exc}") from exc
        self._db = Database(conn)
        try:
            self._configure()
            self._migrate()
        except BaseException:
            conn.close()
            raise

    # -- lifecycle -------------------------------------------------------------------------------

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> StateDB:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _configure(self) -> None:
        conn = self._db.conn
        try:
            conn.execute("PRAGMA foreign_keys = ON")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = FULL")
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{self.path} is not a usable SQLite database: {exc}") from exc

    @contextmanager
    def transaction(self) -> Iterator[StateDB]:
        """One transaction for several writes; nested calls join the outer one."""
        conn = self._db.conn
        if conn.in_transaction:
            yield self
            return
        # IMMEDIATE: take the write lock now, so a reader cannot make us fail half-way.
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield self
        except BaseException:
            conn.rollback()
            raise
        conn.commit()

    def _execute(self, sql: str, params: tuple[Any, ...] = ()) -> int:
        """Run one write inside a transaction; returns ``lastrowid``."""
        return self._write(sql, params).lastrowid or 0

    def _write(self, sql: str, params: tuple[Any, ...] = ()) -> sqlite3.Cursor:
        with self.transaction():
            try:
                return self._db.execute(sql, params)
            except sqlite3.IntegrityError as exc:
                raise StoreError(f"state database refused a write: {exc}") from exc

    def _query(self, sql: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        return list(self._db.query(sql, params))

    # -- schema ----------------------------------------------------------------------------------

    @property
    def schema_version(self) -> int:
        if "meta" not in self._db.table_names():
            return 0
        rows = self._query("SELECT value FROM meta WHERE key = 'schema_version'")
        return int(rows[0]["value"]) if rows else 0

    def _migrate(self) -> None:
        with self.transaction():
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)"
            )
        current = self.schema_version
        if current > SCHEMA_VERSION:
            raise StoreError(
                f"{self.path} has schema version {current}, newer than this jmapsyncd "
                f"understands ({SCHEMA_VERSION}); upgrade jmapsyncd"
            )
        for version in range(current + 1, SCHEMA_VERSION + 1):
            try:
                with self.transaction():
                    for statement in MIGRATIONS[version - 1]:
                        self._db.execute(statement)
                    self._db.execute(
                        "INSERT INTO meta (key, value) VALUES ('schema_version', ?) "
                        "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                        (str(version),),
                    )
            except sqlite3.Error as exc:
                raise StoreError(
                    f"{self.path}: migrating the schema to version {version} failed: {exc}"
                ) from exc

    # -- collections -----------------------------------------------------------------------------

    def upsert_collection(
        self,
        account_id: str,
        jmap_id: str,
        kind: CollectionKind,
        folder: str,
        name: str | None = None,
        color: str | None = None,
    ) -> CollectionRow:
        """Insert or update the collection ``(account_id, kind, jmap_id)``."""
        with self.transaction():
            self._execute(
                "INSERT INTO collections (account_id, jmap_id, kind, folder, name, color) "
                "VALUES (?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (account_id, kind, jmap_id) DO UPDATE SET "
                "folder = excluded.folder, name = excluded.name, color = excluded.color",
                (account_id, jmap_id, kind, folder, name, color),
            )
            row = self.get_collection(account_id, kind, jmap_id)
        assert row is not None
        return row

    def get_collection(
        self, account_id: str, kind: CollectionKind, jmap_id: str
    ) -> CollectionRow | None:
        rows = self._query(
            "SELECT * FROM collections WHERE account_id = ? AND kind = ? AND jmap_id = ?",
            (account_id, kind, jmap_id),
        )
        return _collection(rows[0]) if rows else None

    def collections(self, account_id: str | None = None) -> list[CollectionRow]:
        if account_id is None:
            rows = self._query("SELECT * FROM collections ORDER BY id")
        else:
            rows = self._query(
                "SELECT * FROM collections WHERE account_id = ? ORDER BY id", (account_id,)
            )
        return [_collection(r) for r in rows]

    def delete_collection(self, collection_id: int) -> None:
        """Forget a collection and, by cascade, its items, errors, conflicts and runs."""
        self._execute("DELETE FROM collections WHERE id = ?", (collection_id,))

    # -- items -----------------------------------------------------------------------------------

    def items(self, collection_id: int) -> list[ItemRow]:
        rows = self._query(
            f"SELECT {_ITEM_COLUMNS} FROM items WHERE collection_id = ? ORDER BY id",
            (collection_id,),
        )
        return [_item(r) for r in rows]

    def item_by_jmap_id(self, collection_id: int, jmap_id: str) -> ItemRow | None:
        rows = self._query(
            f"SELECT {_ITEM_COLUMNS} FROM items WHERE collection_id = ? AND jmap_id = ?",
            (collection_id, jmap_id),
        )
        return _item(rows[0]) if rows else None

    def item_by_href(self, collection_id: int, href: str) -> ItemRow | None:
        rows = self._query(
            f"SELECT {_ITEM_COLUMNS} FROM items WHERE collection_id = ? AND href = ?",
            (collection_id, href),
        )
        return _item(rows[0]) if rows else None

    def jmap_ids(self, collection_ids: Iterable[int]) -> set[str]:
        """The JMAP ids recorded in these collections."""
        ids = list(collection_ids)
        if not ids:
            return set()
        marks = ",".join("?" * len(ids))
        rows = self._query(
            f"SELECT jmap_id FROM items WHERE collection_id IN ({marks}) AND jmap_id IS NOT NULL",
            tuple(ids),
        )
        return {r["jmap_id"] for r in rows}

    def item_status(self, collection_id: int) -> dict[str, ItemStatus]:
        """The planner's ``status`` input: every item with a JMAP id and both sides recorded.

        Pending creates (no JMAP id yet) are left out: the engine must settle them first
        (see ``docs/sync.md``), or the planner would upload them a second time.
        """
        rows = self._query(
            f"SELECT {_ITEM_COLUMNS} FROM items WHERE collection_id = ? AND jmap_id IS NOT NULL "
            "AND local_etag IS NOT NULL AND local_hash IS NOT NULL AND server_hash IS NOT NULL "
            "ORDER BY jmap_id",
            (collection_id,),
        )
        out: dict[str, ItemStatus] = {}
        for r in rows:
            out[r["jmap_id"]] = ItemStatus(
                jmap_id=r["jmap_id"],
                href=r["href"],
                local_etag=r["local_etag"],
                local_hash=r["local_hash"],
                server_hash=r["server_hash"],
                uid=r["uid"],
            )
        return out

    def record_synced(
        self,
        collection_id: int,
        *,
        jmap_id: str,
        href: str,
        uid: str | None,
        local_etag: str,
        local_hash: str,
        server_hash: str,
    ) -> ItemRow:
        """Record that ``href`` and server object ``jmap_id`` hold the same item now.

        Replaces any row for the same JMAP id or the same href (the pair is the truth now).
        """
        with self.transaction():
            self.record_synced_many(
                collection_id,
                [SyncedPair(jmap_id, href, uid, local_etag, local_hash, server_hash)],
            )
            row = self.item_by_jmap_id(collection_id, jmap_id)
        assert row is not None
        return row

    def record_synced_many(self, collection_id: int, pairs: Iterable[SyncedPair]) -> None:
        """:meth:`record_synced` for many pairs in one transaction (one commit, one flush).

        Ends the download journal entry of each href too.
        """
        conn = self._db.conn
        with self.transaction():
            try:
                for p in pairs:
                    # Pair by pair, so a later pair replaces an earlier one as it would alone.
                    conn.execute(
                        "DELETE FROM items WHERE collection_id = ? AND (jmap_id = ? OR href = ?)",
                        (collection_id, p.jmap_id, p.href),
                    )
                    conn.execute(
                        "INSERT INTO items (collection_id, jmap_id, uid, href, local_etag, "
                        "local_hash, server_hash, status) VALUES (?, ?, ?, ?, ?, ?, ?, 'synced')",
                        (
                            collection_id,
                            p.jmap_id,
                            p.uid,
                            p.href,
                            p.local_etag,
                            p.local_hash,
                            p.server_hash,
                        ),
                    )
                    conn.execute(
                        "DELETE FROM downloads WHERE collection_id = ? AND href = ?",
                        (collection_id, p.href),
                    )
            except sqlite3.IntegrityError as exc:
                raise StoreError(f"state database refused a write: {exc}") from exc

    # -- download journal ------------------------------------------------------------------------

    def begin_downloads(self, collection_id: int, pairs: Iterable[SyncedPair]) -> None:
        """Journal files about to be written from server objects (one transaction).

        :meth:`record_synced_many` ends an entry; :meth:`pending_downloads` lists those a crash
        left open.
        """
        rows = [
            (collection_id, p.href, p.jmap_id, p.uid, p.local_hash, p.server_hash) for p in pairs
        ]
        if not rows:
            return
        with self.transaction():
            self._db.conn.executemany(
                "INSERT INTO downloads (collection_id, href, jmap_id, uid, local_hash, "
                "server_hash) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (collection_id, href) DO "
                "UPDATE SET jmap_id = excluded.jmap_id, uid = excluded.uid, "
                "local_hash = excluded.local_hash, server_hash = excluded.server_hash",
                rows,
            )

    def pending_downloads(self, collection_id: int) -> list[SyncedPair]:
        """Downloads journaled but not recorded (``local_etag`` is empty)."""
        rows = self._query(
            "SELECT href, jmap_id, uid, local_hash, server_hash FROM downloads "
            "WHERE collection_id = ? ORDER BY href",
            (collection_id,),
        )
        return [
            SyncedPair(r["jmap_id"], r["href"], r["uid"], "", r["local_hash"], r["server_hash"])
            for r in rows
        ]

    def end_downloads(self, collection_id: int, hrefs: Iterable[str]) -> None:
        """Drop journal entries without recording anything (the file was not written)."""
        with self.transaction():
            self._db.conn.executemany(
                "DELETE FROM downloads WHERE collection_id = ? AND href = ?",
                [(collection_id, h) for h in hrefs],
            )

    def begin_create(
        self,
        collection_id: int,
        *,
        href: str,
        uid: str | None,
        local_etag: str,
        local_hash: str,
    ) -> ItemRow:
        """Journal a server create of local ``href`` before sending it.

        Replaces an older row for the same href (e.g. the status of a destroyed server object
        whose local edit is being created again).
        """
        with self.transaction():
            self._execute(
                "DELETE FROM items WHERE collection_id = ? AND href = ?", (collection_id, href)
            )
            row_id = self._execute(
                "INSERT INTO items (collection_id, jmap_id, uid, href, local_etag, local_hash, "
                "status, pending_hash) VALUES (?, NULL, ?, ?, ?, ?, 'pending-create', ?)",
                (collection_id, uid, href, local_etag, local_hash, local_hash),
            )
        return self._item_by_id(row_id)

    def finish_create(self, item_id: int, *, jmap_id: str, server_hash: str) -> ItemRow:
        """The server accepted the create: record its id; the item is synced."""
        cursor = self._write(
            "UPDATE items SET jmap_id = ?, server_hash = ?, status = 'synced', "
            "pending_hash = NULL, pending_text = NULL WHERE id = ? AND status = 'pending-create'",
            (jmap_id, server_hash, item_id),
        )
        if cursor.rowcount != 1:
            raise StoreError(f"item {item_id} is not a pending create")
        return self._item_by_id(item_id)

    def mark_pending(
        self,
        item_id: int,
        state: ItemState,
        pending_hash: str | None = None,
        pending_text: str | None = None,
    ) -> ItemRow:
        """Journal a server update (with the text sent) or destroy of an item before sending it."""
        if state not in (ItemState.PENDING_UPDATE, ItemState.PENDING_DELETE):
            raise ValueError(f"mark_pending takes pending-update or pending-delete, not {state}")
        self._execute(
            "UPDATE items SET status = ?, pending_hash = ?, pending_text = ? "
            "WHERE id = ? AND jmap_id IS NOT NULL",
            (state.value, pending_hash, pending_text, item_id),
        )
        return self._item_by_id(item_id)

    def settle(self, item_id: int, *, server_hash: str | None = None) -> ItemRow:
        """End a pending update or delete: the row is plain status again.

        ``server_hash`` replaces the stored one. After a crash during an update, pass the hash
        of what the server holds now: the local file still differs from the stored local hash,
        so the planner sends the update again (idempotent), instead of seeing a conflict.
        """
        cursor = self._write(
            "UPDATE items SET status = 'synced', pending_hash = NULL, pending_text = NULL, "
            "server_hash = COALESCE(?, server_hash) "
            "WHERE id = ? AND status IN ('pending-update', 'pending-delete')",
            (server_hash, item_id),
        )
        if cursor.rowcount != 1:
            raise StoreError(f"item {item_id} is not a pending update or delete")
        return self._item_by_id(item_id)

    def pending_items(self, collection_id: int | None = None) -> list[ItemRow]:
        """Journal entries of server calls that may or may not have happened (to settle)."""
        sql = f"SELECT {_ITEM_COLUMNS} FROM items WHERE status != 'synced'"
        params: tuple[Any, ...] = ()
        if collection_id is not None:
            sql += " AND collection_id = ?"
            params = (collection_id,)
        return [_item(r) for r in self._query(sql + " ORDER BY id", params)]

    def forget_item(self, item_id: int) -> None:
        self._execute("DELETE FROM items WHERE id = ?", (item_id,))

    def _item_by_id(self, item_id: int) -> ItemRow:
        rows = self._query(f"SELECT {_ITEM_COLUMNS} FROM items WHERE id = ?", (item_id,))
        if not rows:
            raise StoreError(f"no item row {item_id}")
        return _item(rows[0])

    # -- collections being created for new local folders ----------------------------------------

    def begin_adoption(self, folder: str, name: str) -> None:
        """Journal that a collection named ``name`` is about to be created for ``folder``."""
        self._execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (f"adopting:{folder}", json.dumps({"name": name})),
        )

    def adoption(self, folder: str) -> str | None:
        """The name journaled by :meth:`begin_adoption` for ``folder`` and not ended, or None."""
        rows = self._query("SELECT value FROM meta WHERE key = ?", (f"adopting:{folder}",))
        if not rows:
            return None
        try:
            name = json.loads(rows[0]["value"]).get("name")
        except (ValueError, AttributeError):
            return None
        return name if isinstance(name, str) else None

    def end_adoption(self, folder: str) -> None:
        self._execute("DELETE FROM meta WHERE key = ?", (f"adopting:{folder}",))

    # -- session resource ------------------------------------------------------------------------

    def get_session(self) -> dict[str, Any] | None:
        """The JMAP session resource last stored (as the client exports it), or None."""
        rows = self._query("SELECT value FROM meta WHERE key = 'session'")
        if not rows:
            return None
        try:
            data = json.loads(rows[0]["value"])
        except ValueError:
            return None  # unreadable: the client fetches the session again
        return data if isinstance(data, dict) else None

    def set_session(self, data: Mapping[str, Any]) -> None:
        """Store the session resource so that the next process needs no discovery request.

        It holds no secret (the client exports no credentials), only what the server publishes
        to the account's owner.
        """
        self._execute(
            "INSERT INTO meta (key, value) VALUES ('session', ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (json.dumps(data, separators=(",", ":")),),
        )

    # -- state tokens ----------------------------------------------------------------------------

    def get_token(self, account_id: str, type_name: str) -> str | None:
        rows = self._query(
            "SELECT state FROM tokens WHERE account_id = ? AND type_name = ?",
            (account_id, type_name),
        )
        return str(rows[0]["state"]) if rows else None

    def set_token(
        self, account_id: str, type_name: str, state: str, *, now: datetime | None = None
    ) -> None:
        """Store a state token. Call only once every change it covers has been applied."""
        self._execute(
            "INSERT INTO tokens (account_id, type_name, state, updated_at) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (account_id, type_name) DO UPDATE SET "
            "state = excluded.state, updated_at = excluded.updated_at",
            (account_id, type_name, state, _now(now)),
        )

    def set_token_family(self, account_id: str, base: str, type_name: str, state: str) -> None:
        """Store ``type_name``'s token and drop the others named ``base`` or ``base#…``."""
        with self.transaction():
            self._execute(
                "DELETE FROM tokens WHERE account_id = ? AND type_name != ? AND "
                "(type_name = ? OR substr(type_name, 1, ?) = ?)",
                (account_id, type_name, base, len(base) + 1, base + "#"),
            )
            self.set_token(account_id, type_name, state)

    def clear_token(self, account_id: str, type_name: str) -> None:
        """Forget a token (after ``cannotCalculateChanges``: the next pull is a full one)."""
        self._execute(
            "DELETE FROM tokens WHERE account_id = ? AND type_name = ?", (account_id, type_name)
        )

    # -- errors ----------------------------------------------------------------------------------

    def record_error(
        self,
        message: str,
        *,
        collection_id: int | None = None,
        jmap_id: str | None = None,
        href: str | None = None,
        now: datetime | None = None,
    ) -> ErrorRow:
        row_id = self._execute(
            "INSERT INTO errors (collection_id, jmap_id, href, message, at) VALUES (?, ?, ?, ?, ?)",
            (collection_id, jmap_id, href, message, _now(now)),
        )
        return next(e for e in self.errors() if e.id == row_id)

    def errors(self, collection_id: int | None = None) -> list[ErrorRow]:
        sql = "SELECT * FROM errors"
        params: tuple[Any, ...] = ()
        if collection_id is not None:
            sql += " WHERE collection_id = ?"
            params = (collection_id,)
        return [ErrorRow(**r) for r in self._query(sql + " ORDER BY id", params)]

    def clear_errors(
        self,
        *,
        collection_id: int | None = None,
        jmap_id: str | None = None,
        href: str | None = None,
    ) -> None:
        """Drop error rows matching every given filter (all rows if none is given)."""
        clauses: list[str] = []
        params: list[Any] = []
        for column, value in (
            ("collection_id", collection_id),
            ("jmap_id", jmap_id),
            ("href", href),
        ):
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(value)
        where = " WHERE " + " AND ".join(clauses) if clauses else ""
        self._execute("DELETE FROM errors" + where, tuple(params))

    # -- conflicts -------------------------------------------------------------------------------

    def record_conflict(
        self,
        collection_id: int,
        *,
        href: str,
        resolution: str,
        jmap_id: str | None = None,
        copy_href: str | None = None,
        now: datetime | None = None,
    ) -> ConflictRow:
        row_id = self._execute(
            "INSERT INTO conflicts (collection_id, jmap_id, href, copy_href, resolution, at) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (collection_id, jmap_id, href, copy_href, resolution, _now(now)),
        )
        return next(c for c in self.conflicts(include_resolved=True) if c.id == row_id)

    def conflicts(self, *, include_resolved: bool = False) -> list[ConflictRow]:
        sql = "SELECT * FROM conflicts"
        if not include_resolved:
            sql += " WHERE resolved = 0"
        rows = self._query(sql + " ORDER BY id")
        return [ConflictRow(**{**r, "resolved": bool(r["resolved"])}) for r in rows]

    def resolve_conflict(self, conflict_id: int) -> None:
        self._execute("UPDATE conflicts SET resolved = 1 WHERE id = ?", (conflict_id,))

    # -- runs ------------------------------------------------------------------------------------

    def record_run(
        self, collection_id: int, direction: Direction, *, now: datetime | None = None
    ) -> None:
        """Remember the end of a successful pull or push of a collection."""
        self._execute(
            "INSERT INTO runs (collection_id, direction, finished_at) VALUES (?, ?, ?) "
            "ON CONFLICT (collection_id, direction) DO UPDATE SET "
            "finished_at = excluded.finished_at",
            (collection_id, direction, _now(now)),
        )

    def runs(self) -> list[RunRow]:
        rows = self._query("SELECT * FROM runs ORDER BY collection_id, direction")
        return [
            RunRow(r["collection_id"], cast(Direction, r["direction"]), r["finished_at"])
            for r in rows
        ]
