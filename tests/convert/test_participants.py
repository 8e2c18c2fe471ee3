"""People and places: ORGANIZER/ATTENDEE ⇄ participants, LOCATION/GEO ⇄ locations,
CONFERENCE ⇄ virtualLocations, URL/ATTACH ⇄ links (RFC 8984 §4.2.5, §4.2.6, §4.2.7, §4.4.5,
§4.4.6; RFC 5545 §3.8.4.1, §3.8.4.3, §3.8.1.1; RFC 7986 §5.11).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import icalendar

from jmapsyncd.convert import ical_to_jscal, jscal_to_ical

FIXTURES = Path(__file__).parent.parent / "fixtures" / "convert"


def _obj(name: str) -> dict[str, Any]:
    [obj] = ical_to_jscal((FIXTURES / f"{name}.ics").read_text())
    return obj


def _by_name(obj: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {p["name"]: p for p in obj["participants"].values()}


def test_organizer_who_is_also_chair_is_one_participant() -> None:
    obj = _obj("participants")
    ann = _by_name(obj)["Ann Organiser"]
    assert ann["roles"] == {"owner": True, "chair": True, "attendee": True}
    assert ann["sendTo"] == {"imip": "mailto:ann@example.com"}
    assert ann["sentBy"] == "assistant@example.com"
    assert obj["replyTo"] == {"imip": "mailto:ann@example.com"}


def test_attendee_parameters() -> None:
    people = _by_name(_obj("participants"))
    bob, carol = people["Bob"], people["Carol"]
    assert bob["expectReply"] is True
    assert bob["participationStatus"] == "needs-action"
    assert bob["kind"] == "individual"
    assert carol["roles"] == {"optional": True, "attendee": True}
    assert carol["email"] == "carol@home.example"  # EMAIL parameter wins over the address
    assert carol["language"] == "de"
    room = people["Room 101"]
    assert room["kind"] == "location"
    assert room["roles"] == {"informational": True}
    assert room["scheduleAgent"] == "client"
    assert people["Team"]["kind"] == "group"
    assert people["Team"]["scheduleStatus"] == ["2.0"]


def test_delegation_and_membership_point_at_participant_ids() -> None:
    obj = _obj("participants")
    ids = {p["name"]: pid for pid, p in obj["participants"].items()}
    people = _by_name(obj)
    assert people["Dave"]["delegatedTo"] == {ids["Erin"]: True}
    assert people["Erin"]["delegatedFrom"] == {ids["Dave"]: True}
    assert people["Erin"]["memberOf"] == {ids["Team"]: True}
    text = jscal_to_ical(obj)
    [ev] = icalendar.Calendar.from_ical(text).walk("VEVENT")
    attendees = ev.get("ATTENDEE")
    assert isinstance(attendees, list)
    dave = next(a for a in attendees if str(a) == "mailto:dave@example.com")
    assert dave.params["DELEGATED-TO"] == "mailto:erin@example.com"


def test_contact_and_resources() -> None:
    people = _by_name(_obj("participants"))
    assert people["Front desk, +1 555 0100"]["roles"] == {"contact": True}
    assert people["Projector"]["kind"] == "resource"
    text = jscal_to_ical(_obj("participants"))
    assert "CONTACT:Front desk\\, +1 555 0100\r\n" in text
    assert "RESOURCES:Projector\r\n" in text


def test_server_participant_ids_survive_the_round_trip() -> None:
    obj = {
        "@type": "Event",
        "uid": "ids",
        "start": "2024-01-01T10:00:00",
        "participants": {
            "srv-owner": {
                "@type": "Participant",
                "name": "Ann",
                "sendTo": {"imip": "mailto:ann@example.com"},
                "roles": {"owner": True},
            },
            "srv-bob": {
                "@type": "Participant",
                "sendTo": {"imip": "mailto:bob@example.com"},
                "roles": {"attendee": True},
                "participationStatus": "accepted",
                "invitedBy": "srv-owner",
            },
        },
        "locations": {"loc-a": {"@type": "Location", "name": "Hall"}},
        "virtualLocations": {"v-9": {"@type": "VirtualLocation", "uri": "https://m.example"}},
    }
    [back] = ical_to_jscal(jscal_to_ical(obj))
    assert set(back["participants"]) == {"srv-owner", "srv-bob"}
    assert back["participants"]["srv-bob"]["invitedBy"] == "srv-owner"
    assert set(back["locations"]) == {"loc-a"}
    assert set(back["virtualLocations"]) == {"v-9"}


def test_reply_to_without_owner_becomes_organizer() -> None:
    obj = {
        "@type": "Event",
        "uid": "r",
        "start": "2024-01-01T10:00:00",
        "replyTo": {"imip": "mailto:boss@example.com"},
    }
    assert "ORGANIZER:mailto:boss@example.com\r\n" in jscal_to_ical(obj)


def test_location_geo_conference_links() -> None:
    obj = _obj("places_links")
    loc = obj["locations"]["1"]
    assert loc["name"] == "HQ, 3rd floor"
    assert loc["coordinates"] == "geo:48.85299,2.36885"
    assert loc["links"]["1"]["href"] == "https://maps.example.com/hq"
    video = obj["virtualLocations"]["1"]
    assert video["features"] == {"audio": True, "video": True}
    assert video["name"] == "Video call"
    links = obj["links"]
    assert links["1"] == {
        "@type": "Link",
        "href": "https://example.com/agenda",
        "rel": "describedby",
    }
    assert links["2"]["title"] == "slides.pdf"
    assert links["3"]["href"] == "data:text/plain;base64,aGVsbG8gd29ybGQ="
    text = jscal_to_ical(obj)
    [ev] = icalendar.Calendar.from_ical(text).walk("VEVENT")
    assert ev.decoded("GEO") is not None
    assert str(ev["URL"]) == "https://example.com/agenda"
    attachments = ev.get("ATTACH")
    assert isinstance(attachments, list)
    attach = [a for a in attachments if a.params.get("ENCODING") == "BASE64"]
    assert len(attach) == 1


def test_extra_locations_are_not_lost() -> None:
    obj = {
        "@type": "Event",
        "uid": "l",
        "start": "2024-01-01T10:00:00",
        "locations": {
            "a": {"@type": "Location", "name": "First", "description": "ground floor"},
            "b": {"@type": "Location", "name": "Second"},
        },
    }
    [back] = ical_to_jscal(jscal_to_ical(obj))
    assert json.dumps(back["locations"], sort_keys=True) == json.dumps(
        obj["locations"], sort_keys=True
    )
