"""The public interface in its simplest use: one timed event both ways (RFC 8984 §5.1)."""

from __future__ import annotations

from jmapsyncd.convert import ical_to_jscal, jscal_to_ical

SIMPLE = (
    "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//EN\r\nBEGIN:VEVENT\r\nUID:u1\r\n"
    "DTSTAMP:20240101T000000Z\r\nDTSTART;TZID=Europe/Paris:20240105T100000\r\n"
    "DTEND;TZID=Europe/Paris:20240105T110000\r\nSUMMARY:Standup\r\nLOCATION:Room 1\r\n"
    "RRULE:FREQ=DAILY;COUNT=3\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
)


def test_simple_event_to_jscal() -> None:
    [obj] = ical_to_jscal(SIMPLE)
    assert obj["@type"] == "Event"
    assert obj["uid"] == "u1"
    assert obj["start"] == "2024-01-05T10:00:00"
    assert obj["timeZone"] == "Europe/Paris"
    assert obj["duration"] == "PT1H"
    assert obj["title"] == "Standup"
    assert obj["locations"]["1"]["name"] == "Room 1"
    assert obj["recurrenceRules"] == [{"@type": "RecurrenceRule", "frequency": "daily", "count": 3}]


def test_simple_event_round_trip() -> None:
    objs = ical_to_jscal(SIMPLE)
    text = jscal_to_ical(objs)
    assert "BEGIN:VTIMEZONE\r\nTZID:Europe/Paris\r\n" in text
    assert ical_to_jscal(text) == objs
