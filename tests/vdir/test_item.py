"""UID extraction and content hashing of items, without an iCalendar parser."""

from __future__ import annotations

import pytest

from jmapsyncd.vdir.item import Item, content_hash, extract_uid


def test_uid_is_read_from_the_first_uid_line() -> None:
    text = "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:abc@x\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    assert extract_uid(text) == "abc@x"


def test_folded_uid_is_unfolded() -> None:
    assert extract_uid("BEGIN:VTODO\r\nUID:abc\r\n def\r\nEND:VTODO\r\n") == "abcdef"


def test_uid_with_parameters_and_lf_line_ends() -> None:
    assert extract_uid("BEGIN:VEVENT\nuid;X-FOO=bar:u-1\nEND:VEVENT\n") == "u-1"


def test_text_without_uid_has_none() -> None:
    assert extract_uid("BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n") is None
    assert extract_uid("UID:\r\n") is None


def test_a_property_that_merely_starts_with_uid_is_not_the_uid() -> None:
    assert extract_uid("UIDX:nope\r\nUID:yes\r\n") == "yes"


def test_item_derives_uid_unless_given() -> None:
    assert Item("UID:a\r\n").uid == "a"
    assert Item("UID:a\r\n", uid="b").uid == "b"


def test_hash_depends_on_text_only() -> None:
    assert Item("UID:a\r\n").hash == Item("UID:a\r\n", uid="z").hash == content_hash("UID:a\r\n")
    assert Item("UID:a\r\n").hash != Item("UID:b\r\n").hash


SERIES = (
    "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:old-\r\n uid\r\nSUMMARY:master\r\n"
    "BEGIN:VALARM\r\nUID:alarm-1\r\nACTION:DISPLAY\r\nEND:VALARM\r\nEND:VEVENT\r\n"
    "BEGIN:VEVENT\r\nuid;X-P=1:old-uid\r\nRECURRENCE-ID:20260101T100000Z\r\n"
    "SUMMARY:UID:old-uid stays in text\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
)


def test_with_uid_rewrites_every_component_of_the_series() -> None:
    copy = Item(SERIES).with_uid("new-1")
    assert copy.uid == "new-1"
    assert copy.text == (
        "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:new-1\r\nSUMMARY:master\r\n"
        "BEGIN:VALARM\r\nUID:alarm-1\r\nACTION:DISPLAY\r\nEND:VALARM\r\nEND:VEVENT\r\n"
        "BEGIN:VEVENT\r\nuid;X-P=1:new-1\r\nRECURRENCE-ID:20260101T100000Z\r\n"
        "SUMMARY:UID:old-uid stays in text\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    )


def test_with_uid_keeps_lf_line_ends() -> None:
    assert Item("BEGIN:VTODO\nUID:a\nEND:VTODO\n").with_uid("b").text == (
        "BEGIN:VTODO\nUID:b\nEND:VTODO\n"
    )


def test_with_uid_needs_a_uid_and_a_one_line_value() -> None:
    with pytest.raises(ValueError, match="UID"):
        Item("BEGIN:VTODO\r\nEND:VTODO\r\n").with_uid("b")
    with pytest.raises(ValueError, match="UID"):
        Item("UID:a\r\n").with_uid("b\r\nX-INJECTED:1")
