"""Calendar and calendar-object wrappers of the public client API.

:class:`JMAPCalendar` wraps a ``Calendar`` (JMAP Calendars draft §4); :class:`JMAPCalendarObject`
wraps one ``CalendarEvent`` as a JSCalendar dict (RFC 8984) in the IETF form. Both are generic in
the client that made them: on a :class:`~jmapsyncd.jmap.JMAPClient` their I/O methods return
values, on an :class:`~jmapsyncd.jmap.AsyncJMAPClient` they return coroutines — the overloads say
which, so a type checker knows when to ``await``.
"""

from __future__ import annotations

from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Generic, TypeVar, overload

from jmapsyncd.errors import ConversionError, LocalProtocolError
from jmapsyncd.jmap._ops import then

if TYPE_CHECKING:
    import icalendar  # at run time only where used: the sync engine never needs it

    from jmapsyncd.jmap.async_client import AsyncJMAPClient
    from jmapsyncd.jmap.client import JMAPClient

ClientT = TypeVar("ClientT", "JMAPClient", "AsyncJMAPClient")


@dataclass
class JMAPCalendarObject(Generic[ClientT]):
    """One event: ``data`` is its JSCalendar dict as the server holds it, in the IETF form."""

    data: dict[str, Any]
    parent: JMAPCalendar[ClientT] | None = None
    _client: ClientT | None = field(default=None, repr=False, compare=False)
    _ical: icalendar.Calendar | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def id(self) -> str:
        """Server-assigned event id."""
        value = self.data.get("id")
        return value if isinstance(value, str) else ""

    def get_data(self) -> dict[str, Any]:
        """The JSCalendar dict."""
        return self.data

    def get_icalendar_instance(self) -> icalendar.Calendar:
        """The event as an :class:`icalendar.Calendar` (cached; edit it via the context manager)."""
        if self._ical is None:
            import icalendar

            from jmapsyncd.convert import jscal_to_ical

            self._ical = icalendar.Calendar.from_ical(jscal_to_ical(self.data))
        return self._ical

    @contextmanager
    def edit_icalendar_instance(self) -> Iterator[icalendar.Calendar]:
        """Borrow the iCalendar form to edit; ``data`` follows the edits, ``save()`` sends them."""
        cal = self.get_icalendar_instance()
        yield cal
        from jmapsyncd.convert import ical_to_jscal

        events = ical_to_jscal(cal.to_ical().decode())
        if not events:
            raise ConversionError(
                "the edited calendar has no event", where="edit_icalendar_instance"
            )
        keep = {k: self.data[k] for k in ("id", "calendarIds") if k in self.data}
        self.data = {**events[0], **keep}

    def _owner(self) -> ClientT:
        client = (
            self._client
            if self._client is not None
            else (self.parent._client if self.parent is not None else None)
        )
        if client is None:
            raise LocalProtocolError(None, "this object is not attached to a client")
        return client

    @overload
    def save(self: JMAPCalendarObject[JMAPClient]) -> None: ...
    @overload
    def save(self: JMAPCalendarObject[AsyncJMAPClient]) -> Coroutine[Any, Any, None]: ...
    def save(self) -> Any:
        """Send ``data`` to the server (a coroutine on async clients).

        An object with an id replaces the stored event; one without is created in ``parent``
        and takes the new id.
        """
        client = self._owner()
        if self.id:
            return client._run(client._ops.update_event_data(self.id, self.data))
        if self.parent is None:
            raise LocalProtocolError(None, "a new object needs a parent calendar to be saved")

        def adopt(new_id: str) -> None:
            self.data["id"] = new_id

        flow = client._ops.create_event_data(self.parent.id, self.data)
        return client._run(then(flow, adopt))


@dataclass
class JMAPCalendar(Generic[ClientT]):
    """A calendar, as ``Calendar/get`` describes it."""

    id: str
    name: str
    description: str | None = None
    color: str | None = None
    is_subscribed: bool = True
    my_rights: dict[str, Any] = field(default_factory=dict)
    sort_order: int = 0
    is_visible: bool = True
    _client: ClientT | None = field(default=None, repr=False, compare=False)

    @classmethod
    def from_jmap(
        cls, data: dict[str, Any], client: ClientT | None = None
    ) -> JMAPCalendar[ClientT]:
        """From a ``Calendar/get`` object; unknown keys are ignored."""

        def text(key: str) -> str | None:
            value = data.get(key)
            return value if isinstance(value, str) else None

        rights = data.get("myRights")
        sort_order = data.get("sortOrder")
        return cls(
            id=str(data.get("id", "")),
            name=text("name") or "",
            description=text("description"),
            color=text("color"),
            is_subscribed=data.get("isSubscribed") is not False,
            my_rights=dict(rights) if isinstance(rights, dict) else {},
            sort_order=sort_order if isinstance(sort_order, int) else 0,
            is_visible=data.get("isVisible") is not False,
            _client=client,
        )

    def _owner(self) -> ClientT:
        if self._client is None:
            raise LocalProtocolError(None, "this calendar is not attached to a client")
        return self._client

    def _wrap(self, objects: list[dict[str, Any]]) -> list[JMAPCalendarObject[ClientT]]:
        return [JMAPCalendarObject(o, self, self._client) for o in objects]

    @overload
    def search(
        self: JMAPCalendar[JMAPClient],
        start: str | datetime | None = None,
        end: str | datetime | None = None,
        text: str | None = None,
        **searchargs: Any,
    ) -> list[JMAPCalendarObject[JMAPClient]]: ...
    @overload
    def search(
        self: JMAPCalendar[AsyncJMAPClient],
        start: str | datetime | None = None,
        end: str | datetime | None = None,
        text: str | None = None,
        **searchargs: Any,
    ) -> Coroutine[Any, Any, list[JMAPCalendarObject[AsyncJMAPClient]]]: ...
    def search(
        self,
        start: str | datetime | None = None,
        end: str | datetime | None = None,
        text: str | None = None,
        **searchargs: Any,
    ) -> Any:
        """Events here: ending after ``start``, starting before ``end``, matching ``text``.

        Other keyword arguments of CalDAV's ``search`` are accepted and ignored.
        """
        client = self._owner()
        flow = client._ops.search_events(self.id, start, end, text)
        return client._run(then(flow, self._wrap))

    @overload
    def get_object_by_uid(
        self: JMAPCalendar[JMAPClient], uid: str, comp_class: Any = None
    ) -> JMAPCalendarObject[JMAPClient]: ...
    @overload
    def get_object_by_uid(
        self: JMAPCalendar[AsyncJMAPClient], uid: str, comp_class: Any = None
    ) -> Coroutine[Any, Any, JMAPCalendarObject[AsyncJMAPClient]]: ...
    def get_object_by_uid(self, uid: str, comp_class: Any = None) -> Any:
        """The event with this iCalendar UID (server-side filter); JMAPNotFoundError if none."""
        client = self._owner()
        flow = client._ops.event_by_uid(uid, self.id)
        return client._run(then(flow, lambda o: JMAPCalendarObject(o, self, self._client)))

    @overload
    def add_event(self: JMAPCalendar[JMAPClient], ical_str: str) -> str: ...
    @overload
    def add_event(
        self: JMAPCalendar[AsyncJMAPClient], ical_str: str
    ) -> Coroutine[Any, Any, str]: ...
    def add_event(self, ical_str: str) -> Any:
        """Create an event in this calendar from iCalendar text; returns its id."""
        client = self._owner()
        return client._run(client._ops.create_event(self.id, ical_str))
