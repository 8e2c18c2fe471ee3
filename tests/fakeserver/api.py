"""The JMAP API endpoint: request envelope, result references and the methods.

RFC 8620 §3.3-§3.7 (request/response envelope, request-level errors, method errors, result
references, creation ids), §5.1-§5.5 (``/get``, ``/changes``, ``/set``, ``/query``) for Calendar,
CalendarEvent (draft-ietf-jmap-calendars), TaskList and Task (draft-ietf-jmap-tasks), with the
per-dialect deviations documented in ``stalwart-jmap.md`` and ``cyrus-jmap.md``.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any

from tests.fakeserver import objects, recurrence, timeutil
from tests.fakeserver.encoding import decode_id, decode_stalwart_state
from tests.fakeserver.objects import SetErr
from tests.fakeserver.patch import PatchError, apply_patch
from tests.fakeserver.session import CORE, TASKS, calendars_capability, known_capabilities
from tests.fakeserver.store import CannotCalculateChanges, InvalidState, Obj, Store

PROBLEM = "urn:ietf:params:jmap:error:"
CANNOT_CALCULATE = "The server cannot calculate the changes between the old and new states."


class RequestProblem(Exception):
    """A request-level error (RFC 8620 §3.6.1), answered as application/problem+json."""

    def __init__(self, status: int, type_: str, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.status = status
        self.type = type_ if ":" in type_ else PROBLEM + type_
        self.detail = detail
        self.extra = extra

    def to_json(self) -> Obj:
        return {"type": self.type, "status": self.status, "detail": self.detail, **self.extra}


class MethodError(Exception):
    """A method-level error (RFC 8620 §3.6.2)."""

    def __init__(self, type_: str, description: str | None = None, **extra: Any) -> None:
        super().__init__(description or type_)
        self.type = type_
        self.description = description
        self.extra = extra

    def to_json(self) -> Obj:
        out: Obj = {"type": self.type}
        if self.description is not None:
            out["description"] = self.description
        out.update(self.extra)
        return out


class Core:
    """Everything the methods need: dialect, limits, users' stores and switches for tests."""

    def __init__(self, dialect: str, tasks: bool, limits: dict[str, Any]) -> None:
        self.dialect = dialect
        self.tasks = tasks
        self.limits = limits
        self.lock = threading.RLock()
        self.stores: dict[str, Store] = {}
        #: True: the next ``*/changes`` fails once; a type name: the next one of that type
        self.force_cannot_calculate: bool | str = False
        # Stalwart indexes text in a queued task: with this set, text filters see a write only
        # from the next API request on.
        self.lazy_text_index = False
        self.changed = threading.Condition(self.lock)
        self.change_counter = 0
        # (counter, account id, {type: new state}) of recent writes, for EventSource listeners.
        self.recent_changes: list[tuple[int, str, dict[str, str]]] = []

    def notify(self, store: Store, types: set[str]) -> None:
        with self.changed:
            self.change_counter += 1
            states = {t: store.state(t) for t in types}
            self.recent_changes.append((self.change_counter, store.account_id, states))
            del self.recent_changes[:-1000]
            self.changed.notify_all()

    def changes_since(self, seen: int) -> dict[str, dict[str, str]]:
        """The latest state per account and type among writes after ``seen``."""
        with self.changed:
            merged: dict[str, dict[str, str]] = {}
            for counter, account, states in self.recent_changes:
                if counter > seen:
                    merged.setdefault(account, {}).update(states)
            return merged

    def method_capability(self, name: str) -> str | None:
        kind = name.split("/", 1)[0]
        if name == "Core/echo":
            return CORE
        if name not in METHODS:
            return None
        if name.endswith("/queryChanges") and self.dialect != "stalwart":
            return None  # Cyrus has no queryChanges (it answers canCalculateChanges false)
        if kind in ("Calendar", "CalendarEvent"):
            return calendars_capability(self.dialect)
        if kind in ("TaskList", "Task"):
            return TASKS if self.tasks else None
        return None


class Call:
    """One method call's context: the caller's store and the request's creation ids."""

    def __init__(
        self,
        core: Core,
        store: Store,
        created_ids: dict[str, str],
        where: tuple[int, int] = (1, 1),
    ) -> None:
        self.core = core
        self.store = store
        self.dialect = core.dialect
        self.created_ids = created_ids
        self.where = where  # (line, column) just past this call's arguments in the body

    def resolve(self, ref: str) -> str | None:
        if ref.startswith("#"):
            return self.created_ids.get(ref[1:])
        return ref


# ------------------------------------------------------------------------------ the envelope


def handle(core: Core, username: str, body: bytes, content_type: str | None) -> Obj:
    """Process one API request body for ``username``; raise :class:`RequestProblem` for 4xx."""
    media = (content_type or "").split(";", 1)[0].strip().lower()
    if media != "application/json":
        if core.dialect == "cyrus36":
            raise RequestProblem(415, "notJSON", "Unsupported Media Type")
        raise RequestProblem(
            400,
            "notJSON",
            "Failed to parse JSON: The Content-Type header must be application/json.",
        )
    max_size = core.limits.get("maxSizeRequest")
    if isinstance(max_size, int) and len(body) > max_size:
        raise RequestProblem(400, "limit", "Request too large", limit="maxSizeRequest")
    try:
        request = json.loads(body)
    except (ValueError, UnicodeDecodeError) as err:
        raise RequestProblem(400, "notJSON", f"Failed to parse JSON: {err}") from None
    if not isinstance(request, dict):
        raise RequestProblem(400, "notRequest", body.decode(errors="replace"))
    using = request.get("using")
    calls = request.get("methodCalls")
    if not isinstance(using, list) or not all(isinstance(u, str) for u in using):
        raise RequestProblem(400, "notRequest", "Invalid or missing using")
    if not isinstance(calls, list):
        raise RequestProblem(400, "notRequest", "Invalid or missing methodCalls")
    known = known_capabilities(core.dialect, core.tasks)
    unknown = [u for u in using if u not in known]
    if unknown:
        if core.dialect == "stalwart":
            raise RequestProblem(400, "notRequest", body.decode(errors="replace"))
        raise RequestProblem(400, "unknownCapability", f"Unknown capability {unknown[0]}")
    max_calls = core.limits.get("maxCallsInRequest")
    if isinstance(max_calls, int) and len(calls) > max_calls:
        raise RequestProblem(400, "limit", "Too many calls in request", limit="maxCallsInRequest")
    for call in calls:
        if (
            not isinstance(call, list)
            or len(call) != 3
            or not isinstance(call[0], str)
            or not isinstance(call[1], dict)
            or not isinstance(call[2], str)
        ):
            raise RequestProblem(400, "notRequest", "Invalid method call")
    given_ids = request.get("createdIds")
    created_ids = dict(given_ids) if isinstance(given_ids, dict) else {}
    text = body.decode(errors="replace")
    where = _argument_ends(text, len(calls))
    if core.dialect == "stalwart":
        _stalwart_state_misparse(calls, text)
    with core.lock:
        store = core.stores[username]
        store.ensure_defaults(with_tasks=core.tasks)
        if core.lazy_text_index:
            store.index_text()
        responses: list[list[Any]] = []
        for index, (name, args, tag) in enumerate(calls):
            try:
                result = _dispatch(
                    core, Call(core, store, created_ids, where[index]), name, args, responses, using
                )
                responses.append([name, result, tag])
            except MethodError as err:
                responses.append(["error", err.to_json(), tag])
            except RequestProblem:
                raise
            except Exception as err:  # a bug in the fake must not look like a hang
                failure = MethodError("serverFail", f"{type(err).__name__}: {err}")
                responses.append(["error", failure.to_json(), tag])
    response: Obj = {"methodResponses": responses, "sessionState": _session_state(core)}
    if isinstance(given_ids, dict):
        response["createdIds"] = created_ids
    return response


def _session_state(core: Core) -> str:
    return "3e25b2a0" if core.dialect == "stalwart" else "0"


def _stalwart_state_misparse(calls: list[Any], text: str) -> None:
    """Stalwart's parser fails the whole request on a bad state that is not the last argument."""
    for _name, args, _tag in calls:
        keys = list(args)
        for key in ("sinceState", "ifInState"):
            value = args.get(key)
            if isinstance(value, str) and decode_stalwart_state(value) is None and keys[-1] != key:
                raise RequestProblem(400, "notRequest", text)


def _argument_ends(text: str, count: int) -> list[tuple[int, int]]:
    """(line, column) of the end of each call's arguments object, for serde-like messages."""
    fallback = [(1, 1)] * count
    decoder = json.JSONDecoder()

    def skip(pos: int) -> int:
        while pos < len(text) and text[pos] in " \t\r\n":
            pos += 1
        return pos

    try:
        pos = skip(0) + 1  # past "{"
        while True:
            pos = skip(pos)
            key, pos = decoder.raw_decode(text, pos)
            pos = skip(skip(pos) + 1)  # past ":"
            if key != "methodCalls":
                _value, pos = decoder.raw_decode(text, pos)
                pos = skip(pos) + 1  # past ","
                continue
            ends: list[tuple[int, int]] = []
            pos += 1  # past "["
            for _ in range(count):
                pos = skip(skip(pos) + 1)  # past "[" of the call
                _name, pos = decoder.raw_decode(text, pos)
                pos = skip(skip(pos) + 1)  # past ","
                _args, pos = decoder.raw_decode(text, pos)
                line = text.count("\n", 0, pos) + 1
                ends.append((line, pos - (text.rfind("\n", 0, pos) + 1)))
                pos = skip(pos) + 1  # past ","
                _tag, pos = decoder.raw_decode(text, skip(pos))
                pos = skip(skip(pos) + 1) + 1  # past "]" and ","
            return ends
    except (ValueError, IndexError):
        return fallback


def _dispatch(
    core: Core,
    call: Call,
    name: str,
    args: Obj,
    responses: list[list[Any]],
    using: list[str],
) -> Obj:
    capability = core.method_capability(name)
    if capability is None:
        raise MethodError("unknownMethod", name)
    if capability not in using:
        raise MethodError(
            "unknownMethod",
            f'Method {name} requires capability {capability} which is not present in the "using" '
            "property.",
        )
    args = _resolve_references(core, args, responses)
    if name == "Core/echo":
        return args
    call.store = _account(core, call.store, args)
    handler = METHODS[name]
    type_name = name.split("/", 1)[0]
    return handler(call, type_name, args)


def _account(core: Core, store: Store, args: Obj) -> Store:
    account_id = args.get("accountId")
    if account_id is None:
        raise MethodError("invalidArguments", 'The "accountId" property is required.')
    if not isinstance(account_id, str):
        raise MethodError("invalidArguments", "accountId must be a string")
    if account_id == store.account_id:
        return store
    if core.dialect == "stalwart" and decode_id(account_id) is not None:
        raise MethodError("forbidden", f"You do not have access to account {account_id}")
    raise MethodError("accountNotFound")


def _resolve_references(core: Core, args: Obj, responses: list[list[Any]]) -> Obj:
    """Replace ``#name`` arguments by the value the referenced result yields (RFC 8620 §3.7)."""
    out: Obj = {}
    for key, value in args.items():
        if not key.startswith("#"):
            out[key] = value
            continue
        plain = key[1:]
        if plain in args:
            raise MethodError("invalidArguments", f"Both {plain} and {key} given")
        if not isinstance(value, dict) or not all(
            isinstance(value.get(k), str) for k in ("resultOf", "name", "path")
        ):
            raise MethodError("invalidResultReference", f"Invalid result reference {key}")
        missing = MethodError(
            "invalidResultReference",
            f"Result reference to {value['resultOf']}#{value['name']} not found.",
        )
        for name, result, tag in responses:
            if tag == value["resultOf"] and name == value["name"]:
                try:
                    out[plain] = _evaluate_pointer(result, value["path"])
                except (KeyError, IndexError, TypeError, ValueError):
                    raise missing from None
                break
        else:
            raise missing
    return out


def _evaluate_pointer(value: Any, path: str) -> Any:
    if path == "":
        return value
    if not path.startswith("/"):
        raise ValueError(path)
    parts = [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]
    return _walk(value, parts)


def _walk(value: Any, parts: list[str]) -> Any:
    if not parts:
        return value
    head, rest = parts[0], parts[1:]
    if head == "*" and isinstance(value, dict):
        # RFC 8620 defines "*" on arrays; on a map (e.g. "/created/*/id") it walks the values.
        value = list(value.values())
    if isinstance(value, list):
        if head == "*":
            items = [_walk(item, rest) for item in value]
            flat: list[Any] = []
            for item in items:
                if isinstance(item, list):
                    flat.extend(item)
                else:
                    flat.append(item)
            return flat
        return _walk(value[int(head)], rest)
    if isinstance(value, dict):
        return _walk(value[head], rest)
    raise TypeError(head)


# ------------------------------------------------------------------------------ /get


def _get(call: Call, type_name: str, args: Obj) -> Obj:
    store = call.store
    collection = store.collection(type_name)
    limit = call.core.limits.get("maxObjectsInGet", 500)
    ids = args.get("ids")
    if ids is None:
        wanted = list(collection)[:limit]
    elif not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        raise MethodError("invalidArguments", "ids must be a list of ids or null")
    elif len(ids) > limit:
        raise MethodError("requestTooLarge", f"At most {limit} ids per request")
    else:
        wanted = ids
    properties = args.get("properties")
    if properties is not None and (
        not isinstance(properties, list) or not all(isinstance(p, str) for p in properties)
    ):
        raise MethodError("invalidArguments", "properties must be a list of names or null")
    found: list[Obj] = []
    not_found: list[str] = []
    for ref in wanted:
        real = call.resolve(ref)
        if type_name == "CalendarEvent" and real is not None and real not in collection:
            parsed = recurrence.parse_instance_id(call.dialect, real, collection)
            if parsed is not None:
                base_id, moment = parsed
                occurrence = recurrence.instance(collection[base_id], moment, real)
                found.append(_render(call, type_name, occurrence, properties))
                continue
        if real is None or real not in collection:
            if call.dialect == "stalwart" and decode_id(ref) is None and not ref.startswith("#"):
                continue  # Stalwart drops ids it cannot parse, silently.
            not_found.append(ref)
            continue
        found.append(_render(call, type_name, collection[real], properties))
    return {
        "accountId": store.account_id,
        "state": store.state(type_name),
        "list": found,
        "notFound": not_found,
    }


def _render(call: Call, type_name: str, obj: Obj, properties: list[str] | None) -> Obj:
    username = call.store.username
    renderer: Callable[[str, Obj, str], Obj] = {
        "Calendar": objects.render_calendar,
        "CalendarEvent": objects.render_event,
        "TaskList": objects.render_task_list,
        "Task": objects.render_task,
    }[type_name]
    full = renderer(call.dialect, obj, username)
    if properties is None:
        return full
    out: Obj = {"id": full["id"]}
    for name in properties:
        if name in full:
            out[name] = full[name]
        elif type_name in ("CalendarEvent", "Task"):
            known, value = objects.computed_event_property(name, obj)
            if known:
                out[name] = value
    return out


# ------------------------------------------------------------------------------ /changes


def _changes(call: Call, type_name: str, args: Obj) -> Obj:
    since = args.get("sinceState")
    if not isinstance(since, str):
        raise MethodError("invalidArguments", "sinceState is required")
    max_changes = args.get("maxChanges")
    if max_changes is not None and (
        not isinstance(max_changes, int) or isinstance(max_changes, bool) or max_changes < 0
    ):
        raise MethodError("invalidArguments", "maxChanges must be a positive integer")
    if max_changes == 0 and call.dialect != "stalwart":
        raise MethodError("invalidArguments", "maxChanges must be a positive integer")
    forced = call.core.force_cannot_calculate
    if forced is True or forced == type_name:
        call.core.force_cannot_calculate = False
        raise MethodError("cannotCalculateChanges", CANNOT_CALCULATE)
    cap = call.core.limits.get("maxChanges")
    effective = max_changes or None
    if isinstance(cap, int) and cap > 0:
        effective = min(effective or cap, cap)
    try:
        page = call.store.changes(type_name, since, effective)
    except InvalidState:
        line, column = call.where
        raise MethodError(
            "invalidArguments", f"invalid JMAP State at line {line} column {column}"
        ) from None
    except CannotCalculateChanges:
        raise MethodError("cannotCalculateChanges", CANNOT_CALCULATE) from None
    out: Obj = {
        "accountId": call.store.account_id,
        "oldState": page.old_state,
        "newState": page.new_state,
        "hasMoreChanges": page.has_more,
        "created": page.created,
        "updated": page.updated,
        "destroyed": page.destroyed,
    }
    if type_name == "Calendar" and call.dialect != "stalwart":
        out["updatedProperties"] = None
    return out


# ------------------------------------------------------------------------------ /query


EVENT_FILTERS = {
    "stalwart": {"inCalendar", "after", "before", "text", "title", "description", "location",
                 "owner", "attendee", "uid"},
    "ietf": {"inCalendars", "after", "before", "text", "title", "description", "location",
             "owner", "attendee", "uid"},
    "cyrus36": {"inCalendars", "after", "before", "text", "uid"},
}  # fmt: skip
TASK_FILTERS = {"inTaskLists", "inTaskList", "after", "before", "text", "title", "description",
                "uid", "progress"}  # fmt: skip
EVENT_SORTS = {"stalwart": {"start", "uid", "recurrenceId"}}
TASK_SORTS = {"start", "due", "uid", "title"}


def _parse_bound(call: Call, type_name: str, value: Any, tz_name: Any) -> datetime:
    if not isinstance(value, str):
        raise MethodError("invalidArguments", f"Invalid datetime: {value}")
    if type_name == "Task" and value.endswith(("Z", "z")):
        # No server here implements Tasks; accept both forms: a trailing Z means UTC.
        tz_name = "Etc/UTC"
    if call.dialect == "stalwart" or type_name == "Task":
        local = timeutil.parse_lenient(value)
        if local is None:
            raise MethodError(
                "invalidArguments",
                f"Invalid datetime: {value} at line 1 column 1 at line 1 column 1",
            )
        return timeutil.to_utc(local, tz_name or "Etc/UTC")
    if call.dialect == "cyrus36":
        if not value.endswith("Z") or timeutil.parse_local(value) is None:
            raise MethodError("invalidArguments", f"Invalid datetime {value}: needs a UTC date")
        return timeutil.to_utc(timeutil.parse_local(value) or datetime.min, "Etc/UTC")
    local = timeutil.parse_local(value)
    if value.endswith(("Z", "z")) or local is None:
        raise MethodError("invalidArguments", f"Invalid LocalDateTime {value}")
    return timeutil.to_utc(local, tz_name or "Etc/UTC")


def _compile_filter(call: Call, type_name: str, node: Any, tz_name: Any) -> Callable[[Obj], bool]:
    """Validate a filter tree once and return a predicate (RFC 8620 §5.5 FilterOperator)."""
    if not isinstance(node, dict):
        raise MethodError("invalidArguments", "filter must be an object")
    if "operator" in node:
        operator = node["operator"]
        conditions = node.get("conditions")
        if operator not in ("AND", "OR", "NOT") or not isinstance(conditions, list):
            raise MethodError("unsupportedFilter", f"Invalid filter operator {operator}")
        parts = [_compile_filter(call, type_name, c, tz_name) for c in conditions]
        if operator == "AND":
            return lambda obj: all(p(obj) for p in parts)
        if operator == "OR":
            return lambda obj: any(p(obj) for p in parts)
        return lambda obj: not any(p(obj) for p in parts)
    if type_name == "CalendarEvent":
        allowed = EVENT_FILTERS[call.dialect]
    elif type_name == "Task":
        allowed = TASK_FILTERS
    else:
        allowed = set()
    tests: list[Callable[[Obj], bool]] = []
    for key, value in node.items():
        if key not in allowed:
            raise MethodError("unsupportedFilter", key)
        tests.append(_condition(call, type_name, key, value, tz_name))
    return lambda obj: all(t(obj) for t in tests)


def _words(value: Any) -> str:
    """All text inside a JSON value, lower-cased, for substring matching."""
    if isinstance(value, str):
        return value.lower()
    if isinstance(value, dict):
        return " ".join(_words(v) for v in value.values())
    if isinstance(value, list):
        return " ".join(_words(v) for v in value)
    return ""


def _text_matcher(
    call: Call, type_name: str, fields: Callable[[Obj], str], query: str
) -> Callable[[Obj], bool]:
    """Every word of ``query`` must occur; with a lazy index, in the last indexed version."""
    tokens = query.lower().split()
    lazy = call.core.lazy_text_index
    store = call.store

    def match(obj: Obj) -> bool:
        seen = store.indexed_version(type_name, obj["id"]) if lazy else obj
        return seen is not None and all(t in fields(seen) for t in tokens)

    return match


def _participants(obj: Obj, role: str | None) -> str:
    people = obj.get("participants")
    if not isinstance(people, dict):
        return ""
    chosen = [
        p
        for p in people.values()
        if isinstance(p, dict)
        and (role is None or (isinstance(p.get("roles"), dict) and role in p["roles"]))
    ]
    return _words([{k: p.get(k) for k in ("name", "email", "sendTo")} for p in chosen])


def _condition(
    call: Call, type_name: str, key: str, value: Any, tz_name: Any
) -> Callable[[Obj], bool]:
    if key in ("after", "before"):
        bound = _parse_bound(call, type_name, value, tz_name)
        if type_name == "Task":
            span = timeutil.task_span
        else:
            with_alerts = call.dialect == "stalwart"

            def span(obj: Obj) -> tuple[datetime, datetime]:
                return timeutil.event_span(obj, with_alerts=with_alerts)

        if key == "after":
            return lambda obj: span(obj)[1] > bound
        return lambda obj: span(obj)[0] < bound
    if key == "inCalendar":
        return lambda obj: value in (obj.get("calendarIds") or {})
    if key == "inCalendars":
        if not isinstance(value, list):
            raise MethodError("invalidArguments", "inCalendars must be a list")
        return lambda obj: any(c in (obj.get("calendarIds") or {}) for c in value)
    if key == "inTaskList":
        return lambda obj: obj.get("taskListId") == value
    if key == "inTaskLists":
        if not isinstance(value, list):
            raise MethodError("invalidArguments", "inTaskLists must be a list")
        return lambda obj: obj.get("taskListId") in value
    if key == "uid":
        return lambda obj: obj.get("uid") == value
    if key == "progress":
        return lambda obj: obj.get("progress", "needs-action") == value
    if not isinstance(value, str):
        raise MethodError("invalidArguments", f"{key} must be a string")
    field_text: dict[str, Callable[[Obj], str]] = {
        "title": lambda o: _words(o.get("title")),
        "description": lambda o: _words(o.get("description")),
        "location": lambda o: _words(o.get("locations")),
        "owner": lambda o: _participants(o, "owner") + " " + _words(o.get("replyTo")),
        "attendee": lambda o: _participants(o, None),
    }
    if key == "text":
        every = field_text.values()
        return _text_matcher(call, type_name, lambda o: " ".join(f(o) for f in every), value)
    return _text_matcher(call, type_name, field_text[key], value)


def _expanded(call: Call, collection: dict[str, Obj]) -> list[Obj]:
    """Every event, recurring ones replaced by their instances (with synthetic ids)."""
    out: list[Obj] = []
    for event in collection.values():
        if not recurrence.rules_of(event):
            out.append(event)
            continue
        for index, moment in enumerate(recurrence.occurrences(event)):
            synthetic = recurrence.instance_id(call.dialect, event, index, moment)
            out.append(recurrence.instance(event, moment, synthetic))
    return out


def _sort_key(type_name: str, prop: str) -> Callable[[Obj], Any]:
    if prop in ("start", "recurrenceId"):
        if type_name == "Task":
            return lambda o: timeutil.task_span(o)[0]
        return lambda o: timeutil.event_span(o)[0]
    if prop == "due":
        return lambda o: timeutil.task_span(o)[1]
    return lambda o: str(o.get(prop) or "")


def _query(call: Call, type_name: str, args: Obj) -> Obj:
    store = call.store
    collection = store.collection(type_name)
    tz_name = args.get("timeZone")
    filter_node = args.get("filter")
    if args.get("expandRecurrences") and not (
        isinstance(filter_node, dict) and "after" in filter_node and "before" in filter_node
    ):
        raise MethodError("invalidArguments", "expandRecurrences needs after and before")
    predicate = (
        _compile_filter(call, type_name, filter_node, tz_name)
        if filter_node is not None
        else (lambda obj: True)
    )
    if args.get("expandRecurrences") and type_name == "CalendarEvent":
        candidates = _expanded(call, collection)
    else:
        candidates = list(collection.values())
    matched = [obj for obj in candidates if predicate(obj)]
    sort = args.get("sort")
    if sort is not None:
        if not isinstance(sort, list):
            raise MethodError("invalidArguments", "sort must be a list")
        if type_name == "CalendarEvent":
            allowed = EVENT_SORTS.get(call.dialect, {"start", "uid"})
        else:
            allowed = TASK_SORTS
        if type_name in ("Calendar", "TaskList"):
            allowed = {"name", "sortOrder"}
        for comparator in reversed(sort):
            prop = comparator.get("property") if isinstance(comparator, dict) else None
            if not isinstance(prop, str) or prop not in allowed:
                raise MethodError("unsupportedSort", str(prop))
            descending = comparator.get("isAscending", True) is False
            matched.sort(key=_sort_key(type_name, prop), reverse=descending)
    ids = [obj["id"] for obj in matched]
    total = len(ids)
    position = args.get("position", 0) or 0
    limit = args.get("limit")
    if not isinstance(position, int) or (
        limit is not None and (not isinstance(limit, int) or limit < 0)
    ):
        raise MethodError("invalidArguments", "position and limit must be integers")
    anchor = args.get("anchor")
    if anchor is not None:
        if anchor not in ids:
            raise MethodError("anchorNotFound")
        offset = args.get("anchorOffset", 0) or 0
        position = max(0, ids.index(anchor) + offset)
    elif position < 0:
        position = max(0, total + position)
    if call.dialect == "cyrus36":
        position = 0  # Cyrus 3.6 ignores position and answers from the start.
    cap = call.core.limits.get("maxQueryResults", 5000)
    effective = cap if limit is None else min(limit, cap)
    page = ids[position : position + effective]
    if call.dialect == "stalwart" and position >= total:
        position = 0  # Stalwart answers position 0 (and no ids) past the end.
    out: Obj = {
        "accountId": store.account_id,
        "queryState": store.state(type_name),
        "canCalculateChanges": call.dialect == "stalwart",
        "position": position,
        "ids": page,
    }
    if args.get("calculateTotal"):
        out["total"] = total
    if (call.dialect == "stalwart" and total - position > effective) or (
        limit is not None and limit > cap
    ):
        out["limit"] = effective
    return out


# ------------------------------------------------------------------------------ /set


def _set(call: Call, type_name: str, args: Obj) -> Obj:
    store = call.store
    dialect = call.dialect
    collection = store.collection(type_name)
    if_in_state = args.get("ifInState")
    if isinstance(if_in_state, str) and dialect == "stalwart":
        decoded = decode_stalwart_state(if_in_state)
        if decoded is None:
            raise MethodError("invalidArguments", "invalid JMAP State")
        if_in_state = decoded.encode()  # Stalwart compares parsed states, so junk is ignored
    if if_in_state is not None and if_in_state != store.state(type_name):
        raise MethodError("stateMismatch")
    if dialect == "cyrus36" and "onDestroyRemoveEvents" in args:
        # Cyrus 3.6 does not know the argument (it always removes a calendar's events).
        raise MethodError("invalidArguments", arguments=["onDestroyRemoveEvents"])
    create = args.get("create") or {}
    update = args.get("update") or {}
    destroy = args.get("destroy") or []
    if (
        not isinstance(create, dict)
        or not isinstance(update, dict)
        or not isinstance(destroy, list)
    ):
        raise MethodError("invalidArguments", "create, update and destroy have the wrong type")
    limit = call.core.limits.get("maxObjectsInSet", 500)
    if len(create) + len(update) + len(destroy) > limit:
        raise MethodError("requestTooLarge", f"At most {limit} objects per /set")
    old_state = store.state(type_name)
    created: Obj = {}
    updated: Obj = {}
    destroyed: list[str] = []
    not_created: Obj = {}
    not_updated: Obj = {}
    not_destroyed: Obj = {}
    to_destroy = {call.resolve(d) for d in destroy if isinstance(d, str)}
    with store.batch():
        uids_before: set[str] = {
            o["uid"] for o in collection.values() if isinstance(o.get("uid"), str)
        }
        for creation_id, data in create.items():
            try:
                if not isinstance(data, dict):
                    raise SetErr("invalidProperties", "Object expected.")
                new_id, entry = _create_one(call, type_name, data, uids_before)
                created[creation_id] = entry
                call.created_ids[creation_id] = new_id
            except SetErr as err:
                not_created[creation_id] = err.to_json()
        for ref, patch in update.items():
            real = call.resolve(ref)
            try:
                if real is None or real not in collection:
                    raise SetErr("notFound")
                if real in to_destroy and dialect == "stalwart":
                    raise SetErr("willDestroy", "ID will be destroyed.")
                if not isinstance(patch, dict):
                    raise SetErr("invalidPatch", "Patch must be an object.")
                _update_one(call, type_name, real, patch, uids_before)
                updated[real] = None
            except SetErr as err:
                not_updated[ref] = err.to_json()
        for ref in destroy:
            real = call.resolve(ref) if isinstance(ref, str) else None
            try:
                if real is None or real not in collection:
                    raise SetErr("notFound")
                _destroy_one(call, type_name, real, args)
                destroyed.append(real)
            except SetErr as err:
                not_destroyed[str(ref)] = err.to_json()
        default = args.get("onSuccessSetIsDefault")
        if type_name == "Calendar" and isinstance(default, str):
            _set_default_calendar(call, default)
    out: Obj = {
        "accountId": store.account_id,
        "oldState": old_state,
        "newState": store.state(type_name),
    }
    sections: dict[str, Any] = {
        "created": created,
        "updated": updated,
        "destroyed": destroyed,
        "notCreated": not_created,
        "notUpdated": not_updated,
        "notDestroyed": not_destroyed,
    }
    for key, value in sections.items():
        if value:
            out[key] = value
        elif dialect != "stalwart":
            out[key] = None
    return out


def _create_one(call: Call, type_name: str, data: Obj, uids_before: set[str]) -> tuple[str, Obj]:
    store = call.store
    dialect = call.dialect
    if type_name == "CalendarEvent":
        prepared = objects.prepare_event(
            dialect, store, data, call.resolve, existing=None, uids_before=uids_before
        )
    elif type_name == "Task":
        prepared = objects.prepare_task(store, data, call.resolve, None)
    else:
        prepared = objects.prepare_container(dialect, type_name, data, None)
    uid = prepared.get("uid") if isinstance(prepared.get("uid"), str) else None
    new_id = store.new_id(type_name, uid)
    store.collection(type_name)[new_id] = {"id": new_id, **prepared}
    store.record(type_name, new_id, "created")
    entry: Obj = {"id": new_id}
    if dialect != "stalwart" and type_name in ("CalendarEvent", "Task"):
        entry.update({k: prepared[k] for k in ("uid", "created", "updated") if k in prepared})
        if dialect == "cyrus36" and type_name == "CalendarEvent":
            rendered = objects.render_event(dialect, store.events[new_id], store.username)
            entry.update({k: rendered[k] for k in ("x-href", "blobId")})
    return new_id, entry


def _update_one(call: Call, type_name: str, real: str, patch: Obj, uids_before: set[str]) -> None:
    store = call.store
    dialect = call.dialect
    existing = store.collection(type_name)[real]
    if type_name == "CalendarEvent":
        objects.check_event_patch(dialect, existing, patch)
        patched = objects.apply_event_patch(dialect, existing, patch)
        prepared = objects.prepare_event(
            dialect, store, patched, call.resolve, existing=existing, uids_before=uids_before
        )
    else:
        try:
            patched = apply_patch(existing, patch)
        except PatchError as err:
            raise SetErr("invalidPatch", f"cannot apply {err.pointer}") from None
        if patched.get("id") != real:
            raise objects.invalid("This property is immutable.", "id")
        if type_name == "Task":
            prepared = objects.prepare_task(store, patched, call.resolve, existing)
        else:
            prepared = objects.prepare_container(dialect, type_name, patched, existing)
    prepared.pop("id", None)
    store.replace(type_name, {"id": real, **prepared})


def _set_default_calendar(call: Call, ref: str) -> None:
    """``onSuccessSetIsDefault``: exactly one calendar has ``isDefault`` afterwards."""
    store = call.store
    chosen = call.resolve(ref)
    if chosen not in store.calendars:
        return
    for cal_id, cal in list(store.calendars.items()):
        wanted = cal_id == chosen
        if bool(cal.get("isDefault")) != wanted:
            store.replace("Calendar", {**cal, "isDefault": wanted})


def _destroy_one(call: Call, type_name: str, real: str, args: Obj) -> None:
    store = call.store
    if type_name == "Calendar":
        removes = args.get("onDestroyRemoveEvents") or call.dialect == "cyrus36"
        if store.events_in(real) and not removes:
            raise SetErr("calendarHasEvent", "Calendar is not empty.")
        store.destroy_calendar(real, remove_events=True)
    elif type_name == "TaskList":
        if store.tasks_in(real) and not args.get("onDestroyRemoveTasks"):
            raise SetErr("taskListHasTask", "Task list is not empty.")
        store.destroy_task_list(real, remove_tasks=True)
    else:
        store.destroy(type_name, real)


def _container_query(call: Call, type_name: str, args: Obj) -> Obj:
    result = _query(call, type_name, {k: v for k, v in args.items() if k != "filter"})
    if call.dialect == "stalwart":
        result["queryState"] = "n"  # as recorded: Stalwart keeps no query state for calendars
    return result


Handler = Callable[[Call, str, Obj], Obj]
METHODS: dict[str, Handler] = {
    "Calendar/get": _get,
    "Calendar/changes": _changes,
    "Calendar/set": _set,
    "CalendarEvent/get": _get,
    "CalendarEvent/changes": _changes,
    "CalendarEvent/query": _query,
    "CalendarEvent/set": _set,
    "TaskList/get": _get,
    "TaskList/changes": _changes,
    "TaskList/set": _set,
    "Task/get": _get,
    "Task/changes": _changes,
    "Task/query": _query,
    "Task/set": _set,
}
METHODS["Calendar/query"] = _container_query


def _query_changes(call: Call, type_name: str, args: Obj) -> Obj:
    """RFC 8620 §5.6, the simple way: every changed id is removed, and re-added where it now is."""
    since = args.get("sinceQueryState")
    if not isinstance(since, str):
        raise MethodError("invalidArguments", "sinceQueryState is required")
    try:
        page = call.store.changes(type_name, since, None)
    except (InvalidState, CannotCalculateChanges):
        raise MethodError("cannotCalculateChanges", CANNOT_CALCULATE) from None
    query_args: Obj = {k: args[k] for k in ("filter", "sort", "timeZone") if k in args}
    current = _query(call, type_name, {**query_args, "calculateTotal": True})
    touched = set(page.created) | set(page.updated)
    removed = page.updated + page.destroyed
    max_changes = args.get("maxChanges")
    added = [{"id": i, "index": n} for n, i in enumerate(current["ids"]) if i in touched]
    if isinstance(max_changes, int) and len(removed) + len(added) > max_changes > 0:
        raise MethodError("tooManyChanges")
    out: Obj = {
        "accountId": call.store.account_id,
        "oldQueryState": since,
        "newQueryState": current["queryState"],
        "removed": removed,
        "added": added,
    }
    if args.get("calculateTotal"):
        out["total"] = current["total"]
    return out


METHODS["CalendarEvent/queryChanges"] = _query_changes
METHODS["Task/queryChanges"] = _query_changes
