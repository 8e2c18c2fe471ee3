"""Which collections to sync, from the ``include`` and ``exclude`` settings.

Promise: :func:`is_selected` is pure. A pattern matches a collection when it equals its JMAP id
exactly or its name ignoring case; ``exclude`` wins over ``include``; an empty ``include``
selects everything not excluded.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["is_selected"]


def _matches(patterns: Sequence[str], jmap_id: str, name: str | None) -> bool:
    folded = name.casefold() if name is not None else None
    return any(p == jmap_id or (folded is not None and p.casefold() == folded) for p in patterns)


def is_selected(
    jmap_id: str, name: str | None, include: Sequence[str], exclude: Sequence[str]
) -> bool:
    """True if the collection ``jmap_id`` named ``name`` is to be synced."""
    if _matches(exclude, jmap_id, name):
        return False
    return not include or _matches(include, jmap_id, name)
