"""Server dialects of JMAP Calendars, and the translation of events to and from them.

A :class:`Dialect` is a small frozen value: what :func:`dialect_from_session` can read off the
session resource, refined by what the server's answers teach (``invalidProperties`` naming
``recurrenceRules``; ``unsupportedFilter`` for ``inCalendars``; ``version`` refused). It is never
chosen by a server name.

Shapes handled (JMAP Calendars draft, RFC 8984 JSCalendar):

* Cyrus 3.6: ``https://cyrusimap.org/ns/jmap/calendars``, ``@type: jsevent``, ``calendarId``
  string, singular ``recurrenceRule``, query ``after``/``before`` in UTC with ``Z``, query
  ``position`` > 0 ignored.
* IETF (Cyrus 3.10): ``Event``, ``calendarIds`` map, ``recurrenceRules`` list, no ``Z``,
  ``version`` refused.
* Stalwart 0.16: IETF capability with singular ``recurrenceRule``, ``inCalendar`` single-id filter,
  immutable ``id``/``isOrigin``/``baseEventId``/``method`` on update.

:func:`event_to_wire` adapts an IETF-form event (as the converter emits it) to a dialect;
:func:`event_from_wire` normalises whatever the server sent back to the IETF form, so callers
never see dialects.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from jmapsyncd.convert._alt import html_description_as_link, html_description_from_link
from jmapsyncd.convert._reencode import (
    RANGE_KEY,
    expand_future_ranges,
    fold_recurrence_rules,
    replace_custom_zones,
)
from jmapsyncd.protocol.session import CALENDARS, CYRUS_CALENDARS, TASKS, Session

#: properties the server owns; never sent in a create or update
SERVER_SET = frozenset(
    {
        "id",
        "isOrigin",
        "baseEventId",
        "method",
        "blobId",
        "debugBlobId",
        "x-href",
        "utcStart",
        "utcEnd",
        "isDraft",
    }
)
#: Cyrus's storage details: not JSCalendar, dropped from events we hand out
STORAGE_DETAILS = frozenset({"blobId", "debugBlobId", "x-href"})

#: properties an IETF-form event may carry; a full replacement nulls the ones it lacks
REPLACEABLE = (
    "title",
    "description",
    "descriptionContentType",
    "locations",
    "virtualLocations",
    "links",
    "keywords",
    "categories",
    "color",
    "recurrenceRules",
    "excludedRecurrenceRules",
    "recurrenceOverrides",
    "alerts",
    "participants",
    "replyTo",
    "priority",
    "freeBusyStatus",
    "privacy",
    "status",
    "showWithoutTime",
    "timeZone",
    "duration",
    "relatedTo",
    "localizations",
    "locale",
)


@dataclass(frozen=True)
class Dialect:
    """How one server wants calendar events and filters shaped."""

    #: capability URI that goes into ``using`` for calendar methods
    calendars_capability: str = CALENDARS
    #: ``@type`` to send for events (``jsevent`` on Cyrus 3.6)
    event_type: str = "Event"
    #: ``calendarIds`` map (True) or Cyrus's ``calendarId`` string (False)
    calendar_ids_map: bool = True
    #: ``recurrenceRules`` list (True) or a singular ``recurrenceRule`` (False)
    recurrence_rules_list: bool = True
    #: query ``after``/``before`` carry a trailing ``Z``
    utc_suffix_in_query: bool = False
    #: calendar filter is ``inCalendars`` list (True) or ``inCalendar`` single id (False)
    in_calendars_filter: bool = True
    #: the server honours query ``position`` > 0
    query_position_works: bool = True
    #: the server accepts the ``version`` property
    accepts_version: bool = True
    #: optional /set arguments the server refused (``sendSchedulingMessages`` …); not sent again
    rejected_args: frozenset[str] = frozenset()
    #: the server stores ``descriptionContentType: text/html``; when not, an HTML description
    #: goes as the plain one beside it plus an alternate ``text/html`` link
    html_description: bool = True
    #: capability URI for JMAP Tasks, or None when not offered
    tasks_capability: str | None = None
    #: vendor properties (``domain:name``, RFC 8984 §3.3) the server refused; not sent again.
    #: Only vendor properties are dropped this way, for every event. A standard property the
    #: server refuses is left out of that one object only, after the dialect's other encodings
    #: were tried, and reported (``SetResult.dropped`` and a warning); see ``docs/client.md``.
    rejected_properties: frozenset[str] = frozenset()
    #: the server stores custom time zones (``timeZones``, RFC 8984 §4.7.2); when not, a custom
    #: zone is replaced by the IANA zone with the same offsets over the event, or by UTC
    custom_time_zones: bool = True

    def learn(self, **changes: Any) -> Dialect:
        return replace(self, **changes)


def dialect_from_session(session: Session) -> Dialect | None:
    """The dialect a session announces, or None when it offers no calendars at all."""
    tasks = TASKS if session.has(TASKS) else None
    if session.has(CALENDARS):
        return Dialect(tasks_capability=tasks)
    if session.has(CYRUS_CALENDARS):
        return Dialect(
            calendars_capability=CYRUS_CALENDARS,
            event_type="jsevent",
            calendar_ids_map=False,
            recurrence_rules_list=False,
            utc_suffix_in_query=True,
            query_position_works=False,
            tasks_capability=tasks,
        )
    return None


def _fix_alerts(alerts: Any) -> Any:
    """Give alert triggers the explicit ``@type`` servers require (RFC 8984 §4.5.2)."""
    if not isinstance(alerts, dict):
        return alerts
    for alert in alerts.values():
        if not isinstance(alert, dict):
            continue
        alert.setdefault("@type", "Alert")
        trigger = alert.get("trigger")
        if isinstance(trigger, dict) and "@type" not in trigger:
            if "offset" in trigger:
                trigger["@type"] = "OffsetTrigger"
            elif "when" in trigger:
                trigger["@type"] = "AbsoluteTrigger"
    return alerts


def _organizer_reply_to(event: dict[str, Any]) -> None:
    """Derive ``replyTo`` from the owner participant: servers need it to accept attendees."""
    participants = event.get("participants")
    if not isinstance(participants, dict) or event.get("replyTo"):
        return
    for participant in participants.values():
        if not isinstance(participant, dict):
            continue
        roles = participant.get("roles")
        if isinstance(roles, dict) and roles.get("owner"):
            send_to = participant.get("sendTo")
            if isinstance(send_to, dict) and send_to:
                event["replyTo"] = dict(send_to)
            elif isinstance(participant.get("email"), str):
                event["replyTo"] = {"imip": "mailto:" + participant["email"]}
            return


def event_to_wire(
    event: dict[str, Any],
    dialect: Dialect,
    *,
    calendar_id: str | None = None,
    patch: bool = False,
    lost: list[str] | None = None,
) -> dict[str, Any]:
    """Adapt an IETF-form event (or a patch of top-level keys) to ``dialect``.

    ``calendar_id`` overrides the event's calendar membership. In a patch, keys set to None
    are kept (they clear the property) unless the dialect does not know the property at all.

    What the dialect cannot hold is re-encoded with the same occurrences where that is exact
    (``jmapsyncd.convert._reencode``): several rules and excluded rules on a singular-rule
    server, THISANDFUTURE overrides of a bounded series, custom time zones on a server that
    refuses them. The JSON pointers (into ``event``) of what the wire form leaves out all the
    same are appended to ``lost``; nothing is left out unreported. (A custom zone that cannot
    be replaced is not left out: it is sent, and the server's refusal of it stands.)
    """
    left_out: list[str] = [] if lost is None else lost
    out = event
    if not dialect.recurrence_rules_list:
        # A singular-rule server holds one rule and no excluded rules: fold the others into
        # overrides where that gives the same occurrences. First, so that a bounded series
        # with an excluded rule is one whose ranges can be expanded below.
        out, folded_away = fold_recurrence_rules(out, patch=patch)
        left_out.extend(folded_away)
    out, unexpanded = expand_future_ranges(out, patch=patch)
    if unexpanded:
        # no JSCalendar reader applies the range key (Cyrus refuses it): it goes, reported
        out = _without_range_keys(out)
        left_out.extend(unexpanded)
    if not dialect.custom_time_zones and out.get("timeZones"):
        out, replaced = replace_custom_zones(out)
        left_out.extend(replaced)
    if not dialect.html_description:  # before vendor data goes: the plain text is kept there
        out = html_description_as_link(out, patch=patch)
    for key in SERVER_SET:
        out.pop(key, None)
    if not dialect.accepts_version:
        out.pop("version", None)
    for key in [k for k in out if k.partition("/")[0] in dialect.rejected_properties]:
        del out[key]
    if calendar_id is not None:
        out.pop("calendarId", None)
        out["calendarIds"] = {calendar_id: True}
    if "@type" in out or not patch:
        out["@type"] = dialect.event_type
    # calendar membership
    if not dialect.calendar_ids_map and "calendarIds" in out:
        ids = out.pop("calendarIds")
        chosen = [k for k, v in ids.items() if v] if isinstance(ids, dict) else []
        if chosen:
            out["calendarId"] = chosen[0]
    elif dialect.calendar_ids_map and "calendarId" in out:
        cid = out.pop("calendarId")
        if isinstance(cid, str):
            out["calendarIds"] = {cid: True}
    # recurrence rules
    if dialect.recurrence_rules_list:
        if "recurrenceRule" in out:
            rule = out.pop("recurrenceRule")
            out["recurrenceRules"] = [rule] if rule else None
    else:
        if "recurrenceRules" in out:
            rules = out.pop("recurrenceRules")
            out["recurrenceRule"] = rules[0] if isinstance(rules, list) and rules else None
        if out.pop("excludedRecurrenceRules", None):  # folding leaves none; never silently
            left_out.append("excludedRecurrenceRules")
    if patch:
        left_out.extend(_adapt_pointers(out, dialect))
    else:
        for key in (*_RULE_KEYS, "recurrenceOverrides", "timeZones", "locations"):
            if key in out and out[key] is None:
                del out[key]
    if "alerts" in out:
        out["alerts"] = _fix_alerts(out["alerts"])
    if not patch or "participants" in out:
        _organizer_reply_to(out)
    return out


_RULE_KEYS = ("recurrenceRule", "recurrenceRules", "excludedRecurrenceRules")


def _without_range_keys(event: dict[str, Any]) -> dict[str, Any]:
    out = dict(event)
    overrides = out.get("recurrenceOverrides")
    if isinstance(overrides, dict):
        out["recurrenceOverrides"] = {
            k: {pk: pv for pk, pv in p.items() if pk != RANGE_KEY} if isinstance(p, dict) else p
            for k, p in overrides.items()
        }
    return out


def _adapt_pointers(patch: dict[str, Any], dialect: Dialect) -> list[str]:
    """Rewrite JSON-pointer patch keys (RFC 8620 §5.3) that name dialect-specific properties.

    ``calendarIds/<id>: true`` pointers become one whole ``calendarIds`` map of the calendars set
    to true: Cyrus 3.10 refuses pointers into calendarIds, and its events live in one calendar.
    Returns the pointers left out because the dialect cannot hold what they name (a second
    rule or an excluded rule on a singular-rule server).
    """
    gone: list[str] = []
    targets = [k.partition("/")[2] for k, v in patch.items() if k.startswith("calendarIds/") and v]
    if targets and dialect.calendar_ids_map:
        for key in [k for k in patch if k.startswith("calendarIds/")]:
            del patch[key]
        patch["calendarIds"] = dict.fromkeys(targets, True)
    for key in [k for k in patch if "/" in k]:
        head, _, rest = key.partition("/")
        value = patch[key]
        if head == "recurrenceRules" and not dialect.recurrence_rules_list:
            del patch[key]
            index, _, inner = rest.partition("/")
            if index == "0":  # a singular-rule server holds the first rule only
                patch["recurrenceRule/" + inner if inner else "recurrenceRule"] = value
            else:
                gone.append(key)
        elif head == "recurrenceRule" and dialect.recurrence_rules_list:
            del patch[key]
            patch["recurrenceRules/0/" + rest] = value
        elif head == "excludedRecurrenceRules" and not dialect.recurrence_rules_list:
            del patch[key]
            gone.append(key)
        elif head == "calendarIds" and not dialect.calendar_ids_map:
            del patch[key]
            if value:  # Cyrus 3.6 moves an event by naming its one calendar
                patch["calendarId"] = rest
    return gone


def replacement_patch(event: dict[str, Any]) -> dict[str, Any]:
    """A PatchObject that makes the stored event equal ``event`` (RFC 8620 §5.3).

    Top-level keys replace; properties the new event lacks are set to null so they are removed.
    """
    out = {k: v for k, v in event.items() if k not in SERVER_SET}
    for key in REPLACEABLE:
        out.setdefault(key, None)
    return out


def event_from_wire(event: dict[str, Any]) -> dict[str, Any]:
    """Normalise a server's event to the IETF form: ``Event``, ``calendarIds``, ``recurrenceRules``.

    Null-valued properties (Cyrus lists every property) are dropped: null means "default";
    so are Cyrus's storage details (``x-href``, ``blobId``).
    """
    out = {k: v for k, v in event.items() if v is not None and k not in STORAGE_DETAILS}
    if out.get("@type", "jsevent") in ("jsevent", "Event"):
        out["@type"] = "Event"
    if "calendarId" in out:
        cid = out.pop("calendarId")
        if isinstance(cid, str):
            out["calendarIds"] = {cid: True}
    if "recurrenceRule" in out:
        rule = out.pop("recurrenceRule")
        if isinstance(rule, dict):
            out["recurrenceRules"] = [rule]
    if isinstance(out.get("locations"), dict):
        out["locations"] = _without_empty_value_marker(out["locations"])
    return html_description_from_link(out)


#: what libical puts in a property that has no value; Cyrus 3.6 hands it out as the name of a
#: location that was sent without one (an end time zone: ``relativeTo: end``)
LIBICAL_NO_VALUE = "ERROR: No Value"


def _without_empty_value_marker(locations: dict[str, Any]) -> dict[str, Any]:
    return {
        lid: {k: v for k, v in loc.items() if k != "name" or v != LIBICAL_NO_VALUE}
        if isinstance(loc, dict)
        else loc
        for lid, loc in locations.items()
    }


def task_from_wire(task: dict[str, Any]) -> dict[str, Any]:
    """Normalise a Task: drop nulls, singular ``recurrenceRule`` → list."""
    out = {k: v for k, v in task.items() if v is not None}
    out.setdefault("@type", "Task")
    if "recurrenceRule" in out:
        rule = out.pop("recurrenceRule")
        if isinstance(rule, dict):
            out["recurrenceRules"] = [rule]
    return out


def query_datetime(value: str | datetime | None, dialect: Dialect) -> str | None:
    """Format a query ``after``/``before`` bound the way the dialect wants it.

    Aware datetimes are converted to UTC; naive values and ``YYYY-MM-DDTHH:MM:SS`` strings are
    taken as UTC. Cyrus 3.6 wants a trailing ``Z``; the IETF servers want none.
    """
    if value is None:
        return None
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        text = value.replace(microsecond=0).isoformat()
    else:
        text = value.strip()
        if text.endswith(("Z", "z")):
            text = text[:-1]
        elif len(text) > 19 and text[19] in "+-":
            parsed = datetime.fromisoformat(text).astimezone(UTC).replace(tzinfo=None)
            text = parsed.isoformat()
        if len(text) == 10:
            text += "T00:00:00"
        elif len(text) == 16:
            text += ":00"
    return text + "Z" if dialect.utc_suffix_in_query else text


def calendar_filter(calendar_id: str, dialect: Dialect) -> dict[str, Any]:
    if dialect.in_calendars_filter:
        return {"inCalendars": [calendar_id]}
    return {"inCalendar": calendar_id}


def calendar_from_wire(data: dict[str, Any]) -> dict[str, Any]:
    """Normalise a Calendar: Cyrus 3.6's flat ``may*`` rights become ``myRights``."""
    out = dict(data)
    if not isinstance(out.get("myRights"), dict):
        rights = {k: v for k, v in data.items() if k.startswith("may") and isinstance(v, bool)}
        out["myRights"] = rights
    return out


# --------------------------------------------------------------------------- refused paths

#: top-level properties that carry an event's time or identity: dropping one of them (or a
#: whole entry of one) would change what the rest means, so a refusal of it is final
NEVER_DROPPED = frozenset(
    {
        "@type",
        "uid",
        "start",
        "timeZone",
        "timeZones",
        "duration",
        "showWithoutTime",
        "recurrenceRules",
        "recurrenceRule",
        "excludedRecurrenceRules",
        "recurrenceOverrides",
        "calendarIds",
        "calendarId",
    }
)


def _unescape(segment: str) -> str:
    """A JSON pointer segment (RFC 6901): ``~1`` is ``/``, ``~0`` is ``~``."""
    return segment.replace("~1", "/").replace("~0", "~")


def _locate(obj: Any, segments: list[str]) -> list[str] | None:
    """The keys leading to ``segments`` inside ``obj``, or None when nothing is there.

    A key may itself be a pointer (a PatchObject's ``participants/p1/name``, RFC 8620 §5.3),
    so the longest run of segments that names a key is taken first.
    """
    if not segments:
        return []
    if not isinstance(obj, dict):
        return None
    for n in range(len(segments), 0, -1):
        key = "/".join(segments[:n])
        if key in obj:
            rest = _locate(obj[key], segments[n:])
            if rest is not None:
                return [key, *rest]
    return None


def _value(obj: Any, keys: list[str]) -> Any:
    for key in keys:
        obj = obj[key]
    return obj


def _is_vendor(key: str) -> bool:
    return ":" in key.partition("/")[0]


def narrowest_drops(obj: dict[str, Any], refused: Iterable[str]) -> list[str]:
    """The narrowest paths of ``obj`` (a wire event or patch) to leave out for ``refused``.

    ``refused`` are the server's ``invalidProperties`` (RFC 8620 §5.3), JSON pointers such as
    ``participants/p1/sendTo``. A path that names a value drops that value, or only the vendor
    members of it when it holds any (Cyrus names a whole override for one vendor key in it). A
    path that names nothing names a missing member: its nearest existing container is dropped.
    Cyrus 3.6 may put an unrelated property in front of a path; a tail that names something is
    taken then. Paths under :data:`NEVER_DROPPED` are never given (at most two levels deep):
    the refusal of those is final. The paths are given as ``/``-joined keys.
    """
    drops: list[list[str]] = []
    for path in refused:
        segments = [_unescape(s) for s in path.split("/")] if path else []
        if not segments:
            continue
        found = _locate(obj, segments)
        for i in range(1, len(segments)):
            if found is not None:
                break
            found = _locate(obj, segments[i:])
        missing = found is None
        for i in range(len(segments) - 1, 0, -1):
            if found is not None:
                break
            found = _locate(obj, segments[:i])
        if not found:
            continue
        value = _value(obj, found)
        if not missing and isinstance(value, dict) and any(_is_vendor(k) for k in value):
            drops.extend([*found, k] for k in value if _is_vendor(k))
            continue
        head = found[0].partition("/")[0]
        if head in NEVER_DROPPED and len(found) + found[0].count("/") <= 2:
            continue
        drops.append(found)
    out: list[str] = []
    for keys in drops:
        text = "/".join(keys)
        if text not in out:
            out.append(text)
    return out


def drop_paths(obj: dict[str, Any], paths: Iterable[str]) -> list[str]:
    """Remove each of ``paths`` (as :func:`narrowest_drops` gives them) from ``obj`` in place.

    Returns the paths that were there and are now gone.
    """
    gone: list[str] = []
    for path in paths:
        keys = _locate(obj, path.split("/"))
        if not keys:
            continue
        parent = _value(obj, keys[:-1])
        if isinstance(parent, dict) and keys[-1] in parent:
            del parent[keys[-1]]
            gone.append(path)
    return gone
