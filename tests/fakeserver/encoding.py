"""Id and state encodings of the dialects the fake server speaks.

Stalwart (see ``stalwart-jmap.md``): document ids are u64 numbers printed in base32 with the
alphabet ``abcdefghijklmnopqrstuvwxyz792013`` and no leading zeros; states are ``"n"`` (nothing
yet), ``"s" + base32(leb128(changeId))`` or, while paging ``/changes``, ``"r" + base32(leb128(from),
leb128(to - from), leb128(itemsSent))``, with the bytes packed five bits per character.  Decoding is
lenient like the real parser: an unknown character counts as zero bits and trailing junk is ignored.

Cyrus (IETF dialect, 3.10): event ids are ``E-<uid>`` or ``EB-<base64url(uid)>``.
"""

from __future__ import annotations

import base64
import re

ALPHABET = "abcdefghijklmnopqrstuvwxyz792013"
_VALUE = {c: i for i, c in enumerate(ALPHABET)}
# Stalwart's decoding table also maps upper-case K-Z to the lower-case values (a table quirk).
_VALUE.update({c.upper(): _VALUE[c] for c in "klmnopqrstuvwxyz"})


def encode_id(number: int) -> str:
    """Print ``number`` in Stalwart's base32 digits, most significant first, no leading zeros."""
    if number < 0:
        raise ValueError("ids are unsigned")
    digits = []
    while True:
        number, rest = divmod(number, 32)
        digits.append(ALPHABET[rest])
        if number == 0:
            break
    return "".join(reversed(digits))


def decode_id(text: str) -> int | None:
    """Parse a Stalwart id; ``None`` when it is not one (the server then ignores it)."""
    if not text or len(text) > 13:
        return None
    number = 0
    for char in text:
        value = _VALUE.get(char)
        if value is None:
            return None
        number = number * 32 + value
    return number if number < 2**64 else None


def _leb128(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _read_leb128(data: bytes, pos: int) -> tuple[int, int] | None:
    value = 0
    shift = 0
    while pos < len(data):
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, pos
    return None


def _pack(data: bytes) -> str:
    bits = "".join(f"{b:08b}" for b in data)
    bits += "0" * (-len(bits) % 5)
    return "".join(ALPHABET[int(bits[i : i + 5], 2)] for i in range(0, len(bits), 5))


def _unpack(text: str) -> bytes:
    bits = "".join(f"{_VALUE.get(c, 0):05b}" for c in text)
    return bytes(int(bits[i : i + 8], 2) for i in range(0, len(bits) - 7, 8))


def encode_stalwart_state(change_id: int) -> str:
    """``"n"`` before the first change, else ``"s…"``."""
    return "n" if change_id == 0 else "s" + _pack(_leb128(change_id))


def encode_stalwart_paging_state(start: int, end: int, sent: int) -> str:
    """The intermediate ``"r…"`` state of a paged ``/changes``."""
    return "r" + _pack(_leb128(start) + _leb128(end - start) + _leb128(sent))


class StalwartState:
    """A decoded Stalwart state: ``kind`` is n, s or r."""

    def __init__(self, kind: str, start: int, end: int | None = None, sent: int = 0) -> None:
        self.kind = kind
        self.start = start
        self.end = end
        self.sent = sent

    def encode(self) -> str:
        if self.kind == "r" and self.end is not None:
            return encode_stalwart_paging_state(self.start, self.end, self.sent)
        return encode_stalwart_state(self.start)


def decode_stalwart_state(text: str) -> StalwartState | None:
    """Decode leniently; ``None`` when the first character is not n, s or r (or it is empty)."""
    if not text or text[0] not in "nsr":
        return None
    if text[0] == "n":
        return StalwartState("n", 0)
    data = _unpack(text[1:])
    first = _read_leb128(data, 0)
    if text[0] == "s":
        return StalwartState("s", first[0] if first else 0)
    if first is None:
        return StalwartState("r", 0, 0, 0)
    second = _read_leb128(data, first[1])
    delta, pos = second if second else (0, first[1])
    third = _read_leb128(data, pos)
    return StalwartState("r", first[0], first[0] + delta, third[0] if third else 0)


_SAFE_UID = re.compile(r"[A-Za-z0-9_-]+")


def cyrus_event_id(uid: str, prefix: str = "E") -> str:
    """Cyrus 3.10's id for an event UID: ``E-uid``, or ``EB-base64url(uid)`` for unsafe UIDs."""
    if _SAFE_UID.fullmatch(uid):
        return f"{prefix}-{uid}"
    encoded = base64.urlsafe_b64encode(uid.encode()).decode().rstrip("=")
    return f"{prefix}B-{encoded}"
