"""Request envelope and response decoding (RFC 8620 §3.3, §3.4, §3.6, §3.7)."""

from __future__ import annotations

from typing import Any

import pytest

from jmapsyncd.errors import (
    CannotCalculateChanges,
    JMAPMethodError,
    JMAPRequestError,
    JMAPTransportError,
    RemoteProtocolError,
    UnknownMethod,
)
from jmapsyncd.protocol.envelope import Request, Response
from jmapsyncd.protocol.wire import HttpResponse, check_response, json_object


def test_call_ids_are_allocated_and_references_encoded() -> None:
    req = Request(["a", "b", "a"])
    q = req.call("CalendarEvent/query", {"accountId": "x"})
    req.call("CalendarEvent/get", {"accountId": "x", "ids": q.ref("/ids")})
    assert req.to_json() == {
        "using": ["a", "b"],
        "methodCalls": [
            ["CalendarEvent/query", {"accountId": "x"}, "c0"],
            [
                "CalendarEvent/get",
                {
                    "accountId": "x",
                    "#ids": {"resultOf": "c0", "name": "CalendarEvent/query", "path": "/ids"},
                },
                "c1",
            ],
        ],
    }


def _response(*items: Any) -> Response:
    return Response({"methodResponses": list(items), "sessionState": "s"}, "http://h/api")


def test_result_returns_the_arguments_of_the_matching_call() -> None:
    req = Request(["core"])
    call = req.call("Calendar/get", {})
    assert _response(["Calendar/get", {"list": []}, "c0"]).result(call) == {"list": []}


@pytest.mark.parametrize(
    ("etype", "klass"),
    [("cannotCalculateChanges", CannotCalculateChanges), ("unknownMethod", UnknownMethod)],
)
def test_method_errors_become_their_subclass(etype: str, klass: type[JMAPMethodError]) -> None:
    call = Request(["core"]).call("CalendarEvent/changes", {})
    with pytest.raises(klass) as info:
        _response(["error", {"type": etype, "description": "why"}, "c0"]).result(call)
    assert info.value.method == "CalendarEvent/changes"
    assert "why" in str(info.value)


@pytest.mark.parametrize(
    "items",
    [
        [["Calendar/get", {}]],
        [["Calendar/get", [], "c0"]],
        ["nonsense"],
    ],
)
def test_malformed_method_responses_are_remote_protocol_errors(items: list[Any]) -> None:
    with pytest.raises(RemoteProtocolError):
        Response({"methodResponses": items})


def test_missing_response_is_a_remote_protocol_error() -> None:
    call = Request(["core"]).call("Calendar/get", {})
    with pytest.raises(RemoteProtocolError, match="no response"):
        _response(["Calendar/get", {}, "c9"]).result(call)


def test_request_error_problem_details() -> None:
    body = (
        b'{"type": "urn:ietf:params:jmap:error:limit", "limit": "maxCallsInRequest", "status": 400}'
    )
    with pytest.raises(JMAPRequestError) as info:
        check_response(HttpResponse(400, "http://h/", {}, body))
    assert info.value.limit == "maxCallsInRequest"
    assert info.value.error_type == "urn:ietf:params:jmap:error:limit"


def test_retry_after_as_http_date_is_relative_to_the_answer_date() -> None:
    headers = {
        "retry-after": "Wed, 25 Nov 2026 10:00:30 GMT",
        "date": "Wed, 25 Nov 2026 10:00:00 GMT",
    }
    with pytest.raises(JMAPTransportError) as info:
        check_response(HttpResponse(503, "http://h/", headers, b""))
    assert info.value.retry_after == 30.0


def test_429_is_a_transport_error() -> None:
    with pytest.raises(JMAPTransportError) as info:
        check_response(HttpResponse(429, "http://h/", {"retry-after": "2"}, b""))
    assert info.value.retry_after == 2.0


def test_truncated_json_is_a_remote_protocol_error() -> None:
    with pytest.raises(RemoteProtocolError, match="not JSON"):
        json_object(HttpResponse(200, "http://h/", {}, b'{"methodResponses": ['))
