"""Using the JMAP client: the same calls as python-caldav's JMAP client, sync and async.

Run against a server configured in the environment::

    JMAP_URL=http://127.0.0.1:18310/.well-known/jmap JMAP_USERNAME=alice JMAP_PASSWORD=secret \\
        python examples/jmap_usage.py

(``scripts/jmap-server start`` and ``scripts/jmap-server adduser alice --password secret`` give you
a local server.) The script creates one event, finds it, changes it, and deletes it again.
"""

from __future__ import annotations

import asyncio
import sys
import uuid

from jmapsyncd.jmap import get_async_jmap_client, get_jmap_client

EVENT = """BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//jmapsyncd example//EN
BEGIN:VEVENT
UID:{uid}
DTSTAMP:20261101T000000Z
DTSTART;TZID=Europe/Berlin:20261203T090000
DTEND;TZID=Europe/Berlin:20261203T100000
SUMMARY:{summary}
END:VEVENT
END:VCALENDAR
"""


def sync_example() -> bool:
    client = get_jmap_client()
    if client is None:
        print("set JMAP_URL (and JMAP_USERNAME/JMAP_PASSWORD or JMAP_TOKEN)", file=sys.stderr)
        return False
    uid = f"example-{uuid.uuid4()}"
    with client:
        calendars = client.get_calendars()
        for cal in calendars:
            print(f"calendar {cal.id}: {cal.name}")
        calendar = calendars[0]

        token = client.get_sync_token()
        event_id = calendar.add_event(EVENT.format(uid=uid, summary="Team meeting"))
        print("created", event_id)

        for obj in client.search_events(start="2026-12-03T00:00:00", end="2026-12-04T00:00:00"):
            print("found", obj.id, obj.get_data().get("title"))

        obj = calendar.get_object_by_uid(uid)
        with obj.edit_icalendar_instance() as ical:
            ical.walk("VEVENT")[0]["SUMMARY"] = "Team meeting (moved)"
        obj.save()

        added, modified, deleted = client.get_objects_by_sync_token(token)
        print("since token:", [o.id for o in added], [o.id for o in modified], deleted)

        client.delete_event(event_id)
    return True


async def async_example() -> None:
    client = get_async_jmap_client()
    if client is None:
        return
    async with client:
        calendars = await client.get_calendars()
        events = await calendars[0].search(start="2026-01-01T00:00:00")
        print(f"async: {len(events)} events in {calendars[0].name!r}")


if __name__ == "__main__":
    if sync_example():
        asyncio.run(async_example())
