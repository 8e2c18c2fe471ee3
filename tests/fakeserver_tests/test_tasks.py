"""JMAP Tasks (draft-ietf-jmap-tasks): TaskList/get|changes|set, Task/get|changes|query|set."""

from __future__ import annotations

from typing import Any

import pytest

from tests.fakeserver import FakeJMAPServer
from tests.fakeserver_tests.conftest import CORE, TASKS, Raw, raw_caller


def _task(raw: Raw, list_id: str, **props: Any) -> dict[str, Any]:
    return {"@type": "Task", "taskListId": list_id, "title": "Task", **props}


def test_default_task_list_exists(raw: Raw) -> None:
    lists = raw.call("TaskList/get")["list"]
    assert len(lists) == 1
    assert lists[0]["role"] == "inbox"
    assert lists[0]["id"] == raw.server.store.default_task_list_id


def test_task_create_get_query_and_changes(raw: Raw) -> None:
    list_id = raw.server.store.default_task_list_id
    since = raw.call("Task/get", {"ids": []})["state"]
    created = raw.call(
        "Task/set",
        {"create": {"t": _task(raw, list_id, uid="buy-milk", due="2026-05-01T12:00:00")}},
    )
    task_id = created["created"]["t"]["id"]
    got = raw.call("Task/get", {"ids": [task_id]})["list"][0]
    assert got["@type"] == "Task"
    assert got["taskListId"] == list_id
    assert got["due"] == "2026-05-01T12:00:00"
    queried = raw.call("Task/query", {"filter": {"inTaskLists": [list_id]}})
    assert queried["ids"] == [task_id]
    window = raw.call("Task/query", {"filter": {"after": "2026-06-01T00:00:00"}})
    assert window["ids"] == []
    changes = raw.call("Task/changes", {"sinceState": since})
    assert changes["created"] == [task_id]


def test_task_needs_a_known_task_list(raw: Raw) -> None:
    result = raw.call("Task/set", {"create": {"t": _task(raw, "nope")}})
    assert result["notCreated"]["t"]["properties"] == ["taskListId"]


def test_task_update_and_destroy(raw: Raw) -> None:
    store = raw.server.store
    task_id = store.add_task(store.default_task_list_id, {"title": "Old"})
    updated = raw.call("Task/set", {"update": {task_id: {"title": "New", "progress": "completed"}}})
    assert updated["updated"] == {task_id: None}
    assert store.tasks[task_id]["progress"] == "completed"
    bad = raw.call("Task/set", {"update": {task_id: {"uid": "changed"}}})
    assert bad["notUpdated"][task_id]["properties"] == ["uid"]
    destroyed = raw.call("Task/set", {"destroy": [task_id]})
    assert destroyed["destroyed"] == [task_id]
    assert task_id not in store.tasks


def test_task_list_set_and_changes(raw: Raw) -> None:
    since = raw.call("TaskList/get", {"ids": []})["state"]
    made = raw.call("TaskList/set", {"create": {"l": {"name": "Chores"}}})["created"]["l"]["id"]
    task_id = raw.server.store.add_task(made, {"title": "Sweep"})
    refused = raw.call("TaskList/set", {"destroy": [made]})
    assert refused["notDestroyed"][made]["type"] == "taskListHasTask"
    changes = raw.call("TaskList/changes", {"sinceState": since})
    assert changes["created"] == [made]
    done = raw.call("TaskList/set", {"destroy": [made], "onDestroyRemoveTasks": True})
    assert done["destroyed"] == [made]
    assert task_id not in raw.server.store.tasks


@pytest.mark.parametrize("dialect", ["ietf", "cyrus36"])
def test_tasks_absent_means_unknown_capability(dialect: str) -> None:
    with FakeJMAPServer(dialect=dialect, tasks=False) as srv:
        for raw in raw_caller(srv):
            response = raw.post({"using": [CORE, TASKS], "methodCalls": []})
            assert response.status_code == 400
            assert response.json()["type"].endswith("unknownCapability")
            assert raw.call("Task/get")["error"]["type"] == "unknownMethod"
