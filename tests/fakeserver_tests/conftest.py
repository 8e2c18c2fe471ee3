"""Fixtures for the fake server's own tests: a running server per dialect and a raw JMAP caller.

The caller speaks plain HTTP through niquests, independent of the project's client, so these tests
pin the fake's wire behaviour on their own.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import niquests
import pytest

from tests.fakeserver import FakeJMAPServer

CORE = "urn:ietf:params:jmap:core"
CAL_CAPS = {
    "stalwart": "urn:ietf:params:jmap:calendars",
    "ietf": "urn:ietf:params:jmap:calendars",
    "cyrus36": "https://cyrusimap.org/ns/jmap/calendars",
}
TASKS = "urn:ietf:params:jmap:tasks"


class Raw:
    """A minimal JMAP caller over one niquests session with the server's credentials."""

    def __init__(self, server: FakeJMAPServer, http: niquests.Session) -> None:
        self.server = server
        self.http = http
        self.account = server.account_id
        self.using = [CORE, CAL_CAPS[server.dialect]] + ([TASKS] if server.tasks else [])

    def post(self, body: Any, **kwargs: Any) -> niquests.Response:
        return self.http.post(self.server.api_url, json=body, **kwargs)

    def request(self, calls: list[list[Any]], using: list[str] | None = None) -> dict[str, Any]:
        response = self.post({"using": using or self.using, "methodCalls": calls})
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()
        return result

    def call(self, name: str, args: dict[str, Any] | None = None) -> dict[str, Any]:
        """One method call with ``accountId`` filled in; returns the response arguments."""
        arguments = {"accountId": self.account, **(args or {})}
        responses = self.request([[name, arguments, "c0"]])["methodResponses"]
        assert len(responses) == 1
        out: dict[str, Any] = responses[0][1]
        if responses[0][0] == "error":
            out = {"error": out}
        return out

    def new_event(self, calendar_id: str, **props: Any) -> dict[str, Any]:
        """An event in the dialect's own shape (Cyrus 3.6: ``calendarId``)."""
        event: dict[str, Any] = {"title": "Event", "start": "2026-03-01T10:00:00"}
        event.update(props)
        if self.server.dialect == "cyrus36":
            event["calendarId"] = calendar_id
        else:
            event["calendarIds"] = {calendar_id: True}
        return event


def raw_caller(server: FakeJMAPServer) -> Iterator[Raw]:
    with niquests.Session() as http:
        http.auth = (server.username, server.password)
        yield Raw(server, http)


@pytest.fixture(params=["stalwart", "ietf", "cyrus36"])
def server(request: pytest.FixtureRequest) -> Iterator[FakeJMAPServer]:
    with FakeJMAPServer(dialect=request.param, tasks=True) as srv:
        yield srv


@pytest.fixture
def raw(server: FakeJMAPServer) -> Iterator[Raw]:
    yield from raw_caller(server)


@pytest.fixture
def stalwart() -> Iterator[FakeJMAPServer]:
    with FakeJMAPServer(dialect="stalwart") as srv:
        yield srv


@pytest.fixture
def sraw(stalwart: FakeJMAPServer) -> Iterator[Raw]:
    yield from raw_caller(stalwart)


@pytest.fixture
def ietf() -> Iterator[FakeJMAPServer]:
    with FakeJMAPServer(dialect="ietf") as srv:
        yield srv


@pytest.fixture
def iraw(ietf: FakeJMAPServer) -> Iterator[Raw]:
    yield from raw_caller(ietf)


@pytest.fixture
def cyrus36() -> Iterator[FakeJMAPServer]:
    with FakeJMAPServer(dialect="cyrus36") as srv:
        yield srv


@pytest.fixture
def craw(cyrus36: FakeJMAPServer) -> Iterator[Raw]:
    yield from raw_caller(cyrus36)
