"""VALARM ⇄ alerts (RFC 8984 §4.5.2; RFC 5545 §3.6.6; RFC 9074 ACKNOWLEDGED, UID)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import icalendar

from jmapsyncd.convert import ical_to_jscal, jscal_to_ical

FIXTURES = Path(__file__).parent.parent / "fixtures" / "convert"


def _alerts() -> dict[str, Any]:
    [obj] = ical_to_jscal((FIXTURES / "alerts.ics").read_text())
    alerts: dict[str, Any] = obj["alerts"]
    return alerts


def test_offset_relative_to_start_uses_alarm_uid_as_id() -> None:
    a = _alerts()["before-start"]
    assert a["trigger"] == {"@type": "OffsetTrigger", "offset": "-PT15M"}
    assert a["action"] == "display"


def test_offset_relative_to_end_and_acknowledged() -> None:
    a = _alerts()["2"]
    assert a["trigger"] == {"@type": "OffsetTrigger", "offset": "PT5M", "relativeTo": "end"}
    assert a["acknowledged"] == "2024-04-10T12:05:00Z"


def test_absolute_email_alarm() -> None:
    a = _alerts()["3"]
    assert a["trigger"] == {"@type": "AbsoluteTrigger", "when": "2024-04-09T08:00:00Z"}
    assert a["action"] == "email"


def test_unusual_alarm_keeps_its_data() -> None:
    a = _alerts()["4"]
    kept = {p[0] for p in a["jmapsyncd.org:ical"]["properties"]}
    assert {"action", "repeat", "duration", "attach"} <= kept
    [obj] = ical_to_jscal((FIXTURES / "alerts.ics").read_text())
    [ev] = icalendar.Calendar.from_ical(jscal_to_ical(obj)).walk("VEVENT")
    actions = sorted(str(al["ACTION"]) for al in ev.walk("VALARM"))
    assert actions == ["AUDIO", "DISPLAY", "DISPLAY", "EMAIL"]


def test_alarm_without_trigger_or_with_garbage_does_not_crash() -> None:
    text = (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:x\r\nBEGIN:VEVENT\r\nUID:a\r\n"
        "DTSTAMP:20240101T000000Z\r\nDTSTART:20240101T100000Z\r\n"
        "BEGIN:VALARM\r\nACTION:DISPLAY\r\nEND:VALARM\r\n"
        "BEGIN:VALARM\r\nACTION:DISPLAY\r\nTRIGGER:soon\r\nDESCRIPTION:x\r\nEND:VALARM\r\n"
        "END:VEVENT\r\nEND:VCALENDAR\r\n"
    )
    [obj] = ical_to_jscal(text)
    assert set(obj["alerts"]) == {"1", "2"}
    assert "trigger" not in obj["alerts"]["2"]
    out = jscal_to_ical(obj)
    assert "TRIGGER:soon\r\n" in out


def test_jscalendar_alerts_get_required_alarm_properties() -> None:
    obj = {
        "@type": "Event",
        "uid": "x",
        "title": "Call",
        "start": "2024-01-01T10:00:00",
        "alerts": {
            "k1": {"@type": "Alert", "trigger": {"@type": "OffsetTrigger", "offset": "-PT5M"}},
            "k2": {
                "@type": "Alert",
                "action": "email",
                "trigger": {"@type": "AbsoluteTrigger", "when": "2024-01-01T08:00:00Z"},
            },
        },
    }
    text = jscal_to_ical(obj)
    [ev] = icalendar.Calendar.from_ical(text).walk("VEVENT")
    alarms = ev.walk("VALARM")
    assert [str(a["DESCRIPTION"]) for a in alarms] == ["Call", "Call"]
    assert str(alarms[1]["SUMMARY"]) == "Call"
    [back] = ical_to_jscal(text)
    assert set(back["alerts"]) == {"k1", "k2"}
    assert back["alerts"]["k2"]["trigger"]["when"] == "2024-01-01T08:00:00Z"
