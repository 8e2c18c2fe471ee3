"""The sync engine: one two-way pass between a JMAP account and the vdir.

Promise: :meth:`SyncEngine.sync` brings every calendar (and, when the server offers JMAP Tasks,
every task list) of the account and its vdir folder together, and returns a :class:`SyncReport`.
It asks the server only for what changed since the stored state token (RFC 8620 §5.2), falls back
to a full listing when there is no token or the server answers ``cannotCalculateChanges``, lets
the pure planner (:mod:`jmapsyncd.sync.plan`) decide item by item, and carries the plan out.

Safety rules, each with the reason it exists:

* A state token is stored only after every change it covers has been applied; a pass that fails
  half-way, or a server change that could not be written here (a file edited meanwhile, an
  object the converter refuses), leaves the old token, so the next pass sees the same changes
  again.
* Server calls a crash left open are settled before planning: a create is found again by UID.
* Every server call is journaled in the state database first (``begin_create``/``mark_pending``)
  and every file write happens before its status row is recorded. After a crash, what the server
  or the vdir already holds is recognised by UID and content (:func:`same_content`) and linked,
  never copied twice.
* A local file that cannot be read or converted, or that the store skips (a symlink leading
  outside the vdir), is reported and left alone: it is never pushed, deleted or rewritten, and
  its server item is not deleted either.
* A server object whose UID is empty or holds control characters is reported, not written.
* Names on disk come from :mod:`jmapsyncd.vdir.names` (hashed when unsafe), never from raw ids.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import queue
import re
import stat
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

from jmapsyncd.convert import ical_to_jscal, jscal_to_ical
from jmapsyncd.errors import (
    ConversionError,
    JMAPSetError,
    PreconditionFailed,
    StoreError,
    SyncInterrupted,
)
from jmapsyncd.protocol.flows import OnPage
from jmapsyncd.protocol.values import ChangeSet, KindPull, Pull, SetResult
from jmapsyncd.state import StateDB
from jmapsyncd.state.rows import (
    CollectionKind,
    CollectionRow,
    ErrorRow,
    ItemRow,
    ItemState,
    SyncedPair,
)
from jmapsyncd.sync.plan import (
    Action,
    Conflict,
    ConflictPolicy,
    DeleteLocal,
    DeleteRemote,
    DownloadNew,
    DownloadUpdate,
    ForgetStatus,
    ItemStatus,
    LocalEntry,
    RecordStatus,
    ServerChanges,
    ServerEntry,
    UploadNew,
    UploadUpdate,
    apply_changes,
    plan,
)
from jmapsyncd.sync.selection import is_selected
from jmapsyncd.vdir import Item, Vdir, VdirCollection, etag_of, href_for_uid, is_item_href
from jmapsyncd.vdir.filesystem import COLOR, DISPLAYNAME

log = logging.getLogger(__name__)

TASKS_CAPABILITY = "urn:ietf:params:jmap:tasks"

# Properties a server sets or bumps by itself: they never make two versions differ in meaning.
_VOLATILE = frozenset(
    {"id", "calendarIds", "taskListId", "created", "updated", "sequence", "prodId", "@type"}
)
# Defaults of RFC 8984 (§4.2.3, §4.2.4, §4.3.6, §4.4.1-3, §4.5.1, §5.1.3) and of the JMAP
# Calendars draft (isDraft): a server that spells a default out says nothing new.
_DEFAULTS: Mapping[str, Any] = {
    "descriptionContentType": "text/plain",
    "showWithoutTime": False,
    "excluded": False,
    "priority": 0,
    "freeBusyStatus": "busy",
    "privacy": "public",
    "useDefaultAlerts": False,
    "status": "confirmed",
    "isDraft": False,
}
# Never sent in an update patch: identity, and properties servers treat as immutable.
_NOT_PATCHED = frozenset({"id", "uid", "@type", "isOrigin", "baseEventId", "method"})


class SyncClient(Protocol):
    """The part of :class:`jmapsyncd.jmap.JMAPClient` the engine uses (its sync API)."""

    def get_session(self) -> Any: ...
    def export_session(self) -> dict[str, Any] | None: ...
    def import_session(self, data: Mapping[str, Any]) -> bool: ...
    def pull(
        self,
        *,
        calendar_state: str | None,
        event_state: str | None,
        task_list_state: str | None = None,
        task_state: str | None = None,
        tasks: bool = True,
        max_changes: int | None = None,
    ) -> Pull: ...
    def create_calendar(self, name: str, color: str | None = None) -> str: ...
    def update_calendar(self, calendar_id: str, patch: dict[str, Any]) -> None: ...
    def get_events(self, ids: Iterable[str]) -> list[dict[str, Any]]: ...
    def get_all_events(
        self, calendar_id: str | None = None, *, on_page: OnPage | None = None
    ) -> tuple[list[dict[str, Any]], str]: ...
    def fetch_calendars(self) -> tuple[list[dict[str, Any]], str]: ...
    def set_events(
        self,
        create: Mapping[str, dict[str, Any]] | None = None,
        update: Mapping[str, dict[str, Any]] | None = None,
        destroy: Iterable[str] | None = None,
    ) -> SetResult: ...
    def create_task_list(self, name: str) -> str: ...
    def get_tasks(self, ids: Iterable[str]) -> list[dict[str, Any]]: ...
    def get_all_tasks(
        self, task_list_id: str | None = None, *, on_page: OnPage | None = None
    ) -> tuple[list[dict[str, Any]], str]: ...
    def get_task_lists(self) -> list[dict[str, Any]]: ...
    def set_tasks(
        self,
        create: Mapping[str, dict[str, Any]] | None = None,
        update: Mapping[str, dict[str, Any]] | None = None,
        destroy: Iterable[str] | None = None,
    ) -> SetResult: ...


# -- values ------------------------------------------------------------------------------------


@dataclass
class SyncReport:
    """What one pass did; ``errors`` are per-item problems that did not stop the pass."""

    downloaded: int = 0
    uploaded: int = 0
    deleted_local: int = 0
    deleted_remote: int = 0
    conflicts: int = 0
    collections_created: int = 0
    collections_deleted: int = 0
    full: bool = False
    errors: list[str] = field(default_factory=list)
    #: items synced, but the server keeps them without some content (the file still has it)
    warnings: list[str] = field(default_factory=list)

    @property
    def changed(self) -> int:
        return self.downloaded + self.uploaded + self.deleted_local + self.deleted_remote


@dataclass(frozen=True)
class _Kind:
    """Events in calendars, or tasks in task lists: the same sync over different methods."""

    collection_kind: CollectionKind
    token_type: str
    collection_type: str
    create_collection: Callable[[str, str | None], str]
    get: Callable[[Iterable[str]], list[dict[str, Any]]]
    #: ``get_all(on_page=callback)``: every object and the state read before listing
    get_all: Callable[..., tuple[list[dict[str, Any]], str]]
    set: Callable[..., SetResult]
    list_collections: Callable[[], list[dict[str, Any]]]

    def collection_of(self, obj: Mapping[str, Any]) -> str | None:
        if self.collection_kind == "tasklist":
            value = obj.get("taskListId")
            return value if isinstance(value, str) else None
        ids = obj.get("calendarIds")
        if isinstance(ids, Mapping):
            chosen = sorted(k for k, v in ids.items() if v)
            return chosen[0] if chosen else None
        return None

    def place(self, obj: dict[str, Any], collection_id: str) -> dict[str, Any]:
        if self.collection_kind == "tasklist":
            return {**obj, "taskListId": collection_id}
        return {**obj, "calendarIds": {collection_id: True}}


# -- pure helpers ------------------------------------------------------------------------------


def server_hash(obj: Mapping[str, Any]) -> str:
    """A stable digest of a server object as received (key order does not matter)."""
    blob = json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8", "surrogatepass")).hexdigest()


class _Ahead:
    """Work on server objects done before the plan asks for it, while later pages download.

    Keyed by the object itself (its ``id()``, with a reference held so the number is not
    reused): a fresh copy of the same JMAP id fetched later in the pass is never taken for it.
    """

    def __init__(self) -> None:
        self._hashes: dict[int, tuple[Mapping[str, Any], str]] = {}
        self._texts: dict[int, tuple[dict[str, Any], str | ConversionError]] = {}

    def server_hash(self, obj: Mapping[str, Any]) -> str:
        hit = self._hashes.get(id(obj))
        if hit is not None and hit[0] is obj:
            return hit[1]
        digest = server_hash(obj)
        self._hashes[id(obj)] = (obj, digest)
        return digest

    def convert(self, obj: dict[str, Any]) -> None:
        """Convert ``obj`` to iCalendar now; :meth:`take_text` hands the result out once."""
        try:
            text: str | ConversionError = jscal_to_ical(obj)
        except ConversionError as exc:
            text = exc
        self._texts[id(obj)] = (obj, text)

    def take_text(self, obj: dict[str, Any]) -> str:
        """The iCalendar text of ``obj``, converted ahead or now; raises ConversionError."""
        hit = self._texts.pop(id(obj), None)
        if hit is None or hit[0] is not obj:
            return jscal_to_ical(obj)
        if isinstance(hit[1], ConversionError):
            raise hit[1]
        return hit[1]

    def clear(self) -> None:
        self._hashes.clear()
        self._texts.clear()


def _report_dropped(
    coll: VdirCollection, href: str, paths: Sequence[str] | None, report: SyncReport
) -> None:
    """Say which parts of an uploaded item the server would not keep (the file keeps them)."""
    if not paths:
        return
    message = (
        f"{coll.name}/{href}: the server keeps it without {', '.join(paths)}; "
        "the file still has them"
    )
    log.info(message)  # the protocol layer has warned already, naming the UID
    report.warnings.append(message)


def _meaning(obj: Mapping[str, Any]) -> dict[str, Any]:
    """The properties that make a difference: no server bookkeeping, no spelled-out defaults."""
    return {
        k: v
        for k, v in obj.items()
        if v is not None
        and v not in ("", {}, [])
        and k not in _VOLATILE
        and not (k in _DEFAULTS and _DEFAULTS[k] == v and type(_DEFAULTS[k]) is type(v))
    }


def same_content(local_text: str, server_obj: Mapping[str, Any]) -> bool:
    """Whether a local file and a server object say the same thing.

    Both go through the converter to the same form first, so a file we wrote from this object,
    or an object the server made from this file, compares equal. Used to link the two sides after
    a crash instead of copying an item twice; when unsure it answers False (a conflict, in which
    the configured policy loses nothing).
    """
    try:
        [local] = ical_to_jscal(local_text)
        [server] = ical_to_jscal(jscal_to_ical(dict(server_obj)))
    except (ConversionError, ValueError):
        return False
    return _meaning(local) == _meaning(server)


def update_patch(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    """A PatchObject (RFC 8620 §5.3) turning server object ``old`` into converted file ``new``.

    Properties the file no longer has are removed, but only those the converter could have
    produced: server-only properties are left alone.
    """
    patch = {
        k: v
        for k, v in new.items()
        if k not in _NOT_PATCHED and k not in _VOLATILE and old.get(k) != v
    }
    try:
        [round_trip] = ical_to_jscal(jscal_to_ical(dict(old)))
        ours = set(round_trip)
    except (ConversionError, ValueError):
        ours = set()
    for key in ours - set(new) - _NOT_PATCHED - _VOLATILE:
        if old.get(key) is not None:
            patch[key] = None
    return patch


def _fresh_uid(uid: str | None, text: str) -> str:
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:12]
    return f"{uid or 'item'}-conflict-{digest}"


# -- the engine --------------------------------------------------------------------------------


class SyncEngine:
    """Runs sync passes for one account; not thread-safe (the daemon has one worker)."""

    def __init__(
        self,
        client: SyncClient,
        vdir: Vdir,
        db: StateDB,
        *,
        policy: ConflictPolicy = ConflictPolicy.KEEP_BOTH,
        include: Sequence[str] = (),
        exclude: Sequence[str] = (),
        progress: Callable[[int, int], None] | None = None,
    ) -> None:
        self.client = client
        self.vdir = vdir
        self.db = db
        self.policy = policy
        self.include = tuple(include)
        self.exclude = tuple(exclude)
        self.progress = progress
        self._own_lock = threading.Lock()
        # keyed by the path as a string (a pathlib join per downloaded item costs as much as a
        # syscall); the watcher's paths are absolute and normalised, so the strings match
        self._own_writes: dict[str, str | None] = {}
        self._account: str | None = None
        self._kinds: list[_Kind] | None = None
        #: set from another thread to end a pass between two items
        self.stop_requested = threading.Event()
        self._closers: list[Callable[[], None]] = []
        # per pass: the (account, type) whose token is in use, whether anything was changed
        # yet, and the state our writes lead to while nobody else's come between
        self._pass_token: tuple[str, str] = ("", "")
        self._dirty = False
        self._chain: str | None = None
        # the session resource as last stored: None until the first pass has looked
        self._stored_session: Mapping[str, Any] | None = None
        self._ahead = _Ahead()

    def on_close(self, closer: Callable[[], None]) -> None:
        """Run ``closer`` (e.g. closing the client or the database) in :meth:`close`."""
        self._closers.append(closer)

    def close(self) -> None:
        for closer in reversed(self._closers):
            try:
                closer()
            except Exception:
                log.exception("closing %r failed", closer)
        self._closers.clear()

    # -- own writes (for the file watcher) -------------------------------------------------------

    def is_own_write(self, path: Path) -> bool:
        """True if ``path`` is exactly as the engine last left it (so a file event is ours)."""
        key = str(path)
        with self._own_lock:
            if key not in self._own_writes:
                return False
            expected = self._own_writes[key]
        try:
            current: str | None = etag_of(path.stat())
        except FileNotFoundError:
            current = None
        except OSError:
            return False
        return current == expected

    def _remember(self, collection: VdirCollection, href: str, etag: str | None) -> None:
        with self._own_lock:
            self._own_writes[f"{collection.path}/{href}"] = etag

    # -- setup -----------------------------------------------------------------------------------

    def account_id(self) -> str:
        if self._account is None:
            self._account = str(self.client.get_session().account_id)
        return self._account

    def kinds(self) -> list[_Kind]:
        if self._kinds is None:
            c = self.client
            kinds = [
                _Kind(
                    "calendar",
                    "CalendarEvent",
                    "Calendar",
                    lambda name, color: c.create_calendar(name, color),
                    c.get_events,
                    c.get_all_events,
                    c.set_events,
                    lambda: c.fetch_calendars()[0],
                )
            ]
            if self.client.get_session().has(TASKS_CAPABILITY):
                kinds.append(
                    _Kind(
                        "tasklist",
                        "Task",
                        "TaskList",
                        lambda name, _color: c.create_task_list(name),
                        c.get_tasks,
                        c.get_all_tasks,
                        c.set_tasks,
                        c.get_task_lists,
                    )
                )
            self._kinds = kinds
        return self._kinds

    def _wanted(self, collection: Mapping[str, Any]) -> bool:
        name = collection.get("name")
        return is_selected(
            str(collection.get("id")),
            name if isinstance(name, str) else None,
            self.include,
            self.exclude,
        )

    # -- one pass --------------------------------------------------------------------------------

    def sync(self) -> SyncReport:
        """One two-way pass over every collection; raises on transport or auth failure.

        With nothing changed on either side it costs one request: the session resource is kept
        in the state database, and one pull asks for the changes of every type at once.
        """
        report = SyncReport()
        self._restore_session()
        self._adopt_new_folders(report)
        kinds = self.kinds()
        account = self.account_id()
        tasks = len(kinds) > 1
        pulled = self.client.pull(
            calendar_state=self.db.get_token(account, self._collection_token(kinds[0])),
            event_state=self.db.get_token(account, kinds[0].token_type),
            task_list_state=(
                self.db.get_token(account, self._collection_token(kinds[1])) if tasks else None
            ),
            task_state=self.db.get_token(account, kinds[1].token_type) if tasks else None,
            tasks=tasks,
        )
        self._keep_session()
        try:
            for kind in kinds:
                pull = pulled.events if kind.collection_kind == "calendar" else pulled.tasks
                if pull is None:  # the server stopped offering tasks since the session was read
                    continue
                self._sync_kind(kind, pull, report)
        finally:
            self._ahead.clear()
        return report

    def _restore_session(self) -> None:
        """Use the session resource stored by an earlier process (no discovery request)."""
        if self._stored_session is None:
            self._stored_session = self.db.get_session() or {}
            if self._stored_session:
                self.client.import_session(self._stored_session)

    def _keep_session(self) -> None:
        """Store the session resource in use when it differs from the stored one."""
        # An answer with another sessionState marked the session stale: fetch it now (no
        # request otherwise), or a process that makes one pass would store the old one again.
        self.client.get_session()
        current = self.client.export_session()
        if current is not None and current != self._stored_session:
            self.db.set_session(current)
            self._stored_session = current

    def _collection_token(self, kind: _Kind) -> str:
        """Where the collection state is stored: per selection, since the rows only hold the
        collections it selects, and a feed of changes says nothing of the others."""
        if not self.include and not self.exclude:
            return kind.collection_type
        blob = json.dumps([self.include, self.exclude])
        return f"{kind.collection_type}#{hashlib.sha256(blob.encode()).hexdigest()[:12]}"

    def _sync_kind(self, kind: _Kind, pulled: KindPull, report: SyncReport) -> None:
        account = self.account_id()
        collections, relisted, settled = self._sync_collections(kind, pulled, report)
        if settled:
            # Only the current selection's: the rows follow the current selection, so the
            # state of another one would be stale when it is chosen again.
            self.db.set_token_family(
                account, kind.collection_type, self._collection_token(kind), pulled.collection_state
            )
        by_jmap = {row.jmap_id: row for row in collections}

        token = self.db.get_token(account, kind.token_type)
        self._pass_token = (account, kind.token_type)
        self._dirty = False
        changes: ChangeSet | None = None
        if relisted or pulled.full_items_needed or pulled.item_changes is None:
            if token is not None and not relisted:
                log.warning(
                    "%s: the server cannot list changes since our state; full resync",
                    kind.token_type,
                )
            objects, new_state = self._list_all(kind, collections)
            report.full = True
        else:
            changes = pulled.item_changes
            objects = pulled.item_objects
            new_state = pulled.item_state or changes.new_state

        self._chain = new_state
        per_collection: dict[str, dict[str, dict[str, Any]]] = {j: {} for j in by_jmap}
        for obj in objects:
            jmap_id = obj.get("id")
            home = kind.collection_of(obj)
            if isinstance(jmap_id, str) and home in per_collection:
                per_collection[home][jmap_id] = obj

        plans: list[tuple[CollectionRow, VdirCollection, dict[str, dict[str, Any]], list[Action]]]
        plans = []
        for row in collections:
            coll = self._open(row)
            fetched = per_collection[row.jmap_id]
            self._settle_journal(row, coll, fetched)
            status = self.db.item_status(row.id)
            if changes is None:
                server = {jid: self._entry(obj) for jid, obj in fetched.items()}
            else:
                # An object that moved to another collection is gone from this one.
                moved = {
                    jid
                    for jid in status
                    if jid not in fetched and any(jid in other for other in per_collection.values())
                }
                server = apply_changes(
                    status,
                    ServerChanges(
                        changed={jid: self._entry(obj) for jid, obj in fetched.items()},
                        destroyed=frozenset(changes.destroyed) | moved,
                    ),
                )
            unwritable = {e.jmap_id: e for e in self.db.errors(row.id) if e.jmap_id is not None}
            local = self._local_view(row, coll, status, report)
            self._report_unwritable(row, unwritable, fetched, changes, report)
            actions = plan(server, local, status, self.policy)
            plans.append((row, coll, fetched, actions))

        # Deletions first, so an item moved between folders never exists twice on the server.
        complete = True
        for row, coll, fetched, actions in plans:
            deletes = [a for a in actions if _is_delete(a)]
            complete &= self._execute(kind, row, coll, fetched, deletes, report)
        for row, coll, fetched, actions in plans:
            others = [a for a in actions if not _is_delete(a)]
            complete &= self._execute(kind, row, coll, fetched, others, report)
            self.db.record_run(row.id, "pull")
            self.db.record_run(row.id, "push")
        if not complete:
            # A server change could not be applied here (reported above): the old token makes
            # the next pass fetch it again instead of taking the stale status for the truth.
            log.info("%s: keeping the old state so failed items are seen again", kind.token_type)
            return
        # Every change the state covers is applied: keep it. When our own writes followed on
        # from it with nobody else's in between, keep the state after them: a change feed
        # from before them would lose an object we created that is destroyed before the next
        # pass (RFC 8620 §5.2 lets a server drop an id created and destroyed since the state).
        self.db.set_token(account, kind.token_type, self._chain or new_state)

    def _report_unwritable(
        self,
        row: CollectionRow,
        unwritable: Mapping[str, ErrorRow],
        fetched: Mapping[str, Any],
        changes: ChangeSet | None,
        report: SyncReport,
    ) -> None:
        """Report again the server objects of this collection that could not be written.

        One that changed (or a full listing) is tried again by this pass instead.
        """
        for jmap_id, error in sorted(unwritable.items()):
            if changes is None or jmap_id in fetched or jmap_id in changes.destroyed:
                continue
            self.db.record_error(
                error.message, collection_id=row.id, jmap_id=jmap_id, href=error.href
            )
            report.errors.append(error.message)

    def _set(self, kind: _Kind, **changes: Any) -> SetResult:
        """``kind.set``, following the state from one of our writes to the next."""
        result = kind.set(**changes)
        if self._chain is not None and result.old_state == self._chain and result.new_state:
            self._chain = result.new_state
        else:
            self._chain = None  # someone else wrote in between: their change must be fetched
        return result

    def _settle_journal(
        self, row: CollectionRow, coll: VdirCollection, fetched: Mapping[str, dict[str, Any]]
    ) -> None:
        """Settle server calls a crash left open, before planning (docs/sync.md, "Restart").

        ``fetched`` holds every object of the collection that changed since the stored token
        (or all of them); a create that reached the server made its object, so it is there.
        """
        self._settle_downloads(row, coll)
        for item in self.db.pending_items(row.id):
            if item.status == ItemState.PENDING_UPDATE:
                self._settle_update(item, coll, fetched)
                continue
            if item.status != ItemState.PENDING_CREATE:
                # A destroy that may have happened: plain status again. The planner repeats
                # it, or forgets the item if it is gone.
                self.db.settle(item.id)
                continue
            # The UID is how a create is found again.
            found = [
                (jid, obj)
                for jid, obj in sorted(fetched.items())
                if item.uid is not None
                and obj.get("uid") == item.uid
                and self.db.item_by_jmap_id(row.id, jid) is None
            ]
            if not found:
                # Never created: the planner sees the file as new and uploads it.
                self.db.forget_item(item.id)
                continue
            jmap_id, obj = found[0]
            recorded = server_hash(obj)
            try:
                current, _ = coll.get(item.href)
            except StoreError:
                current = None
            if (
                current is not None
                and current.hash == item.local_hash
                and not same_content(current.text, obj)
            ):
                # Not what we sent: someone edited it since, which the planner must see.
                recorded = ""
            self.db.finish_create(item.id, jmap_id=jmap_id, server_hash=recorded)

    def _settle_downloads(self, row: CollectionRow, coll: VdirCollection) -> None:
        """Settle downloads a crash interrupted between writing a file and recording it.

        A file holding exactly the journaled text is that server version: its row is recorded,
        so the planner compares the server's current version with it (a later server edit is
        downloaded, a server deletion deletes the file) instead of taking the file for a local
        edit or a new local item. Anything else (no file, or other content) is left to the
        planner as it is, with the row that was there before, if any.
        """
        found: list[SyncedPair] = []
        dropped: list[str] = []
        for pending in self.db.pending_downloads(row.id):
            try:
                item, etag = coll.get(pending.href)
            except StoreError:  # PreconditionFailed too: never written
                dropped.append(pending.href)
                continue
            if item.hash == pending.local_hash:
                found.append(replace(pending, local_etag=etag))
            else:
                dropped.append(pending.href)
        if found:
            # Found after a crash: in the page cache, perhaps not yet on disk.
            coll.flush(pair.href for pair in found)
            self.db.record_synced_many(row.id, found)
        if dropped:
            self.db.end_downloads(row.id, dropped)

    def _settle_update(
        self, item: ItemRow, coll: VdirCollection, fetched: Mapping[str, dict[str, Any]]
    ) -> None:
        """Settle an update that may have reached the server before a crash."""
        obj = fetched.get(item.jmap_id) if item.jmap_id is not None else None
        if obj is None or server_hash(obj) == item.server_hash:
            # The server object did not change: the update never arrived; the planner sends
            # it again.
            self.db.settle(item.id)
            return
        try:
            current, _ = coll.get(item.href)
        except StoreError:
            current = None
        if current is not None and current.hash == item.pending_hash:
            # The file is what we sent: the server holds it, or someone else's edit.
            if same_content(current.text, obj):
                self.db.settle(item.id, server_hash=server_hash(obj))
            else:
                self.db.settle(item.id)
            return
        # The file was edited again (or deleted) since: compare what we sent, from the journal.
        if item.pending_text is not None:
            if same_content(item.pending_text, obj):
                # Our update arrived: the newer local edit (or deletion) is a plain change.
                self.db.settle(item.id, server_hash=server_hash(obj))
            else:
                # Somebody else's edit on the server: the planner sees a real conflict.
                self.db.settle(item.id)
            return
        # A row journaled before schema v2 has no text: keep-both lets the planner see a
        # conflict, which loses nothing either way; the other policies take it that the
        # update arrived, or they would play our own update against the newest edit
        # (server-wins would drop that edit).
        if self.policy == ConflictPolicy.KEEP_BOTH:
            self.db.settle(item.id)
        else:
            self.db.settle(item.id, server_hash=server_hash(obj))

    # -- collections -----------------------------------------------------------------------------

    def _open(self, row: CollectionRow) -> VdirCollection:
        try:
            return self.vdir.get_collection(row.folder)
        except StoreError:
            return self._recreate_folder(row)

    def _new_folder(self, kind: _Kind, jmap_id: str) -> VdirCollection:
        """The folder for a collection seen for the first time.

        Named after the JMAP id; a calendar and a task list may share an id (Stalwart numbers
        each type on its own), so the second to come gets the kind appended.
        """
        taken = {r.folder for r in self.db.collections()}
        if self.vdir.collection_name(jmap_id) in taken:
            return self.vdir.create_collection(_kind_folder_id(kind.collection_kind, jmap_id))
        return self.vdir.create_collection(jmap_id)

    def _recreate_folder(self, row: CollectionRow) -> VdirCollection:
        """The folder of a known collection, made again under the name the row remembers."""
        for candidate in (row.folder, row.jmap_id, _kind_folder_id(row.kind, row.jmap_id)):
            if self.vdir.collection_name(candidate) == row.folder:
                return self.vdir.create_collection(candidate)
        return self.vdir.create_collection(_kind_folder_id(row.kind, row.jmap_id))

    def _sync_collections(
        self, kind: _Kind, pulled: KindPull, report: SyncReport
    ) -> tuple[list[CollectionRow], bool, bool]:
        """Mirror the server's collections of this kind into folders.

        Returns the live rows; whether a full listing is needed because a folder removed
        locally was made again and must be filled anew; and whether every collection deleted
        on the server is gone here too (a folder kept for its unsynced edits is not: its
        deletion must be seen again, so the collection state is not stored).
        """
        account = self.account_id()
        known = {
            r.jmap_id: r for r in self.db.collections(account) if r.kind == kind.collection_kind
        }
        server = [c for c in _server_collections(known, pulled) if isinstance(c.get("id"), str)]
        live: list[CollectionRow] = []
        relisted = False
        for cal in server:
            jmap_id: str = cal["id"]
            if not self._wanted(cal):
                continue
            row = known.pop(jmap_id, None)
            name = cal.get("name") if isinstance(cal.get("name"), str) else None
            color = cal.get("color") if isinstance(cal.get("color"), str) else None
            if row is not None:
                try:
                    coll = self.vdir.get_collection(row.folder)
                except StoreError:
                    # The folder was removed locally. The server stays the truth for what a
                    # collection holds: forget the items so they are downloaded again rather
                    # than deleted from the server.
                    log.warning("folder %s is gone; downloading %s again", row.folder, name)
                    # The token first: a crash before the listing must still lead to one.
                    self.db.clear_token(account, kind.token_type)
                    for item in self.db.items(row.id):
                        self.db.forget_item(item.id)
                    coll = self._recreate_folder(row)
                    relisted = True
                name, color = self._merge_metadata(kind, row, coll, name, color, cal)
            else:
                coll = self._new_folder(kind, jmap_id)
                report.collections_created += 1
                if self.db.get_token(account, kind.token_type) is not None:
                    # New here, not necessarily new on the server (newly selected, say): its
                    # events are not all in a feed of changes. The token first, as above.
                    self.db.clear_token(account, kind.token_type)
                    relisted = True
            self._write_metadata(coll, name, color, report)
            live.append(
                self.db.upsert_collection(
                    account, jmap_id, kind.collection_kind, coll.name, name, color
                )
            )
        settled = True
        for row in known.values():
            settled &= self._collection_gone(row, report)
        return live, relisted, settled

    def _merge_metadata(
        self,
        kind: _Kind,
        row: CollectionRow,
        coll: VdirCollection,
        name: str | None,
        color: str | None,
        cal: Mapping[str, Any],
    ) -> tuple[str | None, str | None]:
        """Local ``displayname``/``color`` edits go to the server unless it changed them too."""
        if kind.collection_kind != "calendar":
            return name, color
        patch: dict[str, Any] = {}
        local_name = coll.get_displayname()
        if local_name and local_name != row.name and name == row.name:
            patch["name"] = name = local_name
        try:
            local_color = coll.get_color()
        except StoreError:
            local_color = None
        if local_color and local_color != row.color and color == row.color:
            patch["color"] = color = local_color
        if patch:
            self.client.update_calendar(str(cal["id"]), patch)
        return name, color

    def _write_metadata(
        self, coll: VdirCollection, name: str | None, color: str | None, report: SyncReport
    ) -> None:
        if name is not None and coll.get_displayname() != name:
            coll.set_displayname(name)
            self._remember_meta(coll, DISPLAYNAME)
        if color is not None:
            try:
                if coll.get_color() != color.upper() and coll.get_color() != color:
                    coll.set_color(color)
                    self._remember_meta(coll, COLOR)
            except StoreError as exc:
                report.errors.append(f"{coll.name}: colour {color!r} not written: {exc}")

    def _remember_meta(self, coll: VdirCollection, key: str) -> None:
        """A metadata file we just wrote is ours too: the watcher must not take it for an edit."""
        try:
            etag: str | None = etag_of((coll.path / key).lstat())
        except OSError:
            return
        self._remember(coll, key, etag)

    def _collection_gone(self, row: CollectionRow, report: SyncReport) -> bool:
        """The server deleted a collection: remove the folder unless it holds unpushed edits.

        False if the folder stays.
        """
        try:
            coll = self.vdir.get_collection(row.folder)
        except StoreError:
            self.db.delete_collection(row.id)
            return True
        self._settle_downloads(row, coll)  # a download a crash left is no local edit
        status = {s.href: s for s in self.db.item_status(row.id).values()}
        unpushed = [
            href
            for href, etag in coll.list()
            if href not in status or status[href].local_etag != etag
        ]
        if unpushed:
            message = (
                f"collection {row.name or row.jmap_id} was deleted on the server; its folder "
                f"{row.folder} is kept because it holds {len(unpushed)} unsynced local edit(s)"
            )
            log.warning(message)
            self.db.clear_errors(collection_id=row.id, href="")
            self.db.record_error(message, collection_id=row.id, href="")
            report.errors.append(message)
            return False
        try:
            self.vdir.delete_collection(row.folder)
        except StoreError as exc:
            report.errors.append(str(exc))
            return False
        self.db.delete_collection(row.id)
        report.collections_deleted += 1
        return True

    def _adopt_new_folders(self, report: SyncReport) -> None:
        """A new folder with a ``displayname`` becomes a new collection on the server."""
        account = self.account_id()
        rows = self.db.collections(account)
        known = {r.folder for r in rows}
        taken = {r.jmap_id for r in rows}  # collections some folder already has
        for folder in list(self.vdir.list_collections()):
            if folder in known:
                continue
            coll = self.vdir.get_collection(folder)
            name = coll.get_displayname()
            if not name:
                continue
            if not self._wanted({"id": folder, "name": name}):
                # Not selected: it would be created, then taken for a collection deleted on
                # the server (its row matches no selected collection) on every pass.
                log.info(
                    "folder %s (%r) is not selected by include/exclude; not synced", folder, name
                )
                continue
            kind = self._kind_for_folder(coll)
            if kind is None:
                report.errors.append(f"{folder}: holds tasks, but the server has no JMAP Tasks")
                continue
            try:
                color = coll.get_color()
            except StoreError:
                color = None
            jmap_id = self._created_before(kind, folder, taken)
            if jmap_id is None:
                # Journaled first: a crash after the create must not make a second one.
                self.db.begin_adoption(folder, name)
                jmap_id = kind.create_collection(name, color)
                log.info(
                    "created %s %r on the server for folder %s", kind.collection_kind, name, folder
                )
                report.collections_created += 1
            with self.db.transaction():
                self.db.upsert_collection(
                    account, jmap_id, kind.collection_kind, folder, name, color
                )
                self.db.end_adoption(folder)
            taken.add(jmap_id)

    def _created_before(self, kind: _Kind, folder: str, taken: set[str]) -> str | None:
        """The collection an earlier process created for ``folder`` and died before recording.

        Only looked for when the journal says a create was under way: the server collection of
        that name that no row holds (the newest, if a crash repeated).
        """
        name = self.db.adoption(folder)
        if name is None:
            return None
        found = [
            str(c["id"])
            for c in kind.list_collections()
            if c.get("name") == name and isinstance(c.get("id"), str) and c["id"] not in taken
        ]
        if not found:
            return None
        log.info("folder %s: %r was created by an earlier run; using it", folder, name)
        return found[-1]

    def _kind_for_folder(self, coll: VdirCollection) -> _Kind | None:
        kinds = {k.collection_kind: k for k in self.kinds()}
        for href, _etag in coll.list():
            try:
                item, _ = coll.get(href)
            except StoreError:
                continue
            if "BEGIN:VTODO" in item.text.upper():
                return kinds.get("tasklist")
            if "BEGIN:VEVENT" in item.text.upper():
                return kinds["calendar"]
        return kinds["calendar"]

    # -- local side ------------------------------------------------------------------------------

    def _local_view(
        self,
        row: CollectionRow,
        coll: VdirCollection,
        status: Mapping[str, ItemStatus],
        report: SyncReport,
    ) -> dict[str, LocalEntry]:
        """The planner's view of the folder; unreadable files are reported and frozen."""
        by_href = {s.href: s for s in status.values()}
        self.db.clear_errors(collection_id=row.id)
        view: dict[str, LocalEntry] = {}
        for href, etag in coll.list():
            known = by_href.get(href)
            if known is not None and known.local_etag == etag:
                view[href] = LocalEntry(etag, None, known.uid)
                continue
            problem: str | None = None
            uid: str | None = None
            digest: str | None = None
            try:
                item, etag = coll.get(href)
                digest = item.hash
                uid = item.uid
                objects = ical_to_jscal(item.text)
                if len(objects) != 1:
                    problem = f"holds {len(objects)} items (one UID per file is expected)"
                else:
                    uid = objects[0].get("uid") or uid
            except PreconditionFailed:
                continue  # vanished while we listed: next pass
            except (StoreError, ConversionError, ValueError) as exc:
                problem = str(exc)
            if problem is not None:
                self._bad_file(row, coll, href, problem, known, view, report)
                continue
            view[href] = LocalEntry(etag, digest, uid)
        for href in self._unlisted(coll, view):
            # The store does not list it (a symlink leading outside the vdir, a folder, a
            # dangling link): without this it would look deleted and be deleted on the server.
            problem = "not a regular file inside the vdir (a symlink leading outside it?)"
            self._bad_file(row, coll, href, problem, by_href.get(href), view, report)
        return view

    def _bad_file(
        self,
        row: CollectionRow,
        coll: VdirCollection,
        href: str,
        problem: str,
        known: ItemStatus | None,
        view: dict[str, LocalEntry],
        report: SyncReport,
    ) -> None:
        message = f"{coll.name}/{href}: {problem}; not synced until fixed"
        log.warning(message)
        self.db.record_error(message, collection_id=row.id, href=href)
        report.errors.append(message)
        if known is not None:
            # Frozen: as far as sync goes the file is what we last saw, so neither a push nor
            # a server-side delete happens because of it.
            view[href] = LocalEntry(known.local_etag, None, known.uid)

    @staticmethod
    def _unlisted(coll: VdirCollection, listed: Mapping[str, LocalEntry]) -> list[str]:
        """Item names in the folder that the store skipped because they are no regular file."""
        try:
            names = os.listdir(coll.path)
        except OSError:
            return []
        found: list[str] = []
        for name in sorted(names):
            if name in listed or not is_item_href(name):
                continue
            try:
                mode = os.lstat(coll.path / name).st_mode
            except OSError:
                continue  # removed meanwhile
            if stat.S_ISLNK(mode) or not stat.S_ISREG(mode):
                found.append(name)
        return found

    def _entry(self, obj: Mapping[str, Any]) -> ServerEntry:
        uid = obj.get("uid")
        return ServerEntry(self._ahead.server_hash(obj), uid if isinstance(uid, str) else None)

    def _list_all(
        self, kind: _Kind, collections: Sequence[CollectionRow]
    ) -> tuple[list[dict[str, Any]], str]:
        """Every object of ``kind``, with the work the plan will want done on each page while
        the server prepares the next (its hash; the iCalendar text of objects new to us, which
        will be downloaded). The listing runs on a second thread, which alone uses the client
        meanwhile; everything else stays on this one."""
        homes = {row.jmap_id for row in collections}
        known = self.db.jmap_ids(row.id for row in collections)
        pages: queue.SimpleQueue[list[dict[str, Any]] | None] = queue.SimpleQueue()

        def listing() -> tuple[list[dict[str, Any]], str]:
            try:
                return kind.get_all(on_page=pages.put)
            finally:
                pages.put(None)

        with ThreadPoolExecutor(1, thread_name_prefix="jmapsyncd-listing") as pool:
            done = pool.submit(listing)
            while (page := pages.get()) is not None:
                for obj in page:
                    self._ahead.server_hash(obj)
                    if obj.get("id") not in known and kind.collection_of(obj) in homes:
                        self._ahead.convert(obj)
            return done.result()

    # -- carrying out the plan -------------------------------------------------------------------

    def _execute(
        self,
        kind: _Kind,
        row: CollectionRow,
        coll: VdirCollection,
        fetched: dict[str, dict[str, Any]],
        actions: list[Action],
        report: SyncReport,
    ) -> bool:
        """Carry out ``actions``; False if a server change could not be applied locally.

        Such a change must be seen again: the caller then keeps the old state token.
        """
        if not actions:
            return True
        if not self._dirty:
            # From the first change on, a crash must lead to a full listing: a change feed from
            # the old token may leave out an object created since (which we may have recorded
            # by now) and destroyed before the next pass (RFC 8620 §5.2).
            self.db.clear_token(*self._pass_token)
            self._dirty = True
        complete = True
        # Objects the plan needs but this pass did not fetch (conflicts, updates of old items).
        need = {
            a.jmap_id
            for a in actions
            if isinstance(a, (DownloadNew, DownloadUpdate, Conflict, UploadUpdate))
            and a.jmap_id not in fetched
        }
        if need:
            fetched = {**fetched, **{o["id"]: o for o in kind.get(sorted(need)) if "id" in o}}
        uploads: list[tuple[str, str, str | None]] = []  # (href, etag, stale id)
        downloads = [a for a in actions if isinstance(a, (DownloadNew, DownloadUpdate))]
        complete = self._download_many(row, coll, fetched, downloads, report)
        for action in actions:
            if self.stop_requested.is_set():
                # Between two items: everything done so far is recorded, the token is not
                # stored, so the next start picks up exactly here.
                raise SyncInterrupted("shutdown requested")
            try:
                if isinstance(action, (DownloadNew, DownloadUpdate)):
                    continue  # done above
                if isinstance(action, DeleteLocal):
                    self._delete_local(row, coll, action, report)
                elif isinstance(action, UploadNew):
                    uploads.append((action.href, action.etag, action.stale_jmap_id))
                elif isinstance(action, UploadUpdate):
                    self._upload_update(
                        kind, row, coll, fetched, action.jmap_id, action.href, report
                    )
                elif isinstance(action, DeleteRemote):
                    self._delete_remote(kind, row, action, report)
                elif isinstance(action, Conflict):
                    new_upload = self._conflict(kind, row, coll, fetched, action, report)
                    if new_upload is not None:
                        uploads.append((new_upload, "", None))
                elif isinstance(action, RecordStatus):
                    self.db.record_synced(
                        row.id,
                        jmap_id=action.jmap_id,
                        href=action.href,
                        uid=fetched.get(action.jmap_id, {}).get("uid"),
                        local_etag=action.etag,
                        local_hash=action.local_hash,
                        server_hash=action.server_hash,
                    )
                elif isinstance(action, ForgetStatus):
                    item = self.db.item_by_jmap_id(row.id, action.jmap_id)
                    if item is not None:
                        self.db.forget_item(item.id)
            except (PreconditionFailed, JMAPSetError, ConversionError, StoreError) as exc:
                complete &= self._item_failed(row, coll, action, exc, report)
        if uploads:
            self._upload_new(kind, row, coll, uploads, report)
        return complete

    def _item_failed(
        self,
        row: CollectionRow,
        coll: VdirCollection,
        action: Action,
        exc: Exception,
        report: SyncReport,
    ) -> bool:
        """Record one item's failure; False if a server change was left unapplied.

        One item's trouble must not stop the others; the next pass looks again. A local file is
        scanned again anyway, but a server change is only seen again if the state token stays
        where it was. An object the converter refuses is refused again until it changes: its
        error row (with its JMAP id) remembers it instead, and is carried from pass to pass
        until the object changes.
        """
        message = f"{coll.name}/{getattr(action, 'href', '?')}: {exc}"
        unwritable: str | None = None
        applied = True
        if isinstance(exc, ConversionError) and isinstance(action, (DownloadNew, DownloadUpdate)):
            unwritable = action.jmap_id
        elif isinstance(action, _FROM_SERVER):
            applied = False
        log.warning(message)
        self.db.record_error(
            message, collection_id=row.id, jmap_id=unwritable, href=getattr(action, "href", None)
        )
        report.errors.append(message)
        return applied

    def _download_many(
        self,
        row: CollectionRow,
        coll: VdirCollection,
        fetched: Mapping[str, dict[str, Any]],
        actions: Sequence[DownloadNew | DownloadUpdate],
        report: SyncReport,
    ) -> bool:
        """Download in chunks: journal a chunk, write its files, flush them at once, record.

        A chunk costs two commits and one flush instead of three flushes per item. Every file
        is durable before its row is committed, and journaled (with the hash of the text about
        to be written) before it is written: after a crash, a file holding exactly that text is
        known for that server version (:meth:`_settle_downloads`), not taken for a local edit.

        One thread writes and flushes a chunk (file creation is mostly time in the kernel,
        without the GIL) while this one converts the next; rows are recorded here, the state
        database has one user.
        """
        complete = True
        chunks = [actions[i : i + _DOWNLOAD_CHUNK] for i in range(0, len(actions), _DOWNLOAD_CHUNK)]
        done = 0
        with ThreadPoolExecutor(1, thread_name_prefix="jmapsyncd-writer") as writer:
            in_flight: Future[_Written] | None = None
            for chunk in chunks:
                if self.stop_requested.is_set():
                    break
                prepared: list[_Prepared] = []
                for action in chunk:
                    try:
                        ready = self._prepare_download(fetched, action)
                    except ConversionError as exc:
                        complete &= self._item_failed(row, coll, action, exc, report)
                        continue
                    if ready is not None:
                        prepared.append((action, *ready))
                if prepared:
                    self.db.begin_downloads(row.id, [pair for _, _, pair in prepared])
                if in_flight is not None:
                    complete &= self._record_written(row, coll, in_flight.result(), report)
                    done += _DOWNLOAD_CHUNK
                    if self.progress and len(actions) > 20:
                        self.progress(min(done, len(actions)), len(actions))
                in_flight = writer.submit(self._write_chunk, coll, prepared)
            if in_flight is not None:
                complete &= self._record_written(row, coll, in_flight.result(), report)
                if self.progress and len(actions) > 20:
                    self.progress(len(actions), len(actions))
        if self.stop_requested.is_set() and chunks:
            # Everything written so far is recorded, the token is not stored: the next start
            # picks up exactly here.
            raise SyncInterrupted("shutdown requested")
        return complete

    def _write_chunk(self, coll: VdirCollection, prepared: Sequence[_Prepared]) -> _Written:
        """Write a chunk's files and flush them (in the writer thread: no database here)."""
        written: list[SyncedPair] = []
        failed: list[tuple[DownloadNew | DownloadUpdate, Exception]] = []
        actions = {pair.href: action for action, _, pair in prepared}
        for action, item, pair in prepared:
            if self.stop_requested.is_set():
                break
            try:
                etag = self._write_download(coll, action, item, durable=False)
            except (PreconditionFailed, StoreError) as exc:
                failed.append((action, exc))
                continue
            written.append(replace(pair, local_etag=etag))
        unwritten = sorted(set(actions) - {pair.href for pair in written})
        try:
            coll.flush()
        except StoreError as exc:
            # Not known to be on disk: no row may say so. Their journal entries stay, so the
            # next pass settles the files by content.
            failed.extend((actions[pair.href], exc) for pair in written)
            written = []
        return _Written(written, failed, unwritten)

    def _record_written(
        self, row: CollectionRow, coll: VdirCollection, chunk: _Written, report: SyncReport
    ) -> bool:
        """Record a written chunk's rows and failures; False if a server change was not applied."""
        complete = True
        for action, exc in chunk.failed:
            complete &= self._item_failed(row, coll, action, exc, report)
        if chunk.written:
            self.db.record_synced_many(row.id, chunk.written)
            report.downloaded += len(chunk.written)
        if chunk.unwritten:
            self.db.end_downloads(row.id, chunk.unwritten)
        return complete

    def _download(
        self,
        row: CollectionRow,
        coll: VdirCollection,
        fetched: Mapping[str, dict[str, Any]],
        action: DownloadNew | DownloadUpdate,
        report: SyncReport,
    ) -> None:
        """One download, journaled and durable on its own; raises what goes wrong."""
        ready = self._prepare_download(fetched, action)
        if ready is None:
            return
        item, pair = ready
        self.db.begin_downloads(row.id, [pair])
        try:
            etag = self._write_download(coll, action, item, durable=True)
        except BaseException:
            self.db.end_downloads(row.id, [pair.href])
            raise
        self.db.record_synced_many(row.id, [replace(pair, local_etag=etag)])
        report.downloaded += 1

    def _prepare_download(
        self, fetched: Mapping[str, dict[str, Any]], action: DownloadNew | DownloadUpdate
    ) -> tuple[Item, SyncedPair] | None:
        """The text to write for a server object and its row (no etag yet); None if gone."""
        obj = fetched.get(action.jmap_id)
        if obj is None:
            return None  # gone since it was listed; the next pass sees the destroy
        uid = obj.get("uid")
        if not isinstance(uid, str) or not uid.strip() or not uid.isprintable():
            # RFC 5545 §3.1 allows no control characters in a content line; a file with one
            # breaks the tools that read the vdir, and an empty UID cannot be matched again.
            raise ConversionError(f"server object {action.jmap_id} has an unusable UID {uid!r}")
        text = self._ahead.take_text(obj)
        # The UID line holds the UID as it is unless TEXT escaping changed it (RFC 5545
        # §3.3.11): only then is it worth parsing back out of the text.
        plain = uid == uid.strip() and _PLAIN_UID.fullmatch(uid) is not None
        item = Item(text, uid) if plain else Item(text)
        digest = self._ahead.server_hash(obj)
        return item, SyncedPair(action.jmap_id, action.href, uid, "", item.hash, digest)

    def _write_download(
        self,
        coll: VdirCollection,
        action: DownloadNew | DownloadUpdate,
        item: Item,
        *,
        durable: bool,
    ) -> str:
        """Write a downloaded item to its file; returns the file's etag."""
        if isinstance(action, DownloadUpdate):
            etag = coll.update(action.href, item, action.etag, durable=durable)
        else:
            try:
                _, etag = coll.upload(item, action.href, durable=durable)
            except PreconditionFailed:
                # A file appeared under this name since we listed: never overwrite it.
                raise PreconditionFailed(
                    f"{action.href} appeared locally; not overwritten"
                ) from None
        self._remember(coll, action.href, etag)
        return etag

    def _delete_local(
        self, row: CollectionRow, coll: VdirCollection, action: DeleteLocal, report: SyncReport
    ) -> None:
        coll.delete(action.href, action.etag)
        self._remember(coll, action.href, None)
        item = self.db.item_by_href(row.id, action.href)
        if item is not None:
            self.db.forget_item(item.id)
        report.deleted_local += 1

    def _delete_remote(
        self, kind: _Kind, row: CollectionRow, action: DeleteRemote, report: SyncReport
    ) -> None:
        item = self.db.item_by_jmap_id(row.id, action.jmap_id)
        if item is not None:
            self.db.mark_pending(item.id, ItemState.PENDING_DELETE)
        result = self._set(kind, destroy=[action.jmap_id])
        error = result.not_destroyed.get(action.jmap_id)
        if error is not None and error.error_type != "notFound":
            raise error
        if item is not None:
            self.db.forget_item(item.id)
        report.deleted_remote += 1

    def _read_one(self, coll: VdirCollection, href: str) -> tuple[Item, str, dict[str, Any]]:
        item, etag = coll.get(href)
        objects = ical_to_jscal(item.text)
        if len(objects) != 1:
            raise ConversionError(
                f"holds {len(objects)} items (one UID per file is expected)", where=href
            )
        return item, etag, objects[0]

    def _upload_update(
        self,
        kind: _Kind,
        row: CollectionRow,
        coll: VdirCollection,
        fetched: Mapping[str, dict[str, Any]],
        jmap_id: str,
        href: str,
        report: SyncReport,
    ) -> None:
        item, etag, new = self._read_one(coll, href)
        old = fetched.get(jmap_id, {})
        patch = update_patch(old, new)
        row_item = self.db.item_by_jmap_id(row.id, jmap_id)
        if row_item is not None:
            self.db.mark_pending(row_item.id, ItemState.PENDING_UPDATE, item.hash, item.text)
        if patch:
            result = self._set(kind, update={jmap_id: patch})
            error = result.not_updated.get(jmap_id)
            if error is not None:
                raise error
            _report_dropped(coll, href, result.dropped.get(jmap_id), report)
        got = kind.get([jmap_id])
        if not got:
            raise PreconditionFailed(f"{href}: the server lost {jmap_id} while updating it")
        current = got[0]
        self.db.record_synced(
            row.id,
            jmap_id=jmap_id,
            href=href,
            uid=new.get("uid"),
            local_etag=etag,
            local_hash=item.hash,
            server_hash=server_hash(current),
        )
        report.uploaded += 1

    def _upload_new(
        self,
        kind: _Kind,
        row: CollectionRow,
        coll: VdirCollection,
        uploads: list[tuple[str, str, str | None]],
        report: SyncReport,
        *,
        renamed: bool = False,
    ) -> None:
        """Create local items on the server in one batch, journaled first.

        An item whose UID the server refuses because another event of the account has it (an
        event file copied into a second calendar folder; Cyrus keeps UIDs unique per account)
        gets a fresh UID in place, recorded as a conflict, and is sent again.
        """
        creates: dict[str, dict[str, Any]] = {}
        journal: dict[str, tuple[int, Item, str, str]] = {}
        for n, (href, _etag, _stale) in enumerate(uploads):
            try:
                item, etag, obj = self._read_one(coll, href)
            except (PreconditionFailed, StoreError, ConversionError) as exc:
                message = f"{coll.name}/{href}: {exc}; not synced until fixed"
                self.db.record_error(message, collection_id=row.id, href=href)
                report.errors.append(message)
                continue
            key = f"c{n}"
            creates[key] = kind.place(obj, row.jmap_id)
            pending = self.db.begin_create(
                row.id, href=href, uid=obj.get("uid"), local_etag=etag, local_hash=item.hash
            )
            journal[key] = (pending.id, item, href, etag)
        if not creates:
            return
        result = self._set(kind, create=creates)
        created_ids = {key: str(v["id"]) for key, v in result.created.items() if "id" in v}
        current = {o["id"]: o for o in kind.get(sorted(created_ids.values())) if "id" in o}
        again: list[tuple[str, str, str | None]] = []
        for key, (pending_id, item, href, etag) in journal.items():
            if key in created_ids and created_ids[key] in current:
                jmap_id = created_ids[key]
                self.db.finish_create(
                    pending_id, jmap_id=jmap_id, server_hash=server_hash(current[jmap_id])
                )
                report.uploaded += 1
                _report_dropped(coll, href, result.dropped.get(key), report)
                continue
            error = result.not_created.get(key)
            if not renamed and error is not None and _uid_taken(error):
                self.db.forget_item(pending_id)
                if self._give_fresh_uid(row, coll, href, item, etag, report):
                    again.append((href, "", None))
                continue
            reason = str(error) if error is not None else "the server did not create it"
            message = f"{coll.name}/{href}: upload refused: {reason}"
            log.warning(message)
            self.db.forget_item(pending_id)
            self.db.record_error(message, collection_id=row.id, href=href)
            report.errors.append(message)
        if again:
            self._upload_new(kind, row, coll, again, report, renamed=True)

    def _give_fresh_uid(
        self,
        row: CollectionRow,
        coll: VdirCollection,
        href: str,
        item: Item,
        etag: str,
        report: SyncReport,
    ) -> bool:
        """Rewrite local ``href`` with a fresh UID (same file, same content otherwise)."""
        new_uid = _fresh_uid(item.uid, item.text)
        try:
            new_etag = coll.update(href, item.with_uid(new_uid), etag)
        except (PreconditionFailed, StoreError, ValueError) as exc:
            message = f"{coll.name}/{href}: its UID is taken on the server; not renamed: {exc}"
            log.warning(message)
            self.db.record_error(message, collection_id=row.id, href=href)
            report.errors.append(message)
            return False
        self._remember(coll, href, new_etag)
        self.db.record_conflict(row.id, href=href, copy_href=href, resolution="new-uid")
        report.conflicts += 1
        log.warning(
            "%s/%s: UID %s is taken by another event on the server; the file now has UID %s",
            coll.name,
            href,
            item.uid,
            new_uid,
        )
        return True

    def _conflict(
        self,
        kind: _Kind,
        row: CollectionRow,
        coll: VdirCollection,
        fetched: Mapping[str, dict[str, Any]],
        action: Conflict,
        report: SyncReport,
    ) -> str | None:
        """Resolve a both-sides change; returns the href of a copy to upload (keep-both)."""
        obj = fetched.get(action.jmap_id)
        item, etag = coll.get(action.href)
        if obj is None:
            return None
        if same_content(item.text, obj):
            # Both sides already agree (a crash between the two halves of a sync, or the same
            # edit made twice): link them, copy nothing.
            self.db.record_synced(
                row.id,
                jmap_id=action.jmap_id,
                href=action.href,
                uid=obj.get("uid"),
                local_etag=etag,
                local_hash=item.hash,
                server_hash=server_hash(obj),
            )
            return None
        report.conflicts += 1
        if action.resolution == ConflictPolicy.LOCAL_WINS:
            self._upload_update(kind, row, coll, fetched, action.jmap_id, action.href, report)
            self.db.record_conflict(
                row.id, href=action.href, jmap_id=action.jmap_id, resolution="local-wins"
            )
            return None
        copy_href: str | None = None
        made_now = False
        if action.resolution == ConflictPolicy.KEEP_BOTH:
            # The local version becomes a new item with its own UID before the server version
            # takes its place, so a crash in between loses neither.
            new_uid = _fresh_uid(item.uid, item.text)
            copy = item.with_uid(new_uid)
            copy_href = href_for_uid(new_uid)
            if coll.has(copy_href):
                # Made by a pass a crash ended: this pass listed it already, as a new local
                # item (uploaded with the others) or a synced one. Uploading it here as well
                # would send it twice.
                made_now = False
            else:
                _, copy_etag = coll.upload(copy, copy_href)
                self._remember(coll, copy_href, copy_etag)
                made_now = True
        self._download(
            row, coll, fetched, DownloadUpdate(action.jmap_id, action.href, etag), report
        )
        self.db.record_conflict(
            row.id,
            href=action.href,
            jmap_id=action.jmap_id,
            copy_href=copy_href,
            resolution=str(action.resolution),
        )
        log.warning(
            "conflict on %s/%s: %s%s",
            coll.name,
            action.href,
            action.resolution,
            f", your version is kept as {copy_href}" if copy_href else "",
        )
        return copy_href if made_now else None


#: Downloads written between two flushes (and recorded in one transaction).
_DOWNLOAD_CHUNK = 500
#: A download ready to be written: the action, the text, its row (no etag yet).
_Prepared = tuple[DownloadNew | DownloadUpdate, Item, SyncedPair]


@dataclass(frozen=True)
class _Written:
    """What the writer did with a chunk: rows to record, failures, journal entries to end."""

    written: list[SyncedPair]
    failed: list[tuple[DownloadNew | DownloadUpdate, Exception]]
    unwritten: list[str]


#: A UID whose iCalendar text form is the UID itself (no character TEXT escapes or folds).
_PLAIN_UID = re.compile(r"[^\\;,\r\n]+")


def _server_collections(
    known: Mapping[str, CollectionRow], pulled: KindPull
) -> list[dict[str, Any]]:
    """The server's collections: as listed, or as stored with the pulled changes applied."""
    if pulled.collections is not None:
        return pulled.collections
    current: dict[str, dict[str, Any]] = {
        jmap_id: {"id": jmap_id, "name": row.name, "color": row.color}
        for jmap_id, row in known.items()
    }
    for obj in pulled.collection_objects:
        if isinstance(obj.get("id"), str):
            current[obj["id"]] = obj
    if pulled.collection_changes is not None:
        for gone in pulled.collection_changes.destroyed:
            current.pop(gone, None)
    return list(current.values())


def _uid_taken(error: JMAPSetError) -> bool:
    """Whether a refused create names the UID as the problem (taken by another event)."""
    return error.error_type == "invalidProperties" and "uid" in (error.properties or ())


def _kind_folder_id(kind: CollectionKind, jmap_id: str) -> str:
    """What names the folder of a collection whose id is already some folder's name."""
    return f"{jmap_id}-{kind}"


#: Actions that carry a server change to the vdir.
_FROM_SERVER = (DownloadNew, DownloadUpdate, DeleteLocal, Conflict)


def _is_delete(action: Action) -> bool:
    return isinstance(action, (DeleteRemote, DeleteLocal))
