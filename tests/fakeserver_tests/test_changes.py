"""RFC 8620 §5.2 /changes: states per dialect, collapsing, paging, cannotCalculateChanges."""

from __future__ import annotations

from typing import Any

from tests.fakeserver_tests.conftest import Raw


def _state(raw: Raw, type_name: str = "CalendarEvent") -> str:
    state: str = raw.call(f"{type_name}/get", {"ids": []})["state"]
    return state


def _changes(raw: Raw, since: str, **args: Any) -> dict[str, Any]:
    return raw.call("CalendarEvent/changes", {"sinceState": since, **args})


def test_stalwart_states_look_like_stalwarts(sraw: Raw) -> None:
    assert _state(sraw) == "n"
    sraw.server.store.add_event("b", {"uid": "a"})
    state = _state(sraw)
    assert state.startswith("s")
    assert state != "n"


def test_stalwart_one_change_per_set_call(sraw: Raw) -> None:
    before = _state(sraw)
    cal = sraw.server.store.default_calendar_id
    events = {str(n): sraw.new_event(cal, uid=f"u{n}") for n in range(3)}
    result = sraw.call("CalendarEvent/set", {"create": events})
    assert result["oldState"] == before
    after = _changes(sraw, before)
    assert after["newState"] == result["newState"]
    assert len(after["created"]) == 3


def test_ietf_states_are_counters(iraw: Raw) -> None:
    before = int(_state(iraw))
    iraw.server.store.add_event("Default", {"uid": "a"})
    assert int(_state(iraw)) == before + 1


def test_cyrus36_shares_one_counter_so_calendar_changes_can_be_empty(craw: Raw) -> None:
    cal_state = _state(craw, "Calendar")
    craw.server.store.add_event("Default", {"uid": "a"})
    assert _state(craw, "Calendar") != cal_state
    changes = craw.call("Calendar/changes", {"sinceState": cal_state})
    assert changes["created"] == changes["updated"] == changes["destroyed"] == []
    assert changes["newState"] == _state(craw, "Calendar")


def test_changes_collapse_per_id(raw: Raw) -> None:
    store = raw.server.store
    cal = store.default_calendar_id
    kept = store.add_event(cal, {"uid": "kept"})
    gone = store.add_event(cal, {"uid": "gone"})
    since = _state(raw)
    fresh = store.add_event(cal, {"uid": "fresh"})
    store.update_event(fresh, {"title": "edited"})
    brief = store.add_event(cal, {"uid": "brief"})
    store.destroy_event(brief)
    store.update_event(gone, {"title": "edited"})
    store.destroy_event(gone)
    store.update_event(kept, {"title": "edited"})
    changes = _changes(raw, since)
    assert changes["created"] == [fresh]
    assert changes["updated"] == [kept]
    assert changes["destroyed"] == [gone]
    assert changes["hasMoreChanges"] is False
    assert changes["oldState"] == since
    assert changes["newState"] == _state(raw)


def test_changes_from_current_state_are_empty(raw: Raw) -> None:
    raw.server.store.add_event(raw.server.store.default_calendar_id, {"uid": "a"})
    now = _state(raw)
    changes = _changes(raw, now)
    assert changes["newState"] == now
    assert changes["created"] == []


def test_paging_with_max_changes_reaches_the_current_state(raw: Raw) -> None:
    store = raw.server.store
    cal = store.default_calendar_id
    since = _state(raw)
    made = [store.add_event(cal, {"uid": f"u{n}"}) for n in range(5)]
    seen: list[str] = []
    pages = 0
    state = since
    while True:
        page = _changes(raw, state, maxChanges=2)
        created = page["created"]
        assert isinstance(created, list)
        assert len(created) <= 2
        seen += created
        state = str(page["newState"])
        pages += 1
        if not page["hasMoreChanges"]:
            break
        assert pages < 10
    assert seen == made
    assert pages == 3
    assert state == _state(raw)


def test_stalwart_paging_uses_intermediate_r_states(sraw: Raw) -> None:
    store = sraw.server.store
    since = _state(sraw)
    with store.batch():
        for n in range(3):
            store.add_event("b", {"uid": f"u{n}"})
    page = _changes(sraw, since, maxChanges=2)
    assert page["hasMoreChanges"] is True
    assert str(page["newState"]).startswith("r")
    last = _changes(sraw, str(page["newState"]), maxChanges=2)
    assert last["hasMoreChanges"] is False
    assert last["newState"] == _state(sraw)
    assert len(last["created"]) == 1


def test_future_state_cannot_be_calculated(raw: Raw) -> None:
    future = "szzzz" if raw.server.dialect == "stalwart" else "99999"
    result = _changes(raw, future)
    assert result["error"]["type"] == "cannotCalculateChanges"


def test_forgotten_history_cannot_be_calculated(raw: Raw) -> None:
    store = raw.server.store
    old = _state(raw)
    store.add_event(store.default_calendar_id, {"uid": "a"})
    store.forget_history()
    assert _changes(raw, old)["error"]["type"] == "cannotCalculateChanges"
    assert _changes(raw, _state(raw))["created"] == []


def test_force_cannot_calculate_hits_once(raw: Raw) -> None:
    now = _state(raw)
    raw.server.force_cannot_calculate = True
    assert _changes(raw, now)["error"]["type"] == "cannotCalculateChanges"
    assert raw.server.force_cannot_calculate is False
    assert "error" not in _changes(raw, now)


def test_stalwart_unparsable_state_is_invalid_arguments(sraw: Raw) -> None:
    assert _changes(sraw, "xyz")["error"]["type"] == "invalidArguments"


def test_stalwart_state_parser_is_lenient(sraw: Raw) -> None:
    store = sraw.server.store
    store.add_event("b", {"uid": "a"})
    state = _state(sraw)
    result = _changes(sraw, state + "x")
    assert result["oldState"] == state


def test_cyrus36_calendar_destroy_breaks_event_changes(craw: Raw) -> None:
    store = craw.server.store
    cal = store.add_calendar("Doomed")
    store.add_event(cal, {"uid": "a"})
    old = _state(craw)
    craw.call("Calendar/set", {"destroy": [cal]})
    assert _changes(craw, old)["error"]["type"] == "cannotCalculateChanges"


def test_calendar_changes_after_calendar_set(raw: Raw) -> None:
    since = _state(raw, "Calendar")
    created = raw.call("Calendar/set", {"create": {"k": {"name": "Work"}}})["created"]["k"]["id"]
    changes = raw.call("Calendar/changes", {"sinceState": since})
    assert changes["created"] == [created]


def test_stalwart_invalid_state_names_the_column_past_the_arguments(sraw: Raw) -> None:
    body = (
        '{"using": ["urn:ietf:params:jmap:core", "urn:ietf:params:jmap:calendars"], '
        '"methodCalls": [["CalendarEvent/changes", {"accountId": "b", "sinceState": "xyz"}, "0"]]}'
    )
    response = sraw.http.post(
        sraw.server.api_url, data=body, headers={"Content-Type": "application/json"}
    )
    error = response.json()["methodResponses"][0][1]
    column = body.index('"xyz"}') + len('"xyz"}')
    assert error == {
        "type": "invalidArguments",
        "description": f"invalid JMAP State at line 1 column {column}",
    }


def test_stalwart_invalid_state_not_last_fails_the_whole_request(sraw: Raw) -> None:
    body = {
        "using": sraw.using,
        "methodCalls": [["CalendarEvent/changes", {"sinceState": "", "accountId": "b"}, "0"]],
    }
    response = sraw.post(body)
    assert response.status_code == 400
    assert response.json()["type"] == "urn:ietf:params:jmap:error:notRequest"


def test_stalwart_query_changes(sraw: Raw) -> None:
    store = sraw.server.store
    kept = store.add_event("b", {"uid": "kept", "start": "2026-01-01T00:00:00"})
    gone = store.add_event("b", {"uid": "gone", "start": "2026-01-02T00:00:00"})
    args = {"sort": [{"property": "start"}]}
    before = sraw.call("CalendarEvent/query", args)
    fresh = store.add_event("b", {"uid": "fresh", "start": "2025-12-31T00:00:00"})
    store.destroy_event(gone)
    result = sraw.call(
        "CalendarEvent/queryChanges",
        {**args, "sinceQueryState": before["queryState"], "calculateTotal": True},
    )
    assert result["removed"] == [gone]
    assert result["added"] == [{"id": fresh, "index": 0}]
    assert result["total"] == 2
    assert kept in sraw.call("CalendarEvent/query", args)["ids"]


def test_cyrus_has_no_query_changes(iraw: Raw) -> None:
    result = iraw.call("CalendarEvent/queryChanges", {"sinceQueryState": "0"})
    assert result["error"]["type"] == "unknownMethod"
