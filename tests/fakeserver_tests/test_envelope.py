"""RFC 8620 §3.3-§3.7: request checks, method errors, result references, creation ids."""

from __future__ import annotations

import pytest

from tests.fakeserver import FakeJMAPServer
from tests.fakeserver_tests.conftest import CAL_CAPS, CORE, TASKS, Raw, raw_caller


def test_wrong_content_type_is_not_json(sraw: Raw) -> None:
    response = sraw.http.post(
        sraw.server.api_url, data=b"{}", headers={"Content-Type": "text/plain"}
    )
    assert response.status_code == 400
    assert response.json()["type"] == "urn:ietf:params:jmap:error:notJSON"
    assert "Content-Type" in response.json()["detail"]


def test_cyrus36_wrong_content_type_is_415(craw: Raw) -> None:
    response = craw.http.post(
        craw.server.api_url, data=b"{}", headers={"Content-Type": "text/plain"}
    )
    assert response.status_code == 415


def test_bad_json_is_not_json(raw: Raw) -> None:
    response = raw.http.post(
        raw.server.api_url, data=b"{nope", headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json()["type"] == "urn:ietf:params:jmap:error:notJSON"


def test_too_many_calls_is_limit(raw: Raw) -> None:
    raw.server.limits["maxCallsInRequest"] = 2
    calls = [["Core/echo", {}, str(i)] for i in range(3)]
    response = raw.post({"using": raw.using, "methodCalls": calls})
    assert response.status_code == 400
    problem = response.json()
    assert problem["type"] == "urn:ietf:params:jmap:error:limit"
    assert problem["limit"] == "maxCallsInRequest"


def test_stalwart_allows_sixteen_calls(sraw: Raw) -> None:
    calls = [["Core/echo", {"n": i}, str(i)] for i in range(17)]
    assert sraw.post({"using": sraw.using, "methodCalls": calls[:16]}).status_code == 200
    assert sraw.post({"using": sraw.using, "methodCalls": calls}).status_code == 400


def test_request_over_max_size_is_limit(raw: Raw) -> None:
    raw.server.limits["maxSizeRequest"] = 100
    response = raw.post({"using": raw.using, "methodCalls": [["Core/echo", {"x": "y" * 200}, "0"]]})
    assert response.status_code == 400
    assert response.json()["limit"] == "maxSizeRequest"


@pytest.mark.parametrize("dialect", ["ietf", "cyrus36"])
def test_unknown_capability_is_rejected(dialect: str) -> None:
    with FakeJMAPServer(dialect=dialect) as srv:
        for raw in raw_caller(srv):
            response = raw.post({"using": [CORE, "urn:example:nope"], "methodCalls": []})
            assert response.status_code == 400
            assert response.json()["type"] == "urn:ietf:params:jmap:error:unknownCapability"


def test_cyrus36_rejects_the_ietf_calendars_capability(craw: Raw) -> None:
    response = craw.post({"using": [CORE, CAL_CAPS["ietf"]], "methodCalls": []})
    assert response.status_code == 400
    assert response.json()["type"].endswith("unknownCapability")


def test_stalwart_without_tasks_refuses_tasks_capability_as_not_request(sraw: Raw) -> None:
    body = {"using": [CORE, TASKS], "methodCalls": [["Task/get", {"accountId": "b"}, "0"]]}
    response = sraw.post(body)
    assert response.status_code == 400
    assert response.json()["type"] == "urn:ietf:params:jmap:error:notRequest"


def test_stalwart_task_method_is_unknown_without_tasks(sraw: Raw) -> None:
    assert sraw.call("Task/get")["error"] == {"type": "unknownMethod", "description": "Task/get"}


def test_method_without_its_capability_in_using_is_unknown_method(raw: Raw) -> None:
    answer = raw.request([["CalendarEvent/get", {"accountId": raw.account}, "0"]], using=[CORE])
    name, args, tag = answer["methodResponses"][0]
    assert (name, tag) == ("error", "0")
    assert args["type"] == "unknownMethod"
    assert "requires capability" in args["description"]


def test_unknown_method_name(raw: Raw) -> None:
    assert raw.call("Frobnicate/get")["error"]["type"] == "unknownMethod"


def test_missing_account_id_is_invalid_arguments(raw: Raw) -> None:
    answer = raw.request([["Calendar/get", {}, "0"]])
    assert answer["methodResponses"][0][1]["type"] == "invalidArguments"


def test_unknown_account_is_account_not_found(raw: Raw) -> None:
    answer = raw.request([["Calendar/get", {"accountId": "no such!"}, "0"]])
    assert answer["methodResponses"][0][1]["type"] == "accountNotFound"


def test_core_echo_and_session_state(raw: Raw) -> None:
    answer = raw.request([["Core/echo", {"hello": [1, 2]}, "t"]])
    assert answer["methodResponses"] == [["Core/echo", {"hello": [1, 2]}, "t"]]
    assert isinstance(answer["sessionState"], str)
    assert "createdIds" not in answer


def test_result_reference_from_query_into_get(raw: Raw) -> None:
    cal = raw.server.store.default_calendar_id
    event_id = raw.server.store.add_event(cal, {"title": "Ref", "start": "2026-01-01T09:00:00"})
    answer = raw.request(
        [
            ["CalendarEvent/query", {"accountId": raw.account}, "q"],
            [
                "CalendarEvent/get",
                {
                    "accountId": raw.account,
                    "#ids": {"resultOf": "q", "name": "CalendarEvent/query", "path": "/ids"},
                    "properties": ["title"],
                },
                "g",
            ],
        ]
    )
    got = answer["methodResponses"][1][1]["list"]
    assert [e["id"] for e in got] == [event_id]
    assert got[0]["title"] == "Ref"


def test_result_reference_with_wildcard_path(raw: Raw) -> None:
    cal = raw.server.store.default_calendar_id
    raw.server.store.add_event(cal, {"title": "A", "start": "2026-01-01T09:00:00"})
    answer = raw.request(
        [
            ["CalendarEvent/get", {"accountId": raw.account}, "g"],
            [
                "Core/echo",
                {"#uids": {"resultOf": "g", "name": "CalendarEvent/get", "path": "/list/*/uid"}},
                "e",
            ],
        ]
    )
    uids = answer["methodResponses"][1][1]["uids"]
    assert uids == [e["uid"] for e in raw.server.store.events.values()]


def test_bad_result_reference_is_invalid_result_reference(raw: Raw) -> None:
    ref = {"resultOf": "missing", "name": "CalendarEvent/query", "path": "/ids"}
    answer = raw.request([["CalendarEvent/get", {"accountId": raw.account, "#ids": ref}, "g"]])
    error = answer["methodResponses"][0][1]
    assert error["type"] == "invalidResultReference"


def test_creation_id_reference_and_created_ids(raw: Raw) -> None:
    body = {
        "using": raw.using,
        "methodCalls": [
            ["Calendar/set", {"accountId": raw.account, "create": {"c1": {"name": "New"}}}, "0"],
            [
                "CalendarEvent/set",
                {"accountId": raw.account, "create": {"e1": raw.new_event("#c1", title="In new")}},
                "1",
            ],
            ["CalendarEvent/get", {"accountId": raw.account, "ids": ["#e1"]}, "2"],
        ],
        "createdIds": {},
    }
    answer = raw.post(body).json()
    responses = answer["methodResponses"]
    cal_id = responses[0][1]["created"]["c1"]["id"]
    event_id = responses[1][1]["created"]["e1"]["id"]
    assert answer["createdIds"] == {"c1": cal_id, "e1": event_id}
    assert responses[2][1]["list"][0]["id"] == event_id
    assert raw.server.store.events[event_id]["calendarIds"] == {cal_id: True}


def test_result_reference_into_created_map(raw: Raw) -> None:
    cal = raw.server.store.default_calendar_id
    answer = raw.request(
        [
            [
                "CalendarEvent/set",
                {"accountId": raw.account, "create": {"a": raw.new_event(cal, uid="r1")}},
                "s",
            ],
            [
                "CalendarEvent/get",
                {
                    "accountId": raw.account,
                    "#ids": {"resultOf": "s", "name": "CalendarEvent/set", "path": "/created/*/id"},
                    "properties": ["uid"],
                },
                "g",
            ],
        ]
    )
    assert [e["uid"] for e in answer["methodResponses"][1][1]["list"]] == ["r1"]
