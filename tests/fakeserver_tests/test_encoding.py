"""Stalwart's id and state encodings and Cyrus 3.10's UID-derived ids, pinned to recorded values."""

from __future__ import annotations

import pytest

from tests.fakeserver.encoding import (
    cyrus_event_id,
    decode_id,
    decode_stalwart_state,
    encode_id,
    encode_stalwart_paging_state,
    encode_stalwart_state,
)


@pytest.mark.parametrize(("number", "text"), [(0, "a"), (1, "b"), (26, "7"), (35, "bd")])
def test_ids_are_base32_numbers(number: int, text: str) -> None:
    assert encode_id(number) == text
    assert decode_id(text) == number


def test_id_decoding_accepts_upper_k_to_z_only() -> None:
    assert decode_id("BD") is None
    assert decode_id("bZ") == decode_id("bz")
    assert decode_id("b-") is None


@pytest.mark.parametrize(("change", "text"), [(3, "sam"), (26, "sdi"), (27, "sdm"), (28, "sdq")])
def test_states_match_recorded_traffic(change: int, text: str) -> None:
    assert encode_stalwart_state(change) == text
    decoded = decode_stalwart_state(text)
    assert decoded is not None
    assert (decoded.kind, decoded.start) == ("s", change)


def test_paging_states_match_recorded_traffic() -> None:
    assert encode_stalwart_paging_state(27, 28, 1) == "rdmaqc"
    decoded = decode_stalwart_state("rdmaqe")
    assert decoded is not None
    assert (decoded.kind, decoded.start, decoded.end, decoded.sent) == ("r", 27, 28, 2)


def test_state_parsing_is_lenient() -> None:
    junk = decode_stalwart_state("sdqx")
    upper = decode_stalwart_state("sdA")
    assert junk is not None
    assert upper is not None
    assert junk.encode() == "sdq"
    assert upper.encode() == "sda"
    assert encode_stalwart_state(0) == "n"
    assert decode_stalwart_state("") is None
    assert decode_stalwart_state("x1") is None


def test_cyrus_ids() -> None:
    assert cyrus_event_id("plain-uid_1") == "E-plain-uid_1"
    assert cyrus_event_id("a@b.c") == "EB-YUBiLmM"
