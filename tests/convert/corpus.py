"""Helpers for the real-world corpus check: the .ics files shipped in icalendar's test suite.

For each file that holds a VEVENT or VTODO and that icalendar parses without errors, the file
goes iCalendar → JSCalendar → iCalendar and both versions are compared: the same occurrences
between 1990 and 2040 (expanded with recurring_ical_events) and the same value for every
property the input had, compared as decoded values rather than text.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import icalendar
import recurring_ical_events  # type: ignore[import-untyped]  # ships no py.typed marker

from jmapsyncd.convert import ical_to_jscal, jscal_to_ical

WINDOW = (datetime(1990, 1, 1), datetime(2040, 1, 1))
MAX_OCCURRENCES = 3000

# properties whose value is checked through the occurrences or written in another form
_BY_OCCURRENCE = {"RRULE", "EXRULE", "RDATE", "EXDATE", "DTEND", "DURATION", "DUE"}
# properties regenerated on purpose: the calendar-level header
_STRUCTURAL = {"PRODID", "VERSION", "CALSCALE"}
# enumerated values are case-insensitive (RFC 5545 §2)
_ENUMS = {"STATUS", "CLASS", "TRANSP", "ACTION", "METHOD"}


def corpus_files() -> list[Path]:
    root = Path(icalendar.__file__).parent / "tests"
    return sorted(root.rglob("*.ics"))


def load(path: Path) -> icalendar.Calendar | None:
    """The calendar if icalendar parses it cleanly and it has a VEVENT or VTODO, else None."""
    raw = path.read_bytes()
    if b"BEGIN:VEVENT" not in raw and b"BEGIN:VTODO" not in raw:
        return None
    try:
        cals = icalendar.Calendar.from_ical(raw, multiple=True)
    except Exception:
        return None
    if len(cals) != 1 or not isinstance(cals[0], icalendar.Calendar):
        return None
    cal = cals[0]
    for comp in cal.walk():
        if getattr(comp, "errors", None):
            return None
    if not any(c.name in ("VEVENT", "VTODO") for c in cal.subcomponents):
        return None
    return cal


def _norm(v: Any) -> Any:
    """A comparable form of a decoded value: aware datetimes in UTC, lists sorted."""
    if isinstance(v, datetime):
        if v.tzinfo is not None:
            return v.astimezone(UTC)
        return v
    if isinstance(v, date):
        return v
    if isinstance(v, timedelta):
        return v
    if isinstance(v, (list, tuple)):
        return sorted(repr(_norm(x)) for x in v)
    if isinstance(v, bytes):
        return v.decode("utf-8", "replace")
    if hasattr(v, "dt"):
        return _norm(v.dt)
    if hasattr(v, "cats"):
        return sorted(str(c) for c in v.cats)
    if isinstance(v, float):
        return round(v, 6)
    return str(v)


def occurrences(cal: icalendar.Calendar) -> list[tuple[str, Any, Any]]:
    """(uid, start, end) of every occurrence in the window, capped."""
    query = recurring_ical_events.of(cal, components=["VEVENT", "VTODO"])
    out = []
    for occ in itertools.islice(query.between(*WINDOW), MAX_OCCURRENCES):
        uid = str(occ.get("UID", ""))
        start = occ.get("DTSTART")
        end = occ.get("DTEND") or occ.get("DUE")
        out.append((uid, repr(_norm(start)), repr(_norm(end))))
    return sorted(out)


def _key(comp: icalendar.cal.Component) -> tuple[str, str]:
    rid = comp.get("RECURRENCE-ID")
    return str(comp.get("UID", "")), repr(_norm(rid)) if rid is not None else ""


def _props(comp: icalendar.cal.Component) -> Iterator[tuple[str, Any]]:
    for name in {k.upper() for k in comp}:
        if name in _BY_OCCURRENCE or name in _STRUCTURAL:
            continue
        vals = comp.get(name)
        vals = vals if isinstance(vals, list) else [vals]
        if name == "CATEGORIES":
            # one property with a list or several properties: the same set of categories
            yield name, sorted({str(c) for v in vals for c in getattr(v, "cats", [v])})
            continue
        if name in _ENUMS:
            vals = [str(v).upper() for v in vals]
        yield name, sorted(repr(_norm(getattr(v, "dt", v))) for v in vals)


def _alarms_kept(before: icalendar.cal.Component, after: icalendar.cal.Component) -> bool:
    """Every input alarm has an output alarm with at least the same property values."""
    mine = [dict(_props(a)) for a in before.subcomponents if a.name == "VALARM"]
    theirs = [dict(_props(a)) for a in after.subcomponents if a.name == "VALARM"]
    if len(mine) != len(theirs):
        return False
    return all(any(m.items() <= t.items() for t in theirs) for m in mine)


def differences(cal: icalendar.Calendar) -> list[str]:
    """What the round trip changed, as readable lines; empty when nothing changed."""
    objs = ical_to_jscal(cal.to_ical())
    back = icalendar.Calendar.from_ical(jscal_to_ical(objs))
    diffs: list[str] = []
    try:
        expected = occurrences(cal)
    except Exception:
        expected = None  # the reference expander cannot read the input; compare properties only
    if expected is not None and expected != occurrences(back):
        diffs.append("occurrences differ")
    before = {_key(c): c for c in cal.subcomponents if c.name in ("VEVENT", "VTODO")}
    after = {_key(c): c for c in back.subcomponents if c.name in ("VEVENT", "VTODO")}
    for key, comp in before.items():
        other = after.get(key)
        if other is None:
            diffs.append(f"component {key} missing")
            continue
        theirs = dict(_props(other))
        for name, vals in _props(comp):
            if theirs.get(name) != vals:
                diffs.append(f"{key} {name}: {vals} != {theirs.get(name)}")
        if not _alarms_kept(comp, other):
            diffs.append(f"{key} alarms differ")
    for name, vals in _props(cal):
        if name not in ("METHOD",) and dict(_props(back)).get(name) != vals:
            diffs.append(f"VCALENDAR {name} differs")
    return diffs
