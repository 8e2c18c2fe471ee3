"""The one-request pull and the session cache through both clients against the fake server:
paging (RFC 8620 §5.2 hasMoreChanges), cannotCalculateChanges, the core limits (§2) and a
session resource imported from an earlier client."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from jmapsyncd.jmap import Pull
from tests.client.conftest import Api, open_api
from tests.fakeserver import FakeJMAPServer

DIALECTS = ("stalwart", "ietf", "cyrus36")


@pytest.fixture(params=DIALECTS)
def server(request: pytest.FixtureRequest) -> Iterator[FakeJMAPServer]:
    with FakeJMAPServer(dialect=request.param, tasks=True) as srv:
        yield srv


def creds(srv: FakeJMAPServer) -> dict[str, Any]:
    return {"username": srv.username, "password": srv.password}


def add_events(srv: FakeJMAPServer, count: int, prefix: str = "e") -> list[str]:
    cal = srv.store.default_calendar_id
    return [
        srv.store.add_event(cal, {"uid": f"{prefix}{n}", "title": f"{prefix.upper()}{n}"})
        for n in range(count)
    ]


def posts(srv: FakeJMAPServer) -> list[Any]:
    return [r for r in srv.requests if r.method == "POST"]


async def first_pull(api: Api) -> Pull:
    """The pull of a client with no stored state: collections listed, items to be listed."""
    result: Pull = await api.pull(calendar_state=None, event_state=None, task_list_state=None)
    assert result.events.full_items_needed
    return result


async def states(api: Api, result: Pull) -> dict[str, Any]:
    """The states to store after ``result`` (items listed in full where needed)."""
    out: dict[str, Any] = {
        "calendar_state": result.events.collection_state,
        "event_state": result.events.item_state,
    }
    if out["event_state"] is None:
        out["event_state"] = (await api.get_all_events())[1]
    if result.tasks is not None:
        out["task_list_state"] = result.tasks.collection_state
        out["task_state"] = result.tasks.item_state or (await api.get_all_tasks())[1]
    return out


@pytest.mark.asyncio
async def test_a_pull_cycle_is_one_request_each(server: FakeJMAPServer, kind: str) -> None:
    async with open_api(kind, server.session_url, **creds(server)) as api:
        result = await first_pull(api)
        assert result.events.collections
        assert result.tasks is not None
        assert result.tasks.collections
        stored = await states(api, result)
        before = len(posts(server))
        result = await api.pull(**stored)
        assert len(posts(server)) - before == 1
        assert result.unchanged

        (created,) = add_events(server, 1)
        list_id = next(iter(server.store.task_lists))
        task = server.store.add_task(list_id, {"title": "Do it"})
        before = len(posts(server))
        result = await api.pull(**stored)
        assert len(posts(server)) - before == 1
        assert result.events.item_changes is not None
        assert result.events.item_changes.created == (created,)
        assert [e["title"] for e in result.events.item_objects] == ["E0"]
        assert result.events.item_objects[0]["@type"] == "Event"
        assert result.tasks is not None
        assert result.tasks.item_changes is not None
        assert result.tasks.item_changes.created == (task,)
        stored = await states(api, result)
        result = await api.pull(**stored)
        assert result.unchanged


@pytest.mark.asyncio
async def test_has_more_changes_pages_are_followed(server: FakeJMAPServer, kind: str) -> None:
    async with open_api(kind, server.session_url, **creds(server)) as api:
        stored = await states(api, await first_pull(api))
        server.limits["maxChanges"] = 2
        ids = add_events(server, 5)
        before = len(posts(server))
        result = await api.pull(**stored, tasks=False)
        assert len(posts(server)) - before >= 3
        assert result.events.item_changes is not None
        assert set(result.events.item_changes.created) == set(ids)
        assert sorted(e["id"] for e in result.events.item_objects) == sorted(ids)
        assert result.tasks is None


@pytest.mark.asyncio
async def test_cannot_calculate_changes(server: FakeJMAPServer, kind: str) -> None:
    async with open_api(kind, server.session_url, **creds(server)) as api:
        stored = await states(api, await first_pull(api))
        add_events(server, 2)
        new_calendar = server.store.add_calendar("Work")
        server.store.add_task(next(iter(server.store.task_lists)), {"title": "T"})
        server.store.forget_history()
        result = await api.pull(**stored)
        events = result.events
        assert events.full_items_needed
        assert events.item_changes is None
        assert events.item_state is None
        # the collections are listed in a follow-up request
        assert events.collections is not None
        assert new_calendar in {c["id"] for c in events.collections}
        assert events.collection_changes is None
        assert result.tasks is not None
        assert result.tasks.full_items_needed


@pytest.mark.asyncio
@pytest.mark.parametrize("max_calls", [3, 2])
async def test_small_max_calls_in_request(
    server: FakeJMAPServer, kind: str, max_calls: int
) -> None:
    server.limits["maxCallsInRequest"] = max_calls
    async with open_api(kind, server.session_url, **creds(server)) as api:
        stored = await states(api, await first_pull(api))
        ids = add_events(server, 3)
        before = len(posts(server))
        result = await api.pull(**stored)
        sent = posts(server)[before:]
        assert all(len(r.json["methodCalls"]) <= max_calls for r in sent)
        # 3: one /changes with its two /get per request, for four types; 2: the four /changes
        # two by two, then the changed events by explicit ids
        assert len(sent) == {3: 4, 2: 3}[max_calls]
        assert result.events.item_changes is not None
        assert sorted(e["id"] for e in result.events.item_objects) == sorted(ids)


@pytest.mark.asyncio
async def test_small_max_objects_in_get(server: FakeJMAPServer, kind: str) -> None:
    server.limits["maxObjectsInGet"] = 3
    async with open_api(kind, server.session_url, **creds(server)) as api:
        stored = await states(api, await first_pull(api))
        ids = add_events(server, 8)
        before = len(posts(server))
        result = await api.pull(**stored, tasks=False)
        sent = posts(server)[before:]
        assert len(sent) == 3  # pages of 3, 3 and 2 changes
        for request in sent:
            for name, args, _ in request.json["methodCalls"]:
                if name.endswith("/changes"):
                    assert args["maxChanges"] == 3
        assert sorted(e["id"] for e in result.events.item_objects) == sorted(ids)


@pytest.mark.asyncio
async def test_imported_session_needs_no_discovery(server: FakeJMAPServer, kind: str) -> None:
    async with open_api(kind, server.session_url, **creds(server)) as api:
        assert api.client.export_session() is None
        stored = await states(api, await first_pull(api))
        exported = api.client.export_session()
    assert exported is not None
    assert server.password not in str(exported)
    add_events(server, 1)
    before = len(server.requests)
    async with open_api(kind, server.session_url, **creds(server)) as api:
        assert api.client.import_session(exported)
        result = await api.pull(**stored)
    assert [r.method for r in server.requests[before:]] == ["POST"]
    assert result.events.item_changes is not None
    assert len(result.events.item_changes.created) == 1


@pytest.mark.asyncio
async def test_moved_api_url_is_recovered(server: FakeJMAPServer, kind: str) -> None:
    async with open_api(kind, server.session_url, **creds(server)) as api:
        stored = await states(api, await first_pull(api))
        exported = api.client.export_session()
    assert exported is not None
    moved = {**exported, "session": {**exported["session"], "apiUrl": "/old/api/"}}
    before = len(server.requests)
    async with open_api(kind, server.session_url, **creds(server)) as api:
        assert api.client.import_session(moved)
        result = await api.pull(**stored)
        assert result.unchanged
        fresh = api.client.export_session()
    seen = [(r.method, r.path) for r in server.requests[before:]]
    assert seen[0] == ("POST", "/old/api/")
    assert seen[-1][0] == "POST"
    assert seen[-1][1].startswith("/jmap")
    assert fresh is not None
    assert fresh["session"]["apiUrl"] != "/old/api/"


@pytest.mark.asyncio
async def test_import_refuses_another_login(server: FakeJMAPServer, kind: str) -> None:
    async with open_api(kind, server.session_url, **creds(server)) as api:
        await api.get_session()
        exported = api.client.export_session()
    assert exported is not None
    async with open_api(kind, server.session_url, username="someone", password="x") as api:
        assert not api.client.import_session(exported)
