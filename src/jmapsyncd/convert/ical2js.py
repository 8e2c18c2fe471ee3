"""iCalendar → JSCalendar (RFC 5545 → RFC 8984, after draft-ietf-calext-jscalendar-icalendar).

Promises: one JSCalendar object per UID; a master and its RECURRENCE-ID instances become one
object whose ``recurrenceOverrides`` hold PatchObjects (RFC 8984 §4.3.5, §1.4.9); RDATE and
EXDATE become ``{}`` and ``{"excluded": true}`` overrides. Output is the IETF form (RFC 8984 plus
JMAP Calendars properties) without ``id``/``calendarIds``. Everything without a JSCalendar
counterpart (X- and unmapped IANA properties, unknown parameters of mapped properties, unknown
sub-components, calendar-level X- properties) is kept under the vendor property
``"jmapsyncd.org:ical"`` as jCal arrays (RFC 7265), so ``jscal_to_ical`` can write it back.
"""

from __future__ import annotations

import hashlib
import json
import re
import zoneinfo
from datetime import datetime, timedelta, tzinfo
from functools import lru_cache
from typing import Any

from jmapsyncd.convert import _tables as T
from jmapsyncd.convert._parse import Comp, Prop, parse_calendar, split_text_list, unescape_text
from jmapsyncd.convert._patch import apply, diff
from jmapsyncd.convert._rrule import parse_rrule
from jmapsyncd.convert._time import (
    custom_tzinfo,
    fmt_duration,
    iana_zone,
    local_str,
    normalize_duration,
    parse_duration,
    parse_ical_dt,
    to_zone,
    utc_str,
)
from jmapsyncd.convert._write import comp_text
from jmapsyncd.errors import ConversionError

VENDOR = "jmapsyncd.org:ical"
"""Vendor property holding unmapped iCalendar data (jCal arrays) on objects and alerts."""
JSON_PROP = "X-JMAPSYNCD-JSON"
"""iCalendar property that carries a JSCalendar property iCalendar cannot express."""

NO_STAMP = "1970-01-01T00:00:00Z"
"""DTSTAMP written when an object has neither ``updated`` nor ``created`` (RFC 5545 needs one)."""

_UTC = zoneinfo.ZoneInfo("Etc/UTC")
_ID_OK = re.compile(r"[A-Za-z0-9_-]{1,255}$")

# properties handled by the mapping; everything else goes to the vendor property
_EVENT_MAPPED = {
    "UID", "SUMMARY", "DESCRIPTION", "DTSTART", "DTEND", "DURATION", "DUE", "RRULE", "EXRULE",
    "RDATE", "EXDATE", "RECURRENCE-ID", "ORGANIZER", "ATTENDEE", "LOCATION", "GEO", "CONFERENCE",
    "CATEGORIES", "COLOR", "CLASS", "TRANSP", "STATUS", "PRIORITY", "SEQUENCE", "CREATED",
    "LAST-MODIFIED", "DTSTAMP", "URL", "ATTACH", "RELATED-TO", "COMPLETED", "PERCENT-COMPLETE",
    "ESTIMATED-DURATION", "CONTACT", "RESOURCES", "X-ALT-DESC", "STYLED-DESCRIPTION",
    JSON_PROP,
}  # fmt: skip
# mapped for one kind only: on the other kind they are kept unmapped
_TASK_ONLY = {"DUE", "ESTIMATED-DURATION", "COMPLETED", "PERCENT-COMPLETE"}
_EVENT_ONLY = {"DTEND"}
# at most once per component (RFC 5545 §3.6.1, §3.6.2): further copies are kept unmapped
_SINGLE = {
    "DTSTART", "DTEND", "DURATION", "DUE", "SUMMARY", "DESCRIPTION", "CLASS", "TRANSP", "STATUS",
    "PRIORITY", "SEQUENCE", "CREATED", "LAST-MODIFIED", "DTSTAMP", "COLOR", "GEO", "COMPLETED",
    "PERCENT-COMPLETE", "ESTIMATED-DURATION", "ORGANIZER", "UID",
}  # fmt: skip
_RECUR = {"RRULE", "EXRULE", "RDATE", "EXDATE"}
_ALARM_MAPPED = {"TRIGGER", "ACTION", "ACKNOWLEDGED", "UID", "RELATED-TO"}
_CAL_STRUCTURAL = {"VERSION", "PRODID", "METHOD"}


@lru_cache(maxsize=4096)
def _pid(address: str) -> str:
    """A stable participant id from its calendar address (ids must be URL-safe)."""
    return hashlib.sha1(address.lower().encode(), usedforsecurity=False).hexdigest()[:12]


def _jcal_params(
    params: dict[str, list[str]], skip: set[str] | frozenset[str] = frozenset()
) -> dict[str, Any]:
    return {
        k.lower(): (v[0] if len(v) == 1 else list(v)) for k, v in params.items() if k not in skip
    }


def jcal_prop(p: Prop) -> list[Any]:
    """A property as a jCal array; the value stays in iCalendar syntax (RFC 7265 §5 'unknown')."""
    return [p.name.lower(), _jcal_params(p.params), "unknown", p.value]


def jcal_comp(c: Comp) -> list[Any]:
    return [c.name.lower(), [jcal_prop(p) for p in c.props], [jcal_comp(s) for s in c.subs]]


class _Zones:
    """TZID resolution for one VCALENDAR: IANA, Windows names, or custom VTIMEZONEs."""

    def __init__(self, cal: Comp) -> None:
        self.defs: dict[str, Comp] = {}
        for sub in cal.subs:
            if sub.name == "VTIMEZONE":
                tzid = sub.get("TZID")
                if tzid is not None:
                    self.defs[tzid.value] = sub
        self.cache: dict[str, tuple[str, tzinfo] | None] = {}
        self.custom: dict[str, dict[str, Any]] = {}

    def resolve(self, tzid: str, where: str) -> tuple[str, tzinfo] | None:
        """(JSCalendar timeZone value, tzinfo) for a TZID parameter; None if unknown.

        An unknown TZID without a VTIMEZONE is read as floating time (as most readers do);
        the caller keeps the TZID parameter so the round trip restores it.
        """
        if tzid in self.cache:
            return self.cache[tzid]
        zone = iana_zone(tzid)
        res: tuple[str, tzinfo] | None = None
        if zone is not None:
            res = (zone.key, zone)
        elif tzid in self.defs:
            res = ("/" + tzid, self._custom(tzid, self.defs[tzid], where))
        self.cache[tzid] = res
        return res

    def _custom(self, tzid: str, comp: Comp, where: str) -> tzinfo:
        tz = custom_tzinfo(tzid, comp_text(comp), where)
        self.custom["/" + tzid] = _timezone_object(tzid, comp)
        return tz


def _timezone_object(tzid: str, comp: Comp) -> dict[str, Any]:
    """A custom VTIMEZONE as an RFC 8984 §4.7.2 TimeZone object."""
    obj: dict[str, Any] = {"@type": "TimeZone", "tzId": tzid}
    for p in comp.props:
        if p.name == "LAST-MODIFIED":
            dt, _, _ = parse_ical_dt(p.value, "VTIMEZONE")
            obj["updated"] = utc_str(dt)
        elif p.name == "TZURL":
            obj["url"] = p.value
    for sub in comp.subs:
        if sub.name not in ("STANDARD", "DAYLIGHT"):
            continue
        rule: dict[str, Any] = {"@type": "TimeZoneRule"}
        for p in sub.props:
            if p.name == "DTSTART":
                dt, _, _ = parse_ical_dt(p.value, "VTIMEZONE")
                rule["start"] = local_str(dt)
            elif p.name == "TZOFFSETFROM":
                rule["offsetFrom"] = p.value
            elif p.name == "TZOFFSETTO":
                rule["offsetTo"] = p.value
            elif p.name == "RRULE":
                r, until = parse_rrule(p.value, "VTIMEZONE RRULE")
                if until is not None:
                    r["until"] = local_str(until[0])
                rule.setdefault("recurrenceRules", []).append(r)
            elif p.name == "RDATE":
                for v in p.value.split(","):
                    dt, _, _ = parse_ical_dt(v.split("/")[0], "VTIMEZONE RDATE")
                    rule.setdefault("recurrenceOverrides", {})[local_str(dt)] = {}
            elif p.name == "TZNAME":
                rule.setdefault("names", {})[unescape_text(p.value)] = True
            elif p.name == "COMMENT":
                rule.setdefault("comments", []).append(unescape_text(p.value))
        obj.setdefault("standard" if sub.name == "STANDARD" else "daylight", []).append(rule)
    return obj


class _Conv:
    """Converts the components of one VCALENDAR."""

    def __init__(self, cal: Comp) -> None:
        self.cal = cal
        self.zones = _Zones(cal)
        m = cal.get("METHOD")
        self.method = m.value.lower() if m else None
        self.cal_props = [jcal_prop(p) for p in cal.props if p.name not in _CAL_STRUCTURAL]
        self.cal_comps = [
            jcal_comp(c) for c in cal.subs if c.name not in ("VEVENT", "VTODO", "VTIMEZONE")
        ]

    # --- time ---------------------------------------------------------------------------------

    def when(self, p: Prop, where: str) -> tuple[datetime, bool, str | None, tzinfo | None]:
        """(naive local datetime, is_date, timeZone name, tzinfo) of a DATE/DATE-TIME property."""
        dt, is_date, is_utc = parse_ical_dt(p.value, where)
        if is_date or p.param("VALUE") == "DATE":
            return dt, True, None, None
        if is_utc:
            return dt, False, "Etc/UTC", _UTC
        tzid = p.param("TZID")
        if tzid:
            hit = self.zones.resolve(tzid, where)
            if hit is not None:
                return dt, False, hit[0], hit[1]
        return dt, False, None, None

    def in_zone(
        self, p: Prop, value: str, zone: tzinfo | None, where: str
    ) -> tuple[datetime, bool]:
        """One value of a date-time property converted to the event's zone: (local, is_date)."""
        dt, is_date, is_utc = parse_ical_dt(value, where)
        if is_date or p.param("VALUE") == "DATE":
            return dt, True
        if is_utc:
            return to_zone(dt, _UTC, zone), False
        tzid = p.param("TZID")
        if tzid:
            hit = self.zones.resolve(tzid, where)
            if hit is not None:
                return to_zone(dt, hit[1], zone), False
        return dt, False

    # --- components ---------------------------------------------------------------------------

    def convert(self, comp: Comp, instance: bool = False) -> dict[str, Any]:
        """One component as a JSCalendar object; ``instance`` for a RECURRENCE-ID override.

        An override cannot carry recurrence (RFC 8984 §4.3.5): RRULE, EXRULE, RDATE and EXDATE
        of an instance are kept unmapped instead.
        """
        kind = "Event" if comp.name == "VEVENT" else "Task"
        uidp = comp.get("UID")
        where = f"{comp.name} {uidp.value if uidp else '?'}"
        obj: dict[str, Any] = {"@type": kind}
        vendor: dict[str, Any] = {}
        conv_params: dict[str, Any] = {}
        unmapped: list[list[Any]] = []
        json_patch: dict[str, Any] = {}
        obj["uid"] = unescape_text(uidp.value) if uidp else ""
        seen: set[str] = set()
        dups: set[int] = set()
        for p in comp.props:
            if p.name in _SINGLE:
                if p.name in seen:
                    dups.add(id(p))
                    unmapped.append(jcal_prop(p))
                seen.add(p.name)

        def keep_params(p: Prop, pointer: str, known: set[str], name: str | None = None) -> None:
            extra = {k: v for k, v in p.params.items() if k not in known}
            if extra:
                # merged: two properties can meet in one place (an address listed twice)
                entry = conv_params.setdefault(pointer, {})
                entry.setdefault("parameters", {}).update(_jcal_params(extra))
            if name:
                conv_params.setdefault(pointer, {})["name"] = name

        if uidp is not None:
            keep_params(uidp, "uid", set())

        # time (RFC 8984 §5.1.1, §5.1.2, §5.2.1, §5.2.2)
        start = comp.get("DTSTART")
        zone: tzinfo | None = None
        tzname: str | None = None
        is_date = False
        sdt: datetime | None = None
        if start is not None:
            sdt, is_date, tzname, zone = self.when(start, where + " DTSTART")
            obj["start"] = local_str(sdt)
            keep_params(start, "start", {"VALUE"} if tzname is None else {"TZID", "VALUE"})
        elif kind == "Task" and comp.get("DUE") is not None:
            due = comp.get("DUE")
            assert due is not None
            _, is_date, tzname, zone = self.when(due, where + " DUE")
        if tzname is not None:
            obj["timeZone"] = tzname
        if is_date:
            obj["showWithoutTime"] = True
        end = comp.get("DTEND") if kind == "Event" else None
        dur = comp.get("DURATION")
        used: set[int] = set()
        if end is not None and sdt is not None:
            used.add(id(end))
            edt, e_date, e_name, e_zone = self.when(end, where + " DTEND")
            keep_params(end, "duration", {"VALUE"} if e_name is None else {"TZID", "VALUE"})
            if e_name == tzname or e_date or is_date:
                delta = edt - sdt
                obj["duration"] = fmt_duration(max(delta, timedelta(0)))
            else:
                # end time zone differs: exact duration plus the end location (RFC 8984 §5.1.4)
                a = sdt.replace(tzinfo=zone or _UTC)
                b = edt.replace(tzinfo=e_zone or zone or _UTC)
                obj["duration"] = fmt_duration(max(b - a, timedelta(0)), exact=True)
                if e_name is not None:
                    obj.setdefault("locations", {})["end"] = {
                        "@type": "Location",
                        "relativeTo": "end",
                        "timeZone": e_name,
                    }
        elif dur is not None and kind == "Event":
            used.add(id(dur))
            obj["duration"] = normalize_duration(dur.value, where + " DURATION")
            keep_params(dur, "duration", set())
        if kind == "Task":
            due = comp.get("DUE")
            if due is not None:
                ddt, _ = self.in_zone(due, due.value, zone, where + " DUE")
                obj["due"] = local_str(ddt)
                keep_params(due, "due", {"TZID", "VALUE"})
            elif dur is not None and sdt is not None:
                try:
                    td = parse_duration(dur.value, where + " DURATION")
                    # A date start plus hours has no date DUE: kept as it is, unmapped below.
                    if not is_date or td % timedelta(days=1) == timedelta(0):
                        obj["due"] = local_str(sdt + td)
                        keep_params(dur, "due", set())
                        used.add(id(dur))
                except (ConversionError, OverflowError):
                    pass  # kept unmapped below
            est = comp.get("ESTIMATED-DURATION")
            if est is not None:
                try:
                    obj["estimatedDuration"] = normalize_duration(est.value, where)
                    keep_params(est, "estimatedDuration", set())
                except ConversionError:
                    unmapped.append(jcal_prop(est))
        for extra in (end, dur):
            if extra is not None and id(extra) not in used:
                # DTEND without DTSTART, DURATION beside DTEND or DUE
                unmapped.append(jcal_prop(extra))

        # recurrence (RFC 8984 §4.3)
        if instance:
            for p in comp.props:
                if p.name in _RECUR:
                    unmapped.append(jcal_prop(p))
            comp = Comp(comp.name, [p for p in comp.props if p.name not in _RECUR], comp.subs)
        rules = [self.rule(p, zone, is_date, where) for p in comp.all("RRULE")]
        for i, p in enumerate(comp.all("RRULE")):
            keep_params(p, f"recurrenceRules/{i}", set())
        for i, p in enumerate(comp.all("EXRULE")):
            keep_params(p, f"excludedRecurrenceRules/{i}", set())
        if rules:
            obj["recurrenceRules"] = rules
        exrules = [self.rule(p, zone, is_date, where) for p in comp.all("EXRULE")]
        if exrules:
            obj["excludedRecurrenceRules"] = exrules
        overrides: dict[str, Any] = {}
        for p in comp.all("RDATE"):
            try:
                self.rdate(p, obj, zone, overrides, where)
            except ConversionError:
                unmapped.append(jcal_prop(p))  # e.g. VALUE=TIME: not a valid RDATE, keep it
        for p in comp.all("EXDATE"):
            try:
                keys = [
                    local_str(self.in_zone(p, v, zone, where + " EXDATE")[0])
                    for v in p.value.split(",")
                    if v
                ]
            except ConversionError:
                keys = []
            if not keys:
                unmapped.append(jcal_prop(p))  # unreadable or empty: kept as it was
            for k in keys:
                overrides[k] = {"excluded": True}
        if overrides:
            obj["recurrenceOverrides"] = overrides

        # text
        self.text_props(comp, obj, keep_params, unmapped)

        # people (RFC 8984 §4.4)
        self.people(comp, obj, keep_params, unmapped)

        # places, links
        self.places(comp, obj, keep_params)

        # alerts and sub-components
        alerts: dict[str, Any] = {}
        comps: list[list[Any]] = []
        for i, sub in enumerate(comp.subs, 1):
            if sub.name == "VALARM":
                aid, alert = self.alert(sub, i, where)
                alerts[aid] = alert
            else:
                comps.append(jcal_comp(sub))
        if alerts:
            obj["alerts"] = alerts

        # the rest (RFC 8984 §4.2, §4.4, §5.2)
        for p in comp.props:
            n = p.name
            if id(p) in dups or n in ("SUMMARY", "DESCRIPTION"):
                continue
            if n not in _EVENT_MAPPED or n in (_TASK_ONLY if kind == "Event" else _EVENT_ONLY):
                unmapped.append(jcal_prop(p))
                continue
            if n == "CATEGORIES":
                words = [w for w in split_text_list(p.value) if w]
                if not words:
                    unmapped.append(jcal_prop(p))
                else:
                    keep_params(p, "keywords", set())
                for word in words:
                    obj.setdefault("keywords", {})[word] = True
            elif n == "COLOR":
                obj["color"] = unescape_text(p.value)
                keep_params(p, "color", set())
            elif n == "CLASS":
                mapped: str | None = T.CLASS.get(p.value.upper())
                if mapped is None:
                    unmapped.append(jcal_prop(p))
                else:
                    obj["privacy"] = mapped
                    keep_params(p, "privacy", set())
            elif n == "TRANSP":
                mapped = T.TRANSP.get(p.value.upper())
                if mapped is None:
                    unmapped.append(jcal_prop(p))
                else:
                    obj["freeBusyStatus"] = mapped
                    keep_params(p, "freeBusyStatus", set())
            elif n == "STATUS":
                table = T.EVENT_STATUS if kind == "Event" else T.TASK_PROGRESS
                mapped = table.get(p.value.upper())
                if mapped is None:
                    unmapped.append(jcal_prop(p))
                else:
                    obj["status" if kind == "Event" else "progress"] = mapped
                    keep_params(p, "status" if kind == "Event" else "progress", set())
            elif n in ("PRIORITY", "SEQUENCE", "PERCENT-COMPLETE"):
                try:
                    num = int(p.value)
                except ValueError:
                    unmapped.append(jcal_prop(p))
                    continue
                key = {"PRIORITY": "priority", "SEQUENCE": "sequence"}.get(n, "percentComplete")
                if key == "priority" and num == 0:
                    if p.params:
                        unmapped.append(jcal_prop(p))
                    continue
                obj[key] = num
                keep_params(p, key, set())
            elif n in ("CREATED", "LAST-MODIFIED", "DTSTAMP", "COMPLETED"):
                try:
                    dt, _, is_utc = parse_ical_dt(p.value, f"{where} {n}")
                except ConversionError:
                    unmapped.append(jcal_prop(p))  # a broken time stamp is no reason to fail
                    continue
                hit = None if is_utc else self.zones.resolve(p.param("TZID") or "", where)
                if hit is not None:
                    dt = to_zone(dt, hit[1], _UTC)
                elif not is_utc and p.params:
                    unmapped.append(jcal_prop(p))  # an unknown zone: keep it as written
                    continue
                val = utc_str(dt)
                if n == "DTSTAMP" and val == NO_STAMP:
                    continue  # our placeholder for "no updated": reading it back as absent
                if n == "CREATED":
                    obj["created"] = val
                    keep_params(p, "created", {"TZID", "VALUE"})
                elif n == "COMPLETED":
                    obj["progressUpdated"] = val
                    obj.setdefault("progress", "completed")
                    keep_params(p, "progressUpdated", {"TZID", "VALUE"})
                elif n == "LAST-MODIFIED" or comp.get("LAST-MODIFIED") is None:
                    obj["updated"] = val
                    keep_params(p, "updated", {"TZID", "VALUE"})
                else:
                    unmapped.append(jcal_prop(p))
            elif n == "RELATED-TO":
                rel = T.RELTYPE.get((p.param("RELTYPE") or "PARENT").upper())
                ruid = unescape_text(p.value)
                entry = obj.setdefault("relatedTo", {}).setdefault(
                    ruid, {"@type": "Relation", "relation": {}}
                )
                keep_params(p, f"relatedTo/{ruid}", {"RELTYPE"})
                if rel is not None:
                    entry["relation"][rel] = True
                else:
                    entry["relation"][(p.param("RELTYPE") or "").lower()] = True
            elif n == JSON_PROP:
                pointer = p.param("X-NAME") or ""
                try:
                    json_patch[pointer] = json.loads(unescape_text(p.value))
                except ValueError:
                    unmapped.append(jcal_prop(p))
                    continue
                if not pointer:
                    unmapped.append(jcal_prop(p))
        if self.method:
            obj["method"] = self.method
        json_patch.pop("", None)
        for pointer in [k for k in json_patch if "/" not in k and k in obj]:
            # we write a top-level key as JSON only when no property holds it, so a clash means
            # someone else wrote this line: the real property wins, the line is kept as it was
            value = json_patch.pop(pointer)
            unmapped.append(
                [JSON_PROP.lower(), {"x-name": pointer}, "text", json.dumps(value, sort_keys=True)]
            )
        if json_patch:
            obj = apply(obj, json_patch, where=where + " " + JSON_PROP)
        if unmapped:
            vendor["properties"] = unmapped
        if comps:
            vendor["components"] = comps
        if conv_params:
            vendor["convertedProperties"] = conv_params
        if self.cal_props:
            vendor["calendarProperties"] = self.cal_props
        if self.cal_comps:
            vendor["calendarComponents"] = self.cal_comps
        if vendor:
            obj[VENDOR] = vendor
        if self.zones.custom:
            zones_used = {obj.get("timeZone")} | {
                loc.get("timeZone") for loc in obj.get("locations", {}).values()
            }
            tzs = {k: v for k, v in self.zones.custom.items() if k in zones_used}
            if tzs:
                obj["timeZones"] = tzs
        return obj

    def rdate(
        self,
        p: Prop,
        obj: dict[str, Any],
        zone: tzinfo | None,
        overrides: dict[str, Any],
        where: str,
    ) -> None:
        """RDATE values (dates, date-times, periods) → overrides; all or nothing."""
        found: dict[str, Any] = {}
        for v in p.value.split(","):
            if not v:
                continue
            if "/" in v or p.param("VALUE") == "PERIOD":
                a_s, b_s = v.split("/", 1)
                a_dt, _ = self.in_zone(p, a_s, zone, where + " RDATE")
                patch: dict[str, Any] = {}
                if b_s.upper().lstrip("+-").startswith("P"):
                    d = normalize_duration(b_s, where + " RDATE")
                else:
                    b_dt, _ = self.in_zone(p, b_s, zone, where + " RDATE")
                    d = fmt_duration(b_dt - a_dt)
                if d != obj.get("duration"):
                    patch["duration"] = d
                found[local_str(a_dt)] = patch
            else:
                r_dt, _ = self.in_zone(p, v, zone, where + " RDATE")
                found[local_str(r_dt)] = {}
        if not found:
            raise ConversionError("RDATE without a value", where=where)
        overrides.update(found)

    def rule(self, p: Prop, zone: tzinfo | None, is_date: bool, where: str) -> dict[str, Any]:
        rule, until = parse_rrule(p.value, f"{where} {p.name}")
        if until is not None:
            udt, u_date, u_utc = until
            if is_date:
                rule["until"] = local_str(udt.replace(hour=0, minute=0, second=0))
            elif u_date:
                # a DATE UNTIL on a timed event still includes that whole day
                rule["until"] = local_str(udt.replace(hour=23, minute=59, second=59))
            elif u_utc:
                rule["until"] = local_str(to_zone(udt, _UTC, zone))
            else:
                rule["until"] = local_str(udt)
        return rule

    def text_props(self, comp: Comp, obj: dict[str, Any], keep: Any, unmapped: list[Any]) -> None:
        summary = comp.get("SUMMARY")
        if summary is not None:
            obj["title"] = unescape_text(summary.value)
            lang = summary.param("LANGUAGE")
            if lang:
                obj["locale"] = lang  # RFC 8984 §4.2.8 locale: the language of the texts
            keep(summary, "title", {"LANGUAGE"} if lang else set())
        desc = comp.get("DESCRIPTION")
        html = None
        for p in comp.props:
            if p.name in ("STYLED-DESCRIPTION", "X-ALT-DESC") and (
                (p.param("FMTTYPE") or "").lower() == "text/html"
            ):
                html = p
                break
        if html is not None and html.value and html.param("VALUE") in (None, "TEXT"):
            obj["description"] = unescape_text(html.value)
            obj["descriptionContentType"] = "text/html"
            if desc is not None:
                unmapped.append(jcal_prop(desc))
            alt = html.name.lower() if html.name != "STYLED-DESCRIPTION" else None
            keep(html, "description", {"FMTTYPE", "VALUE"}, alt)
            for p in comp.props:
                if p is not html and p.name in ("STYLED-DESCRIPTION", "X-ALT-DESC"):
                    unmapped.append(jcal_prop(p))
        else:
            if html is not None:
                unmapped.append(jcal_prop(html))
            for p in comp.props:
                if p is not html and p.name in ("STYLED-DESCRIPTION", "X-ALT-DESC"):
                    unmapped.append(jcal_prop(p))
            if desc is not None and desc.value:
                obj["description"] = unescape_text(desc.value)
                keep(desc, "description", set())
            elif desc is not None:
                unmapped.append(jcal_prop(desc))  # empty: JSCalendar cannot tell it from none

    def people(self, comp: Comp, obj: dict[str, Any], keep: Any, unmapped: list[Any]) -> None:
        parts: dict[str, dict[str, Any]] = {}
        known = {
            "CN", "EMAIL", "ROLE", "PARTSTAT", "RSVP", "CUTYPE", "DELEGATED-TO", "DELEGATED-FROM",
            "MEMBER", "SCHEDULE-AGENT", "SCHEDULE-FORCE-SEND", "SCHEDULE-STATUS", "SENT-BY",
            "LANGUAGE", "X-JMAP-ID",
        }  # fmt: skip
        ids = {
            p.value.lower(): p.param("X-JMAP-ID") or _pid(p.value)
            for p in comp.props
            if p.name in ("ORGANIZER", "ATTENDEE")
        }
        org = comp.get("ORGANIZER")
        if org is not None and org.value.strip():
            obj["replyTo"] = {
                "imip" if org.value.lower().startswith("mailto:") else "other": org.value
            }
        for p in comp.props:
            if p.name not in ("ORGANIZER", "ATTENDEE"):
                continue
            if not p.value.strip():
                unmapped.append(jcal_prop(p))  # no address: not a participant
                continue
            addr = p.value
            pid = ids[addr.lower()]
            part = parts.setdefault(pid, {"@type": "Participant"})
            keep(p, "replyTo" if p.name == "ORGANIZER" else f"participants/{pid}", known)
            roles = part.setdefault("roles", {})
            if p.name == "ORGANIZER":
                roles["owner"] = True
            else:
                role = (p.param("ROLE") or "REQ-PARTICIPANT").upper()
                if role == "CHAIR":
                    roles["chair"] = True
                    roles["attendee"] = True
                elif role == "OPT-PARTICIPANT":
                    roles["optional"] = True
                    roles["attendee"] = True
                elif role == "NON-PARTICIPANT":
                    roles["informational"] = True
                else:
                    roles["attendee"] = True
                ps = (p.param("PARTSTAT") or "NEEDS-ACTION").upper()
                if comp.name == "VTODO" and ps in ("IN-PROCESS", "COMPLETED"):
                    # RFC 8984 §5.2.5: a task participant's progress; they accepted the task
                    part["progress"] = ps.lower()
                    part["participationStatus"] = "accepted"
                else:
                    part["participationStatus"] = T.PARTSTAT.get(ps, ps.lower())
                if (p.param("RSVP") or "").upper() == "TRUE":
                    part["expectReply"] = True
                for key, param in (
                    ("delegatedTo", "DELEGATED-TO"),
                    ("delegatedFrom", "DELEGATED-FROM"),
                    ("memberOf", "MEMBER"),
                ):
                    vals = p.params.get(param)
                    if vals:
                        part[key] = {ids.get(v.lower(), _pid(v)): True for v in vals}
            cn = p.param("CN")
            if cn:
                part["name"] = cn
            email = p.param("EMAIL")
            if email:
                part["email"] = email
            elif addr.lower().startswith("mailto:"):
                part.setdefault("email", addr[7:])
            method = "imip" if addr.lower().startswith("mailto:") else "other"
            if p.name == "ATTENDEE" or "sendTo" not in part:
                part["sendTo"] = {method: addr}
            cut = p.param("CUTYPE")
            if cut:
                kind = T.CUTYPE.get(cut.upper())
                if kind:
                    part["kind"] = kind
                elif cut.upper() != "UNKNOWN":
                    part["kind"] = cut.lower()
            sa = p.param("SCHEDULE-AGENT")
            if sa:
                part["scheduleAgent"] = sa.lower()
            if (p.param("SCHEDULE-FORCE-SEND") or "").upper() in ("REQUEST", "REPLY"):
                part["scheduleForceSend"] = True
            ss = p.params.get("SCHEDULE-STATUS")
            if ss:
                part["scheduleStatus"] = list(ss)
            sb = p.param("SENT-BY")
            if sb:
                part["sentBy"] = sb[7:] if sb.lower().startswith("mailto:") else sb
            lang = p.param("LANGUAGE")
            if lang:
                part["language"] = lang
        for i, p in enumerate(comp.all("CONTACT"), 1):
            parts[f"contact{i}"] = {
                "@type": "Participant",
                "name": unescape_text(p.value),
                "roles": {"contact": True},
            }
            keep(p, f"participants/contact{i}", set())
        for p in comp.all("RESOURCES"):
            for j, res in enumerate(split_text_list(p.value), 1):
                pid = f"resource{len([k for k in parts if k.startswith('resource')]) + 1}"
                parts[pid] = {
                    "@type": "Participant",
                    "name": res,
                    "kind": "resource",
                    "roles": {"attendee": True},
                }
                if j == 1:
                    keep(p, f"participants/{pid}", set())
        if parts:
            obj["participants"] = parts

    def places(self, comp: Comp, obj: dict[str, Any], keep: Any) -> None:
        locs: dict[str, Any] = obj.get("locations", {})
        for i, p in enumerate(comp.all("LOCATION"), 1):
            lid = p.param("X-JMAP-ID") or str(i)
            loc: dict[str, Any] = {"@type": "Location", "name": unescape_text(p.value)}
            altrep = p.param("ALTREP")
            if altrep:
                loc["links"] = {"1": {"@type": "Link", "href": altrep}}
            locs[lid] = loc
            keep(p, f"locations/{lid}", {"ALTREP", "X-JMAP-ID"})
        geo = comp.get("GEO")
        if geo is not None:
            lat, _, lon = geo.value.replace(",", ";").partition(";")
            target = locs.get("1")
            if target is None or "coordinates" in target:
                target = locs.setdefault("geo", {"@type": "Location"})
            target["coordinates"] = f"geo:{lat.strip()},{lon.strip()}"
            keep(geo, "geo", set())
        if locs:
            obj["locations"] = locs
        vlocs: dict[str, Any] = {}
        for i, p in enumerate(comp.all("CONFERENCE"), 1):
            vl: dict[str, Any] = {"@type": "VirtualLocation", "uri": p.value}
            label = p.param("LABEL")
            if label:
                vl["name"] = label
            feats = p.params.get("FEATURE")
            if feats:
                vl["features"] = {f.lower(): True for f in feats}
            vid = p.param("X-JMAP-ID") or str(i)
            vlocs[vid] = vl
            keep(p, f"virtualLocations/{vid}", {"LABEL", "FEATURE", "VALUE", "X-JMAP-ID"})
        if vlocs:
            obj["virtualLocations"] = vlocs
        links: dict[str, Any] = {}
        for p in comp.all("URL"):
            lid = p.param("X-JMAP-ID") or str(len(links) + 1)
            links[lid] = {"@type": "Link", "href": p.value, "rel": "describedby"}
            keep(p, f"links/{lid}", {"VALUE", "X-JMAP-ID"})
        for p in comp.all("ATTACH"):
            lid = p.param("X-JMAP-ID") or str(len(links) + 1)
            fmt = p.param("FMTTYPE")
            if (p.param("ENCODING") or "").upper() == "BASE64":
                href = f"data:{fmt or 'application/octet-stream'};base64,{p.value}"
            else:
                href = p.value
            link: dict[str, Any] = {"@type": "Link", "href": href, "rel": "enclosure"}
            if fmt:
                link["contentType"] = fmt
            size = p.param("SIZE")
            if size and size.isdigit():
                link["size"] = int(size)
            title = p.param("FILENAME") or p.param("X-FILENAME")
            if title:
                link["title"] = title
            links[lid] = link
            keep(
                p, f"links/{lid}", {"FMTTYPE", "ENCODING", "VALUE", "SIZE", "FILENAME", "X-JMAP-ID"}
            )
        if links:
            obj["links"] = links

    def alert(self, comp: Comp, index: int, where: str) -> tuple[str, dict[str, Any]]:
        """VALARM → Alert (RFC 8984 §4.5.2); unusual alarms keep their data, never crash."""
        alert: dict[str, Any] = {"@type": "Alert"}
        unmapped = [jcal_prop(p) for p in comp.props if p.name not in _ALARM_MAPPED]
        aid = str(index)
        uid = comp.get("UID")
        if uid is not None and _ID_OK.match(uid.value):
            aid = uid.value
        elif uid is not None:
            unmapped.append(jcal_prop(uid))
        trig = comp.get("TRIGGER")
        if trig is not None:
            try:
                if trig.param("VALUE") == "DATE-TIME" or not trig.value.lstrip(
                    "+-"
                ).upper().startswith("P"):
                    dt, _, _ = parse_ical_dt(trig.value, where + " TRIGGER")
                    alert["trigger"] = {"@type": "AbsoluteTrigger", "when": utc_str(dt)}
                else:
                    t: dict[str, Any] = {
                        "@type": "OffsetTrigger",
                        "offset": normalize_duration(trig.value, where + " TRIGGER"),
                    }
                    if (trig.param("RELATED") or "START").upper() == "END":
                        t["relativeTo"] = "end"
                    alert["trigger"] = t
            except ConversionError:
                unmapped.append(jcal_prop(trig))
        action = comp.get("ACTION")
        if action is not None:
            a = T.ACTION.get(action.value.upper())
            if a is not None:
                alert["action"] = a
            else:
                unmapped.append(jcal_prop(action))
        ack = comp.get("ACKNOWLEDGED")
        if ack is not None:
            try:
                dt, _, _ = parse_ical_dt(ack.value, where + " ACKNOWLEDGED")
                alert["acknowledged"] = utc_str(dt)
            except ConversionError:
                unmapped.append(jcal_prop(ack))
        for rel in comp.all("RELATED-TO"):
            alert.setdefault("relatedTo", {})[unescape_text(rel.value)] = {
                "@type": "Relation",
                "relation": {(rel.param("RELTYPE") or "parent").lower(): True},
            }
        subs = [jcal_comp(s) for s in comp.subs]
        vendor: dict[str, Any] = {}
        if unmapped:
            vendor["properties"] = unmapped
        if subs:
            vendor["components"] = subs
        if vendor:
            alert[VENDOR] = vendor
        return aid, alert


_PATCH_SKIP = ("uid", "recurrenceRules", "excludedRecurrenceRules", "recurrenceOverrides", "method")


def _instance_patch(master: dict[str, Any], inst: dict[str, Any], rid: str) -> dict[str, Any]:
    base = {k: v for k, v in master.items() if k not in _PATCH_SKIP}
    base["start"] = rid
    other = {k: v for k, v in inst.items() if k not in _PATCH_SKIP}
    # calendar-level data is the same for every component of one calendar
    for d in (base, other):
        if VENDOR in d:
            d[VENDOR] = {
                k: v
                for k, v in d[VENDOR].items()
                if k not in ("calendarProperties", "calendarComponents")
            }
            if not d[VENDOR]:
                del d[VENDOR]
    return diff(base, other)


def _zone_of(conv: _Conv, obj: dict[str, Any], where: str) -> tzinfo | None:
    tzname = obj.get("timeZone")
    if isinstance(tzname, str):
        hit = conv.zones.resolve(tzname[1:] if tzname.startswith("/") else tzname, where)
        return hit[1] if hit is not None else None
    return None


def convert_calendar(cal: Comp) -> list[dict[str, Any]]:
    """All VEVENT/VTODO of one parsed VCALENDAR, grouped by UID."""
    conv = _Conv(cal)
    items = [c for c in cal.subs if c.name in ("VEVENT", "VTODO")]
    if not items:
        raise ConversionError("the VCALENDAR has no VEVENT or VTODO", where="VCALENDAR")
    masters: dict[str, dict[str, Any]] = {}
    order: list[str] = []
    instances: list[tuple[str, Comp]] = []
    for c in items:
        uidp = c.get("UID")
        if uidp is None or not uidp.value.strip():
            raise ConversionError("component without UID", where=c.name)
        uid = unescape_text(uidp.value)
        if c.get("RECURRENCE-ID") is not None:
            instances.append((uid, c))
            continue
        if uid in masters:
            raise ConversionError(f"two master components with UID {uid!r}", where=c.name)
        masters[uid] = conv.convert(c)
        order.append(uid)
    for uid, c in instances:
        master = masters.get(uid)
        ridp = c.get("RECURRENCE-ID")
        assert ridp is not None
        where = f"{c.name} {uid} RECURRENCE-ID"
        inst = conv.convert(c, instance=master is not None)
        if master is not None and master["@type"] != inst["@type"]:
            raise ConversionError(f"{c.name} instance of a {master['@type']}", where=where)
        if master is None:
            # an orphan instance (e.g. an invitation to one occurrence): it becomes the object
            masters[uid] = inst
            order.append(uid)
            rdt, _ = conv.in_zone(ridp, ridp.value, _zone_of(conv, inst, where), where)
            vend = inst.setdefault(VENDOR, {})
            vend["recurrenceId"] = local_str(rdt)
            if ridp.param("RANGE"):
                vend["recurrenceIdRange"] = (ridp.param("RANGE") or "").upper()
            continue
        rid = local_str(conv.in_zone(ridp, ridp.value, _zone_of(conv, master, where), where)[0])
        patch = _instance_patch(master, inst, rid)
        rng = ridp.param("RANGE")
        if rng:
            patch[f"{VENDOR}/recurrenceIdRange"] = rng.upper()
        ov = master.setdefault("recurrenceOverrides", {})
        if ov.get(rid) == {"excluded": True}:
            # RFC 5545 lets EXDATE win over an instance; keep the instance data as a trace
            patch["excluded"] = True
        ov[rid] = patch
    return [masters[u] for u in order]


def ical_to_jscal_text(text: str) -> list[dict[str, Any]]:
    return convert_calendar(parse_calendar(text))
