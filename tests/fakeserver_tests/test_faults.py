"""Fault injection and request recording, as the client's retry and error tests rely on them."""

from __future__ import annotations

import http.client
import urllib.request

import niquests
import pytest

from tests.fakeserver import FakeJMAPServer, Fault
from tests.fakeserver_tests.conftest import Raw


def test_status_fault_with_retry_after_then_normal(sraw: Raw) -> None:
    sraw.server.faults.append(Fault(status=503, retry_after=2))
    first = sraw.post({"using": sraw.using, "methodCalls": []})
    second = sraw.post({"using": sraw.using, "methodCalls": []})
    assert first.status_code == 503
    assert first.headers["Retry-After"] == "2"
    assert second.status_code == 200
    assert sraw.server.faults == []


def test_default_fault_is_a_500(sraw: Raw) -> None:
    sraw.server.faults.append(Fault())
    assert sraw.post({"using": sraw.using, "methodCalls": []}).status_code == 500


def test_times_and_path_prefix(sraw: Raw) -> None:
    sraw.server.faults.append(Fault(status=502, path="/jmap/session", times=2))
    session_url = f"{sraw.server.base_url}/jmap/session"
    assert sraw.post({"using": sraw.using, "methodCalls": []}).status_code == 200
    assert sraw.http.get(session_url).status_code == 502
    assert sraw.http.get(session_url).status_code == 502
    assert sraw.http.get(session_url).status_code == 200


def test_body_fault_answers_200_with_those_bytes(raw: Raw) -> None:
    raw.server.faults.append(Fault(body=b"not json"))
    response = raw.post({"using": raw.using, "methodCalls": []})
    assert response.status_code == 200
    assert response.content == b"not json"


def test_delay_fault_still_answers_normally(raw: Raw) -> None:
    raw.server.faults.append(Fault(delay=0.05))
    response = raw.post({"using": raw.using, "methodCalls": [["Core/echo", {"a": 1}, "0"]]})
    assert response.status_code == 200
    assert response.json()["methodResponses"][0][1] == {"a": 1}


def test_delay_longer_than_client_timeout_times_out(stalwart: FakeJMAPServer) -> None:
    stalwart.faults.append(Fault(delay=5))
    with niquests.Session() as client, pytest.raises(niquests.exceptions.Timeout):
        client.get(f"{stalwart.base_url}/jmap/session", timeout=0.2)


def test_reset_fault_breaks_the_connection(stalwart: FakeJMAPServer) -> None:
    stalwart.faults.append(Fault(reset=True))
    with niquests.Session(retries=0) as client, pytest.raises(niquests.exceptions.ConnectionError):
        client.get(f"{stalwart.base_url}/jmap/session")
    with niquests.Session() as client:
        assert client.get(f"{stalwart.base_url}/jmap/session").status_code == 200


def test_truncate_fault_cuts_the_body(stalwart: FakeJMAPServer) -> None:
    stalwart.faults.append(Fault(truncate=True))
    request = urllib.request.Request(f"{stalwart.base_url}/jmap/session")
    with (
        pytest.raises(http.client.IncompleteRead) as caught,
        urllib.request.urlopen(request, timeout=5) as response,
    ):
        response.read()
    assert len(caught.value.partial) > 0


def test_requests_are_recorded_with_auth_redacted(raw: Raw) -> None:
    raw.request([["Core/echo", {"x": 1}, "0"]])
    last = raw.server.requests[-1]
    assert last.method == "POST"
    assert last.path == "/jmap/"
    assert last.json["methodCalls"] == [["Core/echo", {"x": 1}, "0"]]
    assert last.headers["Authorization"] == "<redacted>"
    assert raw.server.password not in repr(raw.server.requests)


def test_server_stops_promptly_with_a_request_in_flight() -> None:
    srv = FakeJMAPServer().start()
    url = f"{srv.base_url}/jmap/session"
    srv.faults.append(Fault(delay=30))
    with niquests.Session(retries=0) as client:
        with pytest.raises(niquests.exceptions.Timeout):
            client.get(url, timeout=0.3)
        srv.stop()
        with pytest.raises(niquests.exceptions.ConnectionError):
            client.get(url, timeout=1)


def test_method_fault_only_hits_requests_calling_that_method(raw: Raw) -> None:
    raw.server.faults.append(Fault(status=500, method="CalendarEvent/set"))
    echo = raw.post({"using": raw.using, "methodCalls": [["Core/echo", {}, "0"]]})
    assert echo.status_code == 200
    call = ["CalendarEvent/set", {"accountId": raw.account, "destroy": []}, "0"]
    assert raw.post({"using": raw.using, "methodCalls": [call]}).status_code == 500
    assert raw.post({"using": raw.using, "methodCalls": [call]}).status_code == 200
