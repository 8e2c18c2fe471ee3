"""Persistent sync state in SQLite (see :mod:`jmapsyncd.state.db` for the promises)."""

from jmapsyncd.state.db import StateDB
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
from jmapsyncd.state.schema import SCHEMA_VERSION

__all__ = [
    "SCHEMA_VERSION",
    "CollectionKind",
    "CollectionRow",
    "ConflictRow",
    "Direction",
    "ErrorRow",
    "ItemRow",
    "ItemState",
    "RunRow",
    "StateDB",
    "SyncedPair",
]
