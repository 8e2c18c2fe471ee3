"""Session resource and discovery (RFC 8620 §2, §2.2): redirects, relative URLs, limits, errors."""

from __future__ import annotations

import pytest

from jmapsyncd.errors import JMAPAuthError, JMAPTransportError, RemoteProtocolError
from jmapsyncd.protocol.flows import ClientState, discover, session_url
from jmapsyncd.protocol.session import CYRUS_CALENDARS, parse_session
from jmapsyncd.protocol.wire import HttpRequest, HttpResponse
from tests.protocol.scripted import answer, run, session_json


class TestParseSession:
    def test_relative_api_url_is_resolved_against_the_session_url(self) -> None:
        s = parse_session(session_json(), "http://h:8080/jmap")
        assert s.api_url == "http://h:8080/jmap/"

    def test_absolute_api_url_is_kept(self) -> None:
        s = parse_session(session_json(api_url="https://mail.example/jmap/"), "http://h/jmap")
        assert s.api_url == "https://mail.example/jmap/"

    def test_account_comes_from_primary_accounts(self) -> None:
        data = session_json()
        data["accounts"]["other"] = {"name": "x"}
        assert parse_session(data, "http://h/").account_id == "acc"

    def test_limits_are_read(self) -> None:
        data = session_json(
            limits={
                "maxObjectsInGet": 7,
                "maxObjectsInSet": 8,
                "maxCallsInRequest": 3,
                "maxSizeRequest": 999,
            }
        )
        limits = parse_session(data, "http://h/").limits
        assert (limits.max_objects_in_get, limits.max_objects_in_set) == (7, 8)
        assert (limits.max_calls_in_request, limits.max_size_request) == (3, 999)

    def test_nonsense_limits_fall_back_to_defaults(self) -> None:
        data = session_json(limits={"maxObjectsInGet": "lots", "maxCallsInRequest": 0})
        limits = parse_session(data, "http://h/").limits
        assert limits.max_objects_in_get == 500
        assert limits.max_calls_in_request == 16

    @pytest.mark.parametrize("missing", ["capabilities", "apiUrl", "accounts"])
    def test_missing_members_are_remote_protocol_errors(self, missing: str) -> None:
        data = session_json()
        del data[missing]
        with pytest.raises(RemoteProtocolError):
            parse_session(data, "http://h/")

    def test_no_accounts_means_not_authenticated(self) -> None:
        data = session_json()
        data["accounts"] = {}
        data["primaryAccounts"] = {}
        with pytest.raises(JMAPAuthError):
            parse_session(data, "http://h/")

    def test_cyrus_capability_is_seen(self) -> None:
        assert parse_session(session_json("cyrus36"), "http://h/").has(CYRUS_CALENDARS)


class TestDiscovery:
    def test_bare_host_goes_to_well_known(self) -> None:
        assert session_url("https://h") == "https://h/.well-known/jmap"
        assert session_url("https://h/") == "https://h/.well-known/jmap"
        assert session_url("https://h/jmap/session") == "https://h/jmap/session"

    @pytest.mark.parametrize("status", [301, 302, 307, 308])
    def test_follows_relative_redirects(self, status: int) -> None:
        def respond(req: HttpRequest) -> HttpResponse:
            if req.url.endswith("/.well-known/jmap"):
                return HttpResponse(status, req.url, {"location": "/jmap/session"})
            return answer(session_json(), url=req.url)

        state = ClientState("http://h:1/")
        session, sent = run(discover(state), respond)
        assert [r.url for r in sent] == ["http://h:1/.well-known/jmap", "http://h:1/jmap/session"]
        assert session.api_url == "http://h:1/jmap/"
        assert state.dialect is not None

    def test_credentials_are_not_sent_to_another_origin(self) -> None:
        def respond(req: HttpRequest) -> HttpResponse:
            if req.url.startswith("http://h/"):
                return HttpResponse(301, req.url, {"location": "http://evil.example/jmap"})
            return answer(session_json(), url=req.url)

        _, sent = run(discover(ClientState("http://h/")), respond)
        assert [r.authenticated for r in sent] == [True, False]

    def test_redirect_loop_is_an_error(self) -> None:
        def respond(req: HttpRequest) -> HttpResponse:
            return HttpResponse(307, req.url, {"location": "/.well-known/jmap"})

        with pytest.raises(RemoteProtocolError, match="redirects"):
            run(discover(ClientState("http://h/")), respond)

    @pytest.mark.parametrize("status", [401, 403])
    def test_auth_failure_is_final(self, status: int) -> None:
        sent: list[HttpRequest] = []

        def respond(req: HttpRequest) -> HttpResponse:
            sent.append(req)
            return HttpResponse(status, req.url, {"www-authenticate": "Basic"}, b"<html/>")

        with pytest.raises(JMAPAuthError) as info:
            run(discover(ClientState("http://h/")), respond)
        assert info.value.status == status
        assert len(sent) == 1

    def test_server_error_carries_retry_after(self) -> None:
        def respond(req: HttpRequest) -> HttpResponse:
            return HttpResponse(503, req.url, {"retry-after": "7"}, b"busy")

        with pytest.raises(JMAPTransportError) as info:
            run(discover(ClientState("http://h/")), respond)
        assert info.value.retry_after == 7.0
        assert info.value.status == 503

    @pytest.mark.parametrize("body", [b"not json", b"[1, 2]", b'{"capabilities": 3}'])
    def test_garbage_session_is_remote_protocol_error(self, body: bytes) -> None:
        def respond(req: HttpRequest) -> HttpResponse:
            return HttpResponse(200, req.url, {}, body)

        with pytest.raises(RemoteProtocolError):
            run(discover(ClientState("http://h/")), respond)

    def test_userinfo_never_reaches_the_error(self) -> None:
        def respond(req: HttpRequest) -> HttpResponse:
            return HttpResponse(500, req.url, {}, b"")

        with pytest.raises(JMAPTransportError) as info:
            run(discover(ClientState("http://bob:hunter2@h/")), respond)
        assert "hunter2" not in str(info.value)
        assert "hunter2" not in repr(info.value.url)


class TestSessionState:
    def test_changed_session_state_refetches_the_session_and_keeps_learned_dialect(
        self,
    ) -> None:
        from jmapsyncd.protocol.flows import EVENT, get_state

        session_answers = iter(["s0", "s1"])

        def respond(req: HttpRequest) -> HttpResponse:
            if req.method == "GET":
                data = session_json()
                data["state"] = next(session_answers)
                return answer(data, url=req.url)
            call_id = req.json["methodCalls"][0][2]
            return answer(
                {
                    "methodResponses": [["CalendarEvent/get", {"state": "e", "list": []}, call_id]],
                    "sessionState": "s1",
                },
                url=req.url,
            )

        state = ClientState("http://h/jmap/session")
        run(get_state(state, EVENT), respond)
        assert state.session_stale
        assert state.dialect is not None
        state.dialect = state.dialect.learn(in_calendars_filter=False)
        _, sent = run(get_state(state, EVENT), respond)
        assert [r.method for r in sent] == ["GET", "POST"]
        assert state.session is not None
        assert state.session.state == "s1"
        assert not state.session_stale
        assert not state.dialect.in_calendars_filter
