"""An in-memory twin of the vdir with the same contract, for tests and for the planner's tests.

Promise: :class:`MemoryStore` and :class:`MemoryCollection` accept and refuse exactly what
:class:`~jmapsyncd.vdir.filesystem.Vdir` and its collections accept and refuse (the shared
contract tests run against both); etags are unique for the life of the process.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator

from jmapsyncd.errors import PreconditionFailed, StoreError
from jmapsyncd.vdir.color import normalize_color
from jmapsyncd.vdir.item import Item
from jmapsyncd.vdir.names import href_for_uid, is_item_href, safe_name

__all__ = ["MemoryCollection", "MemoryStore"]

_etags = itertools.count(1)


def _next_etag() -> str:
    return f"mem-{next(_etags)}"


def _check_href(href: str) -> None:
    if not is_item_href(href):
        raise StoreError(f"not an acceptable item name: {href!r}")


def _check_text(item: Item) -> None:
    try:
        item.text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise StoreError(f"item text cannot be stored as UTF-8: {exc}") from exc


class MemoryCollection:
    """A collection held in a dict."""

    def __init__(self, name: str) -> None:
        self._name = name
        self.items: dict[str, tuple[Item, str]] = {}
        self.meta: dict[str, str] = {}
        self.deleted = False

    def __repr__(self) -> str:
        return f"MemoryCollection({self._name!r})"

    @property
    def name(self) -> str:
        return self._name

    def _check_alive(self) -> None:
        if self.deleted:
            raise StoreError(f"collection folder is missing: {self._name}")

    def list(self) -> Iterator[tuple[str, str]]:
        self._check_alive()
        for href, (_, etag) in tuple(self.items.items()):
            yield href, etag

    def has(self, href: str) -> bool:
        _check_href(href)
        return href in self.items

    def get(self, href: str) -> tuple[Item, str]:
        _check_href(href)
        try:
            return self.items[href]
        except KeyError:
            raise PreconditionFailed(f"item does not exist: {href}") from None

    def upload(
        self, item: Item, href: str | None = None, *, durable: bool = True
    ) -> tuple[str, str]:
        self._check_alive()
        if href is None:
            if item.uid is None:
                raise StoreError("cannot name an item without a UID")
            href = href_for_uid(item.uid)
        _check_href(href)
        _check_text(item)
        if href in self.items:
            raise PreconditionFailed(f"item already exists: {href}")
        etag = _next_etag()
        self.items[href] = (item, etag)
        return href, etag

    def _check_etag(self, href: str, etag: str) -> None:
        _check_href(href)
        if href not in self.items:
            raise PreconditionFailed(f"item does not exist: {href}")
        current = self.items[href][1]
        if current != etag:
            raise PreconditionFailed(f"{href} changed (etag {current}, expected {etag})")

    def update(self, href: str, item: Item, etag: str, *, durable: bool = True) -> str:
        self._check_etag(href, etag)
        _check_text(item)
        new = _next_etag()
        self.items[href] = (item, new)
        return new

    def flush(self, hrefs: Iterable[str] = ()) -> None:
        """Nothing to do: memory is as durable as it gets."""

    def delete(self, href: str, etag: str) -> None:
        self._check_etag(href, etag)
        del self.items[href]

    def _set_meta(self, key: str, value: str | None) -> None:
        self._check_alive()
        if value is None or not value.strip():
            self.meta.pop(key, None)
        else:
            self.meta[key] = value

    def get_displayname(self) -> str | None:
        return self.meta.get("displayname")

    def set_displayname(self, value: str | None) -> None:
        self._set_meta("displayname", None if value is None else " ".join(value.split()))

    def get_color(self) -> str | None:
        return self.meta.get("color")

    def set_color(self, value: str | None) -> None:
        if value is None:
            self._set_meta("color", None)
            return
        color = normalize_color(value)
        if color is None:
            raise StoreError(f"not a colour: {value!r}")
        self._set_meta("color", color)


class MemoryStore:
    """A store of :class:`MemoryCollection` objects."""

    def __init__(self) -> None:
        self.collections: dict[str, MemoryCollection] = {}

    def collection_name(self, collection_id: str) -> str:
        return safe_name(collection_id)

    def list_collections(self) -> Iterator[str]:
        yield from tuple(self.collections)

    def create_collection(self, collection_id: str) -> MemoryCollection:
        name = self.collection_name(collection_id)
        return self.collections.setdefault(name, MemoryCollection(name))

    def get_collection(self, name: str) -> MemoryCollection:
        try:
            return self.collections[name]
        except KeyError:
            raise StoreError(f"collection folder is missing: {name}") from None

    def delete_collection(self, name: str) -> None:
        collection = self.collections.pop(name, None)
        if collection is not None:
            collection.deleted = True
