"""The JMAP request envelope and response decoding (RFC 8620 §3.3, §3.4, §3.7).

:class:`Request` collects method calls, allocates call ids (``c0``, ``c1`` …) and turns
:class:`ResultRef` arguments into ``"#name": {resultOf, name, path}`` back-references.
:class:`Response` decodes ``methodResponses``; :meth:`Response.result` hands back one call's
arguments or raises the :class:`~jmapsyncd.errors.JMAPMethodError` subclass for its error type.
A malformed answer raises :class:`~jmapsyncd.errors.RemoteProtocolError`, never KeyError.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from jmapsyncd.errors import JMAPMethodError, RemoteProtocolError


@dataclass(frozen=True)
class ResultRef:
    """A back-reference to a path in an earlier call's result (RFC 8620 §3.7)."""

    call_id: str
    name: str
    path: str

    def to_json(self) -> dict[str, str]:
        return {"resultOf": self.call_id, "name": self.name, "path": self.path}


@dataclass(frozen=True)
class Call:
    """One method call in a request; ``args`` is already in wire form."""

    name: str
    args: dict[str, Any]
    id: str

    def ref(self, path: str) -> ResultRef:
        return ResultRef(self.id, self.name, path)


class Request:
    """A JMAP request under construction."""

    def __init__(self, using: Iterable[str]) -> None:
        self.using: list[str] = list(dict.fromkeys(using))
        self.calls: list[Call] = []

    def call(self, name: str, args: dict[str, Any]) -> Call:
        wire: dict[str, Any] = {}
        for key, value in args.items():
            if isinstance(value, ResultRef):
                wire["#" + key] = value.to_json()
            else:
                wire[key] = value
        call = Call(name, wire, f"c{len(self.calls)}")
        self.calls.append(call)
        return call

    def to_json(self) -> dict[str, Any]:
        return {
            "using": list(self.using),
            "methodCalls": [[c.name, c.args, c.id] for c in self.calls],
        }

    def size(self) -> int:
        """Bytes of the JSON body, for the ``maxSizeRequest`` limit."""
        return len(json.dumps(self.to_json(), separators=(",", ":")).encode())

    def __len__(self) -> int:
        return len(self.calls)


class Response:
    """Decoded ``methodResponses`` of one request."""

    def __init__(self, data: dict[str, Any], url: str | None = None) -> None:
        self.url = url
        responses = data.get("methodResponses")
        if not isinstance(responses, list):
            raise RemoteProtocolError(url, "response has no methodResponses list")
        self.by_id: dict[str, list[tuple[str, dict[str, Any]]]] = {}
        for item in responses:
            if (
                not isinstance(item, list)
                or len(item) != 3
                or not isinstance(item[0], str)
                or not isinstance(item[1], dict)
                or not isinstance(item[2], str)
            ):
                raise RemoteProtocolError(url, f"malformed method response {str(item)[:200]}")
            self.by_id.setdefault(item[2], []).append((item[0], item[1]))
        session_state = data.get("sessionState")
        self.session_state = session_state if isinstance(session_state, str) else None

    def result(self, call: Call) -> dict[str, Any]:
        """Arguments of the response to ``call``; raises its method error if it failed."""
        for name, args in self.by_id.get(call.id, []):
            if name == "error":
                raise JMAPMethodError.from_response(args, url=self.url, method=call.name)
            if name == call.name:
                return args
        raise RemoteProtocolError(self.url, f"no response to {call.name} (call {call.id})")


def str_list(
    args: dict[str, Any], key: str, *, url: str | None, optional: bool = False
) -> list[str]:
    """A list of strings from a response; null is an empty list only when ``optional``."""
    value = args.get(key)
    if value is None and (optional or key not in args):
        if optional:
            return []
        raise RemoteProtocolError(url, f"response lacks {key!r}")
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise RemoteProtocolError(url, f"{key!r} is not a list of strings")
    return list(value)


def string(args: dict[str, Any], key: str, *, url: str | None) -> str:
    value = args.get(key)
    if not isinstance(value, str):
        raise RemoteProtocolError(url, f"response lacks string {key!r}")
    return value


def obj_list(args: dict[str, Any], key: str, *, url: str | None) -> list[dict[str, Any]]:
    value = args.get(key)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise RemoteProtocolError(url, f"{key!r} is not a list of objects")
    return list(value)


def obj_map(args: dict[str, Any], key: str, *, url: str | None) -> dict[str, Any]:
    """A map section of a /set response; Cyrus sends null for empty ones."""
    value = args.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise RemoteProtocolError(url, f"{key!r} is not an object")
    return dict(value)
