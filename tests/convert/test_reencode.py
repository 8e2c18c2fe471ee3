"""Re-encodings for servers that hold less than RFC 8984: same occurrences, or the loss named.

Occurrences are compared with recurring_ical_events over what ``jscal_to_ical`` writes; EXRULE,
which that package does not apply, is only ever compared after it was folded into EXDATEs.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import icalendar
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
        out, lost = replace_custom_zones(ev)
        assert out["timeZones"] == zones
        assert out["timeZone"] == "/Odd"
        assert lost == ["timeZones/~1Odd"]

    def test_an_end_zone_is_replaced_too(self) -> None:
        ev = _event(
            timeZones={"/Mars": _zone("+0330", "Mars")},
            locations={"1": {"@type": "Location", "relativeTo": "end", "timeZone": "/Mars"}},
        )
        out, lost = replace_custom_zones(ev)
        assert lost == ["timeZones/~1Mars"]
        assert out["locations"]["1"]["timeZone"] == "Asia/Tehran"
