"""Parts of an event the server refuses: left out of that event only, retried, and reported.

The refusals are the ones measured on Cyrus 3.6 and 3.10 (``invalidProperties`` naming JSON
pointers into the event, RFC 8620 §5.3); the answers here are scripted, no server runs.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest

from jmapsyncd.protocol import flows
from jmapsyncd.protocol.dialect import (
    Dialect,
    drop_paths,
    event_to_wire,
    narrowest_drops,
    replacement_patch,
)
from tests.protocol.scripted import jmap, run, state_for

Reply = dict[str, Any] | tuple[str, dict[str, Any]]

OWNER = {"roles": {"owner": True}, "sendTo": {"imip": "mailto:ann@example.com"}}
DAVE = {
    "roles": {"attendee": True},
    "sendTo": {"imip": "mailto:dave@example.com"},
    "participationStatus": "delegated",
    "delegatedTo": {"erin": True},
}
CONTACT = {"roles": {"contact": True}, "name": "Front desk"}


def _event(**extra: Any) -> dict[str, Any]:
    return {
        "uid": "u1@example.com",
        "title": "Planning",
        "start": "2024-04-10T13:00:00",
        "timeZone": "Etc/UTC",
        "calendarIds": {"c": True},
        **extra,
    }


class TestNarrowestDrops:
    def test_a_refused_value_is_dropped_alone(self) -> None:
        ev = _event(participants={"o": OWNER, "d": DAVE})
        assert narrowest_drops(ev, ["participants/d/participationStatus"]) == [
            "participants/d/participationStatus"
        ]

    def test_a_missing_member_drops_its_container(self) -> None:
        ev = _event(participants={"o": OWNER, "contact1": CONTACT})
        assert narrowest_drops(ev, ["participants/contact1/sendTo"]) == ["participants/contact1"]

    def test_an_override_named_for_a_vendor_key_loses_only_that_key(self) -> None:
        override = {"title": "x", "example.com:ical/range": "THISANDFUTURE"}
        ev = _event(recurrenceOverrides={"2024-01-30T09:30:00": override})
        assert narrowest_drops(ev, ["recurrenceOverrides/2024-01-30T09:30:00"]) == [
            "recurrenceOverrides/2024-01-30T09:30:00/example.com:ical/range"
        ]

    def test_cyrus36_prefix_of_an_unrelated_property_is_skipped(self) -> None:
        override = {"title": "x", "example.com:ical/range": "THISANDFUTURE"}
        ev = _event(
            recurrenceRule={"frequency": "weekly"},
            recurrenceOverrides={"2024-01-30T09:30:00": override},
        )
        refused = ["recurrenceRule/recurrenceOverrides/2024-01-30T09:30:00"]
        assert narrowest_drops(ev, refused) == [
            "recurrenceOverrides/2024-01-30T09:30:00/example.com:ical/range"
        ]

    @pytest.mark.parametrize(
        "path", ["timeZones", "timeZone", "start", "recurrenceOverrides/2024-01-30T09:30:00"]
    )
    def test_time_and_recurrence_are_never_dropped(self, path: str) -> None:
        ev = _event(
            timeZones={"/X": {}},
            recurrenceOverrides={"2024-01-30T09:30:00": {"excluded": True}},
        )
        assert narrowest_drops(ev, [path]) == []

    def test_pointer_keys_of_a_patch_are_found(self) -> None:
        patch = {"participants/d/participationStatus": "delegated", "title": "x"}
        paths = narrowest_drops(patch, ["participants/d/participationStatus"])
        assert paths == ["participants/d/participationStatus"]
        assert drop_paths(patch, paths) == paths
        assert patch == {"title": "x"}


class TestSetEventsLeavesOutWhatIsRefused:
    """participants.ics on Cyrus: one refused participant status made the whole create fail."""

    def test_refused_participant_paths_are_dropped_retried_and_reported(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        seen: list[dict[str, Any]] = []

        def handler(name: str, args: dict[str, Any]) -> Reply:
            obj = args["create"]["k0"]
            seen.append(obj)
            parts = obj["participants"]
            refused = [f"participants/{p}/sendTo" for p, v in parts.items() if "sendTo" not in v]
            refused += [
                f"participants/{p}/participationStatus"
                for p, v in parts.items()
                if v.get("participationStatus") == "delegated"
            ]
            if refused:
                return {"notCreated": {"k0": {"type": "invalidProperties", "properties": refused}}}
            return {"newState": "2", "created": {"k0": {"id": "E1"}}}

        ev = _event(participants={"o": OWNER, "d": DAVE, "contact1": CONTACT})
        with caplog.at_level(logging.WARNING, logger="jmapsyncd.protocol"):
            result, _ = run(flows.set_events(state_for(), create={"mine": ev}), jmap(handler))
        assert result.ok
        assert result.created["mine"] == {"id": "E1"}
        assert result.dropped == {
            "mine": ("participants/contact1", "participants/d/participationStatus")
        }
        assert len(seen) == 2
        assert set(seen[1]["participants"]) == {"o", "d"}
        assert seen[1]["participants"]["d"]["delegatedTo"] == {"erin": True}
        assert "participationStatus" not in seen[1]["participants"]["d"]
        assert ev["participants"]["contact1"] == CONTACT  # the caller's copy keeps everything
        [record] = caplog.records
        assert "u1@example.com" in record.getMessage()
        assert "participants/contact1" in record.getMessage()

    def test_a_refused_time_zone_without_a_definition_still_fails_the_create(self) -> None:
        seen: list[dict[str, Any]] = []

        def handler(name: str, args: dict[str, Any]) -> Reply:
            seen.append(args["create"]["k0"])
            return {
                "notCreated": {"k0": {"type": "invalidProperties", "properties": ["timeZones"]}}
            }

        ev = _event(timeZone="/Mars", timeZones={"/Mars": {"@type": "TimeZone"}})
        result, _ = run(flows.set_events(state_for(), create={"mine": ev}), jmap(handler))
        assert result.not_created["mine"].properties == ["timeZones"]
        assert result.dropped == {}
        # learned that custom zones are refused; one without rules cannot be re-encoded
        assert len(seen) == 2
        assert seen[1]["timeZones"] == {"/Mars": {"@type": "TimeZone"}}

    def test_cyrus36_override_path_does_not_flip_the_rule_shape(self) -> None:
        state = state_for("cyrus36")
        seen: list[dict[str, Any]] = []
        key = "2024-01-30T09:30:00"

        def handler(name: str, args: dict[str, Any]) -> Reply:
            if "sendSchedulingMessages" in args:
                return ("error", {"type": "invalidArguments"})
            obj = args["create"]["k0"]
            seen.append(obj)
            if any(":" in k for k in obj["recurrenceOverrides"][key]):
                refused = [f"recurrenceRule/recurrenceOverrides/{key}"]
                return {"notCreated": {"k0": {"type": "invalidProperties", "properties": refused}}}
            return {"newState": "2", "created": {"k0": {"id": "u1@example.com"}}}

        override = {"start": "2024-01-30T09:00:00", "example.com:ical/range": "THISANDFUTURE"}
        ev = _event(recurrenceRules=[{"frequency": "weekly"}], recurrenceOverrides={key: override})
        result, _ = run(flows.set_events(state, create={"mine": ev}), jmap(handler))
        assert result.ok
        assert result.dropped == {"mine": (f"recurrenceOverrides/{key}/example.com:ical/range",)}
        assert state.dialect is not None
        assert not state.dialect.recurrence_rules_list
        assert seen[-1]["recurrenceRule"] == {"frequency": "weekly"}
        assert seen[-1]["recurrenceOverrides"][key] == {"start": "2024-01-30T09:00:00"}


def test_a_refused_html_description_is_sent_as_plain_text_and_a_link() -> None:
    """misc.ics on Cyrus: ``descriptionContentType: text/html`` is refused; nothing is dropped."""
    state = state_for("ietf")
    seen: list[dict[str, Any]] = []

    def handler(name: str, args: dict[str, Any]) -> Reply:
        obj = args["create"]["k0"]
        seen.append(obj)
        if obj.get("descriptionContentType", "text/plain") != "text/plain":
            refused = ["descriptionContentType"]
            return {"notCreated": {"k0": {"type": "invalidProperties", "properties": refused}}}
        return {"newState": "2", "created": {"k0": {"id": "E1"}}}

    ev = _event(description="<p>Hi</p>", descriptionContentType="text/html")
    result, _ = run(flows.set_events(state, create={"mine": ev}), jmap(handler))
    assert result.ok
    assert result.dropped == {}
    assert state.dialect is not None
    assert not state.dialect.html_description
    assert "description" not in seen[1]
    assert seen[1]["links"]["description-html"]["contentType"] == "text/html"


MARS = {
    "@type": "TimeZone",
    "tzId": "Mars Base Time",
    "standard": [
        {
            "@type": "TimeZoneRule",
            "start": "1970-01-01T00:00:00",
            "offsetFrom": "+0330",
            "offsetTo": "+0330",
        }
    ],
}


def test_refused_custom_time_zones_are_learned_and_replaced_by_a_matching_iana_zone(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """time_custom_vtimezone.ics on Cyrus: ``timeZones`` refused with any content."""
    state = state_for("ietf")
    seen: list[dict[str, Any]] = []

    def handler(name: str, args: dict[str, Any]) -> Reply:
        obj = args["create"]["k0"]
        seen.append(obj)
        if "timeZones" in obj:
            refused = ["timeZones"]
            return {"notCreated": {"k0": {"type": "invalidProperties", "properties": refused}}}
        return {"newState": "2", "created": {"k0": {"id": "E1"}}}

    ev = _event(timeZone="/Mars", timeZones={"/Mars": MARS}, duration="PT1H")
    with caplog.at_level(logging.WARNING, logger="jmapsyncd.protocol"):
        result, _ = run(flows.set_events(state, create={"mine": ev}), jmap(handler))
    assert result.ok
    assert result.dropped == {"mine": ("timeZones/~1Mars",)}
    assert state.dialect is not None
    assert not state.dialect.custom_time_zones
    assert len(seen) == 2
    assert (seen[1]["start"], seen[1]["timeZone"]) == ("2024-04-10T13:00:00", "Asia/Tehran")
    assert ev["timeZones"] == {"/Mars": MARS}  # the caller's copy keeps the definition
    [record] = caplog.records
    assert "timeZones/~1Mars" in record.getMessage()


def test_rules_a_singular_rule_server_cannot_hold_are_reported() -> None:
    """recur_rules.ics on Cyrus 3.6: a second endless rule has no faithful form there."""
    state = state_for("cyrus36")
    seen: list[dict[str, Any]] = []

    def handler(name: str, args: dict[str, Any]) -> Reply:
        if "sendSchedulingMessages" in args:
            return ("error", {"type": "invalidArguments"})
        seen.append(args["create"]["k0"])
        return {"newState": "2", "created": {"k0": {"id": "u1@example.com"}}}

    rules = [{"frequency": "weekly"}, {"frequency": "daily", "count": 2}, {"frequency": "yearly"}]
    ev = _event(recurrenceRules=rules)
    result, _ = run(flows.set_events(state, create={"mine": ev}), jmap(handler))
    assert result.ok
    assert result.dropped == {"mine": ("recurrenceRules/2",)}
    assert seen[-1]["recurrenceRule"] == {"frequency": "weekly"}
    # the bounded daily rule's second day is an added date; its first is the start
    assert seen[-1]["recurrenceOverrides"] == {"2024-04-11T13:00:00": {}}


def test_patch_pointers_into_rules_a_singular_rule_server_lacks_are_reported() -> None:
    state = state_for("cyrus36")

    def handler(name: str, args: dict[str, Any]) -> Reply:
        if "sendSchedulingMessages" in args:
            return ("error", {"type": "invalidArguments"})
        assert set(args["update"]["u1@example.com"]) == {"title"}
        return {"newState": "3", "updated": {"u1@example.com": None}}

    patch = {"title": "x", "excludedRecurrenceRules/0/count": 2, "recurrenceRules/1": None}
    result, _ = run(flows.set_events(state, update={"u1@example.com": patch}), jmap(handler))
    assert result.ok
    assert set(result.dropped["u1@example.com"]) == {
        "excludedRecurrenceRules/0/count",
        "recurrenceRules/1",
    }


SINGULAR = Dialect(recurrence_rules_list=False)
RANGE = "jmapsyncd.org:ical/recurrenceIdRange"


class TestRulePatchesOnASingularRuleServer:
    """A partial patch keeps the server's rule and exceptions: nothing it lacks is written."""

    def test_excluded_rules_alone_leave_the_rule_alone(self) -> None:
        lost: list[str] = []
        patch = {"excludedRecurrenceRules": [{"frequency": "weekly"}]}
        assert event_to_wire(patch, SINGULAR, patch=True, lost=lost) == {}
        assert lost == ["excludedRecurrenceRules/0"]

    def test_rules_without_the_overrides_leave_the_overrides_alone(self) -> None:
        lost: list[str] = []
        rules = [{"frequency": "weekly"}, {"frequency": "daily", "count": 3}]
        patch = {"start": "2024-04-10T13:00:00", "recurrenceRules": rules}
        assert event_to_wire(patch, SINGULAR, patch=True, lost=lost) == {
            "start": "2024-04-10T13:00:00",
            "recurrenceRule": {"frequency": "weekly"},
        }
        assert lost == ["recurrenceRules/1"]

    def test_a_replacement_patch_is_folded(self) -> None:
        lost: list[str] = []
        rules = [{"frequency": "weekly"}, {"frequency": "daily", "count": 2}]
        patch = replacement_patch(_event(recurrenceRules=rules))
        out = event_to_wire(patch, SINGULAR, patch=True, lost=lost)
        assert lost == []
        assert out["recurrenceRule"] == {"frequency": "weekly"}
        assert out["recurrenceOverrides"] == {"2024-04-11T13:00:00": {}}


def test_a_range_that_cannot_be_expanded_is_left_out_and_reported() -> None:
    key = "2024-04-17T13:00:00"
    ev = _event(
        recurrenceRules=[{"frequency": "weekly"}],
        recurrenceOverrides={key: {"title": "later", RANGE: "THISANDFUTURE"}},
    )
    lost: list[str] = []
    out = event_to_wire(ev, Dialect(), lost=lost)
    assert out["recurrenceOverrides"] == {key: {"title": "later"}}
    assert lost == [f"recurrenceOverrides/{key}/{RANGE}"]


def test_a_bounded_series_with_an_excluded_rule_keeps_its_range_on_a_singular_rule_server() -> None:
    ev = _event(
        recurrenceRules=[{"frequency": "weekly", "count": 4}],
        excludedRecurrenceRules=[{"frequency": "weekly", "interval": 2, "count": 2}],
        recurrenceOverrides={"2024-04-17T13:00:00": {"title": "later", RANGE: "THISANDFUTURE"}},
    )
    lost: list[str] = []
    out = event_to_wire(ev, SINGULAR, lost=lost)
    assert lost == []
    assert out["recurrenceRule"] == {"frequency": "weekly", "count": 4}
    assert out["recurrenceOverrides"] == {
        "2024-04-10T13:00:00": {"excluded": True},
        "2024-04-17T13:00:00": {"title": "later"},
        "2024-04-24T13:00:00": {"excluded": True},
        "2024-05-01T13:00:00": {"title": "later"},
    }


@pytest.mark.parametrize("start", ["0001-01-01T00:30:00", "9999-12-31T23:00:00"])
def test_times_at_the_ends_of_the_calendar_never_raise(start: str) -> None:
    rule = {
        "@type": "TimeZoneRule",
        "start": "1970-01-01T00:00:00",
        "offsetFrom": "-0330",
        "offsetTo": "-0330",
    }
    zone = {"@type": "TimeZone", "tzId": "West", "standard": [rule]}
    key = start
    ev = _event(
        start=start,
        timeZone="/West",
        timeZones={"/West": zone},
        duration="PT2H",
        recurrenceRules=[{"frequency": "daily", "count": 3}],
        recurrenceOverrides={key: {"start": start, RANGE: "THISANDFUTURE"}},
    )
    for dialect in (Dialect(custom_time_zones=False), SINGULAR.learn(custom_time_zones=False)):
        out = event_to_wire(ev, dialect)
        assert out["timeZones"] == {"/West": zone}


def test_an_object_is_adapted_once_for_all_the_times_it_is_trimmed() -> None:
    adapted: list[dict[str, Any]] = []

    def adapter(
        obj: dict[str, Any], dialect: Dialect | None, patch: bool
    ) -> tuple[dict[str, Any], list[str]]:
        adapted.append(obj)
        return dict(obj), []

    def handler(name: str, args: dict[str, Any]) -> Reply:
        obj = args["create"]["k0"]
        refused = [
            f"participants/{p}/sendTo" for p, v in obj["participants"].items() if "sendTo" not in v
        ][:1]
        if refused:
            return {"notCreated": {"k0": {"type": "invalidProperties", "properties": refused}}}
        return {"newState": "2", "created": {"k0": {"id": "E1"}}}

    contacts = {f"c{i}": CONTACT for i in range(3)}
    ev = _event(participants={"o": OWNER, **contacts})
    flow = flows.set_objects(
        state_for(),
        flows.EVENT,
        create={"mine": ev},
        adapter=adapter,
        trimmer=narrowest_drops,
    )
    result, _ = run(flow, jmap(handler))
    assert result.dropped == {"mine": ("participants/c0", "participants/c1", "participants/c2")}
    assert len(adapted) == 1
