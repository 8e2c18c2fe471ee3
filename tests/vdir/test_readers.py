"""khal and todoman read what the vdir writes: items, displayname and color."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from jmapsyncd.vdir import Item, Vdir

pytestmark = pytest.mark.e2e


def tool(name: str) -> str:
    beside = Path(sys.executable).parent / name
    found = str(beside) if beside.exists() else shutil.which(name)
    if found is None:
        pytest.skip(f"{name} is not installed")
    return found


def run(argv: list[str], home: Path) -> str:
    env = {"HOME": str(home), "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "TZ": "UTC"}
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


EVENT = (
    "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//jmapsyncd tests//EN\r\nBEGIN:VEVENT\r\n"
    "UID:{uid}\r\nDTSTAMP:20260101T000000Z\r\nDTSTART:20261125T100000Z\r\n"
    "DTEND:20261125T110000Z\r\nSUMMARY:Dentist\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
)
TODO = (
    "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//jmapsyncd tests//EN\r\nBEGIN:VTODO\r\n"
    "UID:{uid}\r\nDTSTAMP:20260101T000000Z\r\nSUMMARY:Buy milk\r\nSTATUS:NEEDS-ACTION\r\n"
    "END:VTODO\r\nEND:VCALENDAR\r\n"
)


def test_khal_lists_an_event_from_a_hashed_name_under_the_displayname(tmp_path: Path) -> None:
    vdir = Vdir(tmp_path / "vdir")
    coll = vdir.create_collection("../cal/1")
    coll.set_displayname("Büro")
    coll.set_color("tomato")
    coll.upload(Item(EVENT.format(uid="../evil/uid")))
    conf = tmp_path / "khal.conf"
    conf.write_text(
        "[calendars]\n[[jmap]]\n"
        f"path = {vdir.root}/*\ntype = discover\ncolor = auto\n"
        "[locale]\ntimeformat = %H:%M\ndateformat = %Y-%m-%d\n"
        "longdateformat = %Y-%m-%d\ndatetimeformat = %Y-%m-%d %H:%M\n"
        "longdatetimeformat = %Y-%m-%d %H:%M\ndefault_timezone = UTC\nlocal_timezone = UTC\n"
        f"[sqlite]\npath = {tmp_path / 'khal.db'}\n"
    )
    khal = tool("khal")
    assert run([khal, "-c", str(conf), "printcalendars"], tmp_path).split() == ["Büro"]
    listing = run([khal, "-c", str(conf), "list", "2026-11-25", "1d"], tmp_path)
    assert "10:00-11:00 Dentist" in listing


def test_todoman_lists_a_task_with_the_list_name_and_colour(tmp_path: Path) -> None:
    vdir = Vdir(tmp_path / "vdir")
    coll = vdir.create_collection("tasks-1")
    coll.set_displayname("Chores")
    coll.set_color("#0f0")
    coll.upload(Item(TODO.format(uid="t1@example.com")))
    conf = tmp_path / "todoman.py"
    conf.write_text(f'path = "{vdir.root}/*"\ncache_path = "{tmp_path / "todo.sqlite"}"\n')
    out = run([tool("todo"), "--config", str(conf), "--porcelain", "list"], tmp_path)
    [task] = json.loads(out)
    assert (task["summary"], task["list"], task["list_colour"]) == ("Buy milk", "Chores", "#00FF00")
