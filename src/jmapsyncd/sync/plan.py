"""The sync planner: decide, item by item, what to do to bring a collection and the server together.

Promise: :func:`plan` is a pure function (no I/O, no clock, no randomness; the same inputs give the
same list) from three views of one collection --

* the **server** side: JMAP id → :class:`ServerEntry` (a content hash and the UID), either a full
  listing or, via :func:`apply_changes`, the stored status plus a ``/changes`` result;
* the **local** side: href → :class:`LocalEntry` (etag, content hash, UID) from the vdir listing;
* the stored **status**: one :class:`ItemStatus` per item synced before, what each side held then;

-- to a list of :class:`Action` values, at most one per item, that the engine carries out. The
decision table (also in ``docs/sync.md``) is written out as commented branches in :func:`plan`.
Its rules: an item changed on one side only is copied to the other; deleted on one side and
unchanged on the other, it is deleted; **deleted on one side and edited on the other, the edit
wins**; changed on both sides it is a :class:`Conflict`, resolved by the :class:`ConflictPolicy`
(``keep-both`` keeps the server version in place and saves the local version as a new item with a
fresh UID, so nothing is lost). Hashes of the two sides are compared only to recognise that both
already hold the same content; the engine makes them comparable by hashing the text it writes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from jmapsyncd.vdir.names import href_for_uid

__all__ = [
    "Action",
    "Conflict",
    "ConflictPolicy",
    "DeleteLocal",
    "DeleteRemote",
    "DownloadNew",
    "DownloadUpdate",
    "ForgetStatus",
    "ItemStatus",
    "LocalEntry",
    "RecordStatus",
    "ServerChanges",
    "ServerEntry",
    "UploadNew",
    "UploadUpdate",
    "apply_changes",
    "plan",
]


class ConflictPolicy(StrEnum):
    """What to do with an item changed on both sides."""

    KEEP_BOTH = "keep-both"
    SERVER_WINS = "server-wins"
    LOCAL_WINS = "local-wins"


# -- inputs ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ServerEntry:
    """What the server holds for one JMAP id now."""

    hash: str
    uid: str | None = None


@dataclass(frozen=True, slots=True)
class LocalEntry:
    """What the vdir holds for one href now.

    ``hash`` may be ``None`` when the etag equals the stored one (the engine need not read the
    file); an etag that differs with no hash counts as a change.
    """

    etag: str
    hash: str | None = None
    uid: str | None = None


@dataclass(frozen=True, slots=True)
class ItemStatus:
    """What both sides held when the item was last synced."""

    jmap_id: str
    href: str
    local_etag: str
    local_hash: str
    server_hash: str
    uid: str | None = None


@dataclass(frozen=True, slots=True)
class ServerChanges:
    """A ``Foo/changes`` result with the new content hashes of created and updated objects."""

    changed: Mapping[str, ServerEntry]
    destroyed: frozenset[str]


def apply_changes(
    status: Mapping[str, ItemStatus], changes: ServerChanges
) -> dict[str, ServerEntry]:
    """The full server view implied by the stored status (keyed by JMAP id) and a change set.

    Ids neither changed nor destroyed are assumed unchanged since the status was stored.
    """
    view = {jid: ServerEntry(s.server_hash, s.uid) for jid, s in status.items()}
    view.update(changes.changed)
    for jid in changes.destroyed:
        view.pop(jid, None)
    return view


# -- actions -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DownloadNew:
    """Write the server object ``jmap_id`` to the new local file ``href``; record its status.

    ``replaces_status`` is set when an old status row for the same id must be replaced (the local
    file was deleted while the server edited the item: the edit wins, the file comes back).
    """

    jmap_id: str
    href: str
    replaces_status: bool = False


@dataclass(frozen=True, slots=True)
class DownloadUpdate:
    """Overwrite local ``href`` (expected etag ``etag``) with server object ``jmap_id``."""

    jmap_id: str
    href: str
    etag: str


@dataclass(frozen=True, slots=True)
class DeleteLocal:
    """Delete local ``href`` (expected etag ``etag``): the server deleted ``jmap_id``."""

    jmap_id: str
    href: str
    etag: str


@dataclass(frozen=True, slots=True)
class UploadNew:
    """Create a server object from local ``href``; record its status.

    ``stale_jmap_id`` names the destroyed server object whose status row this one replaces
    (server deleted, local edited: the edit wins and is created again).
    """

    href: str
    etag: str
    stale_jmap_id: str | None = None


@dataclass(frozen=True, slots=True)
class UploadUpdate:
    """Send local ``href`` (read at ``etag``) over server object ``jmap_id``."""

    jmap_id: str
    href: str
    etag: str


@dataclass(frozen=True, slots=True)
class DeleteRemote:
    """Destroy server object ``jmap_id``: the local file ``href`` was deleted."""

    jmap_id: str
    href: str


@dataclass(frozen=True, slots=True)
class Conflict:
    """Both sides changed the item differently; ``resolution`` says what the engine does.

    * ``keep-both``: write the server version over ``href`` and save the local version (read at
      ``etag``) as a new item with a fresh UID, uploaded as a new object; record the conflict.
    * ``server-wins``: as :class:`DownloadUpdate`.  ``local-wins``: as :class:`UploadUpdate`.

    ``had_status`` is false when both sides created the item independently (same UID).
    """

    jmap_id: str
    href: str
    etag: str
    resolution: ConflictPolicy
    had_status: bool = True


@dataclass(frozen=True, slots=True)
class RecordStatus:
    """Both sides already agree (or only the local etag moved); store what we saw, copy nothing."""

    jmap_id: str
    href: str
    etag: str
    local_hash: str
    server_hash: str
    had_status: bool = True


@dataclass(frozen=True, slots=True)
class ForgetStatus:
    """The item is gone from both sides: drop its status row."""

    jmap_id: str
    href: str


Action = (
    DownloadNew
    | DownloadUpdate
    | DeleteLocal
    | UploadNew
    | UploadUpdate
    | DeleteRemote
    | Conflict
    | RecordStatus
    | ForgetStatus
)


# -- the decision table ------------------------------------------------------------------------


def _local_changed(entry: LocalEntry, status: ItemStatus) -> bool:
    if entry.etag == status.local_etag:
        return False
    # A new etag with the same content is a touch, not an edit.
    return entry.hash is None or entry.hash != status.local_hash


def _fallback_href(uid: str | None, jmap_id: str) -> str:
    # NUL never occurs in a UID or id, so this name is always hashed and cannot clash with a
    # readable one.
    return href_for_uid(f"{uid}\x00{jmap_id}")


def plan(
    server: Mapping[str, ServerEntry],
    local: Mapping[str, LocalEntry],
    status: Mapping[str, ItemStatus] | list[ItemStatus],
    policy: ConflictPolicy = ConflictPolicy.KEEP_BOTH,
) -> list[Action]:
    """The actions that bring ``server`` and ``local`` together, given the last synced ``status``.

    ``status`` is keyed by JMAP id (or a plain sequence of rows). Actions come in a stable order:
    items with status first (by JMAP id), then new server items, then new local items.
    """
    rows = sorted(status.values() if isinstance(status, Mapping) else status, key=_by_id)
    actions: list[Action] = []
    known_hrefs = {s.href for s in rows}
    taken_hrefs = set(local) | known_hrefs

    for s in rows:
        srv = server.get(s.jmap_id)
        loc = local.get(s.href)
        if srv is None and loc is None:
            # gone on both sides -> nothing to copy; the status row is obsolete
            actions.append(ForgetStatus(s.jmap_id, s.href))
            continue
        server_changed = srv is not None and srv.hash != s.server_hash
        if loc is None:
            assert srv is not None
            if server_changed:
                # local deleted, server edited -> the edit wins: download it again
                actions.append(DownloadNew(s.jmap_id, s.href, replaces_status=True))
            else:
                # local deleted, server unchanged -> delete on the server
                actions.append(DeleteRemote(s.jmap_id, s.href))
            continue
        local_changed = _local_changed(loc, s)
        if srv is None:
            if local_changed:
                # server deleted, local edited -> the edit wins: create it on the server again
                actions.append(UploadNew(s.href, loc.etag, stale_jmap_id=s.jmap_id))
            else:
                # server deleted, local unchanged -> delete the local file
                actions.append(DeleteLocal(s.jmap_id, s.href, loc.etag))
            continue
        if not local_changed and not server_changed:
            if loc.etag != s.local_etag:
                # same content, new etag (touched, or rewritten identically) -> remember the etag
                actions.append(
                    RecordStatus(s.jmap_id, s.href, loc.etag, s.local_hash, s.server_hash)
                )
            # else: in sync -> nothing to do
            continue
        if local_changed and not server_changed:
            # local edited, server unchanged -> upload
            actions.append(UploadUpdate(s.jmap_id, s.href, loc.etag))
        elif server_changed and not local_changed:
            # server edited, local unchanged -> download
            actions.append(DownloadUpdate(s.jmap_id, s.href, loc.etag))
        elif loc.hash is not None and loc.hash == srv.hash:
            # both edited to the same content -> record it
            actions.append(RecordStatus(s.jmap_id, s.href, loc.etag, loc.hash, srv.hash))
        else:
            # both edited differently -> conflict, resolved by the policy
            actions.append(Conflict(s.jmap_id, s.href, loc.etag, policy))

    # Items without status: new on one side, or new on both (matched by UID).
    known_ids = {s.jmap_id for s in rows}
    new_local = {href: e for href, e in local.items() if href not in known_hrefs}
    new_local_by_uid = {e.uid: href for href, e in sorted(new_local.items()) if e.uid is not None}
    matched_local: set[str] = set()

    for jmap_id in sorted(set(server) - known_ids):
        srv = server[jmap_id]
        match = _match_local(srv, new_local, new_local_by_uid, matched_local)
        if match is None:
            # new on the server only -> download to the UID's name (or a fallback if taken)
            href = href_for_uid(srv.uid) if srv.uid is not None else _fallback_href(None, jmap_id)
            if href in taken_hrefs:
                href = _fallback_href(srv.uid, jmap_id)
            taken_hrefs.add(href)
            actions.append(DownloadNew(jmap_id, href))
            continue
        matched_local.add(match)
        loc = new_local[match]
        if loc.hash is not None and loc.hash == srv.hash:
            # new on both sides with the same content -> link them, copy nothing
            actions.append(
                RecordStatus(jmap_id, match, loc.etag, loc.hash, srv.hash, had_status=False)
            )
        else:
            # new on both sides, same UID, different content -> conflict
            actions.append(Conflict(jmap_id, match, loc.etag, policy, had_status=False))

    for href in sorted(set(new_local) - matched_local):
        # new locally only -> upload
        actions.append(UploadNew(href, new_local[href].etag))
    return actions


def _by_id(s: ItemStatus) -> str:
    return s.jmap_id


def _match_local(
    srv: ServerEntry,
    new_local: Mapping[str, LocalEntry],
    by_uid: Mapping[str, str],
    matched: set[str],
) -> str | None:
    """The new local href holding the same item as a new server object, if any."""
    if srv.uid is None:
        return None
    href = by_uid.get(srv.uid)
    if href is None:
        # A file whose UID the engine did not read: its name tells.
        candidate = href_for_uid(srv.uid)
        entry = new_local.get(candidate)
        if entry is not None and entry.uid is None:
            href = candidate
    if href is None or href in matched:
        return None
    return href
