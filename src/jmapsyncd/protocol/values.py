"""Frozen result values of the sync API: change sets (RFC 8620 §5.2), set results (§5.3) and
the outcome of a one-request pull (/changes with /get by result reference, §3.7)."""

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


@dataclass(frozen=True)
class KindPull:
    """What one pull learned about a collection type and its item type.

    ``Calendar`` + ``CalendarEvent``, or ``TaskList`` + ``Task``. Objects are normalised (events
    in IETF form, calendars with ``myRights``).

    Collections come one of two ways. ``collections`` is the full list when it was listed: no
    stored collection state was given, the server has no ``/changes`` for the type, or it cannot
    calculate changes from the stored state (the pull then lists them in a follow-up request).
    Otherwise ``collections`` is None, ``collection_changes`` holds the changes since the stored
    state and ``collection_objects`` the created and updated collections. ``collection_state`` is
    the state to store next either way.

    Items are never listed in full. ``item_changes`` holds the changes since the stored item
    state, across every ``hasMoreChanges`` page, and ``item_objects`` the created and updated
    items the server still has (an id whose object is missing was destroyed meanwhile; the next
    change feed says so). ``item_state`` is the state to store next. ``full_items_needed`` is
    True when no item state was given or the server cannot calculate changes from it:
    ``item_changes`` and ``item_state`` are then None and the caller lists every item itself
    (``get_all_events``/``get_all_tasks``) and stores the state that listing returns.
    """

    collection_type: str
    item_type: str
    collections: list[dict[str, Any]] | None
    collection_changes: ChangeSet | None
    collection_objects: list[dict[str, Any]]
    collection_state: str
    item_changes: ChangeSet | None
    item_objects: list[dict[str, Any]]
    item_state: str | None
    full_items_needed: bool

    @property
    def unchanged(self) -> bool:
        """Neither collections nor items changed since the stored states."""
        return (
            self.collections is None
            and self.collection_changes is not None
            and self.collection_changes.empty
            and not self.full_items_needed
            and self.item_changes is not None
            and self.item_changes.empty
        )


@dataclass(frozen=True)
class Pull:
    """One pull: events always; tasks when asked for and the server offers JMAP Tasks."""

    events: KindPull
    tasks: KindPull | None = None

    @property
    def unchanged(self) -> bool:
        """Nothing changed on the server since the stored states."""
        return self.events.unchanged and (self.tasks is None or self.tasks.unchanged)
