"""Recurrence expansion for ``CalendarEvent/query`` with ``expandRecurrences`` (RFC 8984 §4.3.3).

A deliberately small expander: frequency, interval, count, until, byDay (with nthOfPeriod for
monthly/yearly), byMonthDay and byMonth; ``recurrenceOverrides`` add, patch or exclude instances.
At most :data:`MAX_INSTANCES` instances per event, like Stalwart.  Instance ids follow each
dialect: Stalwart ``(expansionIndex+1)<<32 | documentId`` in its base32, Cyrus 3.10
``ER-<recurrenceId>-<uid>`` (``ERB-`` with a base64url UID), Cyrus 3.6 ``<uid>;<recurrenceId>``.
"""

from __future__ import annotations

import base64
import calendar
import contextlib
import copy
import re
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

from tests.fakeserver import timeutil
from tests.fakeserver.encoding import decode_id, encode_id
from tests.fakeserver.patch import PatchError, apply_patch

MAX_INSTANCES = 3000
WEEKDAYS = ["mo", "tu", "we", "th", "fr", "sa", "su"]
LOCAL_FORMAT = "%Y-%m-%dT%H:%M:%S"
Obj = dict[str, Any]


def rules_of(event: Obj) -> list[Obj]:
    rules: list[Obj] = []
    many = event.get("recurrenceRules")
    if isinstance(many, list):
        rules += [r for r in many if isinstance(r, dict)]
    if isinstance(event.get("recurrenceRule"), dict):
        rules.append(event["recurrenceRule"])
    return rules


def _add_months(moment: datetime, months: int) -> tuple[int, int]:
    index = moment.year * 12 + moment.month - 1 + months
    return index // 12, index % 12 + 1


def _days_in_period(rule: Obj, start: datetime, period: int) -> Iterator[datetime]:
    """Candidate date-times of one period (week, month, year…) of ``rule``."""
    frequency = str(rule.get("frequency", "daily")).lower()
    interval = rule.get("interval")
    step = period * (interval if isinstance(interval, int) and interval > 0 else 1)
    by_day = [d for d in rule.get("byDay") or [] if isinstance(d, dict)]
    by_month_day = [d for d in rule.get("byMonthDay") or [] if isinstance(d, int)]
    by_month = [int(m) for m in rule.get("byMonth") or [] if str(m).isdigit()]
    clock = start.time()
    if frequency in ("hourly", "minutely", "secondly"):
        unit = {"hourly": 3600, "minutely": 60, "secondly": 1}[frequency]
        yield start + timedelta(seconds=unit * step)
        return
    if frequency == "daily":
        moment = start + timedelta(days=step)
        if not by_day or WEEKDAYS[moment.weekday()] in {d.get("day") for d in by_day}:
            yield moment
        return
    if frequency == "weekly":
        week_start = (start - timedelta(days=start.weekday())) + timedelta(weeks=step)
        days = sorted({WEEKDAYS.index(d["day"]) for d in by_day if d.get("day") in WEEKDAYS})
        for offset in days or [start.weekday()]:
            yield datetime.combine((week_start + timedelta(days=offset)).date(), clock)
        return
    if frequency == "monthly":
        months = [_add_months(start, step)]
    else:
        year = start.year + step
        months = [(year, m) for m in (by_month or [start.month])]
    for year, month in months:
        if year > 9999:
            return
        yield from _days_in_month(year, month, start, by_day, by_month_day, frequency)


def _days_in_month(
    year: int, month: int, start: datetime, by_day: list[Obj], by_month_day: list[int], freq: str
) -> Iterator[datetime]:
    length = calendar.monthrange(year, month)[1]
    days: set[int] = set()
    for day in by_month_day:
        actual = day if day > 0 else length + day + 1
        if 1 <= actual <= length:
            days.add(actual)
    for entry in by_day:
        if entry.get("day") not in WEEKDAYS:
            continue
        weekday = WEEKDAYS.index(entry["day"])
        matching = [d for d in range(1, length + 1) if calendar.weekday(year, month, d) == weekday]
        nth = entry.get("nthOfPeriod")
        if isinstance(nth, int) and nth != 0 and abs(nth) <= len(matching):
            days.add(matching[nth - 1] if nth > 0 else matching[nth])
        elif nth is None:
            days.update(matching)
    if not by_month_day and not by_day and start.day <= length:
        days.add(start.day)
    for day in sorted(days):
        yield datetime.combine(datetime(year, month, day).date(), start.time())


def _candidates(rule: Obj, start: datetime, period: int) -> set[datetime]:
    # The start is always the first occurrence (RFC 8984 §4.3.3), even if the rule skips it.
    found = set(_days_in_period(rule, start, period))
    if period == 0:
        found.add(start)
    return found


def occurrences(event: Obj, limit: int = MAX_INSTANCES) -> list[datetime]:
    """Local start date-times of the event's instances, in order, at most ``limit``."""
    start = timeutil.parse_local(event.get("start"))
    if start is None:
        return []
    rules = rules_of(event)
    found: set[datetime] = set() if rules else {start}
    for rule in rules:
        until = timeutil.parse_local(rule.get("until"))
        count = rule.get("count") if isinstance(rule.get("count"), int) else None
        produced = 0
        period = 0
        misses = 0
        stop = False
        while not stop and produced < limit and misses < 1000:
            fresh = sorted(c for c in _candidates(rule, start, period) if c >= start)
            period += 1
            misses = 0 if fresh else misses + 1
            for moment in fresh:
                if (until is not None and moment > until) or (
                    count is not None and produced >= count
                ):
                    stop = True
                    break
                found.add(moment)
                produced += 1
    overrides = event.get("recurrenceOverrides")
    if isinstance(overrides, dict):
        for key, patch in overrides.items():
            when = timeutil.parse_local(key)
            if when is None:
                continue
            if isinstance(patch, dict) and patch.get("excluded") is True:
                found.discard(when)
            else:
                found.add(when)
    return sorted(found)[:limit]


def instance(event: Obj, recurrence_id: datetime, instance_id: str) -> Obj:
    """The expanded instance: base properties, ``recurrenceId``, override patch applied."""
    out = copy.deepcopy(event)
    for key in (
        "recurrenceRules",
        "recurrenceRule",
        "excludedRecurrenceRules",
        "recurrenceOverrides",
    ):
        out.pop(key, None)
    key = recurrence_id.strftime(LOCAL_FORMAT)
    out["start"] = key
    out["recurrenceId"] = key
    out["baseEventId"] = event["id"]
    out["id"] = instance_id
    overrides = event.get("recurrenceOverrides")
    patch = overrides.get(key) if isinstance(overrides, dict) else None
    if isinstance(patch, dict):
        with contextlib.suppress(PatchError):
            out = apply_patch(out, patch)
    return out


# ------------------------------------------------------------------------------ instance ids

_COMPACT = re.compile(r"(\d{8}T\d{6})")


def instance_id(dialect: str, event: Obj, index: int, recurrence_id: datetime) -> str:
    compact = recurrence_id.strftime("%Y%m%dT%H%M%S")
    if dialect == "stalwart":
        document = decode_id(event["id"])
        return encode_id(((index + 1) << 32) | (document or 0))
    uid = str(event.get("uid", ""))
    if dialect == "cyrus36":
        return f"{uid};{recurrence_id.strftime(LOCAL_FORMAT)}"
    if re.fullmatch(r"[A-Za-z0-9_-]+", uid):
        return f"ER-{compact}-{uid}"
    encoded = base64.urlsafe_b64encode(uid.encode()).decode().rstrip("=")
    return f"ERB-{compact}-{encoded}"


def parse_instance_id(
    dialect: str, text: str, events: dict[str, Obj]
) -> tuple[str, datetime] | None:
    """(base event id, recurrence id) for an instance id, or None."""
    if dialect == "stalwart":
        number = decode_id(text)
        if number is None or number >> 32 == 0:
            return None
        base = encode_id(number & 0xFFFFFFFF)
        event = events.get(base)
        if event is None:
            return None
        moments = occurrences(event)
        index = (number >> 32) - 1
        return (base, moments[index]) if index < len(moments) else None
    if dialect == "cyrus36":
        uid, sep, when = text.rpartition(";")
        moment = timeutil.parse_local(when)
        if not sep or moment is None or uid not in events:
            return None
        return uid, moment
    match = re.fullmatch(r"ER(B?)-(\d{8}T\d{6})-(.+)", text)
    if not match:
        return None
    encoded, compact, rest = match.groups()
    if encoded:
        padded = rest + "=" * (-len(rest) % 4)
        try:
            uid = base64.urlsafe_b64decode(padded).decode()
        except (ValueError, UnicodeDecodeError):
            return None
    else:
        uid = rest
    moment = datetime.strptime(compact, "%Y%m%dT%H%M%S")
    for event_id, event in events.items():
        if event.get("uid") == uid:
            return event_id, moment
    return None
