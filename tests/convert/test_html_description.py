"""misc.ics on Cyrus: an HTML description (X-ALT-DESC) as a plain description plus an
alternate ``text/html`` link (RFC 8984 §4.2.7), and back to the converter's own form."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import icalendar

from jmapsyncd.convert import jscal_to_ical
from jmapsyncd.convert._alt import (
    HTML_LINK_ID,
    html_description_as_link,
    html_description_from_link,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "convert"
VENDOR = "jmapsyncd.org:ical"


def _misc() -> dict[str, Any]:
    [event] = json.loads((FIXTURES / "misc.json").read_text())
    assert isinstance(event, dict)
    return event


def test_html_description_goes_as_plain_text_and_an_alternate_link() -> None:
    event = _misc()
    wire = html_description_as_link(event)
    assert "descriptionContentType" not in wire
    assert wire["description"] == "Plain text; with escapes, and a\nnew line"
    link = wire["links"][HTML_LINK_ID]
    assert link["rel"] == "alternate"
    assert link["contentType"] == "text/html"
    assert event["descriptionContentType"] == "text/html"  # input not mutated


def test_html_description_comes_back_without_vendor_data() -> None:
    wire = html_description_as_link(_misc())
    del wire[VENDOR]  # the server keeps no vendor properties
    back = html_description_from_link(wire)
    assert back["description"] == "<p>Plain <b>text</b></p>"
    assert back["descriptionContentType"] == "text/html"
    assert "links" not in back
    [vevent] = icalendar.Calendar.from_ical(jscal_to_ical(back)).walk("VEVENT")
    assert str(vevent["DESCRIPTION"]) == "Plain text; with escapes, and a\nnew line"
    assert str(vevent["X-ALT-DESC"]) == "<p>Plain <b>text</b></p>"


def test_a_patch_keeps_the_other_links() -> None:
    patch = {"description": "<b>x</b>", "descriptionContentType": "text/html"}
    wire = html_description_as_link(patch, patch=True)
    assert wire["description"] is None
    assert set(wire) == {"description", f"links/{HTML_LINK_ID}"}


def test_a_plain_description_is_left_alone() -> None:
    event = {"description": "x", "descriptionContentType": "text/plain"}
    assert html_description_as_link(event) == event
    assert html_description_from_link({"description": "x", "links": {}}) == {
        "description": "x",
        "links": {},
    }
