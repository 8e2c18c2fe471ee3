"""Flows fed by hand: /changes paging (RFC 8620 §5.2), chunked /get and /set (§5.1, §5.3),
query paging (§5.5) and the dialect a server teaches through its errors."""

from __future__ import annotations

from typing import Any

import pytest

from jmapsyncd.errors import (
    CannotCalculateChanges,
    JMAPCapabilityError,
    JMAPSetError,
    LocalProtocolError,
    RemoteProtocolError,
)
from jmapsyncd.protocol import flows
from jmapsyncd.protocol.flows import CALENDAR, EVENT, TASK
from tests.protocol.scripted import calls, jmap, run, state_for

Reply = dict[str, Any] | tuple[str, dict[str, Any]]


class TestChanges:
    def test_pages_through_has_more_changes_and_collapses(self) -> None:
        pages = {
            "s0": {
                "created": ["a", "b"],
                "updated": ["x"],
                "destroyed": [],
                "newState": "r1",
                "hasMoreChanges": True,
            },
            "r1": {
                "created": ["c"],
                "updated": ["a", "y"],
                "destroyed": ["b", "x"],
                "newState": "s2",
                "hasMoreChanges": False,
            },
        }

        def handler(name: str, args: dict[str, Any]) -> Reply:
            assert name == "CalendarEvent/changes"
            assert args["maxChanges"] == 2
            return {"oldState": args["sinceState"], **pages[args["sinceState"]]}

        result, sent = run(flows.changes(state_for(), EVENT, "s0", 2), jmap(handler))
        assert len(sent) == 2
        assert result.created == ("a", "c")
        assert result.updated == ("y",)
        assert result.destroyed == ("x",)
        assert (result.old_state, result.new_state) == ("s0", "s2")

    def test_cannot_calculate_changes_means_full_resync(self) -> None:
        def handler(name: str, args: dict[str, Any]) -> Reply:
            return ("error", {"type": "cannotCalculateChanges"})

        with pytest.raises(CannotCalculateChanges):
            run(flows.changes(state_for(), EVENT, "old"), jmap(handler))

    def test_has_more_changes_without_progress_stops(self) -> None:
        def handler(name: str, args: dict[str, Any]) -> Reply:
            return {
                "created": [],
                "updated": [],
                "destroyed": [],
                "newState": "s0",
                "hasMoreChanges": True,
            }

        with pytest.raises(RemoteProtocolError, match="without progress"):
            run(flows.changes(state_for(), EVENT, "s0"), jmap(handler))


class TestGet:
    def test_ids_are_split_by_max_objects_in_get_and_calls_by_max_calls(self) -> None:
        state = state_for(limits={"maxObjectsInGet": 2, "maxCallsInRequest": 2})

        def handler(name: str, args: dict[str, Any]) -> Reply:
            ids = args["ids"]
            assert len(ids) <= 2
            return {
                "state": "s9",
                "list": [{"id": i} for i in ids if i != "gone"],
                "notFound": [i for i in ids if i == "gone"],
            }

        ids = ["a", "b", "c", "d", "gone"]
        result, sent = run(flows.get_objects(state, EVENT, ids), jmap(handler))
        assert [o["id"] for o in result.objects] == ["a", "b", "c", "d"]
        assert result.not_found == ["gone"]
        assert [len(r.json["methodCalls"]) for r in sent] == [2, 1]

    def test_events_come_back_in_ietf_form(self) -> None:
        state = state_for("cyrus36")

        def handler(name: str, args: dict[str, Any]) -> Reply:
            return {
                "state": "1",
                "list": [
                    {
                        "id": "u",
                        "@type": "jsevent",
                        "calendarId": "D",
                        "recurrenceRule": None,
                        "title": "t",
                    }
                ],
            }

        result, _ = run(flows.get_objects(state, EVENT, ["u"]), jmap(handler))
        assert result.objects == [
            {"id": "u", "@type": "Event", "calendarIds": {"D": True}, "title": "t"}
        ]

    def test_not_found_raises_not_found(self) -> None:
        def handler(name: str, args: dict[str, Any]) -> Reply:
            return {"state": "1", "list": [], "notFound": args["ids"]}

        with pytest.raises(JMAPSetError) as info:
            run(flows.get_one(state_for(), EVENT, "nope"), jmap(handler))
        assert info.value.error_type == "notFound"


class TestSet:
    def test_chunks_by_max_objects_in_set_and_maps_creation_keys_back(self) -> None:
        state = state_for(limits={"maxObjectsInSet": 2})
        counter = iter(range(100))

        def handler(name: str, args: dict[str, Any]) -> Reply:
            total = len(args.get("create", {})) + len(args.get("update", {}))
            total += len(args.get("destroy", []))
            assert total <= 2
            return {
                "oldState": "1",
                "newState": "2",
                "created": {k: {"id": f"id{next(counter)}"} for k in args.get("create", {})},
                "updated": dict.fromkeys(args.get("update", {})),
                "destroyed": args.get("destroy", []),
            }

        create = {"my/key:1": {"title": "a"}, "other key": {"title": "b"}, "k3": {"title": "c"}}
        result, sent = run(
            flows.set_events(state, create=create, update={"u1": {"title": "x"}}, destroy=["d1"]),
            jmap(handler),
        )
        assert len(sent) == 3
        assert set(result.created) == set(create)
        assert all(v["id"].startswith("id") for v in result.created.values())
        assert result.updated == {"u1": None}
        assert result.destroyed == ("d1",)
        assert result.ok

    def test_per_object_errors_are_set_errors_with_ids(self) -> None:
        def handler(name: str, args: dict[str, Any]) -> Reply:
            return {
                "newState": "2",
                "notCreated": {
                    "k0": {
                        "type": "invalidProperties",
                        "properties": ["start"],
                        "description": "bad start",
                    }
                },
                "notDestroyed": {"x": {"type": "notFound"}},
            }

        result, _ = run(
            flows.set_events(state_for(), create={"mine": {"title": "a"}}, destroy=["x"]),
            jmap(handler),
        )
        assert not result.ok
        error = result.not_created["mine"]
        assert error.object_id == "mine"
        assert error.properties == ["start"]
        assert "bad start" in str(error)
        assert result.not_destroyed["x"].error_type == "notFound"

    def test_stalwart_refusing_recurrence_rules_is_learned_and_retried(self) -> None:
        state = state_for("ietf")
        seen: list[dict[str, Any]] = []

        def handler(name: str, args: dict[str, Any]) -> Reply:
            obj = args["create"]["k0"]
            seen.append(obj)
            if "recurrenceRules" in obj:
                return {
                    "notCreated": {
                        "k0": {"type": "invalidProperties", "properties": ["recurrenceRules"]}
                    }
                }
            return {"newState": "2", "created": {"k0": {"id": "b"}}}

        ev = {"title": "r", "recurrenceRules": [{"frequency": "daily"}], "calendarIds": {"c": True}}
        result, _ = run(flows.set_events(state, create={"e": ev}), jmap(handler))
        assert result.created["e"] == {"id": "b"}
        assert seen[1]["recurrenceRule"] == {"frequency": "daily"}
        assert state.dialect is not None
        assert not state.dialect.recurrence_rules_list

    def test_refused_send_scheduling_messages_is_dropped_and_remembered(self) -> None:
        state = state_for("cyrus36")

        def handler(name: str, args: dict[str, Any]) -> Reply:
            if "sendSchedulingMessages" in args:
                return (
                    "error",
                    {"type": "invalidArguments", "arguments": ["sendSchedulingMessages"]},
                )
            return {"newState": "2", "destroyed": args["destroy"]}

        result, sent = run(flows.set_events(state, destroy=["a"]), jmap(handler))
        assert result.destroyed == ("a",)
        assert len(sent) == 2
        _, sent = run(flows.set_events(state, destroy=["b"]), jmap(handler))
        assert len(sent) == 1

    def test_an_oversized_request_is_split(self) -> None:
        state = state_for(limits={"maxSizeRequest": 400})

        def handler(name: str, args: dict[str, Any]) -> Reply:
            return {"created": {k: {"id": k} for k in args["create"]}}

        create = {str(i): {"title": "x" * 100} for i in range(4)}
        result, sent = run(flows.set_objects(state, CALENDAR, create=create), jmap(handler))
        assert len(result.created) == 4
        assert len(sent) > 1

    def test_a_single_object_over_max_size_request_is_refused_locally(self) -> None:
        state = state_for(limits={"maxSizeRequest": 100})
        with pytest.raises(LocalProtocolError, match="maxSizeRequest"):
            run(
                flows.set_objects(state, CALENDAR, create={"a": {"name": "x" * 200}}),
                jmap(lambda n, a: {}),
            )


class TestQuery:
    def test_pages_with_position_when_the_server_supports_it(self) -> None:
        state = state_for("ietf", limits={"maxObjectsInGet": 2})
        all_ids = ["a", "b", "c", "d", "e"]

        def handler(name: str, args: dict[str, Any]) -> Reply:
            if name == "CalendarEvent/query":
                pos = args.get("position", 0)
                return {
                    "ids": all_ids[pos : pos + args["limit"]],
                    "position": pos,
                    "total": len(all_ids),
                    "queryState": "q",
                }
            # the result reference is resolved by "the server" here
            return {"state": "s", "list": []}

        (_, ids, _), sent = run(flows.query_events(state, fetch=False), jmap(handler))
        assert ids == all_ids
        assert len(sent) == 3

    def test_broken_position_falls_back_to_one_big_page(self) -> None:
        state = state_for("ietf", limits={"maxObjectsInGet": 2})
        all_ids = ["a", "b", "c"]

        def handler(name: str, args: dict[str, Any]) -> Reply:
            if name == "CalendarEvent/get":
                ids = args.get("ids") or all_ids[:2]  # "#ids" stands for the first page
                return {"state": "s", "list": [{"id": i} for i in ids]}
            limit = args.get("limit", 2)
            return {"ids": all_ids[:limit], "position": 0, "total": 3, "queryState": "q"}

        (objects, ids, _), _ = run(flows.query_events(state), jmap(handler))
        assert ids == all_ids
        assert [o["id"] for o in objects] == all_ids
        assert state.dialect is not None
        assert not state.dialect.query_position_works

    def test_position_honoured_but_answered_as_zero_keeps_paging(self) -> None:
        # Regression: Cyrus 3.10 pages correctly but always answers "position": 0; taking that
        # for Cyrus 3.6's ignored position fetched the whole listing a second time.
        state = state_for("ietf", limits={"maxObjectsInGet": 2})
        all_ids = ["a", "b", "c", "d", "e"]

        def handler(name: str, args: dict[str, Any]) -> Reply:
            if name == "CalendarEvent/query":
                pos = args.get("position", 0)
                page = all_ids[pos : pos + args["limit"]]
                return {"ids": page, "position": 0, "total": len(all_ids), "queryState": "q"}
            return {"state": "s", "list": []}

        (_, ids, _), sent = run(flows.query_events(state, fetch=False), jmap(handler))
        assert ids == all_ids
        assert len(sent) == 3
        assert state.dialect is not None
        assert state.dialect.query_position_works

    def test_unsupported_in_calendars_filter_switches_to_in_calendar(self) -> None:
        state = state_for("ietf")
        filters: list[dict[str, Any]] = []

        def handler(name: str, args: dict[str, Any]) -> Reply:
            if name == "CalendarEvent/query":
                filters.append(args["filter"])
                if "inCalendars" in args["filter"]:
                    return ("error", {"type": "unsupportedFilter", "description": "inCalendars"})
                return {"ids": ["a"], "position": 0, "total": 1}
            return {"state": "s", "list": [{"id": "a"}]}

        (objects, _, _), _ = run(flows.query_events(state, calendar_id="b"), jmap(handler))
        assert filters == [{"inCalendars": ["b"]}, {"inCalendar": "b"}]
        assert [o["id"] for o in objects] == ["a"]


def test_tasks_without_the_capability_raise_capability_error() -> None:
    with pytest.raises(JMAPCapabilityError) as info:
        run(flows.get_objects(state_for("ietf"), TASK, None), jmap(lambda n, a: {}))
    assert info.value.capability == "urn:ietf:params:jmap:tasks"


def test_tasks_use_only_the_tasks_capability() -> None:
    def handler(name: str, args: dict[str, Any]) -> Reply:
        return {"state": "t", "list": []}

    _, sent = run(flows.get_objects(state_for("ietf", tasks=True), TASK, None), jmap(handler))
    assert sent[0].json["using"] == ["urn:ietf:params:jmap:core", "urn:ietf:params:jmap:tasks"]
    assert calls(sent) == [("Task/get", {"accountId": "acc", "ids": None})]


def test_a_get_over_several_requests_reports_the_oldest_state() -> None:
    state = state_for(limits={"maxObjectsInGet": 1, "maxCallsInRequest": 1})
    states = iter(["s1", "s2"])

    def handler(name: str, args: dict[str, Any]) -> Reply:
        return {"state": next(states), "list": [{"id": i} for i in args["ids"]]}

    result, sent = run(flows.get_objects(state, EVENT, ["a", "b"]), jmap(handler))
    assert len(sent) == 2
    assert result.state == "s1"
