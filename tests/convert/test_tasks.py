"""VTODO ⇄ Task (RFC 8984 §5.2; RFC 5545 §3.6.2, §3.8.2.3, §3.8.1.8, §3.8.1.11; RFC 9253-era
ESTIMATED-DURATION)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from jmapsyncd.convert import ical_to_jscal, jscal_to_ical

FIXTURES = Path(__file__).parent.parent / "fixtures" / "convert"


def _tasks() -> dict[str, dict[str, Any]]:
    return {t["uid"]: t for t in ical_to_jscal((FIXTURES / "task.ics").read_text())}


def test_open_task() -> None:
    t = _tasks()["task-open@example.com"]
    assert t["@type"] == "Task"
    assert (t["start"], t["due"], t["timeZone"]) == (
        "2024-04-01T09:00:00",
        "2024-04-05T17:00:00",
        "Europe/Berlin",
    )
    assert t["progress"] == "in-process"
    assert t["percentComplete"] == 40
    assert t["estimatedDuration"] == "PT6H"
    assert t["priority"] == 1
    assert t["relatedTo"] == {
        "project@example.com": {"@type": "Relation", "relation": {"parent": True}}
    }


def test_completed_task() -> None:
    t = _tasks()["task-done@example.com"]
    assert t["progress"] == "completed"
    assert t["progressUpdated"] == "2024-03-09T18:15:00Z"
    assert t["showWithoutTime"] is True
    assert t["due"] == "2024-03-10T00:00:00"


@pytest.mark.parametrize(
    ("progress", "status"),
    [
        ("needs-action", "NEEDS-ACTION"),
        ("in-process", "IN-PROCESS"),
        ("completed", "COMPLETED"),
        ("cancelled", "CANCELLED"),
    ],
)
def test_progress_is_status(progress: str, status: str) -> None:
    text = jscal_to_ical({"@type": "Task", "uid": "p", "progress": progress})
    assert f"STATUS:{status}\r\n" in text
    assert ical_to_jscal(text)[0]["progress"] == progress


def test_failed_progress_is_kept() -> None:
    # RFC 8984 has "failed", iCalendar has no such STATUS
    text = jscal_to_ical({"@type": "Task", "uid": "p", "progress": "failed"})
    assert "STATUS:" not in text
    assert ical_to_jscal(text)[0]["progress"] == "failed"


def test_vtodo_duration_becomes_due() -> None:
    text = (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:x\r\nBEGIN:VTODO\r\nUID:d\r\n"
        "DTSTAMP:20240101T000000Z\r\nDTSTART:20240101T100000Z\r\nDURATION:PT2H\r\n"
        "END:VTODO\r\nEND:VCALENDAR\r\n"
    )
    [t] = ical_to_jscal(text)
    assert t["due"] == "2024-01-01T12:00:00"
    assert "DUE:20240101T120000Z\r\n" in jscal_to_ical(t)


def _todo(*lines: str) -> str:
    body = "\r\n".join(lines)
    return (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:x\r\nBEGIN:VTODO\r\nUID:u0\r\n"
        f"{body}\r\nEND:VTODO\r\nEND:VCALENDAR\r\n"
    )


def test_vtodo_duration_parameters_move_to_due() -> None:
    [t] = ical_to_jscal(_todo("DTSTART:20240101T100000", "DURATION;X-Z=1:PT1H"))
    assert t["due"] == "2024-01-01T11:00:00"
    assert "DUE;X-Z=1:20240101T110000" in jscal_to_ical(t)


def test_hours_after_a_date_start_are_not_cut_to_a_date_due() -> None:
    # RFC 5545 §3.3.6: a DATE start takes whole days; a DUE one hour in has no DATE form, and
    # writing DUE;VALUE=DATE lost the hour. The DURATION travels unmapped instead.
    [t] = ical_to_jscal(_todo("DTSTART;VALUE=DATE:20240101", "DURATION;X-Z=1:PT1H"))
    assert "due" not in t
    out = jscal_to_ical(t)
    assert "DURATION;X-Z=1:PT1H" in out
    assert "DUE" not in out


def test_tasks_round_trip() -> None:
    tasks = list(_tasks().values())
    assert ical_to_jscal(jscal_to_ical(tasks)) == tasks


def test_task_participant_progress() -> None:
    # RFC 8984 §5.2.5: PARTSTAT IN-PROCESS/COMPLETED on a VTODO is the participant's progress
    text = (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:x\r\nBEGIN:VTODO\r\nUID:p\r\n"
        "DTSTAMP:20240101T000000Z\r\nATTENDEE;PARTSTAT=COMPLETED:mailto:a@example.com\r\n"
        "ATTENDEE;PARTSTAT=IN-PROCESS:mailto:b@example.com\r\nEND:VTODO\r\nEND:VCALENDAR\r\n"
    )
    [task] = ical_to_jscal(text)
    people = {p["email"]: p for p in task["participants"].values()}
    assert people["a@example.com"]["progress"] == "completed"
    assert people["a@example.com"]["participationStatus"] == "accepted"
    assert people["b@example.com"]["progress"] == "in-process"
    out = jscal_to_ical(task)
    assert "ATTENDEE;PARTSTAT=COMPLETED:mailto:a@example.com\r\n" in out
    assert ical_to_jscal(out) == [task]
