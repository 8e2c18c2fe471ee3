"""One account's data and its change log: what the fake server serves and what tests seed.

Objects live in plain dicts (id → object) that tests may read directly.  Every write records one
entry per object in a per-type change log (RFC 8620 §5.2 ``/changes``):

* ``stalwart``: one change id per write batch per account (a ``/set`` call is one batch); a type's
  state is its last change id, printed as ``"n"`` / ``"s…"`` / paging ``"r…"`` (see ``encoding``).
* ``ietf``: a plain counter per type, bumped once per object written (like Cyrus's modseq).
* ``cyrus36``: like ``ietf`` but Calendar and CalendarEvent share one counter, so ``/changes`` of
  one type can answer empty lists.

The log collapses per id (created+updated → created, created+destroyed → nothing,
updated+destroyed → destroyed).  Seeding methods bypass every validation so tests can make the
server send hostile data.
Events are stored with a ``calendarIds`` map in every dialect; the Cyrus 3.6 ``calendarId`` form is
produced when the object is rendered.
"""

from __future__ import annotations

import copy
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from tests.fakeserver.encoding import (
    cyrus_event_id,
    decode_stalwart_state,
    encode_id,
    encode_stalwart_paging_state,
    encode_stalwart_state,
)
from tests.fakeserver.patch import apply_patch

TYPES = ("Calendar", "CalendarEvent", "TaskList", "Task")
DIALECTS = ("stalwart", "ietf", "cyrus36")
Obj = dict[str, Any]


class CannotCalculateChanges(Exception):
    """The state is unknown, in the future or older than the retained history."""


class InvalidState(Exception):
    """The state does not parse at all (Stalwart: first character not n/s/r)."""


@dataclass(frozen=True)
class Change:
    seq: int
    obj_id: str
    kind: str  # created | updated | destroyed


@dataclass
class ChangesPage:
    old_state: str
    new_state: str
    has_more: bool
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    destroyed: list[str] = field(default_factory=list)


class Store:
    """The data of one account.  Thread-safe: every method takes the server's lock."""

    def __init__(
        self,
        dialect: str,
        username: str,
        account_id: str,
        *,
        lock: threading.RLock | None = None,
        notify: Callable[[set[str]], None] | None = None,
    ) -> None:
        if dialect not in DIALECTS:
            raise ValueError(f"unknown dialect {dialect!r}")
        self.dialect = dialect
        self.username = username
        self.account_id = account_id
        self.lock = lock or threading.RLock()
        self._notify = notify
        self.calendars: dict[str, Obj] = {}
        self.events: dict[str, Obj] = {}
        self.task_lists: dict[str, Obj] = {}
        self.tasks: dict[str, Obj] = {}
        self._logs: dict[str, list[Change]] = {t: [] for t in TYPES}
        self._last: dict[str, int] = dict.fromkeys(TYPES, 0)
        self._floor: dict[str, int] = dict.fromkeys(TYPES, 0)
        self._seq: dict[str, int] = {}
        self._doc_counters: dict[str, int] = {}
        self._batch_depth = 0
        self._batch_seq: int | None = None
        self._batch_types: set[str] = set()
        self._text_index: dict[str, dict[str, Obj]] = {t: {} for t in TYPES}
        self._default_calendar: str | None = None
        self._default_task_list: str | None = None

    # ----------------------------------------------------------------- collections and states

    def collection(self, type_name: str) -> dict[str, Obj]:
        return {
            "Calendar": self.calendars,
            "CalendarEvent": self.events,
            "TaskList": self.task_lists,
            "Task": self.tasks,
        }[type_name]

    def _group(self, type_name: str) -> str:
        if self.dialect == "stalwart":
            return "account"
        if self.dialect == "cyrus36" and type_name in ("Calendar", "CalendarEvent"):
            return "calendars"
        return type_name

    def state_number(self, type_name: str) -> int:
        with self.lock:
            if self.dialect == "stalwart":
                return self._last[type_name]
            return self._seq.get(self._group(type_name), 0)

    def state(self, type_name: str) -> str:
        """The current state string of ``type_name`` as this dialect prints it."""
        number = self.state_number(type_name)
        return encode_stalwart_state(number) if self.dialect == "stalwart" else str(number)

    def forget_history(self, type_name: str | None = None) -> None:
        """Drop the change log: ``/changes`` from any earlier state then cannot be calculated."""
        with self.lock:
            for name in [type_name] if type_name else TYPES:
                self._floor[name] = self.state_number(name)
                self._logs[name].clear()

    # ----------------------------------------------------------------- writes and the log

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Group writes into one change (Stalwart: one change id per batch)."""
        with self.lock:
            self._batch_depth += 1
            try:
                yield
            finally:
                self._batch_depth -= 1
                if self._batch_depth == 0:
                    self._batch_seq = None
                    changed, self._batch_types = self._batch_types, set()
                    if changed and self._notify is not None:
                        self._notify(changed)

    def record(self, type_name: str, obj_id: str, kind: str) -> None:
        with self.batch():
            group = self._group(type_name)
            if self.dialect != "stalwart" or self._batch_seq is None:
                self._seq[group] = self._seq.get(group, 0) + 1
                self._batch_seq = self._seq[group]
            self._logs[type_name].append(Change(self._batch_seq, obj_id, kind))
            self._last[type_name] = self._batch_seq
            self._batch_types.add(type_name)

    def new_id(self, type_name: str, uid: str | None = None) -> str:
        """Allocate an id the way the dialect does; Stalwart never reuses one."""
        with self.lock:
            if self.dialect == "stalwart":
                number = self._doc_counters.get(type_name, 0) + 1
                self._doc_counters[type_name] = number
                return encode_id(number)
            if type_name in ("Calendar", "TaskList"):
                return str(uuid.uuid4())
            uid = uid or str(uuid.uuid4())
            if self.dialect == "cyrus36":
                return uid
            return cyrus_event_id(uid, "E" if type_name == "CalendarEvent" else "T")

    def _put(self, type_name: str, obj: Obj, kind: str) -> None:
        self.collection(type_name)[obj["id"]] = obj
        self.record(type_name, obj["id"], kind)

    def _remove(self, type_name: str, obj_id: str) -> None:
        del self.collection(type_name)[obj_id]
        self.record(type_name, obj_id, "destroyed")

    # ----------------------------------------------------------------- defaults

    def ensure_defaults(self, with_tasks: bool = False) -> None:
        """Create the default calendar (and task list) on first access, as the servers do."""
        with self.lock:
            if self._default_calendar is None:
                self._default_calendar = self._create_default_calendar()
            if with_tasks and self._default_task_list is None:
                self._default_task_list = self.add_task_list(
                    "Tasks", role="inbox", isDefault=True, isSubscribed=True
                )

    def _create_default_calendar(self) -> str:
        if self.dialect == "stalwart":
            name = f"Stalwart Calendar ({self.username})"
            return self.add_calendar(name, isDefault=True, isSubscribed=True)
        return self.add_calendar("Default", id="Default", isDefault=True, isSubscribed=True)

    @property
    def default_calendar_id(self) -> str:
        self.ensure_defaults()
        assert self._default_calendar is not None
        return self._default_calendar

    @property
    def default_task_list_id(self) -> str:
        self.ensure_defaults(with_tasks=True)
        assert self._default_task_list is not None
        return self._default_task_list

    # ----------------------------------------------------------------- seeding (no validation)

    def add_calendar(self, name: str, **props: Any) -> str:
        """Create a calendar as a server-side edit; ``id=`` forces the id."""
        with self.lock:
            cal_id = str(props.pop("id", None) or self.new_id("Calendar"))
            obj: Obj = {"id": cal_id, "name": name, **copy.deepcopy(props)}
            if (
                self._default_calendar is None
                and self.dialect != "stalwart"
                and cal_id == "Default"
            ):
                self._default_calendar = cal_id
            self._put("Calendar", obj, "created")
            return cal_id

    def add_task_list(self, name: str, **props: Any) -> str:
        with self.lock:
            list_id = str(props.pop("id", None) or self.new_id("TaskList"))
            obj: Obj = {"id": list_id, "name": name, **copy.deepcopy(props)}
            self._put("TaskList", obj, "created")
            return list_id

    def add_event(self, calendar_id: str, jscal: Obj) -> str:
        """Store ``jscal`` in ``calendar_id``; a missing uid is generated, ``id`` forces the id."""
        return self._add_item("CalendarEvent", {"calendarIds": {calendar_id: True}}, jscal, "Event")

    def add_task(self, task_list_id: str, jscal: Obj) -> str:
        return self._add_item("Task", {"taskListId": task_list_id}, jscal, "Task")

    def _add_item(self, type_name: str, container: Obj, jscal: Obj, at_type: str) -> str:
        with self.lock:
            obj = copy.deepcopy(jscal)
            uid = obj.get("uid")
            if not isinstance(uid, str):
                uid = obj["uid"] = str(uuid.uuid4())
            item_id = str(obj.pop("id", None) or self.new_id(type_name, uid))
            for key, value in container.items():
                obj.setdefault(key, value)
            obj.setdefault("@type", at_type)
            self._put(type_name, {"id": item_id, **obj}, "created")
            return item_id

    def update_event(self, event_id: str, patch: Obj) -> None:
        """Apply an RFC 8620 §5.3 patch as a server-side edit (bumps the state)."""
        self._update("CalendarEvent", event_id, patch)

    def update_task(self, task_id: str, patch: Obj) -> None:
        self._update("Task", task_id, patch)

    def update_calendar(self, calendar_id: str, patch: Obj) -> None:
        self._update("Calendar", calendar_id, patch)

    def update_task_list(self, task_list_id: str, patch: Obj) -> None:
        self._update("TaskList", task_list_id, patch)

    def _update(self, type_name: str, obj_id: str, patch: Obj) -> None:
        with self.lock:
            current = self.collection(type_name)[obj_id]
            self.replace(type_name, apply_patch(current, patch))

    def replace(self, type_name: str, obj: Obj) -> None:
        """Store a new version of an existing object and log the update."""
        with self.lock:
            self._put(type_name, obj, "updated")

    def destroy_event(self, event_id: str) -> None:
        with self.lock:
            self._remove("CalendarEvent", event_id)

    def destroy_task(self, task_id: str) -> None:
        with self.lock:
            self._remove("Task", task_id)

    def destroy(self, type_name: str, obj_id: str) -> None:
        with self.lock:
            self._remove(type_name, obj_id)

    def events_in(self, calendar_id: str) -> list[str]:
        with self.lock:
            return [
                i
                for i, e in self.events.items()
                if isinstance(e.get("calendarIds"), dict) and calendar_id in e["calendarIds"]
            ]

    def tasks_in(self, task_list_id: str) -> list[str]:
        with self.lock:
            return [i for i, t in self.tasks.items() if t.get("taskListId") == task_list_id]

    def destroy_calendar(self, calendar_id: str, remove_events: bool = True) -> None:
        """Destroy a calendar; its events go too (or just leave it when in several calendars)."""
        with self.lock, self.batch():
            if remove_events:
                for event_id in self.events_in(calendar_id):
                    event = self.events[event_id]
                    others = {k: v for k, v in event["calendarIds"].items() if k != calendar_id}
                    if others:
                        self.replace("CalendarEvent", {**event, "calendarIds": others})
                    else:
                        self._remove("CalendarEvent", event_id)
                if self.dialect == "cyrus36":
                    # Cyrus 3.6 cannot calculate event changes across a calendar's destruction.
                    self.forget_history("CalendarEvent")
            self._remove("Calendar", calendar_id)

    def destroy_task_list(self, task_list_id: str, remove_tasks: bool = True) -> None:
        with self.lock, self.batch():
            if remove_tasks:
                for task_id in self.tasks_in(task_list_id):
                    self._remove("Task", task_id)
            self._remove("TaskList", task_list_id)

    # ----------------------------------------------------------------- text index

    def index_text(self) -> None:
        """Make every current object visible to text filters (used with a lazy text index)."""
        with self.lock:
            for type_name in TYPES:
                self._text_index[type_name] = copy.deepcopy(self.collection(type_name))

    def indexed_version(self, type_name: str, obj_id: str) -> Obj | None:
        with self.lock:
            return self._text_index[type_name].get(obj_id)

    # ----------------------------------------------------------------- /changes

    def changes(self, type_name: str, since: str, max_changes: int | None) -> ChangesPage:
        """Compute one page of ``/changes`` (RFC 8620 §5.2); ``max_changes`` None = no limit."""
        with self.lock:
            if self.dialect == "stalwart":
                return self._changes_stalwart(type_name, since, max_changes)
            return self._changes_counter(type_name, since, max_changes)

    @staticmethod
    def _collapse(entries: list[Change]) -> list[tuple[str, str]]:
        status: dict[str, str] = {}
        for entry in entries:
            current = status.get(entry.obj_id)
            if current is None:
                status[entry.obj_id] = entry.kind
            elif current == "created" and entry.kind == "destroyed":
                del status[entry.obj_id]
            elif current == "updated" and entry.kind == "destroyed":
                status[entry.obj_id] = "destroyed"
            elif current == "destroyed" and entry.kind != "destroyed":
                # An id destroyed then made again (Cyrus reuses UID-based ids) exists on both ends.
                status[entry.obj_id] = "updated"
        return list(status.items())

    @staticmethod
    def _page(items: list[tuple[str, str]], old: str, new: str, more: bool) -> ChangesPage:
        page = ChangesPage(old, new, more)
        for obj_id, kind in items:
            getattr(page, kind).append(obj_id)
        return page

    def _changes_stalwart(self, type_name: str, since: str, max_changes: int | None) -> ChangesPage:
        decoded = decode_stalwart_state(since)
        if decoded is None:
            raise InvalidState(since)
        current = self._last[type_name]
        start = decoded.start
        end = decoded.end if decoded.kind == "r" and decoded.end is not None else current
        sent = decoded.sent if decoded.kind == "r" else 0
        if start > current or end > current or start < self._floor[type_name] or end < start:
            raise CannotCalculateChanges(since)
        entries = [e for e in self._logs[type_name] if start < e.seq <= end]
        items = self._collapse(entries)
        if max_changes and len(items) - sent > max_changes:
            new = encode_stalwart_paging_state(start, end, sent + max_changes)
            return self._page(items[sent : sent + max_changes], decoded.encode(), new, True)
        return self._page(items[sent:], decoded.encode(), encode_stalwart_state(end), False)

    def _changes_counter(self, type_name: str, since: str, max_changes: int | None) -> ChangesPage:
        try:
            start = int(since)
        except ValueError:
            raise CannotCalculateChanges(since) from None
        current = self.state_number(type_name)
        if start < self._floor[type_name] or start > current or since != str(start):
            raise CannotCalculateChanges(since)
        entries = [e for e in self._logs[type_name] if e.seq > start]
        new_state = current
        more = False
        if max_changes:
            touched: set[str] = set()
            for index, entry in enumerate(entries):
                if entry.obj_id not in touched and len(touched) == max_changes:
                    entries, new_state, more = entries[:index], entries[index - 1].seq, True
                    break
                touched.add(entry.obj_id)
        return self._page(self._collapse(entries), since, str(new_state), more)
