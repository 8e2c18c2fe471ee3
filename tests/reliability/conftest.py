"""Harness for the reliability tests: the real ``jmapsyncd`` command, a fault proxy, snapshots.

* :class:`Box` is one account, one home folder, one vdir, one state database and one config file,
  with the installed ``jmapsyncd`` run as a subprocess (``run``, ``start``).
* :class:`FaultProxy` is a small HTTP/1.1 proxy on 127.0.0.1 in front of a server. Every request
  goes upstream on its own connection (``Connection: close`` both ways), unless a fault is queued:
  a canned status (with or without ``Retry-After``), a reset, a truncated answer, a body that is
  not JSON, a stalled answer, or the whole proxy down (the listener closed: connection refused).
  It counts what it saw, and its threads stop by themselves (bounded waits, ``close()``).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sqlite3
import ssl
import struct
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from jmapsyncd.config import load_config
from jmapsyncd.jmap import JMAPClient
from jmapsyncd.sync.engine import SyncReport
from tests.conftest import ServerAccount
from tests.fakeserver import FakeJMAPServer

JMAPSYNCD = str(Path(sys.executable).parent / "jmapsyncd")
REPO = Path(__file__).resolve().parents[2]


def ics_event(uid: str, summary: str, *, day: int = 5, extra: str = "") -> str:
    """A minimal VEVENT in UTC; ``extra`` is inserted as raw content lines."""
    return (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\nBEGIN:VEVENT\r\n"
        f"UID:{uid}\r\nDTSTAMP:20260101T000000Z\r\nDTSTART:202601{day:02d}T100000Z\r\n"
        f"DTEND:202601{day:02d}T110000Z\r\nSUMMARY:{summary}\r\n{extra}"
        "END:VEVENT\r\nEND:VCALENDAR\r\n"
    )


def jscal_event(uid: str, title: str, day: int = 5) -> dict[str, Any]:
    return {
        "@type": "Event",
        "uid": uid,
        "title": title,
        "start": f"2026-01-{day:02d}T10:00:00",
        "timeZone": "Etc/UTC",
        "duration": "PT1H",
    }


def tree_snapshot(root: Path) -> dict[str, str]:
    """Every path under ``root`` (relative, symlinks not followed) → its kind."""
    out: dict[str, str] = {}
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        for name in [*dirnames, *filenames]:
            full = os.path.join(dirpath, name)
            kind = "link" if os.path.islink(full) else "dir" if os.path.isdir(full) else "file"
            out[os.path.relpath(full, root)] = kind
    return out


def wait_for(check: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll ``check`` until it holds; fail naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.1)


def kill_loops(default: int, ci: int) -> int:
    """How many kill-and-restart rounds: ``JMAPSYNCD_KILL_LOOPS``, else ``ci`` under CI."""
    value = os.environ.get("JMAPSYNCD_KILL_LOOPS")
    if value:
        return max(1, int(value))
    return ci if os.environ.get("CI") else default


# -- the jmapsyncd command ----------------------------------------------------------------------


@dataclass
class Box:
    """One account synced into one vdir by the installed ``jmapsyncd`` command."""

    account: ServerAccount
    home: Path
    settings: dict[str, Any] = field(default_factory=dict)
    #: environment changes for the processes (None removes a variable)
    environ: dict[str, str | None] = field(default_factory=dict)

    @property
    def vdir(self) -> Path:
        return self.home / "vdir"

    @property
    def state_db(self) -> Path:
        return self.home / "state" / "state.sqlite"

    def forget_session(self) -> None:
        """Drop the stored session resource: the next process discovers it again."""
        if self.state_db.exists():
            with contextlib.closing(sqlite3.connect(self.state_db)) as conn, conn:
                conn.execute("DELETE FROM meta WHERE key = 'session'")

    @property
    def config(self) -> Path:
        return self.home / "config.toml"

    def write_config(self, **extra: Any) -> None:
        values: dict[str, Any] = {
            "url": self.account.url,
            "username": self.account.username,
            "password": self.account.password,
            "vdir": str(self.vdir),
            "state_db": str(self.state_db),
            **self.settings,
            **extra,
        }
        lines = [f"{key} = {_toml(value)}" for key, value in values.items() if value is not None]
        self.config.write_text("\n".join(lines) + "\n", encoding="utf-8")
        self.config.chmod(0o600)

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("JMAPSYNCD_")}
        env.update(
            HOME=str(self.home),
            XDG_CONFIG_HOME=str(self.home / ".config"),
            XDG_STATE_HOME=str(self.home / ".state"),
            TZ="UTC",
        )
        for key, value in self.environ.items():
            if value is None:
                env.pop(key, None)
            else:
                env[key] = value
        return env

    def argv(self, *args: str) -> list[str]:
        return [JMAPSYNCD, "--config", str(self.config), *args]

    def run(self, *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.argv(*args),
            capture_output=True,
            text=True,
            timeout=timeout,
            env=self.env(),
            check=False,
        )

    def sync_here(self) -> SyncReport:
        """One pass in this process (quicker than the command; for setting a scene up)."""
        from jmapsyncd.cli import _engine

        engine = _engine(load_config(self.config, self.env()))
        try:
            report: SyncReport = engine.sync()
        finally:
            engine.close()
        assert report.errors == [], report.errors
        return report

    def sync_ok(self) -> subprocess.CompletedProcess[str]:
        result = self.run("sync")
        assert result.returncode == 0, result.stderr[-3000:]
        return result

    @contextlib.contextmanager
    def start(self, *args: str, log: Path | None = None) -> Iterator[subprocess.Popen[bytes]]:
        """``jmapsyncd ARGS`` in the background, its output in ``log``; killed at the end."""
        out_path = log or self.home / "process.log"
        with open(out_path, "ab") as out:
            proc = subprocess.Popen(
                self.argv(*args),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=self.env(),
            )
        try:
            yield proc
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait(timeout=60)

    def status(self) -> dict[str, Any]:
        result = self.run("status", "--json")
        assert result.returncode == 0, result.stderr
        data: dict[str, Any] = json.loads(result.stdout)
        return data

    def status_errors(self) -> list[str]:
        return [e for c in self.status()["collections"] for e in c["errors"]]

    def calendar_folders(self) -> list[Path]:
        if not self.vdir.exists():
            return []
        return sorted(p for p in self.vdir.iterdir() if p.is_dir())

    def ics_files(self) -> list[Path]:
        return sorted(self.vdir.glob("*/*.ics"))

    def local_summaries(self) -> Counter[str]:
        """SUMMARY of every item file, counted (a duplicate shows as 2)."""
        found: Counter[str] = Counter()
        for path in self.ics_files():
            for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
                if line.startswith("SUMMARY:"):
                    found[line[len("SUMMARY:") :]] += 1
        return found

    def temp_files(self) -> list[Path]:
        return sorted(self.vdir.rglob(".jmapsyncd-*.tmp"))

    def client(self) -> JMAPClient:
        return JMAPClient(
            self.account.url, username=self.account.username, password=self.account.password
        )


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return json.dumps(str(value))


def server_titles(client: JMAPClient) -> Counter[str]:
    """Title of every event on the server, counted."""
    events, _state = client.get_all_events()
    return Counter(str(e.get("title")) for e in events)


def fake_account(srv: FakeJMAPServer) -> ServerAccount:
    return ServerAccount(
        url=srv.session_url, username=srv.username, password=srv.password, dialect=srv.dialect
    )


# -- the fault proxy ----------------------------------------------------------------------------

CANNED_REASONS = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    200: "OK",
}


@dataclass
class ProxyFault:
    """What the next ``times`` requests get instead of the upstream answer.

    ``kind``: ``status`` (``status`` with optional ``retry_after`` and ``body``), ``reset``
    (connection reset after the request was read), ``truncate`` (the upstream answer cut after
    its headers and half its body), ``body`` (200 with ``body``), ``stall`` (no answer until the
    client gives up or the proxy closes). ``path`` and ``method`` limit it to some requests,
    ``after`` lets that many of them through first.
    """

    kind: str
    status: int = 500
    retry_after: str | None = None
    body: bytes = b'{"type":"about:blank","status":500}'
    times: int = 1
    path: str | None = None
    method: str | None = None  # only requests with this HTTP method, e.g. "POST"
    after: int = 0  # let this many matching requests through first
    call: str | None = None  # only requests whose body holds this, e.g. '"CalendarEvent/set"'

    def matches(self, method: str, path: str, body: bytes = b"") -> bool:
        return (
            (self.path is None or path.startswith(self.path))
            and (self.method is None or method == self.method)
            and (self.call is None or self.call.encode() in body)
        )


class FaultProxy:
    """HTTP/1.1 proxy on 127.0.0.1 in front of ``upstream`` (host, port); see the module doc."""

    def __init__(self, upstream: tuple[str, int], tls: ssl.SSLContext | None = None) -> None:
        self.upstream = upstream
        self.tls = tls  # serve HTTPS with this server context
        self.faults: list[ProxyFault] = []
        self.always: ProxyFault | None = None  # applied to every request while set
        self.requests: list[tuple[float, str, str]] = []  # (monotonic time, method, path)
        self.connections = 0
        self.handshakes = 0  # TLS handshakes that succeeded
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._threads: list[threading.Thread] = []
        self._open: set[socket.socket] = set()
        self._listener: socket.socket | None = None
        self._accept_thread: threading.Thread | None = None
        self.port = 0
        self._listen()

    # -- control ---------------------------------------------------------------------------------

    def url_for(self, upstream_url: str) -> str:
        """``upstream_url`` with its host and port (and scheme, for TLS) replaced by the proxy's."""
        host, port = self.upstream
        url = upstream_url.replace(f"//{host}:{port}", f"//127.0.0.1:{self.port}", 1)
        return url.replace("http://", "https://", 1) if self.tls is not None else url

    def down(self) -> None:
        """Close the listener: new connections are refused until :meth:`up`."""
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.close()
        if self._accept_thread is not None:
            self._accept_thread.join(timeout=10)
            self._accept_thread = None

    def up(self) -> None:
        if self._listener is None:
            self._listen()

    def count(self, since: float = 0.0, path: str | None = None) -> int:
        with self._lock:
            return sum(
                1 for t, _m, p in self.requests if t >= since and (path is None or p == path)
            )

    def close(self) -> None:
        self._closing.set()
        self.down()
        with self._lock:
            sockets = list(self._open)
            threads = list(self._threads)
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        for thread in threads:
            thread.join(timeout=10)

    def __enter__(self) -> FaultProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- internals -------------------------------------------------------------------------------

    def _listen(self) -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        listener.settimeout(0.2)
        self.port = listener.getsockname()[1]
        self._listener = listener
        thread = threading.Thread(target=self._accept_loop, args=(listener,), daemon=True)
        self._accept_thread = thread
        thread.start()

    def _accept_loop(self, listener: socket.socket) -> None:
        while not self._closing.is_set() and self._listener is listener:
            try:
                conn, _addr = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conn.settimeout(30)
            with self._lock:
                self.connections += 1
                self._open.add(conn)
                self._threads = [t for t in self._threads if t.is_alive()]
                thread = threading.Thread(target=self._serve, args=(conn,), daemon=True)
                self._threads.append(thread)
            thread.start()

    def _take(self, method: str, path: str, body: bytes) -> ProxyFault | None:
        with self._lock:
            if self.always is not None and self.always.matches(method, path, body):
                return self.always
            for fault in self.faults:
                if fault.matches(method, path, body):
                    if fault.after > 0:
                        fault.after -= 1
                        continue
                    fault.times -= 1
                    if fault.times <= 0:
                        self.faults.remove(fault)
                    return fault
        return None

    def _serve(self, conn: socket.socket) -> None:
        try:
            if self.tls is not None:
                with self._lock:
                    self._open.discard(conn)
                conn = self.tls.wrap_socket(conn, server_side=True)
                with self._lock:
                    self._open.add(conn)
                self.handshakes += 1
            request = _read_request(conn)
            if request is None:
                return
            head, body, method, path = request
            with self._lock:
                self.requests.append((time.monotonic(), method, path))
            fault = self._take(method, path, body)
            if fault is None:
                self._forward(conn, head, body, truncate=False)
            elif fault.kind == "reset":
                _reset(conn)
            elif fault.kind == "stall":
                self._closing.wait(60)
            elif fault.kind == "truncate":
                self._forward(conn, head, body, truncate=True)
            else:
                status = 200 if fault.kind == "body" else fault.status
                headers = [("Content-Type", "application/json")]
                if fault.retry_after is not None:
                    headers.append(("Retry-After", fault.retry_after))
                if status == 401:
                    headers.append(("WWW-Authenticate", 'Basic realm="jmap"'))
                _send(conn, status, headers, fault.body)
        except OSError:
            pass
        finally:
            with self._lock:
                self._open.discard(conn)
            with contextlib.suppress(OSError):
                conn.close()

    def _forward(self, conn: socket.socket, head: bytes, body: bytes, *, truncate: bool) -> None:
        lines = head.split(b"\r\n")
        kept = [ln for ln in lines[1:] if ln and not ln.lower().startswith(b"connection:")]
        request = b"\r\n".join([lines[0], *kept, b"Connection: close", b"", b""]) + body
        with socket.create_connection(self.upstream, timeout=60) as up:
            with self._lock:
                self._open.add(up)
            try:
                up.sendall(request)
                answer = bytearray()
                while not self._closing.is_set():
                    chunk = up.recv(65536)
                    if not chunk:
                        break
                    answer += chunk
            finally:
                with self._lock:
                    self._open.discard(up)
        resp_head, _sep, resp_body = bytes(answer).partition(b"\r\n\r\n")
        resp_lines = [
            ln for ln in resp_head.split(b"\r\n") if not ln.lower().startswith(b"connection:")
        ]
        resp_lines.append(b"Connection: close")
        if truncate:
            resp_body = resp_body[: len(resp_body) // 2]
        conn.sendall(b"\r\n".join(resp_lines) + b"\r\n\r\n" + resp_body)


def _read_request(conn: socket.socket) -> tuple[bytes, bytes, str, str] | None:
    data = bytearray()
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return None
        data += chunk
        if len(data) > 1 << 20:
            return None
    head, _sep, rest = bytes(data).partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _colon, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    body = bytearray(rest)
    while len(body) < length:
        chunk = conn.recv(65536)
        if not chunk:
            break
        body += chunk
    method, path, *_rest = [*head.split(b"\r\n", 1)[0].decode("latin-1").split(" "), "", ""]
    return head, bytes(body), method, path


def _send(conn: socket.socket, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
    reason = CANNED_REASONS.get(status, "Error")
    lines = [f"HTTP/1.1 {status} {reason}"]
    lines += [f"{k}: {v}" for k, v in headers]
    lines += [f"Content-Length: {len(body)}", "Connection: close", "", ""]
    conn.sendall("\r\n".join(lines).encode("latin-1") + body)


def _reset(conn: socket.socket) -> None:
    # SO_LINGER 0: close() sends RST instead of FIN.
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


def upstream_of(url: str) -> tuple[str, int]:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    assert parts.hostname is not None
    assert parts.port is not None
    return parts.hostname, parts.port
