"""Both clients against the in-process fake server: Stalwart's dialect, tasks, limits, paging,
and every failure a real server can produce (RFC 8620 §3.6, §5.2; JMAP Calendars and Tasks)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest

from jmapsyncd.errors import (
    CannotCalculateChanges,
    JMAPAuthError,
    JMAPCapabilityError,
    JMAPMethodError,
    JMAPTimeoutError,
    JMAPTransportError,
    RemoteProtocolError,
)
from jmapsyncd.jmap import JMAPCalendarObject, JMAPClient, replacement_patch
from tests.client.conftest import open_api
from tests.fakeserver import FakeJMAPServer, Fault

DIALECTS = ("stalwart", "ietf", "cyrus36")


@pytest.fixture(params=DIALECTS)
def server(request: pytest.FixtureRequest) -> Iterator[FakeJMAPServer]:
    with FakeJMAPServer(dialect=request.param, tasks=False) as srv:
        yield srv


@pytest.fixture
def stalwart() -> Iterator[FakeJMAPServer]:
    with FakeJMAPServer(dialect="stalwart", tasks=False) as srv:
        yield srv


def creds(srv: FakeJMAPServer) -> dict[str, Any]:
    return {"username": srv.username, "password": srv.password}


def event(uid: str, title: str, cal: str, day: int = 1, **extra: Any) -> dict[str, Any]:
    return {
        "@type": "Event",
        "uid": uid,
        "title": title,
        "start": f"2026-12-{day:02d}T10:00:00",
        "duration": "PT1H",
        "timeZone": "Europe/Berlin",
        "calendarIds": {cal: True},
        **extra,
    }


def api_posts(srv: FakeJMAPServer) -> list[Any]:
    return [r for r in srv.requests if r.method == "POST"]


class TestAuth:
    @pytest.mark.asyncio
    @pytest.mark.parametrize("status", [401, 403])
    async def test_auth_errors_are_final(
        self, server: FakeJMAPServer, kind: str, status: int
    ) -> None:
        async with open_api(kind, server.session_url, **creds(server)) as api:
            await api.get_session()
            server.faults.append(Fault(status=status, path="/jmap/", times=5))
            before = len(server.requests)
            with pytest.raises(JMAPAuthError) as info:
                await api.get_calendars()
            assert info.value.status == status
            assert len(server.requests) == before + 1  # never retried

    @pytest.mark.asyncio
    async def test_wrong_password(self, server: FakeJMAPServer, kind: str) -> None:
        async with open_api(
            kind, server.session_url, username=server.username, password="not-it"
        ) as api:
            with pytest.raises(JMAPAuthError) as info:
                await api.get_calendars()
            assert "not-it" not in str(info.value)

    @pytest.mark.asyncio
    async def test_bearer_token_from_password_alone(
        self, server: FakeJMAPServer, kind: str
    ) -> None:
        async with open_api(kind, server.session_url, password=server.token) as api:
            assert await api.get_calendars()

    @pytest.mark.asyncio
    async def test_discovery_from_bare_host(self, server: FakeJMAPServer, kind: str) -> None:
        async with open_api(kind, server.base_url, **creds(server)) as api:
            session = await api.get_session()
        assert session.api_url.endswith("/jmap/")
        assert server.requests[0].path == "/.well-known/jmap"


ICS = """BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//jmapsyncd tests//EN
BEGIN:VEVENT
UID:{uid}
DTSTAMP:20261101T000000Z
DTSTART;TZID=Europe/Berlin:20261203T090000
DTEND;TZID=Europe/Berlin:20261203T100000
SUMMARY:{summary}
RRULE:FREQ=WEEKLY;COUNT=3
BEGIN:VALARM
ACTION:DISPLAY
DESCRIPTION:soon
TRIGGER:-PT10M
END:VALARM
END:VEVENT
END:VCALENDAR
"""


class TestSeedUsage:
    @pytest.mark.asyncio
    async def test_seed_calls_on_every_dialect(self, server: FakeJMAPServer, kind: str) -> None:
        async with open_api(kind, server.session_url, **creds(server)) as api:
            cal = (await api.get_calendars())[0]
            event_id = await api.create_event(cal.id, ICS.format(uid="seed@x", summary="Seed"))
            obj = await api.get_event(event_id)
            assert obj.data["recurrenceRules"][0]["frequency"] == "weekly"
            trigger = next(iter(obj.data["alerts"].values()))["trigger"]
            assert trigger["@type"] == "OffsetTrigger"
            found = await api.search_events(start="2026-12-03T00:00:00", end="2026-12-04T00:00:00")
            assert [o.id for o in found] == [event_id]
            assert (await api.run(cal.get_object_by_uid("seed@x"))).id == event_id
            await api.update_event(event_id, ICS.format(uid="seed@x", summary="Renamed"))
            assert (await api.get_event(event_id)).data["title"] == "Renamed"
            await api.delete_event(event_id)
            assert await api.search_events() == []


class TestObjects:
    @pytest.mark.asyncio
    async def test_saving_a_new_object_creates_it_in_its_calendar(
        self, server: FakeJMAPServer, kind: str
    ) -> None:
        async with open_api(kind, server.session_url, **creds(server)) as api:
            cal = (await api.get_calendars())[0]
            data = event("new-1", "Fresh", cal.id)
            del data["calendarIds"]
            obj = JMAPCalendarObject(data, cal)
            await api.run(obj.save())
            assert obj.id
            assert (await api.get_event(obj.id)).data["title"] == "Fresh"


def test_debug_log_has_no_credentials(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with FakeJMAPServer(dialect="stalwart") as srv:
        client = JMAPClient(srv.session_url, srv.username, "pw-" + srv.password)
        with client, pytest.raises(JMAPAuthError):
            client.get_calendars()
    assert "/.well-known/jmap" in caplog.text
    assert "pw-" not in caplog.text
    assert "Authorization" not in caplog.text


class TestFaults:
    @pytest.mark.asyncio
    async def test_server_error_carries_retry_after(
        self, server: FakeJMAPServer, kind: str
    ) -> None:
        async with open_api(kind, server.session_url, **creds(server)) as api:
            await api.get_session()
            server.faults.append(Fault(status=503, retry_after=3, path="/jmap/"))
            with pytest.raises(JMAPTransportError) as info:
                await api.get_calendars()
            assert info.value.retry_after == 3.0
            assert info.value.status == 503
            assert await api.get_calendars()  # the next request goes through

    @pytest.mark.asyncio
    async def test_timeout(self, stalwart: FakeJMAPServer, kind: str) -> None:
        async with open_api(kind, stalwart.session_url, timeout=0.2, **creds(stalwart)) as api:
            await api.get_session()
            stalwart.faults.append(Fault(delay=2.0, path="/jmap/"))
            with pytest.raises(JMAPTimeoutError):
                await api.get_calendars()

    @pytest.mark.asyncio
    @pytest.mark.parametrize(
        "fault",
        [
            Fault(body=b"<html>oops</html>", path="/jmap/"),
            Fault(truncate=True, path="/jmap/"),
            Fault(body=b'{"methodResponses": 5}', path="/jmap/"),
        ],
    )
    async def test_garbage_answers_are_remote_protocol_errors(
        self, stalwart: FakeJMAPServer, kind: str, fault: Fault
    ) -> None:
        async with open_api(kind, stalwart.session_url, **creds(stalwart)) as api:
            await api.get_session()
            stalwart.faults.append(fault)
            with pytest.raises((RemoteProtocolError, JMAPTransportError)):
                await api.get_calendars()

    @pytest.mark.asyncio
    async def test_connection_reset_is_a_transport_error(
        self, stalwart: FakeJMAPServer, kind: str
    ) -> None:
        async with open_api(kind, stalwart.session_url, **creds(stalwart)) as api:
            await api.get_session()
            stalwart.faults.append(Fault(reset=True, path="/jmap/"))
            with pytest.raises(JMAPTransportError):
                await api.get_calendars()


class TestSyncApi:
    @pytest.mark.asyncio
    async def test_change_feed_pages_through_has_more_changes(
        self, server: FakeJMAPServer, kind: str
    ) -> None:
        async with open_api(kind, server.session_url, **creds(server)) as api:
            cal = (await api.get_calendars())[0].id
            state = await api.get_event_state()
            create = {str(i): event(f"u{i}", f"T{i}", cal, day=1 + i) for i in range(7)}
            result = await api.set_events(create=create)
            assert result.ok
            ids = {v["id"] for v in result.created.values()}
            before = len(api_posts(server))
            changes = await api.event_changes(state, max_changes=3)
            assert set(changes.created) == ids
            assert len(api_posts(server)) - before >= 3  # 7 changes in pages of 3

    @pytest.mark.asyncio
    async def test_cannot_calculate_changes(self, server: FakeJMAPServer, kind: str) -> None:
        async with open_api(kind, server.session_url, **creds(server)) as api:
            state = await api.get_event_state()
            server.force_cannot_calculate = True
            with pytest.raises(CannotCalculateChanges):
                await api.event_changes(state)

    @pytest.mark.asyncio
    async def test_has_more_changes_fails_the_reference_method(
        self, server: FakeJMAPServer, kind: str
    ) -> None:
        server.limits["maxChanges"] = 2
        async with open_api(kind, server.session_url, **creds(server)) as api:
            cal = (await api.get_calendars())[0].id
            token = await api.get_sync_token()
            create = {str(i): event(f"m{i}", "M", cal, day=1 + i) for i in range(4)}
            assert (await api.set_events(create=create)).ok
            with pytest.raises(JMAPMethodError, match="hasMoreChanges"):
                await api.get_objects_by_sync_token(token)

    @pytest.mark.asyncio
    async def test_gets_and_queries_page_past_max_objects_in_get(
        self, server: FakeJMAPServer, kind: str
    ) -> None:
        server.limits["maxObjectsInGet"] = 3
        async with open_api(kind, server.session_url, **creds(server)) as api:
            cal = (await api.get_calendars())[0].id
            create = {str(i): event(f"p{i}", f"P{i}", cal, day=1 + i) for i in range(8)}
            result = await api.set_events(create=create)
            ids = [result.created[str(i)]["id"] for i in range(8)]
            got = await api.get_events(ids)
            assert sorted(e["id"] for e in got) == sorted(ids)
            found = await api.search_events(calendar_id=cal)
            assert sorted(o.id for o in found) == sorted(ids)
            listing, state = await api.get_all_events()
            assert len(listing) == 8
            assert state

    @pytest.mark.asyncio
    async def test_sets_are_split_by_max_objects_in_set(
        self, server: FakeJMAPServer, kind: str
    ) -> None:
        server.limits["maxObjectsInSet"] = 2
        async with open_api(kind, server.session_url, **creds(server)) as api:
            cal = (await api.get_calendars())[0].id
            before = len(api_posts(server))
            create = {str(i): event(f"s{i}", "S", cal, day=1 + i) for i in range(5)}
            result = await api.set_events(create=create)
            assert len(result.created) == 5
            assert len(api_posts(server)) - before >= 3

    @pytest.mark.asyncio
    async def test_set_errors_are_per_object(self, server: FakeJMAPServer, kind: str) -> None:
        async with open_api(kind, server.session_url, **creds(server)) as api:
            cal = (await api.get_calendars())[0].id
            result = await api.set_events(
                create={"good": event("g1", "G", cal), "orphan": event("o1", "O", "no-such-cal")},
                destroy=["no-such-event"],
            )
            assert set(result.created) == {"good"}
            assert result.not_created["orphan"].object_id == "orphan"
            assert result.not_destroyed["no-such-event"].error_type == "notFound"
            with pytest.raises(JMAPMethodError):
                result.raise_first_error()


class TestStalwart:
    @pytest.mark.asyncio
    async def test_recurring_event_and_full_update_of_a_fetched_event(
        self, stalwart: FakeJMAPServer, kind: str
    ) -> None:
        async with open_api(kind, stalwart.session_url, **creds(stalwart)) as api:
            cal = (await api.get_calendars())[0].id
            rule = {"@type": "RecurrenceRule", "frequency": "daily", "count": 2}
            result = await api.set_events(
                create={"r": event("rr", "Daily", cal, recurrenceRules=[rule])}
            )
            assert result.ok, result
            eid = result.created["r"]["id"]
            fetched = (await api.get_events([eid]))[0]
            assert fetched["recurrenceRules"] == [rule]
            fetched["title"] = "Daily, renamed"
            # The whole fetched object, with isOrigin and id, is accepted as an update.
            result = await api.set_events(update={eid: fetched})
            assert result.ok, result
            assert (await api.get_events([eid]))[0]["title"] == "Daily, renamed"
            sent = [r.json for r in api_posts(stalwart) if r.json]
            creates = [c[1]["create"] for j in sent for c in j["methodCalls"] if "create" in c[1]]
            assert "recurrenceRule" in creates[-1]["k0"]

    @pytest.mark.asyncio
    async def test_replacement_update_is_adapted_on_first_use(
        self, stalwart: FakeJMAPServer, kind: str
    ) -> None:
        cal = stalwart.store.default_calendar_id
        eid = stalwart.store.add_event(cal, event("seeded", "Seeded", cal))
        async with open_api(kind, stalwart.session_url, **creds(stalwart)) as api:
            new = event("seeded", "Replaced", cal)
            result = await api.set_events(update={eid: replacement_patch(new)})
            assert result.ok, result
            got = (await api.get_events([eid]))[0]
            assert got["title"] == "Replaced"
            assert "description" not in got
        updates = [
            c[1]["update"][eid]
            for r in api_posts(stalwart)
            if r.json
            for c in r.json["methodCalls"]
            if "update" in c[1]
        ]
        assert "recurrenceRules" in updates[0]  # refused once …
        assert "recurrenceRule" in updates[-1]  # … then sent in Stalwart's shape
        assert "recurrenceRules" not in updates[-1]

    @pytest.mark.asyncio
    async def test_calendar_filter_is_learned(self, stalwart: FakeJMAPServer, kind: str) -> None:
        async with open_api(kind, stalwart.session_url, **creds(stalwart)) as api:
            cal = (await api.get_calendars())[0]
            assert (await api.set_events(create={"a": event("f1", "F", cal.id)})).ok
            first = await api.run(cal.search())
            second = await api.run(cal.search())
            assert [o.id for o in first] == [o.id for o in second]
            assert len(first) == 1
            filters = [
                c[1].get("filter")
                for r in api_posts(stalwart)
                if r.json
                for c in r.json["methodCalls"]
                if c[0] == "CalendarEvent/query"
            ]
            assert filters[-1] == {"inCalendar": cal.id}

    @pytest.mark.asyncio
    async def test_no_tasks_capability(self, stalwart: FakeJMAPServer, kind: str) -> None:
        async with open_api(kind, stalwart.session_url, **creds(stalwart)) as api:
            with pytest.raises(JMAPCapabilityError):
                await api.create_task("x", "never sent")
        assert all(
            "urn:ietf:params:jmap:tasks" not in (r.json or {}).get("using", [])
            for r in stalwart.requests
        )


class TestTasks:
    @pytest.mark.asyncio
    @pytest.mark.parametrize("dialect", ["stalwart", "ietf"])
    async def test_task_crud_and_changes(self, dialect: str, kind: str) -> None:
        with FakeJMAPServer(dialect=dialect, tasks=True) as srv:
            async with open_api(kind, srv.session_url, **creds(srv)) as api:
                lists = await api.get_task_lists()
                assert lists
                list_id = lists[0]["id"]
                state = (await api.get_all_tasks())[1]
                task_id = await api.create_task(list_id, "Buy milk", priority=1)
                task = await api.get_task(task_id)
                assert task["title"] == "Buy milk"
                await api.update_task(task_id, {"title": "Buy oat milk"})
                assert (await api.get_task(task_id))["title"] == "Buy oat milk"
                changes = await api.task_changes(state)
                assert changes.created == (task_id,)
                listing, _ = await api.get_all_tasks(list_id)
                assert [t["id"] for t in listing] == [task_id]
                await api.update_task_list(list_id, {"name": "Errands"})
                assert [t["name"] for t in await api.get_task_lists()] == ["Errands"]
                await api.delete_task(task_id)
                with pytest.raises(JMAPMethodError):
                    await api.get_task(task_id)
