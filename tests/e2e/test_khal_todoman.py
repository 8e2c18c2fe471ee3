"""End to end: the ``jmapsyncd`` command between a real JMAP server and khal / todoman.

Each test runs the installed commands as subprocesses on a fresh account of each Cyrus dialect
(tasks: the fake JMAP Tasks server, since no Cyrus here has tasks).
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import uuid
from pathlib import Path

import pytest

from tests.conftest import ServerAccount
from tests.e2e.conftest import BIN, Setup, make_setup, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

EVENT = """\
BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//jmapsyncd tests//EN
BEGIN:VEVENT
UID:{uid}
DTSTAMP:20260101T000000Z
DTSTART;TZID=Europe/Berlin:{day}T100000
DURATION:PT1H
SUMMARY:{title}
END:VEVENT
END:VCALENDAR
"""


def _server_event(setup: Setup, title: str, day: str = "20261207") -> tuple[str, str]:
    uid = f"{uuid.uuid4()}@e2e.test"
    with setup.client() as client:
        [cal] = client.get_calendars()
        event_id = client.create_event(cal.id, EVENT.format(uid=uid, day=day, title=title))
    return uid, event_id


def _server_titles(setup: Setup) -> dict[str, str]:
    with setup.client() as client:
        return {o.data["uid"]: o.data.get("title", "") for o in client.search_events()}


def _retitle(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert f"SUMMARY:{old}" in text
    path.write_text(text.replace(f"SUMMARY:{old}", f"SUMMARY:{new}"))


def test_server_events_appear_as_files_and_in_khal(setup: Setup) -> None:
    uid, _ = _server_event(setup, "Dentist")
    out = setup.sync()
    assert "1 downloaded" in out
    [folder] = setup.folders()
    assert (folder / "displayname").read_text().strip()
    [path] = setup.ics_files()
    assert f"UID:{uid}" in path.read_text()
    assert "Dentist" in setup.khal("list", "2026-12-07", "1d")


def test_khal_new_reaches_the_server_with_its_uid(setup: Setup) -> None:
    setup.sync()  # creates the folders
    [folder] = setup.folders()
    name = (folder / "displayname").read_text().strip()
    setup.khal("new", "-a", name, "2026-12-08", "09:00", "10:00", "Made with khal")
    [path] = setup.ics_files()
    uid = re.search(r"^UID:(.+)$", path.read_text(), re.M)
    assert uid is not None
    assert "1 uploaded" in setup.sync()
    assert _server_titles(setup) == {uid.group(1).strip(): "Made with khal"}
    assert "0 uploaded" in setup.sync()  # nothing left to push


def test_edits_and_deletions_travel_both_ways(setup: Setup) -> None:
    uid, event_id = _server_event(setup, "Original")
    setup.sync()
    [path] = setup.ics_files()

    # server edit -> file and khal
    with setup.client() as client:
        client.update_event(event_id, EVENT.format(uid=uid, day="20261207", title="Server edit"))
    setup.sync()
    assert "Server edit" in setup.khal("list", "2026-12-07", "1d")

    # local edit -> server
    _retitle(path, "Server edit", "Local edit")
    assert "1 uploaded" in setup.sync()
    assert _server_titles(setup) == {uid: "Local edit"}

    # local delete -> server
    path.unlink()
    assert "1 deleted on the server" in setup.sync()
    assert _server_titles(setup) == {}

    # server delete -> file
    _uid2, event_id2 = _server_event(setup, "Short-lived")
    setup.sync()
    assert len(setup.ics_files()) == 1
    with setup.client() as client:
        client.delete_event(event_id2)
    assert "1 deleted locally" in setup.sync()
    assert setup.ics_files() == []
    assert "Short-lived" not in setup.khal("list", "2026-12-01", "30d")


def test_a_conflict_keeps_both_versions(setup: Setup) -> None:
    uid, event_id = _server_event(setup, "Before")
    setup.sync()
    [path] = setup.ics_files()
    _retitle(path, "Before", "Mine")
    with setup.client() as client:
        client.update_event(event_id, EVENT.format(uid=uid, day="20261207", title="Theirs"))
    out = setup.sync()
    assert "1 conflict" in out
    titles = sorted(_server_titles(setup).values())
    assert titles == ["Mine", "Theirs"]
    local = sorted(re.search(r"SUMMARY:(.*)", p.read_text()).group(1) for p in setup.ics_files())  # type: ignore[union-attr]
    assert local == ["Mine", "Theirs"]
    status = json.loads(setup.jmapsyncd("status", "--json").stdout)
    [conflict] = [c for col in status["collections"] for c in col["conflicts"]]
    assert conflict["resolution"] == "keep-both"
    assert conflict["copy"]


def test_restart_resumes_from_the_stored_state(setup: Setup) -> None:
    _server_event(setup, "First")
    assert "(full listing)" in setup.sync()
    _server_event(setup, "Second", day="20261209")
    out = setup.sync()
    assert "(full listing)" not in out
    assert "1 downloaded" in out
    assert len(setup.ics_files()) == 2


def test_status_and_calendars_commands(setup: Setup) -> None:
    setup.sync()
    calendars = setup.jmapsyncd("calendars")
    assert calendars.returncode == 0
    assert "calendar" in calendars.stdout
    status = setup.jmapsyncd("status")
    assert status.returncode == 0
    assert "item(s) in" in status.stdout
    health = setup.jmapsyncd("status", "--health")
    assert health.returncode == 0, health.stdout


def test_the_daemon_pushes_local_edits_and_pulls_server_changes(setup: Setup) -> None:
    setup = make_setup(setup.account, setup.home, pull_interval=15)
    log_path = setup.home / "daemon.log"
    with open(log_path, "w") as log_file:
        proc = subprocess.Popen(
            [str(BIN / "jmapsyncd"), "--config", str(setup.config), "-v", "run"],
            stdout=log_file,
            stderr=subprocess.STDOUT,
            env={"HOME": str(setup.home), "PATH": "/usr/bin:/bin", "TZ": "Europe/Berlin"},
        )
    try:
        wait_for(lambda: bool(setup.vdir.exists() and setup.folders()), 60, "the first sync")
        folder = setup.folders()[0]
        wait_for(lambda: (folder / "displayname").exists(), 30, "the displayname file")
        name = (folder / "displayname").read_text().strip()
        setup.khal("new", "-a", name, "2026-12-10", "09:00", "10:00", "Pushed by the daemon")
        wait_for(
            lambda: "Pushed by the daemon" in _server_titles(setup).values(),
            30,
            "the local event on the server",
        )
        _server_event(setup, "Pulled by the daemon", day="20261211")
        wait_for(
            lambda: any("Pulled by the daemon" in p.read_text() for p in setup.ics_files()),
            60,
            "the server event in the vdir",
        )
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise
    log = log_path.read_text()
    assert code == 0, log
    assert "jmapsyncd stopped" in log
    assert setup.account.password not in log


def test_todoman_tasks_reach_a_server_with_jmap_tasks(
    tasks_server: ServerAccount, tmp_path: Path
) -> None:
    setup = make_setup(tasks_server, tmp_path)
    with setup.client() as client:
        [task_list] = client.get_task_lists()
        client.create_task(task_list["id"], "Water the plants")
    setup.sync()
    lists = {p.name: (p / "displayname").read_text().strip() for p in setup.folders()}
    tasks = json.loads(setup.todo("list", porcelain=True))
    assert [t["summary"] for t in tasks] == ["Water the plants"]
    task_folder = next(
        p for p in setup.folders() if any("VTODO" in f.read_text() for f in p.glob("*.ics"))
    )
    setup.todo("new", "-l", lists[task_folder.name], "Buy milk")
    assert "1 uploaded" in setup.sync()
    with setup.client() as client:
        objects, _state = client.get_all_tasks()
    assert sorted(o["title"] for o in objects) == ["Buy milk", "Water the plants"]
    [done] = [
        t for t in json.loads(setup.todo("list", porcelain=True)) if t["summary"] == "Buy milk"
    ]
    setup.todo("done", str(done["id"]))
    assert "1 uploaded" in setup.sync()
    with setup.client() as client:
        objects, _state = client.get_all_tasks()
    assert {o["title"]: o.get("progress") for o in objects}["Buy milk"] == "completed"
