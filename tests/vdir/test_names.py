"""Names derived from ids and UIDs are safe path components, stable, and readable when possible."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from jmapsyncd.vdir.names import (
    MAX_NAME,
    href_for_uid,
    is_item_href,
    is_safe_name,
    is_temp_name,
    safe_name,
)


@pytest.mark.parametrize(
    "uid", ["abc", "040000008200E00074C5B7101A82E008@example.com", "a+b=c_d-e.f", "x" * MAX_NAME]
)
def test_safe_uids_are_used_unchanged(uid: str) -> None:
    assert safe_name(uid) == uid
    assert href_for_uid(uid) == uid + ".ics"


@pytest.mark.parametrize(
    "uid",
    ["", ".", "..", "../x", "a/b", "/etc/passwd", ".hidden", "a\x00b", "tab\there", "é", "x" * 121],
)
def test_unsafe_uids_are_hashed(uid: str) -> None:
    expected = hashlib.sha256(uid.encode()).hexdigest()[:40]
    assert safe_name(uid) == expected


def test_hashed_name_is_stable_and_distinct() -> None:
    assert safe_name("a/b") == safe_name("a/b")
    assert safe_name("a/b") != safe_name("a/c")


@given(st.text())
def test_any_text_maps_to_a_safe_name(value: str) -> None:
    name = safe_name(value)
    assert is_safe_name(name)
    assert "/" not in name
    assert name not in (".", "..")
    assert is_item_href(href_for_uid(value))


@given(st.text(alphabet=st.characters(codec="utf-8"), min_size=1))
def test_lone_surrogate_free_text_hashes_like_its_utf8(value: str) -> None:
    if not is_safe_name(value):
        assert safe_name(value) == hashlib.sha256(value.encode()).hexdigest()[:40]


def test_lone_surrogates_still_get_a_name() -> None:
    assert is_safe_name(safe_name("\udc80"))


@pytest.mark.parametrize(
    ("name", "ok"),
    [
        ("x.ics", True),
        ("My Event.ics", True),
        (".x.ics", False),
        (".ics", False),
        ("x.txt", False),
        ("a/b.ics", False),
        ("a\x00.ics", False),
        ("a\n.ics", False),
        ("x" * 300 + ".ics", False),
    ],
)
def test_item_href_acceptance(name: str, ok: bool) -> None:
    assert is_item_href(name) is ok


def test_temp_names_are_hidden_and_not_items() -> None:
    assert is_temp_name(".jmapsyncd-0123.tmp")
    assert not is_item_href(".jmapsyncd-0123.tmp")
    assert not is_temp_name("x.ics")
