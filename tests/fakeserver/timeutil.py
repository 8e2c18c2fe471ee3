"""Date-times, durations and the time span an event or task covers, for ``/query`` filters.

RFC 8984 §1.4.3-§1.4.6 (LocalDateTime, UTCDateTime, Duration); the span rule follows Stalwart's
and Cyrus's behaviour without ``expandRecurrences``: a recurring item matches any window inside its
whole span (draft-ietf-jmap-calendars ``CalendarEvent/query``).  Recurrence expansion is
approximated: the span ends at ``until`` (or a generous ``count``-derived bound) plus the
duration, else never.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

FAR_PAST = datetime(1, 1, 2, tzinfo=UTC)
FAR_FUTURE = datetime(9999, 12, 30, tzinfo=UTC)

_LOCAL = re.compile(r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.\d+)?")
_LENIENT = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:\.\d+)?)?(Z|z|[+-]\d{2}:?\d{2})?"
)
_DURATION = re.compile(
    r"(?P<sign>[+-])?P(?:(?P<w>\d+)W)?(?:(?P<d>\d+)D)?"
    r"(?:T(?:(?P<h>\d+)H)?(?:(?P<m>\d+)M)?(?:(?P<s>\d+(?:\.\d+)?)S)?)?"
)
_FREQ = {
    "yearly": timedelta(days=366),
    "monthly": timedelta(days=31),
    "weekly": timedelta(days=7),
    "daily": timedelta(days=1),
    "hourly": timedelta(hours=1),
    "minutely": timedelta(minutes=1),
    "secondly": timedelta(seconds=1),
}


def zone(name: object) -> ZoneInfo | None:
    """The zone named ``name``; ``None`` for floating or unknown names."""
    if not isinstance(name, str) or not name:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def is_known_zone(name: str) -> bool:
    return zone(name) is not None


def parse_local(text: object) -> datetime | None:
    """A LocalDateTime (``YYYY-MM-DDTHH:MM:SS``) as a naive datetime, or ``None``."""
    if not isinstance(text, str):
        return None
    match = _LOCAL.fullmatch(text.rstrip("Zz"))
    if not match:
        return None
    try:
        year, month, day, hour, minute, second = (int(g) for g in match.groups())
        return datetime(year, month, day, hour, minute, second)
    except ValueError:
        return None


def parse_lenient(text: str) -> datetime | None:
    """Stalwart's reading: at least ``YYYY-MM-DDTHH:MM``; a Z or offset is parsed and dropped."""
    match = _LENIENT.match(text)
    if not match:
        return None
    year, month, day, hour, minute, second, _offset = match.groups()
    try:
        return datetime(int(year), int(month), int(day), int(hour), int(minute), int(second or 0))
    except ValueError:
        return None


def parse_duration(text: object) -> timedelta:
    """An RFC 8984 Duration/SignedDuration; zero when absent or malformed."""
    if not isinstance(text, str):
        return timedelta(0)
    match = _DURATION.fullmatch(text)
    if not match or text in ("P", "PT"):
        return timedelta(0)
    parts = match.groupdict()
    delta = timedelta(
        weeks=int(parts["w"] or 0),
        days=int(parts["d"] or 0),
        hours=int(parts["h"] or 0),
        minutes=int(parts["m"] or 0),
        seconds=float(parts["s"] or 0),
    )
    return -delta if parts["sign"] == "-" else delta


def to_utc(local: datetime, tz: object) -> datetime:
    """Interpret a naive local date-time in ``tz``; floating or unknown zones count as UTC."""
    info = zone(tz)
    if info is None:
        return local.replace(tzinfo=UTC)
    return local.replace(tzinfo=info).astimezone(UTC)


def _clamp_add(moment: datetime, delta: timedelta) -> datetime:
    try:
        return max(FAR_PAST, min(FAR_FUTURE, moment + delta))
    except OverflowError:
        return FAR_FUTURE if delta > timedelta(0) else FAR_PAST


def _rules(obj: dict[str, Any]) -> list[dict[str, Any]]:
    rules: list[dict[str, Any]] = []
    many = obj.get("recurrenceRules")
    if isinstance(many, list):
        rules.extend(r for r in many if isinstance(r, dict))
    one = obj.get("recurrenceRule")
    if isinstance(one, dict):
        rules.append(one)
    return rules


def _recurring_end(obj: dict[str, Any], start: datetime, length: timedelta, tz: object) -> datetime:
    end = start + length
    for rule in _rules(obj):
        until = parse_local(rule.get("until"))
        count = rule.get("count")
        if until is not None:
            end = max(end, _clamp_add(to_utc(until, tz), length))
        elif isinstance(count, int) and count > 0:
            step = _FREQ.get(str(rule.get("frequency", "daily")).lower(), timedelta(days=366))
            interval = rule.get("interval")
            factor = interval if isinstance(interval, int) and interval > 0 else 1
            end = max(end, _clamp_add(start, step * factor * count + length))
        else:
            return FAR_FUTURE
    overrides = obj.get("recurrenceOverrides")
    if isinstance(overrides, dict):
        for key in overrides:
            moment = parse_local(key)
            if moment is not None:
                end = max(end, _clamp_add(to_utc(moment, tz), length))
    return end


def event_span(obj: dict[str, Any], *, with_alerts: bool = False) -> tuple[datetime, datetime]:
    """The UTC span ``[start, end)`` an event covers; an event without ``start`` spans nothing."""
    local = parse_local(obj.get("start"))
    if local is None:
        return FAR_FUTURE, FAR_PAST
    tz = obj.get("timeZone")
    start = to_utc(local, tz)
    length = parse_duration(obj.get("duration"))
    end = _recurring_end(obj, start, length, tz) if _rules(obj) else start + length
    if with_alerts:
        start, end = _widen_by_alerts(obj, start, end, length)
    return start, end


def _widen_by_alerts(
    obj: dict[str, Any], start: datetime, end: datetime, length: timedelta
) -> tuple[datetime, datetime]:
    alerts = obj.get("alerts")
    if not isinstance(alerts, dict):
        return start, end
    for alert in alerts.values():
        trigger = alert.get("trigger") if isinstance(alert, dict) else None
        if not isinstance(trigger, dict):
            continue
        offset = parse_duration(trigger.get("offset"))
        base = start + length if trigger.get("relativeTo") == "end" else start
        moment = _clamp_add(base, offset)
        start, end = min(start, moment), max(end, moment)
    return start, end


def task_span(obj: dict[str, Any]) -> tuple[datetime, datetime]:
    """A task spans start..due; one date alone is a point; no dates spans everything."""
    tz = obj.get("timeZone")
    start = parse_local(obj.get("start"))
    due = parse_local(obj.get("due"))
    if start is None and due is None:
        return FAR_PAST, FAR_FUTURE
    anchor = start if start is not None else due
    assert anchor is not None
    first = to_utc(anchor, tz)
    last = to_utc(due, tz) if due is not None else first
    return first, max(first, last)


def utc_string(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def now_utc() -> str:
    return utc_string(datetime.now(UTC))
