"""The daemon with server push, against the in-process fake JMAP server.

A change on the server reaches the vdir through the EventSource long before the (hour-long)
scheduled pull; a server whose event stream is missing makes the daemon poll and say so; the
status file and ``jmapsyncd status`` tell which mode is in use.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from jmapsyncd.cli import _engine, main
from jmapsyncd.config import Settings, load_config
from jmapsyncd.daemon.push import PushState, PushStatus, listener_for
from jmapsyncd.daemon.runner import Daemon, status_path, write_json_atomically
from jmapsyncd.jmap import JMAPClient
from jmapsyncd.state import StateDB
from tests.fakeserver.server import FakeJMAPServer, Fault

log = logging.getLogger(__name__)

EVENT = """\
BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//jmapsyncd tests//EN
BEGIN:VEVENT
UID:{uid}
DTSTAMP:20260101T000000Z
DTSTART:20261207T100000Z
DURATION:PT1H
SUMMARY:{title}
END:VEVENT
END:VCALENDAR
"""


def wait_until(check: object, timeout: float) -> bool:
    assert callable(check)
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def settings_for(server: FakeJMAPServer, home: Path, push: str = "auto") -> Settings:
    config = home / "config.toml"
    config.write_text(
        f'url = "{server.session_url}"\n'
        f'username = "{server.username}"\n'
        f'password = "{server.password}"\n'
        f'vdir = "{home / "vdir"}"\n'
        f'state_db = "{home / "state.sqlite"}"\n'
        "pull_interval = 3600\n"
        f'push = "{push}"\n'
    )
    config.chmod(0o600)
    return load_config(config, {"HOME": str(home)})


@dataclass
class Running:
    daemon: Daemon
    settings: Settings

    def status_file(self) -> dict[str, object]:
        data = json.loads(status_path(self.settings.state_db).read_text())
        assert isinstance(data, dict)
        return data

    def files_with(self, title: str) -> list[Path]:
        return [p for p in self.settings.vdir.glob("*/*.ics") if title in p.read_text()]


@contextmanager
def running_daemon(settings: Settings) -> Iterator[Running]:
    daemon = Daemon(
        lambda: _engine(settings),
        settings.vdir,
        pull_interval=settings.pull_interval,
        make_push=partial(listener_for, settings) if settings.push == "auto" else None,
        status_file=status_path(settings.state_db),
    )
    codes: list[int] = []
    thread = threading.Thread(target=lambda: codes.append(daemon.run(install_signals=False)))
    thread.start()
    try:
        assert daemon.wait_ready(30), "the first pass did not finish"
        yield Running(daemon, settings)
    finally:
        daemon.stop()
        thread.join(30)
    assert not thread.is_alive()
    assert codes == [0]


def create_event(server: FakeJMAPServer, title: str) -> None:
    with JMAPClient(server.session_url, username=server.username, password=server.password) as c:
        [calendar] = c.get_calendars()
        c.create_event(calendar.id, EVENT.format(uid=uuid.uuid4(), title=title))


@pytest.mark.parametrize("dialect", ["ietf", "stalwart"])
def test_a_server_change_reaches_the_vdir_by_push(
    dialect: str,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.INFO, logger="jmapsyncd")
    with FakeJMAPServer(dialect) as server:
        settings = settings_for(server, tmp_path)
        with running_daemon(settings) as run:
            daemon = run.daemon
            assert wait_until(
                lambda: (
                    daemon.push_status is not None and daemon.push_status.state is PushState.ACTIVE
                ),
                10,
            )
            assert daemon.current_pull_interval == 3600  # max(pull_interval, 30 min)
            requests_before = daemon.push_requests
            started = time.monotonic()
            create_event(server, "Pushed from the server")
            assert wait_until(lambda: bool(run.files_with("Pushed from the server")), 10)
            latency = time.monotonic() - started
            log.info("push latency server -> file (%s fake server): %.2fs", dialect, latency)
            # The push burst is debounced: the file may land (by the pass it asked for, or by
            # one already queued) before the counter moves.
            assert wait_until(lambda: daemon.push_requests > requests_before, 10)
            status = run.status_file()
            push = status["push"]
            assert isinstance(push, dict)
            assert push["mode"] == "push"
            assert push["state"] == "active"
            assert push["last_event"] is not None
            assert status["running"] is True
            assert main(["--config", str(tmp_path / "config.toml"), "status"]) == 0
            out = capsys.readouterr().out
            assert "push: active via EventSource" in out
        stopped = run.status_file()
        assert stopped["running"] is False
    assert "push active via EventSource" in caplog.text
    assert main(["--config", str(tmp_path / "config.toml"), "status", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["push"]["running"] is False


def test_a_burst_of_server_changes_causes_one_pass(tmp_path: Path) -> None:
    with FakeJMAPServer("ietf") as server:
        settings = settings_for(server, tmp_path)
        with running_daemon(settings) as run:
            daemon = run.daemon
            assert wait_until(
                lambda: (
                    daemon.push_status is not None and daemon.push_status.state is PushState.ACTIVE
                ),
                10,
            )
            assert wait_until(lambda: daemon.push_requests >= 1, 5)  # the catch-up pass
            time.sleep(0.5)
            before = daemon.push_requests
            with JMAPClient(
                server.session_url, username=server.username, password=server.password
            ) as client:
                [calendar] = client.get_calendars()
                for i in range(10):
                    client.create_event(
                        calendar.id, EVENT.format(uid=uuid.uuid4(), title=f"Burst {i}")
                    )
            assert wait_until(lambda: len(run.files_with("Burst")) == 10, 15)
            time.sleep(1.0)
            # Ten creates within moments: one debounced request (two if the burst straddled
            # a pass), never one per change.
            assert 1 <= daemon.push_requests - before <= 2


def test_without_an_event_stream_the_daemon_polls_and_says_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.INFO, logger="jmapsyncd")
    with FakeJMAPServer("ietf") as server:
        server.faults.append(Fault(status=404, path="/jmap/eventsource", times=1000))
        settings = settings_for(server, tmp_path)
        with running_daemon(settings) as run:
            daemon = run.daemon
            assert wait_until(
                lambda: (
                    daemon.push_status is not None
                    and daemon.push_status.state is PushState.UNAVAILABLE
                ),
                10,
            )
            assert daemon.current_pull_interval == 3600  # pull_interval itself
            assert wait_until(lambda: run.status_file()["push"] is not None, 5)
            push = run.status_file()["push"]
            assert isinstance(push, dict)
            assert push["mode"] == "polling"
            assert main(["--config", str(tmp_path / "config.toml"), "status"]) == 0
            assert "push: not active" in capsys.readouterr().out
    assert "server offers no push" in caplog.text
    assert "polling every 3600s" in caplog.text


def test_push_off_polls_only(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="jmapsyncd")
    with FakeJMAPServer("ietf") as server:
        settings = settings_for(server, tmp_path, push="off")
        with running_daemon(settings) as run:
            assert wait_until(lambda: status_path(settings.state_db).exists(), 5)
            push = run.status_file()["push"]
            assert isinstance(push, dict)
            assert push["mode"] == "off"
            assert run.daemon.push_status is None
        eventsource = [r for r in server.requests if "eventsource" in r.path]
        assert eventsource == []
    assert "push is off; polling every 3600s" in caplog.text


def test_health_allows_the_longer_safety_pull_while_push_works(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "config.toml"
    config.write_text(
        'url = "http://127.0.0.1:9/jmap"\n'
        f'vdir = "{tmp_path / "vdir"}"\n'
        f'state_db = "{tmp_path / "state.sqlite"}"\n'
        "pull_interval = 300\n"
    )
    with StateDB(tmp_path / "state.sqlite") as db:
        row = db.upsert_collection("acc", "cal1", "calendar", "cal1")
        db.record_run(row.id, "pull", now=datetime.now(UTC) - timedelta(minutes=40))
    args = ["--config", str(config), "status", "--health"]
    assert main(args) == 1  # 40 minutes is more than three 5-minute polls
    assert "unhealthy" in capsys.readouterr().out
    status = {
        "pid": os.getpid(),
        "running": True,
        "pull_interval": 1800,
        "push": {"mode": "push", "state": "active", "last_event": None},
    }
    write_json_atomically(status_path(tmp_path / "state.sqlite"), status)
    assert main(args) == 0  # push is active: the timer pulls every 30 minutes
    assert "healthy" in capsys.readouterr().out


def test_the_pull_timer_slows_down_while_push_works_and_speeds_up_when_it_fails(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="jmapsyncd")

    def no_engine() -> Any:
        raise AssertionError("no pass runs in this test")

    daemon = Daemon(
        no_engine,
        tmp_path,
        pull_interval=300,
        make_push=lambda *args: None,
        status_file=tmp_path / "status.json",
    )
    steps = [
        (PushStatus(PushState.ACTIVE), 1800, "push"),
        (PushStatus(PushState.RECONNECTING, "the server closed the stream"), 1800, "push"),
        (PushStatus(PushState.FAILING, "HTTP 503"), 300, "polling"),
        (PushStatus(PushState.ACTIVE), 1800, "push"),
        (PushStatus(PushState.UNAVAILABLE, "HTTP 204 from its eventSourceUrl"), 300, "polling"),
    ]
    for status, interval, mode in steps:
        daemon._on_push_status(status)
        assert daemon.current_pull_interval == interval, status
        written = json.loads((tmp_path / "status.json").read_text())
        assert written["push"]["mode"] == mode
        assert written["pull_interval"] == interval
    assert "push is not working (HTTP 503); polling every 300s" in caplog.text
    assert "server offers no push (HTTP 204 from its eventSourceUrl)" in caplog.text
