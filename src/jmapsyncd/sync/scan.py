"""Build the planner's local input from a store collection, reading as few files as possible.

Promise: :func:`scan_local` lists a collection once and returns a :class:`LocalEntry` for every
item in the listing -- never fewer, because an item missing from the local input would be
planned as a local deletion. A file whose etag equals its stored status is not read (its stored
hash and UID are reused); any other file is read to get its hash and UID. A file that cannot be
read is still listed (``hash=None``) and reported in :attr:`LocalScan.unreadable`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from jmapsyncd.errors import PreconditionFailed, StoreError
from jmapsyncd.sync.plan import ItemStatus, LocalEntry
from jmapsyncd.vdir.base import Collection

__all__ = ["LocalScan", "scan_local"]


@dataclass(frozen=True, slots=True)
class LocalScan:
    """The local side of one collection."""

    entries: dict[str, LocalEntry]
    #: href -> why it could not be read (the engine records these as errors)
    unreadable: dict[str, str] = field(default_factory=dict)


def scan_local(collection: Collection, status: Mapping[str, ItemStatus] | None = None) -> LocalScan:
    """The local listing of ``collection``, with hashes for every file that may have changed."""
    by_href = {s.href: s for s in (status or {}).values()}
    entries: dict[str, LocalEntry] = {}
    unreadable: dict[str, str] = {}
    for href, etag in collection.list():
        known = by_href.get(href)
        if known is not None and known.local_etag == etag:
            entries[href] = LocalEntry(etag, known.local_hash, known.uid)
            continue
        try:
            item, read_etag = collection.get(href)
        except PreconditionFailed:
            continue  # deleted between list() and get(): it is gone
        except StoreError as exc:
            entries[href] = LocalEntry(etag)
            unreadable[href] = str(exc)
            continue
        entries[href] = LocalEntry(read_etag, item.hash, item.uid)
    return LocalScan(entries, unreadable)
