"""The store contract shared by the vdir on disk and its in-memory twin.

Promise (after vdirsyncer's storage contract): a :class:`Collection` holds items addressed by an
``href`` (a file name such as ``<uid>.ics``) and versioned by an opaque ``etag`` string that
changes whenever the item changes. Mutations take the etag the caller last saw and raise
:class:`~jmapsyncd.errors.PreconditionFailed` if the item changed since, is missing, or (for
``upload``) already exists; every other refusal is a :class:`~jmapsyncd.errors.StoreError`.
A :class:`Store` holds collections addressed by a ``name`` derived from a stable id.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Protocol, runtime_checkable

from jmapsyncd.vdir.item import Item

__all__ = ["Collection", "Store"]


@runtime_checkable
class Collection(Protocol):
    """One calendar or task list: a set of items plus ``displayname`` and ``color`` metadata."""

    @property
    def name(self) -> str:
        """The collection's folder name inside its store."""
        ...

    def list(self) -> Iterator[tuple[str, str]]:
        """Yield ``(href, etag)`` for every item, in no particular order."""
        ...

    def get(self, href: str) -> tuple[Item, str]:
        """The item and its etag; :class:`PreconditionFailed` if it does not exist."""
        ...

    def has(self, href: str) -> bool:
        """True if an item with this href exists."""
        ...

    def upload(
        self, item: Item, href: str | None = None, *, durable: bool = True
    ) -> tuple[str, str]:
        """Store a new item; returns ``(href, etag)``.

        ``href`` defaults to :func:`~jmapsyncd.vdir.names.href_for_uid` of the item's UID.
        :class:`PreconditionFailed` if that href is taken; :class:`StoreError` if the item has no
        UID and no href was given, or the href is not an acceptable item name.
        ``durable=False``: the write is visible at once but durable only after :meth:`flush`.
        """
        ...

    def update(self, href: str, item: Item, etag: str, *, durable: bool = True) -> str:
        """Replace the item at ``href`` if its etag is still ``etag``; returns the new etag."""
        ...

    def flush(self, hrefs: Iterable[str] = ()) -> None:
        """Make the writes made with ``durable=False`` durable, and the items ``hrefs``."""
        ...

    def delete(self, href: str, etag: str) -> None:
        """Remove the item at ``href`` if its etag is still ``etag``."""
        ...

    def get_displayname(self) -> str | None:
        """The display name, ``None`` if unset."""
        ...

    def set_displayname(self, value: str | None) -> None:
        """Set (or with ``None`` remove) the display name."""
        ...

    def get_color(self) -> str | None:
        """The colour as ``#RRGGBB``, ``None`` if unset."""
        ...

    def set_color(self, value: str | None) -> None:
        """Set a CSS colour (stored as ``#RRGGBB``) or remove it with ``None``.

        :class:`StoreError` if the value is not a colour :func:`normalize_color` understands.
        """
        ...


@runtime_checkable
class Store(Protocol):
    """A set of collections (the vdir root)."""

    def list_collections(self) -> Iterator[str]:
        """Yield the name of every collection."""
        ...

    def collection_name(self, collection_id: str) -> str:
        """The folder name used for a collection id (pure, deterministic, safe)."""
        ...

    def create_collection(self, collection_id: str) -> Collection:
        """Create (or open, if it exists) the collection for ``collection_id``."""
        ...

    def get_collection(self, name: str) -> Collection:
        """Open an existing collection by name; :class:`StoreError` if there is none."""
        ...

    def delete_collection(self, name: str) -> None:
        """Remove a collection and its items; a missing collection is not an error."""
        ...
