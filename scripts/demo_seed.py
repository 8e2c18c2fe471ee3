"""Seed the demo account with a few events around today (idempotent: fixed UIDs)."""

from __future__ import annotations

import os
from datetime import date, timedelta

from jmapsyncd.errors import JMAPNotFoundError
from jmapsyncd.jmap import get_jmap_client

EVENTS = [
    (
        "demo-standup@jmapsyncd",
        1,
        "DTSTART;TZID=Europe/Berlin:{d}T093000\nDURATION:PT15M\n"
        "RRULE:FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR",
        "Stand-up",
    ),
    (
        "demo-conference@jmapsyncd",
        3,
        "DTSTART;VALUE=DATE:{d}\nDTEND;VALUE=DATE:{e}",
        "JMAP conference",
    ),
    (
        "demo-dentist@jmapsyncd",
        5,
        "DTSTART;TZID=Europe/Berlin:{d}T140000\nDURATION:PT1H\n"
        "BEGIN:VALARM\nACTION:DISPLAY\nDESCRIPTION:Dentist\nTRIGGER:-PT30M\nEND:VALARM",
        "Dentist",
    ),
]


def main() -> None:
    client = get_jmap_client(
        url=os.environ["JMAPSYNCD_URL"],
        username=os.environ["JMAPSYNCD_USERNAME"],
        password=os.environ["JMAPSYNCD_PASSWORD"],
    )
    assert client is not None
    with client:
        calendar = client.get_calendars()[0]
        for uid, offset, when, title in EVENTS:
            try:
                calendar.get_object_by_uid(uid)
                continue  # seeded by an earlier run
            except JMAPNotFoundError:
                pass
            day = date.today() + timedelta(days=offset)
            body = when.format(
                d=day.strftime("%Y%m%d"), e=(day + timedelta(days=1)).strftime("%Y%m%d")
            )
            # VALARM must close inside the VEVENT, so split the timing lines from the alarm.
            timing, _, alarm = body.partition("BEGIN:VALARM")
            alarm = "BEGIN:VALARM" + alarm if alarm else ""
            ical = "\r\n".join(
                [
                    "BEGIN:VCALENDAR",
                    "VERSION:2.0",
                    "PRODID:-//jmapsyncd demo//EN",
                    "BEGIN:VEVENT",
                    f"UID:{uid}",
                    "DTSTAMP:20260101T000000Z",
                    *timing.strip().splitlines(),
                    f"SUMMARY:{title}",
                    *alarm.strip().splitlines(),
                    "END:VEVENT",
                    "END:VCALENDAR",
                    "",
                ]
            )
            client.create_event(calendar.id, ical)
            print(f"seeded: {title}")


if __name__ == "__main__":
    main()
