"""CalendarEvent and Calendar /get, /set, /query per dialect (draft-ietf-jmap-calendars)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.fakeserver.encoding import encode_stalwart_state
from tests.fakeserver_tests.conftest import Raw


def _create(raw: Raw, event: dict[str, Any]) -> dict[str, Any]:
    return raw.call("CalendarEvent/set", {"create": {"k": event}})


def _error_of(result: dict[str, Any]) -> dict[str, Any]:
    not_created: dict[str, Any] = result["notCreated"]["k"]
    return not_created


# ------------------------------------------------------------------------ create and get


def test_create_then_get_round_trips_title(raw: Raw) -> None:
    cal = raw.server.store.default_calendar_id
    result = _create(raw, raw.new_event(cal, title="Dentist", uid="dentist-1"))
    event_id = result["created"]["k"]["id"]
    got = raw.call("CalendarEvent/get", {"ids": [event_id]})
    assert got["list"][0]["title"] == "Dentist"
    assert got["list"][0]["uid"] == "dentist-1"
    assert got["notFound"] == []
    assert raw.server.store.events[event_id]["title"] == "Dentist"


def test_stalwart_created_has_only_id_and_opaque_ids(sraw: Raw) -> None:
    cal = sraw.server.store.default_calendar_id
    result = _create(sraw, sraw.new_event(cal, uid="x@example.com"))
    assert result["created"] == {"k": {"id": "b"}}
    assert "updated" not in result  # empty sections are left out
    second = _create(sraw, sraw.new_event(cal, uid="y"))
    assert second["created"]["k"]["id"] == "c"


def test_stalwart_ids_are_never_reused(sraw: Raw) -> None:
    cal = sraw.server.store.default_calendar_id
    first = _create(sraw, sraw.new_event(cal, uid="a"))["created"]["k"]["id"]
    sraw.call("CalendarEvent/set", {"destroy": [first]})
    again = _create(sraw, sraw.new_event(cal, uid="a"))["created"]["k"]["id"]
    assert again != first


def test_stalwart_get_default_shape(sraw: Raw) -> None:
    cal = sraw.server.store.default_calendar_id
    event_id = _create(sraw, sraw.new_event(cal, uid="u1", version="2.0"))["created"]["k"]["id"]
    got = sraw.call("CalendarEvent/get", {"ids": [event_id]})["list"][0]
    assert got["calendarIds"] == {cal: True}
    assert got["isDraft"] is False
    assert got["isOrigin"] is True
    assert "updated" in got
    assert "version" not in got
    assert "utcStart" not in got
    asked = sraw.call("CalendarEvent/get", {"ids": [event_id], "properties": ["utcStart"]})
    assert asked["list"][0] == {"id": event_id, "utcStart": "2026-03-01T10:00:00Z"}


def test_stalwart_drops_unparsable_ids_silently(sraw: Raw) -> None:
    got = sraw.call("CalendarEvent/get", {"ids": ["NOT-AN-ID", "zz"]})
    assert got["list"] == []
    assert got["notFound"] == ["zz"]


def test_ietf_ids_derive_from_uid(iraw: Raw) -> None:
    cal = iraw.server.store.default_calendar_id
    assert cal == "Default"
    plain = _create(iraw, iraw.new_event(cal, uid="abc"))["created"]["k"]["id"]
    dotted = _create(iraw, iraw.new_event(cal, uid="a@b.c"))["created"]["k"]["id"]
    assert plain == "E-abc"
    assert dotted == "EB-YUBiLmM"


def test_cyrus36_id_is_uid_and_every_property_is_listed(craw: Raw) -> None:
    cal = craw.server.store.default_calendar_id
    event_id = _create(craw, craw.new_event(cal, uid="the-uid"))["created"]["k"]["id"]
    assert event_id == "the-uid"
    got = craw.call("CalendarEvent/get", {"ids": [event_id]})["list"][0]
    assert got["calendarId"] == "Default"
    assert "calendarIds" not in got
    assert got["@type"] == "jsevent"
    assert got["description"] is None
    assert got["x-href"].endswith("/the-uid.ics")
    assert got["blobId"]


def test_get_all_is_capped_and_too_many_ids_is_request_too_large(raw: Raw) -> None:
    cal = raw.server.store.default_calendar_id
    for n in range(5):
        raw.server.store.add_event(cal, {"uid": f"u{n}", "start": "2026-01-01T00:00:00"})
    raw.server.limits["maxObjectsInGet"] = 3
    assert len(raw.call("CalendarEvent/get", {"ids": None})["list"]) == 3
    too_many = raw.call("CalendarEvent/get", {"ids": list(raw.server.store.events)})
    assert too_many["error"]["type"] == "requestTooLarge"


# ------------------------------------------------------------------------ dialect validation


@pytest.mark.parametrize("key", ["recurrenceRules", "excludedRecurrenceRules", "calendarId"])
def test_stalwart_rejects_ietf_and_cyrus_keys_even_when_null(sraw: Raw, key: str) -> None:
    cal = sraw.server.store.default_calendar_id
    error = _error_of(_create(sraw, sraw.new_event(cal, **{key: None})))
    assert error == {
        "type": "invalidProperties",
        "description": "Invalid property.",
        "properties": [key],
    }


def test_stalwart_duplicate_uid(sraw: Raw) -> None:
    cal = sraw.server.store.default_calendar_id
    _create(sraw, sraw.new_event(cal, uid="dup"))
    error = _error_of(_create(sraw, sraw.new_event(cal, uid="dup")))
    assert error["description"] == "An event with UID dup already exists."


def test_stalwart_same_uid_twice_in_one_call_passes(sraw: Raw) -> None:
    cal = sraw.server.store.default_calendar_id
    events = {"a": sraw.new_event(cal, uid="twin"), "b": sraw.new_event(cal, uid="twin")}
    result = sraw.call("CalendarEvent/set", {"create": events})
    assert set(result["created"]) == {"a", "b"}


def test_stalwart_generates_missing_uid(sraw: Raw) -> None:
    cal = sraw.server.store.default_calendar_id
    event_id = _create(sraw, sraw.new_event(cal))["created"]["k"]["id"]
    assert len(sraw.server.store.events[event_id]["uid"]) == 36


def test_stalwart_unknown_calendar(sraw: Raw) -> None:
    error = _error_of(_create(sraw, sraw.new_event("zz")))
    assert error["description"] == "calendarId zz does not exist."
    assert error["properties"] == ["calendarIds"]


@pytest.mark.parametrize(
    ("patch", "description"),
    [
        ({"uid": "other"}, "You cannot change the UID of a calendar event."),
        ({"isOrigin": False}, "This property is immutable."),
        ({"method": "request"}, "This property is immutable."),
        ({"id": "zz"}, "This property is immutable."),
        ({"recurrenceRules": None}, "Invalid property."),
        ({"locations/nope/name": "x"}, "Patch operation failed."),
    ],
)
def test_stalwart_update_rejections(sraw: Raw, patch: dict[str, Any], description: str) -> None:
    cal = sraw.server.store.default_calendar_id
    event_id = _create(sraw, sraw.new_event(cal, uid="u"))["created"]["k"]["id"]
    result = sraw.call("CalendarEvent/set", {"update": {event_id: patch}})
    error = result["notUpdated"][event_id]
    assert error["type"] == "invalidProperties"
    assert error["description"] == description


def test_stalwart_update_with_pointer_patch(sraw: Raw) -> None:
    cal = sraw.server.store.default_calendar_id
    event = sraw.new_event(cal, uid="u", locations={"l1": {"name": "Room 1"}})
    event_id = _create(sraw, event)["created"]["k"]["id"]
    result = sraw.call(
        "CalendarEvent/set", {"update": {event_id: {"locations/l1/name": "Room 2", "title": None}}}
    )
    assert result["updated"] == {event_id: None}
    stored = sraw.server.store.events[event_id]
    assert stored["locations"]["l1"]["name"] == "Room 2"
    assert "title" not in stored


def test_stalwart_update_and_destroy_same_id_is_will_destroy(sraw: Raw) -> None:
    cal = sraw.server.store.default_calendar_id
    event_id = _create(sraw, sraw.new_event(cal))["created"]["k"]["id"]
    result = sraw.call(
        "CalendarEvent/set", {"update": {event_id: {"title": "x"}}, "destroy": [event_id]}
    )
    assert result["notUpdated"][event_id]["type"] == "willDestroy"
    assert result["destroyed"] == [event_id]


def test_unknown_ids_are_not_found_on_update_and_destroy(raw: Raw) -> None:
    result = raw.call(
        "CalendarEvent/set", {"update": {"nope": {"title": "x"}}, "destroy": ["nope"]}
    )
    assert result["notUpdated"]["nope"]["type"] == "notFound"
    assert result["notDestroyed"]["nope"]["type"] == "notFound"


@pytest.mark.parametrize(
    ("extra", "bad"),
    [
        ({"version": "2.0"}, "version"),
        ({"calendarId": "Default"}, "calendarId"),
        ({"recurrenceRule": {"frequency": "daily"}}, "recurrenceRule"),
        ({"@type": "jsevent"}, "@type"),
    ],
)
def test_ietf_rejections(iraw: Raw, extra: dict[str, Any], bad: str) -> None:
    error = _error_of(_create(iraw, iraw.new_event("Default", **extra)))
    assert error["type"] == "invalidProperties"
    assert bad in error["properties"]


def test_ietf_needs_exactly_one_calendar(iraw: Raw) -> None:
    other = iraw.server.store.add_calendar("Other")
    event = iraw.new_event("Default")
    event["calendarIds"] = {"Default": True, other: True}
    assert _error_of(_create(iraw, event))["properties"] == ["calendarIds"]
    missing = {"title": "x", "start": "2026-01-01T00:00:00"}
    assert _error_of(_create(iraw, missing))["properties"] == ["calendarIds"]


@pytest.mark.parametrize(
    ("extra", "bad"),
    [
        ({"calendarIds": {"Default": True}}, "calendarIds"),
        ({"recurrenceRules": [{"frequency": "daily"}]}, "recurrenceRules"),
        ({"@type": "Event"}, "@type"),
    ],
)
def test_cyrus36_rejections(craw: Raw, extra: dict[str, Any], bad: str) -> None:
    error = _error_of(_create(craw, craw.new_event("Default", **extra)))
    assert bad in error["properties"]


def test_cyrus36_set_sections_are_null_when_empty(craw: Raw) -> None:
    result = _create(craw, craw.new_event("Default"))
    assert result["updated"] is None
    assert result["notCreated"] is None
    assert set(result["created"]["k"]) >= {"id", "uid", "x-href", "blobId"}


def test_ifinstate_mismatch(raw: Raw) -> None:
    stale = encode_stalwart_state(12345) if raw.server.dialect == "stalwart" else "12345"
    result = raw.call("CalendarEvent/set", {"ifInState": stale, "create": {}})
    assert result["error"]["type"] == "stateMismatch"


def test_too_many_objects_in_set(raw: Raw) -> None:
    raw.server.limits["maxObjectsInSet"] = 1
    result = raw.call("CalendarEvent/set", {"destroy": ["a", "b"]})
    assert result["error"]["type"] == "requestTooLarge"


def test_send_scheduling_messages_is_accepted(raw: Raw) -> None:
    cal = raw.server.store.default_calendar_id
    result = raw.call(
        "CalendarEvent/set",
        {"create": {"k": raw.new_event(cal)}, "sendSchedulingMessages": False},
    )
    assert "k" in result["created"]


# ------------------------------------------------------------------------ /query


def _seed_three(raw: Raw) -> dict[str, str]:
    store = raw.server.store
    cal = store.default_calendar_id
    return {
        "jan": store.add_event(
            cal, {"uid": "jan", "title": "January talk", "start": "2026-01-10T10:00:00",
                  "duration": "PT1H", "timeZone": "Etc/UTC"}
        ),
        "feb": store.add_event(
            cal, {"uid": "feb", "title": "February party", "start": "2026-02-10T10:00:00",
                  "duration": "PT1H", "description": "cake and talk"}
        ),
        "weekly": store.add_event(
            cal, {"uid": "weekly", "title": "Standup", "start": "2025-12-01T09:00:00",
                  "duration": "PT15M", "recurrenceRules": [{"frequency": "weekly"}]}
        ),
    }  # fmt: skip


def _bound(raw: Raw, value: str) -> str:
    return value + "Z" if raw.server.dialect == "cyrus36" else value


def test_query_time_window_uses_spans(raw: Raw) -> None:
    ids = _seed_three(raw)
    window = {
        "after": _bound(raw, "2026-02-01T00:00:00"),
        "before": _bound(raw, "2026-03-01T00:00:00"),
    }
    result = raw.call("CalendarEvent/query", {"filter": window})
    assert set(result["ids"]) == {ids["feb"], ids["weekly"]}


def test_query_uid_and_text(raw: Raw) -> None:
    ids = _seed_three(raw)
    by_uid = raw.call("CalendarEvent/query", {"filter": {"uid": "jan"}})
    assert by_uid["ids"] == [ids["jan"]]
    by_text = raw.call("CalendarEvent/query", {"filter": {"text": "talk"}})
    assert set(by_text["ids"]) == {ids["jan"], ids["feb"]}


def test_query_operators(raw: Raw) -> None:
    ids = _seed_three(raw)
    not_jan = {"operator": "NOT", "conditions": [{"uid": "jan"}]}
    either = {"operator": "OR", "conditions": [{"uid": "jan"}, {"uid": "feb"}]}
    assert set(raw.call("CalendarEvent/query", {"filter": not_jan})["ids"]) == {
        ids["feb"],
        ids["weekly"],
    }
    assert set(raw.call("CalendarEvent/query", {"filter": either})["ids"]) == {
        ids["jan"],
        ids["feb"],
    }


def test_query_sort_paging_and_total(raw: Raw) -> None:
    ids = _seed_three(raw)
    args = {"sort": [{"property": "start"}], "limit": 2, "calculateTotal": True}
    first = raw.call("CalendarEvent/query", args)
    assert first["ids"] == [ids["weekly"], ids["jan"]]
    assert first["total"] == 3
    second = raw.call("CalendarEvent/query", {**args, "position": 2})
    if raw.server.dialect == "cyrus36":
        assert second["position"] == 0  # Cyrus 3.6 ignores position
        assert second["ids"] == first["ids"]
    else:
        assert second["ids"] == [ids["feb"]]
        assert second["position"] == 2


def test_query_unsupported_sort(raw: Raw) -> None:
    result = raw.call("CalendarEvent/query", {"sort": [{"property": "updated"}]})
    assert result["error"]["type"] == "unsupportedSort"


def test_stalwart_in_calendars_is_unsupported(sraw: Raw) -> None:
    result = sraw.call("CalendarEvent/query", {"filter": {"inCalendars": ["b"]}})
    assert result["error"] == {"type": "unsupportedFilter", "description": "inCalendars"}
    ok = sraw.call("CalendarEvent/query", {"filter": {"inCalendar": "b"}})
    assert ok["canCalculateChanges"] is True


def test_stalwart_dates_are_lenient(sraw: Raw) -> None:
    ids = _seed_three(sraw)
    result = sraw.call(
        "CalendarEvent/query", {"filter": {"after": "2026-01-10T10:30Z", "uid": "jan"}}
    )
    assert result["ids"] == [ids["jan"]]
    bad = sraw.call("CalendarEvent/query", {"filter": {"after": "2026-01-10"}})
    assert bad["error"]["type"] == "invalidArguments"


def test_ietf_rejects_z_and_cyrus36_requires_it(iraw: Raw, craw: Raw) -> None:
    zulu = {"filter": {"after": "2026-01-01T00:00:00Z"}}
    local = {"filter": {"after": "2026-01-01T00:00:00"}}
    assert iraw.call("CalendarEvent/query", zulu)["error"]["type"] == "invalidArguments"
    assert "ids" in iraw.call("CalendarEvent/query", local)
    assert craw.call("CalendarEvent/query", local)["error"]["type"] == "invalidArguments"
    assert "ids" in craw.call("CalendarEvent/query", zulu)


def test_ietf_in_calendars(iraw: Raw) -> None:
    other = iraw.server.store.add_calendar("Other")
    event_id = iraw.server.store.add_event(other, {"start": "2026-01-01T00:00:00"})
    iraw.server.store.add_event("Default", {"start": "2026-01-01T00:00:00"})
    result = iraw.call("CalendarEvent/query", {"filter": {"inCalendars": [other]}})
    assert result["ids"] == [event_id]
    assert result["canCalculateChanges"] is False


# ------------------------------------------------------------------------ Calendar


def test_calendar_create_needs_a_name(raw: Raw) -> None:
    result = raw.call("Calendar/set", {"create": {"k": {"color": "red"}}})
    assert result["notCreated"]["k"]["properties"] == ["name"]


def test_calendar_with_events_needs_on_destroy_remove_events(sraw: Raw, iraw: Raw) -> None:
    # Cyrus 3.6 has no such argument: see the cyrus36 test below.
    for raw in (sraw, iraw):
        store = raw.server.store
        cal = store.add_calendar("Full")
        event_id = store.add_event(cal, {"start": "2026-01-01T00:00:00"})
        refused = raw.call("Calendar/set", {"destroy": [cal]})
        assert refused["notDestroyed"][cal]["type"] == "calendarHasEvent"
        done = raw.call("Calendar/set", {"destroy": [cal], "onDestroyRemoveEvents": True})
        assert done["destroyed"] == [cal]
        assert event_id not in store.events


def test_calendar_get_rights_per_dialect(raw: Raw) -> None:
    got = raw.call("Calendar/get")["list"][0]
    if raw.server.dialect == "cyrus36":
        assert got["mayReadItems"] is True
        assert "myRights" not in got
    else:
        assert got["myRights"]["mayReadItems"] is True
        assert got["isDefault"] is True


def test_stalwart_default_calendar_name(sraw: Raw) -> None:
    got = sraw.call("Calendar/get")["list"]
    assert [(c["id"], c["name"]) for c in got] == [("b", "Stalwart Calendar (alice)")]


# ------------------------------------------------------------------------ hostile seeding


def test_seeding_accepts_hostile_strings(raw: Raw) -> None:
    store = raw.server.store
    name = "a/b\x00c" + "x" * 10_000
    cal = store.add_calendar(name)
    event_id = store.add_event(cal, {"uid": "../../etc/passwd", "title": "\x00"})
    forced = store.add_event(cal, {"id": "../evil", "uid": "evil"})
    calendars = {c["id"]: c for c in raw.call("Calendar/get")["list"]}
    assert calendars[cal]["name"] == name
    got = raw.call("CalendarEvent/get", {"ids": [event_id, forced]})["list"]
    assert [e["uid"] for e in got] == ["../../etc/passwd", "evil"]
    assert forced == "../evil"


def test_cyrus36_destroys_events_with_the_calendar_and_refuses_the_argument(craw: Raw) -> None:
    store = craw.server.store
    cal = store.add_calendar("Full")
    event_id = store.add_event(cal, {"start": "2026-01-01T00:00:00"})
    refused = craw.call("Calendar/set", {"destroy": [cal], "onDestroyRemoveEvents": True})
    assert refused["error"] == {"type": "invalidArguments", "arguments": ["onDestroyRemoveEvents"]}
    done = craw.call("Calendar/set", {"destroy": [cal]})
    assert done["destroyed"] == [cal]
    assert event_id not in store.events


def test_stalwart_on_success_set_is_default(sraw: Raw) -> None:
    result = sraw.call(
        "Calendar/set", {"create": {"k": {"name": "Work"}}, "onSuccessSetIsDefault": "#k"}
    )
    new_id = result["created"]["k"]["id"]
    flags = {c["id"]: c["isDefault"] for c in sraw.call("Calendar/get")["list"]}
    assert flags == {"b": False, new_id: True}


def test_stalwart_adds_the_account_as_organizer(sraw: Raw) -> None:
    people = {
        "p1": {"@type": "Participant", "email": "bob@example.org", "roles": {"attendee": True}}
    }
    event_id = _create(sraw, sraw.new_event("b", participants=people))["created"]["k"]["id"]
    stored = sraw.server.store.events[event_id]
    assert "roles" not in stored["participants"]["p1"]
    assert stored["replyTo"] == {"imip": "mailto:alice@example.com"}
    owners = [p for p in stored["participants"].values() if p.get("roles") == {"owner": True}]
    assert len(owners) == 1
    got = sraw.call("CalendarEvent/get", {"ids": [event_id]})["list"][0]
    assert got["isOrigin"] is True


def test_expand_recurrences_needs_both_bounds(raw: Raw) -> None:
    result = raw.call("CalendarEvent/query", {"expandRecurrences": True, "filter": {"uid": "x"}})
    assert result["error"]["type"] == "invalidArguments"


def test_lazy_text_index_hides_writes_until_the_next_request(sraw: Raw) -> None:
    sraw.server.lazy_text_index = True
    cal = sraw.server.store.default_calendar_id
    answer = sraw.request(
        [
            [
                "CalendarEvent/set",
                {"accountId": "b", "create": {"k": sraw.new_event(cal, title="Zebra")}},
                "0",
            ],
            ["CalendarEvent/query", {"accountId": "b", "filter": {"text": "zebra"}}, "1"],
        ]
    )
    assert answer["methodResponses"][1][1]["ids"] == []
    later = sraw.call("CalendarEvent/query", {"filter": {"text": "zebra"}})
    assert later["ids"] == [answer["methodResponses"][0][1]["created"]["k"]["id"]]


def test_chunked_request_body_is_read(raw: Raw) -> None:
    body = (
        b'{"using": ["urn:ietf:params:jmap:core"], "methodCalls": [["Core/echo", {"c": 1}, "0"]]}'
    )

    def chunks() -> Iterator[bytes]:
        yield body[:10]
        yield body[10:]

    response = raw.http.post(
        raw.server.api_url, data=chunks(), headers={"Content-Type": "application/json"}
    )
    assert response.json()["methodResponses"] == [["Core/echo", {"c": 1}, "0"]]


def test_expand_recurrences_returns_instances_that_get_resolves(raw: Raw) -> None:
    store = raw.server.store
    weekly = {
        "uid": "weekly",
        "title": "Standup",
        "start": "2026-01-05T09:00:00",
        "duration": "PT15M",
        "recurrenceRules": [{"frequency": "weekly", "count": 10}],
        "recurrenceOverrides": {
            "2026-01-19T09:00:00": {"excluded": True},
            "2026-01-26T09:00:00": {"title": "Retro"},
        },
    }
    base = store.add_event(store.default_calendar_id, weekly)
    window = {
        "after": _bound(raw, "2026-01-10T00:00:00"),
        "before": _bound(raw, "2026-02-01T00:00:00"),
    }
    result = raw.call(
        "CalendarEvent/query",
        {"filter": window, "expandRecurrences": True, "sort": [{"property": "start"}]},
    )
    assert len(result["ids"]) == 2  # the 12th and the 26th; the 19th is excluded
    assert base not in result["ids"]
    got = raw.call("CalendarEvent/get", {"ids": result["ids"]})["list"]
    assert [e["start"] for e in got] == ["2026-01-12T09:00:00", "2026-01-26T09:00:00"]
    assert [e["title"] for e in got] == ["Standup", "Retro"]
    if raw.server.dialect != "cyrus36":
        assert {e["baseEventId"] for e in got} == {base}
    assert all("recurrenceRules" not in e for e in got)


def test_stalwart_sending_back_a_fetched_event_fails_on_is_origin(sraw: Raw) -> None:
    cal = sraw.server.store.default_calendar_id
    event_id = _create(sraw, sraw.new_event(cal, uid="whole"))["created"]["k"]["id"]
    fetched = sraw.call("CalendarEvent/get", {"ids": [event_id]})["list"][0]
    result = sraw.call("CalendarEvent/set", {"update": {event_id: fetched}})
    assert result["notUpdated"][event_id]["properties"] == ["isOrigin"]
    del fetched["isOrigin"]
    fetched["title"] = "Changed"
    again = sraw.call("CalendarEvent/set", {"update": {event_id: fetched}})
    assert again["updated"] == {event_id: None}
    assert sraw.server.store.events[event_id]["title"] == "Changed"


@pytest.mark.parametrize(
    ("props", "bad"),
    [({"isSubscribed": "yes"}, "isSubscribed"), ({"sortOrder": -1}, "sortOrder"),
     ({"color": "a-very-long-colour-name"}, "color"), ({"myRights": {}}, "myRights"),
     ({"bogus": 1}, "bogus")],
)  # fmt: skip
def test_calendar_set_field_checks(raw: Raw, props: dict[str, Any], bad: str) -> None:
    result = raw.call("Calendar/set", {"create": {"k": {"name": "Cal", **props}}})
    error = result["notCreated"]["k"]
    assert error["properties"] == [bad]
    if raw.server.dialect == "stalwart":
        expected = "Invalid property." if bad == "bogus" else "Field could not be set."
        assert error["description"] == expected


def test_ifinstate_match_applies_the_set(raw: Raw) -> None:
    cal = raw.server.store.default_calendar_id
    state = raw.call("CalendarEvent/get", {"ids": []})["state"]
    if raw.server.dialect == "stalwart":
        state += "junk"  # Stalwart parses states leniently and ignores trailing junk
    result = raw.call(
        "CalendarEvent/set", {"ifInState": state, "create": {"k": raw.new_event(cal)}}
    )
    assert "k" in result["created"]
