"""Varied test events for the sync benchmark, and the calls that put them on the server.

Deterministic (seeded RNG). The mix, per event: about 30 % recurring (daily, weekly with BYDAY,
monthly, yearly; COUNT or UNTIL; some with an exception and a moved occurrence), 15 % all-day
(one or several days), half with one or two alerts, 30 % with 2-6 participants (all
``@example.com``), some with a location and a multi-line description, in five time zones plus UTC.
Created with ``sendSchedulingMessages: false``, many creates per request; not timed.
"""

from __future__ import annotations

import random
import time
from typing import Any

from bench._jmap import BareJmap

ZONES = ["Europe/Berlin", "America/New_York", "Asia/Tokyo", "Australia/Sydney", "Europe/London"]
WORDS = [
    "budget",
    "review",
    "standup",
    "lunch",
    "planning",
    "dentist",
    "release",
    "retro",
    "offsite",
    "training",
    "interview",
    "call",
]
DAYS = ["mo", "tu", "we", "th", "fr"]


def make_event(i: int, rnd: random.Random, calendar_id: str) -> dict[str, Any]:
    year = 2026 + rnd.randrange(2)
    month = 1 + rnd.randrange(12)
    day = 1 + rnd.randrange(27)
    kind = rnd.random()
    title = f"{rnd.choice(WORDS).title()} {rnd.choice(WORDS)} #{i}"
    ev: dict[str, Any] = {
        "@type": "Event",
        "uid": f"bench-{i:06d}@jmapsyncd.example.com",
        "calendarIds": {calendar_id: True},
        "title": title,
    }
    if kind < 0.15:  # all-day, one or several days
        ev["start"] = f"{year}-{month:02d}-{day:02d}T00:00:00"
        ev["showWithoutTime"] = True
        ev["duration"] = f"P{rnd.choice([1, 1, 1, 2, 3])}D"
    else:
        hour = 7 + rnd.randrange(11)
        minute = rnd.choice([0, 15, 30, 45])
        ev["start"] = f"{year}-{month:02d}-{day:02d}T{hour:02d}:{minute:02d}:00"
        zone = rnd.random()
        if zone < 0.85:
            ev["timeZone"] = rnd.choice(ZONES)
        else:
            ev["timeZone"] = "Etc/UTC"
        ev["duration"] = rnd.choice(["PT30M", "PT45M", "PT1H", "PT1H30M", "PT2H"])
        if kind < 0.45:  # recurring
            freq = rnd.choice(["daily", "weekly", "weekly", "monthly", "yearly"])
            rule: dict[str, Any] = {"@type": "RecurrenceRule", "frequency": freq}
            if freq == "weekly":
                rule["byDay"] = [
                    {"@type": "NDay", "day": d} for d in sorted(rnd.sample(DAYS, rnd.randint(1, 3)))
                ]
            if rnd.random() < 0.5:
                rule["count"] = rnd.randint(3, 40)
            else:
                rule["until"] = f"{year + 1}-{month:02d}-{day:02d}T00:00:00"
            if rnd.random() < 0.2:
                rule["interval"] = 2
            ev["recurrenceRules"] = [rule]
            if freq == "daily" and rnd.random() < 0.5:
                # first occurrence moved by an hour, second one cancelled
                first = ev["start"]
                moved = f"{first[:11]}{int(first[11:13]) + 1:02d}{first[13:]}"
                second = f"{year}-{month:02d}-{day + 1:02d}{first[10:]}"
                ev["recurrenceOverrides"] = {
                    first: {"start": moved, "title": title + " (moved)"},
                    second: {"excluded": True},
                }
    if rnd.random() < 0.5:
        alerts: dict[str, Any] = {}
        for n in range(rnd.randint(1, 2)):
            alerts[f"a{n}"] = {
                "@type": "Alert",
                "trigger": {
                    "@type": "OffsetTrigger",
                    "offset": rnd.choice(["-PT5M", "-PT15M", "-PT1H", "-P1D"]),
                    "relativeTo": "start",
                },
                "action": "display",
            }
        ev["alerts"] = alerts
    if rnd.random() < 0.3:
        parts: dict[str, Any] = {}
        for n in range(rnd.randint(2, 6)):
            email = f"person{rnd.randrange(500)}.{n}@example.com"
            part: dict[str, Any] = {
                "@type": "Participant",
                "name": f"Person {n}",
                "email": email,
                "sendTo": {"imip": f"mailto:{email}"},
                "roles": {"owner": True, "attendee": True} if n == 0 else {"attendee": True},
                "participationStatus": "accepted"
                if n == 0
                else rnd.choice(["needs-action", "accepted", "declined", "tentative"]),
            }
            if n:
                part["expectReply"] = True
            parts[f"p{n}"] = part
        ev["participants"] = parts
    if rnd.random() < 0.3:
        ev["locations"] = {"l1": {"@type": "Location", "name": f"Room {rnd.randrange(40)}"}}
    if rnd.random() < 0.4:
        ev["description"] = f"Agenda for {title}:\n- item one\n- item two, with a comma; and more"
    return ev


def default_calendar(jmap: BareJmap) -> str:
    cals = jmap.one("Calendar/get", {"ids": None})["list"]
    return str(cals[0]["id"])


def seed(jmap: BareJmap, n: int, seed_value: int = 8620, per_call: int = 500) -> list[str]:
    """Create n events; return their server ids in creation order."""
    cal = default_calendar(jmap)
    rnd = random.Random(seed_value)
    events = [make_event(i, rnd, cal) for i in range(n)]
    ids: list[str] = []
    for start in range(0, n, per_call):
        chunk = events[start : start + per_call]
        args = {
            "accountId": jmap.account_id,
            "sendSchedulingMessages": False,
            "create": {f"c{start + k}": ev for k, ev in enumerate(chunk)},
        }
        result = jmap.call([["CalendarEvent/set", args, "0"]])[0][1]
        if result.get("notCreated"):
            first = next(iter(result["notCreated"].items()))
            raise RuntimeError(f"seeding refused {len(result['notCreated'])} events: {first}")
        created = result["created"]
        ids.extend(created[f"c{start + k}"]["id"] for k in range(len(chunk)))
    return ids


def touch(jmap: BareJmap, ids: list[str], label: str) -> str:
    """Change the title of each event in ids (one request); return the new CalendarEvent state."""
    args = {
        "accountId": jmap.account_id,
        "sendSchedulingMessages": False,
        "update": {eid: {"title": f"{label} {k} {time.time_ns()}"} for k, eid in enumerate(ids)},
    }
    result = jmap.call([["CalendarEvent/set", args, "0"]])[0][1]
    if result.get("notUpdated"):
        raise RuntimeError(f"update refused: {next(iter(result['notUpdated'].items()))}")
    return str(result["newState"])


def event_state(jmap: BareJmap) -> str:
    return str(jmap.one("CalendarEvent/get", {"ids": []})["state"])
