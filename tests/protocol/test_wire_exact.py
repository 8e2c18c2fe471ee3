"""The whole request JSON each operation sends, per dialect (jmapc-style wire tests)."""

from __future__ import annotations

from typing import Any

import pytest

from jmapsyncd.jmap._ops import Operations
from jmapsyncd.protocol import flows
from jmapsyncd.protocol.flows import EVENT
from tests.protocol.scripted import jmap, run, state_for

CORE = "urn:ietf:params:jmap:core"
IETF_CAL = "urn:ietf:params:jmap:calendars"
CYRUS_CAL = "https://cyrusimap.org/ns/jmap/calendars"
USING = {"cyrus36": [CORE, CYRUS_CAL], "ietf": [CORE, IETF_CAL], "stalwart": [CORE, IETF_CAL]}


def _state(dialect: str) -> flows.ClientState:
    state = state_for(dialect)
    if dialect == "stalwart":
        assert state.dialect is not None
        state.dialect = state.dialect.learn(recurrence_rules_list=False, in_calendars_filter=False)
    return state


def _ok(name: str, args: dict[str, Any]) -> dict[str, Any]:
    if name.endswith("/set"):
        return {
            "newState": "2",
            "created": {k: {"id": "new"} for k in args.get("create", {})},
            "updated": dict.fromkeys(args.get("update", {})),
            "destroyed": args.get("destroy", []),
        }
    if name.endswith("/query"):
        return {"ids": [], "position": 0, "total": 0}
    if name.endswith("/changes"):
        return {"created": [], "updated": [], "destroyed": [], "newState": "n"}
    return {"state": "st", "list": [], "notFound": []}


EVENT_IN = {
    "@type": "Event",
    "uid": "u-1",
    "title": "Weekly",
    "start": "2026-12-01T10:00:00",
    "timeZone": "Europe/Berlin",
    "duration": "PT1H",
    "recurrenceRules": [{"@type": "RecurrenceRule", "frequency": "weekly"}],
    "calendarIds": {"cal1": True},
}


@pytest.mark.parametrize(
    ("dialect", "event_out"),
    [
        (
            "cyrus36",
            {
                "@type": "jsevent",
                "uid": "u-1",
                "title": "Weekly",
                "start": "2026-12-01T10:00:00",
                "timeZone": "Europe/Berlin",
                "duration": "PT1H",
                "calendarId": "cal1",
                "recurrenceRule": {"@type": "RecurrenceRule", "frequency": "weekly"},
            },
        ),
        (
            "ietf",
            {
                "@type": "Event",
                "uid": "u-1",
                "title": "Weekly",
                "start": "2026-12-01T10:00:00",
                "timeZone": "Europe/Berlin",
                "duration": "PT1H",
                "calendarIds": {"cal1": True},
                "recurrenceRules": [{"@type": "RecurrenceRule", "frequency": "weekly"}],
            },
        ),
        (
            "stalwart",
            {
                "@type": "Event",
                "uid": "u-1",
                "title": "Weekly",
                "start": "2026-12-01T10:00:00",
                "timeZone": "Europe/Berlin",
                "duration": "PT1H",
                "calendarIds": {"cal1": True},
                "recurrenceRule": {"@type": "RecurrenceRule", "frequency": "weekly"},
            },
        ),
    ],
)
def test_event_create(dialect: str, event_out: dict[str, Any]) -> None:
    _, sent = run(flows.set_events(_state(dialect), create={"x": EVENT_IN}), jmap(_ok))
    assert sent[0].method == "POST"
    assert sent[0].json == {
        "using": USING[dialect],
        "methodCalls": [
            [
                "CalendarEvent/set",
                {"accountId": "acc", "sendSchedulingMessages": False, "create": {"k0": event_out}},
                "c0",
            ]
        ],
    }


@pytest.mark.parametrize(
    ("dialect", "cal_filter", "after", "before"),
    [
        ("cyrus36", {"inCalendars": ["cal1"]}, "2026-12-01T00:00:00Z", "2026-12-31T00:00:00Z"),
        ("ietf", {"inCalendars": ["cal1"]}, "2026-12-01T00:00:00", "2026-12-31T00:00:00"),
        ("stalwart", {"inCalendar": "cal1"}, "2026-12-01T00:00:00", "2026-12-31T00:00:00"),
    ],
)
def test_search_is_one_request_query_and_get(
    dialect: str, cal_filter: dict[str, Any], after: str, before: str
) -> None:
    ops = Operations(_state(dialect))
    flow = ops.search_events("cal1", "2026-12-01T00:00:00", "2026-12-31T00:00:00", "lunch")
    _, sent = run(flow, jmap(_ok))
    limit = 500 if dialect == "stalwart" else 4096
    assert len(sent) == 1
    assert sent[0].json == {
        "using": USING[dialect],
        "methodCalls": [
            [
                "CalendarEvent/query",
                {
                    "accountId": "acc",
                    "filter": {**cal_filter, "after": after, "before": before, "text": "lunch"},
                    "limit": limit,
                    "calculateTotal": True,
                },
                "c0",
            ],
            [
                "CalendarEvent/get",
                {
                    "accountId": "acc",
                    "#ids": {"resultOf": "c0", "name": "CalendarEvent/query", "path": "/ids"},
                },
                "c1",
            ],
        ],
    }


@pytest.mark.parametrize("dialect", ["cyrus36", "ietf"])
def test_sync_token_is_an_empty_get(dialect: str) -> None:
    token, sent = run(Operations(_state(dialect)).sync_token(), jmap(_ok))
    assert token == "st"
    assert sent[0].json == {
        "using": USING[dialect],
        "methodCalls": [["CalendarEvent/get", {"accountId": "acc", "ids": []}, "c0"]],
    }


def test_changes_request() -> None:
    _, sent = run(flows.changes(_state("ietf"), EVENT, "s5", 100), jmap(_ok))
    assert sent[0].json == {
        "using": USING["ietf"],
        "methodCalls": [
            [
                "CalendarEvent/changes",
                {"accountId": "acc", "sinceState": "s5", "maxChanges": 100},
                "c0",
            ]
        ],
    }


def test_update_sends_a_replacement_patch_without_server_owned_properties() -> None:
    fetched = {**EVENT_IN, "id": "E-u-1", "isOrigin": True, "title": "New"}
    del fetched["recurrenceRules"]
    _, sent = run(Operations(_state("stalwart")).update_event_data("E-u-1", fetched), jmap(_ok))
    patch = sent[0].json["methodCalls"][0][1]["update"]["E-u-1"]
    assert patch["title"] == "New"
    assert patch["recurrenceRule"] is None
    assert patch["description"] is None
    assert not {"id", "isOrigin", "calendarIds", "recurrenceRules"} & set(patch)


def test_calendar_crud_requests() -> None:
    ops = Operations(_state("ietf"))
    _, sent = run(ops.create_calendar("Work", "#ff0000"), jmap(_ok))
    assert sent[0].json["methodCalls"] == [
        [
            "Calendar/set",
            {"accountId": "acc", "create": {"k0": {"name": "Work", "color": "#ff0000"}}},
            "c0",
        ]
    ]
    _, sent = run(ops.delete_calendar("c1"), jmap(_ok))
    assert sent[0].json["methodCalls"] == [
        [
            "Calendar/set",
            {"accountId": "acc", "onDestroyRemoveEvents": True, "destroy": ["c1"]},
            "c0",
        ]
    ]


def test_create_task_request() -> None:
    ops = Operations(state_for("ietf", tasks=True))
    task_id, sent = run(
        ops.create_task("tl1", "Buy milk", priority=1, due="2026-12-01T10:00:00"), jmap(_ok)
    )
    assert task_id == "new"
    assert sent[0].json == {
        "using": [CORE, "urn:ietf:params:jmap:tasks"],
        "methodCalls": [
            [
                "Task/set",
                {
                    "accountId": "acc",
                    "create": {
                        "k0": {
                            "@type": "Task",
                            "taskListId": "tl1",
                            "title": "Buy milk",
                            "priority": 1,
                            "due": "2026-12-01T10:00:00",
                        }
                    },
                },
                "c0",
            ]
        ],
    }


@pytest.mark.parametrize("dialect", ["cyrus36", "ietf", "stalwart"])
@pytest.mark.parametrize(
    ("make", "calls"),
    [
        (lambda ops: ops.calendars(), [["Calendar/get", {"accountId": "acc", "ids": None}, "c0"]]),
        (
            lambda ops: ops.get_events(["e1", "e2"]),
            [["CalendarEvent/get", {"accountId": "acc", "ids": ["e1", "e2"]}, "c0"]],
        ),
        (
            lambda ops: ops.delete_event("e1"),
            [
                [
                    "CalendarEvent/set",
                    {"accountId": "acc", "sendSchedulingMessages": False, "destroy": ["e1"]},
                    "c0",
                ]
            ],
        ),
        (
            lambda ops: ops.update_calendar("c1", {"name": "N"}),
            [["Calendar/set", {"accountId": "acc", "update": {"c1": {"name": "N"}}}, "c0"]],
        ),
        (
            lambda ops: ops.changes(flows.CALENDAR, "s1", None),
            [["Calendar/changes", {"accountId": "acc", "sinceState": "s1"}, "c0"]],
        ),
    ],
)
def test_plain_calls(dialect: str, make: Any, calls: list[Any]) -> None:
    _, sent = run(make(Operations(_state(dialect))), jmap(_ok))
    assert sent[0].json == {"using": USING[dialect], "methodCalls": calls}


@pytest.mark.parametrize(
    ("dialect", "cal_filter"),
    [
        ("cyrus36", {"inCalendars": ["c1"]}),
        ("ietf", {"inCalendars": ["c1"]}),
        ("stalwart", {"inCalendar": "c1"}),
    ],
)
def test_get_object_by_uid_uses_the_uid_filter(dialect: str, cal_filter: dict[str, Any]) -> None:
    def handler(name: str, args: dict[str, Any]) -> dict[str, Any]:
        if name.endswith("/query"):
            return {"ids": ["x"], "position": 0, "total": 1}
        return {"state": "s", "list": [{"id": "x", "uid": "u@x"}]}

    obj, sent = run(Operations(_state(dialect)).event_by_uid("u@x", "c1"), jmap(handler))
    assert obj["id"] == "x"
    query = sent[0].json["methodCalls"][0]
    assert query[0] == "CalendarEvent/query"
    assert query[1]["filter"] == {**cal_filter, "uid": "u@x"}


@pytest.mark.parametrize(
    ("make", "calls"),
    [
        (lambda ops: ops.task_lists(), [["TaskList/get", {"accountId": "acc", "ids": None}, "c0"]]),
        (
            lambda ops: ops.get_task("t1"),
            [["Task/get", {"accountId": "acc", "ids": ["t1"]}, "c0"]],
        ),
        (
            lambda ops: ops.update_task("t1", {"progress": "completed"}),
            [["Task/set", {"accountId": "acc", "update": {"t1": {"progress": "completed"}}}, "c0"]],
        ),
        (
            lambda ops: ops.changes(flows.TASK, "s1", 50),
            [["Task/changes", {"accountId": "acc", "sinceState": "s1", "maxChanges": 50}, "c0"]],
        ),
    ],
)
def test_task_calls(make: Any, calls: list[Any]) -> None:
    def handler(name: str, args: dict[str, Any]) -> dict[str, Any]:
        if name == "Task/get":
            return {"state": "s", "list": [{"id": "t1"}]}
        return _ok(name, args)

    _, sent = run(make(Operations(state_for("ietf", tasks=True))), jmap(handler))
    assert sent[0].json == {"using": [CORE, "urn:ietf:params:jmap:tasks"], "methodCalls": calls}


def _ref(call_id: str, name: str, path: str) -> dict[str, Any]:
    return {"#ids": {"resultOf": call_id, "name": name, "path": path}}


def _changes_and_gets(type_name: str, since: str, first: int, page: int) -> list[list[Any]]:
    changes = f"{type_name}/changes"
    return [
        [
            changes,
            {"accountId": "acc", "sinceState": since, "maxChanges": page},
            f"c{first}",
        ],
        [
            f"{type_name}/get",
            {"accountId": "acc", **_ref(f"c{first}", changes, "/created")},
            f"c{first + 1}",
        ],
        [
            f"{type_name}/get",
            {"accountId": "acc", **_ref(f"c{first}", changes, "/updated")},
            f"c{first + 2}",
        ],
    ]


@pytest.mark.parametrize("dialect", ["cyrus36", "ietf", "stalwart"])
def test_pull_is_one_request_of_changes_and_gets_by_reference(dialect: str) -> None:
    ops = Operations(_state(dialect))
    flow = ops.pull("cs", "es", None, None, True, None)
    _, sent = run(flow, jmap(_ok))
    page = 500 if dialect == "stalwart" else 4096
    assert len(sent) == 1
    assert sent[0].method == "POST"
    assert sent[0].json == {
        "using": USING[dialect],
        "methodCalls": [
            *_changes_and_gets("Calendar", "cs", 0, page),
            *_changes_and_gets("CalendarEvent", "es", 3, page),
        ],
    }


def test_pull_with_tasks_and_no_stored_states() -> None:
    state = state_for("ietf", tasks=True)
    flow = flows.pull(
        state, calendar_state=None, event_state="es", task_list_state="ls", task_state=None
    )
    _, sent = run(flow, jmap(_ok))
    assert sent[0].json == {
        "using": [CORE, IETF_CAL, "urn:ietf:params:jmap:tasks"],
        "methodCalls": [
            ["Calendar/get", {"accountId": "acc", "ids": None}, "c0"],
            *_changes_and_gets("CalendarEvent", "es", 1, 4096),
            *_changes_and_gets("TaskList", "ls", 4, 4096),
        ],
    }
