"""Bad input raises ConversionError saying what and where, never a bare exception.

RFC 5545 §3.1/§3.4 (stream syntax), §3.8.4.7 (UID), §3.3.10 (RECUR); RFC 8984 §4.1.1 (@type).
"""

from __future__ import annotations

from typing import Any

import icalendar
import pytest

from jmapsyncd.convert import ical_to_jscal, jscal_to_ical
from jmapsyncd.errors import ConversionError, JmapsyncdError


def _cal(body: str) -> str:
    return f"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//EN\r\n{body}END:VCALENDAR\r\n"


def _event(lines: str, uid: str = "UID:e1\r\n") -> str:
    return _cal(f"BEGIN:VEVENT\r\n{uid}DTSTAMP:20240101T000000Z\r\n{lines}END:VEVENT\r\n")


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("hello world", "not iCalendar"),
        ("", "not iCalendar"),
        ("BEGIN:VEVENT\r\nUID:x\r\nEND:VEVENT\r\n", "not VCALENDAR"),
        ("BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:x\r\n", "never closed"),
        ("BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nEND:VTODO\r\nEND:VCALENDAR\r\n", "closes"),
        ("BEGIN:VCALENDAR\r\nthis line has no colon\r\nEND:VCALENDAR\r\n", "missing ':'"),
        (_cal(""), "no VEVENT or VTODO"),
        (_event("DTSTART:20240101T100000\r\n", uid=""), "without UID"),
        (_event("DTSTART:2024-01-01\r\n"), "DATE-TIME"),
        (_event("DTSTART:20241301T100000\r\n"), "invalid date"),
        (_event("DTSTART:20240101T100000\r\nRRULE:COUNT=3\r\n"), "FREQ"),
        (_event("DTSTART:20240101T100000\r\nRRULE:FREQ=DAILY;BYDAY=XX\r\n"), "BYDAY"),
        (_event("DTSTART:20240101T100000\r\nRRULE:FREQ=DAILY;COUNT=x\r\n"), "COUNT"),
        (_event("DTSTART:20240101T100000\r\nRRULE:FREQ=DAILY;BYMONTH=14\r\n"), "BYMONTH"),
        (_event("DTSTART:20240101T100000\r\nRRULE:FREQ=DAILY;FOO=1\r\n"), "unknown RRULE part"),
        (_event("DTSTART:20240101T100000\r\nDURATION:1 hour\r\n"), "not a duration"),
    ],
)
def test_bad_icalendar(text: str, fragment: str) -> None:
    with pytest.raises(ConversionError) as info:
        ical_to_jscal(text)
    assert fragment in str(info.value)


def test_error_says_where() -> None:
    with pytest.raises(ConversionError) as info:
        ical_to_jscal(_event("DTSTART:20240101T100000\r\nRRULE:FREQ=SOMETIMES\r\n"))
    assert info.value.where is not None
    assert "e1" in info.value.where
    assert "RRULE" in info.value.where


def test_error_is_in_the_tree() -> None:
    with pytest.raises(JmapsyncdError):
        ical_to_jscal("nope")
    with pytest.raises(ValueError, match="not iCalendar"):
        ical_to_jscal("nope")


_S = {"@type": "Event", "uid": "u", "start": "2024-01-01T10:00:00"}


@pytest.mark.parametrize(
    ("obj", "fragment"),
    [
        ({"@type": "Group", "uid": "g"}, "unknown @type"),
        ({"@type": "Event"}, "without uid"),
        ({**_S, "start": "yesterday"}, "LocalDateTime"),
        ({**_S, "timeZone": "Mars/Olympus"}, "unknown time zone"),
        ({**_S, "duration": "1h"}, "not a duration"),
        ({**_S, "recurrenceRules": [{"frequency": "often"}]}, "frequency"),
        ({**_S, "timeZone": "/Custom"}, "timeZones"),
    ],
)
def test_bad_jscalendar(obj: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ConversionError) as info:
        jscal_to_ical(obj)
    assert fragment in str(info.value)


def test_no_objects() -> None:
    with pytest.raises(ConversionError, match="no JSCalendar object"):
        jscal_to_ical([])


def test_not_objects() -> None:
    with pytest.raises(ConversionError, match="expected a JSCalendar object"):
        jscal_to_ical(["text"])  # type: ignore[list-item]  # wrong on purpose
    with pytest.raises(ConversionError, match="got text"):
        jscal_to_ical("BEGIN:VCALENDAR")  # type: ignore[arg-type]  # wrong on purpose


def test_broken_custom_timezone_is_wrapped() -> None:
    text = _cal(
        "BEGIN:VTIMEZONE\r\nTZID:Broken\r\nBEGIN:STANDARD\r\nDTSTART:nonsense\r\n"
        "END:STANDARD\r\nEND:VTIMEZONE\r\n"
        "BEGIN:VEVENT\r\nUID:b\r\nDTSTAMP:20240101T000000Z\r\n"
        "DTSTART;TZID=Broken:20240101T100000\r\nEND:VEVENT\r\n"
    )
    with pytest.raises(ConversionError) as info:
        ical_to_jscal(text)
    assert "Broken" in str(info.value)


def test_accepts_bytes_and_icalendar_objects() -> None:
    text = _event("DTSTART:20240101T100000\r\nSUMMARY:Caf\u00e9\r\n")
    from_str = ical_to_jscal(text)
    assert ical_to_jscal(text.encode()) == from_str
    assert ical_to_jscal(icalendar.Calendar.from_ical(text))[0]["title"] == "Caf\u00e9"
    assert ical_to_jscal("\ufeff" + text) == from_str


def test_absurd_duration_is_a_conversion_error() -> None:
    # regression: icalendar's invalid_duration.ics made timedelta overflow
    with pytest.raises(ConversionError, match="out of range"):
        ical_to_jscal(_event("DTSTART:20240101T100000\r\nDURATION:P99999999999999999999D\r\n"))


@pytest.mark.parametrize(
    "obj",
    [
        {**_S, "duration": "P999999999D"},
        {**_S, "recurrenceRules": [{"frequency": "daily", "byDay": ["mo"]}]},
        {**_S, "start": "2024-13-01T10:00:00"},
    ],
)
def test_wrongly_shaped_jscalendar_is_a_conversion_error(obj: dict[str, Any]) -> None:
    with pytest.raises(ConversionError) as info:
        jscal_to_ical(obj)
    assert info.value.where is not None


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("keywords", ["not", "a", "map"]),
        ("priority", "high"),
        ("participants", {"p": {"roles": "owner", "sendTo": {"imip": 5}}}),
    ],
)
def test_wrongly_typed_values_are_kept_not_dropped(key: str, value: Any) -> None:
    [back] = ical_to_jscal(jscal_to_ical({**_S, key: value}))
    assert back[key] == value
