"""The test servers really serve JMAP Calendars (RFC 8620 §2 session, §5.1 /get, §5.3 /set).

Raw HTTP on purpose: this proves the fixtures and servers, independently of our client.
"""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import urljoin

import niquests
import pytest

from tests.conftest import ServerAccount

pytestmark = pytest.mark.integration

CALENDAR_CAPABILITIES = (
    "urn:ietf:params:jmap:calendars",
    "https://cyrusimap.org/ns/jmap/calendars",
)


def _session(account: ServerAccount, http: niquests.Session) -> dict[str, Any]:
    resp = http.get(account.url, auth=(account.username, account.password), timeout=10)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert isinstance(body, dict)
    return body


def _call(
    account: ServerAccount, http: niquests.Session, session: dict[str, Any], calls: list[Any]
) -> list[Any]:
    cap = next(c for c in CALENDAR_CAPABILITIES if c in session["capabilities"])
    resp = http.post(
        urljoin(account.url, session["apiUrl"]),
        json={"using": ["urn:ietf:params:jmap:core", cap], "methodCalls": calls},
        auth=(account.username, account.password),
        timeout=10,
    )
    assert resp.status_code == 200, resp.text
    responses = resp.json()["methodResponses"]
    assert isinstance(responses, list)
    return responses


def test_session_names_the_dialect_and_the_account(cyrus_account: ServerAccount) -> None:
    with niquests.Session() as http:
        session = _session(cyrus_account, http)
    caps = session["capabilities"]
    expected = {
        "cyrus-3.6": "https://cyrusimap.org/ns/jmap/calendars",
        "cyrus-3.10": "urn:ietf:params:jmap:calendars",
    }.get(cyrus_account.dialect)
    if expected:
        assert expected in caps
    assert cyrus_account.username in session["accounts"]


def test_event_create_read_destroy(cyrus_account: ServerAccount) -> None:
    ietf = cyrus_account.dialect != "cyrus-3.6"
    with niquests.Session() as http:
        session = _session(cyrus_account, http)
        acct = session["primaryAccounts"].get(
            "urn:ietf:params:jmap:calendars" if ietf else "https://cyrusimap.org/ns/jmap/calendars"
        )
        assert acct == cyrus_account.username
        [[name, cals, _]] = _call(
            cyrus_account, http, session, [["Calendar/get", {"accountId": acct}, "c"]]
        )
        assert name == "Calendar/get"
        cal_id = cals["list"][0]["id"]
        uid = f"{uuid.uuid4()}@smoke.test"
        event: dict[str, Any] = {
            "uid": uid,
            "title": "Smoke test",
            "start": "2026-12-01T10:00:00",
            "timeZone": "Europe/Berlin",
            "duration": "PT1H",
        }
        event.update({"calendarIds": {cal_id: True}} if ietf else {"calendarId": cal_id})
        [[_, created, _]] = _call(
            cyrus_account,
            http,
            session,
            [["CalendarEvent/set", {"accountId": acct, "create": {"e": event}}, "s"]],
        )
        event_id = created["created"]["e"]["id"]
        [[_, got, _]] = _call(
            cyrus_account,
            http,
            session,
            [["CalendarEvent/get", {"accountId": acct, "ids": [event_id]}, "g"]],
        )
        [stored] = got["list"]
        assert (stored["uid"], stored["title"], stored["start"]) == (
            uid,
            "Smoke test",
            "2026-12-01T10:00:00",
        )
        [[_, destroyed, _]] = _call(
            cyrus_account,
            http,
            session,
            [["CalendarEvent/set", {"accountId": acct, "destroy": [event_id]}, "d"]],
        )
        assert destroyed["destroyed"] == [event_id]
        [[_, gone, _]] = _call(
            cyrus_account,
            http,
            session,
            [["CalendarEvent/get", {"accountId": acct, "ids": [event_id]}, "g"]],
        )
        assert gone["notFound"] == [event_id]
