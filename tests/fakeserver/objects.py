"""How each dialect renders and validates Calendar, CalendarEvent, TaskList and Task objects.

Rendering follows the facts in ``stalwart-jmap.md`` and ``cyrus-jmap.md`` (``/get`` shapes);
validation implements the ``/set`` rules of RFC 8620 §5.3 plus each dialect's own rejections
(draft-ietf-jmap-calendars CalendarEvent/set, draft-ietf-jmap-tasks Task/set).  Problems raise
:class:`SetErr`, which the method layer turns into a SetError in ``notCreated``/``notUpdated``.
"""

from __future__ import annotations

import copy
import hashlib
import uuid
from collections.abc import Callable
from datetime import UTC
from typing import Any

from tests.fakeserver import timeutil
from tests.fakeserver.patch import PatchError, apply_patch, top_level_keys
from tests.fakeserver.store import Obj, Store

Resolver = Callable[[str], str | None]

JSCAL_COMMON = frozenset(
    {
        "@type", "uid", "relatedTo", "prodId", "created", "updated", "sequence", "method",
        "title", "description", "descriptionContentType", "showWithoutTime", "locations",
        "virtualLocations", "links", "locale", "keywords", "categories", "color",
        "recurrenceId", "recurrenceIdTimeZone", "recurrenceOverrides", "excluded", "priority",
        "freeBusyStatus", "privacy", "replyTo", "sentBy", "participants", "requestStatus",
        "useDefaultAlerts", "alerts", "localizations", "timeZone", "timeZones", "start",
        "duration", "status", "id", "isDraft", "isOrigin", "baseEventId", "utcStart", "utcEnd",
        "mayInviteSelf", "mayInviteOthers", "hideAttendees",
    }
)  # fmt: skip
STALWART_EVENT_KEYS = JSCAL_COMMON | {"calendarIds", "recurrenceRule", "version"}
IETF_EVENT_KEYS = JSCAL_COMMON | {"calendarIds", "recurrenceRules", "excludedRecurrenceRules"}
CYRUS36_EVENT_KEYS = JSCAL_COMMON | {
    "calendarId", "recurrenceRule", "excludedRecurrenceRules", "x-href", "blobId",
}  # fmt: skip
CYRUS36_NULL_PROPS = (
    "relatedTo", "prodId", "created", "updated", "sequence", "method", "title", "description",
    "descriptionContentType", "locations", "virtualLocations", "links", "locale", "keywords",
    "categories", "color", "recurrenceRule", "recurrenceOverrides", "excluded", "priority",
    "freeBusyStatus", "privacy", "replyTo", "participants", "useDefaultAlerts", "alerts",
    "localizations", "start", "timeZone", "duration", "showWithoutTime", "status",
)  # fmt: skip
BOOLEAN_KEYS = ("isDraft", "mayInviteSelf", "mayInviteOthers", "hideAttendees", "useDefaultAlerts")
# Computed on /get, never stored.
COMPUTED = ("utcStart", "utcEnd", "isOrigin", "baseEventId", "x-href", "blobId", "version")

CALENDAR_KEYS = frozenset(
    {
        "id", "name", "description", "color", "sortOrder", "isSubscribed", "isVisible",
        "isDefault", "includeInAvailability", "defaultAlertsWithTime",
        "defaultAlertsWithoutTime", "timeZone", "shareWith", "myRights",
    }
)  # fmt: skip
CALENDAR_READ_ONLY = frozenset({"id", "myRights", "isDefault", "x-href"})
TASK_LIST_KEYS = frozenset(
    {
        "id", "role", "name", "description", "color", "keywordColors", "categoryColors",
        "sortOrder", "isSubscribed", "isDefault", "timeZone", "workflowStatuses", "shareWith",
        "myRights",
    }
)  # fmt: skip


# Value types Calendar/set and TaskList/set check.
CONTAINER_TYPES: dict[str, type | tuple[type, ...]] = {
    "isSubscribed": bool,
    "isVisible": bool,
    "description": (str, type(None)),
    "timeZone": (str, type(None)),
    "includeInAvailability": str,
    "defaultAlertsWithTime": (dict, type(None)),
    "defaultAlertsWithoutTime": (dict, type(None)),
    "shareWith": (dict, type(None)),
}


class SetErr(Exception):
    """A SetError (RFC 8620 §5.3): ``type``, optional description and property names."""

    def __init__(
        self, type_: str, description: str | None = None, properties: list[str] | None = None
    ) -> None:
        super().__init__(description or type_)
        self.type = type_
        self.description = description
        self.properties = properties

    def to_json(self) -> Obj:
        out: Obj = {"type": self.type}
        if self.description is not None:
            out["description"] = self.description
        if self.properties is not None:
            out["properties"] = self.properties
        return out


def invalid(description: str | None, *properties: str) -> SetErr:
    return SetErr("invalidProperties", description, list(properties))


# --------------------------------------------------------------------------------- rendering


def user_address(username: str) -> str:
    return f"{username}@example.com"


def is_origin(event: Obj, username: str) -> bool:
    """No organizer, or the organizer is this user."""
    reply_to = event.get("replyTo")
    if not isinstance(reply_to, dict) or not reply_to:
        return True
    return any(isinstance(v, str) and f"{username}@" in v.lower() for v in reply_to.values())


def render_event(dialect: str, event: Obj, username: str) -> Obj:
    """The full object ``CalendarEvent/get`` answers when ``properties`` is null."""
    out = copy.deepcopy(event)
    out.pop("version", None)
    if dialect == "cyrus36":
        calendars = list(out.pop("calendarIds", None) or {})
        full: Obj = dict.fromkeys(CYRUS36_NULL_PROPS)
        full.update(out)
        full["@type"] = "jsevent"
        full["calendarId"] = calendars[0] if calendars else None
        digest = hashlib.sha1(repr(sorted(event.items())).encode()).hexdigest()
        full["blobId"] = "G" + digest
        full["x-href"] = (
            f"/dav/calendars/user/{username}/{full['calendarId']}/{event.get('uid')}.ics"
        )
        return full
    out.setdefault("calendarIds", {})
    out.setdefault("isDraft", False)
    out["isOrigin"] = is_origin(event, username)
    if dialect == "ietf":
        out.setdefault("@type", "Event")
        out.setdefault("sequence", 0)
    return out


def computed_event_property(name: str, event: Obj) -> tuple[bool, Any]:
    """Properties Stalwart only returns when asked for them by name."""
    if name in ("utcStart", "utcEnd"):
        start, end = timeutil.event_span({**event, "recurrenceRules": None, "recurrenceRule": None})
        if start > end:
            return True, None
        return True, timeutil.utc_string(start if name == "utcStart" else end)
    if name == "baseEventId":
        return True, None
    if name == "useDefaultAlerts":
        return True, bool(event.get("useDefaultAlerts", False))
    return False, None


def render_task(dialect: str, task: Obj, username: str) -> Obj:
    out = copy.deepcopy(task)
    out.setdefault("@type", "Task")
    out.setdefault("isDraft", False)
    out["isOrigin"] = is_origin(task, username)
    return out


ALL_RIGHTS = {
    "mayReadFreeBusy": True, "mayReadItems": True, "mayWriteAll": True, "mayWriteOwn": True,
    "mayUpdatePrivate": True, "mayRSVP": True, "mayShare": True, "mayDelete": True,
}  # fmt: skip


def render_calendar(dialect: str, cal: Obj, username: str) -> Obj:
    if dialect == "cyrus36":
        out: Obj = {
            "id": cal["id"], "name": cal.get("name"), "color": None, "sortOrder": 0,
            "isVisible": True, "isSubscribed": True, "mayReadFreeBusy": True,
            "mayReadItems": True, "mayAddItems": True, "mayModifyItems": True,
            "mayRemoveItems": True, "mayRename": True, "mayDelete": True, "mayAdmin": True,
            "shareWith": None, "x-href": f"/dav/calendars/user/{username}/{cal['id']}/",
        }  # fmt: skip
        out.update({k: v for k, v in cal.items() if k not in ("isDefault",)})
        return out
    ietf = dialect == "ietf"
    rights = dict(ALL_RIGHTS)
    if ietf:
        rights.pop("mayShare")
        rights["mayAdmin"] = True
    out = {
        "id": cal["id"], "name": cal.get("name"), "description": None, "color": None,
        "sortOrder": 0, "isSubscribed": False, "isVisible": True, "isDefault": False,
        "includeInAvailability": "all",
        "defaultAlertsWithTime": None if ietf else {},
        "defaultAlertsWithoutTime": None if ietf else {},
        "timeZone": None, "shareWith": None if ietf else {}, "myRights": rights,
    }  # fmt: skip
    out.update(copy.deepcopy(cal))
    return out


def render_task_list(dialect: str, task_list: Obj, username: str) -> Obj:
    out: Obj = {
        "id": task_list["id"], "role": None, "name": task_list.get("name"), "description": None,
        "color": None, "keywordColors": None, "categoryColors": None, "sortOrder": 0,
        "isSubscribed": True, "isDefault": False, "timeZone": None, "workflowStatuses": [
            "completed", "failed", "in-process", "needs-action", "cancelled", "pending",
        ],
        "shareWith": None,
        "myRights": {
            "mayReadItems": True, "mayWriteAll": True, "mayWriteOwn": True,
            "mayUpdatePrivate": True, "mayRSVP": True, "mayAdmin": True, "mayDelete": True,
        },
    }  # fmt: skip
    out.update(copy.deepcopy(task_list))
    return out


# --------------------------------------------------------------------------------- validation


def _check_booleans(data: Obj) -> None:
    for key in BOOLEAN_KEYS:
        if key in data and not isinstance(data[key], bool):
            raise invalid("Invalid value.", key)


def _check_local_times(data: Obj) -> None:
    for key in ("start", "due", "recurrenceId"):
        value = data.get(key)
        if value is not None and (
            not isinstance(value, str) or value.endswith("Z") or timeutil.parse_local(value) is None
        ):
            raise invalid(f"Invalid {key}.", key)


def _stalwart_calendar_ids(data: Obj, store: Store, resolve: Resolver) -> dict[str, bool]:
    ids = data.get("calendarIds")
    if ids is None:
        raise invalid("Event has to belong to at least one calendar.", "calendarIds")
    if not isinstance(ids, dict):
        raise invalid("Invalid patch operation for calendarIds.", "calendarIds")
    if not ids:
        raise invalid("Event has to belong to at least one calendar.", "calendarIds")
    resolved: dict[str, bool] = {}
    for key in ids:
        real = resolve(key)
        if real is None or real not in store.calendars:
            raise invalid(f"calendarId {key} does not exist.", "calendarIds")
        resolved[real] = True
    return resolved


def _ietf_calendar_ids(data: Obj, store: Store, resolve: Resolver) -> dict[str, bool]:
    ids = data.get("calendarIds")
    if not isinstance(ids, dict) or len(ids) != 1 or list(ids.values()) != [True]:
        raise invalid("calendarIds must name exactly one calendar", "calendarIds")
    real = resolve(next(iter(ids)))
    if real is None or real not in store.calendars:
        raise invalid("unknown calendar", "calendarIds")
    return {real: True}


def _utc_times(data: Obj) -> None:
    has_start, has_end = "utcStart" in data, "utcEnd" in data
    if has_start != has_end:
        raise invalid("Both utcStart and utcEnd must be provided.", "utcStart", "utcEnd")
    if not has_start:
        return
    start = timeutil.parse_local(data["utcStart"])
    end = timeutil.parse_local(data["utcEnd"])
    if start is None or end is None or start >= end:
        raise invalid("utcStart must be before utcEnd.", "utcStart", "utcEnd")
    tz = timeutil.zone(data.get("timeZone"))
    aware = start.replace(tzinfo=UTC)
    local = aware.astimezone(tz) if tz is not None else aware
    data["start"] = local.strftime("%Y-%m-%dT%H:%M:%S")
    seconds = int((end - start).total_seconds())
    data["duration"] = f"PT{seconds}S"


def prepare_event(
    dialect: str,
    store: Store,
    data: Obj,
    resolve: Resolver,
    *,
    existing: Obj | None,
    uids_before: set[str],
) -> Obj:
    """Validate a create (``existing`` None) or a patched update; return what to store.

    ``data`` is the wire form (Cyrus 3.6: with ``calendarId``).  The result carries ``calendarIds``.
    """
    data = copy.deepcopy(data)
    if dialect == "stalwart":
        return _prepare_stalwart(store, data, resolve, existing, uids_before)
    if dialect == "ietf":
        return _prepare_ietf(store, data, resolve, existing)
    return _prepare_cyrus36(store, data, resolve, existing)


def _finish(data: Obj, existing: Obj | None, at_type: str, *, stamp_created: bool = True) -> Obj:
    for key in COMPUTED:
        data.pop(key, None)
    data.pop("id", None)
    if not isinstance(data.get("uid"), str):
        data["uid"] = existing["uid"] if existing else str(uuid.uuid4())
    data.setdefault("@type", at_type)
    now = timeutil.now_utc()
    data["updated"] = now
    if existing is None and stamp_created:
        data.setdefault("created", now)
    return data


def _prepare_stalwart(
    store: Store, data: Obj, resolve: Resolver, existing: Obj | None, uids_before: set[str]
) -> Obj:
    for key in data:
        if key not in STALWART_EVENT_KEYS and ":" not in key:
            raise invalid("Invalid property.", key)
    _check_booleans(data)
    links = data.get("links")
    if isinstance(links, dict) and any(
        isinstance(v, dict) and "blobId" in v for v in links.values()
    ):
        raise invalid("blobIds in links is not supported.", "links")
    data["calendarIds"] = _stalwart_calendar_ids(data, store, resolve)
    _utc_times(data)
    uid = data.get("uid")
    if existing is None and isinstance(uid, str) and uid in uids_before:
        raise invalid(f"An event with UID {uid} already exists.", "uid")
    _stalwart_participants(data, store.username)
    # Stalwart stamps DTSTAMP (``updated``) on every write but adds no ``created``.
    return _finish(data, existing, "Event", stamp_created=False)


# Roles that survive Stalwart's round trip through iCalendar ROLE parameters.
STALWART_ROLES = frozenset({"owner", "chair", "optional", "informational", "contact"})


def _stalwart_participants(data: Obj, username: str) -> None:
    """Drop roles Stalwart loses and add the account as organizer when there is none."""
    people = data.get("participants")
    if not isinstance(people, dict) or not people:
        return
    has_owner = False
    for person in people.values():
        if not isinstance(person, dict) or not isinstance(person.get("roles"), dict):
            continue
        roles = {k: v for k, v in person["roles"].items() if k in STALWART_ROLES}
        if roles:
            person["roles"] = roles
        else:
            del person["roles"]
        has_owner = has_owner or "owner" in roles
    if has_owner or data.get("replyTo"):
        return
    address = f"mailto:{user_address(username)}"
    data["replyTo"] = {"imip": address}
    key = "organizer"
    while key in people:
        key += "-"
    people[key] = {
        "@type": "Participant",
        "name": username,
        "sendTo": {"imip": address},
        "roles": {"owner": True},
    }


def _prepare_ietf(store: Store, data: Obj, resolve: Resolver, existing: Obj | None) -> Obj:
    bad = [k for k in data if k not in IETF_EVENT_KEYS and ":" not in k]
    if existing is None and "id" in data:
        bad.append("id")
    if data.get("@type", "Event") != "Event":
        bad.append("@type")
    zone = data.get("timeZone")
    if zone is not None and not (isinstance(zone, str) and timeutil.is_known_zone(zone)):
        bad.append("timeZone")
    if bad:
        raise invalid(None, *bad)
    _check_booleans(data)
    _check_local_times(data)
    data["calendarIds"] = _ietf_calendar_ids(data, store, resolve)
    if existing is None:
        uid = data.get("uid")
        if isinstance(uid, str) and store.new_id("CalendarEvent", uid) in store.events:
            raise invalid("uid already exists", "uid")
    return _finish(data, existing, "Event")


def _prepare_cyrus36(store: Store, data: Obj, resolve: Resolver, existing: Obj | None) -> Obj:
    bad = [k for k in data if k not in CYRUS36_EVENT_KEYS and ":" not in k]
    if existing is None and "id" in data:
        bad.append("id")
    if data.get("@type", "jsevent") != "jsevent":
        bad.append("@type")
    cal = data.pop("calendarId", None)
    real = resolve(cal) if isinstance(cal, str) else None
    if real is None or real not in store.calendars:
        bad.append("calendarId")
    if bad:
        raise invalid(None, *bad)
    _check_booleans(data)
    _check_local_times(data)
    assert real is not None
    data["calendarIds"] = {real: True}
    if existing is None:
        uid = data.get("uid")
        if isinstance(uid, str) and uid in store.events:
            raise invalid("uid already exists", "uid")
    out = _finish(data, existing, "Event")
    out.pop("@type", None)
    return out


def event_wire_view(dialect: str, event: Obj) -> Obj:
    """The stored event as a client edits it (Cyrus 3.6: ``calendarId`` instead of the map)."""
    view = copy.deepcopy(event)
    if dialect == "cyrus36":
        view.pop("@type", None)
        calendars = list(view.pop("calendarIds", None) or {})
        view["calendarId"] = calendars[0] if calendars else None
    return view


def check_event_patch(dialect: str, event: Obj, patch: Obj) -> None:
    """Reject patches that touch immutable or unknown properties, per dialect."""
    keys = top_level_keys(patch)
    if dialect == "stalwart":
        for key in keys:
            if key not in STALWART_EVENT_KEYS and ":" not in key:
                raise invalid("Invalid property.", key)
        if "id" in patch and patch["id"] != event.get("id"):
            raise invalid("This property is immutable.", "id")
        # Compared with what is stored, not with what /get computes: isOrigin is never stored,
        # so sending back a fetched event whole fails on it.
        for key in ("isOrigin", "baseEventId", "method"):
            if key in patch and patch[key] != event.get(key):
                raise invalid("This property is immutable.", key)
        if "uid" in patch and patch["uid"] != event.get("uid"):
            raise invalid("You cannot change the UID of a calendar event.", "uid")
        return
    allowed = IETF_EVENT_KEYS if dialect == "ietf" else CYRUS36_EVENT_KEYS
    bad = [k for k in keys if k not in allowed and ":" not in k]
    bad += [k for k in ("id", "uid") if k in patch and patch[k] != event.get(k)]
    if bad:
        raise invalid(None, *bad)


def apply_event_patch(dialect: str, event: Obj, patch: Obj) -> Obj:
    try:
        patched = apply_patch(event_wire_view(dialect, event), patch)
    except PatchError as err:
        if dialect == "stalwart":
            raise invalid("Patch operation failed.", err.pointer) from None
        raise SetErr("invalidPatch", f"cannot apply {err.pointer}") from None
    for key in COMPUTED:
        patched.pop(key, None)
    return patched


def prepare_task(store: Store, data: Obj, resolve: Resolver, existing: Obj | None) -> Obj:
    """Task/set rules (draft-ietf-jmap-tasks): taskListId required and known, @type Task."""
    data = copy.deepcopy(data)
    bad = []
    if existing is None and "id" in data:
        bad.append("id")
    if existing is not None and data.get("uid", existing.get("uid")) != existing.get("uid"):
        bad.append("uid")
    if data.get("@type", "Task") != "Task":
        bad.append("@type")
    list_id = data.get("taskListId")
    real = resolve(list_id) if isinstance(list_id, str) else None
    if real is None or real not in store.task_lists:
        bad.append("taskListId")
    if bad:
        raise invalid(None, *bad)
    _check_booleans(data)
    _check_local_times(data)
    data["taskListId"] = real
    return _finish(data, existing, "Task")


def prepare_container(dialect: str, type_name: str, data: Obj, existing: Obj | None) -> Obj:
    """Calendar/set and TaskList/set: name required (1-255 bytes), known keys only."""
    keys = CALENDAR_KEYS if type_name == "Calendar" else TASK_LIST_KEYS
    stalwart = dialect == "stalwart"
    for key, value in data.items():
        if key in CALENDAR_READ_ONLY and not (existing is not None and existing.get(key) == value):
            raise invalid("Field could not be set." if stalwart else None, key)
        if key not in keys and ":" not in key:
            raise invalid("Invalid property." if stalwart else None, key)
    for key, types in CONTAINER_TYPES.items():
        if key in data and not isinstance(data[key], types):
            raise invalid("Field could not be set." if stalwart else None, key)
    name = data.get("name")
    if not isinstance(name, str) or not 1 <= len(name.encode()) <= 255:
        raise invalid("Missing name." if stalwart else None, "name")
    sort_order = data.get("sortOrder", 0)
    if isinstance(sort_order, bool) or not isinstance(sort_order, int) or sort_order < 0:
        raise invalid("Field could not be set." if stalwart else None, "sortOrder")
    color = data.get("color")
    if color is not None and (not isinstance(color, str) or len(color.encode()) >= 16):
        raise invalid("Field could not be set." if stalwart else None, "color")
    out = copy.deepcopy(data)
    out.pop("myRights", None)
    return out
