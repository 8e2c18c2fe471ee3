"""sd_notify(3): what systemd receives from the daemon."""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from jmapsyncd.daemon.notify import Notifier


@pytest.fixture
def manager(tmp_path: Path) -> Iterator[tuple[socket.socket, str]]:
    path = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(5)
    try:
        yield sock, path
    finally:
        sock.close()


def test_ready_and_status_reach_the_manager(manager: tuple[socket.socket, str]) -> None:
    sock, path = manager
    notifier = Notifier({"NOTIFY_SOCKET": path})
    assert notifier.ready("first sync done")
    assert sock.recv(4096) == b"READY=1\nSTATUS=first sync done"
    assert notifier.watchdog()
    assert sock.recv(4096) == b"WATCHDOG=1"
    assert notifier.stopping()
    assert sock.recv(4096) == b"STOPPING=1"


def test_without_a_manager_nothing_is_sent() -> None:
    notifier = Notifier({})
    assert not notifier.enabled
    assert not notifier.ready()
    assert notifier.watchdog_interval is None


def test_a_vanished_manager_is_not_fatal(tmp_path: Path) -> None:
    notifier = Notifier({"NOTIFY_SOCKET": str(tmp_path / "gone.sock")})
    assert notifier.enabled
    assert not notifier.watchdog()


def test_watchdog_interval_is_half_the_period_for_this_process() -> None:
    mine = Notifier({"WATCHDOG_USEC": "10000000", "WATCHDOG_PID": str(os.getpid())})
    assert mine.watchdog_interval == 5.0
    someone_elses = Notifier({"WATCHDOG_USEC": "10000000", "WATCHDOG_PID": "1"})
    assert someone_elses.watchdog_interval is None


def test_a_manager_that_stops_reading_never_blocks_the_daemon(
    manager: tuple[socket.socket, str],
) -> None:
    # A datagram socket's queue holds only a few messages; a blocking send then waits for the
    # reader forever, which once hung the daemon's shutdown behind a status line.
    _sock, path = manager
    notifier = Notifier({"NOTIFY_SOCKET": path})
    results: list[bool] = []
    sender = threading.Thread(
        target=lambda: results.extend(notifier.status(f"pass {i}") for i in range(500)),
        daemon=True,
    )
    sender.start()
    sender.join(30)
    assert not sender.is_alive(), "sd_notify blocked on a full socket"
    assert results[0] is True
    assert results[-1] is False  # dropped, not waited for
