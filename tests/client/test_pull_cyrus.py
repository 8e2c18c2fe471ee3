"""The one-request pull and the session cache against real Cyrus servers (3.6 own dialect,
3.10 IETF), through both clients, counting every HTTP request the client sends."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from jmapsyncd.errors import InvalidArguments
from jmapsyncd.jmap import Pull
from jmapsyncd.protocol.wire import HttpRequest
from tests.client.conftest import Api, open_api
from tests.client.test_cyrus import event

pytestmark = pytest.mark.integration


@asynccontextmanager
async def counting(kind: str, acct: Any) -> AsyncIterator[tuple[Api, list[HttpRequest]]]:
    """A client whose every HTTP request is recorded (the driver's one way out)."""
    sent: list[HttpRequest] = []
    async with open_api(kind, acct.url, username=acct.username, password=acct.password) as api:
        send = api.client._send

        def recording(req: HttpRequest) -> Any:
            sent.append(req)
            return send(req)

        api.client._send = recording  # type: ignore[method-assign]
        yield api, sent


async def stored_states(api: Api) -> dict[str, Any]:
    """What a first sync stores: the collection state of a pull and a full event listing."""
    first: Pull = await api.pull(calendar_state=None, event_state=None)
    assert first.events.collections
    assert first.events.full_items_needed
    _, event_state = await api.get_all_events()
    return {"calendar_state": first.events.collection_state, "event_state": event_state}


@pytest.mark.asyncio
async def test_imported_session_pull_is_one_request(cyrus_account: Any, kind: str) -> None:
    async with counting(kind, cyrus_account) as (writer, _):
        stored = await stored_states(writer)
        exported = writer.client.export_session()
        assert exported is not None
        assert cyrus_account.password not in str(exported)
        cal = (await writer.fetch_calendars())[0][0]["id"]

        async with counting(kind, cyrus_account) as (api, sent):
            assert api.client.import_session(exported)
            result: Pull = await api.pull(**stored)
            assert [r.method for r in sent] == ["POST"]
            assert result.unchanged
            assert result.tasks is None  # Cyrus has no JMAP Tasks

            made = await writer.set_events(create={"a": event("pull-1", "Pulled", cal)})
            event_id = made.created["a"]["id"]
            sent.clear()
            result = await api.pull(**stored)
            assert [r.method for r in sent] == ["POST"]
            changes = result.events.item_changes
            assert changes is not None
            assert changes.created == (event_id,)
            (obj,) = result.events.item_objects
            assert obj["title"] == "Pulled"
            assert obj["calendarIds"] == {cal: True}
            assert obj["@type"] == "Event"
            stored = {
                "calendar_state": result.events.collection_state,
                "event_state": result.events.item_state,
            }

            edited = await writer.set_events(update={event_id: {"title": "Edited"}})
            assert edited.ok
            sent.clear()
            result = await api.pull(**stored)
            assert len(sent) == 1
            changes = result.events.item_changes
            assert changes is not None
            assert changes.updated == (event_id,)
            assert [o["title"] for o in result.events.item_objects] == ["Edited"]
            stored["event_state"] = result.events.item_state
            stored["calendar_state"] = result.events.collection_state

            await writer.delete_event(event_id)
            sent.clear()
            result = await api.pull(**stored)
            assert len(sent) == 1
            assert result.events.item_changes is not None
            assert result.events.item_changes.destroyed == (event_id,)
            assert result.events.item_objects == []


@pytest.mark.asyncio
async def test_calendar_changes_come_with_the_calendar(cyrus_account: Any, kind: str) -> None:
    async with counting(kind, cyrus_account) as (api, sent):
        stored = await stored_states(api)
        new_id = await api.create_calendar("Pulled calendar")
        sent.clear()
        result: Pull = await api.pull(**stored)
        assert len(sent) == 1
        changes = result.events.collection_changes
        assert changes is not None
        assert changes.created == (new_id,)
        assert [c["name"] for c in result.events.collection_objects] == ["Pulled calendar"]
        assert "myRights" in result.events.collection_objects[0]


@pytest.mark.asyncio
async def test_pages_of_changes_on_a_real_server(cyrus_account: Any, kind: str) -> None:
    async with counting(kind, cyrus_account) as (api, sent):
        stored = await stored_states(api)
        cal = (await api.fetch_calendars())[0][0]["id"]
        create = {str(n): event(f"page-{n}", f"P{n}", cal, day=1 + n) for n in range(5)}
        made = await api.set_events(create=create)
        ids = {v["id"] for v in made.created.values()}
        sent.clear()
        result: Pull = await api.pull(**stored, max_changes=2)
        assert len(sent) >= 3
        assert result.events.item_changes is not None
        assert set(result.events.item_changes.created) == ids
        assert {o["id"] for o in result.events.item_objects} == ids
        sent.clear()
        again: Pull = await api.pull(
            calendar_state=result.events.collection_state,
            event_state=result.events.item_state,
        )
        assert len(sent) == 1
        assert again.unchanged


@pytest.mark.asyncio
async def test_a_state_the_server_cannot_use(cyrus_account: Any, kind: str) -> None:
    async with counting(kind, cyrus_account) as (api, _):
        stored = await stored_states(api)
        cal_state = stored["calendar_state"]
        if cyrus_account.dialect == "cyrus-3.6":
            # Cyrus 3.6 calls a state it cannot parse an invalid argument: that raises.
            with pytest.raises(InvalidArguments):
                await api.pull(calendar_state=cal_state, event_state="not-a-state")
        else:
            result: Pull = await api.pull(calendar_state=cal_state, event_state="not-a-state")
            assert result.events.full_items_needed
            assert result.events.item_changes is None
        # Both take a number beyond their counter for a state without changes since.
        result = await api.pull(calendar_state=cal_state, event_state="999999")
        assert result.events.item_changes is not None
        assert result.events.item_changes.empty


@pytest.mark.asyncio
async def test_moved_or_stale_session_is_recovered(cyrus_account: Any, kind: str) -> None:
    async with counting(kind, cyrus_account) as (api, _):
        stored = await stored_states(api)
        exported = api.client.export_session()
    assert exported is not None

    moved = {**exported, "session": {**exported["session"], "apiUrl": "/jmap/moved/"}}
    async with counting(kind, cyrus_account) as (api, sent):
        assert api.client.import_session(moved)
        result: Pull = await api.pull(**stored)
        assert result.unchanged
        methods = [r.method for r in sent]
        assert methods[0] == "POST"
        assert sent[0].url.endswith("/jmap/moved/")
        assert methods[1:-1] == ["GET"] * (len(methods) - 2)  # discovery (with its redirect)
        assert methods[-1] == "POST"
        assert not sent[-1].url.endswith("/jmap/moved/")
        sent.clear()
        await api.pull(**stored)
        assert [r.method for r in sent] == ["POST"]

    stale = {**exported, "session": {**exported["session"], "state": "an-older-state"}}
    async with counting(kind, cyrus_account) as (api, sent):
        assert api.client.import_session(stale)
        await api.pull(**stored)
        assert [r.method for r in sent] == ["POST"]  # the answer tells the session moved on
        sent.clear()
        result = await api.pull(**stored)
        assert result.unchanged
        assert [r.method for r in sent][-1] == "POST"
        assert "GET" in [r.method for r in sent]  # fetched again before the next call
        fresh = api.client.export_session()
        assert fresh is not None
        assert fresh["session"]["state"] != "an-older-state"
