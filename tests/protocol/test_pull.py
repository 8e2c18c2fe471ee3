"""The one-request pull fed by hand: /changes with /get by result reference (RFC 8620 §3.7,
§5.1, §5.2), paging through hasMoreChanges, cannotCalculateChanges, the core limits, and a
session taken from an earlier process (§2) that may have moved."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from jmapsyncd.errors import JMAPMethodError, JMAPRequestError, RemoteProtocolError
from jmapsyncd.protocol import flows
from jmapsyncd.protocol.flows import ClientState
from jmapsyncd.protocol.session import TASKS
from jmapsyncd.protocol.values import Pull
from jmapsyncd.protocol.wire import HttpRequest, HttpResponse
from tests.protocol.scripted import (
    API_URL,
    BASE,
    SESSION_URL,
    answer,
    calls,
    jmap_refs,
    run,
    session_json,
    state_for,
)

Reply = dict[str, Any] | tuple[str, dict[str, Any]]
TYPES = ("Calendar", "CalendarEvent", "TaskList", "Task")
PREFIX = {"Calendar": "K", "CalendarEvent": "E", "TaskList": "L", "Task": "T"}


class Model:
    """A server's objects and per-type change logs; states are log positions."""

    def __init__(self, dialect: str = "ietf") -> None:
        self.dialect = dialect
        self.objects: dict[str, dict[str, dict[str, Any]]] = {t: {} for t in TYPES}
        self.log: dict[str, list[tuple[str, str]]] = {t: [] for t in TYPES}
        self.max_in_get = 10_000
        self.ignore_max_changes = False
        self.errors: dict[str, dict[str, Any]] = {}  # method -> error arguments (every time)
        self.put("Calendar", "cal1", {"name": "Personal"})
        self.put("TaskList", "tl1", {"name": "Todo"})

    def state(self, type_name: str) -> str:
        return f"{PREFIX[type_name]}{len(self.log[type_name])}"

    def put(self, type_name: str, oid: str, data: dict[str, Any]) -> None:
        what = "updated" if oid in self.objects[type_name] else "created"
        self.objects[type_name][oid] = {"id": oid, **data}
        self.log[type_name].append((oid, what))

    def event(self, oid: str, title: str) -> None:
        data: dict[str, Any] = {"title": title, "@type": "Event", "calendarIds": {"cal1": True}}
        if self.dialect == "cyrus36":
            data = {"title": title, "@type": "jsevent", "calendarId": "cal1", "x-href": "/x"}
        self.put("CalendarEvent", oid, data)

    def destroy(self, type_name: str, oid: str) -> None:
        del self.objects[type_name][oid]
        self.log[type_name].append((oid, "destroyed"))

    def handle(self, name: str, args: dict[str, Any]) -> Reply:
        if name in self.errors:
            return ("error", self.errors[name])
        type_name, method = name.split("/")
        if method == "changes":
            since = args["sinceState"]
            prefix = PREFIX[type_name]
            known = since.startswith(prefix) and since[1:].isdigit()
            if not known or int(since[1:]) > len(self.log[type_name]):
                return ("error", {"type": "cannotCalculateChanges"})
            start = int(since[1:])
            size = 10_000 if self.ignore_max_changes else args.get("maxChanges", 10_000)
            page = self.log[type_name][start : start + size]
            status: dict[str, str] = {}
            for oid, what in page:
                before = status.get(oid)
                status[oid] = "created" if before == "created" and what != "destroyed" else what
            return {
                "oldState": since,
                "newState": f"{prefix}{start + len(page)}",
                "hasMoreChanges": start + len(page) < len(self.log[type_name]),
                **{w: [i for i, s in status.items() if s == w] for w in ("created", "updated")},
                "destroyed": [i for i, s in status.items() if s == "destroyed"],
            }
        assert method == "get", name
        store = self.objects[type_name]
        ids = list(store) if args["ids"] is None else args["ids"]
        if len(ids) > self.max_in_get:
            return ("error", {"type": "requestTooLarge"})
        return {
            "state": self.state(type_name),
            "list": [store[i] for i in ids if i in store],
            "notFound": [i for i in ids if i not in store],
        }


def _pull(state: ClientState, model: Model, **kwargs: Any) -> tuple[Pull, list[HttpRequest]]:
    states: dict[str, Any] = {
        "calendar_state": model.state("Calendar"),
        "event_state": model.state("CalendarEvent"),
    }
    states.update(kwargs)
    return run(flows.pull(state, **states), jmap_refs(model.handle))


def _names(requests: list[HttpRequest]) -> list[list[str]]:
    return [[c[0] for c in r.json["methodCalls"]] for r in requests]


class TestOneRequest:
    def test_nothing_changed_is_one_request_of_six_calls(self) -> None:
        model = Model()
        model.event("e1", "One")
        result, sent = _pull(
            state_for(),
            model,
            calendar_state=model.state("Calendar"),
            event_state=model.state("CalendarEvent"),
        )
        assert _names(sent) == [
            [
                *("Calendar/changes", "Calendar/get", "Calendar/get"),
                *("CalendarEvent/changes", "CalendarEvent/get", "CalendarEvent/get"),
            ]
        ]
        assert result.unchanged
        assert result.tasks is None
        assert result.events.collection_state == "K1"
        assert result.events.item_state == "E1"
        assert result.events.item_changes is not None
        assert result.events.item_changes.old_state == "E1"

    def test_changed_objects_come_with_the_changes_in_ietf_form(self) -> None:
        model = Model("cyrus36")
        model.event("e1", "One")
        model.event("e2", "Two")
        cal_state, ev_state = model.state("Calendar"), model.state("CalendarEvent")
        model.event("e1", "One again")
        model.event("e3", "Three")
        model.destroy("CalendarEvent", "e2")
        model.put("Calendar", "cal1", {"name": "Renamed"})
        result, sent = _pull(
            state_for("cyrus36"), model, calendar_state=cal_state, event_state=ev_state
        )
        assert len(sent) == 1
        events = result.events
        assert events.collections is None
        assert events.collection_changes is not None
        assert events.collection_changes.updated == ("cal1",)
        assert [c["name"] for c in events.collection_objects] == ["Renamed"]
        assert "myRights" in events.collection_objects[0]
        changes = events.item_changes
        assert changes is not None
        assert (changes.created, changes.updated, changes.destroyed) == (("e3",), ("e1",), ("e2",))
        assert events.item_objects == [
            {"id": "e3", "title": "Three", "@type": "Event", "calendarIds": {"cal1": True}},
            {"id": "e1", "title": "One again", "@type": "Event", "calendarIds": {"cal1": True}},
        ]
        assert (events.item_state, changes.new_state) == ("E5", "E5")
        assert not result.unchanged

    def test_no_stored_states_lists_collections_and_asks_for_a_full_listing(self) -> None:
        model = Model()
        model.event("e1", "One")
        result, sent = _pull(state_for(), model, calendar_state=None, event_state=None)
        assert calls(sent) == [("Calendar/get", {"accountId": "acc", "ids": None})]
        events = result.events
        assert events.collections is not None
        assert [c["id"] for c in events.collections] == ["cal1"]
        assert events.collection_changes is None
        assert events.collection_state == "K1"
        assert events.full_items_needed
        assert (events.item_changes, events.item_state, events.item_objects) == (None, None, [])

    def test_tasks_share_the_request_when_the_server_offers_them(self) -> None:
        model = Model()
        model.put("Task", "t1", {"title": "Do it", "taskListId": "tl1"})
        state = state_for(tasks=True)
        result, sent = _pull(
            state,
            model,
            calendar_state=model.state("Calendar"),
            event_state=model.state("CalendarEvent"),
            task_list_state=model.state("TaskList"),
            task_state="T0",
        )
        assert len(sent) == 1
        assert TASKS in sent[0].json["using"]
        assert len(sent[0].json["methodCalls"]) == 12
        assert result.tasks is not None
        assert result.tasks.item_changes is not None
        assert result.tasks.item_changes.created == ("t1",)
        assert result.tasks.item_objects[0]["@type"] == "Task"
        _, sent = _pull(state, model, tasks=False)
        assert TASKS not in sent[0].json["using"]
        assert len(sent[0].json["methodCalls"]) == 6


class TestPaging:
    def test_has_more_changes_pages_follow_with_their_objects(self) -> None:
        model = Model()
        since = model.state("CalendarEvent")
        for n in range(5):
            model.event(f"e{n}", f"E{n}")
        model.event("e0", "E0 edited")
        model.destroy("CalendarEvent", "e1")
        state = state_for(limits={"maxObjectsInGet": 3})
        result, sent = _pull(state, model, event_state=since)
        # pages of 3 ids: C0→C3, C3→C6, C6→C7; Calendar is done after the first request
        page = ["CalendarEvent/changes", "CalendarEvent/get", "CalendarEvent/get"]
        assert _names(sent)[1:] == [page, page]
        for r in sent:
            for name, args, _ in r.json["methodCalls"]:
                if name.endswith("/changes"):
                    assert args["maxChanges"] == 3
        changes = result.events.item_changes
        assert changes is not None
        assert changes.created == ("e0", "e2", "e3", "e4")
        assert changes.destroyed == ()  # e1 was created and destroyed in between
        assert result.events.item_state == "E7"
        titles = {o["id"]: o["title"] for o in result.events.item_objects}
        assert titles == {"e0": "E0 edited", "e2": "E2", "e3": "E3", "e4": "E4"}

    def test_max_changes_argument_lowers_the_page(self) -> None:
        model = Model()
        model.event("e1", "One")
        _, sent = _pull(state_for(), model, event_state="E0", max_changes=7)
        assert sent[0].json["methodCalls"][3][1]["maxChanges"] == 7

    def test_has_more_changes_without_progress_stops(self) -> None:
        def handler(name: str, args: dict[str, Any]) -> Reply:
            if name.endswith("/changes"):
                return {
                    "newState": args["sinceState"],
                    "hasMoreChanges": True,
                    "created": [],
                    "updated": [],
                    "destroyed": [],
                }
            return {"state": "x", "list": []}

        with pytest.raises(RemoteProtocolError, match="without progress"):
            run(flows.pull(state_for(), calendar_state="a", event_state="b"), jmap_refs(handler))

    def test_a_referenced_get_refused_as_too_large_is_redone_in_chunks(self) -> None:
        model = Model()
        for n in range(5):
            model.event(f"e{n}", f"E{n}")
        model.max_in_get = 2
        model.ignore_max_changes = True
        state = state_for(limits={"maxObjectsInGet": 2})
        result, sent = _pull(state, model, event_state="E0")
        assert _names(sent)[1] == ["CalendarEvent/get"] * 3
        assert [o["id"] for o in result.events.item_objects] == [f"e{n}" for n in range(5)]


class TestErrors:
    def test_cannot_calculate_item_changes_means_full_listing(self) -> None:
        model = Model()
        model.event("e1", "One")
        result, sent = _pull(state_for(), model, event_state="gone")
        assert len(sent) == 1
        assert result.events.full_items_needed
        assert result.events.item_changes is None
        assert result.events.collection_changes is not None

    def test_cannot_calculate_collection_changes_lists_them(self) -> None:
        model = Model()
        result, sent = _pull(state_for(), model, calendar_state="gone")
        assert _names(sent)[1] == ["Calendar/get"]
        assert sent[1].json["methodCalls"][0][1]["ids"] is None
        assert result.events.collections is not None
        assert result.events.collection_changes is None
        assert result.events.collection_state == "K1"

    def test_unknown_collection_changes_is_remembered(self) -> None:
        model = Model()
        model.errors["Calendar/changes"] = {"type": "unknownMethod"}
        state = state_for()
        result, sent = _pull(state, model)
        assert len(sent) == 2
        assert result.events.collections is not None
        assert state.no_changes == {"Calendar"}
        result, sent = _pull(state, model)
        assert _names(sent) == [
            ["Calendar/get", "CalendarEvent/changes", "CalendarEvent/get", "CalendarEvent/get"]
        ]
        assert result.events.collections is not None

    def test_other_method_errors_raise(self) -> None:
        model = Model()
        model.errors["CalendarEvent/changes"] = {"type": "serverFail"}
        with pytest.raises(JMAPMethodError, match="serverFail"):
            _pull(state_for(), model)
        model = Model()
        model.errors["CalendarEvent/changes"] = {"type": "unknownMethod"}
        with pytest.raises(JMAPMethodError):
            _pull(state_for(), model)


class TestLimits:
    def test_groups_that_do_not_fit_go_in_further_requests(self) -> None:
        model = Model()
        model.event("e1", "One")
        state = state_for(tasks=True, limits={"maxCallsInRequest": 7})
        result, sent = _pull(state, model, event_state="E0", task_list_state="L1", task_state="T0")
        assert [len(r.json["methodCalls"]) for r in sent] == [6, 6]
        assert result.events.item_changes is not None
        assert result.events.item_changes.created == ("e1",)

    def test_fewer_than_three_calls_fall_back_to_explicit_ids(self) -> None:
        model = Model()
        model.event("e1", "One")
        state = state_for(limits={"maxCallsInRequest": 1})
        result, sent = _pull(state, model, event_state="E0")
        assert _names(sent) == [
            ["Calendar/changes"],
            ["CalendarEvent/changes"],
            ["CalendarEvent/get"],
        ]
        assert sent[2].json["methodCalls"][0][1]["ids"] == ["e1"]
        assert [o["id"] for o in result.events.item_objects] == ["e1"]


# --------------------------------------------------------------------------- session cache

OLD_API = f"{BASE}/old-api/"


def _discovering(
    model: Model, *, api_url: str = "/jmap/", account: str = "acc"
) -> Callable[[HttpRequest], HttpResponse]:
    """A responder that answers the session GET and JMAP POSTs at ``api_url`` only."""
    handle = jmap_refs(model.handle)

    def respond(req: HttpRequest) -> HttpResponse:
        if req.method == "GET":
            data = session_json(api_url=api_url)
            if account != "acc":
                data["accounts"] = {account: data["accounts"]["acc"]}
                data["primaryAccounts"] = dict.fromkeys(data["primaryAccounts"], account)
            return answer(data, url=req.url)
        if req.url != BASE + api_url:
            return answer(b"not here", status=404, url=req.url)
        wrong = [c for c in req.json["methodCalls"] if c[1].get("accountId") != account]
        if wrong:
            out = [["error", {"type": "accountNotFound"}, c[2]] for c in req.json["methodCalls"]]
            return answer({"methodResponses": out, "sessionState": "s0"}, url=req.url)
        return handle(req)

    return respond


def _exported(api_url: str = "/jmap/", login: str = "alice") -> dict[str, Any]:
    state = ClientState(SESSION_URL)
    flows.import_session(
        state,
        {
            "version": 1,
            "url": SESSION_URL,
            "login": login,
            "sessionUrl": SESSION_URL,
            "session": session_json(api_url=api_url),
        },
        login,
    )
    data = flows.export_session(state, login)
    assert data is not None
    return data


class TestSessionCache:
    def test_export_is_none_before_the_session_is_known(self) -> None:
        assert flows.export_session(ClientState(SESSION_URL)) is None

    def test_export_round_trips_through_json_and_saves_discovery(self) -> None:
        model = Model()
        first = ClientState(SESSION_URL)
        run(flows.ensure_session(first), _discovering(model))
        data = json.loads(json.dumps(flows.export_session(first, "alice")))
        assert data["sessionUrl"] == SESSION_URL
        assert "password" not in json.dumps(data)
        second = ClientState(SESSION_URL)
        assert flows.import_session(second, data, "alice")
        assert second.dialect is not None
        _, sent = _pull(second, model)
        assert [r.method for r in sent] == ["POST"]

    @pytest.mark.parametrize(
        "change",
        [
            {"url": "http://other.test/jmap"},
            {"login": "bob"},
            {"version": 99},
            {"session": {"apiUrl": "/jmap/"}},
            {"sessionUrl": None},
        ],
    )
    def test_foreign_or_broken_data_is_ignored(self, change: dict[str, Any]) -> None:
        data = {**_exported(), **change}
        state = ClientState(SESSION_URL)
        assert not flows.import_session(state, data, "alice")
        assert state.session is None
        assert not flows.import_session(state, "garbage", "alice")

    def test_moved_api_url_is_found_again_and_the_request_retried_once(self) -> None:
        model = Model()
        model.event("e1", "One")
        state = ClientState(SESSION_URL)
        assert flows.import_session(state, _exported(api_url="/old-api/"), "alice")
        result, sent = run(
            flows.pull(state, calendar_state="K1", event_state="E0"), _discovering(model)
        )
        assert [(r.method, r.url) for r in sent] == [
            ("POST", OLD_API),
            ("GET", SESSION_URL),
            ("POST", API_URL),
        ]
        assert sent[0].json == sent[2].json
        assert result.events.item_changes is not None
        assert result.events.item_changes.created == ("e1",)
        assert state.session is not None
        assert state.session.api_url == API_URL

    def test_a_new_account_id_is_put_into_the_retried_request(self) -> None:
        model = Model()
        state = ClientState(SESSION_URL)
        assert flows.import_session(state, _exported(), "alice")
        result, sent = run(
            flows.pull(state, calendar_state=None, event_state=None),
            _discovering(model, account="acc2"),
        )
        assert [r.method for r in sent] == ["POST", "GET", "POST"]
        assert sent[2].json["methodCalls"][0][1]["accountId"] == "acc2"
        assert result.events.collections is not None

    def test_a_session_just_fetched_is_not_fetched_again_on_404(self) -> None:
        model = Model()
        state = ClientState(SESSION_URL)
        responder = _discovering(model)

        def broken(req: HttpRequest) -> HttpResponse:
            if req.method == "POST":
                return answer(b"gone", status=404, url=req.url)
            return responder(req)

        with pytest.raises(JMAPRequestError):
            run(flows.pull(state, calendar_state=None, event_state=None), broken)

    def test_same_place_after_discovery_means_no_retry(self) -> None:
        state = ClientState(SESSION_URL)
        assert flows.import_session(state, _exported(), "alice")
        gets: list[str] = []

        def respond(req: HttpRequest) -> HttpResponse:
            if req.method == "GET":
                gets.append(req.url)
                return answer(session_json(), url=req.url)
            return answer(b"gone", status=404, url=req.url)

        with pytest.raises(JMAPRequestError):
            run(flows.pull(state, calendar_state=None, event_state=None), respond)
        assert gets == [SESSION_URL]
