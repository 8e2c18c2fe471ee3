"""Sans-I/O flows: every JMAP exchange as a generator that yields requests and gets responses.

A flow is a ``Generator[HttpRequest, HttpResponse, T]``: it yields an :class:`HttpRequest`,
is sent back the :class:`HttpResponse`, and finally returns ``T`` (httpx's ``auth_flow`` idea).
The sync and async clients are two small drivers that run the same flows, so the protocol logic
exists once. Flows share a mutable :class:`ClientState` (the session and the learned dialect);
that is the only state, and it holds no I/O.

Implements: session discovery with redirects (RFC 8620 §2.2), the API request (§3.3) within the
core limits (§2: ``maxCallsInRequest``, ``maxObjectsInGet``, ``maxObjectsInSet``,
``maxSizeRequest``), /get (§5.1), /changes paged through ``hasMoreChanges`` (§5.2), /set with
per-object errors (§5.3), /query with result references and paging (§5.5, §3.7), for
Calendar, CalendarEvent (JMAP Calendars draft), TaskList and Task (JMAP Tasks draft).
"""

from __future__ import annotations

import copy
import json
import logging
from collections.abc import Callable, Generator, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar
from urllib.parse import urljoin, urlsplit, urlunsplit

from jmapsyncd.errors import (
    JMAPAuthError,
    JMAPCapabilityError,
    JMAPMethodError,
    JMAPNotFoundError,
    JMAPSetError,
    LocalProtocolError,
    RemoteProtocolError,
    UnsupportedFilter,
)
from jmapsyncd.protocol.dialect import (
    Dialect,
    calendar_filter,
    calendar_from_wire,
    dialect_from_session,
    drop_paths,
    event_from_wire,
    event_to_wire,
    narrowest_drops,
    query_datetime,
    task_from_wire,
)
from jmapsyncd.protocol.envelope import (
    Call,
    Request,
    Response,
    obj_list,
    obj_map,
    str_list,
    string,
)
from jmapsyncd.protocol.session import CALENDARS, CORE, TASKS, Session, parse_session
from jmapsyncd.protocol.values import ChangeSet, KindPull, Pull, SetResult
from jmapsyncd.protocol.wire import HttpRequest, HttpResponse, json_object, redact_url, same_origin

T = TypeVar("T")
Flow = Generator[HttpRequest, HttpResponse, T]
#: Called with each page of objects as it arrives, before the flow asks for the next one.
OnPage = Callable[[list[dict[str, Any]]], None]
#: Page size while pages are handed out: small enough that the first arrives soon.
STREAM_PAGE = 1000

log = logging.getLogger("jmapsyncd.protocol")

MAX_REDIRECTS = 5
WELL_KNOWN = "/.well-known/jmap"


class ClientState:
    """What flows learn and remember: the session and the server's dialect."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.session: Session | None = None
        self.dialect: Dialect | None = None
        #: the server's ``sessionState`` moved on: fetch the session again before the next call
        self.session_stale = False
        #: collection types whose ``/changes`` the server does not know (``unknownMethod``)
        self.no_changes: set[str] = set()


# --------------------------------------------------------------------------- session, calls


def session_url(url: str) -> str:
    """A bare ``https://host`` means the well-known session URL (RFC 8620 §2.2)."""
    parts = urlsplit(url)
    if parts.path in ("", "/"):
        return urlunsplit((parts.scheme, parts.netloc, WELL_KNOWN, parts.query, ""))
    return url


def discover(state: ClientState) -> Flow[Session]:
    """Fetch the session resource, following redirects (301/302/303/307/308, relative too)."""
    start = session_url(state.url)
    url = start
    for _ in range(MAX_REDIRECTS + 1):
        resp = yield HttpRequest("GET", url, authenticated=same_origin(url, start))
        if resp.status in (301, 302, 303, 307, 308):
            location = resp.headers.get("location")
            if not location:
                raise RemoteProtocolError(redact_url(url), f"HTTP {resp.status} without Location")
            url = urljoin(url, location)
            continue
        return _adopt(state, parse_session(json_object(resp), url))
    raise RemoteProtocolError(redact_url(start), f"more than {MAX_REDIRECTS} redirects")


def _adopt(state: ClientState, session: Session) -> Session:
    fresh = dialect_from_session(session)
    old = state.dialect
    # Keep what was learned while the server still speaks the same calendars capability.
    if old and fresh and old.calendars_capability == fresh.calendars_capability:
        fresh = old.learn(tasks_capability=fresh.tasks_capability)
    state.session = session
    state.dialect = fresh
    state.session_stale = False
    return session


#: version of the :func:`export_session` format
SESSION_EXPORT_VERSION = 1


def export_session(state: ClientState, login: str | None = None) -> dict[str, Any] | None:
    """The session resource as last fetched, for :func:`import_session` in a later process.

    A JSON-able dict: the URL the client was given, the login name it was given (``login``), the
    URL the session came from (after redirects) and the server's session object. It holds no
    credentials. None before the session is known.
    """
    session = state.session
    if session is None or not session.raw:
        return None
    return {
        "version": SESSION_EXPORT_VERSION,
        "url": state.url,
        "login": login or "",
        "sessionUrl": session.url,
        "session": session.raw,
    }


def import_session(state: ClientState, data: Any, login: str | None = None) -> bool:
    """Use a session exported earlier instead of fetching it again; returns whether it was taken.

    Data exported for another URL or login, of another format version or no longer valid is
    ignored (False): the session is then fetched as usual. The imported session is used until
    an answer carries another ``sessionState`` or a request fails the way a moved session does
    (see :func:`send`).
    """
    if not isinstance(data, Mapping) or data.get("version") != SESSION_EXPORT_VERSION:
        return False
    if data.get("url") != state.url or data.get("login") != (login or ""):
        return False
    url, raw = data.get("sessionUrl"), data.get("session")
    if not isinstance(url, str) or not isinstance(raw, dict):
        return False
    try:
        session = parse_session(raw, url)
    except (RemoteProtocolError, JMAPAuthError):
        return False
    _adopt(state, session)
    return True


def ensure_session(state: ClientState) -> Flow[Session]:
    if state.session is None or state.session_stale:
        return (yield from discover(state))
    return state.session


def ensure_dialect(state: ClientState) -> Flow[tuple[Session, Dialect]]:
    session = yield from ensure_session(state)
    if state.dialect is None:
        raise JMAPCapabilityError(
            redact_url(session.url),
            "the server offers no JMAP Calendars capability",
            capability=CALENDARS,
        )
    return session, state.dialect


def send(state: ClientState, request: Request) -> Flow[Response]:
    """POST one request to the API URL and decode the envelope.

    A session known from before this call (imported, or fetched for an earlier call) may have
    moved. When the answer says so — HTTP 404 or 405 at the API URL, ``unknownCapability``, or
    a method answering ``accountNotFound`` — the session is fetched again and, if its API URL or
    account changed and it still offers every capability the request uses, the request is sent
    once more to the new place. Otherwise the answer stands (and the fresh session serves the
    next call).
    """
    known_before = state.session is not None and not state.session_stale
    session = yield from ensure_session(state)
    _check_limits(session, request)
    resp = yield HttpRequest("POST", session.api_url, request.to_json())
    if known_before and _session_moved(resp):
        fresh = yield from discover(state)
        again = _rebase(request, session, fresh)
        if again is not None:
            _check_limits(fresh, again)
            session = fresh
            resp = yield HttpRequest("POST", session.api_url, again.to_json())
    response = Response(json_object(resp), redact_url(session.api_url))
    # RFC 8620 §3.4: a changed sessionState means the session resource changed.
    if response.session_state and session.state and response.session_state != session.state:
        state.session_stale = True
    return response


def _check_limits(session: Session, request: Request) -> None:
    limits = session.limits
    if len(request) > limits.max_calls_in_request:
        raise LocalProtocolError(
            redact_url(session.api_url),
            f"{len(request)} calls exceed maxCallsInRequest={limits.max_calls_in_request}",
        )
    if request.size() > limits.max_size_request:
        raise LocalProtocolError(
            redact_url(session.api_url),
            f"request of {request.size()} bytes exceeds maxSizeRequest={limits.max_size_request}",
        )


def _session_moved(resp: HttpResponse) -> bool:
    """Whether an answer suggests the session resource we used is out of date."""
    if resp.status in (404, 405):  # Cyrus answers 405 to a POST at a path it does not serve
        return True
    if resp.status == 200 and b"accountNotFound" not in resp.content:
        return False  # the common case, without decoding the body twice
    if resp.status not in (200, 400):
        return False
    try:
        data = json.loads(resp.content)
    except ValueError:
        return False
    if not isinstance(data, dict):
        return False
    if resp.status == 400:
        return data.get("type") == "urn:ietf:params:jmap:error:unknownCapability"
    answers = data.get("methodResponses")
    return isinstance(answers, list) and any(
        isinstance(a, list)
        and len(a) == 3
        and a[0] == "error"
        and isinstance(a[1], dict)
        and a[1].get("type") == "accountNotFound"
        for a in answers
    )


def _rebase(request: Request, old: Session, new: Session) -> Request | None:
    """``request`` for the new session (account id swapped), or None when a retry is pointless."""
    if (new.api_url, new.account_id) == (old.api_url, old.account_id):
        return None
    if not all(new.has(cap) for cap in request.using):
        return None
    again = Request(request.using)
    for call in request.calls:
        args = dict(call.args)
        if args.get("accountId") == old.account_id:
            args["accountId"] = new.account_id
        again.call(call.name, args)
    return again


# --------------------------------------------------------------------------- kinds


@dataclass(frozen=True)
class Kind:
    """A JMAP data type and how its objects are normalised."""

    name: str
    tasks: bool = False

    def using(self, state: ClientState) -> list[str]:
        session = state.session
        dialect = state.dialect
        if self.tasks:
            if session is None or not session.has(TASKS):
                raise JMAPCapabilityError(
                    redact_url(session.url) if session else None,
                    "the server offers no JMAP Tasks capability (urn:ietf:params:jmap:tasks)",
                    capability=TASKS,
                )
            return [CORE, TASKS]
        if dialect is None:
            raise JMAPCapabilityError(
                redact_url(session.url) if session else None,
                "the server offers no JMAP Calendars capability",
                capability=CALENDARS,
            )
        return [CORE, dialect.calendars_capability]

    def normalise(self, obj: dict[str, Any]) -> dict[str, Any]:
        if self.name == "CalendarEvent":
            return event_from_wire(obj)
        if self.name == "Task":
            return task_from_wire(obj)
        if self.name in ("Calendar", "TaskList"):
            return calendar_from_wire(obj)
        return obj


CALENDAR = Kind("Calendar")
EVENT = Kind("CalendarEvent")
TASK_LIST = Kind("TaskList", tasks=True)
TASK = Kind("Task", tasks=True)


def _prepare(state: ClientState, kind: Kind) -> Flow[Session]:
    session = yield from ensure_session(state)
    kind.using(state)  # raises the capability error before anything is sent
    return session


def _chunks(items: list[T], size: int) -> list[list[T]]:
    return [items[i : i + size] for i in range(0, len(items), max(1, size))]


# --------------------------------------------------------------------------- /get


@dataclass(frozen=True)
class GetResult:
    objects: list[dict[str, Any]]
    not_found: list[str]
    state: str


def get_objects(
    state: ClientState,
    kind: Kind,
    ids: Iterable[str] | None,
    properties: list[str] | None = None,
    on_page: OnPage | None = None,
) -> Flow[GetResult]:
    """/get by ids, split into calls of ``maxObjectsInGet`` and requests of ``maxCallsInRequest``.

    ``ids=None`` asks for every object (fine for calendars and task lists, which are few).
    ``on_page`` gets each request's objects (then one call per request of ``STREAM_PAGE``).
    """
    session = yield from _prepare(state, kind)
    base: dict[str, Any] = {"accountId": session.account_id}
    if properties is not None:
        base["properties"] = properties
    wanted = None if ids is None else list(dict.fromkeys(ids))
    if wanted is None:
        batches: list[list[str] | None] = [None]
    else:
        size = session.limits.max_objects_in_get
        batches = list(_chunks(wanted, min(size, STREAM_PAGE) if on_page else size)) or [[]]
    objects: list[dict[str, Any]] = []
    not_found: list[str] = []
    new_state = ""
    per_request = 1 if on_page else session.limits.max_calls_in_request
    for group in _chunks(batches, per_request):
        request = Request(kind.using(state))
        calls = [request.call(f"{kind.name}/get", {**base, "ids": batch}) for batch in group]
        response = yield from send(state, request)
        for call in calls:
            args = response.result(call)
            page = [kind.normalise(o) for o in obj_list(args, "list", url=response.url)]
            objects.extend(page)
            if on_page is not None:
                on_page(page)
            not_found.extend(str_list(args, "notFound", url=response.url, optional=True))
            # Across several requests keep the oldest state: a change feed from it repeats
            # anything that changed meanwhile instead of missing it.
            new_state = new_state or string(args, "state", url=response.url)
    for obj in objects:
        if not isinstance(obj.get("id"), str):
            raise RemoteProtocolError(redact_url(session.api_url), f"{kind.name} without id")
    return GetResult(objects, not_found, new_state)


def get_state(state: ClientState, kind: Kind) -> Flow[str]:
    """The type's current state string: /get with no ids transfers nothing else."""
    result = yield from get_objects(state, kind, [])
    return result.state


def get_one(state: ClientState, kind: Kind, object_id: str) -> Flow[dict[str, Any]]:
    result = yield from get_objects(state, kind, [object_id])
    for obj in result.objects:
        if obj.get("id") == object_id:
            return obj
    raise JMAPNotFoundError(
        redact_url(state.session.api_url) if state.session else None,
        f"{kind.name} {object_id} not found",
        "notFound",
        method=f"{kind.name}/get",
        object_id=object_id,
    )


# --------------------------------------------------------------------------- /changes


def changes(
    state: ClientState,
    kind: Kind,
    since_state: str,
    max_changes: int | None = None,
) -> Flow[ChangeSet]:
    """All changes since ``since_state``, following ``hasMoreChanges`` to the end.

    Raises :class:`~jmapsyncd.errors.CannotCalculateChanges` when the server needs a full resync.
    """
    session = yield from _prepare(state, kind)
    status: dict[str, str] = {}  # id -> "created" | "updated" | "destroyed"
    order: list[str] = []
    since = since_state
    for _ in range(100_000):
        request = Request(kind.using(state))
        args: dict[str, Any] = {"accountId": session.account_id, "sinceState": since}
        if max_changes:
            args["maxChanges"] = max_changes
        call = request.call(f"{kind.name}/changes", args)
        response = yield from send(state, request)
        result = response.result(call)
        url = response.url
        for oid in str_list(result, "created", url=url, optional=True):
            _merge_change(status, order, oid, "created")
        for oid in str_list(result, "updated", url=url, optional=True):
            _merge_change(status, order, oid, "updated")
        for oid in str_list(result, "destroyed", url=url, optional=True):
            _merge_change(status, order, oid, "destroyed")
        new_state = string(result, "newState", url=url)
        more = result.get("hasMoreChanges") is True
        if not more:
            return _change_set(status, order, since_state, new_state)
        if new_state == since:
            raise RemoteProtocolError(url, f"{kind.name}/changes: hasMoreChanges without progress")
        since = new_state
    raise RemoteProtocolError(None, f"{kind.name}/changes never finished")


def _merge_change(status: dict[str, str], order: list[str], oid: str, what: str) -> None:
    before = status.get(oid)
    if before is None:
        order.append(oid)
        status[oid] = what
    elif before == "created":
        if what == "destroyed":
            del status[oid]  # never existed as far as the caller is concerned
            order.remove(oid)
    elif before == "updated":
        status[oid] = "destroyed" if what == "destroyed" else "updated"
    else:  # destroyed, then created again (Cyrus 3.6 reuses the UID as id)
        status[oid] = "updated" if what != "destroyed" else "destroyed"


def _change_set(status: dict[str, str], order: list[str], old: str, new: str) -> ChangeSet:
    """The change set of merged pages, in first-seen order."""
    return ChangeSet(
        created=tuple(i for i in order if status.get(i) == "created"),
        updated=tuple(i for i in order if status.get(i) == "updated"),
        destroyed=tuple(i for i in order if status.get(i) == "destroyed"),
        old_state=old,
        new_state=new,
    )


def changes_page(
    state: ClientState, kind: Kind, since_state: str, max_changes: int | None = None
) -> Flow[tuple[ChangeSet, bool]]:
    """One /changes call, returning the change set and ``hasMoreChanges``."""
    session = yield from _prepare(state, kind)
    request = Request(kind.using(state))
    args: dict[str, Any] = {"accountId": session.account_id, "sinceState": since_state}
    if max_changes:
        args["maxChanges"] = max_changes
    call = request.call(f"{kind.name}/changes", args)
    response = yield from send(state, request)
    result = response.result(call)
    url = response.url
    change_set = ChangeSet(
        created=tuple(str_list(result, "created", url=url, optional=True)),
        updated=tuple(str_list(result, "updated", url=url, optional=True)),
        destroyed=tuple(str_list(result, "destroyed", url=url, optional=True)),
        old_state=since_state,
        new_state=string(result, "newState", url=url),
    )
    return change_set, result.get("hasMoreChanges") is True


# --------------------------------------------------------------------------- /set

#: (object, dialect, is a patch) → (wire form, pointers of what the wire form left out)
Adapter = Callable[[dict[str, Any], Dialect | None, bool], tuple[dict[str, Any], list[str]]]
Learner = Callable[[JMAPSetError, Dialect], Dialect | None]
#: (the object as sent, the server's invalidProperties) -> the paths to leave out of it
Trimmer = Callable[[dict[str, Any], list[str]], list[str]]

#: how many times one object is sent again with less of it before its refusal stands
MAX_TRIMS = 8
#: how many dialect lessons one object may teach (each refusal names one trait at a time)
MAX_LEARNS = 4


def _identity(
    obj: dict[str, Any], dialect: Dialect | None, patch: bool
) -> tuple[dict[str, Any], list[str]]:
    return dict(obj), []


def _event_adapter(
    obj: dict[str, Any], dialect: Dialect | None, patch: bool
) -> tuple[dict[str, Any], list[str]]:
    assert dialect is not None  # ensured by Kind.using before any set
    lost: list[str] = []
    return event_to_wire(obj, dialect, patch=patch, lost=lost), lost


def learn_from_set_error(error: JMAPSetError, dialect: Dialect) -> Dialect | None:
    """A better dialect, if ``error`` says the server wants another event shape."""
    if error.error_type != "invalidProperties":
        return None
    props = {p.split("/")[0] for p in error.properties}
    # A rule shape is refused as a whole; Cyrus 3.6 also puts ``recurrenceRule/`` in front of
    # paths that are about other properties, which says nothing about the rule's shape.
    whole = set(error.properties)
    if {"recurrenceRules", "excludedRecurrenceRules"} & whole and dialect.recurrence_rules_list:
        return dialect.learn(recurrence_rules_list=False)
    if "recurrenceRule" in whole and not dialect.recurrence_rules_list:
        return dialect.learn(recurrence_rules_list=True)
    if "calendarIds" in props and dialect.calendar_ids_map:
        return dialect.learn(calendar_ids_map=False)
    if "calendarId" in props and not dialect.calendar_ids_map:
        return dialect.learn(calendar_ids_map=True)
    if "descriptionContentType" in whole and dialect.html_description:
        return dialect.learn(html_description=False)
    if "timeZones" in props and dialect.custom_time_zones:
        return dialect.learn(custom_time_zones=False)
    if "version" in props and dialect.accepts_version:
        return dialect.learn(accepts_version=False)
    if "@type" in props:
        return dialect.learn(event_type="Event" if dialect.event_type != "Event" else "jsevent")
    vendor = {p for p in props if ":" in p} - dialect.rejected_properties
    if vendor:
        # Cyrus refuses vendor properties it does not know; the data stays in the local copy.
        return dialect.learn(rejected_properties=dialect.rejected_properties | vendor)
    return None


def _creation_key(index: int) -> str:
    return f"k{index}"


def set_objects(
    state: ClientState,
    kind: Kind,
    *,
    create: Mapping[str, dict[str, Any]] | None = None,
    update: Mapping[str, dict[str, Any]] | None = None,
    destroy: Iterable[str] | None = None,
    extra: Mapping[str, Any] | None = None,
    optional: Mapping[str, Any] | None = None,
    adapter: Adapter = _identity,
    learner: Learner | None = None,
    trimmer: Trimmer | None = None,
) -> Flow[SetResult]:
    """/set in chunks of ``maxObjectsInSet`` (and ``maxSizeRequest``), per-object results.

    ``create`` keys are the caller's own; they are mapped to safe creation ids on the wire and
    back in the result. Objects rejected for a dialect reason are adapted and retried, once per
    trait learned (up to :data:`MAX_LEARNS`).
    ``optional`` arguments are dropped (and remembered) when the server refuses them.

    With a ``trimmer``, an object still refused with ``invalidProperties`` is sent again without
    the narrowest paths the trimmer names (up to :data:`MAX_TRIMS` times, while it names new
    ones). What an accepted object went without is in ``SetResult.dropped`` and logged as a
    warning naming the object's ``uid``: nothing is left out silently.
    """
    session = yield from _prepare(state, kind)
    create = dict(create or {})
    update = dict(update or {})
    destroy_list = list(dict.fromkeys(destroy or ()))
    keys = {_creation_key(i): key for i, key in enumerate(create)}
    items: list[tuple[str, str, Any]] = [("create", ck, create[key]) for ck, key in keys.items()]
    items += [("update", oid, patch) for oid, patch in update.items()]
    items += [("destroy", oid, None) for oid in destroy_list]

    created: dict[str, dict[str, Any]] = {}
    updated: dict[str, dict[str, Any] | None] = {}
    destroyed: list[str] = []
    errors: dict[str, dict[str, JMAPSetError]] = {"create": {}, "update": {}, "destroy": {}}
    old_state: str | None = None
    new_state: str | None = None
    retried: dict[tuple[str, str], int] = {}
    trims: dict[tuple[str, str], list[str]] = {}
    rounds: dict[tuple[str, str], int] = {}
    # what the adapter left out of the last form sent of each object
    adapted: dict[tuple[str, str], list[str]] = {}

    # each object's adapted form for the dialect it was made for: a trim or a split chunk sends
    # the same object again, and re-encoding it can take seconds (rules, time zones)
    wire_forms: dict[tuple[str, str], tuple[Dialect | None, dict[str, Any], list[str]]] = {}

    def wire(op: str, key: str, obj: dict[str, Any], dialect: Dialect | None) -> dict[str, Any]:
        made = wire_forms.get((op, key))
        if made is None or made[0] != dialect:
            made = (dialect, *adapter(obj, dialect, op == "update"))
            wire_forms[(op, key)] = made
        adapted[(op, key)] = made[2]
        out = copy.deepcopy(made[1])
        drop_paths(out, trims.get((op, key), ()))
        return out

    pending = items
    while pending:
        chunk_size = session.limits.max_objects_in_set
        retry: list[tuple[str, str, Any]] = []
        queue = _chunks(pending, chunk_size)
        while queue:
            chunk = queue.pop(0)
            dialect = state.dialect
            args: dict[str, Any] = {"accountId": session.account_id}
            args.update(extra or {})
            rejected = dialect.rejected_args if dialect else frozenset()
            tried = {k: v for k, v in (optional or {}).items() if k not in rejected}
            args.update(tried)
            c = {k: wire(op, k, v, dialect) for op, k, v in chunk if op == "create"}
            u = {k: wire(op, k, v, dialect) for op, k, v in chunk if op == "update"}
            d = [k for op, k, _ in chunk if op == "destroy"]
            if c:
                args["create"] = c
            if u:
                args["update"] = u
            if d:
                args["destroy"] = d
            request = Request(kind.using(state))
            call = request.call(f"{kind.name}/set", args)
            if request.size() > session.limits.max_size_request and len(chunk) > 1:
                half = len(chunk) // 2
                queue[:0] = [chunk[:half], chunk[half:]]
                continue
            try:
                response = yield from send(state, request)
                result = response.result(call)
            except JMAPMethodError as exc:
                if (
                    tried
                    and exc.error_type in ("invalidArguments", "unknownArgument")
                    and dialect is not None
                ):
                    state.dialect = dialect.learn(rejected_args=rejected | set(tried))
                    queue.insert(0, chunk)
                    continue
                raise
            url = response.url
            if old_state is None:
                old = result.get("oldState")
                old_state = old if isinstance(old, str) else None
            ns = result.get("newState")
            new_state = ns if isinstance(ns, str) else new_state
            for ck, value in obj_map(result, "created", url=url).items():
                if ck in keys:
                    created[keys[ck]] = dict(value) if isinstance(value, dict) else {}
            for oid, value in obj_map(result, "updated", url=url).items():
                updated[oid] = dict(value) if isinstance(value, dict) else None
            destroyed.extend(str_list(result, "destroyed", url=url, optional=True))
            originals = {(op, k): v for op, k, v in chunk}
            for section, op in (
                ("notCreated", "create"),
                ("notUpdated", "update"),
                ("notDestroyed", "destroy"),
            ):
                for oid, raw in obj_map(result, section, url=url).items():
                    error = JMAPSetError.from_set_error(
                        keys.get(oid, oid) if op == "create" else oid,
                        raw,
                        url=url,
                        method=f"{kind.name}/set",
                    )
                    better = learner(error, state.dialect) if learner and state.dialect else None
                    if (
                        better is not None
                        and retried.get((op, oid), 0) < MAX_LEARNS
                        and (op, oid) in originals
                    ):
                        state.dialect = better
                        retried[(op, oid)] = retried.get((op, oid), 0) + 1
                        retry.append((op, oid, originals[(op, oid)]))
                        continue
                    sent = (c if op == "create" else u).get(oid)
                    if (
                        trimmer is not None
                        and sent is not None
                        and error.error_type == "invalidProperties"
                        and rounds.get((op, oid), 0) < MAX_TRIMS
                    ):
                        done = trims.setdefault((op, oid), [])
                        more = [p for p in trimmer(sent, list(error.properties)) if p not in done]
                        if more:
                            done.extend(more)
                            rounds[(op, oid)] = rounds.get((op, oid), 0) + 1
                            retry.append((op, oid, originals[(op, oid)]))
                            continue
                    key = keys.get(oid, oid) if op == "create" else oid
                    errors[op][key] = error
        pending = retry
    dropped: dict[str, tuple[str, ...]] = {}
    for op, oid in dict.fromkeys([*adapted, *trims]):
        key = keys.get(oid, oid) if op == "create" else oid
        paths = list(dict.fromkeys([*adapted.get((op, oid), ()), *trims.get((op, oid), ())]))
        if not paths or (key not in created if op == "create" else key not in updated):
            continue
        dropped[key] = tuple(paths)
        original = create.get(key) if op == "create" else update.get(key)
        uid = original.get("uid") if isinstance(original, dict) else None
        log.warning(
            "%s %s was stored without what the server refused or cannot hold: %s",
            kind.name,
            uid if isinstance(uid, str) else key,
            ", ".join(paths),
        )
    return SetResult(
        created=created,
        updated=updated,
        destroyed=tuple(destroyed),
        not_created=errors["create"],
        not_updated=errors["update"],
        not_destroyed=errors["destroy"],
        old_state=old_state,
        new_state=new_state,
        dropped=dropped,
    )


def set_events(
    state: ClientState,
    *,
    create: Mapping[str, dict[str, Any]] | None = None,
    update: Mapping[str, dict[str, Any]] | None = None,
    destroy: Iterable[str] | None = None,
) -> Flow[SetResult]:
    """CalendarEvent/set with IETF-form events adapted to the server's dialect."""
    yield from ensure_dialect(state)
    return (
        yield from set_objects(
            state,
            EVENT,
            create=create,
            update=update,
            destroy=destroy,
            optional={"sendSchedulingMessages": False},
            adapter=_event_adapter,
            learner=learn_from_set_error,
            trimmer=narrowest_drops,
        )
    )


def set_one(
    state: ClientState,
    kind: Kind,
    *,
    create: dict[str, Any] | None = None,
    update: tuple[str, dict[str, Any]] | None = None,
    destroy: str | None = None,
    extra: Mapping[str, Any] | None = None,
    optional: Mapping[str, Any] | None = None,
) -> Flow[dict[str, Any] | None]:
    """A single create/update/destroy; raises its JMAPSetError. Returns the server's answer."""
    adapter: Adapter = _event_adapter if kind is EVENT else _identity
    learner = learn_from_set_error if kind is EVENT else None
    if kind is EVENT:
        yield from ensure_dialect(state)
    result = yield from set_objects(
        state,
        kind,
        create={"new": create} if create is not None else None,
        update=dict([update]) if update is not None else None,
        destroy=[destroy] if destroy is not None else None,
        extra=extra,
        optional=({"sendSchedulingMessages": False} if kind is EVENT else {})
        | dict(optional or {}),
        adapter=adapter,
        learner=learner,
        trimmer=narrowest_drops if kind is EVENT else None,
    )
    result.raise_first_error()
    if create is not None:
        answer = result.created.get("new")
        if not answer or not isinstance(answer.get("id"), str):
            raise RemoteProtocolError(
                redact_url(state.session.api_url) if state.session else None,
                f"{kind.name}/set created an object without id",
            )
        return answer
    if update is not None:
        if update[0] not in result.updated:
            raise RemoteProtocolError(None, f"{kind.name}/set did not confirm update")
        return result.updated[update[0]]
    if destroy is not None and destroy not in result.destroyed:
        raise RemoteProtocolError(None, f"{kind.name}/set did not confirm destroy")
    return None


# --------------------------------------------------------------------------- /query


def event_filter(
    dialect: Dialect,
    *,
    calendar_id: str | None = None,
    start: str | datetime | None = None,
    end: str | datetime | None = None,
    text: str | None = None,
    uid: str | None = None,
) -> dict[str, Any]:
    """A CalendarEvent/query FilterCondition: start = ending after, end = starting before."""
    cond: dict[str, Any] = {}
    if calendar_id is not None:
        cond.update(calendar_filter(calendar_id, dialect))
    after = query_datetime(start, dialect)
    before = query_datetime(end, dialect)
    if after is not None:
        cond["after"] = after
    if before is not None:
        cond["before"] = before
    if text:
        cond["text"] = text
    if uid is not None:
        cond["uid"] = uid
    return cond


def _learn_filter(error: JMAPMethodError, dialect: Dialect, cond: dict[str, Any]) -> Dialect | None:
    if not isinstance(error, UnsupportedFilter) and error.error_type != "invalidArguments":
        return None
    if "inCalendars" in cond and dialect.in_calendars_filter:
        return dialect.learn(in_calendars_filter=False)
    if "inCalendar" in cond and not dialect.in_calendars_filter:
        return dialect.learn(in_calendars_filter=True)
    return None


def query_events(
    state: ClientState,
    *,
    calendar_id: str | None = None,
    start: str | datetime | None = None,
    end: str | datetime | None = None,
    text: str | None = None,
    uid: str | None = None,
    fetch: bool = True,
    on_page: OnPage | None = None,
) -> Flow[tuple[list[dict[str, Any]], list[str], str | None]]:
    """CalendarEvent/query (+ /get by result reference); see :func:`query`."""
    yield from ensure_dialect(state)

    def make_filter(dialect: Dialect | None) -> dict[str, Any]:
        assert dialect is not None
        return event_filter(
            dialect, calendar_id=calendar_id, start=start, end=end, text=text, uid=uid
        )

    return (yield from query(state, EVENT, make_filter, fetch=fetch, on_page=on_page))


def query(
    state: ClientState,
    kind: Kind,
    make_filter: Callable[[Dialect | None], dict[str, Any]],
    *,
    fetch: bool = True,
    on_page: OnPage | None = None,
) -> Flow[tuple[list[dict[str, Any]], list[str], str | None]]:
    """Query and (``fetch``) get the results by result reference in the same request.

    Pages of ``maxObjectsInGet`` ids; when the server ignores ``position`` (Cyrus 3.6), asks
    once more for all ids at once and gets them in chunks. A calendar filter the server does not
    support is swapped for the other shape once. Returns ``(objects, ids, queryState)``.
    ``on_page`` gets the objects of each page as it arrives (pages of at most ``STREAM_PAGE``),
    so a caller can work on one while the server prepares the next.
    """
    session = yield from _prepare(state, kind)
    page = session.limits.max_objects_in_get
    if on_page is not None:
        page = min(page, STREAM_PAGE)
        on_page = _once_each(on_page)  # the fallback below fetches the first page again
    ids: list[str] = []
    objects: list[dict[str, Any]] = []
    position = 0
    learned = False
    query_state: str | None = None
    seen: set[str] = set()
    while True:
        dialect = state.dialect
        cond = make_filter(dialect)
        args: dict[str, Any] = {"accountId": session.account_id}
        if cond:
            args["filter"] = cond
        if position:
            args["position"] = position
        args["limit"] = page
        args["calculateTotal"] = True
        request = Request(kind.using(state))
        qcall = request.call(f"{kind.name}/query", args)
        gcall: Call | None = None
        if fetch:
            gcall = request.call(
                f"{kind.name}/get",
                {"accountId": session.account_id, "ids": qcall.ref("/ids")},
            )
        response = yield from send(state, request)
        try:
            qres = response.result(qcall)
        except JMAPMethodError as exc:
            better = None if learned or dialect is None else _learn_filter(exc, dialect, cond)
            if better is None:
                raise
            state.dialect = better
            learned = True
            continue
        url = response.url
        page_ids = str_list(qres, "ids", url=url)
        qs = qres.get("queryState")
        query_state = qs if isinstance(qs, str) else None
        answered_position = qres.get("position")
        total = qres.get("total")
        total = total if isinstance(total, int) else None
        # Cyrus 3.10 honours position but always answers 0, so the answer alone proves
        # nothing: position was ignored only if the page repeats ids we already have (3.6).
        repeated = bool(page_ids) and page_ids[0] in seen
        if position and answered_position != position and (repeated or not page_ids):
            # The server ignored position (Cyrus 3.6): ask for everything at once instead.
            if dialect is not None:
                state.dialect = dialect.learn(query_position_works=False)
            return (yield from _query_all_at_once(state, kind, args, total, fetch, on_page))
        ids.extend(page_ids)
        seen.update(page_ids)
        if gcall is not None:
            gres = response.result(gcall)
            got = [kind.normalise(o) for o in obj_list(gres, "list", url=url)]
            objects.extend(got)
            if on_page is not None:
                on_page(got)
        more = (len(ids) < total if total is not None else len(page_ids) >= page) and bool(page_ids)
        if not more:
            return objects, ids, query_state
        if dialect is not None and not dialect.query_position_works:
            return (yield from _query_all_at_once(state, kind, args, total, fetch, on_page))
        position = len(ids)


def _once_each(on_page: OnPage) -> OnPage:
    """``on_page`` that never sees an id twice."""
    handed: set[Any] = set()

    def hand_out(page: list[dict[str, Any]]) -> None:
        fresh = [o for o in page if o.get("id") not in handed]
        handed.update(o.get("id") for o in fresh)
        if fresh:
            on_page(fresh)

    return hand_out


def _query_all_at_once(
    state: ClientState,
    kind: Kind,
    args: dict[str, Any],
    total: int | None,
    fetch: bool,
    on_page: OnPage | None,
) -> Flow[tuple[list[dict[str, Any]], list[str], str | None]]:
    args = {k: v for k, v in args.items() if k not in ("position", "limit")}
    if total is not None:
        args["limit"] = max(total, 1)
    request = Request(kind.using(state))
    call = request.call(f"{kind.name}/query", args)
    response = yield from send(state, request)
    result = response.result(call)
    ids = str_list(result, "ids", url=response.url)
    if total is not None and len(ids) < total:
        raise RemoteProtocolError(
            response.url, f"{kind.name}/query returned {len(ids)} of {total} ids and cannot page"
        )
    qs = result.get("queryState")
    objects: list[dict[str, Any]] = []
    if fetch and ids:
        got = yield from get_objects(state, kind, ids, on_page=on_page)
        objects = got.objects
    return objects, ids, qs if isinstance(qs, str) else None


def _get_missing(
    state: ClientState,
    kind: Kind,
    objects: list[dict[str, Any]],
    ids: list[str],
    on_page: OnPage | None,
) -> Flow[None]:
    """Add to ``objects`` those of ``ids`` a query's /get by reference did not return."""
    if len(objects) < len(ids):
        seen = {o["id"] for o in objects}
        missing = [i for i in ids if i not in seen]
        more = yield from get_objects(state, kind, missing, on_page=on_page)
        objects.extend(more.objects)


def fetch_all_events(
    state: ClientState, calendar_id: str | None = None, on_page: OnPage | None = None
) -> Flow[tuple[list[dict[str, Any]], str]]:
    """Every event (optionally of one calendar) and the CalendarEvent state they reflect.

    The state is read before listing: changes that race the listing show up again in the next
    change feed instead of being lost. ``on_page``: see :func:`query`.
    """
    before = yield from get_state(state, EVENT)
    objects, ids, _ = yield from query_events(
        state, calendar_id=calendar_id, fetch=True, on_page=on_page
    )
    yield from _get_missing(state, EVENT, objects, ids, on_page)
    return objects, before


def all_event_ids(
    state: ClientState, calendar_id: str | None = None
) -> Flow[tuple[list[str], str]]:
    before = yield from get_state(state, EVENT)
    _, ids, _ = yield from query_events(state, calendar_id=calendar_id, fetch=False)
    return ids, before


def fetch_all_tasks(
    state: ClientState, task_list_id: str | None = None, on_page: OnPage | None = None
) -> Flow[tuple[list[dict[str, Any]], str]]:
    """Every task (optionally of one list) and the Task state read before listing."""
    before = yield from get_state(state, TASK)

    def make_filter(dialect: Dialect | None) -> dict[str, Any]:
        return {"inTaskLists": [task_list_id]} if task_list_id else {}

    objects, ids, _ = yield from query(state, TASK, make_filter, fetch=True, on_page=on_page)
    yield from _get_missing(state, TASK, objects, ids, on_page)
    return objects, before


# --------------------------------------------------------------------------- pull
#
# One request asks for everything that changed: per type a /changes call and the changed
# objects by result reference (RFC 8620 §3.7). A reference's path is one JSON Pointer ("*" maps
# over an array but cannot join two), so the created and the updated ids are fetched by two /get
# calls: [X/changes, X/get #ids=/created, X/get #ids=/updated]. The three must share a request;
# requests are filled with such groups up to maxCallsInRequest. maxChanges = maxObjectsInGet keeps
# every referenced /get within the server's limit; hasMoreChanges pages follow in further
# requests. A /get the server still refuses as too large is redone by explicit ids in chunks.


@dataclass
class _Track:
    """The progress of one type through a pull."""

    kind: Kind
    collection: bool
    since: str | None
    original: str | None = None
    listing: bool = False  # list in full (collections only)
    listed: list[dict[str, Any]] | None = None
    done: bool = False
    full_needed: bool = False  # items: cannotCalculateChanges or no state
    new_state: str | None = None
    status: dict[str, str] = field(default_factory=dict)
    order: list[str] = field(default_factory=list)
    objects: dict[str, dict[str, Any]] = field(default_factory=dict)
    fetch: list[str] = field(default_factory=list)  # ids to get by explicit id

    def restart(self) -> None:
        self.status.clear()
        self.order.clear()
        self.objects.clear()
        self.fetch.clear()

    def change_set(self) -> ChangeSet:
        assert self.original is not None
        assert self.new_state is not None
        return _change_set(self.status, self.order, self.original, self.new_state)


#: a group of calls that must share a request: (number of calls, adds them and returns the
#: function that reads their answers)
_Segment = tuple[int, Callable[[Request], Callable[[Response], None]]]


def _keep_objects(track: _Track, result: dict[str, Any], url: str | None) -> None:
    for obj in obj_list(result, "list", url=url):
        oid = obj.get("id")
        if not isinstance(oid, str):
            raise RemoteProtocolError(url, f"{track.kind.name} without id")
        track.objects[oid] = track.kind.normalise(obj)


def _listing_segment(track: _Track, account: str) -> _Segment:
    def add(request: Request) -> Callable[[Response], None]:
        call = request.call(f"{track.kind.name}/get", {"accountId": account, "ids": None})

        def read(response: Response) -> None:
            result = response.result(call)
            url = response.url
            track.listed = [track.kind.normalise(o) for o in obj_list(result, "list", url=url)]
            for obj in track.listed:
                if not isinstance(obj.get("id"), str):
                    raise RemoteProtocolError(url, f"{track.kind.name} without id")
            track.new_state = string(result, "state", url=url)
            track.listing = False
            track.done = True

        return read

    return 1, add


def _changes_segment(
    state: ClientState, track: _Track, account: str, page: int, by_ref: bool
) -> _Segment:
    name = track.kind.name
    since = track.since
    assert since is not None

    def add(request: Request) -> Callable[[Response], None]:
        changes_call = request.call(
            f"{name}/changes", {"accountId": account, "sinceState": since, "maxChanges": page}
        )
        get_calls: list[Call] = []
        if by_ref:
            for path in ("/created", "/updated"):
                args = {"accountId": account, "ids": changes_call.ref(path)}
                get_calls.append(request.call(f"{name}/get", args))

        def read(response: Response) -> None:
            url = response.url
            try:
                result = response.result(changes_call)
            except JMAPMethodError as exc:
                # The referencing /get calls failed with it (invalidResultReference): ignored.
                if exc.error_type == "cannotCalculateChanges":
                    track.restart()
                    if track.collection:
                        track.listing = True
                    else:
                        track.done = track.full_needed = True
                    return
                if exc.error_type == "unknownMethod" and track.collection:
                    state.no_changes.add(name)
                    track.restart()
                    track.listing = True
                    return
                raise
            created = str_list(result, "created", url=url, optional=True)
            updated = str_list(result, "updated", url=url, optional=True)
            for what, ids in (
                ("created", created),
                ("updated", updated),
                ("destroyed", str_list(result, "destroyed", url=url, optional=True)),
            ):
                for oid in ids:
                    _merge_change(track.status, track.order, oid, what)
            new_state = string(result, "newState", url=url)
            if result.get("hasMoreChanges") is True:
                if new_state == since:
                    raise RemoteProtocolError(
                        url, f"{name}/changes: hasMoreChanges without progress"
                    )
                track.since = new_state
            else:
                track.done = True
            track.new_state = new_state
            if not by_ref:
                track.fetch.extend(created + updated)
                return
            for call, ids in zip(get_calls, (created, updated), strict=True):
                try:
                    got = response.result(call)
                except JMAPMethodError as exc:
                    if exc.error_type != "requestTooLarge":
                        raise
                    track.fetch.extend(ids)
                    continue
                _keep_objects(track, got, url)

        return read

    return (3 if by_ref else 1), add


def _fetch_segments(track: _Track, account: str, size: int) -> list[_Segment]:
    changed = ("created", "updated")
    wanted = [i for i in dict.fromkeys(track.fetch) if track.status.get(i) in changed]
    track.fetch.clear()
    segments: list[_Segment] = []
    for chunk in _chunks(wanted, size):

        def add(request: Request, chunk: list[str] = chunk) -> Callable[[Response], None]:
            call = request.call(f"{track.kind.name}/get", {"accountId": account, "ids": chunk})

            def read(response: Response) -> None:
                _keep_objects(track, response.result(call), response.url)

            return read

        segments.append((1, add))
    return segments


def _kind_pull(collections: _Track, items: _Track) -> KindPull:
    listed = collections.listed
    collection_changes = None if listed is not None else collections.change_set()
    collection_objects: list[dict[str, Any]] = []
    if collection_changes is not None:
        changed = [*collection_changes.created, *collection_changes.updated]
        collection_objects = [collections.objects[i] for i in changed if i in collections.objects]
    assert collections.new_state is not None
    item_changes = None if items.full_needed else items.change_set()
    item_objects: list[dict[str, Any]] = []
    if item_changes is not None:
        changed = [*item_changes.created, *item_changes.updated]
        item_objects = [items.objects[i] for i in changed if i in items.objects]
    return KindPull(
        collection_type=collections.kind.name,
        item_type=items.kind.name,
        collections=listed,
        collection_changes=collection_changes,
        collection_objects=collection_objects,
        collection_state=collections.new_state,
        item_changes=item_changes,
        item_objects=item_objects,
        item_state=None if item_changes is None else item_changes.new_state,
        full_items_needed=items.full_needed,
    )


def pull(
    state: ClientState,
    *,
    calendar_state: str | None,
    event_state: str | None,
    task_list_state: str | None = None,
    task_state: str | None = None,
    tasks: bool = True,
    max_changes: int | None = None,
) -> Flow[Pull]:
    """Everything that changed since the stored states, in one request when nothing pages.

    Per type pair (Calendar + CalendarEvent; TaskList + Task when ``tasks`` and the session
    offers JMAP Tasks): ``/changes`` from the stored state with the created and updated objects
    by result reference. A collection type without a stored state — or whose ``/changes`` the
    server cannot calculate or does not know — is listed in full instead; an item type without
    a stored state, or on ``cannotCalculateChanges``, is reported as needing a full listing
    (``full_items_needed``) and not listed. Other method errors raise. ``max_changes`` caps the
    ids per page below ``maxObjectsInGet``. See :class:`~jmapsyncd.protocol.values.KindPull`.
    """
    session, dialect = yield from ensure_dialect(state)
    with_tasks = tasks and session.has(TASKS)
    using = [CORE, dialect.calendars_capability] + ([TASKS] if with_tasks else [])
    pairs = [
        (_Track(CALENDAR, True, calendar_state), _Track(EVENT, False, event_state)),
    ]
    if with_tasks:
        pairs.append((_Track(TASK_LIST, True, task_list_state), _Track(TASK, False, task_state)))
    tracks = [t for pair in pairs for t in pair]
    for track in tracks:
        track.original = track.since
        if track.since is None and not track.collection:
            track.done = track.full_needed = True
        elif track.collection and (track.since is None or track.kind.name in state.no_changes):
            track.listing = True
    for _ in range(100_000):
        current = state.session or session
        limits = current.limits
        account = current.account_id
        page = limits.max_objects_in_get
        if max_changes:
            page = min(page, max_changes)
        by_ref = limits.max_calls_in_request >= 3
        segments: list[_Segment] = []
        for track in tracks:
            if track.listing:
                segments.append(_listing_segment(track, account))
            elif not track.done:
                segments.append(_changes_segment(state, track, account, page, by_ref))
            if track.fetch:
                segments.extend(_fetch_segments(track, account, limits.max_objects_in_get))
        if not segments:
            break
        groups: list[list[_Segment]] = [[]]
        for segment in segments:
            if groups[-1] and sum(n for n, _ in groups[-1]) + segment[0] > (
                limits.max_calls_in_request
            ):
                groups.append([])
            groups[-1].append(segment)
        for group in groups:
            request = Request(using)
            readers = [add(request) for _, add in group]
            response = yield from send(state, request)
            for read in readers:
                read(response)
    else:
        raise RemoteProtocolError(None, "pull never finished")
    events = _kind_pull(*pairs[0])
    return Pull(events=events, tasks=_kind_pull(*pairs[1]) if with_tasks else None)
