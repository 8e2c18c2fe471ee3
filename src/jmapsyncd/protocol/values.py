"""Frozen result values of the sync API: change sets (RFC 8620 §5.2) and set results (§5.3)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from jmapsyncd.errors import JMAPSetError


@dataclass(frozen=True)
class ChangeSet:
    """Ids changed between ``old_state`` and ``new_state``, collapsed across pages.

    An id appears in at most one of the three tuples: created-then-updated is ``created``,
    created-then-destroyed is nowhere, updated-then-destroyed is ``destroyed``.
    """

    created: tuple[str, ...]
    updated: tuple[str, ...]
    destroyed: tuple[str, ...]
    old_state: str
    new_state: str

    @property
    def empty(self) -> bool:
        return not (self.created or self.updated or self.destroyed)


@dataclass(frozen=True)
class SetResult:
    """Per-object outcome of a (possibly chunked) /set.

    ``created`` maps the caller's key to the server's answer (at least ``id``); ``not_*`` map the
    caller's key or object id to a :class:`~jmapsyncd.errors.JMAPSetError`.

    ``dropped`` maps the caller's key (create) or object id (update) of an object the server
    accepted only without some of its content to those paths (``participants/p1/sendTo``…):
    what the server holds lacks them, the caller's copy still has them.
    """

    created: dict[str, dict[str, Any]] = field(default_factory=dict)
    updated: dict[str, dict[str, Any] | None] = field(default_factory=dict)
    destroyed: tuple[str, ...] = ()
    not_created: dict[str, JMAPSetError] = field(default_factory=dict)
    not_updated: dict[str, JMAPSetError] = field(default_factory=dict)
    not_destroyed: dict[str, JMAPSetError] = field(default_factory=dict)
    old_state: str | None = None
    new_state: str | None = None
    dropped: dict[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not (self.not_created or self.not_updated or self.not_destroyed)

    def raise_first_error(self) -> None:
        """Raise the first per-object error, if any."""
        for errors in (self.not_created, self.not_updated, self.not_destroyed):
            for error in errors.values():
                raise error
