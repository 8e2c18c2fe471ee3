"""Event shapes per dialect (JMAP Calendars draft; RFC 8984) and their normalisation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from jmapsyncd.errors import JMAPSetError
from jmapsyncd.protocol.dialect import (
    Dialect,
    dialect_from_session,
    event_from_wire,
    event_to_wire,
    query_datetime,
    replacement_patch,
)
from jmapsyncd.protocol.flows import learn_from_set_error
from jmapsyncd.protocol.session import parse_session
from tests.protocol.scripted import session_json


def _dialect(name: str) -> Dialect:
    found = dialect_from_session(parse_session(session_json(name), "http://h/"))
    assert found is not None
    return found


IETF = _dialect("ietf")
CYRUS36 = _dialect("cyrus36")
STALWART = IETF.learn(recurrence_rules_list=False, in_calendars_filter=False)

RULE = {"@type": "RecurrenceRule", "frequency": "weekly", "count": 3}


def event(**extra: Any) -> dict[str, Any]:
    return {
        "@type": "Event",
        "uid": "u1",
        "title": "T",
        "start": "2026-12-01T10:00:00",
        "duration": "PT1H",
        **extra,
    }


class TestToWire:
    def test_cyrus36_shape(self) -> None:
        wire = event_to_wire(event(recurrenceRules=[RULE]), CYRUS36, calendar_id="Default")
        assert wire["@type"] == "jsevent"
        assert wire["calendarId"] == "Default"
        assert "calendarIds" not in wire
        assert wire["recurrenceRule"] == RULE
        assert "recurrenceRules" not in wire

    def test_ietf_shape(self) -> None:
        wire = event_to_wire(event(recurrenceRules=[RULE]), IETF, calendar_id="c")
        assert wire["@type"] == "Event"
        assert wire["calendarIds"] == {"c": True}
        assert wire["recurrenceRules"] == [RULE]

    def test_stalwart_never_gets_rules_lists_even_null(self) -> None:
        patch = event_to_wire(replacement_patch(event()), STALWART, patch=True)
        assert "recurrenceRules" not in patch
        assert "excludedRecurrenceRules" not in patch
        assert patch["recurrenceRule"] is None

    def test_server_owned_properties_are_not_sent(self) -> None:
        fetched = event(id="x", isOrigin=True, baseEventId=None, method="request")
        wire = event_to_wire(fetched, STALWART, patch=True)
        assert not {"id", "isOrigin", "baseEventId", "method"} & set(wire)

    def test_version_is_dropped_once_refused(self) -> None:
        assert "version" in event_to_wire(event(version="1.0"), IETF)
        assert "version" not in event_to_wire(
            event(version="1.0"), IETF.learn(accepts_version=False)
        )

    def test_refused_vendor_properties_are_dropped_once_learned(self) -> None:
        vendor = {"example.com:extra": {"a": 1}}
        assert "example.com:extra" in event_to_wire(event(**vendor), IETF)
        error = JMAPSetError.from_set_error(
            "k0", {"type": "invalidProperties", "properties": ["example.com:extra"]}
        )
        learned = learn_from_set_error(error, IETF)
        assert learned is not None
        assert learned.rejected_properties == {"example.com:extra"}
        assert "example.com:extra" not in event_to_wire(event(**vendor), learned)
        patch = event_to_wire({"example.com:extra/a": 2, "title": "x"}, learned, patch=True)
        assert patch == {"title": "x"}

    def test_a_refused_standard_property_is_not_learned_for_every_event(self) -> None:
        error = JMAPSetError.from_set_error(
            "k0", {"type": "invalidProperties", "properties": ["title"]}
        )
        assert learn_from_set_error(error, IETF) is None

    def test_alert_triggers_get_their_type(self) -> None:
        alerts = {
            "a": {"trigger": {"offset": "-PT5M"}, "action": "display"},
            "b": {"trigger": {"when": "2026-12-01T09:00:00Z"}},
        }
        wire = event_to_wire(event(alerts=alerts), IETF)
        assert wire["alerts"]["a"]["trigger"]["@type"] == "OffsetTrigger"
        assert wire["alerts"]["b"]["trigger"]["@type"] == "AbsoluteTrigger"
        assert wire["alerts"]["a"]["@type"] == "Alert"

    def test_owner_participant_gives_reply_to(self) -> None:
        participants = {
            "o": {"roles": {"owner": True}, "sendTo": {"imip": "mailto:o@example.com"}},
            "a": {"roles": {"attendee": True}, "sendTo": {"imip": "mailto:a@example.com"}},
        }
        wire = event_to_wire(event(participants=participants), IETF)
        assert wire["replyTo"] == {"imip": "mailto:o@example.com"}

    def test_pointer_patches_follow_the_dialect(self) -> None:
        patch = {"recurrenceRules/0/count": 5, "calendarIds/new": True, "calendarIds/old": None}
        assert event_to_wire(patch, CYRUS36, patch=True) == {
            "recurrenceRule/count": 5,
            "calendarId": "new",
        }
        assert event_to_wire(patch, IETF, patch=True) == {
            "recurrenceRules/0/count": 5,
            "calendarIds": {"new": True},
        }
        assert event_to_wire({"recurrenceRules/1": RULE}, STALWART, patch=True) == {}

    def test_input_is_not_mutated(self) -> None:
        original = event(recurrenceRules=[RULE], alerts={"a": {"trigger": {"offset": "-PT1M"}}})
        event_to_wire(original, CYRUS36, calendar_id="c")
        assert original["recurrenceRules"] == [RULE]
        assert "@type" not in original["alerts"]["a"]["trigger"]


class TestFromWire:
    def test_cyrus36_event_is_normalised(self) -> None:
        raw = {
            "@type": "jsevent",
            "calendarId": "Default",
            "recurrenceRule": RULE,
            "title": None,
            "x-href": "/dav/calendars/user/a/Default/u.ics",
            "blobId": "G1",
        }
        assert event_from_wire(raw) == {
            "@type": "Event",
            "calendarIds": {"Default": True},
            "recurrenceRules": [RULE],
        }

    def test_cyrus36_error_no_value_location_name_is_no_name(self) -> None:
        """time_end_timezone.ics: Cyrus 3.6 names a nameless end-zone location 'ERROR: No Value'."""
        end = {"@type": "Location", "relativeTo": "end", "timeZone": "America/Los_Angeles"}
        raw: dict[str, Any] = {
            "@type": "jsevent",
            "locations": {"end": {**end, "name": "ERROR: No Value"}},
        }
        assert event_from_wire(raw)["locations"] == {"end": end}
        assert raw["locations"]["end"]["name"] == "ERROR: No Value"  # input not mutated

    def test_stalwart_singular_rule_becomes_a_list(self) -> None:
        raw = {"@type": "Event", "calendarIds": {"b": True}, "recurrenceRule": RULE}
        assert event_from_wire(raw)["recurrenceRules"] == [RULE]


class TestQueryDatetime:
    @pytest.mark.parametrize(
        ("dialect", "expected"),
        [(CYRUS36, "2026-12-01T10:00:00Z"), (IETF, "2026-12-01T10:00:00")],
    )
    def test_seed_format(self, dialect: Dialect, expected: str) -> None:
        assert query_datetime("2026-12-01T10:00:00", dialect) == expected

    def test_aware_datetime_is_converted_to_utc(self) -> None:
        value = datetime(2026, 12, 1, 11, 0, tzinfo=timezone(timedelta(hours=1)))
        assert query_datetime(value, IETF) == "2026-12-01T10:00:00"
        assert query_datetime(datetime(2026, 1, 2, tzinfo=UTC), CYRUS36) == "2026-01-02T00:00:00Z"

    def test_z_and_offsets_in_strings(self) -> None:
        assert query_datetime("2026-12-01T10:00:00Z", IETF) == "2026-12-01T10:00:00"
        assert query_datetime("2026-12-01T11:00:00+01:00", IETF) == "2026-12-01T10:00:00"
        assert query_datetime("2026-12-01", CYRUS36) == "2026-12-01T00:00:00Z"
