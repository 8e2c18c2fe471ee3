"""The state database schema as an ordered list of migrations.

Promise: migration ``n`` (1-based) takes a database at schema version ``n - 1`` to version ``n``;
migrations are only ever appended, never edited, so any older database can be brought up to date.
Each one runs inside a single transaction together with the version bump (SQLite DDL is
transactional), so a crash leaves the database at the old version or the new one.
"""

from __future__ import annotations

__all__ = ["MIGRATIONS", "SCHEMA_VERSION"]

_V1 = (
    """
    CREATE TABLE collections (
        id INTEGER PRIMARY KEY,
        account_id TEXT NOT NULL,
        jmap_id TEXT NOT NULL,
        kind TEXT NOT NULL CHECK (kind IN ('calendar', 'tasklist')),
        folder TEXT NOT NULL,
        name TEXT,
        color TEXT
    )
    """,
    "CREATE UNIQUE INDEX collections_jmap_id ON collections (account_id, kind, jmap_id)",
    "CREATE UNIQUE INDEX collections_folder ON collections (folder)",
    """
    CREATE TABLE items (
        id INTEGER PRIMARY KEY,
        collection_id INTEGER NOT NULL REFERENCES collections (id) ON DELETE CASCADE,
        jmap_id TEXT,
        uid TEXT,
        href TEXT NOT NULL,
        local_etag TEXT,
        local_hash TEXT,
        server_hash TEXT,
        status TEXT NOT NULL DEFAULT 'synced'
            CHECK (status IN ('synced', 'pending-create', 'pending-update', 'pending-delete')),
        pending_hash TEXT,
        CHECK (jmap_id IS NOT NULL OR status = 'pending-create')
    )
    """,
    # NULL jmap ids (pending creates) do not collide: SQLite treats NULLs as distinct.
    "CREATE UNIQUE INDEX items_jmap_id ON items (collection_id, jmap_id)",
    "CREATE UNIQUE INDEX items_href ON items (collection_id, href)",
    "CREATE INDEX items_status ON items (status) WHERE status != 'synced'",
    """
    CREATE TABLE tokens (
        account_id TEXT NOT NULL,
        type_name TEXT NOT NULL,
        state TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        PRIMARY KEY (account_id, type_name)
    )
    """,
    """
    CREATE TABLE errors (
        id INTEGER PRIMARY KEY,
        collection_id INTEGER REFERENCES collections (id) ON DELETE CASCADE,
        jmap_id TEXT,
        href TEXT,
        message TEXT NOT NULL,
        at TEXT NOT NULL
    )
    """,
    """
    CREATE TABLE conflicts (
        id INTEGER PRIMARY KEY,
        collection_id INTEGER NOT NULL REFERENCES collections (id) ON DELETE CASCADE,
        jmap_id TEXT,
        href TEXT NOT NULL,
        copy_href TEXT,
        resolution TEXT NOT NULL,
        at TEXT NOT NULL,
        resolved INTEGER NOT NULL DEFAULT 0
    )
    """,
    """
    CREATE TABLE runs (
        collection_id INTEGER NOT NULL REFERENCES collections (id) ON DELETE CASCADE,
        direction TEXT NOT NULL CHECK (direction IN ('pull', 'push')),
        finished_at TEXT NOT NULL,
        PRIMARY KEY (collection_id, direction)
    )
    """,
)

# v2: a pending update also journals the text it sent, so that after a lost answer the engine
# can tell whether the server holds our update even when the file has changed again since.
_V2 = ("ALTER TABLE items ADD COLUMN pending_text TEXT",)

# v3: the download journal. Files are written in chunks and flushed together; each chunk is
# journaled first, so that after a crash a file holding exactly what was being written is known
# for that server version, not mistaken for a local edit or a new local item.
_V3 = (
    """
    CREATE TABLE downloads (
        collection_id INTEGER NOT NULL REFERENCES collections (id) ON DELETE CASCADE,
        href TEXT NOT NULL,
        jmap_id TEXT NOT NULL,
        uid TEXT,
        local_hash TEXT NOT NULL,
        server_hash TEXT NOT NULL,
        PRIMARY KEY (collection_id, href)
    )
    """,
)

#: Ordered migrations; index 0 is migration 1.
MIGRATIONS: tuple[tuple[str, ...], ...] = (_V1, _V2, _V3)
SCHEMA_VERSION = len(MIGRATIONS)
