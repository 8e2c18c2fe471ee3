"""Synchronous JMAP calendar client: a thin driver over the shared flows (RFC 8620, JMAP Calendars).

:class:`JMAPClient` holds one :class:`niquests.Session` for its life and runs the flows built by
:class:`~jmapsyncd.jmap._ops.Operations`; :class:`~jmapsyncd.jmap.AsyncJMAPClient` runs the very
same flows with ``await``. Nothing but the driver differs between the two.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import TracebackType
from typing import Any, TypeVar

import niquests

from jmapsyncd.jmap import _transport
from jmapsyncd.jmap._ops import DateLike, Operations
from jmapsyncd.jmap.objects import JMAPCalendar, JMAPCalendarObject
from jmapsyncd.protocol.flows import CALENDAR, EVENT, TASK, TASK_LIST, ClientState, Flow, OnPage
from jmapsyncd.protocol.session import Session
from jmapsyncd.protocol.values import ChangeSet, Pull, SetResult
from jmapsyncd.protocol.wire import HttpRequest, HttpResponse, redact_url

T = TypeVar("T")


class JMAPClient:
    """Synchronous JMAP client for calendars, events and tasks."""

    def __init__(
        self,
        url: str,
        username: str | None = None,
        password: str | None = None,
        auth: Any = None,
        auth_type: str | None = None,
        timeout: float = 30,
    ) -> None:
        self.url = url
        self.username = username
        self.timeout = timeout
        self._auth = _transport.build_auth(username, password, auth, auth_type)
        self._state = ClientState(url)
        self._ops = Operations(self._state)
        self._session = niquests.Session()
        self._session.headers.update(_transport.HEADERS)
        self._verify = True

    def __repr__(self) -> str:
        return f"{type(self).__name__}(url={redact_url(self.url)!r})"

    # ------------------------------------------------------------------ driver

    def _send(self, req: HttpRequest) -> HttpResponse:
        kwargs = _transport.request_kwargs(req, self._auth, self.timeout, self._verify)
        try:
            resp = self._session.request(req.method, req.url, **kwargs)
        except Exception as exc:
            if _transport.is_transport_error(exc):
                raise _transport.transport_error(exc, req, self.timeout) from None
            raise
        return _transport.to_response(resp, req)

    def _run(self, flow: Flow[T]) -> T:
        try:
            req = next(flow)
            while True:
                req = flow.send(self._send(req))
        except StopIteration as stop:
            result: T = stop.value
            return result
        finally:
            flow.close()

    def set_verify_tls(self, verify: bool) -> None:
        """Check the server's TLS certificate (the default) or not (self-signed test servers)."""
        self._verify = verify
        self._session.verify = verify

    def close(self) -> None:
        self._session.close()

    def __enter__(self) -> JMAPClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # ------------------------------------------------------------------ helpers

    def _obj(self, data: dict[str, Any]) -> JMAPCalendarObject[JMAPClient]:
        return JMAPCalendarObject(data, None, self)

    def get_session(self) -> Session:
        """The session resource (fetched on first use)."""
        return self._run(self._ops.session())

    def export_session(self) -> dict[str, Any] | None:
        """The session resource in use, as JSON-able data for :meth:`import_session`.

        Holds the URL and login name the client was given, the URL the session came from and
        the server's session object; no password or token. None before the session is known.
        """
        return self._ops.export_session(self.username)

    def import_session(self, data: Mapping[str, Any]) -> bool:
        """Use a session exported by an earlier client, so no discovery request is needed.

        Returns False (and changes nothing) for data of another URL or login, another format
        or a session resource that does not parse. The session is fetched again when an answer
        carries another ``sessionState``, or when a request fails as if the session had moved
        (HTTP 404 or 405 at the API URL, ``unknownCapability``, ``accountNotFound``): that
        request is then sent once more to the new place.
        """
        return self._ops.import_session(data, self.username)

    # ------------------------------------------------------------------ public API

    def get_calendars(self) -> list[JMAPCalendar[JMAPClient]]:
        """All calendars of the account."""
        return [JMAPCalendar.from_jmap(c, self) for c in self._run(self._ops.calendars())]

    def create_event(self, calendar_id: str, ical_str: str) -> str:
        """Create an event from iCalendar text; returns the server's event id."""
        return self._run(self._ops.create_event(calendar_id, ical_str))

    def get_event(self, event_id: str) -> JMAPCalendarObject[JMAPClient]:
        """The event with this JMAP id; JMAPNotFoundError (a JMAPMethodError) if absent."""
        return self._obj(self._run(self._ops.get_event(event_id)))

    def update_event(self, event_id: str, ical_str: str) -> None:
        """Replace an event with the one in ``ical_str``."""
        self._run(self._ops.update_event(event_id, ical_str))

    def delete_event(self, event_id: str) -> None:
        """Delete an event."""
        self._run(self._ops.delete_event(event_id))

    def search_events(
        self,
        calendar_id: str | None = None,
        start: DateLike = None,
        end: DateLike = None,
        text: str | None = None,
    ) -> list[JMAPCalendarObject[JMAPClient]]:
        """Events ending after ``start``, starting before ``end``, matching ``text``."""
        found = self._run(self._ops.search_events(calendar_id, start, end, text))
        return [self._obj(o) for o in found]

    def get_sync_token(self) -> str:
        """The current CalendarEvent state."""
        return self._run(self._ops.sync_token())

    def get_objects_by_sync_token(
        self, sync_token: str
    ) -> tuple[
        list[JMAPCalendarObject[JMAPClient]], list[JMAPCalendarObject[JMAPClient]], list[str]
    ]:
        """``(added, modified, deleted)`` since the token; JMAPMethodError if hasMoreChanges."""
        added, modified, deleted = self._run(self._ops.objects_by_sync_token(sync_token))
        return [self._obj(o) for o in added], [self._obj(o) for o in modified], deleted

    def get_task_lists(self) -> list[dict[str, Any]]:
        """All task lists (JMAP Tasks); JMAPCapabilityError when the server has no tasks."""
        return self._run(self._ops.task_lists())

    def create_task(self, task_list_id: str, title: str, **kwargs: Any) -> str:
        """Create a task; ``kwargs`` are Task properties by wire name. Returns its id."""
        return self._run(self._ops.create_task(task_list_id, title, **kwargs))

    def get_task(self, task_id: str) -> dict[str, Any]:
        """The Task object."""
        return self._run(self._ops.get_task(task_id))

    def update_task(self, task_id: str, patch: dict[str, Any]) -> None:
        """Apply a PatchObject to a task."""
        self._run(self._ops.update_task(task_id, patch))

    def delete_task(self, task_id: str) -> None:
        """Delete a task."""
        self._run(self._ops.delete_task(task_id))

    # ------------------------------------------------------------------ sync API

    def fetch_calendars(self) -> tuple[list[dict[str, Any]], str]:
        """All calendars as dicts, with the Calendar state."""
        return self._run(self._ops.fetch_calendars())

    def create_calendar(self, name: str, color: str | None = None) -> str:
        """Create a calendar; returns its id."""
        return self._run(self._ops.create_calendar(name, color))

    def update_calendar(self, calendar_id: str, patch: dict[str, Any]) -> None:
        """Apply a PatchObject to a calendar."""
        self._run(self._ops.update_calendar(calendar_id, patch))

    def delete_calendar(self, calendar_id: str, remove_events: bool = True) -> None:
        """Destroy a calendar (with its events unless ``remove_events`` is False)."""
        self._run(self._ops.delete_calendar(calendar_id, remove_events))

    def calendar_changes(self, since_state: str, max_changes: int | None = None) -> ChangeSet:
        """Calendar changes since a state; CannotCalculateChanges means: list everything again."""
        return self._run(self._ops.changes(CALENDAR, since_state, max_changes))

    def pull(
        self,
        *,
        calendar_state: str | None,
        event_state: str | None,
        task_list_state: str | None = None,
        task_state: str | None = None,
        tasks: bool = True,
        max_changes: int | None = None,
    ) -> Pull:
        """What changed since the stored states, in one request unless changes page.

        Calendar/changes and CalendarEvent/changes (and TaskList/Task when ``tasks`` and the
        server offers them) with the changed objects by result reference. A None state lists
        the collections in full, or marks the items as needing a full listing
        (``full_items_needed``; so does ``cannotCalculateChanges``). See :class:`Pull`.
        """
        return self._run(
            self._ops.pull(
                calendar_state, event_state, task_list_state, task_state, tasks, max_changes
            )
        )

    def event_changes(self, since_state: str, max_changes: int | None = None) -> ChangeSet:
        """Event changes since a state, all pages; CannotCalculateChanges → full resync."""
        return self._run(self._ops.changes(EVENT, since_state, max_changes))

    def get_event_state(self) -> str:
        """The current CalendarEvent state (same as :meth:`get_sync_token`)."""
        return self._run(self._ops.state_of(EVENT))

    def get_calendar_state(self) -> str:
        """The current Calendar state."""
        return self._run(self._ops.state_of(CALENDAR))

    def get_events(self, ids: Iterable[str]) -> list[dict[str, Any]]:
        """Events by id (IETF form), in chunks of maxObjectsInGet; missing ids are left out."""
        return self._run(self._ops.get_events(ids))

    def get_all_events(
        self, calendar_id: str | None = None, *, on_page: OnPage | None = None
    ) -> tuple[list[dict[str, Any]], str]:
        """Every event (of one calendar) and the state to feed :meth:`event_changes` next.

        ``on_page`` is called with each page of events as it arrives (pages of at most 1,000).
        """
        return self._run(self._ops.fetch_all_events(calendar_id, on_page))

    def get_all_event_ids(self, calendar_id: str | None = None) -> tuple[list[str], str]:
        """Every event id (of one calendar) and the CalendarEvent state."""
        return self._run(self._ops.all_event_ids(calendar_id))

    def set_events(
        self,
        create: Mapping[str, dict[str, Any]] | None = None,
        update: Mapping[str, dict[str, Any]] | None = None,
        destroy: Iterable[str] | None = None,
    ) -> SetResult:
        """Batch create/update/destroy of IETF-form events, with per-object results."""
        return self._run(self._ops.set_events(create, update, destroy))

    def task_changes(self, since_state: str, max_changes: int | None = None) -> ChangeSet:
        """Task changes since a state (JMAP Tasks)."""
        return self._run(self._ops.changes(TASK, since_state, max_changes))

    def task_list_changes(self, since_state: str, max_changes: int | None = None) -> ChangeSet:
        """TaskList changes since a state (JMAP Tasks)."""
        return self._run(self._ops.changes(TASK_LIST, since_state, max_changes))

    def get_tasks(self, ids: Iterable[str]) -> list[dict[str, Any]]:
        """Tasks by id, chunked."""
        return self._run(self._ops.get_tasks(ids))

    def get_all_tasks(
        self, task_list_id: str | None = None, *, on_page: OnPage | None = None
    ) -> tuple[list[dict[str, Any]], str]:
        """Every task (of one list) and the Task state read before listing; ``on_page`` as
        for :meth:`get_all_events`."""
        return self._run(self._ops.fetch_all_tasks(task_list_id, on_page))

    def set_tasks(
        self,
        create: Mapping[str, dict[str, Any]] | None = None,
        update: Mapping[str, dict[str, Any]] | None = None,
        destroy: Iterable[str] | None = None,
    ) -> SetResult:
        """Batch create/update/destroy of tasks, with per-object results."""
        return self._run(self._ops.set_tasks(create, update, destroy))

    def create_task_list(self, name: str) -> str:
        """Create a task list; returns its id."""
        return self._run(self._ops.create_task_list(name))

    def update_task_list(self, task_list_id: str, patch: dict[str, Any]) -> None:
        """Apply a PatchObject to a task list."""
        self._run(self._ops.update_task_list(task_list_id, patch))

    def delete_task_list(self, task_list_id: str) -> None:
        """Destroy a task list."""
        self._run(self._ops.delete_task_list(task_list_id))
