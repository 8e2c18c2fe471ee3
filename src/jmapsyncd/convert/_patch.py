"""PatchObject diff and apply (RFC 8984 §1.4.9).

Promises: ``diff(a, b)`` returns a patch whose keys are JSON pointers without the leading ``/``
(``~0``/``~1`` escaped) such that ``apply(a, diff(a, b)) == b``; ``null`` removes a property.
"""

from __future__ import annotations

import copy
from typing import Any

from jmapsyncd.errors import ConversionError


def escape_segment(key: str) -> str:
    """A JSON pointer segment for ``key`` (RFC 6901)."""
    return key.replace("~", "~0").replace("/", "~1")


def _unesc(key: str) -> str:
    return key.replace("~1", "/").replace("~0", "~")


def diff(a: dict[str, Any], b: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """The smallest patch (by nesting into objects present on both sides) turning a into b."""
    out: dict[str, Any] = {}
    for k in a:
        if k not in b:
            out[prefix + escape_segment(k)] = None
    for k, bv in b.items():
        if k in a:
            av = a[k]
            if av == bv:
                continue
            if isinstance(av, dict) and isinstance(bv, dict) and av and bv:
                out.update(diff(av, bv, prefix + escape_segment(k) + "/"))
                continue
        out[prefix + escape_segment(k)] = copy.deepcopy(bv)
    return out


def apply(obj: dict[str, Any], patch: dict[str, Any], where: str = "patch") -> dict[str, Any]:
    """Apply a PatchObject to a deep copy of ``obj``."""
    res = copy.deepcopy(obj)
    for ptr, value in patch.items():
        parts = [_unesc(p) for p in ptr.split("/")]
        cur: Any = res
        for p in parts[:-1]:
            if not isinstance(cur, dict):
                raise ConversionError(f"patch path {ptr!r} goes through a non-object", where=where)
            nxt = cur.get(p)
            if nxt is None:
                # RFC 8984 says this is invalid; servers do send it, so we create the parent
                nxt = {}
                cur[p] = nxt
            cur = nxt
        if not isinstance(cur, dict):
            raise ConversionError(f"patch path {ptr!r} goes through a non-object", where=where)
        if value is None:
            cur.pop(parts[-1], None)
        else:
            cur[parts[-1]] = copy.deepcopy(value)
    return res
