"""UID extraction and content hashing of items, without an iCalendar parser."""

from __future__ import annotations

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
