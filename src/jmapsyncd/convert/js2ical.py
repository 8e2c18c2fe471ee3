"""JSCalendar → iCalendar (RFC 8984 → RFC 5545, after draft-ietf-calext-jscalendar-icalendar).

Promises: one VCALENDAR text (PRODID ``-//jmapsyncd//EN``, VERSION 2.0) for one or more Event/Task
objects; overrides become EXDATE, RDATE and RECURRENCE-ID components; a VTIMEZONE for every TZID
used (generated from the IANA database, or from the object's ``timeZones`` for custom zones).
Accepts the IETF form and what servers send back (Cyrus 3.6 ``jsevent``/singular
``recurrenceRule``/``null`` values, Cyrus 3.10 and Stalwart ``id``/``calendarIds``/…); server-only
keys are ignored. Properties iCalendar cannot express are written as ``X-JMAPSYNCD-JSON``
(a JSON value under a JSON-pointer name) so they survive the round trip. The text is written
directly, without building an icalendar object model: this is the sync hot path.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from datetime import timedelta, tzinfo
from typing import Any

from jmapsyncd.convert import _tables as T
from jmapsyncd.convert._patch import apply
from jmapsyncd.convert._rrule import counted_from_start, format_rrule
from jmapsyncd.convert._time import (
    custom_tzinfo,
    iana_zone,
    ical_date,
    ical_local,
    local_to_ical_value,
    parse_duration,
    parse_local,
    to_zone,
    vtimezone,
)
from jmapsyncd.convert._write import Writer, escape_text
from jmapsyncd.convert.ical2js import JSON_PROP, NO_STAMP, VENDOR, _pid
from jmapsyncd.errors import ConversionError

PRODID = "-//jmapsyncd//EN"
_HEAD = f"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:{PRODID}\r\n"
_UTC_NAMES = frozenset({"Etc/UTC", "UTC", "Etc/Universal", "Etc/Zulu", "Universal", "Zulu", "GMT"})

# keys a server adds that have no iCalendar meaning (RFC 8984 / JMAP Calendars / Cyrus / Stalwart)
_IGNORED = frozenset({
    "id", "calendarIds", "calendarId", "isDraft", "isOrigin", "utcStart", "utcEnd", "baseEventId",
    "blobId", "x-href", "debugBlobId", "mayInviteSelf", "mayInviteOthers", "hideAttendees",
    "useDefaultAlerts", "prodId", "version", "@type", "recurrenceId", "recurrenceIdTimeZone",
    "excluded", "taskListId", "taskListIds", "sentBy", "uid", "timeZones",
    "recurrenceRule", "cyrusimap.org:iCalProps", "participantId",
})  # fmt: skip
_MAPPED = frozenset({
    "title", "description", "descriptionContentType", "start", "timeZone", "duration",
    "showWithoutTime", "recurrenceRules", "excludedRecurrenceRules", "recurrenceOverrides",
    "participants", "replyTo", "locations", "virtualLocations", "links", "keywords", "color",
    "privacy", "freeBusyStatus", "status", "priority", "sequence", "created", "updated",
    "relatedTo", "method", "alerts", "due", "estimatedDuration", "percentComplete", "progress",
    "progressUpdated", "locale", VENDOR,
})  # fmt: skip


_S, _D, _L = str, dict, list
_TYPES: dict[str, type | tuple[type, ...]] = {
    "title": _S, "description": _S, "descriptionContentType": _S, "start": _S, "timeZone": _S,
    "duration": _S, "showWithoutTime": bool, "recurrenceRules": _L, "excludedRecurrenceRules": _L,
    "recurrenceOverrides": _D, "participants": _D, "replyTo": _D, "locations": _D,
    "virtualLocations": _D, "links": _D, "keywords": _D, "color": _S, "privacy": _S,
    "freeBusyStatus": _S, "status": _S, "priority": int, "sequence": int, "created": _S,
    "updated": _S, "relatedTo": _D, "method": _S, "alerts": _D, "due": _S, "estimatedDuration": _S,
    "percentComplete": int, "progress": _S, "progressUpdated": _S, "locale": _S, VENDOR: _D,
}  # fmt: skip
"""The JSON type each mapped property must have; anything else is kept as JSON instead."""


def _clean(obj: dict[str, Any]) -> dict[str, Any]:
    """Drop ``null`` values (servers send them for absent properties)."""
    return {k: v for k, v in obj.items() if v is not None}


def _jcal_params(params: Any) -> dict[str, str | list[str]]:
    out: dict[str, str | list[str]] = {}
    if isinstance(params, dict):
        for k, v in params.items():
            if isinstance(v, list):
                out[str(k).upper()] = [str(x) for x in v]
            elif v is not None:
                out[str(k).upper()] = str(v)
    return out


def _write_jcal_prop(w: Writer, prop: Any) -> None:
    if not isinstance(prop, list) or len(prop) < 4 or not isinstance(prop[0], str):
        return
    name, params, vtype = prop[0].upper(), _jcal_params(prop[1]), prop[2]
    values = prop[3:]
    if vtype == "text":
        value = ",".join(escape_text(str(v)) for v in values)
    elif all(isinstance(v, str) for v in values):
        value = ",".join(values)
    else:
        value = ",".join(v if isinstance(v, str) else json.dumps(v) for v in values)
    w.raw(name, value, params)


def _write_jcal_comp(w: Writer, comp: Any) -> None:
    if not isinstance(comp, list) or len(comp) < 3 or not isinstance(comp[0], str):
        return
    name = comp[0].upper()
    w.begin(name)
    for p in comp[1] or []:
        _write_jcal_prop(w, p)
    for s in comp[2] or []:
        _write_jcal_comp(w, s)
    w.end(name)


def _kind(obj: dict[str, Any], where: str) -> str:
    t = obj.get("@type")
    if t in (None, "Event", "jsevent"):
        return "VEVENT"
    if t in ("Task", "jstask"):
        return "VTODO"
    raise ConversionError(f"unknown @type {t!r} (expected Event or Task)", where=where)


class _Cal:
    """State for one output VCALENDAR: zones to define, calendar-level properties."""

    def __init__(self) -> None:
        self.w = Writer()
        self.iana: list[str] = []
        self.custom: dict[str, dict[str, Any]] = {}
        self.cal_props: list[Any] = []
        self.cal_comps: list[Any] = []
        self.cal_seen: set[str] = set()
        self.method: str | None = None


class _Time:
    """How one object's LocalDateTimes are written: DATE, UTC, TZID or floating."""

    __slots__ = ("is_date", "name", "params", "tz", "utc")

    def __init__(self, obj: dict[str, Any], cal: _Cal, where: str) -> None:
        self.is_date = bool(obj.get("showWithoutTime"))
        tzname = obj.get("timeZone")
        self.name: str | None = tzname if isinstance(tzname, str) and tzname else None
        self.utc = False
        self.tz: tzinfo | None = None
        self.params: dict[str, str] = {}
        if self.is_date:
            self.params = {"VALUE": "DATE"}
            return
        if self.name is None:
            return
        self.tz = _zone_for(self.name, obj, cal, where)
        if self.name in _UTC_NAMES:
            self.utc = True
        else:
            self.params = {"TZID": _tzid(self.name, obj)}

    def value(self, local: str) -> str:
        v = local_to_ical_value(local)
        if self.is_date:
            return v[:8]
        return v + "Z" if self.utc and not v.endswith("Z") else v


def _tzid(name: str, obj: dict[str, Any]) -> str:
    if name.startswith("/"):
        tzs = obj.get("timeZones") or {}
        tzobj = tzs.get(name) if isinstance(tzs, dict) else None
        if isinstance(tzobj, dict) and isinstance(tzobj.get("tzId"), str):
            return str(tzobj["tzId"])
        return name[1:]
    return name


def _zone_for(name: str, obj: dict[str, Any], cal: _Cal, where: str) -> tzinfo | None:
    """Register the zone for a VTIMEZONE and return a tzinfo for date arithmetic."""
    if name.startswith("/"):
        tzs = obj.get("timeZones") or {}
        tzobj = tzs.get(name) if isinstance(tzs, dict) else None
        if not isinstance(tzobj, dict):
            raise ConversionError(f"custom time zone {name!r} is not in timeZones", where=where)
        cal.custom.setdefault(_tzid(name, obj), tzobj)
        return _custom_tzinfo(_tzid(name, obj), tzobj, where)
    zone = iana_zone(name)
    if zone is None:
        raise ConversionError(f"unknown time zone {name!r}", where=where)
    if name not in _UTC_NAMES and name not in cal.iana:
        cal.iana.append(name)
    return zone


def _timezone_text(tzid: str, tzobj: dict[str, Any]) -> str:
    """An RFC 8984 TimeZone object as a VTIMEZONE."""
    w = Writer()
    w.begin("VTIMEZONE")
    w.text("TZID", tzid)
    if isinstance(tzobj.get("updated"), str):
        w.raw("LAST-MODIFIED", local_to_ical_value(tzobj["updated"]))
    if isinstance(tzobj.get("url"), str):
        w.raw("TZURL", tzobj["url"])
    for key, kind in (("standard", "STANDARD"), ("daylight", "DAYLIGHT")):
        for rule in tzobj.get(key) or []:
            if not isinstance(rule, dict):
                continue
            w.begin(kind)
            w.raw("DTSTART", local_to_ical_value(str(rule.get("start", "1970-01-01T00:00:00"))))
            w.raw("TZOFFSETFROM", str(rule.get("offsetFrom", "+0000")))
            w.raw("TZOFFSETTO", str(rule.get("offsetTo", "+0000")))
            for rr in rule.get("recurrenceRules") or []:
                until = rr.get("until")
                w.raw("RRULE", format_rrule(rr, _until_utc(until) if until else None, tzid))
            rdates = [local_to_ical_value(k) for k in (rule.get("recurrenceOverrides") or {})]
            if rdates:
                w.raw("RDATE", ",".join(rdates))
            for n in rule.get("names") or {}:
                w.text("TZNAME", n)
            for c in rule.get("comments") or []:
                w.text("COMMENT", str(c))
            w.end(kind)
    w.end("VTIMEZONE")
    return w.getvalue()


def _until_utc(local: str) -> str:
    # VTIMEZONE rules carry UNTIL in UTC; the local wall time is close enough for the bound
    return local_to_ical_value(local[:19]) + "Z"


_CUSTOM_TZ: dict[str, tzinfo] = {}


def _custom_tzinfo(tzid: str, tzobj: dict[str, Any], where: str) -> tzinfo | None:
    key = tzid + json.dumps(tzobj, sort_keys=True)
    hit = _CUSTOM_TZ.get(key)
    if hit is not None:
        return hit
    tz = custom_tzinfo(tzid, _timezone_text(tzid, tzobj), where)
    _CUSTOM_TZ[key] = tz
    return tz


def _conv_params(obj: dict[str, Any], pointer: str) -> dict[str, str | list[str]]:
    vendor = obj.get(VENDOR)
    if not isinstance(vendor, dict):
        return {}
    cp = vendor.get("convertedProperties")
    if not isinstance(cp, dict):
        return {}
    entry = cp.get(pointer)
    if not isinstance(entry, dict):
        return {}
    return _jcal_params(entry.get("parameters"))


def _conv_name(obj: dict[str, Any], pointer: str, default: str) -> str:
    vendor = obj.get(VENDOR)
    cp = vendor.get("convertedProperties") if isinstance(vendor, dict) else None
    entry = cp.get(pointer) if isinstance(cp, dict) else None
    name = entry.get("name") if isinstance(entry, dict) else None
    return name.upper() if isinstance(name, str) and name else default


def _merge(params: dict[str, Any], extra: dict[str, str | list[str]]) -> dict[str, Any]:
    if extra:
        params = {**params, **extra}
    return params


def _json_prop(w: Writer, pointer: str, value: Any) -> None:
    w.text(JSON_PROP, json.dumps(value, ensure_ascii=False, sort_keys=True), {"X-NAME": pointer})


def _address(part: dict[str, Any]) -> str | None:
    ca = part.get("calendarAddress")
    if isinstance(ca, str) and ca:
        return ca
    send = part.get("sendTo")
    if isinstance(send, dict) and send:
        for k in ("imip", "other"):
            if isinstance(send.get(k), str):
                return str(send[k])
        for v in send.values():
            if isinstance(v, str):
                return v
    email = part.get("email")
    if isinstance(email, str) and email:
        return "mailto:" + email
    return None


_PART_MAPPED = frozenset({
    "@type", "name", "email", "sendTo", "calendarAddress", "roles", "participationStatus",
    "expectReply", "kind", "delegatedTo", "delegatedFrom", "memberOf", "scheduleAgent",
    "scheduleForceSend", "scheduleStatus", "sentBy", "language", "scheduleSequence",
    "scheduleUpdated", "participantId",
})  # fmt: skip


class _ObjWriter:
    def __init__(self, cal: _Cal) -> None:
        self.cal = cal
        self.w = cal.w

    def write(self, raw: dict[str, Any], where: str) -> None:
        obj = _clean(raw)
        kind = _kind(obj, where)
        uid = obj.get("uid")
        if not isinstance(uid, str) or not uid:
            raise ConversionError("JSCalendar object without uid", where=where)
        where = f"{obj.get('@type', 'Event')} {uid}"
        method = obj.get("method")
        if isinstance(method, str) and self.cal.method is None:
            self.cal.method = method
        vendor = obj.get(VENDOR) if isinstance(obj.get(VENDOR), dict) else {}
        assert isinstance(vendor, dict)
        for cp in vendor.get("calendarProperties") or []:
            key = json.dumps(cp, sort_keys=True)
            if key not in self.cal.cal_seen:
                self.cal.cal_seen.add(key)
                self.cal.cal_props.append(cp)
        for cc in vendor.get("calendarComponents") or []:
            key = json.dumps(cc, sort_keys=True)
            if key not in self.cal.cal_seen:
                self.cal.cal_seen.add(key)
                self.cal.cal_comps.append(cc)
        t = _Time(obj, self.cal, where)
        orphan_rid = vendor.get("recurrenceId")
        self.component(kind, obj, t, where, rid=orphan_rid if isinstance(orphan_rid, str) else None)
        overrides = obj.get("recurrenceOverrides")
        if not isinstance(overrides, dict):
            return
        base = {
            k: v
            for k, v in obj.items()
            if k not in ("recurrenceRules", "recurrenceRule", "excludedRecurrenceRules",
                         "recurrenceOverrides")
        }  # fmt: skip
        for key, patch in overrides.items():
            if not isinstance(patch, dict) or not patch or patch.get("excluded"):
                continue
            full = apply({**base, "start": key}, patch, where=f"{where} override {key}")
            full = _clean(full)
            rng = None
            fv = full.get(VENDOR)
            if isinstance(fv, dict):
                rng = fv.get("recurrenceIdRange")
                fv = {
                    k: v
                    for k, v in fv.items()
                    if k not in ("recurrenceIdRange", "calendarProperties", "calendarComponents")
                }
                full[VENDOR] = fv
            it = _Time(full, self.cal, where)
            self.component(
                kind,
                full,
                it,
                f"{where} override {key}",
                rid=key,
                rid_time=t,
                rid_range=rng,
                alarm_text=obj.get("title") or "",
            )

    def component(
        self,
        kind: str,
        obj: dict[str, Any],
        t: _Time,
        where: str,
        *,
        rid: str | None = None,
        rid_time: _Time | None = None,
        rid_range: Any = None,
        alarm_text: Any = None,
    ) -> None:
        w = self.w
        w.begin(kind)
        w.text("UID", str(obj["uid"]), _conv_params(obj, "uid"))
        vendor = obj.get(VENDOR) if isinstance(obj.get(VENDOR), dict) else {}
        assert isinstance(vendor, dict)
        unmapped: list[Any] = [p for p in vendor.get("properties") or [] if isinstance(p, list)]
        unmapped_names = {str(p[0]).upper() for p in unmapped if p}
        # DTSTAMP / LAST-MODIFIED / CREATED (RFC 8984 §4.1.5, §4.1.6)
        updated = obj.get("updated")
        created = obj.get("created")
        if "DTSTAMP" not in unmapped_names:
            if isinstance(updated, str):
                w.raw("DTSTAMP", local_to_ical_value(updated), _conv_params(obj, "updated"))
            elif isinstance(created, str):
                w.raw("DTSTAMP", local_to_ical_value(created))
            else:
                w.raw("DTSTAMP", local_to_ical_value(NO_STAMP))
        elif isinstance(updated, str):
            w.raw("LAST-MODIFIED", local_to_ical_value(updated), _conv_params(obj, "updated"))
        if isinstance(created, str):
            w.raw("CREATED", local_to_ical_value(created), _conv_params(obj, "created"))
        if rid is not None:
            rt = rid_time or t
            rparams: dict[str, Any] = dict(rt.params)
            if rid_range:
                rparams["RANGE"] = str(rid_range)
            w.raw("RECURRENCE-ID", rt.value(rid), rparams)
        # time (RFC 8984 §5.1, §5.2)
        start = obj.get("start")
        if isinstance(start, str):
            w.raw("DTSTART", t.value(start), _merge(t.params, _conv_params(obj, "start")))
        duration = obj.get("duration")
        if kind == "VEVENT" and isinstance(duration, str):
            if isinstance(start, str):
                self.dtend(obj, t, start, duration, where)
            else:
                parse_duration(duration, f"{where} duration")
                w.raw("DURATION", duration.upper(), _conv_params(obj, "duration"))
        if kind == "VTODO":
            due = obj.get("due")
            if isinstance(due, str):
                w.raw("DUE", t.value(due), _merge(t.params, _conv_params(obj, "due")))
            est = obj.get("estimatedDuration")
            if isinstance(est, str):
                w.raw("ESTIMATED-DURATION", est, _conv_params(obj, "estimatedDuration"))
            pc = obj.get("percentComplete")
            if isinstance(pc, int):
                w.raw("PERCENT-COMPLETE", str(pc), _conv_params(obj, "percentComplete"))
            prog = obj.get("progress")
            if isinstance(prog, str):
                status = T.TASK_PROGRESS_REV.get(prog)
                if status:
                    w.raw("STATUS", status, _conv_params(obj, "progress"))
                else:
                    _json_prop(w, "progress", prog)
            pu = obj.get("progressUpdated")
            if isinstance(pu, str):
                w.raw("COMPLETED", local_to_ical_value(pu), _conv_params(obj, "progressUpdated"))
        # recurrence (RFC 8984 §4.3)
        if rid_time is None:  # a master, or an orphan instance standing in for one
            self.recurrence(obj, t, where)
        # text
        title = obj.get("title")
        if isinstance(title, str):  # an empty SUMMARY is kept: some readers show it
            locale = obj.get("locale")
            sparams = _conv_params(obj, "title")
            if isinstance(locale, str) and locale:
                sparams = {"LANGUAGE": locale, **sparams}
            w.text("SUMMARY", title, sparams)
        elif isinstance(obj.get("locale"), str):
            _json_prop(w, "locale", obj["locale"])
        desc = obj.get("description")
        if isinstance(desc, str) and desc:
            ctype = str(obj.get("descriptionContentType") or "text/plain").lower()
            extra = _conv_params(obj, "description")
            if ctype.startswith("text/html"):
                w.text(
                    _conv_name(obj, "description", "STYLED-DESCRIPTION"),
                    desc,
                    _merge({"VALUE": "TEXT", "FMTTYPE": "text/html"}, extra),
                )
            else:
                w.text("DESCRIPTION", desc, extra)
        self.scalars(kind, obj)
        self.people(obj)
        self.places(obj)
        self.relations(obj)
        # unknown JSCalendar properties, and mapped ones of the wrong JSON type, survive as JSON
        for k, v in obj.items():
            if k in _MAPPED:
                if not isinstance(v, _TYPES.get(k, object)) or (
                    isinstance(v, bool) and _TYPES.get(k) is int
                ):
                    _json_prop(w, k, v)
            elif k not in _IGNORED and not k.startswith("x-"):
                _json_prop(w, k, v)
        for p in unmapped:
            _write_jcal_prop(w, p)
        alerts = obj.get("alerts")
        if isinstance(alerts, dict):
            for i, (aid, alert) in enumerate(alerts.items(), 1):
                if isinstance(alert, dict):
                    text = obj.get("title") if alarm_text is None else alarm_text
                    self.alert(str(aid), i, _clean(alert), str(text or "Reminder"))
        for c in vendor.get("components") or []:
            _write_jcal_comp(w, c)
        w.end(kind)

    def dtend(self, obj: dict[str, Any], t: _Time, start: str, duration: str, where: str) -> None:
        td = parse_duration(duration, f"{where} duration")
        sdt, _ = parse_local(start[:19], f"{where} start")
        extra = _conv_params(obj, "duration")
        end_zone = None
        for loc in (obj.get("locations") or {}).values():
            if isinstance(loc, dict) and loc.get("relativeTo") == "end" and loc.get("timeZone"):
                end_zone = str(loc["timeZone"])
        if t.is_date:
            edt = sdt + timedelta(days=td.days + (1 if td.seconds else 0))
            self.w.raw("DTEND", ical_date(edt), _merge({"VALUE": "DATE"}, extra))
            return
        if end_zone is not None and end_zone != t.name and t.tz is not None:
            ez = _zone_for(end_zone, obj, self.cal, where)
            a = sdt.replace(tzinfo=t.tz)
            edt = (a + td).astimezone(ez).replace(tzinfo=None)
            if end_zone in _UTC_NAMES:
                self.w.raw("DTEND", ical_local(edt) + "Z", extra)
            else:
                self.w.raw("DTEND", ical_local(edt), _merge({"TZID": _tzid(end_zone, obj)}, extra))
            return
        edt = sdt + td
        self.w.raw("DTEND", ical_local(edt) + ("Z" if t.utc else ""), _merge(t.params, extra))

    def recurrence(self, obj: dict[str, Any], t: _Time, where: str) -> None:
        w = self.w
        rules = obj.get("recurrenceRules")
        if not isinstance(rules, list):
            single = obj.get("recurrenceRule")
            rules = [single] if isinstance(single, dict) else []
        rrules = [self.rrule(r, t, where) for r in rules if isinstance(r, dict)]
        for i, r in enumerate(rrules):
            w.raw("RRULE", r, _conv_params(obj, f"recurrenceRules/{i}"))
        for i, x in enumerate(obj.get("excludedRecurrenceRules") or []):
            if isinstance(x, dict):
                extra = _conv_params(obj, f"excludedRecurrenceRules/{i}")
                w.raw("EXRULE", self.rrule(x, t, where), extra)
        overrides = obj.get("recurrenceOverrides")
        if not isinstance(overrides, dict) or not overrides:
            return
        rdates: list[str] = []
        exdates: list[str] = []
        start = obj.get("start")
        checker = _Occurs(rrules, start, t, where) if isinstance(start, str) else None
        for key, patch in overrides.items():
            if not isinstance(key, str):
                continue
            if isinstance(patch, dict) and patch.get("excluded"):
                exdates.append(t.value(key))
            elif not patch or checker is None or not checker.occurs(key):
                rdates.append(t.value(key))
        if rdates:
            w.raw("RDATE", ",".join(rdates), t.params)
        if exdates:
            w.raw("EXDATE", ",".join(exdates), t.params)

    def rrule(self, rule: dict[str, Any], t: _Time, where: str) -> str:
        rule = _clean(rule)
        until = rule.get("until")
        uval = None
        if isinstance(until, str):
            udt, had_z = parse_local(until[:19] + ("Z" if until.endswith("Z") else ""), where)
            if t.is_date:
                uval = ical_date(udt)
            elif t.utc or had_z:
                uval = ical_local(udt) + "Z"
            elif t.tz is not None:
                uval = ical_local(to_zone(udt, t.tz, iana_zone("Etc/UTC"))) + "Z"
            else:
                uval = ical_local(udt)
        return format_rrule(rule, uval, f"{where} recurrenceRules")

    def scalars(self, kind: str, obj: dict[str, Any]) -> None:
        w = self.w
        kw = obj.get("keywords")
        if isinstance(kw, dict) and kw:
            w.texts(
                "CATEGORIES", [str(k) for k, v in kw.items() if v], _conv_params(obj, "keywords")
            )
        color = obj.get("color")
        if isinstance(color, str):
            w.text("COLOR", color, _conv_params(obj, "color"))
        priv = obj.get("privacy")
        if isinstance(priv, str):
            if priv in T.CLASS_REV:
                w.raw("CLASS", T.CLASS_REV[priv], _conv_params(obj, "privacy"))
            else:
                _json_prop(w, "privacy", priv)
        fb = obj.get("freeBusyStatus")
        if isinstance(fb, str):
            if fb in T.TRANSP_REV:
                w.raw("TRANSP", T.TRANSP_REV[fb], _conv_params(obj, "freeBusyStatus"))
            else:
                _json_prop(w, "freeBusyStatus", fb)
        status = obj.get("status")
        if kind == "VEVENT" and isinstance(status, str):
            if status in T.EVENT_STATUS_REV:
                w.raw("STATUS", T.EVENT_STATUS_REV[status], _conv_params(obj, "status"))
            else:
                _json_prop(w, "status", status)
        prio = obj.get("priority")
        if isinstance(prio, int) and prio:
            w.raw("PRIORITY", str(prio), _conv_params(obj, "priority"))
        seq = obj.get("sequence")
        if isinstance(seq, int):
            w.raw("SEQUENCE", str(seq), _conv_params(obj, "sequence"))

    def people(self, obj: dict[str, Any]) -> None:
        w = self.w
        kind_is_task = obj.get("@type") in ("Task", "jstask")
        parts = obj.get("participants")
        parts = parts if isinstance(parts, dict) else {}
        addr_of: dict[str, str] = {}
        for pid, part in parts.items():
            if isinstance(part, dict):
                a = _address(part)
                if a:
                    addr_of[str(pid)] = a
        has_owner = False
        reply = obj.get("replyTo")
        reply_addr = None
        if isinstance(reply, dict):
            for k in ("imip", "other"):
                if isinstance(reply.get(k), str):
                    reply_addr = reply[k]
                    break
            else:
                reply_addr = next((v for v in reply.values() if isinstance(v, str)), None)
        for pid, raw_part in parts.items():
            if not isinstance(raw_part, dict):
                continue
            part = _clean(raw_part)
            pid = str(pid)
            roles = part.get("roles") if isinstance(part.get("roles"), dict) else {}
            assert isinstance(roles, dict)
            roles = {k for k, v in roles.items() if v}
            addr = addr_of.get(pid)
            if addr is None:
                if roles == {"contact"} and isinstance(part.get("name"), str):
                    w.text("CONTACT", part["name"], _conv_params(obj, f"participants/{pid}"))
                elif part.get("kind") == "resource" and isinstance(part.get("name"), str):
                    w.text("RESOURCES", part["name"], _conv_params(obj, f"participants/{pid}"))
                else:
                    _json_prop(w, f"participants/{pid}", raw_part)
                continue
            common: dict[str, Any] = {}
            name = part.get("name")
            if isinstance(name, str) and name:
                common["CN"] = name
            email = part.get("email")
            if isinstance(email, str) and email and addr.lower() != "mailto:" + email.lower():
                common["EMAIL"] = email
            if pid != _pid(addr):
                common["X-JMAP-ID"] = pid
            sa = part.get("scheduleAgent")
            if isinstance(sa, str) and sa:
                common["SCHEDULE-AGENT"] = sa.upper()
            if part.get("scheduleForceSend"):
                common["SCHEDULE-FORCE-SEND"] = "REQUEST"
            ss = part.get("scheduleStatus")
            if isinstance(ss, list) and ss:
                common["SCHEDULE-STATUS"] = [str(x) for x in ss]
            sb = part.get("sentBy")
            if isinstance(sb, str) and sb:
                common["SENT-BY"] = sb if ":" in sb else "mailto:" + sb
            lang = part.get("language")
            if isinstance(lang, str) and lang:
                common["LANGUAGE"] = lang
            kind = part.get("kind")
            cutype = None
            if isinstance(kind, str):
                cutype = T.CUTYPE_REV.get(kind, kind.upper())
            if "owner" in roles:
                has_owner = True
                org = reply_addr if reply_addr and reply_addr.lower() == addr.lower() else addr
                w.raw("ORGANIZER", org, _merge(common, _conv_params(obj, "replyTo")))
                if roles == {"owner"}:
                    continue
            params = dict(common)
            if cutype:
                params["CUTYPE"] = cutype
            if "chair" in roles:
                params["ROLE"] = "CHAIR"
            elif "optional" in roles:
                params["ROLE"] = "OPT-PARTICIPANT"
            elif "informational" in roles and "attendee" not in roles:
                params["ROLE"] = "NON-PARTICIPANT"
            ps = part.get("participationStatus")
            progress = part.get("progress")
            consumed = {"roles"}
            if kind_is_task and progress in ("in-process", "completed") and ps == "accepted":
                params["PARTSTAT"] = str(progress).upper()
                consumed.add("progress")
            elif isinstance(ps, str) and ps:
                params["PARTSTAT"] = T.PARTSTAT_REV.get(ps, ps.upper())
            if part.get("expectReply"):
                params["RSVP"] = "TRUE"
            for key, param in (
                ("delegatedTo", "DELEGATED-TO"),
                ("delegatedFrom", "DELEGATED-FROM"),
                ("memberOf", "MEMBER"),
            ):
                ids = part.get(key)
                if isinstance(ids, dict) and ids:
                    vals = [addr_of[i] for i, on in ids.items() if on and i in addr_of]
                    if vals:
                        params[param] = vals
            w.raw("ATTENDEE", addr, _merge(params, _conv_params(obj, f"participants/{pid}")))
            for k, v in part.items():
                if k not in _PART_MAPPED and k not in consumed:
                    _json_prop(w, f"participants/{pid}/{k}", v)
            extra_roles = roles - {"owner", "attendee", "chair", "optional", "informational"}
            if extra_roles:
                _json_prop(w, f"participants/{pid}/roles", raw_part.get("roles"))
        if not has_owner and isinstance(reply_addr, str):
            w.raw("ORGANIZER", reply_addr, _conv_params(obj, "replyTo"))

    def places(self, obj: dict[str, Any]) -> None:
        w = self.w
        locs = obj.get("locations")
        geo_done = False
        loc_n = 0
        if isinstance(locs, dict):
            for lid, raw_loc in locs.items():
                if not isinstance(raw_loc, dict):
                    continue
                loc = _clean(raw_loc)
                lid = str(lid)
                if loc.get("relativeTo") == "end" and set(loc) <= {
                    "@type",
                    "relativeTo",
                    "timeZone",
                }:
                    continue  # expressed by DTEND's TZID
                name = loc.get("name")
                coords = loc.get("coordinates")
                if isinstance(name, str):
                    # several LOCATIONs are not RFC 5545, but they are what we read
                    loc_n += 1
                    params: dict[str, Any] = {}
                    links = loc.get("links")
                    link = links.get("1") if isinstance(links, dict) and len(links) == 1 else None
                    altrep = (
                        isinstance(link, dict)
                        and set(link) <= {"@type", "href"}
                        and isinstance(link.get("href"), str)
                    )
                    if altrep:
                        assert isinstance(link, dict)
                        params["ALTREP"] = link["href"]
                    if lid != str(loc_n):
                        params["X-JMAP-ID"] = lid
                    w.text("LOCATION", name, _merge(params, _conv_params(obj, f"locations/{lid}")))
                    if isinstance(coords, str) and coords.startswith("geo:") and not geo_done:
                        geo_done = True
                        w.raw("GEO", _geo(coords), _conv_params(obj, "geo"))
                    elif coords is not None:
                        _json_prop(w, f"locations/{lid}/coordinates", coords)
                    rest = set(loc) - {
                        "@type",
                        "name",
                        "coordinates",
                        *(["links"] if altrep else []),
                    }
                    for k in rest:
                        _json_prop(w, f"locations/{lid}/{k}", loc[k])
                elif (
                    lid == "geo"
                    and set(loc) <= {"@type", "coordinates"}
                    and isinstance(coords, str)
                    and coords.startswith("geo:")
                    and not geo_done
                ):
                    geo_done = True
                    w.raw("GEO", _geo(coords), _conv_params(obj, "geo"))
                else:
                    _json_prop(w, f"locations/{lid}", raw_loc)
        vlocs = obj.get("virtualLocations")
        if isinstance(vlocs, dict):
            for i, (vid, raw_vl) in enumerate(vlocs.items(), 1):
                if not isinstance(raw_vl, dict):
                    continue
                vl = _clean(raw_vl)
                uri = vl.get("uri")
                if not isinstance(uri, str):
                    _json_prop(w, f"virtualLocations/{vid}", raw_vl)
                    continue
                params = {"VALUE": "URI"}
                if isinstance(vl.get("name"), str):
                    params["LABEL"] = vl["name"]
                feats = vl.get("features")
                if isinstance(feats, dict) and feats:
                    params["FEATURE"] = [str(f).upper() for f, on in feats.items() if on]
                if str(vid) != str(i):
                    params["X-JMAP-ID"] = str(vid)
                w.raw(
                    "CONFERENCE", uri, _merge(params, _conv_params(obj, f"virtualLocations/{vid}"))
                )
                for k in set(vl) - {"@type", "uri", "name", "features"}:
                    _json_prop(w, f"virtualLocations/{vid}/{k}", vl[k])
        links = obj.get("links")
        if isinstance(links, dict):
            n = 0
            ordered = sorted(
                links.items(),
                key=lambda kv: (
                    0 if isinstance(kv[1], dict) and kv[1].get("rel") == "describedby" else 1
                ),
            )
            for lid, raw_link in ordered:
                if not isinstance(raw_link, dict):
                    continue
                link = _clean(raw_link)
                href = link.get("href")
                if not isinstance(href, str):
                    _json_prop(w, f"links/{lid}", raw_link)
                    continue
                n += 1
                extra = _conv_params(obj, f"links/{lid}")
                idp = {"X-JMAP-ID": str(lid)} if str(lid) != str(n) else {}
                if link.get("rel") == "describedby" and set(link) <= {"@type", "href", "rel"}:
                    # several URLs are not RFC 5545, but they are what we read
                    w.raw("URL", href, _merge(idp, extra))
                    continue
                params = dict(idp)
                ctype = link.get("contentType")
                value = href
                if href.startswith("data:") and ";base64," in href:
                    head, _, value = href.partition(";base64,")
                    params["ENCODING"] = "BASE64"
                    params["VALUE"] = "BINARY"
                    ctype = ctype or head[5:] or None
                if isinstance(ctype, str):
                    params["FMTTYPE"] = ctype
                if isinstance(link.get("size"), int):
                    params["SIZE"] = str(link["size"])
                if isinstance(link.get("title"), str):
                    params["FILENAME"] = link["title"]
                w.raw("ATTACH", value, _merge(params, extra))
                rest = set(link) - {"@type", "href", "contentType", "size", "title"}
                if link.get("rel") == "enclosure":
                    rest.discard("rel")
                elif "rel" not in link:
                    # ATTACH reads back as rel "enclosure"; a null patch removes it again
                    _json_prop(w, f"links/{lid}/rel", None)
                for k in rest:
                    _json_prop(w, f"links/{lid}/{k}", link[k])

    def relations(self, obj: dict[str, Any]) -> None:
        rel = obj.get("relatedTo")
        if not isinstance(rel, dict):
            return
        for ruid, r in rel.items():
            types = []
            if isinstance(r, dict) and isinstance(r.get("relation"), dict):
                types = [k for k, v in r["relation"].items() if v]
            if not types:
                self.w.text("RELATED-TO", str(ruid), _conv_params(obj, f"relatedTo/{ruid}"))
                continue
            for ty in types:
                reltype = T.RELTYPE_REV.get(ty, ty.upper())
                params = {} if reltype == "PARENT" else {"RELTYPE": reltype}
                extra = _conv_params(obj, f"relatedTo/{ruid}")
                self.w.text("RELATED-TO", str(ruid), _merge(params, extra))

    def alert(self, aid: str, index: int, alert: dict[str, Any], text: str) -> None:
        """Alert → VALARM; ``text`` fills the DESCRIPTION/SUMMARY RFC 5545 §3.6.6 requires.

        Instances get the master's text, so an unchanged alert stays out of their patch.
        """
        w = self.w
        w.begin("VALARM")
        vendor = alert.get(VENDOR) if isinstance(alert.get(VENDOR), dict) else {}
        assert isinstance(vendor, dict)
        unmapped = [p for p in vendor.get("properties") or [] if isinstance(p, list) and p]
        names = {str(p[0]).upper() for p in unmapped}
        if aid != str(index):
            w.text("UID", aid)
        action = str(alert.get("action") or "display")
        if "ACTION" not in names:
            w.raw("ACTION", T.ACTION_REV.get(action, "DISPLAY"))
        trig = alert.get("trigger")
        if isinstance(trig, dict):
            ttype = trig.get("@type")
            if ttype == "AbsoluteTrigger" and isinstance(trig.get("when"), str):
                w.raw("TRIGGER", local_to_ical_value(trig["when"]), {"VALUE": "DATE-TIME"})
            elif isinstance(trig.get("offset"), str):
                params = {"RELATED": "END"} if trig.get("relativeTo") == "end" else None
                w.raw("TRIGGER", trig["offset"], params)
            else:
                _json_prop(w, "trigger", trig)
        elif "TRIGGER" not in names:
            w.raw("TRIGGER", "PT0S")
        ack = alert.get("acknowledged")
        if isinstance(ack, str):
            w.raw("ACKNOWLEDGED", local_to_ical_value(ack))
        rel = alert.get("relatedTo")
        if isinstance(rel, dict):
            for ruid, r in rel.items():
                types = (
                    [k for k, v in (r.get("relation") or {}).items() if v]
                    if isinstance(r, dict)
                    else []
                )
                w.text("RELATED-TO", str(ruid), {"RELTYPE": types[0].upper()} if types else None)
        # RFC 5545 §3.6.6 requires these; a reader may refuse the alarm without them
        if "DESCRIPTION" not in names and "ACTION" not in names:
            w.text("DESCRIPTION", text)
        if action == "email" and "SUMMARY" not in names and "ACTION" not in names:
            w.text("SUMMARY", text)
        for p in unmapped:
            _write_jcal_prop(w, p)
        for c in vendor.get("components") or []:
            _write_jcal_comp(w, c)
        w.end("VALARM")


def _geo(coords: str) -> str:
    body = coords[4:].split(";")[0]
    lat, _, lon = body.partition(",")
    return f"{lat};{lon.split(',')[0]}"


_FAST_FREQS = ("FREQ=HOURLY", "FREQ=MINUTELY", "FREQ=SECONDLY")
_COUNT = re.compile(r"(?:^|;)COUNT=(\d+)")


class _Occurs:
    """Whether a recurrence id is produced by the RRULEs (else the override is an RDATE)."""

    def __init__(self, rrules: list[str], start: str, t: _Time, where: str) -> None:
        self.rrules = rrules
        self.start = start
        self.t = t
        self.where = where
        self._set: Any = None

    def occurs(self, key: str) -> bool:
        if not self.rrules:
            return False
        if any(f in r for r in self.rrules for f in _FAST_FREQS):
            # dateutil walks every occurrence up to the key: far too slow for these; not adding
            # an RDATE is the choice that never adds an occurrence
            return True
        if self._set is False:
            return True
        if self._set is None:
            from dateutil.rrule import rruleset, rrulestr

            dtstart, _ = parse_local(self.start[:19], self.where)
            rs = rruleset()
            for r in self.rrules:
                # compare in local wall time: UNTIL in UTC is moved to local first
                local_rule = r
                if "UNTIL=" in r and self.t.tz is not None and not self.t.utc:
                    parts = r.split(";")
                    for i, part in enumerate(parts):
                        if part.startswith("UNTIL=") and part.endswith("Z"):
                            u, _ = parse_local(_ical_to_local(part[6:-1]), self.where)
                            loc = to_zone(u, iana_zone("Etc/UTC"), self.t.tz)
                            parts[i] = "UNTIL=" + ical_local(loc)
                    local_rule = ";".join(parts)
                elif "UNTIL=" in r:
                    local_rule = r.replace("Z", "")
                try:
                    parsed = rrulestr(local_rule, dtstart=dtstart, ignoretz=True)
                    if isinstance(parsed, rruleset):
                        raise TypeError("a set where one rule was expected")
                    count = _COUNT.search(local_rule)
                    # the start counts towards COUNT even where the rule does not match it
                    parsed = counted_from_start(parsed, int(count[1]) if count else None, dtstart)
                    if parsed != ():
                        rs.rrule(parsed)
                except (ValueError, TypeError):
                    # dateutil lacks RSCALE and a few other parts: then we cannot tell, and
                    # writing no RDATE is the choice that never adds an occurrence
                    self._set = False
                    return True
            self._set = rs
        kdt, _ = parse_local(key[:19], self.where)
        try:
            return bool(kdt in self._set)
        except (ValueError, TypeError):
            return False


def _ical_to_local(v: str) -> str:
    return f"{v[0:4]}-{v[4:6]}-{v[6:8]}T{v[9:11]}:{v[11:13]}:{v[13:15]}"


def jscal_objects_to_ical(objs: Iterable[dict[str, Any]]) -> str:
    cal = _Cal()
    ow = _ObjWriter(cal)
    n = 0
    for i, obj in enumerate(objs):
        if not isinstance(obj, dict):
            raise ConversionError(
                f"expected a JSCalendar object, got {type(obj).__name__}", where=f"object {i}"
            )
        ow.write(obj, f"object {i}")
        n += 1
    if n == 0:
        raise ConversionError("no JSCalendar object to convert", where="input")
    head = Writer()
    head.parts.append(_HEAD)
    if cal.method:
        head.raw("METHOD", cal.method.upper())
    for p in cal.cal_props:
        _write_jcal_prop(head, p)
    parts = [head.getvalue()]
    for name in cal.iana:
        parts.append(vtimezone(name))
    for tzid, tzobj in cal.custom.items():
        parts.append(_timezone_text(tzid, tzobj))
    parts.append(cal.w.getvalue())
    if cal.cal_comps:
        tail = Writer()
        for cc in cal.cal_comps:
            _write_jcal_comp(tail, cc)
        parts.append(tail.getvalue())
    parts.append("END:VCALENDAR\r\n")
    return "".join(parts)
