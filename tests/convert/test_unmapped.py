"""Nothing is dropped: unmapped iCalendar data and unknown JSCalendar properties survive.

draft-ietf-calext-jscalendar-icalendar's rule that unmapped data is carried; here under the
vendor property ``jmapsyncd.org:ical`` (jCal arrays, RFC 7265) one way and ``X-JMAPSYNCD-JSON``
the other.
"""

from __future__ import annotations

from pathlib import Path

import icalendar

from jmapsyncd.convert import JSON_PROP, VENDOR, ical_to_jscal, jscal_to_ical

FIXTURES = Path(__file__).parent.parent / "fixtures" / "convert"


def test_x_and_iana_properties_parameters_and_components_are_carried() -> None:
    text = (FIXTURES / "unmapped.ics").read_text()
    [obj] = ical_to_jscal(text)
    vendor = obj[VENDOR]
    names = [p[0] for p in vendor["properties"]]
    assert names == [
        "x-microsoft-cdo-busystatus",
        "x-apple-travel-advisory-behavior",
        "comment",
        "request-status",
    ]
    assert vendor["components"][0][0] == "x-custom"
    assert vendor["convertedProperties"]["start"] == {"parameters": {"x-original": "yes"}}
    assert vendor["calendarProperties"][0] == ["x-wr-calname", {}, "unknown", "Work"]
    out = jscal_to_ical(obj)
    cal = icalendar.Calendar.from_ical(out)
    assert str(cal["X-WR-CALNAME"]) == "Work"
    [ev] = cal.walk("VEVENT")
    assert str(ev["X-MICROSOFT-CDO-BUSYSTATUS"]) == "BUSY"
    assert ev["X-APPLE-TRAVEL-ADVISORY-BEHAVIOR"].params["X-PARAM"] == "a,b"
    assert ev["DTSTART"].params["X-ORIGINAL"] == "yes"
    assert ev["SUMMARY"].params["LANGUAGE"] == "en"
    assert [c.name for c in ev.subcomponents] == ["X-CUSTOM"]
    assert ical_to_jscal(out) == [obj]


def test_duplicate_single_properties_are_kept() -> None:
    text = (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:x\r\nBEGIN:VEVENT\r\nUID:d\r\n"
        "DTSTAMP:20240101T000000Z\r\nDTSTART:20240101T100000Z\r\nDTSTART:20240101T120000Z\r\n"
        "SUMMARY:one\r\nSUMMARY:two\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    )
    [obj] = ical_to_jscal(text)
    assert obj["start"] == "2024-01-01T10:00:00"
    assert obj["title"] == "one"
    out = jscal_to_ical(obj)
    assert "DTSTART:20240101T120000Z\r\n" in out
    assert "SUMMARY:two\r\n" in out


def test_other_calendar_components_are_carried() -> None:
    text = (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:x\r\nBEGIN:VEVENT\r\nUID:d\r\n"
        "DTSTAMP:20240101T000000Z\r\nDTSTART:20240101T100000Z\r\nEND:VEVENT\r\n"
        "BEGIN:VJOURNAL\r\nUID:j\r\nSUMMARY:note\r\nEND:VJOURNAL\r\nEND:VCALENDAR\r\n"
    )
    out = jscal_to_ical(ical_to_jscal(text))
    assert "BEGIN:VJOURNAL\r\nUID:j\r\nSUMMARY:note\r\nEND:VJOURNAL\r\n" in out


def test_unknown_jscalendar_properties_become_x_properties() -> None:
    obj = {
        "@type": "Event",
        "uid": "u",
        "start": "2024-01-01T10:00:00",
        "locale": "fr",
        "example.com:flag": {"on": True, "n": [1, 2]},
        "participants": {
            "p": {
                "@type": "Participant",
                "sendTo": {"imip": "mailto:p@example.com"},
                "roles": {"attendee": True},
                "participationComment": "Running late; sorry",
            }
        },
        "id": "server-id",
        "calendarIds": {"c": True},
    }
    text = jscal_to_ical(obj)
    assert JSON_PROP in text
    assert "server-id" not in text
    [back] = ical_to_jscal(text)
    assert back["locale"] == "fr"
    assert back["example.com:flag"] == {"on": True, "n": [1, 2]}
    assert back["participants"]["p"]["participationComment"] == "Running late; sorry"
    assert "id" not in back
    assert "calendarIds" not in back


def test_unmapped_enumerations_are_kept() -> None:
    text = (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:x\r\nBEGIN:VEVENT\r\nUID:d\r\n"
        "DTSTAMP:20240101T000000Z\r\nDTSTART:20240101T100000Z\r\nCLASS:X-SECRET-SQUIRREL\r\n"
        "STATUS:X-MAYBE\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    )
    [obj] = ical_to_jscal(text)
    assert "privacy" not in obj
    out = jscal_to_ical(obj)
    assert "CLASS:X-SECRET-SQUIRREL\r\n" in out
    assert "STATUS:X-MAYBE\r\n" in out


def test_summary_language_is_the_locale() -> None:
    # RFC 8984 §4.2.8 locale ⇄ the LANGUAGE parameter of SUMMARY
    obj = {"@type": "Event", "uid": "l", "title": "Réunion", "locale": "fr-CA"}
    text = jscal_to_ical(obj)
    assert "SUMMARY;LANGUAGE=fr-CA:Réunion\r\n" in text
    assert ical_to_jscal(text) == [obj]


def test_unknown_parameters_on_scalar_properties_are_kept() -> None:
    text = (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:x\r\nBEGIN:VTODO\r\nUID:p\r\n"
        "DTSTAMP;X-A=1:20240101T000000Z\r\nCREATED;X-B=2:20231231T000000Z\r\n"
        "CLASS;X-C=3:PRIVATE\r\nPRIORITY;X-D=4:2\r\nSEQUENCE;X-E=5:1\r\nCOLOR;X-F=6:red\r\n"
        "STATUS;X-G=7:IN-PROCESS\r\nDUE;X-H=8:20240105T100000Z\r\nPERCENT-COMPLETE;X-I=9:10\r\n"
        "END:VTODO\r\nEND:VCALENDAR\r\n"
    )
    [obj] = ical_to_jscal(text)
    assert obj["privacy"] == "private"
    assert obj["priority"] == 2
    out = jscal_to_ical(obj)
    for line in (
        "DTSTAMP;X-A=1:20240101T000000Z",
        "CREATED;X-B=2:20231231T000000Z",
        "CLASS;X-C=3:PRIVATE",
        "PRIORITY;X-D=4:2",
        "SEQUENCE;X-E=5:1",
        "COLOR;X-F=6:red",
        "STATUS;X-G=7:IN-PROCESS",
        "DUE;X-H=8:20240105T100000Z",
        "PERCENT-COMPLETE;X-I=9:10",
    ):
        assert line + "\r\n" in out
    assert ical_to_jscal(out) == [obj]


def test_broken_time_stamps_are_kept_not_fatal() -> None:
    text = (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:x\r\nBEGIN:VEVENT\r\nUID:s\r\n"
        "DTSTAMP:yesterday\r\nCREATED:20241301T000000Z\r\nDTSTART:20240101T100000Z\r\n"
        "END:VEVENT\r\nEND:VCALENDAR\r\n"
    )
    [obj] = ical_to_jscal(text)
    assert "created" not in obj
    out = jscal_to_ical(obj)
    assert "DTSTAMP:yesterday\r\n" in out
    assert "CREATED:20241301T000000Z\r\n" in out
