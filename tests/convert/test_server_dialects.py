"""What real servers send back converts cleanly (RFC 8984 §4 with server additions).

Cyrus 3.6 (``jsevent``, singular ``recurrenceRule``, ``calendarId``, ``null`` everywhere,
``x-href``/``blobId``) and Cyrus 3.10 / Stalwart (``Event``, ``calendarIds``, ``id``, ``isDraft``,
``isOrigin``, ``utcStart``). Server-only keys are ignored, never turned into X- properties.
"""

from __future__ import annotations

from typing import Any

import icalendar

from jmapsyncd.convert import JSON_PROP, ical_to_jscal, jscal_to_ical

CYRUS_36: dict[str, Any] = {
    "@type": "jsevent",
    "id": "cyrus-1",
    "calendarId": "Default",
    "uid": "cyrus-1",
    "x-href": "/dav/calendars/user/alice/Default/cyrus-1.ics",
    "blobId": "Gabc",
    "title": "Weekly",
    "description": "",
    "descriptionContentType": "text/plain",
    "start": "2026-12-01T10:00:00",
    "timeZone": "Europe/Berlin",
    "duration": "PT1H",
    "showWithoutTime": False,
    "recurrenceRule": {
        "@type": "RecurrenceRule",
        "frequency": "weekly",
        "interval": 1,
        "rscale": "gregorian",
        "skip": "omit",
        "firstDayOfWeek": "mo",
        "byDay": [{"@type": "NDay", "day": "tu", "nthOfPeriod": None}],
        "byMonthDay": None,
        "byMonth": None,
        "count": 5,
        "until": None,
    },
    "recurrenceOverrides": None,
    "excludedRecurrenceRules": None,
    "participants": {
        "p1": {
            "@type": "Participant",
            "name": "Bob",
            "email": "bob@example.com",
            "sendTo": {"imip": "mailto:bob@example.com"},
            "kind": "individual",
            "roles": {"attendee": True},
            "participationStatus": "needs-action",
            "expectReply": True,
            "scheduleForceSend": False,
            "locationId": None,
            "participationComment": None,
            "delegatedTo": None,
        }
    },
    "replyTo": {"imip": "mailto:alice@example.com"},
    "alerts": {
        "a1": {
            "@type": "Alert",
            "trigger": {"@type": "OffsetTrigger", "offset": "-PT15M", "relativeTo": "start"},
            "action": "display",
            "acknowledged": None,
            "relatedTo": None,
        }
    },
    "useDefaultAlerts": False,
    "locations": None,
    "virtualLocations": None,
    "links": None,
    "keywords": None,
    "color": None,
    "privacy": "public",
    "freeBusyStatus": "busy",
    "status": "confirmed",
    "priority": 0,
    "sequence": 0,
    "created": "2026-11-01T09:00:00Z",
    "updated": "2026-11-02T09:00:00Z",
    "prodId": "-//CyrusIMAP.org//Cyrus 3.6.1//EN",
    "method": None,
    "isDraft": False,
    "locale": None,
    "localizations": None,
    "relatedTo": None,
    "excluded": False,
    "recurrenceId": None,
    "participantId": None,
}

STALWART: dict[str, Any] = {
    "uid": "st-1",
    "@type": "Event",
    "duration": "PT30M",
    "updated": "2026-11-02T09:00:00Z",
    "timeZone": "Europe/Paris",
    "start": "2026-12-01T10:00:00",
    "title": "From Stalwart",
    "id": "bd",
    "calendarIds": {"b": True},
    "isDraft": False,
    "isOrigin": True,
    "utcStart": "2026-12-01T09:00:00Z",
    "utcEnd": "2026-12-01T09:30:00Z",
}


def _parse(text: str) -> icalendar.Calendar:
    cal = icalendar.Calendar.from_ical(text)
    assert not [c.name for c in cal.walk() if getattr(c, "errors", None)]
    return cal


def test_cyrus_36_event_converts_without_leftovers() -> None:
    text = jscal_to_ical(CYRUS_36)
    cal = _parse(text)
    [ev] = cal.walk("VEVENT")
    assert str(ev["SUMMARY"]) == "Weekly"
    assert ev["RRULE"].to_ical() == b"FREQ=WEEKLY;COUNT=5;BYDAY=TU"
    assert str(ev["ORGANIZER"]) == "mailto:alice@example.com"
    assert "DESCRIPTION" not in ev  # "" is no description
    assert JSON_PROP not in text
    assert "x-href" not in text.lower()


def test_cyrus_36_event_reads_back_in_ietf_form() -> None:
    [obj] = ical_to_jscal(jscal_to_ical(CYRUS_36))
    assert obj["@type"] == "Event"
    assert "recurrenceRule" not in obj
    assert obj["recurrenceRules"] == [
        {
            "@type": "RecurrenceRule",
            "frequency": "weekly",
            "byDay": [{"@type": "NDay", "day": "tu"}],
            "count": 5,
        }
    ]
    assert obj["alerts"]["a1"]["trigger"] == {"@type": "OffsetTrigger", "offset": "-PT15M"}
    assert "id" not in obj
    assert "calendarId" not in obj


def test_stalwart_event_ignores_server_keys() -> None:
    text = jscal_to_ical(STALWART)
    _parse(text)
    assert JSON_PROP not in text
    [obj] = ical_to_jscal(text)
    assert obj == {
        "@type": "Event",
        "uid": "st-1",
        "start": "2026-12-01T10:00:00",
        "timeZone": "Europe/Paris",
        "duration": "PT30M",
        "title": "From Stalwart",
        "updated": "2026-11-02T09:00:00Z",
    }


def test_missing_type_is_an_event() -> None:
    # Cyrus 3.6 accepts and may return objects without @type
    obj = {k: v for k, v in STALWART.items() if k != "@type"}
    assert "BEGIN:VEVENT" in jscal_to_ical(obj)


def test_jstask_becomes_vtodo() -> None:
    text = jscal_to_ical({"@type": "jstask", "uid": "t", "title": "x"})
    assert "BEGIN:VTODO" in text
