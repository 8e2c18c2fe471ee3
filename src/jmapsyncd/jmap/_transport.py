"""What both drivers share: building the auth object and mapping niquests to our values/errors.

Credentials live only in the auth object handed to niquests; nothing here formats them.
"""

from __future__ import annotations

import logging
import re
from typing import Any

import niquests
from niquests.auth import AuthBase, BearerTokenAuth, HTTPBasicAuth

from jmapsyncd.errors import JMAPTimeoutError, JMAPTransportError, LocalProtocolError
from jmapsyncd.protocol.wire import HttpRequest, HttpResponse, redact_url

log = logging.getLogger("jmapsyncd.jmap")

HEADERS: dict[str | bytes, str | bytes] = {"Accept": "application/json"}


def build_auth(
    username: str | None,
    password: str | None,
    auth: Any,
    auth_type: str | None,
) -> Any:
    """``auth`` wins; username+password is Basic; a password alone is a Bearer token."""
    if auth is not None:
        return auth
    kind = auth_type.lower() if auth_type else None
    if kind not in (None, "basic", "bearer"):
        raise LocalProtocolError(None, f"auth_type must be 'basic' or 'bearer', not {auth_type!r}")
    if kind is None:
        if username and password is not None:
            kind = "basic"
        elif password:
            kind = "bearer"
        else:
            return None
    if kind == "basic":
        if not username or password is None:
            raise LocalProtocolError(None, "basic auth needs a username and a password")
        return HTTPBasicAuth(username, password)
    if not password:
        raise LocalProtocolError(None, "bearer auth needs a token (the password argument)")
    return BearerTokenAuth(password)


def request_kwargs(
    req: HttpRequest, auth: Any, timeout: float, verify: bool = True
) -> dict[str, Any]:
    kwargs: dict[str, Any] = {
        "timeout": timeout,
        "allow_redirects": False,  # flows follow redirects themselves
        "auth": auth if req.authenticated else None,
    }
    if not verify:
        # Per request: niquests replaces a session-level False by REQUESTS_CA_BUNDLE or
        # CURL_CA_BUNDLE from the environment.
        kwargs["verify"] = False
    if req.json is not None:
        kwargs["json"] = req.json
    return kwargs


def to_response(resp: niquests.Response, req: HttpRequest) -> HttpResponse:
    # Method names only: bodies may hold private calendar data, URLs are stripped of userinfo.
    names = [c[0] for c in req.json.get("methodCalls", [])] if isinstance(req.json, dict) else []
    log.debug("%s %s %s -> %s", req.method, redact_url(req.url), names, resp.status_code)
    headers = {k.lower(): v for k, v in resp.headers.items()}
    content = resp.content
    return HttpResponse(
        status=int(resp.status_code or 0),
        url=req.url,
        headers=headers,
        content=content if isinstance(content, bytes) else b"",
    )


def transport_error(exc: Exception, req: HttpRequest, timeout: float) -> JMAPTransportError:
    url = redact_url(req.url)
    if isinstance(exc, niquests.exceptions.Timeout):
        return JMAPTimeoutError(url, f"no answer within {timeout} s")
    return JMAPTransportError(url, f"{type(exc).__name__}: {_cause(exc)}")


def _cause(exc: BaseException) -> str:
    """The innermost OS-level reason ("Connection refused") or else the exception's own text."""
    seen: set[int] = set()
    current: BaseException | None = exc
    found: str | None = None
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.strerror:
            found = current.strerror
        current = current.__cause__ or current.__context__
    text = str(exc)
    if found is None:
        match = re.search(r"\[Errno -?\d+\] ([^'\]\)]+)", text)
        found = match.group(1) if match else None
    return found if found else text[:200]


def is_transport_error(exc: Exception) -> bool:
    return isinstance(exc, niquests.exceptions.RequestException | OSError)


__all__ = [
    "HEADERS",
    "AuthBase",
    "build_auth",
    "is_transport_error",
    "request_kwargs",
    "to_response",
    "transport_error",
]
