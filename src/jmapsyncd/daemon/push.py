"""Server push over EventSource (RFC 8620 §7.3): ask for a sync pass when the server says so.

Promises:

* :class:`SSEParser` turns ``text/event-stream`` bytes, fed in chunks of any size, into
  :class:`SSEEvent` values as the HTML EventSource rules describe them (CRLF, LF or CR line ends,
  comments, multi-line ``data``, ``id`` and ``retry`` fields).
* :class:`PushListener` holds one long-lived GET on the session's ``eventSourceUrl`` (a URI
  template with ``{types}``, ``{closeafter}`` and ``{ping}``, resolved against the session URL)
  on its own thread and its own HTTP session, with the client's credentials and TLS setting. A
  ``state`` event whose ``StateChange`` names a calendar or task type of our account asks for a
  pass through ``on_change``; a burst of such events within the debounce delay asks once.
* Supervision: after a drop it reconnects with exponential backoff and jitter, sending
  ``Last-Event-ID`` so the server can replay what happened in the gap, and asks for one catch-up
  pass per connection; no byte for 2.5 ping intervals means the stream is dead and is replaced;
  a stream that ends before it was useful counts as a failure, so a server that closes at once
  is retried ever more slowly, never in a loop. 401/403 stop push for good (the sync pass reports
  the credentials itself); a server without working push (204, 404, 405, 501, or 400 even for
  ``types=*``) stops it too, and the daemon polls.
* :meth:`PushListener.stop` returns within about two seconds: it shuts the stream's socket down
  from the stopping thread, which ends the blocked read.
"""

from __future__ import annotations

import contextlib
import enum
import json
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import partial
from typing import Any
from urllib.parse import quote, urljoin

import niquests

from jmapsyncd.daemon.backoff import Backoff
from jmapsyncd.protocol.wire import redact_url

log = logging.getLogger(__name__)

#: The JMAP data types whose changes are ours to sync.
PUSH_TYPES = ("Calendar", "CalendarEvent", "Task", "TaskList")
TASKS_CAPABILITY = "urn:ietf:params:jmap:tasks"

_EOL = (b"\r\n", b"\n", b"\r")


# -- text/event-stream ---------------------------------------------------------------------------


@dataclass(frozen=True)
class SSEEvent:
    """One dispatched event: its type (``message`` when unnamed), data, and the last event id."""

    event: str
    data: str
    id: str | None = None


class SSEParser:
    """Incremental ``text/event-stream`` parser (HTML Living Standard, "Server-sent events")."""

    def __init__(self) -> None:
        self._buffer = b""
        self._started = False
        self._skip_lf = False  # the previous chunk ended in CR; a leading LF belongs to it
        self._event = ""
        self._data: list[str] = []
        self.last_event_id: str | None = None
        #: the server's reconnection delay in milliseconds, if it sent one
        self.retry: int | None = None

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        """Parse ``chunk`` and return the events it completed."""
        if self._skip_lf and chunk.startswith(b"\n"):
            chunk = chunk[1:]
        self._skip_lf = False
        self._buffer += chunk
        if not self._started:
            if len(self._buffer) < 3 and b"\xef\xbb\xbf".startswith(self._buffer):
                return []  # maybe the start of a byte order mark
            self._started = True
            self._buffer = self._buffer.removeprefix(b"\xef\xbb\xbf")
        events: list[SSEEvent] = []
        while True:
            cut = _line_end(self._buffer)
            if cut is None:
                return events
            end, after = cut
            if after == len(self._buffer) and self._buffer.endswith(b"\r"):
                self._skip_lf = True  # a CR at the end: drop an LF that opens the next chunk
            line = self._buffer[:end].decode("utf-8", errors="replace")
            self._buffer = self._buffer[after:]
            event = self._line(line)
            if event is not None:
                events.append(event)

    def _line(self, line: str) -> SSEEvent | None:
        if not line:
            return self._dispatch()
        if line.startswith(":"):
            return None  # a comment
        name, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if name == "event":
            self._event = value
        elif name == "data":
            self._data.append(value)
        elif name == "id":
            if "\0" not in value:
                self.last_event_id = value
        elif name == "retry" and value.isascii() and value.isdigit():
            self.retry = int(value)
        return None

    def _dispatch(self) -> SSEEvent | None:
        event, data = self._event or "message", self._data
        self._event, self._data = "", []
        if not data:
            return None
        return SSEEvent(event, "\n".join(data), self.last_event_id)


def _line_end(buffer: bytes) -> tuple[int, int] | None:
    """Where the first line of ``buffer`` ends and the next one starts; None if incomplete."""
    cr = buffer.find(b"\r")
    lf = buffer.find(b"\n")
    if lf >= 0 and (cr < 0 or lf < cr):
        return lf, lf + 1
    if cr >= 0:
        if cr + 1 < len(buffer) and buffer[cr + 1 : cr + 2] == b"\n":
            return cr, cr + 2
        return cr, cr + 1
    return None


# -- JMAP push values ----------------------------------------------------------------------------


def parse_state_change(data: str) -> dict[str, dict[str, str]] | None:
    """The ``changed`` map of a ``StateChange`` object; None if ``data`` is not one."""
    try:
        value = json.loads(data)
    except ValueError:
        return None
    if not isinstance(value, dict) or value.get("@type", "StateChange") != "StateChange":
        return None
    changed = value.get("changed")
    if not isinstance(changed, dict):
        return None
    result: dict[str, dict[str, str]] = {}
    for account, types in changed.items():
        if isinstance(account, str) and isinstance(types, dict):
            result[account] = {str(k): str(v) for k, v in types.items()}
    return result


def is_relevant(changed: dict[str, dict[str, str]], account_id: str) -> bool:
    """True if ``changed`` names one of :data:`PUSH_TYPES` for ``account_id``."""
    return any(name in PUSH_TYPES for name in changed.get(account_id, {}))


def ping_interval(data: str) -> float | None:
    """The interval of a ``ping`` event, in seconds.

    RFC 8620 says seconds; Stalwart sends milliseconds, so a value above an hour is read as
    milliseconds.
    """
    try:
        value = json.loads(data)
    except ValueError:
        return None
    interval = value.get("interval") if isinstance(value, dict) else None
    if isinstance(interval, bool) or not isinstance(interval, int | float) or interval <= 0:
        return None
    return interval / 1000 if interval > 3600 else float(interval)


def expand_event_source_url(
    template: str, base_url: str, *, types: Iterable[str] | str, closeafter: str, ping: int
) -> str:
    """Fill the ``eventSourceUrl`` template and resolve it against the session URL."""
    type_list = types if isinstance(types, str) else ",".join(types)
    values = {"types": type_list, "closeafter": closeafter, "ping": str(ping)}
    url = template
    for name, value in values.items():
        url = url.replace("{" + name + "}", quote(value, safe=",*"))
    return urljoin(base_url, url)


# -- helpers -------------------------------------------------------------------------------------


class Debouncer:
    """Calls ``action`` once, ``delay`` seconds after the last of a burst of :meth:`trigger` calls.

    A burst that never pauses still fires ``max_delay`` seconds after it began.
    """

    def __init__(
        self, delay: float, action: Callable[[], None], *, max_delay: float | None = None
    ) -> None:
        self.delay = delay
        self.max_delay = max_delay if max_delay is not None else max(2.0, 5 * delay)
        self._action = action
        self._cond = threading.Condition()
        self._first: float | None = None
        self._due = 0.0
        self._thread: threading.Thread | None = None
        self._cancelled = False

    def trigger(self) -> None:
        with self._cond:
            if self._cancelled:
                return
            now = time.monotonic()
            if self._first is None:
                self._first = now
            self._due = min(now + self.delay, self._first + self.max_delay)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._wait, name="jmapsyncd-push-debounce", daemon=True
                )
                self._thread.start()
            self._cond.notify_all()

    def cancel(self) -> None:
        with self._cond:
            self._cancelled = True
            self._cond.notify_all()

    def _wait(self) -> None:
        with self._cond:
            while not self._cancelled:
                remaining = self._due - time.monotonic()
                if remaining <= 0:
                    break
                self._cond.wait(remaining)
            self._first = None
            self._thread = None
            if self._cancelled:
                return
        try:
            self._action()
        except Exception:
            log.exception("handling a push notification failed")


#: reconnection delays of the event stream: quicker than the sync's, a stream is cheap to retry
PushBackoff = partial(Backoff, base=1.0, cap=300.0)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class PushState(enum.StrEnum):
    CONNECTING = "connecting"  # not connected yet
    ACTIVE = "active"  # a stream is open
    RECONNECTING = "reconnecting"  # dropped; coming back soon
    FAILING = "failing"  # the stream keeps failing: poll meanwhile
    UNAVAILABLE = "unavailable"  # no usable push on this server: poll
    STOPPED = "stopped"


@dataclass(frozen=True)
class PushStatus:
    """What the listener is doing; ``covers_changes`` says whether polling can slow down."""

    state: PushState
    detail: str = ""
    connected_since: str | None = None
    last_event: str | None = None
    reconnects: int = 0

    @property
    def covers_changes(self) -> bool:
        return self.state in (PushState.ACTIVE, PushState.RECONNECTING)

    def to_json(self) -> dict[str, Any]:
        return {
            "state": self.state.value,
            "detail": self.detail,
            "connected_since": self.connected_since,
            "last_event": self.last_event,
            "reconnects": self.reconnects,
        }


class _Outcome(enum.Enum):
    ENDED = "ended"  # the stream was open and ended (EOF, error, silence)
    FAILED = "failed"  # could not open a stream this time
    BAD_TYPES = "bad types"  # 400: maybe the server does not know a type we asked for
    UNAVAILABLE = "unavailable"
    AUTH = "auth"
    STOPPED = "stopped"


@dataclass
class _Attempt:
    outcome: _Outcome
    reason: str
    opened_at: float | None = None
    retry_after: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def _retry_after(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def _shutdown_socket(resp: Any) -> None:
    """Shut the response's socket down so a read blocked on it returns now."""
    raw = getattr(resp, "raw", None)
    conn = getattr(raw, "_connection", None)
    sock = getattr(conn, "sock", None)
    if isinstance(sock, socket.socket):
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


# -- the listener --------------------------------------------------------------------------------


class PushListener:
    """Listens to a JMAP EventSource on its own thread; see the module docstring."""

    def __init__(
        self,
        template: str,
        session_url: str,
        account_id: str,
        *,
        on_change: Callable[[], None],
        on_status: Callable[[PushStatus], None] | None = None,
        auth: Any = None,
        verify_tls: bool = True,
        types: Iterable[str] = PUSH_TYPES,
        ping: int = 30,
        connect_timeout: float = 30.0,
        debounce: float = 0.3,
        backoff: Backoff | None = None,
        healthy_after: float = 10.0,
        failing_after: int = 3,
    ) -> None:
        self.template = template
        self.session_url = session_url
        self.account_id = account_id
        self.auth = auth
        self.verify_tls = verify_tls
        self.types: tuple[str, ...] | str = tuple(types)
        self.ping = ping
        self.connect_timeout = connect_timeout
        self.backoff = backoff or PushBackoff()
        self.healthy_after = healthy_after
        self.failing_after = failing_after
        self._on_status = on_status
        self._debouncer = Debouncer(debounce, on_change)
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._resp: Any = None
        self._http: niquests.Session | None = None
        self._thread = threading.Thread(target=self._run, name="jmapsyncd-push", daemon=True)
        self._server_ping: float | None = None
        self._last_event_id: str | None = None
        self._status = PushStatus(PushState.CONNECTING)
        #: connection attempts so far (for tests and the log)
        self.connections = 0

    @classmethod
    def from_session(
        cls,
        session: Any,
        *,
        on_change: Callable[[], None],
        on_status: Callable[[PushStatus], None] | None = None,
        **kwargs: Any,
    ) -> PushListener | None:
        """A listener for a :class:`~jmapsyncd.protocol.session.Session`; None without push."""
        raw = getattr(session, "raw", None) or {}
        template = raw.get("eventSourceUrl")
        if not isinstance(template, str) or not template:
            return None
        has = getattr(session, "has", None)
        tasks = bool(has(TASKS_CAPABILITY)) if callable(has) else True
        types = PUSH_TYPES if tasks else ("Calendar", "CalendarEvent")
        kwargs.setdefault("types", types)
        return cls(
            template,
            session.url,
            session.account_id,
            on_change=on_change,
            on_status=on_status,
            **kwargs,
        )

    # -- public ----------------------------------------------------------------------------------

    @property
    def status(self) -> PushStatus:
        return self._status

    @property
    def url(self) -> str:
        return self._url(self.types)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 2.0) -> bool:
        """Close the stream and end the thread; True if it ended within ``timeout``."""
        self._stop.set()
        self._debouncer.cancel()
        with self._lock:
            resp, http = self._resp, self._http
        if resp is not None:
            _shutdown_socket(resp)
        if http is not None:
            with contextlib.suppress(Exception):
                http.close()
        if self._thread.is_alive():
            self._thread.join(timeout)
        self._set_status(replace(self._status, state=PushState.STOPPED, detail="stopped"))
        return not self._thread.is_alive()

    def wait_stopped(self, timeout: float | None = None) -> bool:
        """Block until the thread ends (push gave up, or :meth:`stop`)."""
        self._thread.join(timeout)
        return not self._thread.is_alive()

    # -- internals -------------------------------------------------------------------------------

    def _url(self, types: tuple[str, ...] | str) -> str:
        return expand_event_source_url(
            self.template, self.session_url, types=types, closeafter="no", ping=self.ping
        )

    def _set_status(self, status: PushStatus) -> None:
        self._status = status
        if self._on_status is not None:
            try:
                self._on_status(status)
            except Exception:
                log.exception("reporting the push status failed")

    def _read_timeout(self) -> float:
        return 2.5 * max(float(self.ping), self._server_ping or 0.0)

    def _run(self) -> None:
        failures = 0
        http = niquests.Session()
        http.verify = self.verify_tls
        with self._lock:
            self._http = http
        try:
            while not self._stop.is_set():
                attempt = self._attempt(http)
                if self._stop.is_set() or attempt.outcome is _Outcome.STOPPED:
                    return
                if attempt.outcome is _Outcome.AUTH:
                    log.error(
                        "push: the server refused our credentials for the event stream (%s); "
                        "push is off, polling continues",
                        attempt.reason,
                    )
                    self._set_status(
                        replace(self._status, state=PushState.UNAVAILABLE, detail=attempt.reason)
                    )
                    return
                if attempt.outcome is _Outcome.BAD_TYPES and self.types != "*":
                    log.info("push: the server refused types=%s; asking for all types", self.types)
                    self.types = "*"
                    continue
                if attempt.outcome in (_Outcome.UNAVAILABLE, _Outcome.BAD_TYPES):
                    log.debug("push: %s; giving up", attempt.reason)
                    self._set_status(
                        replace(self._status, state=PushState.UNAVAILABLE, detail=attempt.reason)
                    )
                    return
                lasted = 0.0 if attempt.opened_at is None else time.monotonic() - attempt.opened_at
                if attempt.outcome is _Outcome.ENDED and lasted >= self.healthy_after:
                    failures = 1  # a stream that served its time: reconnect soon
                else:
                    failures += 1
                delay = self.backoff.delay(failures, attempt.retry_after)
                failing = failures > self.failing_after
                state = PushState.FAILING if failing else PushState.RECONNECTING
                self._set_status(
                    replace(self._status, state=state, detail=attempt.reason, connected_since=None)
                )
                (log.warning if failing else log.info)(
                    "push: %s; reconnecting in %.1fs", attempt.reason, delay
                )
                if self._stop.wait(delay):
                    return
        finally:
            with self._lock:
                self._http = None
            with contextlib.suppress(Exception):
                http.close()

    def _attempt(self, http: niquests.Session) -> _Attempt:
        url = self._url(self.types)
        headers = {
            "Accept": "text/event-stream",
            "Cache-Control": "no-cache",
            "Accept-Encoding": "identity",
        }
        if self._last_event_id is not None:
            headers["Last-Event-ID"] = self._last_event_id
        self.connections += 1
        log.debug("push: connecting to %s", redact_url(url))
        try:
            resp = http.get(
                url,
                headers=headers,
                auth=self.auth,
                stream=True,
                timeout=(self.connect_timeout, self._read_timeout()),
                # per request, or a CA bundle named in the environment would win
                verify=self.verify_tls,
            )
        except Exception as exc:  # niquests raises many kinds; none may end the listener
            if self._stop.is_set():
                return _Attempt(_Outcome.STOPPED, "stopped")
            return _Attempt(_Outcome.FAILED, f"cannot connect: {type(exc).__name__}")
        with self._lock:
            if self._stop.is_set():
                resp.close()
                return _Attempt(_Outcome.STOPPED, "stopped")
            self._resp = resp
        try:
            return self._consume(resp)
        finally:
            with self._lock:
                self._resp = None
            with contextlib.suppress(Exception):
                resp.close()

    def _consume(self, resp: Any) -> _Attempt:
        status = int(resp.status_code or 0)
        retry_after = _retry_after(resp.headers.get("Retry-After"))
        if status in (401, 403):
            return _Attempt(_Outcome.AUTH, f"credentials refused (HTTP {status})")
        if status in (204, 404, 405, 501):
            return _Attempt(_Outcome.UNAVAILABLE, f"HTTP {status} from its eventSourceUrl")
        if status == 400:
            return _Attempt(_Outcome.BAD_TYPES, "HTTP 400 from its eventSourceUrl")
        if status != 200:
            return _Attempt(_Outcome.FAILED, f"HTTP {status}", retry_after=retry_after)
        content_type = (resp.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if content_type != "text/event-stream":
            return _Attempt(_Outcome.FAILED, f"not an event stream ({content_type or 'no type'})")
        opened = time.monotonic()
        self._set_status(
            replace(
                self._status,
                state=PushState.ACTIVE,
                detail="",
                connected_since=_now(),
                reconnects=self._status.reconnects + (1 if self.connections > 1 else 0),
            )
        )
        # Changes made while we were not listening are caught by one pass.
        self._debouncer.trigger()
        parser = SSEParser()
        try:
            for chunk in resp.iter_content(4096):
                if self._stop.is_set():
                    return _Attempt(_Outcome.STOPPED, "stopped")
                for event in parser.feed(chunk):
                    self._handle(event)
                if parser.last_event_id is not None:
                    self._last_event_id = parser.last_event_id
        except Exception as exc:
            if self._stop.is_set():
                return _Attempt(_Outcome.STOPPED, "stopped")
            if "timed out" in str(exc).lower() or isinstance(exc, niquests.exceptions.Timeout):
                reason = f"no data for {self._read_timeout():.0f}s; the stream is presumed dead"
            else:
                reason = f"the stream broke: {type(exc).__name__}"
            return _Attempt(_Outcome.ENDED, reason, opened_at=opened)
        if self._stop.is_set():
            return _Attempt(_Outcome.STOPPED, "stopped")
        return _Attempt(_Outcome.ENDED, "the server closed the stream", opened_at=opened)

    def _handle(self, event: SSEEvent) -> None:
        if event.event == "ping":
            interval = ping_interval(event.data)
            if interval is not None and interval > self.ping and interval != self._server_ping:
                log.debug("push: the server pings every %.0fs", interval)
                self._server_ping = interval
            return
        if event.event not in ("state", "message"):
            return
        changed = parse_state_change(event.data)
        if changed is None:
            log.debug("push: ignoring an event that is not a StateChange")
            return
        if not is_relevant(changed, self.account_id):
            return
        log.debug("push: server change %s", changed.get(self.account_id))
        self._set_status(replace(self._status, last_event=_now()))
        self._debouncer.trigger()


def listener_for(
    settings: Any,
    session: Any,
    on_change: Callable[[], None],
    on_status: Callable[[PushStatus], None],
) -> PushListener | None:
    """A listener with the credentials and TLS setting of ``settings`` (a ``Settings``).

    The auth object is built the way the JMAP client builds its own, from a freshly resolved
    password; None when the session offers no ``eventSourceUrl``.
    """
    from jmapsyncd.jmap._transport import build_auth

    if not isinstance((getattr(session, "raw", None) or {}).get("eventSourceUrl"), str):
        return None
    auth = build_auth(settings.username, settings.resolve_password(), None, None)
    return PushListener.from_session(
        session,
        on_change=on_change,
        on_status=on_status,
        auth=auth,
        verify_tls=settings.verify_tls,
        connect_timeout=settings.timeout,
    )
