"""Paired fixtures: each ``tests/fixtures/convert/<name>.ics`` has the ``<name>.json`` it maps to.

Both directions are checked for every pair (draft-ietf-calext-jscalendar-icalendar, property by
property): the iCalendar file converts to exactly the JSON, and the JSON converts to iCalendar
that icalendar reads without errors and that converts back to the same JSON.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import icalendar
import pytest

from jmapsyncd.convert import ical_to_jscal, jscal_to_ical

FIXTURES = Path(__file__).parent.parent / "fixtures" / "convert"
PAIRS = sorted(p.stem for p in FIXTURES.glob("*.ics") if p.with_suffix(".json").exists())


def _load(name: str) -> tuple[str, list[dict[str, Any]]]:
    ics = (FIXTURES / f"{name}.ics").read_text()
    expected = json.loads((FIXTURES / f"{name}.json").read_text())
    return ics, expected


def test_every_ics_fixture_has_its_json() -> None:
    stems = {p.stem for p in FIXTURES.glob("*.ics")}
    assert stems
    assert stems == set(PAIRS)


@pytest.mark.parametrize("name", PAIRS)
def test_ical_to_jscal_matches_json(name: str) -> None:
    ics, expected = _load(name)
    assert ical_to_jscal(ics) == expected


@pytest.mark.parametrize("name", PAIRS)
def test_jscal_to_ical_round_trips_json(name: str) -> None:
    _, expected = _load(name)
    text = jscal_to_ical(expected)
    cal = icalendar.Calendar.from_ical(text)
    assert not [c.name for c in cal.walk() if getattr(c, "errors", None)]
    assert ical_to_jscal(text) == expected


@pytest.mark.parametrize("name", PAIRS)
def test_output_lines_are_folded_crlf(name: str) -> None:
    _, expected = _load(name)
    text = jscal_to_ical(expected)
    assert text.endswith("END:VCALENDAR\r\n")
    for line in text.split("\r\n"):
        assert len(line.encode()) <= 75
        assert "\n" not in line
