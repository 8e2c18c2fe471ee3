"""Re-encodings of a JSCalendar event for servers that hold less of RFC 8984 than it uses.

Each function takes an IETF-form event (or a PatchObject of top-level keys), returns a new one
with the same occurrences written in what the server can hold, and the JSON pointers of the
parts the new one leaves out ("left out": not in the wire form at all). Nothing here guesses: a
re-encoding is made only when it gives the same recurrence set (RFC 5545 §3.8.5: RRULE and
RDATE add, EXRULE and EXDATE take away, and take precedence), otherwise the part is left out
and named for the caller to report.

* :func:`fold_recurrence_rules`, for servers with one ``recurrenceRule`` and no
  ``excludedRecurrenceRules`` (RFC 8984 §4.3.2, §4.3.4): one unbounded rule stays a rule;
  bounded rules become added dates (``recurrenceOverrides`` entries ``{}``); the occurrences an
  excluded rule removes become ``{"excluded": true}`` entries, when they are finitely many.
* :func:`expand_future_ranges`: an override carrying the iCalendar ``RANGE=THISANDFUTURE``
  (kept as ``jmapsyncd.org:ical/recurrenceIdRange``, which no JSCalendar reader understands)
  becomes one override per affected occurrence, when the series is bounded.
* :func:`replace_custom_zones`, for servers that refuse ``timeZones`` (RFC 8984 §4.7.2).

All expansion is in local wall time (recurrence is defined there, RFC 8984 §4.3.2), with
dateutil. The start is always the first occurrence and counts towards a rule's ``count``
(RFC 5545 §3.3.10), also where the rule does not match it. Calendars repeat every 400
Gregorian years (146,097 days, a whole number of weeks): two endless rules of daily or longer
frequency that share no occurrence in one common period share none at all.

Every walk over a rule's occurrences is bounded (:data:`MAX_WALKED` per rule,
:data:`MAX_WALKED_PER_EVENT` per call); an endless rule of a frequency below daily is never
walked. What a bound stops is left out and named, like any part with no exact form. (dateutil
also walks the periods of a rule that never matches up to the year 9999 before it ends: a few
seconds for a daily rule, a few times at most per rule and call.)
"""

from __future__ import annotations

import copy
import itertools
import json
import math
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any

from jmapsyncd.convert._patch import escape_segment
from jmapsyncd.convert._rrule import counted_from_start, format_rrule
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
#: most occurrences of one rule walked (to prove two endless rules never meet, or to test
#: whether a date is one of them)
MAX_WALKED = 200_000
#: most occurrences walked in all, per call
MAX_WALKED_PER_EVENT = 1_000_000
#: the keys a patch must carry for its series to be re-encoded: without one of them the
#: server's value of it would be combined with a re-encoding made without it
SERIES_KEYS = ("start", "recurrenceRules", "excludedRecurrenceRules", "recurrenceOverrides")
_CYCLE_DAYS = 146_097  # 400 Gregorian years
_CYCLE_MONTHS = 4_800
_MONTHS = {"yearly": 12, "monthly": 1}
_DAYS = {"weekly": 7, "daily": 1}
_SUB_DAILY = frozenset({"hourly", "minutely", "secondly"})


class _CannotExpand(Exception):
    """A rule that cannot be expanded here (RSCALE, too many occurrences, an endless rule of a
    frequency below daily …)."""


def _bounded(rule: dict[str, Any]) -> bool:
    return rule.get("count") is not None or rule.get("until") is not None


def _endless_sub_daily(rule: dict[str, Any]) -> bool:
    return not _bounded(rule) and str(rule.get("frequency", "")).lower() in _SUB_DAILY


def _rrule(rule: dict[str, Any], dtstart: datetime, *, start_counts: bool = True) -> Any:
    """The rule's dates from ``dtstart`` (a dateutil rule, or an empty tuple).

    With ``start_counts`` a ``count`` takes the start as its first occurrence (see
    :func:`counted_from_start`); the start itself is not among the dates unless it matches.
    """
    from dateutil.rrule import rrule, rrulestr

    if str(rule.get("rscale") or "gregorian").lower() != "gregorian":
        raise _CannotExpand("RSCALE")
    until = rule.get("until")
    uval = None
    try:
        if isinstance(until, str):
            udt, _ = parse_local(until[:19], "until")
            uval = ical_local(udt)
        clean = {k: v for k, v in rule.items() if k not in ("until", "rscale", "skip")}
        text = format_rrule(clean, uval, "recurrence rule")
        parsed = rrulestr(text, dtstart=dtstart, ignoretz=True, cache=True)
    except (ConversionError, ValueError, TypeError, OverflowError) as e:
        raise _CannotExpand(str(e)) from None
    if not isinstance(parsed, rrule):
        raise _CannotExpand("not a single rule")
    if not start_counts:
        return parsed
    count = rule.get("count")
    return counted_from_start(parsed, int(count) if isinstance(count, int) else None, dtstart)


def _take(rule: Any, limit: int) -> list[datetime]:
    out = list(itertools.islice(iter(rule), limit + 1))
    if len(out) > limit:
        raise _CannotExpand("too many occurrences")
    return out


class _Budget:
    """How many more occurrences one call may walk."""

    def __init__(self, steps: int = MAX_WALKED_PER_EVENT) -> None:
        self.left = steps

    def spend(self) -> None:
        self.left -= 1
        if self.left < 0:
            raise _CannotExpand("too many occurrences walked")


class _Walk:
    """One rule's occurrences in order, walked once and at most :data:`MAX_WALKED` of them.

    dateutil's ``in`` walks from the start again on each test.
    """

    def __init__(self, rule: Any, budget: _Budget) -> None:
        self._it: Iterator[datetime] | None = iter(rule)
        self._budget = budget
        self._walked = 0
        self.seen: set[datetime] = set()
        self.last: datetime | None = None

    def through(self, end: datetime) -> None:
        """Walk on until past ``end`` or the rule's end."""
        while self._it is not None and (self.last is None or self.last <= end):
            occ = next(self._it, None)
            if occ is None:
                self._it = None
                return
            self._walked += 1
            if self._walked > MAX_WALKED:
                raise _CannotExpand("too many occurrences to walk")
            self._budget.spend()
            self.seen.add(occ)
            self.last = occ

    def __contains__(self, dt: datetime) -> bool:
        self.through(dt)
        return dt in self.seen


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


def _never_meet(
    main: dict[str, Any], main_walk: _Walk, x: dict[str, Any], x_walk: _Walk, dtstart: datetime
) -> bool:
    """Whether two endless rules from the same start share no occurrence, ever."""
    pa, pb = _period_days(main), _period_days(x)
    if pa is None or pb is None:
        return False
    period = math.lcm(pa, pb)
    if period > 4 * _CYCLE_DAYS or dtstart.year + period // 365 + 1 > 9999:
        return False
    end = dtstart + timedelta(days=period)
    main_walk.through(end)
    x_walk.through(end)
    return not any(occ <= end and occ in main_walk.seen for occ in x_walk.seen)


def _key(dt: datetime) -> str:
    return local_str(dt)


def _rule_list(value: Any) -> list[dict[str, Any]]:
    return [r for r in value if isinstance(r, dict)] if isinstance(value, list) else []


def fold_recurrence_rules(
    event: dict[str, Any], *, patch: bool = False
) -> tuple[dict[str, Any], list[str]]:
    """Fold several rules and excluded rules into one rule plus overrides.

    ``event`` is an event, or with ``patch`` a PatchObject of top-level keys. Returns the
    re-encoded copy, whose ``recurrenceRules`` holds at most one rule and which has no
    ``excludedRecurrenceRules``, and the pointers (into ``event``) of the rules left out. An
    event without more than one rule and without excluded rules comes back unchanged.

    Folding needs the whole series: ``start``, and in a patch every one of
    :data:`SERIES_KEYS` (a key the patch lacks keeps the server's value, which the folded
    overrides would replace or contradict). Without it only the first rule is kept, and a
    patch is never given a key it did not carry.
    """
    out = copy.deepcopy(event)
    rules = _rule_list(out.get("recurrenceRules"))
    exrules = _rule_list(out.get("excludedRecurrenceRules"))
    if len(rules) <= 1 and not exrules:
        return out, []
    if "excludedRecurrenceRules" in out:
        out["excludedRecurrenceRules"] = None
    start = out.get("start")
    if not isinstance(start, str) or (patch and any(k not in out for k in SERIES_KEYS)):
        if "recurrenceRules" in out:
            out["recurrenceRules"] = rules[:1] or None
        return out, [
            *(f"recurrenceRules/{i}" for i in range(1, len(rules))),
            *(f"excludedRecurrenceRules/{i}" for i in range(len(exrules))),
        ]
    try:
        dtstart, _ = parse_local(start[:19], "start")
    except ConversionError:
        out["recurrenceRules"] = rules[:1] or None
        return out, [
            *(f"recurrenceRules/{i}" for i in range(1, len(rules))),
            *(f"excludedRecurrenceRules/{i}" for i in range(len(exrules))),
        ]
    left_out: list[str] = []
    budget = _Budget()
    endless = [i for i, r in enumerate(rules) if not _bounded(r)]
    main_index = endless[0] if endless else 0
    main = rules[main_index] if rules else None
    out["recurrenceRules"] = [main] if main is not None else None
    overrides = out.get("recurrenceOverrides")
    overrides = dict(overrides) if isinstance(overrides, dict) else {}

    main_walk: _Walk | None = None
    if main is not None and not _endless_sub_daily(main):
        try:
            main_walk = _Walk(_rrule(main, dtstart), budget)
        except _CannotExpand:
            main_walk = None

    def in_main(dt: datetime) -> bool:
        if dt == dtstart:
            return True
        return main_walk is not None and dt in main_walk

    # other rules: bounded ones become added dates
    added: list[datetime] = []
    for i, rule in enumerate(rules):
        if i == main_index:
            continue
        if not _bounded(rule) or main_walk is None:
            left_out.append(f"recurrenceRules/{i}")
            continue
        try:
            occurrences = _take(_rrule(rule, dtstart), MAX_EXPANDED)
            new = [occ for occ in occurrences if not in_main(occ)]
        except _CannotExpand:
            left_out.append(f"recurrenceRules/{i}")
            continue
        for occ in new:
            added.append(occ)
            overrides.setdefault(_key(occ), {})
    # excluded rules: the occurrences they take away become exclusions
    finite: set[datetime] = {dtstart, *added}
    for key, value in overrides.items():
        if isinstance(key, str) and not (isinstance(value, dict) and value.get("excluded")):
            try:
                finite.add(parse_local(key[:19], "recurrenceOverrides")[0])
            except ConversionError:
                continue
    done: dict[str, list[datetime] | None] = {}
    for i, xrule in enumerate(exrules):
        same = json.dumps(xrule, sort_keys=True, default=str)
        if same not in done:
            try:
                done[same] = _excluded_by(xrule, main, main_walk, dtstart, finite, budget)
            except _CannotExpand:
                done[same] = None
        excluded = done[same]
        if excluded is None:
            left_out.append(f"excludedRecurrenceRules/{i}")
            continue
        for occ in excluded:
            overrides[_key(occ)] = {"excluded": True}
    if overrides or "recurrenceOverrides" in out:
        out["recurrenceOverrides"] = overrides or None
    return out, left_out


def _excluded_by(
    xrule: dict[str, Any],
    main: dict[str, Any] | None,
    main_walk: _Walk | None,
    dtstart: datetime,
    finite: set[datetime],
    budget: _Budget,
) -> list[datetime]:
    """The occurrences ``xrule`` removes, or _CannotExpand when they are not finitely many.

    An excluded rule's ``count`` is taken as dateutil takes it (RFC 8984 does not say whether
    a start the excluded rule does not match counts for it; the start is taken out only when
    the rule matches it).
    """
    if _endless_sub_daily(xrule):
        raise _CannotExpand("an endless rule below daily")
    x = _rrule(xrule, dtstart, start_counts=False)
    x_walk = _Walk(x, budget)
    found = {occ for occ in sorted(finite) if occ in x_walk}
    if main is None:
        return sorted(found)
    if main_walk is None:
        raise _CannotExpand("the main rule cannot be expanded")
    if _bounded(xrule):
        found |= {occ for occ in _take(x, MAX_EXPANDED) if occ in main_walk}
    elif _bounded(main):
        found |= {occ for occ in _take(_rrule(main, dtstart), MAX_EXPANDED) if occ in x_walk}
    elif not _never_meet(main, main_walk, xrule, x_walk, dtstart):
        raise _CannotExpand("two endless rules that meet")
    return sorted(found)


def _occurrences(event: dict[str, Any]) -> Iterator[datetime]:
    """Every occurrence (recurrence id) of a bounded event, in order; _CannotExpand if endless."""
    start = event.get("start")
    if not isinstance(start, str):
        raise _CannotExpand("no start")
    dtstart, _ = parse_local(start[:19], "start")
    rules = _rule_list(event.get("recurrenceRules"))
    if any(not _bounded(r) for r in rules):
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
    # RFC 5545 §3.8.5: what an excluded rule generates is taken out, whatever added it
    budget = _Budget()
    for xrule in _rule_list(event.get("excludedRecurrenceRules")):
        if _endless_sub_daily(xrule):
            raise _CannotExpand("an endless rule below daily")
        walk = _Walk(_rrule(xrule, dtstart, start_counts=False), budget)
        found = {occ for occ in sorted(found) if occ not in walk}
    return iter(sorted(found))


def _shifted_start(patch: dict[str, Any], rid: datetime, occ: datetime) -> dict[str, Any]:
    """The range patch applied to ``occ``: a moved start moves by the same amount."""
    out = {k: copy.deepcopy(v) for k, v in patch.items() if k != RANGE_KEY}
    start = out.get("start")
    if isinstance(start, str):
        moved, _ = parse_local(start[:19], "recurrenceOverrides start")
        out["start"] = local_str(occ + (moved - rid))
    return out


def expand_future_ranges(
    event: dict[str, Any], *, patch: bool = False
) -> tuple[dict[str, Any], list[str]]:
    """Write each THISANDFUTURE override of a bounded series as per-occurrence overrides.

    RFC 5545 §3.8.4.4: the instance's changes apply to it and every later one; a changed start
    shifts the later ones by the same amount (RFC 5545 §3.8.4.4, DTSTART of the range). A later
    occurrence's own override is applied on top, and a later THISANDFUTURE override starts a
    new range. Returns the copy and the pointers of the range keys that could not be expanded
    (an endless series; in a patch, one that lacks any of :data:`SERIES_KEYS`); those keys are
    left as they were, for the caller to leave out.
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
    unexpanded = [f"recurrenceOverrides/{k}/{RANGE_KEY}" for k in ranged]
    if patch and any(k not in out for k in SERIES_KEYS):
        return out, unexpanded
    new: dict[str, Any] = dict(overrides)
    try:
        occurrences = list(_occurrences(out))
        for n, key in enumerate(ranged):
            rid, _ = parse_local(key[:19], "recurrenceOverrides")
            until = parse_local(ranged[n + 1][:19], "")[0] if n + 1 < len(ranged) else None
            range_patch = overrides[key]
            new[key] = {k: v for k, v in range_patch.items() if k != RANGE_KEY}
            for occ in occurrences:
                if occ <= rid or (until is not None and occ >= until):
                    continue
                own = overrides.get(_key(occ))
                applied = _shifted_start(range_patch, rid, occ)
                if isinstance(own, dict) and own:
                    applied.update(own)
                new[_key(occ)] = applied
    except (_CannotExpand, ConversionError, OverflowError):
        return out, unexpanded
    out["recurrenceOverrides"] = new
    return out, []


# --------------------------------------------------------------------------- custom time zones

#: the last year custom zones are compared with IANA zones for an endless series
LAST_COMPARED_YEAR = 2037
_UTC_NAME = "Etc/UTC"


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
    """Whether ``a`` and ``b`` give the same UTC offset at every instant of [lo, hi].

    Offsets are compared once a day and each change is located to the minute in both zones.
    Two changes within one day that cancel out are not seen: tzinfo does not list its
    transitions, and sampling every minute of decades would cost seconds per candidate zone.
    """
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
    """The UTC instants from the event's start to the end of its last occurrence.

    For an endless series: through 2037, and at least one full year (every transition of a
    yearly zone rule) past the start. ConversionError when the span leaves the years 1 to 9999.
    """
    start = event.get("start")
    if not isinstance(start, str):
        return None
    dtstart, _ = parse_local(start[:19], "start")
    duration = event.get("duration")
    length = parse_duration(duration, "duration") if isinstance(duration, str) else timedelta(0)
    try:
        last = dtstart
        if event.get("recurrenceRules") or event.get("recurrenceOverrides"):
            try:
                last = max(_occurrences(event))
            except (_CannotExpand, ConversionError):
                last = max(
                    dtstart + timedelta(days=366),
                    datetime(LAST_COMPARED_YEAR, 12, 31, 23, 59),
                )
            for patch in (event.get("recurrenceOverrides") or {}).values():
                moved = patch.get("start") if isinstance(patch, dict) else None
                if isinstance(moved, str):
                    last = max(last, parse_local(moved[:19], "recurrenceOverrides start")[0])
        lo = dtstart.replace(tzinfo=tz).astimezone(UTC) - timedelta(days=1)
        end = last + max(length, timedelta(0))
        hi = end.replace(tzinfo=tz).astimezone(UTC) + timedelta(days=1)
    except (OverflowError, ValueError) as e:
        raise ConversionError("the event's times leave the years 1 to 9999", where="start") from e
    return lo, hi


#: where a zone is named: (the dict holding the name, its key there, the pointer, whether it
#: is the zone of a start rather than a location's end zone)
_Use = tuple[dict[str, Any], str, str, bool]


def _zone_uses(out: dict[str, Any], zid: str) -> list[_Use]:
    """Every place ``out`` names the zone ``zid``.

    The event's ``timeZone`` and its locations' end zones, and the same inside each override
    (whole values or patch pointers, RFC 8984 §4.3.5).
    """
    uses: list[_Use] = []

    def locations(value: Any, base: str) -> None:
        for lid, loc in value.items() if isinstance(value, dict) else ():
            if isinstance(loc, dict) and loc.get("timeZone") == zid:
                uses.append((loc, "timeZone", f"{base}/{escape_segment(lid)}/timeZone", False))

    if out.get("timeZone") == zid:
        uses.append((out, "timeZone", "timeZone", True))
    locations(out.get("locations"), "locations")
    overrides = out.get("recurrenceOverrides")
    for rid, patch in overrides.items() if isinstance(overrides, dict) else ():
        if not isinstance(patch, dict):
            continue
        base = f"recurrenceOverrides/{rid}"
        for key, value in patch.items():
            head, _, rest = key.partition("/")
            if key == "timeZone" and value == zid:
                uses.append((patch, key, f"{base}/{key}", True))
            elif head == "locations" and rest.endswith("/timeZone") and value == zid:
                uses.append((patch, key, f"{base}/{key}", False))
            elif key == "locations":
                locations(value, f"{base}/locations")
            elif (
                head == "locations"
                and "/" not in rest
                and isinstance(value, dict)
                and value.get("timeZone") == zid
            ):
                uses.append((value, "timeZone", f"{base}/{key}/timeZone", False))
    return uses


def replace_custom_zones(event: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """Re-encode an event whose time zones are custom (RFC 8984 §4.7.2) without ``timeZones``.

    For a server that refuses ``timeZones``. A custom zone is replaced, wherever the event or
    one of its overrides names it (``timeZone``, a location's end zone), by the IANA zone with
    the same UTC offsets from the event's start to the end of its last occurrence (through
    2037, and at least a year, for an endless series), so every occurrence is the same
    instant. Without such a zone, a non-recurring event is written in UTC with the exact
    duration, and location end zones (how an end is shown) are removed. The definitions (and
    the custom names) are then left out: the returned pointers name them, ``timeZones/<id>``,
    and each end zone removed (``locations/<id>`` when the location went with it).

    A zone that cannot be replaced that way (the start of a recurring event or of an override
    is in it and no IANA zone matches; no definition; times beyond the years 1 to 9999) stays in
    ``timeZones`` as it was and is not among the pointers: it is sent, and a server that
    refuses it refuses the event (measured on Cyrus 3.6 and 3.10: ``invalidProperties``
    ``timeZones``, which is never left out).
    """
    from jmapsyncd.convert.js2ical import _custom_tzinfo

    out = copy.deepcopy(event)
    zones = out.get("timeZones")
    if not isinstance(zones, dict) or not zones:
        return out, []
    left_out: list[str] = []
    kept: dict[str, Any] = {}
    recurring = bool(out.get("recurrenceRules") or out.get("recurrenceOverrides"))
    for zid, zobj in zones.items():
        pointer = "timeZones/" + escape_segment(zid)
        if not isinstance(zobj, dict):
            left_out.append(pointer)  # not a definition: nothing a server could hold
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
            uses = _zone_uses(out, zid)
            if name is not None:
                for container, key, _, _ in uses:
                    container[key] = name
                left_out.append(pointer)
                continue
            if recurring and any(starts for *_, starts in uses):
                raise ConversionError("no IANA zone has its offsets", where=pointer)
            left_out.extend(_without_zone(out, zid, tz, uses))
            left_out.append(pointer)
        except (ConversionError, OverflowError, ValueError):
            kept[zid] = zobj
    if kept:
        out["timeZones"] = kept
    elif "timeZones" in out:
        out["timeZones"] = None
    if isinstance(out.get("locations"), dict) and not out["locations"]:
        out["locations"] = None
    return out, left_out


def _without_zone(out: dict[str, Any], zid: str, tz: tzinfo, uses: list[_Use]) -> list[str]:
    """Take the unmatched custom zone ``zid`` out of ``out``; the pointers left out.

    A non-recurring event's start in that zone is written in UTC with the exact duration,
    which keeps its instants. A location's end zone (how the end is shown) has no replacement
    and goes, and an event's location with it when nothing else is left of it.
    """
    gone: list[str] = []
    if out.get("timeZone") == zid and isinstance(out.get("start"), str):
        start, _ = parse_local(out["start"][:19], "start")
        duration = out.get("duration")
        length = parse_duration(duration, "duration") if isinstance(duration, str) else None
        begin = start.replace(tzinfo=tz).astimezone(UTC)
        end = None if length is None else (start + length).replace(tzinfo=tz).astimezone(UTC)
        out["start"] = local_str(begin.replace(tzinfo=None))
        out["timeZone"] = _UTC_NAME
        if end is not None:
            out["duration"] = fmt_duration(end - begin, exact=True)
    for container, key, where, starts in uses:
        if starts:
            continue
        del container[key]
        gone.append(where)
    locations = out.get("locations")
    if not isinstance(locations, dict):
        return gone
    for lid, loc in list(locations.items()):
        where = f"locations/{escape_segment(lid)}/timeZone"
        if where in gone and isinstance(loc, dict) and set(loc) <= {"@type", "relativeTo"}:
            del locations[lid]
            gone[gone.index(where)] = "locations/" + escape_segment(lid)
    return gone
