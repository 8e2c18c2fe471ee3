"""The public API and the sync API against real Cyrus servers (3.6 own dialect, 3.10 IETF),
through both clients. One fresh account per test."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

import pytest

from jmapsyncd.errors import (
    CannotCalculateChanges,
    JMAPAuthError,
    JMAPCapabilityError,
    JMAPMethodError,
    JMAPNotFoundError,
)
from jmapsyncd.jmap import JMAPCalendarObject
from jmapsyncd.protocol import flows
from tests.client.conftest import open_api

pytestmark = pytest.mark.integration

ICS = """BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//jmapsyncd tests//EN
BEGIN:VEVENT
UID:{uid}
DTSTAMP:20261101T000000Z
DTSTART;TZID=Europe/Berlin:{start}
DTEND;TZID=Europe/Berlin:{end}
SUMMARY:{summary}
END:VEVENT
END:VCALENDAR
"""


def ics(uid: str, summary: str, day: int = 3, hour: int = 9) -> str:
    start = f"202612{day:02d}T{hour:02d}0000"
    end = f"202612{day:02d}T{hour + 1:02d}0000"
    return ICS.format(uid=uid, summary=summary, start=start, end=end)


def event(uid: str, title: str, calendar_id: str, day: int = 3) -> dict[str, Any]:
    return {
        "@type": "Event",
        "uid": uid,
        "title": title,
        "start": f"2026-12-{day:02d}T09:00:00",
        "timeZone": "Europe/Berlin",
        "duration": "PT1H",
        "calendarIds": {calendar_id: True},
    }


def _account(acct: Any) -> dict[str, Any]:
    return {"username": acct.username, "password": acct.password}


@pytest.mark.asyncio
async def test_seed_usage(cyrus_account: Any, kind: str) -> None:
    async with open_api(kind, cyrus_account.url, **_account(cyrus_account)) as api:
        calendars = await api.get_calendars()
        assert calendars
        cal = calendars[0]
        uid = "seed-1@example.com"
        event_id = await api.create_event(cal.id, ics(uid, "Seed event"))
        obj = await api.get_event(event_id)
        assert obj.id == event_id
        assert obj.parent is None
        assert obj.data["title"] == "Seed event"
        assert obj.data["calendarIds"] == {cal.id: True}
        vevent = obj.get_icalendar_instance().walk("VEVENT")[0]
        assert str(vevent["SUMMARY"]) == "Seed event"

        found = await api.search_events(start="2026-12-03T00:00:00", end="2026-12-04T00:00:00")
        assert [o.id for o in found] == [event_id]
        assert await api.search_events(start="2026-12-05T00:00:00") == []
        assert await api.search_events(end="2026-12-02T00:00:00") == []
        assert [o.id for o in await api.search_events(calendar_id=cal.id)] == [event_id]

        in_cal = await api.run(cal.search(start="2026-12-01T00:00:00"))
        assert [o.parent for o in in_cal] == [cal]
        by_uid = await api.run(cal.get_object_by_uid(uid))
        assert by_uid.id == event_id
        with pytest.raises(JMAPNotFoundError):
            await api.run(cal.get_object_by_uid("no-such-uid"))

        token = await api.get_sync_token()
        await api.update_event(event_id, ics(uid, "Renamed"))
        assert (await api.get_event(event_id)).data["title"] == "Renamed"
        added, modified, deleted = await api.get_objects_by_sync_token(token)
        assert added == []
        assert [o.id for o in modified] == [event_id]
        assert deleted == []

        await api.delete_event(event_id)
        with pytest.raises(JMAPMethodError):
            await api.get_event(event_id)


@pytest.mark.asyncio
async def test_edit_icalendar_instance_and_save(cyrus_account: Any, kind: str) -> None:
    async with open_api(kind, cyrus_account.url, **_account(cyrus_account)) as api:
        cal = (await api.get_calendars())[0]
        event_id = await api.run(cal.add_event(ics("edit-1", "Before")))
        obj: JMAPCalendarObject[Any] = await api.get_event(event_id)
        with obj.edit_icalendar_instance() as ical:
            ical.walk("VEVENT")[0]["SUMMARY"] = "After"
        assert obj.data["title"] == "After"
        await api.run(obj.save())
        assert (await api.get_event(event_id)).data["title"] == "After"


@pytest.mark.asyncio
async def test_sync_api_listing_changes_and_batch_set(cyrus_account: Any, kind: str) -> None:
    async with open_api(kind, cyrus_account.url, **_account(cyrus_account)) as api:
        cal_id = await api.create_calendar("Sync target", "#336699")
        events, state = await api.get_all_events(cal_id)
        assert events == []
        result = await api.set_events(
            create={
                "one": event("sync-1", "One", cal_id),
                "two": event("sync-2", "Two", cal_id, day=4),
                "bad": {**event("sync-3", "Bad", cal_id), "start": "not a date"},
            }
        )
        assert set(result.created) == {"one", "two"}
        assert set(result.not_created) == {"bad"}
        assert result.not_created["bad"].object_id == "bad"
        one, two = result.created["one"]["id"], result.created["two"]["id"]

        changes = await api.event_changes(state)
        assert set(changes.created) == {one, two}
        assert changes.old_state == state

        update = {one: {**event("sync-1", "One again", cal_id)}}
        result = await api.set_events(update=update, destroy=[two])
        assert result.ok
        later = await api.event_changes(changes.new_state)
        assert later.updated == (one,)
        assert later.destroyed == (two,)

        got = await api.get_events([one, two])
        assert [e["title"] for e in got] == ["One again"]
        assert got[0]["calendarIds"] == {cal_id: True}
        assert got[0]["@type"] == "Event"
        ids, _ = await api.get_all_event_ids(cal_id)
        assert ids == [one]

        calendars, _ = await api.fetch_calendars()
        assert {c["id"]: c.get("color") for c in calendars}[cal_id] == "#336699"
        await api.update_calendar(cal_id, {"name": "Renamed"})
        assert any(c.name == "Renamed" for c in await api.get_calendars())
        await api.delete_calendar(cal_id)
        assert cal_id not in [c.id for c in await api.get_calendars()]


@pytest.mark.asyncio
async def test_recurring_event_round_trips_in_ietf_form(cyrus_account: Any, kind: str) -> None:
    async with open_api(kind, cyrus_account.url, **_account(cyrus_account)) as api:
        rule = {"@type": "RecurrenceRule", "frequency": "weekly", "count": 4}
        alert = {"@type": "Alert", "trigger": {"offset": "-PT15M"}, "action": "display"}
        ev = {**event("rec-1", "Weekly", "Default"), "recurrenceRules": [rule]}
        ev["alerts"] = {"a1": alert}
        result = await api.set_events(create={"r": ev})
        assert result.ok, result
        got = (await api.get_events([result.created["r"]["id"]]))[0]
        assert got["recurrenceRules"][0]["frequency"] == "weekly"
        assert got["recurrenceRules"][0]["count"] == 4
        assert got["alerts"]["a1"]["trigger"]["@type"] == "OffsetTrigger"
        assert "recurrenceRule" not in got


@pytest.mark.asyncio
async def test_query_pages_past_max_objects_in_get(cyrus_account: Any, kind: str) -> None:
    async with open_api(kind, cyrus_account.url, **_account(cyrus_account)) as api:
        create = {str(i): event(f"page-{i}", f"E{i}", "Default", day=1 + i) for i in range(5)}
        assert (await api.set_events(create=create)).ok
        session = await api.get_session()
        # Pretend the server allows only 2 objects per get, to make the client page.
        api.client._state.session = replace(
            session, limits=replace(session.limits, max_objects_in_get=2)
        )
        found = await api.search_events()
        assert sorted(o.data["title"] for o in found) == [f"E{i}" for i in range(5)]
        events, _ = await api.get_all_events()
        assert len(events) == 5


@pytest.mark.asyncio
async def test_wrong_password_is_an_auth_error(cyrus_account: Any, kind: str) -> None:
    async with open_api(
        kind, cyrus_account.url, username=cyrus_account.username, password="wrong-secret"
    ) as api:
        with pytest.raises(JMAPAuthError) as info:
            await api.get_calendars()
        assert "wrong-secret" not in str(info.value)
        assert "wrong-secret" not in repr(api.client)


@pytest.mark.asyncio
async def test_tasks_are_a_capability_error_on_cyrus(cyrus_account: Any, kind: str) -> None:
    async with open_api(kind, cyrus_account.url, **_account(cyrus_account)) as api:
        with pytest.raises(JMAPCapabilityError):
            await api.get_task_lists()


@pytest.mark.asyncio
async def test_deleting_a_calendar_then_changes_from_old_state(
    cyrus36_account: Any, kind: str
) -> None:
    # Cyrus 3.6 answers cannotCalculateChanges after a calendar with events is destroyed.
    async with open_api(kind, cyrus36_account.url, **_account(cyrus36_account)) as api:
        cal_id = await api.create_calendar("Doomed")
        assert (await api.set_events(create={"x": event("doomed-1", "D", cal_id)})).ok
        state = await api.get_event_state()
        await api.delete_calendar(cal_id)
        try:
            changes = await api.event_changes(state)
        except CannotCalculateChanges:
            return  # the documented answer: the caller lists everything again
        assert changes.destroyed  # or, if the server can tell, the event is reported gone


@pytest.mark.asyncio
async def test_change_feed_pages_on_the_real_server(cyrus_account: Any, kind: str) -> None:
    async with open_api(kind, cyrus_account.url, **_account(cyrus_account)) as api:
        state = await api.get_event_state()
        create = {str(i): event(f"feed-{i}", f"F{i}", "Default", day=1 + i) for i in range(5)}
        result = await api.set_events(create=create)
        assert result.ok
        ids = {v["id"] for v in result.created.values()}
        changes = await api.event_changes(state, max_changes=2)
        assert set(changes.created) == ids
        assert changes.updated == ()
        again = await api.event_changes(changes.new_state)
        assert again.empty


@pytest.mark.asyncio
async def test_scheduling_event_is_stored_without_sending_mail(
    cyrus_account: Any, kind: str
) -> None:
    async with open_api(kind, cyrus_account.url, **_account(cyrus_account)) as api:
        me = f"mailto:{cyrus_account.username}@example.com"
        participants = {
            "org": {
                "@type": "Participant",
                "name": "Me",
                "sendTo": {"imip": me},
                "roles": {"owner": True, "attendee": True},
                "participationStatus": "accepted",
            },
            "guest": {
                "@type": "Participant",
                "name": "Guest",
                "sendTo": {"imip": "mailto:guest@example.net"},
                "roles": {"attendee": True},
                "participationStatus": "needs-action",
            },
        }
        ev = {**event("meet-1", "Meeting", "Default"), "participants": participants}
        result = await api.set_events(create={"m": ev})
        assert result.ok, result
        got = (await api.get_events([result.created["m"]["id"]]))[0]
        addresses = {p["sendTo"]["imip"].lower() for p in got["participants"].values()}
        assert "mailto:guest@example.net" in addresses
        assert got["replyTo"]["imip"].lower() == me


@pytest.mark.asyncio
async def test_free_text_search(cyrus_account: Any, kind: str) -> None:
    async with open_api(kind, cyrus_account.url, **_account(cyrus_account)) as api:
        cal = (await api.get_calendars())[0]
        wanted = await api.create_event(cal.id, ics("text-1", "Quarterly zebra review"))
        await api.create_event(cal.id, ics("text-2", "Lunch", day=4))
        # The server indexes text after the write; ask again for a little while.
        found: list[Any] = []
        for _ in range(50):
            found = await api.search_events(text="zebra")
            if found:
                break
            await asyncio.sleep(0.1)
        assert [o.id for o in found] == [wanted]


@pytest.mark.asyncio
async def test_patches_replace_rules_and_move_between_calendars(
    cyrus_account: Any, kind: str
) -> None:
    async with open_api(kind, cyrus_account.url, **_account(cyrus_account)) as api:
        other = await api.create_calendar("Other")
        rule = {"@type": "RecurrenceRule", "frequency": "daily", "count": 5}
        result = await api.set_events(
            create={"r": {**event("ptr-1", "Daily", "Default"), "recurrenceRules": [rule]}}
        )
        eid = result.created["r"]["id"]
        # Arrays are replaced whole (RFC 8620 §5.3); maps take pointer patches.
        patch = {
            "recurrenceRules": [{**rule, "count": 2}],
            "title": "Two",
            f"calendarIds/{other}": True,
            "calendarIds/Default": None,
        }
        result = await api.set_events(update={eid: patch})
        assert result.ok, result
        got = (await api.get_events([eid]))[0]
        assert got["recurrenceRules"][0]["count"] == 2
        assert got["title"] == "Two"
        assert got["calendarIds"] == {other: True}


@pytest.mark.asyncio
async def test_event_with_x_properties_is_created(cyrus_account: Any, kind: str) -> None:
    # Regression: the converter keeps X- properties in a vendor property, which Cyrus refuses
    # (invalidProperties); the create must still succeed, the rest of the event intact.
    text = ics("xprop-1@example.com", "With X-props").replace(
        "SUMMARY:", "X-MOZ-GENERATION:3\nX-CUSTOM;X-P=1:kept locally\nSUMMARY:"
    )
    async with open_api(kind, cyrus_account.url, **_account(cyrus_account)) as api:
        cal = (await api.get_calendars())[0]
        event_id = await api.create_event(cal.id, text)
        obj = await api.get_event(event_id)
        assert obj.data["title"] == "With X-props"
        assert obj.data["uid"] == "xprop-1@example.com"


@pytest.mark.asyncio
async def test_a_listing_hands_out_each_page_as_it_arrives(
    cyrus_account: Any, kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Cyrus 3.10 pages by position; 3.6 ignores position, so the listing falls back to all ids
    # at once and gets them in chunks: each event must still be handed out exactly once.
    monkeypatch.setattr(flows, "STREAM_PAGE", 3)
    async with open_api(kind, cyrus_account.url, **_account(cyrus_account)) as api:
        cal_id = await api.create_calendar("Paged", None)
        created = await api.set_events(
            create={f"e{i}": event(f"paged-{i}", f"Paged {i}", cal_id, day=i + 1) for i in range(8)}
        )
        assert len(created.created) == 8
        pages: list[list[dict[str, Any]]] = []
        events, state = await api.get_all_events(cal_id, on_page=pages.append)
        handed = [e["id"] for p in pages for e in p]
        assert all(1 <= len(p) <= 3 for p in pages), [len(p) for p in pages]
        assert sorted(handed) == sorted(e["id"] for e in events)
        assert len(set(handed)) == len(handed) == 8
        plain, plain_state = await api.get_all_events(cal_id)
        assert sorted(e["id"] for e in plain) == sorted(handed)
        assert state == plain_state
