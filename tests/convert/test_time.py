"""Time properties: DTSTART/DTEND/DURATION ⇄ start/duration/timeZone/showWithoutTime.

RFC 8984 §5.1.1 to §5.1.4 and §4.7 (time zones); RFC 5545 §3.3.4, §3.3.5, §3.6.5, §3.8.2.
"""

from __future__ import annotations

import zoneinfo
from datetime import UTC, date, datetime, timedelta

import icalendar
import pytest

from jmapsyncd.convert import ical_to_jscal, jscal_to_ical
from jmapsyncd.convert._time import vtimezone


def _event(lines: str, cal_extra: str = "") -> str:
    return (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//EN\r\n" + cal_extra + "BEGIN:VEVENT\r\n"
        "UID:t1\r\nDTSTAMP:20240101T000000Z\r\n" + lines + "END:VEVENT\r\nEND:VCALENDAR\r\n"
    )


def _vevent(text: str) -> icalendar.Event:
    [ev] = icalendar.Calendar.from_ical(text).walk("VEVENT")
    assert isinstance(ev, icalendar.Event)
    return ev


def test_utc_is_etc_utc_and_written_with_z() -> None:
    [obj] = ical_to_jscal(_event("DTSTART:20240305T090000Z\r\nDTEND:20240305T100000Z\r\n"))
    assert (obj["start"], obj["timeZone"], obj["duration"]) == (
        "2024-03-05T09:00:00",
        "Etc/UTC",
        "PT1H",
    )
    text = jscal_to_ical(obj)
    assert "DTSTART:20240305T090000Z\r\n" in text
    assert "DTEND:20240305T100000Z\r\n" in text
    assert "VTIMEZONE" not in text


def test_floating_has_no_time_zone() -> None:
    [obj] = ical_to_jscal(_event("DTSTART:20240305T090000\r\n"))
    assert "timeZone" not in obj
    text = jscal_to_ical(obj)
    assert "DTSTART:20240305T090000\r\n" in text


def test_all_day_uses_value_date() -> None:
    [obj] = ical_to_jscal(_event("DTSTART;VALUE=DATE:20240229\r\nDTEND;VALUE=DATE:20240302\r\n"))
    assert obj["showWithoutTime"] is True
    assert obj["start"] == "2024-02-29T00:00:00"
    assert obj["duration"] == "P2D"
    ev = _vevent(jscal_to_ical(obj))
    assert ev.decoded("DTSTART") == date(2024, 2, 29)
    assert ev.decoded("DTEND") == date(2024, 3, 2)


def test_duration_property_is_kept_as_written() -> None:
    [obj] = ical_to_jscal(_event("DTSTART;TZID=Europe/Rome:20240305T090000\r\nDURATION:P1W\r\n"))
    assert obj["duration"] == "P1W"
    ev = _vevent(jscal_to_ical(obj))
    assert ev.decoded("DTEND") - ev.decoded("DTSTART") == timedelta(weeks=1)


@pytest.mark.parametrize(
    ("tzid", "iana"),
    [
        ("W. Europe Standard Time", "Europe/Berlin"),
        ("Eastern Standard Time", "America/New_York"),
        ("Tokyo Standard Time", "Asia/Tokyo"),
        ("/mozilla.org/20070129_1/America/New_York", "America/New_York"),
        ("/Europe/Stockholm", "Europe/Stockholm"),
    ],
)
def test_non_iana_tzid_maps_to_iana(tzid: str, iana: str) -> None:
    [obj] = ical_to_jscal(_event(f'DTSTART;TZID="{tzid}":20240305T090000\r\n'))
    assert obj["timeZone"] == iana
    text = jscal_to_ical(obj)
    assert f"DTSTART;TZID={iana}:20240305T090000\r\n" in text
    assert f"BEGIN:VTIMEZONE\r\nTZID:{iana}\r\n" in text


def test_custom_vtimezone_is_kept_as_timezone_object() -> None:
    tz = (
        "BEGIN:VTIMEZONE\r\nTZID:Mars Base Time\r\nBEGIN:STANDARD\r\nDTSTART:19700101T000000\r\n"
        "TZOFFSETFROM:+0330\r\nTZOFFSETTO:+0330\r\nTZNAME:MBT\r\nEND:STANDARD\r\nEND:VTIMEZONE\r\n"
    )
    [obj] = ical_to_jscal(_event("DTSTART;TZID=Mars Base Time:20240402T100000\r\n", tz))
    assert obj["timeZone"] == "/Mars Base Time"
    rule = obj["timeZones"]["/Mars Base Time"]["standard"][0]
    assert (rule["offsetFrom"], rule["offsetTo"]) == ("+0330", "+0330")
    text = jscal_to_ical(obj)
    assert "TZID:Mars Base Time\r\n" in text
    start = _vevent(text).decoded("DTSTART")
    assert start.astimezone(UTC) == datetime(2024, 4, 2, 6, 30, tzinfo=UTC)
    assert ical_to_jscal(text) == [obj]


def test_end_in_another_time_zone() -> None:
    [obj] = ical_to_jscal(
        _event(
            "DTSTART;TZID=America/New_York:20240402T080000\r\n"
            "DTEND;TZID=America/Los_Angeles:20240402T111500\r\n"
        )
    )
    assert obj["duration"] == "PT6H15M"
    assert obj["locations"]["end"] == {
        "@type": "Location",
        "relativeTo": "end",
        "timeZone": "America/Los_Angeles",
    }
    text = jscal_to_ical(obj)
    assert "DTEND;TZID=America/Los_Angeles:20240402T111500\r\n" in text
    assert "TZID:America/Los_Angeles\r\n" in text


def test_unknown_tzid_without_definition_reads_as_floating_and_is_restored() -> None:
    [obj] = ical_to_jscal(_event('DTSTART;TZID="Western/Central Europe":20211101T160000\r\n'))
    assert "timeZone" not in obj
    text = jscal_to_ical(obj)
    assert "DTSTART;TZID=Western/Central Europe:20211101T160000\r\n" in text


@pytest.mark.parametrize(
    "zone",
    [
        "Europe/Berlin",
        "America/New_York",
        "Australia/Sydney",
        "Asia/Jerusalem",
        "America/Sao_Paulo",
    ],
)
def test_generated_vtimezone_agrees_with_the_iana_database(zone: str) -> None:
    cal = icalendar.Calendar.from_ical(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:x\r\n" + vtimezone(zone) + "END:VCALENDAR\r\n"
    )
    [comp] = cal.walk("VTIMEZONE")
    assert isinstance(comp, icalendar.Timezone)
    ours = comp.to_tz()
    ref = zoneinfo.ZoneInfo(zone)
    t = datetime(1975, 1, 1)
    mismatches = []
    while t < datetime(2045, 1, 1):
        # noon avoids the ambiguous and missing hours around transitions
        probe = t.replace(hour=12)
        if probe.replace(tzinfo=ours).utcoffset() != probe.replace(tzinfo=ref).utcoffset():
            mismatches.append(probe)
        t += timedelta(days=5)
    assert mismatches == []


def test_vtimezone_only_for_zones_used() -> None:
    objs = [
        {"@type": "Event", "uid": "a", "start": "2024-01-01T10:00:00", "timeZone": "Asia/Tokyo"},
        {"@type": "Event", "uid": "b", "start": "2024-01-01T10:00:00", "timeZone": "Asia/Tokyo"},
        {"@type": "Event", "uid": "c", "start": "2024-01-01T10:00:00", "timeZone": "Etc/UTC"},
    ]
    text = jscal_to_ical(objs)
    assert text.count("BEGIN:VTIMEZONE") == 1
    assert text.count("BEGIN:VEVENT") == 3
