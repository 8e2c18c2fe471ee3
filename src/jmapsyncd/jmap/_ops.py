"""Every client operation as a flow, written once for both clients.

:class:`Operations` turns the public API's arguments (iCalendar strings, ids, patches) into
protocol flows (:mod:`jmapsyncd.protocol.flows`) and returns plain values. It does no I/O: the
sync and async clients run the flows it builds. iCalendar ⇄ JSCalendar goes through
:mod:`jmapsyncd.convert` (RFC 5545 ⇄ RFC 8984).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any, TypeVar

from jmapsyncd.errors import ConversionError, JMAPMethodError, JMAPNotFoundError
from jmapsyncd.protocol import flows
from jmapsyncd.protocol.dialect import replacement_patch
from jmapsyncd.protocol.flows import CALENDAR, EVENT, TASK, TASK_LIST, ClientState, Flow, Kind
from jmapsyncd.protocol.session import Session
from jmapsyncd.protocol.values import ChangeSet, Pull, SetResult
from jmapsyncd.protocol.wire import redact_url

T = TypeVar("T")
U = TypeVar("U")

DateLike = str | datetime | None


def then(flow: Flow[T], fn: Callable[[T], U]) -> Flow[U]:
    """A flow that runs ``flow`` and maps its result through ``fn``."""
    result = yield from flow
    return fn(result)


def _one_event(ical_str: str) -> list[dict[str, Any]]:
    from jmapsyncd.convert import ical_to_jscal  # the converter is only needed here

    events = ical_to_jscal(ical_str)
    if not events:
        raise ConversionError("no VEVENT in the iCalendar data", where="create/update")
    return events


class Operations:
    """Flow factories bound to one :class:`ClientState`."""

    def __init__(self, state: ClientState) -> None:
        self.state = state

    def _url(self) -> str | None:
        session = self.state.session
        return redact_url(session.api_url) if session else None

    # ------------------------------------------------------------------ session

    def session(self) -> Flow[Session]:
        return flows.ensure_session(self.state)

    def export_session(self, login: str | None) -> dict[str, Any] | None:
        return flows.export_session(self.state, login)

    def import_session(self, data: Mapping[str, Any], login: str | None) -> bool:
        return flows.import_session(self.state, data, login)

    # ------------------------------------------------------------------ pull

    def pull(
        self,
        calendar_state: str | None,
        event_state: str | None,
        task_list_state: str | None,
        task_state: str | None,
        tasks: bool,
        max_changes: int | None,
    ) -> Flow[Pull]:
        return flows.pull(
            self.state,
            calendar_state=calendar_state,
            event_state=event_state,
            task_list_state=task_list_state,
            task_state=task_state,
            tasks=tasks,
            max_changes=max_changes,
        )

    # ------------------------------------------------------------------ calendars

    def calendars(self) -> Flow[list[dict[str, Any]]]:
        return then(flows.get_objects(self.state, CALENDAR, None), lambda r: r.objects)

    def fetch_calendars(self) -> Flow[tuple[list[dict[str, Any]], str]]:
        return then(flows.get_objects(self.state, CALENDAR, None), lambda r: (r.objects, r.state))

    def create_calendar(self, name: str, color: str | None = None) -> Flow[str]:
        data: dict[str, Any] = {"name": name}
        if color is not None:
            data["color"] = color

        def created(answer: dict[str, Any] | None) -> str:
            assert answer is not None
            return str(answer["id"])

        return then(flows.set_one(self.state, CALENDAR, create=data), created)

    def update_calendar(self, calendar_id: str, patch: dict[str, Any]) -> Flow[None]:
        return then(
            flows.set_one(self.state, CALENDAR, update=(calendar_id, patch)), lambda _: None
        )

    def delete_calendar(self, calendar_id: str, remove_events: bool = True) -> Flow[None]:
        # Cyrus 3.6 refuses the argument and always removes the events.
        optional = {"onDestroyRemoveEvents": True} if remove_events else None
        return then(
            flows.set_one(self.state, CALENDAR, destroy=calendar_id, optional=optional),
            lambda _: None,
        )

    # ------------------------------------------------------------------ events (seed API)

    def create_event(self, calendar_id: str, ical_str: str) -> Flow[str]:
        events = _one_event(ical_str)
        create = {str(i): {**ev, "calendarIds": {calendar_id: True}} for i, ev in enumerate(events)}

        def first_id(result: SetResult) -> str:
            result.raise_first_error()
            return str(result.created["0"]["id"])

        return then(flows.set_events(self.state, create=create), first_id)

    def create_event_data(self, calendar_id: str, event: dict[str, Any]) -> Flow[str]:
        """Create one IETF-form event in a calendar; returns its id."""
        create = {"0": {**event, "calendarIds": {calendar_id: True}}}

        def new_id(result: SetResult) -> str:
            result.raise_first_error()
            return str(result.created["0"]["id"])

        return then(flows.set_events(self.state, create=create), new_id)

    def get_event(self, event_id: str) -> Flow[dict[str, Any]]:
        return flows.get_one(self.state, EVENT, event_id)

    def update_event(self, event_id: str, ical_str: str) -> Flow[None]:
        event = _one_event(ical_str)[0]
        return self.update_event_data(event_id, event)

    def update_event_data(self, event_id: str, event: dict[str, Any]) -> Flow[None]:
        """Replace the stored event with ``event`` (IETF form); absent properties are removed."""
        patch = replacement_patch({k: v for k, v in event.items() if k != "calendarIds"})

        def check(result: SetResult) -> None:
            result.raise_first_error()

        return then(flows.set_events(self.state, update={event_id: patch}), check)

    def delete_event(self, event_id: str) -> Flow[None]:
        def check(result: SetResult) -> None:
            result.raise_first_error()

        return then(flows.set_events(self.state, destroy=[event_id]), check)

    def search_events(
        self,
        calendar_id: str | None = None,
        start: DateLike = None,
        end: DateLike = None,
        text: str | None = None,
    ) -> Flow[list[dict[str, Any]]]:
        return then(
            flows.query_events(
                self.state, calendar_id=calendar_id, start=start, end=end, text=text
            ),
            lambda r: r[0],
        )

    def event_by_uid(self, uid: str, calendar_id: str | None = None) -> Flow[dict[str, Any]]:
        def first(result: tuple[list[dict[str, Any]], list[str], str | None]) -> dict[str, Any]:
            for obj in result[0]:
                if obj.get("uid") == uid:
                    return obj
            raise JMAPNotFoundError(
                self._url(),
                f"no event with UID {uid!r}",
                "notFound",
                method="CalendarEvent/query",
                object_id=uid,
            )

        return then(flows.query_events(self.state, calendar_id=calendar_id, uid=uid), first)

    def sync_token(self) -> Flow[str]:
        return flows.get_state(self.state, EVENT)

    def objects_by_sync_token(
        self, sync_token: str
    ) -> Flow[tuple[list[dict[str, Any]], list[dict[str, Any]], list[str]]]:
        state = self.state
        url = self._url

        def flow() -> Flow[tuple[list[dict[str, Any]], list[dict[str, Any]], list[str]]]:
            change_set, more = yield from flows.changes_page(state, EVENT, sync_token)
            if more:
                raise JMAPMethodError(
                    url(),
                    "CalendarEvent/changes: hasMoreChanges is true; "
                    "use event_changes() to page through all changes",
                    "tooManyChanges",
                    method="CalendarEvent/changes",
                )
            wanted = [*change_set.created, *change_set.updated]
            objects: list[dict[str, Any]] = []
            if wanted:
                got = yield from flows.get_objects(state, EVENT, wanted)
                objects = got.objects
            by_id = {o["id"]: o for o in objects}
            added = [by_id[i] for i in change_set.created if i in by_id]
            modified = [by_id[i] for i in change_set.updated if i in by_id]
            return added, modified, list(change_set.destroyed)

        return flow()

    # ------------------------------------------------------------------ events (sync API)

    def changes(self, kind: Kind, since_state: str, max_changes: int | None) -> Flow[ChangeSet]:
        return flows.changes(self.state, kind, since_state, max_changes)

    def get_events(self, ids: Iterable[str]) -> Flow[list[dict[str, Any]]]:
        return then(flows.get_objects(self.state, EVENT, list(ids)), lambda r: r.objects)

    def fetch_all_events(
        self, calendar_id: str | None = None, on_page: flows.OnPage | None = None
    ) -> Flow[tuple[list[dict[str, Any]], str]]:
        return flows.fetch_all_events(self.state, calendar_id, on_page)

    def all_event_ids(self, calendar_id: str | None = None) -> Flow[tuple[list[str], str]]:
        return flows.all_event_ids(self.state, calendar_id)

    def set_events(
        self,
        create: Mapping[str, dict[str, Any]] | None = None,
        update: Mapping[str, dict[str, Any]] | None = None,
        destroy: Iterable[str] | None = None,
    ) -> Flow[SetResult]:
        return flows.set_events(self.state, create=create, update=update, destroy=destroy)

    def state_of(self, kind: Kind) -> Flow[str]:
        return flows.get_state(self.state, kind)

    # ------------------------------------------------------------------ tasks

    def task_lists(self) -> Flow[list[dict[str, Any]]]:
        return then(flows.get_objects(self.state, TASK_LIST, None), lambda r: r.objects)

    def create_task(self, task_list_id: str, title: str, **kwargs: Any) -> Flow[str]:
        data: dict[str, Any] = {"@type": "Task", "taskListId": task_list_id, "title": title}
        data.update(kwargs)

        def created(answer: dict[str, Any] | None) -> str:
            assert answer is not None
            return str(answer["id"])

        return then(flows.set_one(self.state, TASK, create=data), created)

    def get_task(self, task_id: str) -> Flow[dict[str, Any]]:
        return flows.get_one(self.state, TASK, task_id)

    def update_task(self, task_id: str, patch: dict[str, Any]) -> Flow[None]:
        return then(flows.set_one(self.state, TASK, update=(task_id, patch)), lambda _: None)

    def delete_task(self, task_id: str) -> Flow[None]:
        return then(flows.set_one(self.state, TASK, destroy=task_id), lambda _: None)

    def get_tasks(self, ids: Iterable[str]) -> Flow[list[dict[str, Any]]]:
        return then(flows.get_objects(self.state, TASK, list(ids)), lambda r: r.objects)

    def fetch_all_tasks(
        self, task_list_id: str | None = None, on_page: flows.OnPage | None = None
    ) -> Flow[tuple[list[dict[str, Any]], str]]:
        return flows.fetch_all_tasks(self.state, task_list_id, on_page)

    def set_tasks(
        self,
        create: Mapping[str, dict[str, Any]] | None = None,
        update: Mapping[str, dict[str, Any]] | None = None,
        destroy: Iterable[str] | None = None,
    ) -> Flow[SetResult]:
        return flows.set_objects(self.state, TASK, create=create, update=update, destroy=destroy)

    def create_task_list(self, name: str) -> Flow[str]:
        def created(answer: dict[str, Any] | None) -> str:
            assert answer is not None
            return str(answer["id"])

        return then(flows.set_one(self.state, TASK_LIST, create={"name": name}), created)

    def update_task_list(self, task_list_id: str, patch: dict[str, Any]) -> Flow[None]:
        return then(
            flows.set_one(self.state, TASK_LIST, update=(task_list_id, patch)), lambda _: None
        )

    def delete_task_list(self, task_list_id: str) -> Flow[None]:
        return then(flows.set_one(self.state, TASK_LIST, destroy=task_list_id), lambda _: None)
