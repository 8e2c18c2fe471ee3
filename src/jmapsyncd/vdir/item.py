"""The unit stored in a collection: the text of one iCalendar object and its UID.

Promise: :class:`Item` is an immutable value; :attr:`Item.uid` is read from the first ``UID``
property of the text (RFC 5545 §3.8.4.7, after unfolding per §3.1) and :attr:`Item.hash` is the
SHA-256 hex digest of the text's UTF-8 bytes, so two items with the same text have the same hash.
No iCalendar parser is involved: the store must cope with files it cannot parse.
:meth:`Item.with_uid` rewrites only the ``UID`` lines holding the item's UID (every component of
a recurring series shares it), leaving every other byte as it was.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field

__all__ = ["Item", "content_hash", "extract_uid"]

_FOLD = re.compile(r"\r?\n[ \t]")
_UID_LINE = re.compile(r"^UID(?:;[^:\r\n]*)?:(.*?)\r?$", re.IGNORECASE | re.MULTILINE)
# A whole (possibly folded) UID content line, without its final line break.
_RAW_UID_LINE = re.compile(
    r"^UID(?:;[^:\r\n]*)?:[^\r\n]*(?:\r?\n[ \t][^\r\n]*)*", re.IGNORECASE | re.MULTILINE
)


def content_hash(text: str) -> str:
    """SHA-256 hex digest of ``text`` encoded as UTF-8."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def extract_uid(text: str) -> str | None:
    """The value of the first ``UID`` property line, or ``None`` if there is none or it is empty."""
    match = _UID_LINE.search(_FOLD.sub("", text))
    if match is None:
        return None
    uid = match.group(1).strip()
    return uid or None


@dataclass(frozen=True, slots=True)
class Item:
    """One iCalendar object as text. ``uid`` is derived from the text unless given."""

    text: str
    uid: str | None = field(default=None)

    def __post_init__(self) -> None:
        if self.uid is None:
            object.__setattr__(self, "uid", extract_uid(self.text))

    def with_uid(self, new_uid: str) -> Item:
        """A copy whose UID lines carry ``new_uid`` (for the keep-both copy of a conflict).

        Only lines whose value is this item's UID change: an alarm's own UID stays.
        """
        if self.uid is None or any(c in new_uid for c in "\r\n"):
            raise ValueError("with_uid needs an item with a UID and a one-line new UID")
        old = self.uid

        def swap(match: re.Match[str]) -> str:
            line = match.group(0)
            head, _, value = _FOLD.sub("", line).partition(":")
            return f"{head}:{new_uid}" if value.strip() == old else line

        return Item(_RAW_UID_LINE.sub(swap, self.text))

    @property
    def hash(self) -> str:
        """Content hash of :attr:`text` (see :func:`content_hash`)."""
        return content_hash(self.text)
