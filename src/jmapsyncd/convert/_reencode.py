"""Re-encodings of a JSCalendar event for servers that hold less of RFC 8984 than it uses.

Each function takes an IETF-form event (or a PatchObject of top-level keys), returns a new one
with the same occurrences written in what the server can hold, and the JSON pointers of the
parts it could not carry. Nothing here guesses: a re-encoding is made only when it gives the
same recurrence set (RFC 5545 §3.8.5: RRULE and RDATE add, EXRULE and EXDATE take away, and
take precedence), otherwise the part is named as lost and left for the caller to report.

* :func:`fold_recurrence_rules`, for servers with one ``recurrenceRule`` and no
  ``excludedRecurrenceRules`` (RFC 8984 §4.3.2, §4.3.4): one unbounded rule stays a rule;
  bounded rules become added dates (``recurrenceOverrides`` entries ``{}``); the occurrences an
  excluded rule removes become ``{"excluded": true}`` entries, when they are finitely many.
* :func:`expand_future_ranges`: an override carrying the iCalendar ``RANGE=THISANDFUTURE``
  (kept as ``jmapsyncd.org:ical/recurrenceIdRange``, which no JSCalendar reader understands)
  becomes one override per affected occurrence, when the series is bounded.

All expansion is in local wall time (recurrence is defined there, RFC 8984 §4.3.2), with
dateutil. Calendars repeat every 400 Gregorian years (146,097 days, a whole number of weeks):
two endless rules of daily or longer frequency that share no occurrence in one common period
share none at all.
"""

from __future__ import annotations

import copy
import itertools
import math
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any

from jmapsyncd.convert._rrule import format_rrule
from jmapsyncd.convert._time import (
    fmt_duration,
    ical_local,
    local_str,
    parse_duration,
    parse_local,
)
from jmapsyncd.convert.ical2js import VENDOR
from jmapsyncd.errors import ConversionError

#: the vendor key in an override patch that keeps iCalendar's RECURRENCE-ID RANGE
RANGE_KEY = VENDOR + "/recurrenceIdRange"
#: most occurrences one rule may be expanded to; beyond this the rule is reported instead
MAX_EXPANDED = 2000
#: most occurrences walked while proving that two endless rules never meet
MAX_WALKED = 200_000
_CYCLE_DAYS = 146_097  # 400 Gregorian years
_CYCLE_MONTHS = 4_800
_MONTHS = {"yearly": 12, "monthly": 1}
_DAYS = {"weekly": 7, "daily": 1}


class _CannotExpand(Exception):
    """A rule dateutil cannot expand (RSCALE, a sub-daily frequency where one is needed …)."""


def _bounded(rule: dict[str, Any]) -> bool:
    return rule.get("count") is not None or rule.get("until") is not None


def _rrule(rule: dict[str, Any], dtstart: datetime) -> Any:
    from dateutil.rrule import rrule, rrulestr

    if str(rule.get("rscale") or "gregorian").lower() != "gregorian":
        raise _CannotExpand("RSCALE")
    until = rule.get("until")
    uval = None
    if isinstance(until, str):
        udt, _ = parse_local(until[:19], "until")
        uval = ical_local(udt)
    clean = {k: v for k, v in rule.items() if k not in ("until", "rscale", "skip")}
    try:
        text = format_rrule(clean, uval, "recurrence rule")
        parsed = rrulestr(text, dtstart=dtstart, ignoretz=True)
    except (ConversionError, ValueError, TypeError) as e:
        raise _CannotExpand(str(e)) from None
    if not isinstance(parsed, rrule):
        raise _CannotExpand("not a single rule")
    return parsed


def _take(rule: Any, limit: int) -> list[datetime]:
    out = list(itertools.islice(iter(rule), limit + 1))
    if len(out) > limit:
        raise _CannotExpand("too many occurrences")
    return out


def _period_days(rule: dict[str, Any]) -> int | None:
    """Days after which the rule's pattern repeats (a multiple of the 400-year cycle)."""
    freq = str(rule.get("frequency", "")).lower()
    n = int(rule.get("interval") or 1)
    if freq in _MONTHS:
        months = math.lcm(_MONTHS[freq] * n, _CYCLE_MONTHS)
        return months // _CYCLE_MONTHS * _CYCLE_DAYS
    if freq in _DAYS:
        return math.lcm(_DAYS[freq] * n, _CYCLE_DAYS)
    return None


def _never_meet(a: dict[str, Any], b: dict[str, Any], dtstart: datetime) -> bool:
    """Whether two endless rules from the same start share no occurrence, ever."""
    pa, pb = _period_days(a), _period_days(b)
    if pa is None or pb is None:
        return False
    period = math.lcm(pa, pb)
    if period > 4 * _CYCLE_DAYS or dtstart.year + period // 365 + 1 > 9999:
        return False
    end = dtstart + timedelta(days=period)
    seen: set[datetime] = set()
    for n, occ in enumerate(_rrule(a, dtstart).xafter(dtstart, inc=True)):
        if occ > end:
            break
        if n >= MAX_WALKED:
            return False
        seen.add(occ)
    for n, occ in enumerate(_rrule(b, dtstart).xafter(dtstart, inc=True)):
        if occ > end:
            break
        if n >= MAX_WALKED or occ in seen:
            return False
    return True


def _key(dt: datetime) -> str:
    return local_str(dt)


def fold_recurrence_rules(event: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """Fold several rules and excluded rules into one rule plus overrides.

    ``event`` is an event or a replacement PatchObject (top-level keys only; it must carry
    ``start`` to be folded). Returns the re-encoded copy, whose ``recurrenceRules`` holds at most
    one rule and which has no ``excludedRecurrenceRules``, and the pointers (into ``event``) of
    the rules that could not be carried. An event without more than one rule and without
    excluded rules comes back unchanged.
    """
    out = copy.deepcopy(event)
    rules = out.get("recurrenceRules")
    rules = [r for r in rules if isinstance(r, dict)] if isinstance(rules, list) else []
    exrules = out.get("excludedRecurrenceRules")
    exrules = [r for r in exrules if isinstance(r, dict)] if isinstance(exrules, list) else []
    if len(rules) <= 1 and not exrules:
        return out, []
    if "excludedRecurrenceRules" in out:
        out["excludedRecurrenceRules"] = None
    start = out.get("start")
    lost: list[str] = []
    if not isinstance(start, str):
        out["recurrenceRules"] = rules[:1] or None
        lost += [f"recurrenceRules/{i}" for i in range(1, len(rules))]
        lost += [f"excludedRecurrenceRules/{i}" for i in range(len(exrules))]
        return out, lost
    dtstart, _ = parse_local(start[:19], "start")
    endless = [i for i, r in enumerate(rules) if not _bounded(r)]
    main_index = endless[0] if endless else 0
    main = rules[main_index] if rules else None
    out["recurrenceRules"] = [main] if main is not None else None
    overrides = out.get("recurrenceOverrides")
    overrides = dict(overrides) if isinstance(overrides, dict) else {}

    main_rule = None
    if main is not None:
        try:
            main_rule = _rrule(main, dtstart)
        except _CannotExpand:
            main_rule = None

    def in_main(dt: datetime) -> bool:
        if dt == dtstart:
            return True
        return main_rule is not None and dt in main_rule

    # other rules: bounded ones become added dates
    added: list[datetime] = []
    for i, rule in enumerate(rules):
        if i == main_index:
            continue
        if not _bounded(rule) or main_rule is None:
            lost.append(f"recurrenceRules/{i}")
            continue
        try:
            occurrences = _take(_rrule(rule, dtstart), MAX_EXPANDED)
        except _CannotExpand:
            lost.append(f"recurrenceRules/{i}")
            continue
        for occ in occurrences:
            if not in_main(occ):
                added.append(occ)
                overrides.setdefault(_key(occ), {})
    # excluded rules: the occurrences they take away become exclusions
    finite: set[datetime] = {dtstart, *added}
    for key, patch in overrides.items():
        if isinstance(key, str) and not (isinstance(patch, dict) and patch.get("excluded")):
            try:
                finite.add(parse_local(key[:19], "recurrenceOverrides")[0])
            except ConversionError:
                continue
    for i, xrule in enumerate(exrules):
        try:
            excluded = _excluded_by(xrule, main, main_rule, dtstart, finite)
        except _CannotExpand:
            lost.append(f"excludedRecurrenceRules/{i}")
            continue
        for occ in excluded:
            overrides[_key(occ)] = {"excluded": True}
    if overrides or "recurrenceOverrides" in out:
        out["recurrenceOverrides"] = overrides or None
    return out, lost


def _excluded_by(
    xrule: dict[str, Any],
    main: dict[str, Any] | None,
    main_rule: Any,
    dtstart: datetime,
    finite: set[datetime],
) -> list[datetime]:
    """The occurrences ``xrule`` removes, or _CannotExpand when they are not finitely many."""
    x = _rrule(xrule, dtstart)
    found = {occ for occ in finite if occ in x}
    if main is None:
        return sorted(found)
    if main_rule is None:
        raise _CannotExpand("the main rule cannot be expanded")
    if _bounded(xrule):
        found |= {occ for occ in _take(x, MAX_EXPANDED) if occ in main_rule}
    elif _bounded(main):
        found |= {occ for occ in _take(main_rule, MAX_EXPANDED) if occ in x}
    elif not _never_meet(main, xrule, dtstart):
        raise _CannotExpand("two endless rules that meet")
    return sorted(found)


def _occurrences(event: dict[str, Any]) -> Iterator[datetime]:
    """Every occurrence (recurrence id) of a bounded event, in order; _CannotExpand if endless."""
    start = event.get("start")
    if not isinstance(start, str):
        raise _CannotExpand("no start")
    dtstart, _ = parse_local(start[:19], "start")
    rules = event.get("recurrenceRules")
    rules = [r for r in rules if isinstance(r, dict)] if isinstance(rules, list) else []
    if any(not _bounded(r) for r in rules) or event.get("excludedRecurrenceRules"):
        raise _CannotExpand("endless series")
    found: set[datetime] = {dtstart}
    for rule in rules:
        found.update(_take(_rrule(rule, dtstart), MAX_EXPANDED))
    overrides = event.get("recurrenceOverrides")
    for key, patch in (overrides or {}).items() if isinstance(overrides, dict) else ():
        when, _ = parse_local(str(key)[:19], "recurrenceOverrides")
        if isinstance(patch, dict) and patch.get("excluded"):
            found.discard(when)
        else:
            found.add(when)
    if len(found) > MAX_EXPANDED:
        raise _CannotExpand("too many occurrences")
    return iter(sorted(found))


def _shifted_start(patch: dict[str, Any], rid: datetime, occ: datetime) -> dict[str, Any]:
    """The range patch applied to ``occ``: a moved start moves by the same amount."""
    out = {k: copy.deepcopy(v) for k, v in patch.items() if k != RANGE_KEY}
    start = out.get("start")
    if isinstance(start, str):
        moved, _ = parse_local(start[:19], "recurrenceOverrides start")
        out["start"] = local_str(occ + (moved - rid))
    return out


def expand_future_ranges(event: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """Write each THISANDFUTURE override of a bounded series as per-occurrence overrides.

    RFC 5545 §3.8.4.4: the instance's changes apply to it and every later one; a changed start
    shifts the later ones by the same amount (RFC 5545 §3.8.4.4, DTSTART of the range). A later
    occurrence's own override is applied on top, and a later THISANDFUTURE override starts a
    new range. Returns the copy and the pointers of the overrides whose range could not be
    expanded (an endless series); those are left as they were.
    """
    out = copy.deepcopy(event)
    overrides = out.get("recurrenceOverrides")
    if not isinstance(overrides, dict):
        return out, []
    ranged = sorted(
        k
        for k, p in overrides.items()
        if isinstance(p, dict) and str(p.get(RANGE_KEY, "")).upper() == "THISANDFUTURE"
    )
    if not ranged:
        return out, []
    try:
        occurrences = list(_occurrences(out))
    except (_CannotExpand, ConversionError):
        return out, [f"recurrenceOverrides/{k}/{RANGE_KEY}" for k in ranged]
    new: dict[str, Any] = dict(overrides)
    for n, key in enumerate(ranged):
        rid, _ = parse_local(key[:19], "recurrenceOverrides")
        until = parse_local(ranged[n + 1][:19], "")[0] if n + 1 < len(ranged) else None
        patch = overrides[key]
        new[key] = {k: v for k, v in patch.items() if k != RANGE_KEY}
        for occ in occurrences:
            if occ <= rid or (until is not None and occ >= until):
                continue
            own = overrides.get(_key(occ))
            applied = _shifted_start(patch, rid, occ)
            if isinstance(own, dict) and own:
                applied.update(own)
            new[_key(occ)] = applied
    out["recurrenceOverrides"] = new
    return out, []


# --------------------------------------------------------------------------- custom time zones

#: the last year custom zones are compared with IANA zones for an endless series
LAST_COMPARED_YEAR = 2037
_UTC_NAME = "Etc/UTC"


def _pointer(segment: str) -> str:
    """A JSON pointer segment (RFC 6901)."""
    return segment.replace("~", "~0").replace("/", "~1")


def _offset(tz: tzinfo, when: datetime) -> timedelta | None:
    return when.astimezone(tz).utcoffset()


def _change(tz: tzinfo, lo: datetime, hi: datetime) -> datetime:
    """The first minute in (lo, hi] whose offset in ``tz`` differs from lo's."""
    before = _offset(tz, lo)
    while hi - lo > timedelta(minutes=1):
        mid = lo + (hi - lo) / 2
        if _offset(tz, mid) == before:
            lo = mid
        else:
            hi = mid
    return hi.replace(second=0, microsecond=0)


def _same_offsets(a: tzinfo, b: tzinfo, lo: datetime, hi: datetime) -> bool:
    """Whether ``a`` and ``b`` give the same UTC offset at every instant of [lo, hi]."""
    step = timedelta(days=1)
    t = lo
    prev_a, prev_b = _offset(a, t), _offset(b, t)
    if prev_a != prev_b:
        return False
    while t < hi:
        nt = min(t + step, hi)
        cur_a, cur_b = _offset(a, nt), _offset(b, nt)
        if cur_a != cur_b:
            return False
        if (cur_a != prev_a or cur_b != prev_b) and _change(a, t, nt) != _change(b, t, nt):
            return False
        prev_a, prev_b, t = cur_a, cur_b, nt
    return True


def matching_iana_zone(tz: tzinfo, lo: datetime, hi: datetime, abbr: str = "") -> str | None:
    """An IANA zone with the same UTC offsets as ``tz`` over [lo, hi] (aware UTC), or None.

    Zones named by region and city come before ``Etc/`` and old single names; one whose
    abbreviation at ``lo`` is ``abbr`` comes first.
    """
    import zoneinfo

    span = hi - lo
    coarse = [lo + span * (i / 64) for i in range(65)]
    wanted = [_offset(tz, t) for t in coarse]
    found: list[tuple[bool, bool, bool, str]] = []
    for name in zoneinfo.available_timezones():
        try:
            zone = zoneinfo.ZoneInfo(name)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
            continue
        if any(_offset(zone, t) != w for t, w in zip(coarse, wanted, strict=True)):
            continue
        own = lo.astimezone(zone).tzname() == abbr if abbr else False
        found.append((not own, name.startswith("Etc/"), "/" not in name, name))
    for *_, name in sorted(found):
        if _same_offsets(tz, zoneinfo.ZoneInfo(name), lo, hi):
            return name
    return None


def _span(event: dict[str, Any], tz: tzinfo) -> tuple[datetime, datetime] | None:
    """The UTC instants from the event's start to the end of its last occurrence (or 2037)."""
    start = event.get("start")
    if not isinstance(start, str):
        return None
    dtstart, _ = parse_local(start[:19], "start")
    duration = event.get("duration")
    length = parse_duration(duration, "duration") if isinstance(duration, str) else timedelta(0)
    last = dtstart
    if event.get("recurrenceRules") or event.get("recurrenceOverrides"):
        try:
            last = max(_occurrences(event))
        except (_CannotExpand, ConversionError):
            last = max(dtstart, datetime(LAST_COMPARED_YEAR, 12, 31, 23, 59))
        for patch in (event.get("recurrenceOverrides") or {}).values():
            moved = patch.get("start") if isinstance(patch, dict) else None
            if isinstance(moved, str):
                last = max(last, parse_local(moved[:19], "recurrenceOverrides start")[0])
    lo = dtstart.replace(tzinfo=tz).astimezone(UTC) - timedelta(days=1)
    hi = (last + max(length, timedelta(0))).replace(tzinfo=tz).astimezone(UTC) + timedelta(days=1)
    return lo, hi


def replace_custom_zones(event: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """Re-encode an event whose time zones are custom (RFC 8984 §4.7.2) without ``timeZones``.

    For a server that refuses ``timeZones``. A custom zone used as ``timeZone`` (or as a
    location's end zone) is replaced by the IANA zone with the same UTC offsets from the
    event's start to the end of its last occurrence (through 2037 for an endless series), so
    every occurrence is the same instant. Without such a zone, a non-recurring event is written
    in UTC with the exact duration. The definitions (and the custom names) do not travel: their
    pointers are returned, ``timeZones/<id>``, and so are the pointers of zones that could not be
    replaced (a recurring event without a matching IANA zone: then ``timeZones`` stays and the
    server refuses the event).
    """
    from jmapsyncd.convert.js2ical import _custom_tzinfo

    out = copy.deepcopy(event)
    zones = out.get("timeZones")
    if not isinstance(zones, dict) or not zones:
        return out, []
    lost: list[str] = []
    kept: dict[str, Any] = {}
    raw_locations = out.get("locations")
    locations: dict[str, Any] = raw_locations if isinstance(raw_locations, dict) else {}
    for zid, zobj in zones.items():
        pointer = "timeZones/" + _pointer(zid)
        if not isinstance(zobj, dict):
            lost.append(pointer)
            continue
        given = zobj.get("tzId")
        tzid = given if isinstance(given, str) else zid.lstrip("/")
        try:
            if not (zobj.get("standard") or zobj.get("daylight")):
                raise ConversionError("a time zone without rules", where=pointer)
            tz = _custom_tzinfo(tzid, zobj, pointer)
            if tz is None:
                raise ConversionError("no definition", where=pointer)
            span = _span(out, tz)
        except ConversionError:
            kept[zid] = zobj
            lost.append(pointer)
            continue
        if span is None:  # no start: compare over the whole range
            span = (
                datetime(1970, 1, 1, tzinfo=UTC),
                datetime(LAST_COMPARED_YEAR + 1, 1, 1, tzinfo=UTC),
            )
        abbr = ""
        for rule in [*(zobj.get("standard") or []), *(zobj.get("daylight") or [])]:
            names = rule.get("names") if isinstance(rule, dict) else None
            if isinstance(names, dict) and names:
                abbr = str(next(iter(names)))
                break
        name = matching_iana_zone(tz, *span, abbr=abbr)
        lost.append(pointer)
        if name is not None:
            if out.get("timeZone") == zid:
                out["timeZone"] = name
            for loc in locations.values():
                if isinstance(loc, dict) and loc.get("timeZone") == zid:
                    loc["timeZone"] = name
            continue
        if out.get("timeZone") == zid and (
            out.get("recurrenceRules") or out.get("recurrenceOverrides")
        ):
            kept[zid] = zobj  # no faithful form: the server's refusal stands
            continue
        if out.get("timeZone") == zid and isinstance(out.get("start"), str):
            start, _ = parse_local(out["start"][:19], "start")
            duration = out.get("duration")
            length = parse_duration(duration, "duration") if isinstance(duration, str) else None
            begin = start.replace(tzinfo=tz).astimezone(UTC)
            out["start"] = local_str(begin.replace(tzinfo=None))
            out["timeZone"] = _UTC_NAME
            if length is not None:
                end = (start + length).replace(tzinfo=tz).astimezone(UTC)
                out["duration"] = fmt_duration(end - begin, exact=True)
        for lid, loc in list(locations.items()):
            if isinstance(loc, dict) and loc.get("timeZone") == zid:
                del loc["timeZone"]
                if set(loc) <= {"@type", "relativeTo"}:
                    del locations[lid]
    if kept:
        out["timeZones"] = kept
    elif "timeZones" in out:
        out["timeZones"] = None
    if isinstance(out.get("locations"), dict) and not out["locations"]:
        out["locations"] = None
    return out, lost
