"""RRULE/EXRULE ⇄ RecurrenceRule (RFC 5545 §3.3.10, §3.8.5.3 ⇄ RFC 8984 §4.3.3).

Promises: every RRULE part (FREQ, INTERVAL, RSCALE, SKIP, WKST, BYDAY with ordinals, BYMONTHDAY,
BYMONTH with leap suffix, BYYEARDAY, BYWEEKNO, BYHOUR, BYMINUTE, BYSECOND, BYSETPOS, COUNT, UNTIL)
is converted both ways; a malformed rule raises ConversionError naming the part. UNTIL is given
to the caller as a naive date-time plus its form so the caller can apply the event's time zone.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from jmapsyncd.convert._tables import FREQ, FREQ_REV, WEEKDAYS, WEEKDAYS_REV
from jmapsyncd.convert._time import parse_ical_dt
from jmapsyncd.errors import ConversionError

_NDAY = re.compile(r"([+-]?\d{1,2})?(MO|TU|WE|TH|FR|SA|SU)$")
_INTLISTS = {
    "BYMONTHDAY": ("byMonthDay", -31, 31),
    "BYYEARDAY": ("byYearDay", -366, 366),
    "BYWEEKNO": ("byWeekNo", -53, 53),
    "BYHOUR": ("byHour", 0, 23),
    "BYMINUTE": ("byMinute", 0, 59),
    "BYSECOND": ("bySecond", 0, 60),
    "BYSETPOS": ("bySetPosition", -366, 366),
}
_INTLISTS_REV = {v[0]: k for k, v in _INTLISTS.items()}


def _int(v: str, part: str, where: str) -> int:
    try:
        return int(v)
    except ValueError:
        raise ConversionError(f"RRULE {part}={v!r} is not a number", where=where) from None


def parse_rrule(
    value: str, where: str
) -> tuple[dict[str, Any], tuple[datetime, bool, bool] | None]:
    """Parse an RRULE value: (RecurrenceRule without until, (until, is_date, is_utc) or None)."""
    rule: dict[str, Any] = {"@type": "RecurrenceRule"}
    until: tuple[datetime, bool, bool] | None = None
    parts: dict[str, str] = {}
    for item in value.strip().strip(";").split(";"):
        if "=" not in item:
            raise ConversionError(f"RRULE part {item!r} has no '='", where=where)
        k, v = item.split("=", 1)
        parts[k.strip().upper()] = v.strip()
    freq = parts.pop("FREQ", None)
    if freq is None or freq.upper() not in FREQ:
        raise ConversionError(f"RRULE without a valid FREQ: {value!r}", where=where)
    rule["frequency"] = FREQ[freq.upper()]
    for k, v in parts.items():
        if k == "INTERVAL":
            n = _int(v, k, where)
            if n < 1:
                raise ConversionError(f"RRULE INTERVAL={v} must be positive", where=where)
            if n != 1:
                rule["interval"] = n
        elif k == "COUNT":
            rule["count"] = _int(v, k, where)
        elif k == "UNTIL":
            until = parse_ical_dt(v, where + " UNTIL")
        elif k == "WKST":
            if v.upper() not in WEEKDAYS:
                raise ConversionError(f"RRULE WKST={v!r} is not a weekday", where=where)
            if v.upper() != "MO":
                rule["firstDayOfWeek"] = WEEKDAYS[v.upper()]
        elif k == "RSCALE":
            rule["rscale"] = v.lower()
        elif k == "SKIP":
            rule["skip"] = v.lower()
        elif k == "BYDAY":
            days = []
            for d in v.split(","):
                m = _NDAY.match(d.strip().upper())
                if m is None:
                    raise ConversionError(f"RRULE BYDAY value {d!r} is not a weekday", where=where)
                nday: dict[str, Any] = {"@type": "NDay", "day": WEEKDAYS[m.group(2)]}
                if m.group(1):
                    nday["nthOfPeriod"] = int(m.group(1))
                days.append(nday)
            rule["byDay"] = days
        elif k == "BYMONTH":
            months = []
            for mo in v.split(","):
                mo = mo.strip().upper()
                num = mo[:-1] if mo.endswith("L") else mo
                if not num.isdigit() or not 1 <= int(num) <= 13:
                    raise ConversionError(f"RRULE BYMONTH value {mo!r} is invalid", where=where)
                months.append(str(int(num)) + ("L" if mo.endswith("L") else ""))
            rule["byMonth"] = months
        elif k in _INTLISTS:
            key, lo, hi = _INTLISTS[k]
            nums = [_int(x, k, where) for x in v.split(",")]
            if any(not lo <= x <= hi or (x == 0 and lo < 0) for x in nums):
                raise ConversionError(f"RRULE {k}={v} out of range", where=where)
            rule[key] = nums
        else:
            raise ConversionError(f"unknown RRULE part {k!r}", where=where)
    if "count" in rule and until is not None:
        raise ConversionError("RRULE has both COUNT and UNTIL", where=where)
    return rule, until


def format_rrule(rule: dict[str, Any], until: str | None, where: str) -> str:
    """RecurrenceRule → RRULE value; ``until`` is the already formatted UNTIL value."""
    freq = rule.get("frequency")
    if not isinstance(freq, str) or freq.lower() not in FREQ_REV:
        raise ConversionError(f"recurrence rule frequency {freq!r} is invalid", where=where)
    out = [f"FREQ={FREQ_REV[freq.lower()]}"]
    rscale = rule.get("rscale")
    if rscale and rscale != "gregorian":
        out.insert(0, f"RSCALE={str(rscale).upper()}")
        skip = rule.get("skip")
        if skip and skip != "omit":
            out.append(f"SKIP={str(skip).upper()}")
    interval = rule.get("interval")
    if interval not in (None, 1):
        out.append(f"INTERVAL={int(interval)}")
    if until is not None:
        out.append(f"UNTIL={until}")
    count = rule.get("count")
    if count is not None:
        out.append(f"COUNT={int(count)}")
    for key in ("bySecond", "byMinute", "byHour"):
        vals = rule.get(key)
        if vals:
            out.append(f"{_INTLISTS_REV[key]}={','.join(str(int(x)) for x in vals)}")
    days = rule.get("byDay")
    if days:
        items = []
        for d in days:
            day = str(d.get("day", "")).lower()
            if day not in WEEKDAYS_REV:
                raise ConversionError(f"byDay day {day!r} is invalid", where=where)
            nth = d.get("nthOfPeriod")
            items.append(f"{int(nth) if nth else ''}{WEEKDAYS_REV[day]}")
        out.append("BYDAY=" + ",".join(items))
    for key in ("byMonthDay", "byYearDay", "byWeekNo"):
        vals = rule.get(key)
        if vals:
            out.append(f"{_INTLISTS_REV[key]}={','.join(str(int(x)) for x in vals)}")
    months = rule.get("byMonth")
    if months:
        out.append("BYMONTH=" + ",".join(str(m).upper() for m in months))
    setpos = rule.get("bySetPosition")
    if setpos:
        out.append("BYSETPOS=" + ",".join(str(int(x)) for x in setpos))
    fdow = rule.get("firstDayOfWeek")
    if fdow and str(fdow).lower() != "mo":
        if str(fdow).lower() not in WEEKDAYS_REV:
            raise ConversionError(f"firstDayOfWeek {fdow!r} is invalid", where=where)
        out.append(f"WKST={WEEKDAYS_REV[str(fdow).lower()]}")
    return ";".join(out)


def counted_from_start(rule: Any, count: int | None, dtstart: datetime) -> Any:
    """A dateutil ``rule`` whose COUNT counts the start as its first occurrence.

    RFC 5545 §3.3.10 ("the DTSTART property value always counts as the first occurrence") and
    RFC 8984 §4.3.3: the start is an occurrence even where the rule does not match it, and it
    is counted. dateutil counts only the dates the rule matches, so one more would come out.
    ``count`` is the rule's COUNT. Returns the rule itself, one with a count less, or an empty
    tuple when the start is all there is. (libical, in Cyrus 3.10, counts as dateutil does and
    leaves the start out.)
    """
    if count is None:
        return rule
    first = next(iter(rule), None)
    if first == dtstart:
        return rule
    if first is None or count <= 1:
        return ()
    return rule.replace(count=count - 1)
