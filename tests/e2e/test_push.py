"""End to end: ``jmapsyncd run`` follows server changes by push (RFC 8620 §7.3 EventSource).

Against the real Cyrus 3.10 the daemon runs with an hour-long ``pull_interval``, so an event
created on the server can only reach the vdir in time by push. The daemon talks to Cyrus through
a TCP proxy in this test, which can cut every connection: the daemon must notice, reconnect and
keep receiving changes without a restart.

Cyrus looks for changes on an open event stream only every ``jmap_pushpoll`` seconds (60 when
the option is not set), so the waits here are that long plus a margin; the latency seen is
logged. Cyrus 3.6 advertises an ``eventSourceUrl`` but answers it with 204 No Content: the
daemon must fall back to polling and say so.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import signal
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ServerAccount
from tests.e2e.conftest import BIN, Setup, make_setup, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.e2e, pytest.mark.slow]

log = logging.getLogger(__name__)

EVENT = """\
BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//jmapsyncd tests//EN
BEGIN:VEVENT
UID:{uid}
DTSTAMP:20260101T000000Z
DTSTART;TZID=Europe/Berlin:20261214T100000
DURATION:PT1H
SUMMARY:{title}
END:VEVENT
END:VCALENDAR
"""


class TcpProxy:
    """Forwards 127.0.0.1:<port> to ``upstream`` byte for byte; :meth:`cut` drops every link."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.lock = threading.Lock()
        self.links: list[tuple[socket.socket, socket.socket]] = []
        self.first_lines: list[str] = []
        self.closing = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.closing.is_set():
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.upstream, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self.lock:
                self.links.append((client, upstream))
            threading.Thread(target=self._pump, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, False), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket, outbound: bool) -> None:
        first = outbound
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                if first:
                    first = False
                    with self.lock:
                        self.first_lines.append(data.split(b"\r\n", 1)[0].decode("latin-1"))
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def event_streams(self) -> int:
        with self.lock:
            return sum("/eventsource" in line for line in self.first_lines)

    def cut(self) -> None:
        with self.lock:
            links, self.links = self.links, []
        for pair in links:
            for sock in pair:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()

    def close(self) -> None:
        self.closing.set()
        self.listener.close()
        self.cut()


def _push_poll(cyrus_servers: dict[str, Any], name: str) -> float:
    """Cyrus's ``jmap_pushpoll`` for that server (seconds; 60 when unset or unknown)."""
    instance = cyrus_servers.get(name)
    if instance is None:
        return 60.0
    with contextlib.suppress(OSError, AttributeError):
        conf = Path(instance.outside(f"{instance.base}/imapd.conf")).read_text()
        match = re.search(r"^jmap_pushpoll:\s*(\d+)\s*(s?)\s*$", conf, re.MULTILINE)
        if match:
            return float(match.group(1))
    return 60.0


@contextlib.contextmanager
def daemon(setup: Setup, log_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    with open(log_path, "w") as log_file:
        proc = subprocess.Popen(
            [str(BIN / "jmapsyncd"), "--config", str(setup.config), "-v", "run"],
            stdout=log_file,
            stderr=subprocess.STDOUT,
            env={"HOME": str(setup.home), "PATH": "/usr/bin:/bin", "TZ": "Europe/Berlin"},
        )
    try:
        yield proc
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise
        text = log_path.read_text()
        assert code == 0, text
        assert "jmapsyncd stopped" in text
        assert setup.account.password not in text


def _create(setup: Setup, title: str) -> float:
    with setup.client() as client:
        [cal] = client.get_calendars()
        client.create_event(cal.id, EVENT.format(uid=f"{uuid.uuid4()}@e2e.test", title=title))
    return time.monotonic()


def _arrived(setup: Setup, title: str) -> bool:
    return any(title in p.read_text() for p in setup.ics_files())


def _status(setup: Setup) -> dict[str, Any]:
    result = setup.jmapsyncd("status", "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert isinstance(data, dict)
    return data


def test_server_changes_arrive_by_push_and_survive_a_dropped_stream(
    cyrus310_account: ServerAccount, cyrus_servers: dict[str, Any], tmp_path: Path
) -> None:
    poll = _push_poll(cyrus_servers, "cyrus-3.10")
    wait = poll + 15
    port = int(cyrus310_account.url.split("//", 1)[1].split("/", 1)[0].rsplit(":", 1)[1])
    proxy = TcpProxy(("127.0.0.1", port))
    try:
        via_proxy = ServerAccount(
            url=f"http://127.0.0.1:{proxy.port}/.well-known/jmap",
            username=cyrus310_account.username,
            password=cyrus310_account.password,
            dialect=cyrus310_account.dialect,
        )
        setup = make_setup(via_proxy, tmp_path, pull_interval=3600)
        log_path = tmp_path / "daemon.log"
        with daemon(setup, log_path):
            wait_for(lambda: "push active via EventSource" in log_path.read_text(), 60, "push")
            assert proxy.event_streams() == 1
            assert _status(setup)["push"]["mode"] == "push"

            sent = _create(setup, "First push")
            wait_for(lambda: _arrived(setup, "First push"), wait, "the event by push")
            latency = time.monotonic() - sent
            log.info("push latency on Cyrus 3.10 (jmap_pushpoll %gs): %.1fs", poll, latency)
            assert proxy.event_streams() == 1  # no reconnect: this came by push
            status = _status(setup)["push"]
            assert status["last_event"] is not None

            proxy.cut()  # every connection, the event stream too
            wait_for(lambda: proxy.event_streams() >= 2, 30, "the stream to be reopened")
            wait_for(lambda: _status(setup)["push"]["state"] == "active", 30, "push active again")
            sent = _create(setup, "Second push")
            wait_for(lambda: _arrived(setup, "Second push"), wait, "the event after the cut")
            latency = time.monotonic() - sent
            log.info("push latency on Cyrus 3.10 after a reconnect: %.1fs", latency)
        text = log_path.read_text()
        assert "push: " in text  # the drop was logged
        assert "Traceback" not in text
    finally:
        proxy.close()


def test_cyrus36_offers_no_working_push_and_the_daemon_polls(
    cyrus36_account: ServerAccount, tmp_path: Path
) -> None:
    setup = make_setup(cyrus36_account, tmp_path, pull_interval=15)
    log_path = tmp_path / "daemon.log"
    with daemon(setup, log_path):
        wait_for(
            lambda: "server offers no push" in log_path.read_text(), 60, "the fallback message"
        )
        assert "polling every 15s" in log_path.read_text()
        push = _status(setup)["push"]
        assert push["mode"] == "polling"
        assert push["running"] is True
        status_text = setup.jmapsyncd("status").stdout
        assert "push: not active" in status_text
        sent = _create(setup, "Polled")
        wait_for(lambda: _arrived(setup, "Polled"), 45, "the event by polling")
        log.info("polling latency on Cyrus 3.6 (pull_interval 15s): %.1fs", time.monotonic() - sent)
    assert "HTTP 204" in log_path.read_text()


def test_status_without_a_daemon_says_so(tmp_path: Path) -> None:
    """Without a daemon, ``status`` says none is running (the status file is optional)."""
    account = ServerAccount(
        url="http://127.0.0.1:9/.well-known/jmap", username="u", password="p", dialect="none"
    )
    setup = make_setup(account, tmp_path)
    assert not os.path.exists(tmp_path / "state.sqlite.status.json")
    result = setup.jmapsyncd("status")
    assert result.returncode == 0, result.stderr
    assert "daemon: not running" in result.stdout
