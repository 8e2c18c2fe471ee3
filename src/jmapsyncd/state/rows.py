"""Immutable rows the state database hands to its callers.

Promise: every value returned by :class:`~jmapsyncd.state.db.StateDB` is one of these frozen
dataclasses (or a planner :class:`~jmapsyncd.sync.plan.ItemStatus`); no SQLite row or dict
leaks out.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

__all__ = [
    "CollectionKind",
    "CollectionRow",
    "ConflictRow",
    "Direction",
    "ErrorRow",
    "ItemRow",
    "ItemState",
    "RunRow",
    "SyncedPair",
]

CollectionKind = Literal["calendar", "tasklist"]
Direction = Literal["pull", "push"]


class ItemState(StrEnum):
    """Where an item stands; anything but ``synced`` is a journal entry for a server call."""

    SYNCED = "synced"
    #: written before a server create; ``jmap_id`` is unknown until the server answers
    PENDING_CREATE = "pending-create"
    #: written before a server update of content ``pending_hash``
    PENDING_UPDATE = "pending-update"
    #: written before a server destroy
    PENDING_DELETE = "pending-delete"


@dataclass(frozen=True, slots=True)
class CollectionRow:
    id: int
    account_id: str
    jmap_id: str
    kind: CollectionKind
    folder: str
    name: str | None
    color: str | None


@dataclass(frozen=True, slots=True)
class ItemRow:
    id: int
    collection_id: int
    jmap_id: str | None
    uid: str | None
    href: str
    local_etag: str | None
    local_hash: str | None
    server_hash: str | None
    status: ItemState
    pending_hash: str | None
    #: the text a pending update sent (schema v2), to recognise it on the server after a crash
    pending_text: str | None = None


@dataclass(frozen=True, slots=True)
class ErrorRow:
    id: int
    collection_id: int | None
    jmap_id: str | None
    href: str | None
    message: str
    at: str


@dataclass(frozen=True, slots=True)
class ConflictRow:
    id: int
    collection_id: int
    jmap_id: str | None
    href: str
    copy_href: str | None
    resolution: str
    at: str
    resolved: bool


@dataclass(frozen=True, slots=True)
class RunRow:
    collection_id: int
    direction: Direction
    finished_at: str


@dataclass(frozen=True, slots=True)
class SyncedPair:
    """A local file and a server object that hold the same item (input of a bulk record).

    As a download journal entry (:meth:`StateDB.begin_downloads`) ``local_etag`` is unused: the
    file is not written yet.
    """

    jmap_id: str
    href: str
    uid: str | None
    local_etag: str
    local_hash: str
    server_hash: str
