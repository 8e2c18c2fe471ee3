"""Date, time, duration and time-zone helpers for both directions.

Promises: iCalendar DATE / DATE-TIME (RFC 5545 §3.3.4, §3.3.5) ⇄ JSCalendar LocalDateTime and
UTCDateTime (RFC 8984 §1.4.3, §1.4.4); DURATION (RFC 5545 §3.3.6) ⇄ Duration/SignedDuration
(RFC 8984 §1.4.6, §1.4.7); TZID resolution to IANA names (Windows names through a table);
VTIMEZONE generation from the IANA database (RFC 5545 §3.6.5) with RRULEs for the current
rules, so readers without the database resolve TZIDs for any year.
"""

from __future__ import annotations

import re
import zoneinfo
from datetime import UTC, date, datetime, timedelta, tzinfo
from functools import lru_cache

from jmapsyncd.convert._tables import WINDOWS_ZONES
from jmapsyncd.errors import ConversionError

_ICAL_DT = re.compile(r"(\d{4})(\d\d)(\d\d)(?:T(\d\d)(\d\d)(\d\d)(Z)?)?$")
_LOCAL = re.compile(r"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.\d+)?(Z)?$")
_DUR = re.compile(
    r"([+-])?P(?:(\d+)W)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?$"
)


def parse_ical_dt(value: str, where: str) -> tuple[datetime, bool, bool]:
    """Return (naive datetime, is_date, is_utc) for a DATE or DATE-TIME value."""
    m = _ICAL_DT.match(value.strip())
    if m is None:
        raise ConversionError(f"not a DATE or DATE-TIME: {value!r}", where=where)
    y, mo, d, hh, mi, ss, z = m.groups()
    try:
        if hh is None:
            return datetime(int(y), int(mo), int(d)), True, False
        sec = min(int(ss), 59)  # a leap second 60 has no Python representation
        return datetime(int(y), int(mo), int(d), int(hh), int(mi), sec), False, z is not None
    except ValueError as e:
        raise ConversionError(f"invalid date {value!r}: {e}", where=where) from None


def parse_local(value: str, where: str) -> tuple[datetime, bool]:
    """Parse a LocalDateTime (or UTCDateTime): (naive datetime, had Z)."""
    m = _LOCAL.match(value)
    if m is None:
        raise ConversionError(f"not a LocalDateTime: {value!r}", where=where)
    y, mo, d, hh, mi, ss, z = m.groups()
    try:
        return datetime(int(y), int(mo), int(d), int(hh), int(mi), int(ss)), z is not None
    except ValueError as e:
        raise ConversionError(f"invalid date-time {value!r}: {e}", where=where) from None


def local_str(dt: datetime) -> str:
    return (
        f"{dt.year:04d}-{dt.month:02d}-{dt.day:02d}T{dt.hour:02d}:{dt.minute:02d}:{dt.second:02d}"
    )


def utc_str(dt: datetime) -> str:
    return local_str(dt) + "Z"


def ical_local(dt: datetime) -> str:
    return f"{dt.year:04d}{dt.month:02d}{dt.day:02d}T{dt.hour:02d}{dt.minute:02d}{dt.second:02d}"


def ical_date(dt: date) -> str:
    return f"{dt.year:04d}{dt.month:02d}{dt.day:02d}"


def local_to_ical_value(value: str, where: str = "date-time") -> str:
    """``2024-01-02T03:04:05[Z]`` → ``20240102T030405[Z]`` without building a datetime."""
    m = _LOCAL.match(value) if isinstance(value, str) else None
    if m is None:
        raise ConversionError(f"not a LocalDateTime: {value!r}", where=where)
    y, mo, d, hh, mi, ss, z = m.groups()
    if not ("01" <= mo <= "12" and "01" <= d <= "31" and hh < "24" and mi < "60" and ss < "61"):
        raise ConversionError(f"date-time out of range: {value!r}", where=where)
    return f"{y}{mo}{d}T{hh}{mi}{ss}" + ("Z" if z else "")


def parse_duration(value: str, where: str) -> timedelta:
    m = _DUR.match(value.strip().upper())
    if m is None or value.strip().upper() in ("P", "PT", "-P", "+P"):
        raise ConversionError(f"not a duration: {value!r}", where=where)
    sign, w, d, h, mi, s = m.groups()
    try:
        td = timedelta(
            weeks=int(w or 0),
            days=int(d or 0),
            hours=int(h or 0),
            minutes=int(mi or 0),
            seconds=float(s or 0),
        )
    except (OverflowError, ValueError):
        raise ConversionError(f"duration out of range: {value!r}", where=where) from None
    return -td if sign == "-" else td


def fmt_duration(td: timedelta, *, exact: bool = False) -> str:
    """Format a timedelta; days are nominal (RFC 8984 §1.4.6) unless ``exact``."""
    neg = td < timedelta(0)
    if neg:
        td = -td
    total = int(td.total_seconds())
    if exact:
        days, rest = 0, total
    else:
        days, rest = divmod(total, 86400)
    h, rest = divmod(rest, 3600)
    m, s = divmod(rest, 60)
    out = "P"
    if days:
        out += f"{days}D"
    if h or m or s or not days:
        out += "T"
        if h:
            out += f"{h}H"
        if m:
            out += f"{m}M"
        if s or not (h or m):
            out += f"{s}S"
    return ("-" if neg else "") + out


def normalize_duration(value: str, where: str) -> str:
    """Validate a DURATION and return it in JSCalendar form (no '+', upper case)."""
    parse_duration(value, where)
    v = value.strip().upper()
    return v[1:] if v.startswith("+") else v


@lru_cache(maxsize=512)
def iana_zone(name: str) -> zoneinfo.ZoneInfo | None:
    """The IANA zone for a TZID: IANA names, Windows names, and prefixed IANA names."""
    candidates = [name, WINDOWS_ZONES.get(name, ""), WINDOWS_ZONES.get(name.strip('"'), "")]
    # vendor prefixes like "/freeassociation.sourceforge.net/Tzfile/Europe/London"
    parts = name.strip("/").split("/")
    for i in range(len(parts)):
        candidates.append("/".join(parts[i:]))
    for c in candidates:
        if not c or c.startswith("/") or ".." in c:
            continue
        try:
            return zoneinfo.ZoneInfo(c)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
            continue
    return None


def iana_name(name: str) -> str | None:
    z = iana_zone(name)
    return z.key if z is not None else None


def to_zone(dt: datetime, src: tzinfo | None, dst: tzinfo | None) -> datetime:
    """Convert naive local ``dt`` in ``src`` to naive local in ``dst`` (None = floating)."""
    if src is None or dst is None or src is dst:
        return dt
    return dt.replace(tzinfo=src).astimezone(dst).replace(tzinfo=None)


def custom_tzinfo(tzid: str, vtimezone_text: str, where: str) -> tzinfo:
    """A tzinfo for a VTIMEZONE that names no IANA zone (icalendar does the rule expansion)."""
    import icalendar

    try:
        comp = icalendar.Timezone.from_ical(vtimezone_text)
        if not isinstance(comp, icalendar.Timezone):
            raise TypeError("not a VTIMEZONE")
        tz: tzinfo = comp.to_tz()
    except Exception as e:  # icalendar raises many types here; wrap them all
        raise ConversionError(f"VTIMEZONE {tzid!r} cannot be used: {e}", where=where) from None
    return tz


# --- VTIMEZONE generation -------------------------------------------------------------------

_WD = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")


def _offset(td: timedelta) -> str:
    total = int(td.total_seconds())
    sign = "-" if total < 0 else "+"
    total = abs(total)
    h, rest = divmod(total, 3600)
    m, s = divmod(rest, 60)
    return f"{sign}{h:02d}{m:02d}" + (f"{s:02d}" if s else "")


def _transitions(
    zone: zoneinfo.ZoneInfo, first: int, last: int
) -> list[tuple[datetime, timedelta, timedelta, str, bool]]:
    """(local wall time of the transition in the old offset, from, to, name, is_dst)."""
    out: list[tuple[datetime, timedelta, timedelta, str, bool]] = []
    t = datetime(first, 1, 1, tzinfo=UTC)
    end = datetime(last + 1, 1, 1, tzinfo=UTC)
    step = timedelta(days=7)
    prev = t.astimezone(zone)
    while t < end:
        nt = t + step
        cur = nt.astimezone(zone)
        if cur.utcoffset() != prev.utcoffset() or cur.tzname() != prev.tzname():
            lo, hi = t, nt
            while hi - lo > timedelta(minutes=1):
                mid = lo + (hi - lo) / 2
                mz = mid.astimezone(zone)
                if mz.utcoffset() == prev.utcoffset() and mz.tzname() == prev.tzname():
                    lo = mid
                else:
                    hi = mid
            hi = hi.replace(second=0, microsecond=0)
            after = hi.astimezone(zone)
            off_from = prev.utcoffset() or timedelta(0)
            off_to = after.utcoffset() or timedelta(0)
            wall = (hi + off_from).replace(tzinfo=None)
            out.append((wall, off_from, off_to, after.tzname() or "", bool(after.dst())))
        prev = cur
        t = nt
    return out


def _rule_for(days: list[datetime]) -> str | None:
    """An RRULE BYDAY form that yields exactly these yearly transition days, if any."""
    if not days:
        return None
    month = days[0].month
    wd = days[0].weekday()
    if any(d.month != month or d.weekday() != wd for d in days):
        return None
    nth = {(d.day - 1) // 7 + 1 for d in days}
    if len(nth) == 1 and next(iter(nth)) <= 4:
        return f"FREQ=YEARLY;BYMONTH={month};BYDAY={next(iter(nth))}{_WD[wd]}"
    if all((d + timedelta(days=7)).month != month for d in days):
        return f"FREQ=YEARLY;BYMONTH={month};BYDAY=-1{_WD[wd]}"
    lo = min(d.day for d in days)
    if all(lo <= d.day <= lo + 6 for d in days) and lo + 6 <= 28:
        mdays = ",".join(str(x) for x in range(lo, lo + 7))
        return f"FREQ=YEARLY;BYMONTH={month};BYDAY={_WD[wd]};BYMONTHDAY={mdays}"
    return None


@lru_cache(maxsize=256)
def vtimezone(tzid: str) -> str:
    """A VTIMEZONE for an IANA zone: RDATEs for past changes, an RRULE for the current rules."""
    zone = iana_zone(tzid)
    if zone is None:
        raise ConversionError(f"unknown time zone {tzid!r}", where="timeZone")
    first, last = 1970, 2037
    trans = _transitions(zone, first, last)
    lines = ["BEGIN:VTIMEZONE", f"TZID:{tzid}"]
    start_local = datetime(first, 1, 1)
    init = datetime(first, 1, 1, tzinfo=UTC).astimezone(zone)
    init_off = init.utcoffset() or timedelta(0)

    def sub(kind: str, dtstart: datetime, f: timedelta, t: timedelta, name: str) -> list[str]:
        out = [f"BEGIN:{kind}", f"DTSTART:{ical_local(dtstart)}"]
        out += [f"TZOFFSETFROM:{_offset(f)}", f"TZOFFSETTO:{_offset(t)}"]
        if name:
            out.append(f"TZNAME:{name}")
        return out

    # split the transitions into a yearly-rule tail and an explicit head
    by_key: dict[tuple[timedelta, timedelta, str, bool], list[datetime]] = {}
    for wall, f, t, name, dst in trans:
        by_key.setdefault((f, t, name, dst), []).append(wall)
    tail: dict[tuple[timedelta, timedelta, str, bool], tuple[int, str]] = {}
    last_years = {w.year for w, *_ in trans if w.year >= last - 1}
    if len(trans) >= 4 and last_years == {last - 1, last}:
        for key, walls in by_key.items():
            if walls[-1].year != last:
                continue
            # longest run of consecutive years ending in `last` that one RRULE describes
            run: list[datetime] = []
            for w in reversed(walls):
                if run and (w.year != run[0].year - 1 or w.time() != run[0].time()):
                    break
                cand = [w, *run]
                if _rule_for(cand) is None:
                    break
                run = cand
            if len(run) >= 2:
                rule = _rule_for(run)
                assert rule is not None
                tail[key] = (run[0].year, rule)
    body: list[str] = []
    if not trans or trans[0][0] > start_local:
        name = init.tzname() or ""
        body += sub("STANDARD", start_local, init_off, init_off, name)
        body.append("END:STANDARD")
    for key, walls in by_key.items():
        f, t, name, dst = key
        kind = "DAYLIGHT" if dst else "STANDARD"
        head = walls
        if key in tail:
            year, rule = tail[key]
            head = [w for w in walls if w.year < year]
            start = next(w for w in walls if w.year == year)
            body += sub(kind, start, f, t, name)
            body.append(f"RRULE:{rule}")
            body.append(f"END:{kind}")
        if head:
            body += sub(kind, head[0], f, t, name)
            if len(head) > 1:
                body.append("RDATE:" + ",".join(ical_local(w) for w in head[1:]))
            body.append(f"END:{kind}")
    lines += body
    lines.append("END:VTIMEZONE")
    from jmapsyncd.convert._write import fold

    return "".join(fold(x) for x in lines)
