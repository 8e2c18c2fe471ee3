"""The vdir store: collections of iCalendar files on disk, and an in-memory twin.

Promise: :class:`Vdir` and :class:`MemoryStore` implement the :class:`Store` contract of
:mod:`jmapsyncd.vdir.base`; names come from :mod:`jmapsyncd.vdir.names`, never from raw ids, and
nothing is ever written outside the vdir root.
"""

from jmapsyncd.vdir.base import Collection, Store
from jmapsyncd.vdir.color import normalize_color
from jmapsyncd.vdir.filesystem import Vdir, VdirCollection, etag_of
from jmapsyncd.vdir.item import Item, content_hash, extract_uid
from jmapsyncd.vdir.memory import MemoryCollection, MemoryStore
from jmapsyncd.vdir.names import href_for_uid, is_item_href, is_safe_name, is_temp_name, safe_name

__all__ = [
    "Collection",
    "Item",
    "MemoryCollection",
    "MemoryStore",
    "Store",
    "Vdir",
    "VdirCollection",
    "content_hash",
    "etag_of",
    "extract_uid",
    "href_for_uid",
    "is_item_href",
    "is_safe_name",
    "is_temp_name",
    "normalize_color",
    "safe_name",
]
