"""Run flows against scripted answers: no HTTP, no server, only request and response values."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TypeVar

from jmapsyncd.protocol.flows import ClientState, Flow
from jmapsyncd.protocol.session import CALENDARS, CORE, CYRUS_CALENDARS, TASKS, parse_session
from jmapsyncd.protocol.wire import HttpRequest, HttpResponse

T = TypeVar("T")
BASE = "http://jmap.test"
SESSION_URL = f"{BASE}/jmap/session"
API_URL = f"{BASE}/jmap/"

Responder = Callable[[HttpRequest], HttpResponse]
#: a method handler: (method name, arguments) -> response arguments, or ("error", args)
Handler = Callable[[str, dict[str, Any]], "dict[str, Any] | tuple[str, dict[str, Any]]"]


def session_json(
    dialect: str = "ietf",
    *,
    tasks: bool = False,
    limits: dict[str, Any] | None = None,
    api_url: str = "/jmap/",
) -> dict[str, Any]:
    core: dict[str, Any] = {
        "maxSizeRequest": 10_000_000,
        "maxCallsInRequest": 16 if dialect == "stalwart" else 50,
        "maxObjectsInGet": 500 if dialect == "stalwart" else 4096,
        "maxObjectsInSet": 500 if dialect == "stalwart" else 4096,
    }
    core.update(limits or {})
    caps: dict[str, Any] = {CORE: core, CYRUS_CALENDARS if dialect == "cyrus36" else CALENDARS: {}}
    if tasks:
        caps[TASKS] = {}
    return {
        "capabilities": caps,
        "accounts": {"acc": {"name": "alice", "accountCapabilities": {k: {} for k in caps}}},
        "primaryAccounts": dict.fromkeys(caps, "acc"),
        "username": "alice",
        "apiUrl": api_url,
        "state": "s0",
    }


def state_for(dialect: str = "ietf", **kwargs: Any) -> ClientState:
    """A client state whose session is already known (no discovery request)."""
    from jmapsyncd.protocol.dialect import dialect_from_session

    state = ClientState(SESSION_URL)
    state.session = parse_session(session_json(dialect, **kwargs), SESSION_URL)
    state.dialect = dialect_from_session(state.session)
    return state


def answer(
    body: Any, status: int = 200, url: str = API_URL, headers: dict[str, str] | None = None
) -> HttpResponse:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return HttpResponse(status=status, url=url, headers=headers or {}, content=content)


def run(flow: Flow[T], responder: Responder) -> tuple[T, list[HttpRequest]]:
    """Drive ``flow`` to its end; returns its result and every request it made."""
    sent: list[HttpRequest] = []
    try:
        req = next(flow)
        while True:
            sent.append(req)
            req = flow.send(responder(req))
    except StopIteration as stop:
        result: T = stop.value
        return result, sent


def jmap(handler: Handler) -> Responder:
    """A responder answering each method call of a POST through ``handler``."""

    def respond(req: HttpRequest) -> HttpResponse:
        assert req.method == "POST", req
        body = req.json
        out = []
        for name, args, call_id in body["methodCalls"]:
            result = handler(name, args)
            if isinstance(result, tuple):
                out.append([result[0], result[1], call_id])
            else:
                out.append([name, result, call_id])
        return answer({"methodResponses": out, "sessionState": "s0"}, url=req.url)

    return respond


def calls(requests: list[HttpRequest]) -> list[tuple[str, dict[str, Any]]]:
    """Every method call sent, in order."""
    return [(c[0], c[1]) for r in requests if r.json for c in r.json["methodCalls"]]


def jmap_refs(handler: Handler) -> Responder:
    """Like :func:`jmap`, resolving ``#name`` back-references (RFC 8620 §3.7) first.

    A reference to a failed call becomes an ``invalidResultReference`` error, as servers do.
    Paths are plain JSON Pointers into the referenced result.
    """

    def respond(req: HttpRequest) -> HttpResponse:
        assert req.method == "POST", req
        out: list[list[Any]] = []
        for name, args, call_id in req.json["methodCalls"]:
            resolved: dict[str, Any] = {}
            broken = False
            for key, value in args.items():
                if not key.startswith("#"):
                    resolved[key] = value
                    continue
                target = next((o for o in out if o[2] == value["resultOf"]), None)
                if target is None or target[0] != value["name"]:
                    broken = True
                    break
                found: Any = target[1]
                for part in value["path"].strip("/").split("/"):
                    found = found[part]
                resolved[key[1:]] = found
            if broken:
                out.append(["error", {"type": "invalidResultReference"}, call_id])
                continue
            result = handler(name, resolved)
            if isinstance(result, tuple):
                out.append([result[0], result[1], call_id])
            else:
                out.append([name, result, call_id])
        return answer({"methodResponses": out, "sessionState": "s0"}, url=req.url)

    return respond
