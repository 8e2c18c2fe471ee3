"""Re-encodings for servers that hold less than RFC 8984: same occurrences, or the loss named.

Occurrences are compared with recurring_ical_events over what ``jscal_to_ical`` writes; EXRULE,
which that package does not apply, is only ever compared after it was folded into EXDATEs.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import icalendar
import pytest
import recurring_ical_events  # type: ignore[import-untyped]

from jmapsyncd.convert import ical_to_jscal, jscal_to_ical
from jmapsyncd.convert._reencode import (
    RANGE_KEY,
    expand_future_ranges,
    fold_recurrence_rules,
    replace_custom_zones,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "convert"


def _starts(obj: dict[str, Any]) -> list[datetime]:
    cal = icalendar.Calendar.from_ical(jscal_to_ical(obj))
    found = recurring_ical_events.of(cal).between(date(2020, 1, 1), date(2031, 1, 1))
    return sorted(e["DTSTART"].dt.astimezone(UTC) for e in found)


def _rule(freq: str, **parts: Any) -> dict[str, Any]:
    return {"@type": "RecurrenceRule", "frequency": freq, **parts}


def _event(**extra: Any) -> dict[str, Any]:
    return {
        "@type": "Event",
        "uid": "r@example.com",
        "title": "r",
        "start": "2024-01-01T10:00:00",
        "timeZone": "Europe/Berlin",
        "duration": "PT1H",
        **extra,
    }


class TestFoldRecurrenceRules:
    """RFC 8984 §4.3.2 / §4.3.4 on a server with one rule and no excluded rules."""

    def test_one_rule_is_left_alone(self) -> None:
        ev = _event(recurrenceRules=[_rule("weekly")])
        assert fold_recurrence_rules(ev) == (ev, [])

    def test_a_bounded_second_rule_becomes_added_dates(self) -> None:
        ev = _event(recurrenceRules=[_rule("weekly"), _rule("daily", count=3)])
        folded, lost = fold_recurrence_rules(ev)
        assert lost == []
        assert folded["recurrenceRules"] == [_rule("weekly")]
        # the daily rule's 1 January is the weekly rule's too; the other two are added
        assert folded["recurrenceOverrides"] == {
            "2024-01-02T10:00:00": {},
            "2024-01-03T10:00:00": {},
        }

    def test_the_endless_rule_is_the_one_kept(self) -> None:
        ev = _event(recurrenceRules=[_rule("daily", count=2), _rule("monthly")])
        folded, lost = fold_recurrence_rules(ev)
        assert lost == []
        assert folded["recurrenceRules"] == [_rule("monthly")]
        assert folded["recurrenceOverrides"] == {"2024-01-02T10:00:00": {}}

    def test_two_endless_rules_cannot_be_folded(self) -> None:
        ev = _event(recurrenceRules=[_rule("weekly"), _rule("monthly")])
        folded, lost = fold_recurrence_rules(ev)
        assert lost == ["recurrenceRules/1"]
        assert folded["recurrenceRules"] == [_rule("weekly")]

    def test_a_bounded_excluded_rule_becomes_exclusions(self) -> None:
        ev = _event(
            recurrenceRules=[_rule("daily")],
            excludedRecurrenceRules=[_rule("weekly", count=3)],
        )
        folded, lost = fold_recurrence_rules(ev)
        assert lost == []
        assert folded["excludedRecurrenceRules"] is None
        assert folded["recurrenceOverrides"] == {
            k: {"excluded": True}
            for k in ("2024-01-01T10:00:00", "2024-01-08T10:00:00", "2024-01-15T10:00:00")
        }

    def test_an_endless_excluded_rule_that_meets_the_endless_rule_is_lost(self) -> None:
        ev = _event(recurrenceRules=[_rule("daily")], excludedRecurrenceRules=[_rule("weekly")])
        folded, lost = fold_recurrence_rules(ev)
        assert lost == ["excludedRecurrenceRules/0"]
        assert folded["excludedRecurrenceRules"] is None

    def test_an_endless_excluded_rule_that_never_meets_it_only_trims_the_bounded_part(
        self,
    ) -> None:
        # weekly on Mondays never falls on a 15th that is a Tuesday … but the 15th of some
        # months is a Monday: so take rules that provably never meet, Mondays and Tuesdays
        ev = _event(
            recurrenceRules=[
                _rule("weekly", byDay=[{"@type": "NDay", "day": "mo"}]),
                _rule("daily", count=3),
            ],
            excludedRecurrenceRules=[_rule("weekly", byDay=[{"@type": "NDay", "day": "tu"}])],
        )
        folded, lost = fold_recurrence_rules(ev)
        assert lost == []
        assert folded["recurrenceOverrides"] == {
            "2024-01-02T10:00:00": {"excluded": True},
            "2024-01-03T10:00:00": {},
        }

    def test_the_fixture_keeps_its_occurrences(self) -> None:
        [ev] = ical_to_jscal((FIXTURES / "recur_rules.ics").read_text())
        folded, lost = fold_recurrence_rules(ev)
        assert lost == []
        assert len(folded["recurrenceRules"]) == 1
        assert "excludedRecurrenceRules" not in {k for k, v in folded.items() if v}
        # without the EXRULE the fixture's occurrences are the reference's; the EXRULE
        # (FREQ=YEARLY;BYWEEKNO=1;BYDAY=MO) takes out exactly the start, 2024-01-01
        reference = _starts({**ev, "excludedRecurrenceRules": None})
        assert datetime(2024, 1, 1, 9, tzinfo=UTC) in reference
        assert _starts(folded) == [d for d in reference if d != datetime(2024, 1, 1, 9, tzinfo=UTC)]


class TestExpandFutureRanges:
    """RFC 5545 §3.8.4.4 RANGE=THISANDFUTURE, which JSCalendar cannot say."""

    def _ranged(self, **rule: Any) -> dict[str, Any]:
        return _event(
            recurrenceRules=[_rule("weekly", **rule)],
            recurrenceOverrides={
                "2024-01-08T10:00:00": {"title": "one"},
                "2024-01-15T10:00:00": {
                    "start": "2024-01-15T09:00:00",
                    "title": "later",
                    RANGE_KEY: "THISANDFUTURE",
                },
                "2024-01-29T10:00:00": {"excluded": True},
                "2024-02-05T10:00:00": {"title": "own"},
            },
        )

    def test_a_bounded_series_gets_one_override_per_later_occurrence(self) -> None:
        out, lost = expand_future_ranges(self._ranged(count=6))
        assert lost == []
        assert out["recurrenceOverrides"] == {
            "2024-01-08T10:00:00": {"title": "one"},
            "2024-01-15T10:00:00": {"start": "2024-01-15T09:00:00", "title": "later"},
            "2024-01-22T10:00:00": {"start": "2024-01-22T09:00:00", "title": "later"},
            "2024-01-29T10:00:00": {"excluded": True},
            "2024-02-05T10:00:00": {"start": "2024-02-05T09:00:00", "title": "own"},
        }

    def test_an_endless_series_keeps_the_range_and_names_it(self) -> None:
        ev = self._ranged()
        out, lost = expand_future_ranges(ev)
        assert out == ev
        assert lost == [f"recurrenceOverrides/2024-01-15T10:00:00/{RANGE_KEY}"]


def _zone(offset: str, name: str = "X") -> dict[str, Any]:
    return {
        "@type": "TimeZone",
        "tzId": name,
        "standard": [
            {
                "@type": "TimeZoneRule",
                "start": "1970-01-01T00:00:00",
                "offsetFrom": offset,
                "offsetTo": offset,
                "names": {name: True},
            }
        ],
    }


class TestReplaceCustomZones:
    """RFC 8984 §4.7.2 custom zones on a server that refuses ``timeZones``."""

    def test_the_fixture_zone_becomes_the_iana_zone_with_its_offsets(self) -> None:
        [ev] = ical_to_jscal((FIXTURES / "time_custom_vtimezone.ics").read_text())
        out, lost = replace_custom_zones(ev)
        assert lost == ["timeZones/~1Mars Base Time"]
        assert out["timeZones"] is None
        # +03:30 all year: Iran since it gave up daylight saving time in 2022
        assert out["timeZone"] == "Asia/Tehran"
        assert _starts(out) == _starts(ev)

    def test_an_offset_no_iana_zone_has_falls_back_to_utc(self) -> None:
        ev = _event(
            start="2024-04-02T10:00:00",
            timeZone="/Odd",
            duration="P1D",
            timeZones={"/Odd": _zone("+0117", "Odd")},
        )
        out, lost = replace_custom_zones(ev)
        assert lost == ["timeZones/~1Odd"]
        assert (out["start"], out["timeZone"], out["duration"]) == (
            "2024-04-02T08:43:00",
            "Etc/UTC",
            "PT24H",
        )
        assert _starts(out) == _starts(ev)

    def test_a_recurring_event_without_a_matching_zone_is_left_for_the_server_to_refuse(
        self,
    ) -> None:
        zones = {"/Odd": _zone("+0117", "Odd")}
        ev = _event(timeZone="/Odd", timeZones=zones, recurrenceRules=[_rule("weekly")])
        out, left_out = replace_custom_zones(ev)
        assert out["timeZones"] == zones
        assert out["timeZone"] == "/Odd"
        # sent as it is, so not left out: the server's refusal stands (measured on Cyrus)
        assert left_out == []

    def test_an_end_zone_is_replaced_too(self) -> None:
        ev = _event(
            timeZones={"/Mars": _zone("+0330", "Mars")},
            locations={"1": {"@type": "Location", "relativeTo": "end", "timeZone": "/Mars"}},
        )
        out, lost = replace_custom_zones(ev)
        assert lost == ["timeZones/~1Mars"]
        assert out["locations"]["1"]["timeZone"] == "Asia/Tehran"


class TestCountFromAStartTheRuleDoesNotMatch:
    """RFC 5545 §3.3.10, RFC 8984 §4.3.3: the start is the first occurrence and is counted.

    Asserted directly: the reference expander (dateutil) does not count such a start.
    """

    MONDAYS = _rule("weekly", byDay=[{"@type": "NDay", "day": "mo"}], count=3)

    def test_a_range_ends_with_the_last_counted_occurrence(self) -> None:
        ev = _event(
            start="2024-01-02T10:00:00",  # a Tuesday
            recurrenceRules=[self.MONDAYS],
            recurrenceOverrides={"2024-01-08T10:00:00": {"title": "x", RANGE_KEY: "THISANDFUTURE"}},
        )
        out, left_out = expand_future_ranges(ev)
        assert left_out == []
        assert out["recurrenceOverrides"] == {
            "2024-01-08T10:00:00": {"title": "x"},
            "2024-01-15T10:00:00": {"title": "x"},
        }

    def test_a_folded_bounded_rule_adds_one_date_less(self) -> None:
        ev = _event(start="2024-01-02T10:00:00", recurrenceRules=[_rule("yearly"), self.MONDAYS])
        folded, left_out = fold_recurrence_rules(ev)
        assert left_out == []
        assert folded["recurrenceOverrides"] == {
            "2024-01-08T10:00:00": {},
            "2024-01-15T10:00:00": {},
        }

    def test_a_count_of_one_is_the_start_alone(self) -> None:
        ev = _event(
            start="2024-01-02T10:00:00",
            recurrenceRules=[_rule("yearly"), {**self.MONDAYS, "count": 1}],
        )
        folded, left_out = fold_recurrence_rules(ev)
        assert (folded.get("recurrenceOverrides"), left_out) == (None, [])


class TestHostileRulesFinish:
    """Rules whose occurrences cannot all be walked are left out, not walked for minutes."""

    def test_an_endless_secondly_rule_beside_a_bounded_one(self) -> None:
        ev = _event(recurrenceRules=[_rule("secondly"), _rule("yearly", count=3)])
        folded, left_out = fold_recurrence_rules(ev)
        assert left_out == ["recurrenceRules/1"]
        assert folded["recurrenceRules"] == [_rule("secondly")]

    def test_an_endless_minutely_excluded_rule(self) -> None:
        ev = _event(
            recurrenceRules=[_rule("yearly", count=5)],
            excludedRecurrenceRules=[_rule("minutely")],
        )
        folded, left_out = fold_recurrence_rules(ev)
        assert left_out == ["excludedRecurrenceRules/0"]
        assert folded["recurrenceRules"] == [_rule("yearly", count=5)]

    def test_a_bounded_rule_too_long_to_walk_is_left_out(self) -> None:
        ev = _event(
            recurrenceRules=[_rule("secondly", count=10**9), _rule("yearly", count=3)],
        )
        _, left_out = fold_recurrence_rules(ev)
        assert left_out == ["recurrenceRules/1"]

    def test_repeated_excluded_rules_are_proved_once(self) -> None:
        tens = _rule("daily", byHour=[10])
        elevens = _rule("daily", byHour=[11], byMinute=[0])
        ev = _event(recurrenceRules=[tens], excludedRecurrenceRules=[elevens] * 20)
        folded, left_out = fold_recurrence_rules(ev)
        assert left_out == []
        assert folded.get("recurrenceOverrides") is None


class TestPatches:
    """A PatchObject keeps the server's value of every key it does not carry."""

    def test_excluded_rules_alone_are_left_out_and_nothing_else_is_written(self) -> None:
        folded, left_out = fold_recurrence_rules(
            {"excludedRecurrenceRules": [_rule("weekly")]}, patch=True
        )
        assert folded == {"excludedRecurrenceRules": None}
        assert left_out == ["excludedRecurrenceRules/0"]

    def test_rules_without_the_overrides_keep_the_first_rule(self) -> None:
        patch = {
            "start": "2024-01-01T10:00:00",
            "recurrenceRules": [_rule("weekly"), _rule("daily", count=3)],
        }
        folded, left_out = fold_recurrence_rules(patch, patch=True)
        assert folded == {"start": "2024-01-01T10:00:00", "recurrenceRules": [_rule("weekly")]}
        assert left_out == ["recurrenceRules/1"]

    def test_a_patch_with_the_whole_series_is_folded(self) -> None:
        patch = {
            "start": "2024-01-01T10:00:00",
            "recurrenceRules": [_rule("weekly"), _rule("daily", count=3)],
            "excludedRecurrenceRules": None,
            "recurrenceOverrides": None,
        }
        folded, left_out = fold_recurrence_rules(patch, patch=True)
        assert left_out == []
        assert folded["recurrenceOverrides"] == {
            "2024-01-02T10:00:00": {},
            "2024-01-03T10:00:00": {},
        }

    def test_a_range_in_a_patch_without_the_rules_is_not_expanded(self) -> None:
        key = "2024-01-08T10:00:00"
        patch = {
            "start": "2024-01-01T10:00:00",
            "recurrenceOverrides": {key: {"title": "x", RANGE_KEY: "THISANDFUTURE"}},
        }
        out, unexpanded = expand_future_ranges(patch, patch=True)
        assert out == patch
        assert unexpanded == [f"recurrenceOverrides/{key}/{RANGE_KEY}"]


def test_a_bounded_series_with_an_excluded_rule_has_its_range_expanded() -> None:
    ev = _event(
        recurrenceRules=[_rule("weekly", count=4)],
        excludedRecurrenceRules=[_rule("monthly", count=2)],  # 1 January, 1 February
        recurrenceOverrides={"2024-01-08T10:00:00": {"title": "x", RANGE_KEY: "THISANDFUTURE"}},
    )
    out, left_out = expand_future_ranges(ev)
    assert left_out == []
    assert out["recurrenceOverrides"] == {
        "2024-01-08T10:00:00": {"title": "x"},
        "2024-01-15T10:00:00": {"title": "x"},
        "2024-01-22T10:00:00": {"title": "x"},
    }


def test_a_moved_start_past_the_year_9999_leaves_the_range_unexpanded() -> None:
    key = "9999-12-20T10:00:00"
    ev = _event(
        start=key,
        recurrenceRules=[_rule("weekly", count=2)],
        recurrenceOverrides={key: {"start": "9999-12-25T10:00:00", RANGE_KEY: "THISANDFUTURE"}},
    )
    out, left_out = expand_future_ranges(ev)
    assert left_out == [f"recurrenceOverrides/{key}/{RANGE_KEY}"]
    assert out == ev


def _cet(name: str = "My CET") -> dict[str, Any]:
    """A custom zone with the rules of Central European Time since 1996."""

    def rule(start: str, frm: str, to: str, month: str, abbr: str) -> dict[str, Any]:
        last_sunday = {"@type": "NDay", "day": "su", "nthOfPeriod": -1}
        return {
            "@type": "TimeZoneRule",
            "start": start,
            "offsetFrom": frm,
            "offsetTo": to,
            "names": {abbr: True},
            "recurrenceRules": [_rule("yearly", byMonth=[month], byDay=[last_sunday])],
        }

    return {
        "@type": "TimeZone",
        "tzId": name,
        "standard": [rule("1996-10-27T03:00:00", "+0200", "+0100", "10", "CET")],
        "daylight": [rule("1981-03-29T02:00:00", "+0100", "+0200", "3", "CEST")],
    }


class TestReplaceCustomZonesFurther:
    def test_an_endless_series_far_ahead_is_compared_over_a_whole_year(self) -> None:
        ev = _event(
            start="2040-01-15T10:00:00",
            timeZone="/My",
            timeZones={"/My": _cet()},
            recurrenceRules=[_rule("weekly")],
        )
        out, left_out = replace_custom_zones(ev)
        assert left_out == ["timeZones/~1My"]
        summer = datetime(2040, 7, 1, 12, tzinfo=UTC)
        assert summer.astimezone(ZoneInfo(out["timeZone"])).utcoffset() == timedelta(hours=2)

    def test_zones_named_in_overrides_are_replaced_too(self) -> None:
        key = "2030-01-22T10:00:00"
        ev = _event(
            start="2030-01-15T10:00:00",
            timeZones={"/My": _cet()},
            recurrenceRules=[_rule("weekly", count=5)],
            recurrenceOverrides={
                key: {
                    "timeZone": "/My",
                    "locations/1/timeZone": "/My",
                    "locations/2": {"@type": "Location", "relativeTo": "end", "timeZone": "/My"},
                }
            },
        )
        out, left_out = replace_custom_zones(ev)
        assert left_out == ["timeZones/~1My"]
        assert out["timeZones"] is None
        patch = out["recurrenceOverrides"][key]
        names = {patch["timeZone"], patch["locations/1/timeZone"], patch["locations/2"]["timeZone"]}
        assert len(names) == 1
        assert not names.pop().startswith("/")

    def test_an_override_in_an_unmatched_zone_keeps_the_definition(self) -> None:
        zones = {"/Odd": _zone("+0117", "Odd")}
        key = "2024-01-08T10:00:00"
        ev = _event(
            timeZones=zones,
            recurrenceRules=[_rule("weekly")],
            recurrenceOverrides={key: {"timeZone": "/Odd"}},
        )
        out, left_out = replace_custom_zones(ev)
        assert (out["timeZones"], left_out) == (zones, [])
        assert out["recurrenceOverrides"][key] == {"timeZone": "/Odd"}

    def test_the_utc_fallback_reports_the_end_zone_it_removes(self) -> None:
        ev = _event(
            timeZone="/Odd",
            timeZones={"/Odd": _zone("+0117", "Odd")},
            locations={
                "1": {"@type": "Location", "relativeTo": "end", "timeZone": "/Odd"},
                "2": {"@type": "Location", "name": "Hall", "timeZone": "/Odd"},
            },
        )
        out, left_out = replace_custom_zones(ev)
        assert out["timeZone"] == "Etc/UTC"
        assert out["locations"] == {"2": {"@type": "Location", "name": "Hall"}}
        assert sorted(left_out) == ["locations/1", "locations/2/timeZone", "timeZones/~1Odd"]

    @pytest.mark.parametrize("start", ["0001-01-01T10:00:00", "9999-12-30T10:00:00"])
    def test_times_at_the_ends_of_the_calendar_keep_the_zone(self, start: str) -> None:
        zones = {"/My": _cet()}
        for extra in ({}, {"recurrenceRules": [_rule("weekly")]}):
            ev = _event(start=start, timeZone="/My", timeZones=zones, **extra)
            out, left_out = replace_custom_zones(ev)
            assert (out["timeZones"], out["timeZone"], left_out) == (zones, "/My", [])
