"""Server faults seen by the real ``jmapsyncd`` processes, through a fault-injecting proxy.

The proxy (:class:`tests.reliability.conftest.FaultProxy`) sits in front of the fake server (IETF
dialect) or of a fresh Cyrus 3.10 account. Each test queues work on both sides first (new, edited
and deleted events), so "nothing lost" means: once the fault is gone, both sides hold exactly the
expected events, each once.

* ``jmapsyncd sync`` under each fault exits with the documented status (4 unreachable or failing,
  5 unusable answer, 3 credentials refused) and one line saying why; local edits stay untouched.
* The daemon (``Daemon`` in this process with a short ``Backoff``, or ``jmapsyncd run``) backs off
  while the server fails: the number of requests over a window is bounded; it keeps local edits
  and catches up by itself when the server is back; 401/403 stop it with status 3 at once.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from jmapsyncd.cli import _engine
from jmapsyncd.config import load_config
from jmapsyncd.daemon.backoff import Backoff
from jmapsyncd.daemon.runner import Daemon
from jmapsyncd.jmap import JMAPClient
from jmapsyncd.state import StateDB
from tests.conftest import ServerAccount
from tests.fakeserver import FakeJMAPServer
from tests.reliability.conftest import (
    Box,
    FaultProxy,
    ProxyFault,
    fake_account,
    ics_event,
    jscal_event,
    server_titles,
    upstream_of,
    wait_for,
)

SERVERS = [
    pytest.param("fake", id="fake"),
    pytest.param("cyrus", marks=pytest.mark.integration, id="cyrus-3.10"),
]
FAKE = [pytest.param("fake", id="fake")]  # cases whose Cyrus twin adds time and nothing else


@dataclass
class Rig:
    """A box whose server URL goes through ``proxy``; ``direct`` talks to the server itself."""

    name: str  # "fake" or the Cyrus dialect
    box: Box
    proxy: FaultProxy
    direct: JMAPClient
    calendar: str
    expected: Counter[str] = field(default_factory=Counter)
    ids: dict[str, str] = field(default_factory=dict)  # title → server id
    local: dict[str, bytes] = field(default_factory=dict)  # file name → bytes of a local edit

    @property
    def folder(self) -> Path:
        [folder] = self.box.calendar_folders()
        return folder

    def seed(self, n: int = 6) -> None:
        """``n`` server events, synced."""
        creates = {
            f"s{i}": {**jscal_event(f"seed-{i}", f"seed {i}"), "calendarIds": {self.calendar: True}}
            for i in range(n)
        }
        result = self.direct.set_events(create=creates)
        assert result.ok
        for key, answer in result.created.items():
            self.ids[f"seed {key[1:]}"] = str(answer["id"])
            self.expected[f"seed {key[1:]}"] += 1
        self.box.sync_here()
        for i in range(2):
            uid = f"local-{i}"
            (self.folder / f"{uid}.ics").write_text(ics_event(uid, f"local {i}"))
            self.expected[f"local {i}"] += 1
        self.box.sync_here()

    def queue_work(self) -> None:
        """Pending on both sides, never the same event twice."""
        result = self.direct.set_events(
            create={
                "n1": {
                    **jscal_event("srv-new-1", "srv new 1"),
                    "calendarIds": {self.calendar: True},
                },
                "n2": {
                    **jscal_event("srv-new-2", "srv new 2"),
                    "calendarIds": {self.calendar: True},
                },
            },
            update={self.ids["seed 0"]: {"title": "seed 0 edited on the server"}},
            destroy=[self.ids["seed 1"]],
        )
        assert result.ok, result
        self.expected.update(["srv new 1", "srv new 2", "seed 0 edited on the server"])
        self.expected.subtract(["seed 0", "seed 1"])
        for i in (1, 2):
            text = ics_event(f"loc-new-{i}", f"loc new {i}").encode()
            (self.folder / f"loc-new-{i}.ics").write_bytes(text)
            self.local[f"loc-new-{i}.ics"] = text
        edited = ics_event("local-0", "local 0 edited here").encode()
        (self.folder / "local-0.ics").write_bytes(edited)
        self.local["local-0.ics"] = edited
        (self.folder / "local-1.ics").unlink()
        self.expected.update(["loc new 1", "loc new 2", "local 0 edited here"])
        self.expected.subtract(["local 0", "local 1"])
        self.expected = +self.expected

    def local_edits_intact(self) -> None:
        for name, text in self.local.items():
            assert (self.folder / name).read_bytes() == text, name
        assert not (self.folder / "local-1.ics").exists()

    def converged(self) -> bool:
        return (
            server_titles(self.direct) == self.expected
            and self.box.local_summaries() == self.expected
        )

    def check_converged(self) -> None:
        on_server = server_titles(self.direct)
        assert on_server == self.expected
        assert self.box.local_summaries() == self.expected
        with StateDB(self.box.state_db) as db:
            assert db.pending_items() == []
        assert self.box.temp_files() == []


@pytest.fixture
def rig(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Rig]:
    if request.param == "fake":
        with FakeJMAPServer(dialect="ietf") as srv:
            account = fake_account(srv)
            calendar = srv.store.default_calendar_id
            yield from _rig(account, calendar, tmp_path)
    else:
        account = request.getfixturevalue("cyrus310_account")
        yield from _rig(account, None, tmp_path)


def _rig(account: ServerAccount, calendar: str | None, tmp_path: Path) -> Iterator[Rig]:
    with (
        FaultProxy(upstream_of(account.url)) as proxy,
        JMAPClient(account.url, username=account.username, password=account.password) as direct,
    ):
        calendar_given = calendar is not None
        if calendar is None:
            calendars, _state = direct.fetch_calendars()
            calendar = str(calendars[0]["id"]) if calendars else direct.create_calendar("Cal")
        proxied = ServerAccount(
            proxy.url_for(account.url), account.username, account.password, account.dialect
        )
        box = Box(proxied, tmp_path / "home", settings={"timeout": 2.0})
        box.home.mkdir()
        box.write_config()
        yield Rig("fake" if calendar_given else account.dialect, box, proxy, direct, calendar)


def _one_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert lines[0].startswith("jmapsyncd: "), stderr
    assert "Traceback" not in stderr
    return lines[0]


LIMIT_ERROR = (
    b'{"type":"urn:ietf:params:jmap:error:limit","status":400,'
    b'"limit":"maxSizeRequest","detail":"request too large"}'
)
METHOD_ERROR = b'{"methodResponses":[["error",{"type":"serverFail"},"c0"]],"sessionState":"0"}'

# (id, fault, exit status, words the one line must hold); the starred ones also run on Cyrus.
SYNC_FAULTS = [
    ("500", ProxyFault("status", 500, method="POST"), 4, "HTTP 500"),
    ("502", ProxyFault("status", 502, method="POST"), 4, "HTTP 502"),
    ("503", ProxyFault("status", 503, method="POST"), 4, "HTTP 503"),
    ("503-retry-after", ProxyFault("status", 503, retry_after="120", method="POST"), 4, "503"),
    ("503-session", ProxyFault("status", 503, method="GET"), 4, "HTTP 503"),
    ("429-retry-after", ProxyFault("status", 429, retry_after="30", method="POST"), 4, "429"),
    ("503-mid-pass", ProxyFault("status", 503, method="POST", after=3), 4, "HTTP 503"),
    ("reset", ProxyFault("reset", method="POST"), 4, "cannot reach"),
    ("reset-session", ProxyFault("reset", method="GET"), 4, "cannot reach"),
    ("reset-mid-pass", ProxyFault("reset", method="POST", after=4), 4, "cannot reach"),
    ("timeout", ProxyFault("stall", method="POST"), 4, "no answer within"),
    ("truncated", ProxyFault("truncate", method="POST"), 4, "cannot reach"),
    ("truncated-mid-pass", ProxyFault("truncate", method="POST", after=3), 4, "cannot reach"),
    ("not-json", ProxyFault("body", body=b'{"methodResponses": [', method="POST"), 5, "not JSON"),
    ("request-error", ProxyFault("status", 400, body=LIMIT_ERROR, method="POST"), 5, "limit"),
    ("method-error", ProxyFault("body", body=METHOD_ERROR, method="POST"), 5, "serverFail"),
]


ON_CYRUS = {"503", "503-retry-after", "reset-mid-pass", "timeout", "truncated-mid-pass", "not-json"}


@pytest.mark.parametrize(
    ("rig", "fault", "status", "words"),
    [pytest.param("fake", f, s, w, id=f"fake-{i}") for i, f, s, w in SYNC_FAULTS]
    + [
        pytest.param("cyrus", f, s, w, id=f"cyrus-3.10-{i}", marks=pytest.mark.integration)
        for i, f, s, w in SYNC_FAULTS
        if i in ON_CYRUS
    ],
    indirect=["rig"],
)
def test_sync_fault_exits_with_reason_and_loses_nothing(
    rig: Rig, fault: ProxyFault, status: int, words: str
) -> None:
    if fault.kind == "stall":
        rig.box.write_config(timeout=0.5)
    rig.seed()
    rig.queue_work()
    if fault.method == "GET":
        rig.box.forget_session()  # a stored session needs no GET: this is a first start
    rig.proxy.faults.append(dataclasses.replace(fault))  # a copy: faults count down
    failed = rig.box.run("sync")
    assert failed.returncode == status, (failed.stdout, failed.stderr)
    assert words in _one_line(failed.stderr)
    rig.local_edits_intact()
    assert rig.proxy.faults == [], "the fault was never reached"
    rig.box.write_config()  # the usual timeout again
    # The server is fine again: one pass brings everything across, a second finds nothing.
    rig.box.sync_ok()
    assert rig.box.sync_here().changed == 0
    rig.check_converged()


@pytest.mark.parametrize(
    ("rig", "code", "method"),
    [
        pytest.param("fake", 401, "GET", id="fake-401-GET"),
        pytest.param("fake", 401, "POST", id="fake-401-POST"),
        pytest.param("fake", 403, "GET", id="fake-403-GET"),
        pytest.param("fake", 403, "POST", id="fake-403-POST"),
        pytest.param("cyrus", 401, "POST", id="cyrus-3.10-401-POST", marks=pytest.mark.integration),
    ],
    indirect=["rig"],
)
def test_sync_credentials_refused_exit_3_without_retries(rig: Rig, code: int, method: str) -> None:
    rig.seed()
    rig.queue_work()
    if method == "GET":
        rig.box.forget_session()  # a stored session needs no GET: this is a first start
    before = rig.proxy.count()
    rig.proxy.always = ProxyFault("status", code, method=method, body=b"{}")
    failed = rig.box.run("sync")
    assert failed.returncode == 3, failed.stderr
    assert "refused the credentials" in _one_line(failed.stderr)
    # One refused request ends it (a GET after a POST would be the session being re-read).
    refused_at = rig.proxy.count() - before
    assert refused_at <= 3, f"{refused_at} requests for one refused pass"
    rig.local_edits_intact()
    rig.proxy.always = None
    rig.box.sync_ok()
    rig.check_converged()


@pytest.mark.parametrize("rig", SERVERS, indirect=True)
def test_sync_server_down_exit_4(rig: Rig) -> None:
    rig.seed()
    rig.queue_work()
    rig.proxy.down()
    failed = rig.box.run("sync")
    assert failed.returncode == 4, failed.stderr
    assert "cannot reach the server" in _one_line(failed.stderr)
    rig.local_edits_intact()
    rig.proxy.up()
    rig.box.sync_ok()
    rig.check_converged()


@pytest.mark.parametrize("rig", SERVERS, indirect=True)
def test_sync_server_down_message_says_connection_refused(rig: Rig) -> None:
    rig.proxy.down()
    failed = rig.box.run("sync")
    assert failed.returncode == 4
    assert "refused" in _one_line(failed.stderr).lower()


# -- the daemon ---------------------------------------------------------------------------------


@contextmanager
def running_daemon(box: Box, backoff: Backoff) -> Iterator[tuple[Daemon, dict[str, int]]]:
    """``Daemon`` as ``jmapsyncd run`` wires it, on a thread; stopped and joined at the end."""
    settings = load_config(box.config, box.env())
    daemon = Daemon(
        lambda: _engine(settings),
        settings.vdir,
        pull_interval=3600,
        backoff=backoff,
        debounce=0.2,
    )
    result: dict[str, int] = {}

    def run() -> None:
        result["exit"] = daemon.run(install_signals=False)

    thread = threading.Thread(target=run, name="daemon-under-test")
    thread.start()
    try:
        yield daemon, result
    finally:
        daemon.stop()
        thread.join(timeout=90)
        assert not thread.is_alive(), "the daemon did not stop"


SHORT = Backoff(base=0.2, cap=2.0)


def _bound(window: float, backoff: Backoff, per_attempt: int = 3) -> int:
    """Most requests a backing-off daemon may send in ``window`` seconds.

    Attempt k waits at least half of min(cap, base·2^(k-1)) (full jitter over the upper half);
    each attempt sends a few requests at most before its first failure.
    """
    attempts, elapsed, k = 1, 0.0, 1
    while True:
        elapsed += min(backoff.cap, backoff.base * 2 ** (k - 1)) / 2
        if elapsed > window:
            break
        attempts += 1
        k += 1
    return (attempts + 1) * per_attempt


@pytest.mark.parametrize(
    ("rig", "fault"),
    [
        pytest.param("fake", "503", id="fake-503"),
        pytest.param("fake", "reset", id="fake-reset"),
        pytest.param("fake", "down", id="fake-down"),
        pytest.param("cyrus", "503", id="cyrus-3.10-503", marks=pytest.mark.integration),
        pytest.param("cyrus", "down", id="cyrus-3.10-down", marks=pytest.mark.integration),
    ],
    indirect=["rig"],
)
def test_daemon_backs_off_keeps_edits_and_recovers(rig: Rig, fault: str) -> None:
    rig.seed()
    with running_daemon(rig.box, SHORT) as (daemon, _result):
        assert daemon.wait_ready(60)
        window = 3.0
        start = time.monotonic()
        if fault == "503":
            rig.proxy.always = ProxyFault("status", 503)
        elif fault == "reset":
            rig.proxy.always = ProxyFault("reset")
        else:
            rig.proxy.down()
        rig.queue_work()  # local edits wake the daemon; the server changed too
        time.sleep(window)
        sent = rig.proxy.count(since=start)
        rig.local_edits_intact()
        rig.proxy.always = None
        rig.proxy.up()
        wait_for(rig.converged, 60, "the daemon to catch up after the outage")
    print(f"backoff {fault}: {sent} requests in {window}s, bound {_bound(window, SHORT)}")
    if fault != "down":
        assert 2 <= sent <= _bound(window, SHORT), f"{sent} requests in {window}s"
    rig.check_converged()


@pytest.mark.parametrize("rig", FAKE, indirect=True)
def test_daemon_honours_retry_after(rig: Rig) -> None:
    rig.seed()
    with running_daemon(rig.box, SHORT) as (daemon, _result):
        assert daemon.wait_ready(60)
        start = time.monotonic()
        rig.proxy.always = ProxyFault("status", 503, retry_after="1.5")
        rig.queue_work()
        window = 3.5
        time.sleep(window)
        sent = rig.proxy.count(since=start)
        rig.proxy.always = None
        wait_for(rig.converged, 60, "the daemon to catch up after Retry-After")
    print(f"retry-after 1.5: {sent} requests in {window}s")
    # An attempt, then at most one every 1.5 s; a few requests each.
    assert 1 <= sent <= (1 + int(window / 1.5) + 1) * 3, f"{sent} requests in {window}s"
    rig.check_converged()


@pytest.mark.parametrize("rig", FAKE, indirect=True)
@pytest.mark.parametrize("code", [401, 403])
def test_daemon_stops_on_refused_credentials(
    rig: Rig, code: int, caplog: pytest.LogCaptureFixture
) -> None:
    rig.seed()
    rig.proxy.always = ProxyFault("status", code, body=b"{}")
    start = time.monotonic()
    caplog.set_level(logging.ERROR, logger="jmapsyncd")
    with running_daemon(rig.box, SHORT) as (daemon, result):
        assert daemon.wait_ready(60)
        wait_for(lambda: "exit" in result, 30, "the daemon to stop")
        time.sleep(SHORT.cap)  # a retry storm would show here
    assert result["exit"] == 3
    print(f"daemon {code}: {rig.proxy.count(since=start)} requests")
    assert rig.proxy.count(since=start) <= 3
    assert any("refused our credentials" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("rig", SERVERS, indirect=True)
def test_run_process_recovers_after_503_window(rig: Rig) -> None:
    """``jmapsyncd run`` (default backoff: first retry after 2.5-5 s) rides out a short outage."""
    rig.seed()
    log = rig.box.home / "run.log"
    rig.proxy.always = ProxyFault("status", 503)
    with rig.box.start("run", log=log) as proc:
        wait_for(lambda: rig.proxy.count() >= 1, 30, "the first attempt")
        rig.queue_work()
        time.sleep(1.5)
        assert proc.poll() is None, log.read_text()
        rig.proxy.always = None
        wait_for(rig.converged, 90, "jmapsyncd run to catch up")
        proc.terminate()
        assert proc.wait(timeout=60) == 0, log.read_text()
    text = log.read_text()
    assert "retrying in" in text
    assert "Traceback" not in text
    rig.check_converged()


@pytest.mark.parametrize("rig", FAKE, indirect=True)
@pytest.mark.parametrize("code", [401, 403])
def test_run_process_exit_3_on_refused_credentials(rig: Rig, code: int) -> None:
    rig.seed()
    rig.proxy.always = ProxyFault("status", code, body=b"{}")
    log = rig.box.home / "run.log"
    before = rig.proxy.count()
    with rig.box.start("run", log=log) as proc:
        assert proc.wait(timeout=60) == 3, log.read_text()
    assert rig.proxy.count() - before <= 3
    assert "refused our credentials" in log.read_text()
