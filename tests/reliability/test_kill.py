"""``kill -9`` of ``jmapsyncd sync`` at random points of a pass, restarted each time.

Every round queues work on both sides (new, edited and deleted events on the server and in the
vdir, never the same event on both sides, so the expected end state is exact), starts
``jmapsyncd sync`` and kills it with SIGKILL after a random delay while it is still running; the
next round's start is the restart. Rounds alternate between server-only work (the kill lands in
the pull), local-only work (in the push) and both. The delay adapts: when a pass finished before
the kill, the next delays are shorter, so kills land inside passes.

After the last kill, clean passes must bring both sides to exactly the expected events: none
lost, none duplicated, no journal rows left pending, no state row without its file or its server
object, no temporary files, no errors, no conflicts. ``JMAPSYNCD_KILL_LOOPS`` sets the number of
kills (default 8; 50 when ``CI`` is set).
"""

from __future__ import annotations

import os
import random
import signal
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from jmapsyncd.jmap import JMAPClient
from jmapsyncd.state import StateDB
from tests.conftest import ServerAccount
from tests.fakeserver import FakeJMAPServer
from tests.reliability.conftest import (
    Box,
    fake_account,
    ics_event,
    jscal_event,
    kill_loops,
    server_titles,
)

SEED = 300  # events on the server before the first (killed) full download


@dataclass
class Model:
    """What both sides must hold in the end: UID → title (titles are unique)."""

    expected: dict[str, str] = field(default_factory=dict)
    server_ids: dict[str, str] = field(default_factory=dict)  # server-born UID → JMAP id
    deleted_here: set[str] = field(default_factory=set)  # UIDs whose file the test deleted
    counter: int = 0
    rng: random.Random = field(default_factory=lambda: random.Random(os.getpid()))

    def fresh(self, prefix: str) -> str:
        self.counter += 1
        return f"{prefix}-{self.counter}"


def _server_work(client: JMAPClient, calendar: str, model: Model, n_new: int) -> None:
    """New, updated and destroyed server-born events (never one the vdir side touches)."""
    creates: dict[str, dict[str, Any]] = {}
    for _ in range(n_new):
        uid = model.fresh("srv")
        creates[uid] = {**jscal_event(uid, f"{uid} v1"), "calendarIds": {calendar: True}}
    born = sorted(model.server_ids)
    picked = model.rng.sample(born, min(len(born), 16))
    updates = {}
    for uid in picked[:8]:
        version = int(model.expected[uid].rsplit("v", 1)[1]) + 1
        model.expected[uid] = f"{uid} v{version}"
        updates[model.server_ids[uid]] = {"title": model.expected[uid]}
    destroys = [model.server_ids.pop(uid) for uid in picked[8:]]
    for uid in picked[8:]:
        del model.expected[uid]
    result = client.set_events(create=creates, update=updates, destroy=destroys)
    assert result.ok, result
    for uid, answer in result.created.items():
        model.server_ids[uid] = str(answer["id"])
        model.expected[uid] = f"{uid} v1"


def _local_work(folder: Path, model: Model, n_new: int) -> None:
    """New, edited and deleted vdir-born events (never one the server side touches)."""
    for _ in range(n_new):
        uid = model.fresh("loc")
        model.expected[uid] = f"{uid} v1"
        (folder / f"{uid}.ics").write_text(ics_event(uid, model.expected[uid]), encoding="utf-8")
    born = sorted(u for u in model.expected if u.startswith("loc-"))
    picked = model.rng.sample(born, min(len(born), 16))
    for uid in picked[:8]:
        version = int(model.expected[uid].rsplit("v", 1)[1]) + 1
        model.expected[uid] = f"{uid} v{version}"
        # Edited in place, as an editor would (the engine renames nothing it did not name).
        (folder / f"{uid}.ics").write_text(ics_event(uid, model.expected[uid]), encoding="utf-8")
    for uid in picked[8:]:
        (folder / f"{uid}.ics").unlink()
        del model.expected[uid]
        model.deleted_here.add(uid)


def _orphans(box: Box, server_ids: set[str]) -> list[str]:
    """State rows without their file, without their server object, or still pending."""
    problems: list[str] = []
    with StateDB(box.state_db) as db:
        problems += [f"pending {row.status}: {row.href}" for row in db.pending_items()]
        for coll in db.collections():
            folder = box.vdir / coll.folder
            for row in db.items(coll.id):
                if not (folder / row.href).is_file():
                    problems.append(f"row without file: {row.href}")
                if row.jmap_id not in server_ids:
                    problems.append(f"row without server object: {row.href} {row.jmap_id}")
    return problems


def _kill_rounds(
    box: Box, client: JMAPClient, calendar: str, loops: int, command: str = "sync"
) -> dict[str, int]:
    model = Model()
    # The seed: a first full download of SEED events, to be killed too.
    creates = {}
    for _ in range(SEED):
        uid = model.fresh("srv")
        creates[uid] = {**jscal_event(uid, f"{uid} v1"), "calendarIds": {calendar: True}}
    result = client.set_events(create=creates)
    assert result.ok
    for uid, answer in result.created.items():
        model.server_ids[uid] = str(answer["id"])
        model.expected[uid] = f"{uid} v1"

    folder: Path | None = None
    landed = finished = rounds = 0
    high = 2.5  # upper bound of the random delay; shrinks when passes finish first
    while landed < loops and rounds < 3 * loops + 5:
        kind = ("pull", "push", "both")[rounds % 3] if folder is not None else "pull"
        if rounds > 0:
            if kind in ("pull", "both"):
                _server_work(client, calendar, model, 60 if kind == "pull" else 30)
            if kind in ("push", "both") and folder is not None:
                _local_work(folder, model, 60 if kind == "push" else 30)
        rounds += 1
        delay = model.rng.uniform(0.3, high)
        with box.start(command, log=box.home / "kills.log") as proc:
            deadline = time.monotonic() + delay
            while proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.01)
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait(timeout=30)
                landed += 1
            else:
                assert command == "sync", "jmapsyncd run stopped by itself"
                assert proc.returncode == 0, (box.home / "kills.log").read_text()[-2000:]
                finished += 1
                high = max(0.4, high * 0.8)
        if folder is None and box.calendar_folders():
            folder = box.calendar_folders()[0]
    assert landed == loops, f"only {landed} of {loops} kills landed inside a pass"

    # Clean passes: the first settles everything, the second must find nothing to do.
    box.sync_ok()
    second = box.sync_ok()
    assert "0 downloaded, 0 uploaded, 0 deleted locally, 0 deleted on the server, 0 conflict" in (
        second.stdout
    ), second.stdout

    want = Counter(model.expected.values())
    on_server = server_titles(client)
    assert on_server == want, (
        f"server: missing {sorted((want - on_server).elements())[:10]}, "
        f"extra {sorted((on_server - want).elements())[:10]}\n"
        + _diagnose(box, client, [*(want - on_server), *(on_server - want)])
    )
    local = box.local_summaries()
    assert local == want, (
        f"vdir: missing {sorted((want - local).elements())[:10]}, "
        f"extra {sorted((local - want).elements())[:10]}"
    )
    events, _ = client.get_all_events()
    assert _orphans(box, {str(e["id"]) for e in events}) == []
    assert box.temp_files() == []
    status = box.status()
    assert [c["errors"] for c in status["collections"]] == [[]]
    assert [c["conflicts"] for c in status["collections"]] == [[]]
    assert status["collections"][0]["items"] == len(want)
    return {"kills": landed, "finished": finished, "rounds": rounds, "items": len(want)}


def _diagnose(box: Box, client: JMAPClient, titles: list[str]) -> str:
    """Both sides and the state of the events behind ``titles`` (for a failure message)."""
    uids = {t.rpartition(" v")[0] for t in titles}
    lines: list[str] = []
    events, _ = client.get_all_events()
    for e in events:
        if any(str(e.get("uid", "")).startswith(u) for u in uids):
            lines.append(f"server {e.get('id')} uid={e.get('uid')} title={e.get('title')}")
    for path in box.ics_files():
        text = path.read_text(encoding="utf-8", errors="replace")
        if any(f"UID:{u}" in text for u in uids):
            found = [ln for ln in text.splitlines() if ln.startswith(("UID:", "SUMMARY:"))]
            lines.append(f"file {path.name}: {found}")
    with StateDB(box.state_db) as db:
        for coll in db.collections():
            for row in db.items(coll.id):
                if any(str(row.uid or "").startswith(u) for u in uids):
                    lines.append(f"row {row}")
        lines += [f"conflict {c}" for c in db.conflicts()]
    log = (box.home / "kills.log").read_text(encoding="utf-8", errors="replace")
    lines += [ln for ln in log.splitlines() if any(u in ln for u in uids)][:20]
    return "\n".join(lines)


def _report(name: str, counts: dict[str, int]) -> None:
    # Printed for docs/reliability.md (visible with -s or -rA).
    print(f"{name}: {counts}")


@pytest.mark.slow
def test_kill9_during_pull_and_push_fake_server(tmp_path: Path) -> None:
    loops = kill_loops(default=8, ci=50)
    with FakeJMAPServer(dialect="ietf") as srv:
        box = Box(fake_account(srv), tmp_path / "home")
        box.home.mkdir()
        box.write_config()
        with box.client() as client:
            calendar = srv.store.default_calendar_id
            _report("fake", _kill_rounds(box, client, calendar, loops))


@pytest.mark.slow
@pytest.mark.integration
def test_kill9_during_pull_and_push_cyrus310(
    cyrus310_account: ServerAccount, tmp_path: Path
) -> None:
    loops = kill_loops(default=8, ci=50)
    box = Box(cyrus310_account, tmp_path / "home")
    box.home.mkdir()
    box.write_config()
    with box.client() as client:
        calendars, _state = client.fetch_calendars()
        if not calendars:
            calendars = [{"id": client.create_calendar("Calendar")}]
        _report("cyrus-3.10", _kill_rounds(box, client, str(calendars[0]["id"]), loops))


@pytest.mark.slow
def test_kill9_of_the_daemon_fake_server(tmp_path: Path) -> None:
    """``jmapsyncd run`` killed at random points: its start pass, watcher passes, or idle."""
    loops = kill_loops(default=5, ci=20)
    with FakeJMAPServer(dialect="ietf") as srv:
        box = Box(fake_account(srv), tmp_path / "home")
        box.home.mkdir()
        box.write_config()
        with box.client() as client:
            calendar = srv.store.default_calendar_id
            _report("fake run", _kill_rounds(box, client, calendar, loops, command="run"))


def test_a_second_process_is_refused_while_the_daemon_runs(tmp_path: Path) -> None:
    with FakeJMAPServer(dialect="ietf") as srv:
        box = Box(fake_account(srv), tmp_path / "home")
        box.home.mkdir()
        box.write_config()
        log = box.home / "run.log"
        with box.start("run", log=log) as proc:
            deadline = time.monotonic() + 60
            while "jmapsyncd running" not in log.read_text() and time.monotonic() < deadline:
                time.sleep(0.1)
            assert "jmapsyncd running" in log.read_text()
            for command in ("sync", "run"):
                second = box.run(command)
                assert second.returncode == 1, second.stderr
                lines = [ln for ln in second.stderr.splitlines() if ln.strip()]
                assert len(lines) == 1, second.stderr
                assert "another jmapsyncd is using" in lines[0]
            assert box.run("status").returncode == 0  # reading is fine meanwhile
            proc.terminate()
            assert proc.wait(timeout=60) == 0
