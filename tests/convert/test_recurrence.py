"""Recurrence: RRULE/EXRULE/RDATE/EXDATE/RECURRENCE-ID ⇄ recurrenceRules and overrides.

RFC 8984 §4.3.1 to §4.3.5 and §1.4.9 (PatchObject); RFC 5545 §3.3.10, §3.8.4.4, §3.8.5.
"""

from __future__ import annotations

import itertools
from datetime import datetime
from typing import Any

import icalendar
import pytest
import recurring_ical_events  # type: ignore[import-untyped]  # ships no py.typed marker
from hypothesis import given
from hypothesis import strategies as st

from jmapsyncd.convert import ical_to_jscal, jscal_to_ical
from jmapsyncd.convert._patch import apply, diff
from jmapsyncd.convert._rrule import format_rrule, parse_rrule


def _event(lines: str, uid: str = "r1") -> str:
    return (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//EN\r\nBEGIN:VEVENT\r\n"
        f"UID:{uid}\r\nDTSTAMP:20240101T000000Z\r\n" + lines + "END:VEVENT\r\nEND:VCALENDAR\r\n"
    )


def _occurrences(text: str) -> list[tuple[str, str]]:
    cal = icalendar.Calendar.from_ical(text)
    occ = recurring_ical_events.of(cal).between(datetime(2020, 1, 1), datetime(2031, 1, 1))
    return sorted(
        (repr(o.decoded("DTSTART")), str(o.get("SUMMARY"))) for o in itertools.islice(occ, 2000)
    )


@pytest.mark.parametrize(
    "rule",
    [
        "FREQ=DAILY",
        "FREQ=WEEKLY;INTERVAL=2;BYDAY=MO,WE,FR;WKST=SU",
        "FREQ=MONTHLY;BYDAY=-1FR,2MO;COUNT=12",
        "FREQ=MONTHLY;BYMONTHDAY=1,15,-1",
        "FREQ=YEARLY;BYMONTH=2,3;BYDAY=1SU;BYSETPOS=-1",
        "FREQ=YEARLY;BYYEARDAY=1,-1;BYWEEKNO=1,52",
        "FREQ=DAILY;BYHOUR=9,17;BYMINUTE=0,30;BYSECOND=0",
        "RSCALE=CHINESE;FREQ=YEARLY;BYMONTH=5L;SKIP=FORWARD",
        "FREQ=HOURLY;INTERVAL=6",
        "FREQ=MINUTELY;INTERVAL=15;COUNT=4",
        "FREQ=SECONDLY;COUNT=2",
    ],
)
def test_every_rrule_part_round_trips(rule: str) -> None:
    parsed, until = parse_rrule(rule, "test")
    assert until is None
    assert parsed["@type"] == "RecurrenceRule"
    again, _ = parse_rrule(format_rrule(parsed, None, "test"), "test")
    assert again == parsed


def test_nday_with_ordinal() -> None:
    rule, _ = parse_rrule("FREQ=MONTHLY;BYDAY=-1FR,2MO,TU", "t")
    assert rule["byDay"] == [
        {"@type": "NDay", "day": "fr", "nthOfPeriod": -1},
        {"@type": "NDay", "day": "mo", "nthOfPeriod": 2},
        {"@type": "NDay", "day": "tu"},
    ]
    assert rule.get("interval") is None  # 1 is the default and is left out


@pytest.mark.parametrize(
    ("start", "until", "expected_until", "written"),
    [
        ("DTSTART;VALUE=DATE:20240101", "20240131", "2024-01-31T00:00:00", "UNTIL=20240131;"),
        ("DTSTART:20240101T090000", "20240131T090000", "2024-01-31T09:00:00", "=20240131T090000;"),
        ("DTSTART:20240101T090000Z", "20240131T090000Z", "2024-01-31T09:00:00", "0131T090000Z"),
        (
            "DTSTART;TZID=America/New_York:20240101T090000",
            "20240131T140000Z",
            "2024-01-31T09:00:00",
            "UNTIL=20240131T140000Z",
        ),
        # a DATE UNTIL on a timed event still covers the whole day
        ("DTSTART:20240101T090000", "20240131", "2024-01-31T23:59:59", "UNTIL=20240131T235959;"),
    ],
)  # fmt: skip
def test_until_forms(start: str, until: str, expected_until: str, written: str) -> None:
    text = _event(f"{start}\r\nRRULE:FREQ=DAILY;UNTIL={until}\r\n")
    [obj] = ical_to_jscal(text)
    assert obj["recurrenceRules"][0]["until"] == expected_until
    out = jscal_to_ical(obj)
    assert written in out.replace("\r\n", ";")
    if expected_until.endswith("23:59:59"):
        # dateutil reads a DATE UNTIL as midnight and drops that day; we keep it, like libical
        starts = [o[0] for o in _occurrences(out)]
        assert len(starts) == 31
        assert repr(datetime(2024, 1, 31, 9, 0)) in starts
    else:
        assert _occurrences(out) == _occurrences(text)


def test_several_rrules_exrule_rdate_exdate_keep_occurrences() -> None:
    text = _event(
        "DTSTART;TZID=Europe/Berlin:20240101T100000\r\nDURATION:PT1H\r\nSUMMARY:x\r\n"
        "RRULE:FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=1,-1;COUNT=10\r\n"
        "RRULE:FREQ=YEARLY;BYMONTH=7;BYMONTHDAY=4\r\n"
        "EXRULE:FREQ=YEARLY;BYMONTH=7;BYMONTHDAY=4;BYYEARDAY=186\r\n"
        "RDATE;VALUE=PERIOD:20240615T080000Z/20240615T110000Z\r\n"
        "RDATE;VALUE=DATE-TIME;TZID=Europe/Berlin:20240620T100000\r\n"
        "EXDATE;TZID=Europe/Berlin:20240201T100000\r\nEXDATE:20240229T090000Z\r\n"
    )
    [obj] = ical_to_jscal(text)
    ov = obj["recurrenceOverrides"]
    assert ov["2024-06-15T10:00:00"] == {"duration": "PT3H"}
    assert ov["2024-06-20T10:00:00"] == {}
    assert ov["2024-02-01T10:00:00"] == {"excluded": True}
    assert ov["2024-02-29T10:00:00"] == {"excluded": True}
    assert len(obj["recurrenceRules"]) == 2
    assert len(obj["excludedRecurrenceRules"]) == 1
    out = jscal_to_ical(obj)
    assert "EXRULE:" in out
    assert ical_to_jscal(out) == [obj]


def test_instances_become_patches_and_come_back() -> None:
    text = (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//EN\r\n"
        "BEGIN:VEVENT\r\nUID:m\r\nDTSTAMP:20240101T000000Z\r\n"
        "DTSTART;TZID=Europe/London:20240102T093000\r\nDURATION:PT30M\r\n"
        "RRULE:FREQ=WEEKLY;COUNT=6\r\nSUMMARY:Standup\r\nLOCATION:Room 1\r\nEND:VEVENT\r\n"
        "BEGIN:VEVENT\r\nUID:m\r\nDTSTAMP:20240101T000000Z\r\n"
        "RECURRENCE-ID;TZID=Europe/London:20240109T093000\r\n"
        "DTSTART;TZID=Europe/London:20240109T110000\r\nDURATION:PT30M\r\n"
        "SUMMARY:Standup (moved)\r\nLOCATION:Room 2\r\nEND:VEVENT\r\n"
        "BEGIN:VEVENT\r\nUID:m\r\nDTSTAMP:20240101T000000Z\r\n"
        "RECURRENCE-ID;RANGE=THISANDFUTURE;TZID=Europe/London:20240130T093000\r\n"
        "DTSTART;TZID=Europe/London:20240130T093000\r\nDURATION:PT30M\r\n"
        "SUMMARY:Standup\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    )
    objs = ical_to_jscal(text)
    assert len(objs) == 1
    ov = objs[0]["recurrenceOverrides"]
    assert ov["2024-01-09T09:30:00"] == {
        "start": "2024-01-09T11:00:00",
        "title": "Standup (moved)",
        "locations/1/name": "Room 2",
    }
    assert ov["2024-01-30T09:30:00"]["locations"] is None
    assert ov["2024-01-30T09:30:00"]["jmapsyncd.org:ical/recurrenceIdRange"] == "THISANDFUTURE"
    out = jscal_to_ical(objs)
    assert "RECURRENCE-ID;TZID=Europe/London:20240109T093000\r\n" in out
    assert "RECURRENCE-ID;TZID=Europe/London;RANGE=THISANDFUTURE:20240130T093000\r\n" in out
    assert ical_to_jscal(out) == objs
    assert _occurrences(out) == _occurrences(text)


def test_override_outside_the_rule_is_an_rdate_with_an_instance() -> None:
    obj: dict[str, Any] = {
        "@type": "Event",
        "uid": "x",
        "title": "Weekly",
        "start": "2024-01-01T10:00:00",
        "timeZone": "Europe/Paris",
        "duration": "PT1H",
        "recurrenceRules": [{"@type": "RecurrenceRule", "frequency": "weekly", "count": 3}],
        "recurrenceOverrides": {
            "2024-01-03T10:00:00": {"title": "Extra"},
            "2024-01-08T10:00:00": {"title": "Renamed"},
            "2024-01-15T10:00:00": {"excluded": True},
        },
    }
    out = jscal_to_ical(obj)
    assert "RDATE;TZID=Europe/Paris:20240103T100000\r\n" in out
    assert "RDATE;TZID=Europe/Paris:20240108T100000" not in out
    assert "EXDATE;TZID=Europe/Paris:20240115T100000\r\n" in out
    assert out.count("RECURRENCE-ID") == 2
    titles = [t for _, t in _occurrences(out)]
    assert sorted(titles) == ["Extra", "Renamed", "Weekly"]


def test_exdate_on_an_instance_keeps_both() -> None:
    text = (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//EN\r\n"
        "BEGIN:VEVENT\r\nUID:m\r\nDTSTAMP:20240101T000000Z\r\nDTSTART:20240101T100000Z\r\n"
        "RRULE:FREQ=DAILY;COUNT=3\r\nEXDATE:20240102T100000Z\r\nSUMMARY:a\r\nEND:VEVENT\r\n"
        "BEGIN:VEVENT\r\nUID:m\r\nDTSTAMP:20240101T000000Z\r\nRECURRENCE-ID:20240102T100000Z\r\n"
        "DTSTART:20240102T120000Z\r\nSUMMARY:b\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    )
    [obj] = ical_to_jscal(text)
    assert obj["recurrenceOverrides"]["2024-01-02T10:00:00"]["excluded"] is True
    assert obj["recurrenceOverrides"]["2024-01-02T10:00:00"]["title"] == "b"


def test_orphan_instance_keeps_its_recurrence_id() -> None:
    text = _event("RECURRENCE-ID:20240102T100000Z\r\nDTSTART:20240102T120000Z\r\nSUMMARY:one\r\n")
    [obj] = ical_to_jscal(text)
    out = jscal_to_ical(obj)
    assert "RECURRENCE-ID:20240102T100000Z\r\n" in out
    assert ical_to_jscal(out) == [obj]


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda inner: st.dictionaries(st.text(max_size=4), inner, max_size=4),
    max_leaves=12,
)
_objects = st.dictionaries(st.text(max_size=4), _json, max_size=5)


@given(_objects, _objects)
def test_patch_diff_then_apply_gives_the_target(a: dict[str, Any], b: dict[str, Any]) -> None:
    # RFC 8984 §1.4.9: keys are JSON pointers (with ~0 ~1 escapes), null removes
    def strip(x: Any) -> Any:
        if isinstance(x, dict):
            return {k: strip(v) for k, v in x.items() if v is not None}
        return x

    a, b = strip(a), strip(b)
    assert apply(a, diff(a, b)) == b


def test_override_check_stays_cheap_for_fast_rules() -> None:
    # regression guard: deciding RDATE-or-not must not walk a year of minutely occurrences
    obj = {
        "@type": "Event",
        "uid": "m",
        "start": "2024-01-01T00:00:00",
        "recurrenceRules": [{"@type": "RecurrenceRule", "frequency": "minutely"}],
        "recurrenceOverrides": {"2030-01-01T00:00:00": {"title": "far"}},
    }
    out = jscal_to_ical(obj)
    assert "RDATE" not in out
    assert "RECURRENCE-ID:20300101T000000\r\n" in out


def test_count_takes_a_start_the_rule_does_not_match_as_its_first_occurrence() -> None:
    # RFC 5545 §3.3.10 COUNT, RFC 8984 §4.3.3: Tuesday 2 January (the start), Monday 8 and
    # Monday 15 January make the three; dateutil alone would also produce Monday 22 January,
    # and an override there was then not written as the RDATE it needs
    obj: dict[str, Any] = {
        "@type": "Event",
        "uid": "c",
        "title": "Mondays",
        "start": "2024-01-02T10:00:00",
        "timeZone": "Europe/Paris",
        "recurrenceRules": [
            {
                "@type": "RecurrenceRule",
                "frequency": "weekly",
                "byDay": [{"@type": "NDay", "day": "mo"}],
                "count": 3,
            }
        ],
        "recurrenceOverrides": {
            "2024-01-15T10:00:00": {"title": "Third"},
            "2024-01-22T10:00:00": {"title": "Added"},
        },
    }
    out = jscal_to_ical(obj)
    assert "RDATE;TZID=Europe/Paris:20240122T100000\r\n" in out
    assert "RDATE;TZID=Europe/Paris:20240115T100000" not in out
