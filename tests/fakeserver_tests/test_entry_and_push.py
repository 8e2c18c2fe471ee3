"""The ``python -m tests.fakeserver`` entry point and the EventSource endpoint (RFC 8620 §7.3)."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import niquests
import pytest

from tests.fakeserver import FakeJMAPServer

REPO = Path(__file__).resolve().parents[2]


def test_module_entry_serves_until_terminated() -> None:
    command = [
        sys.executable,
        "-m",
        "tests.fakeserver",
        "--dialect",
        "ietf",
        "--tasks",
        "--port",
        "0",
    ]
    with subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, text=True) as process:
        try:
            assert process.stdout is not None
            url = process.stdout.readline().strip()
            assert url.startswith("http://127.0.0.1:")
            assert url.endswith("/.well-known/jmap")
            with niquests.Session() as http:
                session = http.get(url, auth=("alice", "secret")).json()
            assert "urn:ietf:params:jmap:tasks" in session["capabilities"]
        finally:
            process.terminate()
            process.wait(timeout=10)
            if process.stdout is not None:
                process.stdout.close()
    assert process.returncode == 0


@pytest.mark.parametrize("dialect", ["stalwart", "ietf"])
def test_event_source_sends_a_state_event(dialect: str) -> None:
    with FakeJMAPServer(dialect=dialect) as srv:
        cal = srv.store.default_calendar_id
        url = f"{srv.base_url}/jmap/eventsource/?types=*&closeafter=state&ping=0"
        ready = threading.Event()
        lines: list[str] = []

        def listen() -> None:
            with niquests.Session() as http:
                response = http.get(url, auth=(srv.username, srv.password), stream=True, timeout=10)
                ready.set()
                for line in response.iter_lines(decode_unicode=True):
                    lines.append(line if isinstance(line, str) else line.decode())
                response.close()

        thread = threading.Thread(target=listen)
        thread.start()
        assert ready.wait(10)
        event_id = srv.store.add_event(cal, {"uid": "pushed"})
        thread.join(timeout=10)
        assert not thread.is_alive()
    assert "event: state" in lines
    data = json.loads(next(line for line in lines if line.startswith("data: "))[6:])
    assert data["@type"] == "StateChange"
    assert data["changed"][srv.account_id]["CalendarEvent"] == srv.store.state("CalendarEvent")
    assert event_id in srv.store.events


def _listen(srv: FakeJMAPServer, query: str, lines: list[str], ready: threading.Event) -> None:
    url = f"{srv.base_url}/jmap/eventsource/?{query}"
    with niquests.Session() as http:
        response = http.get(url, auth=(srv.username, srv.password), stream=True, timeout=10)
        ready.set()
        for line in response.iter_lines(decode_unicode=True):
            text = line if isinstance(line, str) else line.decode()
            lines.append(text)
            if text.startswith("event: ping"):
                break
        response.close()


def test_event_source_filters_types() -> None:
    with FakeJMAPServer(dialect="ietf") as srv:
        cal = srv.store.default_calendar_id
        lines: list[str] = []
        ready = threading.Event()
        thread = threading.Thread(
            target=_listen, args=(srv, "types=Calendar&closeafter=state&ping=0", lines, ready)
        )
        thread.start()
        assert ready.wait(10)
        srv.store.add_event(cal, {"uid": "ignored"})
        srv.store.add_calendar("Second")
        thread.join(timeout=10)
        assert not thread.is_alive()
    data = [json.loads(line[6:]) for line in lines if line.startswith("data: ")]
    assert len(data) == 1
    assert data[0]["changed"] == {"alice": {"Calendar": srv.store.state("Calendar")}}


def test_event_source_pings() -> None:
    with FakeJMAPServer(dialect="ietf") as srv:
        lines: list[str] = []
        ready = threading.Event()
        thread = threading.Thread(
            target=_listen, args=(srv, "types=*&closeafter=no&ping=1", lines, ready)
        )
        thread.start()
        assert ready.wait(10)
        thread.join(timeout=10)
        assert not thread.is_alive()
    assert "event: ping" in lines


def test_stalwart_event_source_rejects_unknown_types_and_bad_ping(stalwart: FakeJMAPServer) -> None:
    base = f"{stalwart.base_url}/jmap/eventsource/"
    auth = (stalwart.username, stalwart.password)
    with niquests.Session() as http:
        bad_types = http.get(f"{base}?types=Nope&closeafter=state&ping=0", auth=auth)
        bad_ping = http.get(f"{base}?types=*&closeafter=state&ping=soon", auth=auth)
    assert bad_types.status_code == 400
    assert bad_ping.status_code == 400
