"""The HTTP side of the fake JMAP server: discovery, auth, the API endpoint, push, and faults.

Real HTTP/1.1 on 127.0.0.1 with an ephemeral port (``http.server.ThreadingHTTPServer``), so the
client's HTTP stack is exercised for real.  Routes per RFC 8620 §2.2 (``/.well-known/jmap``
redirect), §2 (Session), §3.1 (API POST), §7.3 (EventSource), with each dialect's redirects and
authentication answers (see ``stalwart-jmap.md`` and ``cyrus-jmap.md``).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import socket
import struct
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.fakeserver.api import Core, RequestProblem, handle
from tests.fakeserver.encoding import encode_id
from tests.fakeserver.session import build_session, default_limits
from tests.fakeserver.store import DIALECTS, Store

Headers = list[tuple[str, str]]
# Data types Stalwart accepts in an EventSource ``types`` list; anything else is a 400.
PUSH_TYPES = frozenset(
    {
        "Calendar", "CalendarEvent", "CalendarEventNotification", "ParticipantIdentity",
        "TaskList", "Task", "Email", "EmailDelivery", "EmailSubmission", "Mailbox", "Thread",
        "Identity", "AddressBook", "ContactCard", "FileNode", "Principal", "Quota",
        "SieveScript", "VacationResponse", "ShareNotification",
    }
)  # fmt: skip


@dataclass
class Fault:
    """What the next ``times`` requests whose path starts with ``path`` (None: any) get.

    With ``method`` set, only API requests that call that JMAP method match.

    Effects, checked in this order after sleeping ``delay`` seconds: ``reset`` (connection reset),
    ``body`` (these bytes with status 200), ``status`` (that status, ``Retry-After`` when
    ``retry_after`` is set), ``truncate`` (the real answer cut in half).  With no effect chosen the
    answer is a 500; ``Fault(delay=…)`` alone delays the real answer.
    """

    status: int | None = None
    retry_after: float | str | None = None
    delay: float = 0.0
    reset: bool = False
    truncate: bool = False
    body: bytes | None = None
    path: str | None = None
    times: int = 1
    method: str | None = None  # only API requests calling this JMAP method, e.g. "Calendar/set"


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the server saw it; the Authorization header is redacted."""

    method: str
    path: str
    headers: dict[str, str]
    json: Any
    body: bytes = field(default=b"", repr=False)


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], fake: FakeJMAPServer) -> None:
        self.fake = fake
        self.connections: set[socket.socket] = set()
        self.handler_threads: list[threading.Thread] = []
        self.conn_lock = threading.Lock()
        super().__init__(address, _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self.conn_lock:
            self.connections.add(request)
            self.handler_threads = [t for t in self.handler_threads if t.is_alive()]
            thread = threading.Thread(
                target=self.process_request_thread, args=(request, client_address), daemon=True
            )
            self.handler_threads.append(thread)
        thread.start()

    def shutdown_request(self, request: Any) -> None:
        with self.conn_lock:
            self.connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        with self.conn_lock:
            connections = list(self.connections)
            threads = list(self.handler_threads)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        for thread in threads:
            thread.join(timeout=5)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _HTTPServer

    def log_message(self, format: str, *args: Any) -> None:
        """Keep test output quiet."""

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def do_OPTIONS(self) -> None:
        self._handle()

    def do_PUT(self) -> None:
        self._handle()

    def do_DELETE(self) -> None:
        self._handle()

    def _handle(self) -> None:
        fake = self.server.fake
        body = self._read_body()
        recorded = fake._record(self.command, self.path, dict(self.headers.items()), body)
        fault = fake._take_fault(self.path, recorded.json)
        if fault is not None:
            if fault.delay > 0 and fake._stopping.wait(fault.delay):
                self._reset()
                return
            if fault.reset:
                self._reset()
                return
            if fault.body is not None:
                self._send(200, [("Content-Type", "application/json")], fault.body)
                return
            if fault.status is not None or not (fault.delay > 0 or fault.truncate):
                headers: Headers = [("Content-Type", "application/json")]
                if fault.retry_after is not None:
                    headers.append(("Retry-After", str(fault.retry_after)))
                error = json.dumps({"type": "about:blank", "status": fault.status or 500})
                self._send(fault.status or 500, headers, error.encode())
                return
        route = fake._route(self.command, self.path, self.headers, body)
        if route is None:
            self._event_source()
            return
        status, headers, payload = route
        if fault is not None and fault.truncate:
            self._send(status, headers, payload, truncate=True)
            return
        self._send(status, headers, payload)

    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            parts: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(parts)
                parts.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _send(self, status: int, headers: Headers, payload: bytes, truncate: bool = False) -> None:
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        if truncate:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(payload[: len(payload) // 2] if truncate else payload)

    def _reset(self) -> None:
        # SO_LINGER 0 makes close() send RST instead of FIN: the client sees a reset.
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close_connection = True
        self.connection.close()

    def _event_source(self) -> None:
        fake = self.server.fake
        query = parse_qs(urlsplit(self.path).query)
        types_arg = (query.get("types") or ["*"])[0]
        close_after = (query.get("closeafter") or ["no"])[0]
        try:
            ping = int((query.get("ping") or ["0"])[0])
        except ValueError:
            self._send(400, [("Content-Type", "text/plain")], b"invalid ping")
            return
        if fake.dialect == "stalwart" and ping:
            ping = max(ping, 30)  # Stalwart never pings more often than every 30 s.
        wanted = None if types_arg == "*" else set(types_arg.split(","))
        if fake.dialect == "stalwart" and wanted is not None and not wanted <= PUSH_TYPES:
            self._send(400, [("Content-Type", "text/plain")], b"invalid types")
            return
        user = fake._authenticate(self.headers.get("Authorization"))
        own_account = fake.stores[user].account_id if isinstance(user, str) else None
        core = fake._core
        with core.changed:
            # Taken before the headers go out, so no change after the client connected is missed.
            seen = core.change_counter
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        last_ping = time.monotonic()
        try:
            while not fake._stopping.is_set():
                with core.changed:
                    core.changed.wait(timeout=0.2)
                    counter = core.change_counter
                if counter != seen:
                    changes = core.changes_since(seen)
                    seen = counter
                    changed = {
                        account: {t: s for t, s in types.items() if wanted is None or t in wanted}
                        for account, types in changes.items()
                    }
                    changed = {a: t for a, t in changed.items() if t and a == own_account}
                    if changed:
                        data = json.dumps({"@type": "StateChange", "changed": changed})
                        self.wfile.write(f"event: state\ndata: {data}\n\n".encode())
                        self.wfile.flush()
                        if close_after == "state":
                            return
                if ping and time.monotonic() - last_ping >= ping:
                    last_ping = time.monotonic()
                    interval = ping * 1000 if fake.dialect == "stalwart" else ping
                    data = json.dumps({"interval": interval})
                    self.wfile.write(f"event: ping\ndata: {data}\n\n".encode())
                    self.wfile.flush()
        except OSError:
            return


class FakeJMAPServer:
    """An in-process JMAP server speaking the ``stalwart``, ``ietf`` or ``cyrus36`` dialect.

    Use as a context manager; it serves from a background thread on 127.0.0.1 until exit.
    """

    def __init__(
        self,
        dialect: str = "stalwart",
        tasks: bool = False,
        *,
        users: dict[str, str] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        if dialect not in DIALECTS:
            raise ValueError(f"dialect must be one of {DIALECTS}")
        self.dialect = dialect
        self.tasks = tasks
        self.users = dict(users or {"alice": "secret"})
        if not self.users:
            raise ValueError("at least one user is needed")
        self._core = Core(dialect, tasks, default_limits(dialect))
        self.faults: list[Fault] = []
        self.requests: list[RecordedRequest] = []
        self.tokens = {f"tok-{user}": user for user in self.users}
        for index, user in enumerate(self.users):
            account_id = encode_id(index + 1) if dialect == "stalwart" else user
            self._core.stores[user] = Store(
                dialect, user, account_id, lock=self._core.lock, notify=self._notifier(user)
            )
        self._stopping = threading.Event()
        self._host = host
        self._port = port
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    def _notifier(self, user: str) -> Any:
        def notify(types: set[str]) -> None:
            self._core.notify(self._core.stores[user], types)

        return notify

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> FakeJMAPServer:
        self._httpd = _HTTPServer((self._host, self._port), self)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is None:
            return
        self._stopping.set()
        with self._core.changed:
            self._core.changed.notify_all()
        self._httpd.shutdown()
        self._httpd.close_connections()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._httpd = None

    def __enter__(self) -> FakeJMAPServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # ------------------------------------------------------------------ public attributes

    @property
    def base_url(self) -> str:
        if self._httpd is None:
            raise RuntimeError("the server is not running")
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def session_url(self) -> str:
        return f"{self.base_url}/.well-known/jmap"

    @property
    def url(self) -> str:
        return self.session_url

    @property
    def api_url(self) -> str:
        return f"{self.base_url}/jmap/"

    @property
    def username(self) -> str:
        return next(iter(self.users))

    @property
    def password(self) -> str:
        return self.users[self.username]

    @property
    def token(self) -> str:
        return f"tok-{self.username}"

    @property
    def account_id(self) -> str:
        return self.store.account_id

    @property
    def store(self) -> Store:
        """The first user's data."""
        return self._core.stores[self.username]

    @property
    def stores(self) -> dict[str, Store]:
        return self._core.stores

    @property
    def limits(self) -> dict[str, Any]:
        return self._core.limits

    @property
    def lazy_text_index(self) -> bool:
        """When true, text filters miss writes made in the same API request (Stalwart's queue)."""
        return self._core.lazy_text_index

    @lazy_text_index.setter
    def lazy_text_index(self, value: bool) -> None:
        self._core.lazy_text_index = value

    @property
    def force_cannot_calculate(self) -> bool | str:
        return self._core.force_cannot_calculate

    @force_cannot_calculate.setter
    def force_cannot_calculate(self, value: bool | str) -> None:
        self._core.force_cannot_calculate = value

    # ------------------------------------------------------------------ internals

    def _record(
        self, method: str, path: str, headers: dict[str, str], body: bytes
    ) -> RecordedRequest:
        redacted = {
            k: ("<redacted>" if k.lower() == "authorization" else v) for k, v in headers.items()
        }
        try:
            parsed = json.loads(body) if body else None
        except (ValueError, UnicodeDecodeError):
            parsed = None
        recorded = RecordedRequest(method, path, redacted, parsed, body)
        with self._core.lock:
            self.requests.append(recorded)
        return recorded

    def _take_fault(self, path: str, request: Any) -> Fault | None:
        calls = request.get("methodCalls") if isinstance(request, dict) else None
        names = (
            {c[0] for c in calls if isinstance(c, list) and c} if isinstance(calls, list) else set()
        )
        with self._core.lock:
            for fault in self.faults:
                if fault.method is not None and fault.method not in names:
                    continue
                if fault.path is None or path.startswith(fault.path):
                    fault.times -= 1
                    if fault.times <= 0:
                        self.faults.remove(fault)
                    return fault
        return None

    def _authenticate(self, header: str | None) -> str | bool | None:
        """The user name, None without a header, False when the credentials are wrong."""
        if header is None:
            return None
        scheme, _, value = header.strip().partition(" ")
        if scheme.lower() == "bearer":
            return self.tokens.get(value.strip(), False)
        if scheme.lower() != "basic":
            return False
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return False
        user, sep, password = decoded.partition(":")
        if not sep:
            return False
        if self.dialect == "stalwart":
            user = user.strip().lower()
        if self.users.get(user) == password:
            return user
        return False

    def _unauthorized(self) -> tuple[int, Headers, bytes]:
        if self.dialect == "stalwart":
            body = {
                "type": "about:blank",
                "status": 401,
                "title": "Unauthorized",
                "detail": "You have to authenticate first.",
            }
            headers: Headers = [
                ("Content-Type", "application/problem+json"),
                (
                    "WWW-Authenticate",
                    'Bearer realm="Stalwart Server", '
                    'resource_metadata="/.well-known/oauth-protected-resource"',
                ),
                ("WWW-Authenticate", 'Basic realm="Stalwart Server"'),
            ]
            return 401, headers, json.dumps(body).encode()
        html = b"<html><body><h1>Unauthorized</h1></body></html>"
        return (
            401,
            [("Content-Type", "text/html"), ("WWW-Authenticate", 'Basic realm="jmap"')],
            html,
        )

    @staticmethod
    def _json(
        status: int, value: Any, content_type: str = "application/json"
    ) -> tuple[int, Headers, bytes]:
        return status, [("Content-Type", content_type)], json.dumps(value).encode()

    def _route(
        self, method: str, raw_path: str, headers: Any, body: bytes
    ) -> tuple[int, Headers, bytes] | None:
        """Answer a request; ``None`` means: stream the EventSource."""
        path = urlsplit(raw_path).path
        stalwart = self.dialect == "stalwart"
        if path == "/.well-known/jmap" and method == "GET":
            if stalwart:
                return 307, [("Location", "/jmap/session"), ("Cache-Control", "no-cache")], b""
            return 301, [("Location", "/jmap")], b""
        if method == "OPTIONS" and path.startswith("/jmap"):
            return 204, [], b""
        session_paths = ("/jmap/session",) if stalwart else ("/jmap", "/jmap/")
        auth = self._authenticate(headers.get("Authorization"))
        if path in session_paths and method == "GET":
            if auth is None and stalwart:
                return self._json(200, self._session(None))
            if not isinstance(auth, str):
                return self._unauthorized()
            with self._core.lock:
                self._core.stores[auth].ensure_defaults(with_tasks=self.tasks)
            return self._json(200, self._session(auth))
        if path in ("/jmap", "/jmap/") and method == "POST":
            if not isinstance(auth, str):
                return self._unauthorized()
            try:
                response = handle(self._core, auth, body, headers.get("Content-Type"))
            except RequestProblem as problem:
                return self._json(problem.status, problem.to_json(), "application/problem+json")
            return self._json(200, response)
        if path in ("/jmap/eventsource", "/jmap/eventsource/") and method == "GET":
            if not isinstance(auth, str):
                return self._unauthorized()
            return None
        return 404, [("Content-Type", "text/plain")], b"Not Found"

    def _session(self, user: str | None) -> dict[str, Any]:
        account = self._core.stores[user].account_id if user else None
        return build_session(
            self.dialect,
            base_url=self.base_url,
            tasks=self.tasks,
            limits=self.limits,
            username=user,
            account_id=account,
        )
