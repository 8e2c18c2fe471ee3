"""Safe, deterministic file and folder names for the vdir.

Promise: :func:`safe_name` turns any string a server or a file may carry (a JMAP id, an iCalendar
UID) into one path component that cannot escape its folder: it is never empty, never starts with
``.``, holds only ``[A-Za-z0-9_.@+=-]`` and is at most :data:`MAX_NAME` characters long. A string
that already satisfies those rules is used unchanged (so khal users see ``<uid>.ics``); anything
else is replaced by a prefix of its SHA-256 hex digest. The mapping is pure and stable across runs.
"""

from __future__ import annotations

import hashlib
import re

__all__ = [
    "ICS_SUFFIX",
    "MAX_NAME",
    "href_for_uid",
    "is_item_href",
    "is_safe_name",
    "is_temp_name",
    "safe_name",
]

#: Longest name used unchanged. Well under the usual 255-byte limit, leaving room for ``.ics``
#: and for the temp-file decoration in :func:`temp_name`.
MAX_NAME = 120
ICS_SUFFIX = ".ics"
#: Hex digits of SHA-256 kept for hashed names: 160 bits, collisions are not a practical concern.
HASH_CHARS = 40

_SAFE = re.compile(r"[A-Za-z0-9_.@+=-]+")
TEMP_PREFIX = "."
TEMP_SUFFIX = ".tmp"


def is_safe_name(value: str) -> bool:
    """True if ``value`` can be used as a file name as it is."""
    return (
        0 < len(value) <= MAX_NAME
        and not value.startswith(".")
        and _SAFE.fullmatch(value) is not None
    )


def safe_name(value: str) -> str:
    """``value`` itself when it is a safe name, else a SHA-256 hex prefix of its UTF-8 bytes."""
    if is_safe_name(value):
        return value
    # surrogatepass: ids decoded from JSON may hold lone surrogates; they must still hash.
    digest = hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()
    return digest[:HASH_CHARS]


def href_for_uid(uid: str) -> str:
    """The item file name (href) used for an iCalendar UID."""
    return safe_name(uid) + ICS_SUFFIX


def is_temp_name(name: str) -> bool:
    """True for the temp files our atomic writes create (file watchers should ignore them)."""
    return name.startswith(TEMP_PREFIX) and name.endswith(TEMP_SUFFIX)


def is_item_href(name: str) -> bool:
    """True for a name that may be an item of a collection.

    Wider than :func:`is_safe_name`: files made by khal, todoman or a user keep their own names,
    so any visible single path component ending in ``.ics`` qualifies.
    """
    return (
        name.endswith(ICS_SUFFIX)
        and len(name) > len(ICS_SUFFIX)
        and not name.startswith(".")
        and len(name.encode("utf-8", "surrogatepass")) <= 255
        and not any(c in name for c in "/\\\x00")
        and name.isprintable()
    )
