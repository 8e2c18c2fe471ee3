"""HTTP-level values exchanged between flows and drivers, and the status checks of RFC 8620 §3.

A flow yields :class:`HttpRequest` and receives :class:`HttpResponse`; it never touches a socket.
:func:`check_response` turns an HTTP answer into our exception tree: 401/403 are final auth
errors, 5xx (and 429) transport errors carrying ``Retry-After``, 4xx problem details
(RFC 8620 §3.6.1) request errors, and a body that is not a JSON object a remote protocol error.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from jmapsyncd.errors import (
    JMAPAuthError,
    JMAPRequestError,
    JMAPTransportError,
    RemoteProtocolError,
)


@dataclass(frozen=True)
class HttpRequest:
    """One HTTP request a flow wants sent; ``json`` is the body (POST) or None (GET)."""

    method: str
    url: str
    json: Any = None
    #: False for requests that must not carry credentials (a redirect to another origin)
    authenticated: bool = True


@dataclass(frozen=True)
class HttpResponse:
    """The parts of an HTTP answer flows look at. Header names are lower-cased."""

    status: int
    url: str
    headers: dict[str, str] = field(default_factory=dict)
    content: bytes = b""


def redact_url(url: str) -> str:
    """Drop any userinfo from a URL so it can go into messages and logs."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))


def same_origin(a: str, b: str) -> bool:
    pa, pb = urlsplit(a), urlsplit(b)
    return (pa.scheme, pa.hostname, pa.port) == (pb.scheme, pb.hostname, pb.port)


def _retry_after(value: str | None, date: str | None) -> float | None:
    """Seconds to wait: a number, or an HTTP date measured against the answer's own Date."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
        sent = parsedate_to_datetime(date) if date else None
    except (TypeError, ValueError):
        return None
    if sent is None:
        return None
    return max(0.0, (when - sent).total_seconds())


def _short(content: bytes) -> str:
    text = content[:300].decode("utf-8", "replace").strip()
    return " ".join(text.split())


def check_response(resp: HttpResponse) -> None:
    """Raise the matching error for a non-2xx answer; return for 2xx."""
    url = redact_url(resp.url)
    status = resp.status
    if 200 <= status < 300:
        return
    if status in (401, 403):
        raise JMAPAuthError(url, f"HTTP {status}: credentials refused", "forbidden", status=status)
    if status >= 500 or status == 429:
        raise JMAPTransportError(
            url,
            f"HTTP {status}: {_short(resp.content)}" if resp.content else f"HTTP {status}",
            "serverUnavailable" if status in (429, 503) else "serverFail",
            status=status,
            retry_after=_retry_after(resp.headers.get("retry-after"), resp.headers.get("date")),
        )
    problem: dict[str, Any] = {}
    try:
        loaded = json.loads(resp.content) if resp.content else None
    except ValueError:
        loaded = None
    if isinstance(loaded, dict):
        problem = loaded
    ptype = problem.get("type")
    detail = problem.get("detail") or problem.get("title")
    limit = problem.get("limit")
    reason = f"HTTP {status}"
    if isinstance(detail, str) and detail:
        reason += f": {detail[:300]}"
    elif not problem and resp.content:
        reason += f": {_short(resp.content)}"
    raise JMAPRequestError(
        url,
        reason,
        ptype if isinstance(ptype, str) else "urn:ietf:params:jmap:error:notRequest",
        status=status,
        limit=limit if isinstance(limit, str) else None,
    )


def json_object(resp: HttpResponse) -> dict[str, Any]:
    """Decode a 2xx body that must be a JSON object; RemoteProtocolError otherwise."""
    check_response(resp)
    try:
        data = json.loads(resp.content)
    except ValueError as exc:
        raise RemoteProtocolError(
            redact_url(resp.url), f"answer is not JSON: {exc.__class__.__name__}"
        ) from None
    if not isinstance(data, dict):
        raise RemoteProtocolError(redact_url(resp.url), "answer is not a JSON object")
    return data
