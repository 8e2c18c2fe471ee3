"""Conflicts and races through the real processes: the policy holds, ``keep-both`` loses nothing.

* One event edited on both sides between two ``jmapsyncd sync`` runs, under each
  ``conflict_resolution``: ``keep-both`` ends with both versions on both sides (the local one
  under a new UID) and the conflict in ``jmapsyncd status``; ``server-wins`` and ``local-wins``
  end with the winner on both sides.
* Deleted on one side, edited on the other: the edit wins, whatever the policy.
* A running daemon (``jmapsyncd run``) while the same events are edited on the server and in the
  vdir over and over: afterwards both sides agree, the last edit of every event is there, and
  nothing is there twice.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

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
    server_titles,
    wait_for,
)

SERVERS = [
    pytest.param("fake", id="fake"),
    pytest.param("cyrus", marks=pytest.mark.integration, id="cyrus-3.10"),
]


@dataclass
class Pair:
    box: Box
    direct: JMAPClient
    calendar: str
    ids: dict[str, str]  # UID → server id

    @property
    def folder(self) -> Path:
        [folder] = self.box.calendar_folders()
        return folder

    def edit_local(self, uid: str, title: str) -> None:
        (self.folder / f"{uid}.ics").write_text(ics_event(uid, title), encoding="utf-8")

    def edit_server(self, uid: str, title: str) -> None:
        result = self.direct.set_events(update={self.ids[uid]: {"title": title}})
        assert result.ok, result

    def both(self) -> tuple[Counter[str], Counter[str]]:
        return server_titles(self.direct), self.box.local_summaries()


@pytest.fixture
def pair(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Pair]:
    if request.param == "fake":
        with FakeJMAPServer(dialect="ietf") as srv:
            yield from _pair(fake_account(srv), tmp_path)
    else:
        yield from _pair(request.getfixturevalue("cyrus310_account"), tmp_path)


def _pair(account: ServerAccount, tmp_path: Path) -> Iterator[Pair]:
    with JMAPClient(account.url, username=account.username, password=account.password) as direct:
        calendars, _state = direct.fetch_calendars()
        calendar = str(calendars[0]["id"]) if calendars else direct.create_calendar("Cal")
        creates = {
            f"ev-{i}": {**jscal_event(f"ev-{i}", f"ev {i}"), "calendarIds": {calendar: True}}
            for i in range(10)
        }
        result = direct.set_events(create=creates)
        assert result.ok
        ids = {key: str(answer["id"]) for key, answer in result.created.items()}
        box = Box(account, tmp_path / "home")
        box.home.mkdir()
        box.write_config()
        box.sync_here()
        yield Pair(box, direct, calendar, ids)


POLICY_CASES = [
    pytest.param("fake", "keep-both", id="fake-keep-both"),
    pytest.param("fake", "server-wins", id="fake-server-wins"),
    pytest.param("fake", "local-wins", id="fake-local-wins"),
    pytest.param("cyrus", "keep-both", id="cyrus-3.10-keep-both", marks=pytest.mark.integration),
    pytest.param("cyrus", "local-wins", id="cyrus-3.10-local-wins", marks=pytest.mark.integration),
]


@pytest.mark.parametrize(("pair", "policy"), POLICY_CASES, indirect=["pair"])
def test_edited_on_both_sides_follows_the_policy(pair: Pair, policy: str) -> None:
    pair.box.write_config(conflict_resolution=policy)
    pair.edit_local("ev-1", "ev 1 edited here")
    pair.edit_server("ev-1", "ev 1 edited on the server")
    result = pair.box.run("sync")
    assert result.returncode == 0, result.stderr
    assert "1 conflict(s)" in result.stdout
    pair.box.sync_ok()
    on_server, local = pair.both()
    assert on_server == local
    rest = Counter(f"ev {i}" for i in range(10) if i != 1)
    if policy == "keep-both":
        assert on_server == rest + Counter(["ev 1 edited here", "ev 1 edited on the server"])
        conflicts = [c for coll in pair.box.status()["collections"] for c in coll["conflicts"]]
        assert len(conflicts) == 1
        assert conflicts[0]["file"] == "ev-1.ics"
        assert conflicts[0]["copy"]
        assert (pair.folder / conflicts[0]["copy"]).exists()
    elif policy == "server-wins":
        assert on_server == rest + Counter(["ev 1 edited on the server"])
    else:
        assert on_server == rest + Counter(["ev 1 edited here"])
    with StateDB(pair.box.state_db) as db:
        assert db.pending_items() == []


@pytest.mark.parametrize("policy", ["keep-both", "server-wins", "local-wins"])
@pytest.mark.parametrize("pair", ["fake"], indirect=True)
def test_deleted_on_one_side_edited_on_the_other_the_edit_wins(pair: Pair, policy: str) -> None:
    pair.box.write_config(conflict_resolution=policy)
    (pair.folder / "ev-2.ics").unlink()
    pair.edit_server("ev-2", "ev 2 edited on the server")
    pair.edit_local("ev-3", "ev 3 edited here")
    destroyed = pair.direct.set_events(destroy=[pair.ids["ev-3"]])
    assert destroyed.ok
    pair.box.sync_ok()
    pair.box.sync_ok()
    on_server, local = pair.both()
    assert on_server == local
    want = Counter(f"ev {i}" for i in range(10) if i not in (2, 3))
    want.update(["ev 2 edited on the server", "ev 3 edited here"])
    assert on_server == want


@pytest.mark.slow
@pytest.mark.parametrize("pair", SERVERS, indirect=True)
def test_edits_on_both_sides_while_the_daemon_runs_lose_nothing(pair: Pair) -> None:
    rng = random.Random(7)
    last_local: dict[str, str] = {}
    log = pair.box.home / "run.log"
    with pair.box.start("run", log=log) as proc:
        time.sleep(1.0)
        for r in range(16):
            uid = f"ev-{rng.randrange(4)}"
            # Server first: the pass the local edit wakes pulls it while the file moves on.
            pair.edit_server(uid, f"{uid} server {r}")
            time.sleep(rng.uniform(0.0, 0.4))
            last_local[uid] = f"{uid} local {r}"
            pair.edit_local(uid, last_local[uid])
            time.sleep(rng.uniform(0.0, 0.4))
        assert proc.poll() is None, log.read_text()[-3000:]
        # Let the daemon catch up, then stop it the way systemd does.
        time.sleep(2.0)
        proc.terminate()
        assert proc.wait(timeout=60) == 0, log.read_text()[-3000:]
    assert "Traceback" not in log.read_text()
    pair.box.sync_ok()
    pair.box.sync_ok()
    wait_for(lambda: pair.both()[0] == pair.both()[1], 30, "both sides to agree")
    on_server, local = pair.both()
    assert on_server == local
    assert max(on_server.values()) == 1, [t for t, n in on_server.items() if n > 1]
    # The last edit of each event is a local one: it must be there (in place, or as the copy
    # of a conflict). A server edit may be overwritten by a later local edit made after it was
    # downloaded, which is no loss.
    lost = [t for t in last_local.values() if t not in on_server]
    assert lost == [], f"lost: {lost}"
    for i in range(4, 10):
        assert on_server[f"ev {i}"] == 1
    assert pair.box.temp_files() == []
    with StateDB(pair.box.state_db) as db:
        assert db.pending_items() == []
