"""PatchObject application, RFC 8620 §5.3 (``/set`` update).

Keys are JSON pointers (RFC 6901) relative to the object root, without the leading slash; every
part before the last must already exist and must not cross an array; ``null`` removes the member;
no key may be a prefix of another.  A failed patch raises :class:`PatchError`.
"""

from __future__ import annotations

import copy
import itertools
from typing import Any


class PatchError(ValueError):
    """The patch cannot be applied; ``pointer`` names the offending key."""

    def __init__(self, pointer: str) -> None:
        super().__init__(pointer)
        self.pointer = pointer


def split_pointer(pointer: str) -> list[str]:
    return [part.replace("~1", "/").replace("~0", "~") for part in pointer.split("/")]


def apply_patch(obj: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """Return a patched deep copy of ``obj``."""
    keys = sorted(patch)
    for first, second in itertools.pairwise(keys):
        if second.startswith(first + "/"):
            raise PatchError(second)
    result = copy.deepcopy(obj)
    for pointer, value in patch.items():
        parts = split_pointer(pointer)
        target: Any = result
        for part in parts[:-1]:
            if not isinstance(target, dict) or part not in target:
                raise PatchError(pointer)
            target = target[part]
        if not isinstance(target, dict):
            raise PatchError(pointer)
        if value is None:
            target.pop(parts[-1], None)
        else:
            target[parts[-1]] = copy.deepcopy(value)
    return result


def top_level_keys(patch: dict[str, Any]) -> list[str]:
    """The top-level property each patch key touches, in order, without duplicates."""
    seen: list[str] = []
    for pointer in patch:
        name = split_pointer(pointer)[0]
        if name not in seen:
            seen.append(name)
    return seen
