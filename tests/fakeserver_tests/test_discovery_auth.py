"""RFC 8620 §2 (Session), §2.2 (discovery) and the dialects' authentication answers."""

from __future__ import annotations

import niquests
import pytest

from tests.fakeserver import FakeJMAPServer


def test_stalwart_well_known_redirects_307_to_jmap_session(stalwart: FakeJMAPServer) -> None:
    with niquests.Session() as http:
        response = http.get(stalwart.session_url, allow_redirects=False)
    assert response.status_code == 307
    assert response.headers["Location"] == "/jmap/session"


@pytest.mark.parametrize("dialect", ["ietf", "cyrus36"])
def test_cyrus_well_known_redirects_301_to_jmap(dialect: str) -> None:
    with FakeJMAPServer(dialect=dialect) as srv, niquests.Session() as http:
        response = http.get(srv.url, allow_redirects=False)
    assert response.status_code == 301
    assert response.headers["Location"] == "/jmap"


def test_stalwart_session_without_auth_has_no_accounts(stalwart: FakeJMAPServer) -> None:
    with niquests.Session() as http:
        response = http.get(stalwart.session_url)
    assert response.status_code == 200
    session = response.json()
    assert session["accounts"] == {}
    assert session["primaryAccounts"] == {}
    assert session["username"] == ""
    assert "urn:ietf:params:jmap:calendars" in session["capabilities"]


def test_stalwart_session_shape(stalwart: FakeJMAPServer) -> None:
    with niquests.Session() as http:
        session = http.get(stalwart.session_url, auth=("alice", "secret")).json()
    caps = session["capabilities"]
    assert list(caps)[:3] == [
        "urn:ietf:params:jmap:core",
        "urn:ietf:params:jmap:mail",
        "urn:ietf:params:jmap:calendars",
    ]
    assert caps["urn:ietf:params:jmap:core"]["maxCallsInRequest"] == 16
    assert caps["urn:ietf:params:jmap:core"]["maxObjectsInGet"] == 500
    assert caps["urn:ietf:params:jmap:calendars"] == {}
    assert "urn:ietf:params:jmap:tasks" not in caps
    account = session["accounts"]["b"]
    cal_cap = account["accountCapabilities"]["urn:ietf:params:jmap:calendars"]
    assert cal_cap["maxCalendarsPerEvent"] is None
    assert session["primaryAccounts"]["urn:ietf:params:jmap:calendars"] == "b"
    assert session["apiUrl"] == f"{stalwart.base_url}/jmap/"
    assert session["eventSourceUrl"].startswith(f"{stalwart.base_url}/jmap/eventsource/")
    assert session["username"] == "alice"


def test_ietf_session_is_relative_with_one_calendar_per_event(ietf: FakeJMAPServer) -> None:
    with niquests.Session() as http:
        response = http.get(ietf.url, auth=("alice", "secret"))
    session = response.json()
    assert response.url == f"{ietf.base_url}/jmap"
    assert session["apiUrl"] == "/jmap/"
    assert session["eventSourceUrl"].startswith("/jmap/eventsource/")
    cal_cap = session["accounts"]["alice"]["accountCapabilities"]["urn:ietf:params:jmap:calendars"]
    assert cal_cap["maxCalendarsPerEvent"] == 1


def test_cyrus36_session_uses_the_cyrus_calendars_capability(cyrus36: FakeJMAPServer) -> None:
    with niquests.Session() as http:
        session = http.get(cyrus36.url, auth=("alice", "secret")).json()
    assert "https://cyrusimap.org/ns/jmap/calendars" in session["capabilities"]
    assert "urn:ietf:params:jmap:calendars" not in session["capabilities"]
    assert session["apiUrl"] == "/jmap/"


def test_tasks_capability_only_when_asked() -> None:
    with FakeJMAPServer(dialect="stalwart", tasks=True) as srv, niquests.Session() as http:
        session = http.get(srv.url, auth=(srv.username, srv.password)).json()
    assert "urn:ietf:params:jmap:tasks" in session["capabilities"]
    assert session["primaryAccounts"]["urn:ietf:params:jmap:tasks"] == "b"


def test_limits_are_served_from_the_mutable_dict(stalwart: FakeJMAPServer) -> None:
    stalwart.limits["maxObjectsInGet"] = 7
    with niquests.Session() as http:
        session = http.get(stalwart.url, auth=("alice", "secret")).json()
    assert session["capabilities"]["urn:ietf:params:jmap:core"]["maxObjectsInGet"] == 7


def test_stalwart_bad_password_gets_problem_and_two_challenges(stalwart: FakeJMAPServer) -> None:
    with niquests.Session() as http:
        response = http.get(stalwart.url, auth=("alice", "wrong"))
    assert response.status_code == 401
    assert response.headers["Content-Type"] == "application/problem+json"
    assert response.json()["detail"] == "You have to authenticate first."
    assert response.raw is not None
    challenges = response.raw.headers.getlist("WWW-Authenticate")
    assert len(challenges) == 2
    assert challenges[0].startswith("Bearer ")
    assert challenges[1] == 'Basic realm="Stalwart Server"'


def test_stalwart_trims_and_lowercases_basic_user_names(stalwart: FakeJMAPServer) -> None:
    with niquests.Session() as http:
        response = http.get(stalwart.url, auth=(" Alice ", "secret"))
    assert response.status_code == 200
    assert response.json()["username"] == "alice"


@pytest.mark.parametrize("dialect", ["ietf", "cyrus36"])
def test_cyrus_session_without_auth_is_401_basic(dialect: str) -> None:
    with FakeJMAPServer(dialect=dialect) as srv, niquests.Session() as http:
        response = http.get(srv.url)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Basic")


def test_api_without_auth_is_401(server: FakeJMAPServer) -> None:
    with niquests.Session() as http:
        response = http.post(server.api_url, json={"using": [], "methodCalls": []})
    assert response.status_code == 401


def test_bearer_token_is_accepted(server: FakeJMAPServer) -> None:
    with niquests.Session() as http:
        headers = {"Authorization": f"Bearer {server.token}"}
        ok = http.get(server.url, headers=headers)
        bad = http.get(server.url, headers={"Authorization": "Bearer nope"})
    assert ok.status_code == 200
    assert ok.json()["username"] == server.username
    assert bad.status_code == 401


def test_second_user_gets_its_own_account() -> None:
    users = {"alice": "secret", "bob": "hunter2"}
    with FakeJMAPServer(dialect="stalwart", users=users) as srv, niquests.Session() as http:
        session = http.get(srv.url, auth=("bob", "hunter2")).json()
        assert list(session["accounts"]) == ["c"]
        body = {
            "using": ["urn:ietf:params:jmap:core", "urn:ietf:params:jmap:calendars"],
            "methodCalls": [["Calendar/get", {"accountId": "b"}, "0"]],
        }
        answer = http.post(srv.api_url, json=body, auth=("bob", "hunter2")).json()
    assert answer["methodResponses"][0][0] == "error"
    assert answer["methodResponses"][0][1]["type"] == "forbidden"
    assert srv.stores["bob"].account_id == "c"


@pytest.mark.parametrize("dialect", ["ietf", "cyrus36"])
def test_cyrus_other_users_account_is_not_found(dialect: str) -> None:
    users = {"alice": "secret", "bob": "hunter2"}
    cap = "urn:ietf:params:jmap:calendars"
    if dialect == "cyrus36":
        cap = "https://cyrusimap.org/ns/jmap/calendars"
    with FakeJMAPServer(dialect=dialect, users=users) as srv, niquests.Session() as http:
        body = {
            "using": ["urn:ietf:params:jmap:core", cap],
            "methodCalls": [["Calendar/get", {"accountId": "alice"}, "0"]],
        }
        response = http.post(srv.api_url, json=body, auth=("bob", "hunter2"))
    assert response.status_code == 200
    assert response.json()["methodResponses"][0][1] == {"type": "accountNotFound"}
