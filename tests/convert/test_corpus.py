"""Real-world corpus: every .ics in icalendar's own test suite survives ical → JSCalendar → ical.

RFC 5545 as written by many producers. A file counts when icalendar parses it without errors and
it holds a VEVENT or VTODO; it must then keep its occurrences over 1990-2040 and the value of
every property it had (see ``corpus.py``). Known exceptions are listed with a reason each; any
new failure, and any listed exception that starts passing, fails the suite.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

from jmapsyncd.errors import ConversionError
from tests.convert.corpus import corpus_files, differences, load

# RFC 8984 §4.1.2 makes uid mandatory, and our contract refuses a component without UID
_NO_UID = "VEVENT without UID: refused with ConversionError by contract (RFC 8984 §4.1.2)"
KNOWN_EXCEPTIONS: dict[str, str] = {
    "calendars/created_calendar_with_unicode_fields.ics": _NO_UID,
    "calendars/issue_156_RDATE_with_PERIOD_TZID_khal.ics": _NO_UID,
    "calendars/issue_237_fail_to_parse_timezone_with_non_ascii_tzid.ics": _NO_UID,
    "calendars/issue_322_expected_calendar.ics": _NO_UID,
    "calendars/issue_722_missing_VTIMEZONE_custom.ics": _NO_UID,
    "calendars/issue_722_missing_timezones.ics": _NO_UID,
    "calendars/issue_798_related_to.ics": _NO_UID,
    "calendars/rfc_6868.ics": _NO_UID,
    "calendars/rfc_7986_conferences.ics": _NO_UID,
}

_FILES = corpus_files()


def _name(p: Path) -> str:
    return p.relative_to(p.parents[1]).as_posix()


def _check(path: Path) -> list[str]:
    cal = load(path)
    assert cal is not None
    with warnings.catch_warnings():
        # icalendar warns when it guesses vendor-prefixed TZIDs while expanding the reference
        warnings.simplefilter("ignore")
        try:
            return differences(cal)
        except ConversionError as e:
            return [f"ConversionError: {e}"]


_USABLE = [p for p in _FILES if load(p) is not None]


def test_corpus_is_found() -> None:
    # guards against a silently empty corpus (icalendar moved its test files)
    assert len(_FILES) > 100
    assert len(_USABLE) > 50


@pytest.mark.parametrize("path", _USABLE, ids=_name)
def test_round_trip_keeps_occurrences_and_values(path: Path) -> None:
    problems = _check(path)
    name = _name(path)
    if name in KNOWN_EXCEPTIONS:
        assert problems, f"{name} passes now: remove it from KNOWN_EXCEPTIONS"
        return
    assert problems == []


def test_known_exceptions_still_exist() -> None:
    names = {_name(p) for p in _USABLE}
    assert set(KNOWN_EXCEPTIONS) <= names
