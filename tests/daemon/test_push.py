"""Server push (RFC 8620 §7.3): the event-stream parser, and the listener against a local server.

The server here is a few lines of HTTP/1.1 over a socket on 127.0.0.1, so each test decides
exactly what the stream does: a burst of changes, a drop, silence, 401, an instant close.
"""

from __future__ import annotations

import contextlib
import json
import queue
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest

from jmapsyncd.daemon.push import (
    Debouncer,
    PushBackoff,
    PushListener,
    PushState,
    PushStatus,
    SSEEvent,
    SSEParser,
    expand_event_source_url,
    is_relevant,
    parse_state_change,
    ping_interval,
)

ACCOUNT = "acc1"
TEMPLATE = "/jmap/eventsource/?types={types}&closeafter={closeafter}&ping={ping}"


def wait_until(check: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


# -- the parser ----------------------------------------------------------------------------------


def feed_all(parser: SSEParser, chunks: list[bytes]) -> list[SSEEvent]:
    return [event for chunk in chunks for event in parser.feed(chunk)]


def test_an_event_with_a_type_and_data() -> None:
    events = SSEParser().feed(b'event: state\ndata: {"a": 1}\n\n')
    assert events == [SSEEvent("state", '{"a": 1}')]


def test_multi_line_data_is_joined_with_newlines() -> None:
    events = SSEParser().feed(b"data: one\ndata: two\ndata:three\n\n")
    assert events == [SSEEvent("message", "one\ntwo\nthree")]


def test_comments_and_unknown_fields_are_ignored() -> None:
    events = SSEParser().feed(b": keep-alive\nfoo: bar\nevent: ping\n:x\ndata: {}\n\n")
    assert events == [SSEEvent("ping", "{}")]


def test_crlf_and_cr_line_ends() -> None:
    parser = SSEParser()
    events = parser.feed(b"event: a\r\ndata: 1\r\n\r\nevent: b\rdata: 2\r\r")
    assert events == [SSEEvent("a", "1"), SSEEvent("b", "2")]


def test_chunks_split_anywhere_give_the_same_events() -> None:
    stream = (
        b'\xef\xbb\xbfid: 7\r\nevent: state\r\ndata: {"changed":\r\ndata: 1}\r\n\r\n'
        b': comment\r\nevent: ping\r\ndata: {"interval": 5}\r\n\r\n'
    )
    whole = SSEParser().feed(stream)
    assert whole == [
        SSEEvent("state", '{"changed":\n1}', "7"),
        SSEEvent("ping", '{"interval": 5}', "7"),
    ]
    for size in (1, 2, 3, 5, 7):
        chunks = [stream[i : i + size] for i in range(0, len(stream), size)]
        assert feed_all(SSEParser(), chunks) == whole, size


def test_a_cr_at_a_chunk_end_followed_by_lf_is_one_line_end() -> None:
    parser = SSEParser()
    events = feed_all(parser, [b"data: x\r", b"\n\r", b"\n"])
    assert events == [SSEEvent("message", "x")]


def test_a_multi_byte_character_split_between_chunks() -> None:
    data = "data: Geburtstag 🎂\n\n".encode()
    cut = data.index(b"\xf0") + 2
    assert feed_all(SSEParser(), [data[:cut], data[cut:]]) == [SSEEvent("message", "Geburtstag 🎂")]


def test_an_event_without_data_is_not_dispatched_and_id_and_retry_are_kept() -> None:
    parser = SSEParser()
    assert parser.feed(b"event: state\nid: 42\nretry: 1500\n\n") == []
    assert parser.last_event_id == "42"
    assert parser.retry == 1500
    assert parser.feed(b"data: x\n\n") == [SSEEvent("message", "x", "42")]


def test_an_incomplete_event_waits_for_its_blank_line() -> None:
    parser = SSEParser()
    assert parser.feed(b"event: state\ndata: 1\n") == []
    assert parser.feed(b"\n") == [SSEEvent("state", "1")]


# -- JMAP values ---------------------------------------------------------------------------------


def test_state_change_parsing_and_relevance() -> None:
    data = json.dumps(
        {"@type": "StateChange", "changed": {ACCOUNT: {"CalendarEvent": "s2", "Email": "e9"}}}
    )
    changed = parse_state_change(data)
    assert changed == {ACCOUNT: {"CalendarEvent": "s2", "Email": "e9"}}
    assert is_relevant(changed, ACCOUNT)
    assert not is_relevant(changed, "someone-else")
    assert not is_relevant({ACCOUNT: {"Email": "1", "Mailbox": "2"}}, ACCOUNT)
    assert is_relevant({ACCOUNT: {"TaskList": "1"}}, ACCOUNT)
    assert parse_state_change("not json") is None
    assert parse_state_change('{"@type": "Other", "changed": {}}') is None
    assert parse_state_change('{"@type": "StateChange"}') is None


def test_ping_interval_is_in_seconds_or_stalwart_milliseconds() -> None:
    assert ping_interval('{"interval": 5}') == 5.0
    assert ping_interval('{"interval": 30000}') == 30.0
    assert ping_interval('{"interval": true}') is None
    assert ping_interval("{}") is None
    assert ping_interval("nonsense") is None


def test_event_source_url_template_is_filled_and_resolved() -> None:
    url = expand_event_source_url(
        TEMPLATE,
        "http://127.0.0.1:8080/jmap",
        types=["Calendar", "CalendarEvent"],
        closeafter="no",
        ping=30,
    )
    assert url == (
        "http://127.0.0.1:8080/jmap/eventsource/?types=Calendar,CalendarEvent&closeafter=no&ping=30"
    )
    absolute = expand_event_source_url(
        "https://push.example/es?t={types}&c={closeafter}&p={ping}",
        "https://jmap.example/jmap/session",
        types="*",
        closeafter="no",
        ping=5,
    )
    assert absolute == "https://push.example/es?t=*&c=no&p=5"


def test_the_debouncer_fires_once_per_burst() -> None:
    calls: list[float] = []
    debouncer = Debouncer(0.2, lambda: calls.append(time.monotonic()))
    for _ in range(50):
        debouncer.trigger()
    assert wait_until(lambda: len(calls) == 1, 5)
    time.sleep(0.5)
    assert len(calls) == 1
    debouncer.trigger()
    assert wait_until(lambda: len(calls) == 2, 5)
    debouncer.cancel()
    debouncer.trigger()
    time.sleep(0.4)
    assert len(calls) == 2


def test_the_backoff_grows_and_is_capped() -> None:
    backoff = PushBackoff(base=1.0, cap=8.0)
    for failures, ceiling in ((1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (10, 8.0)):
        delay = backoff.delay(failures)
        assert ceiling / 2 <= delay <= ceiling
    assert backoff.delay(1, retry_after=5.0) >= 5.0


# -- a scriptable event-stream server ------------------------------------------------------------


@dataclass
class Conn:
    """One accepted connection: what the client asked, and a queue of bytes to send it."""

    sock: socket.socket
    request: str
    outbox: queue.Queue[bytes | None] = field(default_factory=queue.Queue)

    def header(self, name: str) -> str | None:
        for line in self.request.split("\r\n")[1:]:
            key, _, value = line.partition(":")
            if key.strip().lower() == name.lower():
                return value.strip()
        return None


Behaviour = Callable[["StreamServer", Conn], None]


class StreamServer:
    """Accepts connections on 127.0.0.1 and runs ``behaviour`` for each on its own thread."""

    def __init__(self, behaviour: Behaviour) -> None:
        self.behaviour = behaviour
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.conns: list[Conn] = []
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    @property
    def session_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/jmap"

    @property
    def connections(self) -> int:
        with self.lock:
            return len(self.conns)

    def _accept(self) -> None:
        while not self.stopping.is_set():
            try:
                sock, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(sock,), daemon=True).start()

    def _serve(self, sock: socket.socket) -> None:
        data = b""
        with contextlib.suppress(OSError):
            while b"\r\n\r\n" not in data:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                data += chunk
        conn = Conn(sock, data.decode("latin-1"))
        with self.lock:
            self.conns.append(conn)
        try:
            self.behaviour(self, conn)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def send(self, payload: bytes) -> None:
        """Queue ``payload`` for the newest connection."""
        with self.lock:
            conn = self.conns[-1]
        conn.outbox.put(payload)

    def drop(self) -> None:
        """End the newest connection."""
        with self.lock:
            conn = self.conns[-1]
        conn.outbox.put(None)

    def close(self) -> None:
        self.stopping.set()
        self.listener.close()
        with self.lock:
            conns = list(self.conns)
        for conn in conns:
            conn.outbox.put(None)


STREAM_HEADERS = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
    b"Connection: close\r\n\r\n"
)


def streaming(server: StreamServer, conn: Conn) -> None:
    """200 and an event stream fed from the connection's outbox until it gets None."""
    conn.sock.sendall(STREAM_HEADERS)
    while not server.stopping.is_set():
        try:
            item = conn.outbox.get(timeout=0.1)
        except queue.Empty:
            continue
        if item is None:
            return
        conn.sock.sendall(item)


def status(code: int, reason: str) -> Behaviour:
    def answer(server: StreamServer, conn: Conn) -> None:
        conn.sock.sendall(
            f"HTTP/1.1 {code} {reason}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".encode()
        )

    return answer


def close_at_once(server: StreamServer, conn: Conn) -> None:
    conn.sock.sendall(STREAM_HEADERS)


def state_event(types: dict[str, str], account: str = ACCOUNT, event_id: str = "") -> bytes:
    data = json.dumps({"@type": "StateChange", "changed": {account: types}})
    head = f"id: {event_id}\n" if event_id else ""
    return f"{head}event: state\ndata: {data}\n\n".encode()


@dataclass
class Harness:
    server: StreamServer
    listener: PushListener
    changes: list[float]
    statuses: list[PushStatus]

    def states(self) -> list[PushState]:
        return [s.state for s in list(self.statuses)]


@contextlib.contextmanager
def harness(behaviour: Behaviour, *, ping: int = 30, failing_after: int = 3) -> Iterator[Harness]:
    server = StreamServer(behaviour)
    changes: list[float] = []
    statuses: list[PushStatus] = []
    listener = PushListener(
        TEMPLATE,
        server.session_url,
        ACCOUNT,
        on_change=lambda: changes.append(time.monotonic()),
        on_status=statuses.append,
        auth=("alice", "secret"),
        ping=ping,
        debounce=0.3,
        backoff=PushBackoff(base=0.2, cap=2.0),
        healthy_after=0.5,
        failing_after=failing_after,
        connect_timeout=5.0,
    )
    listener.start()
    try:
        yield Harness(server, listener, changes, statuses)
    finally:
        stopped = listener.stop(timeout=5)
        server.close()
        assert stopped, "the listener thread did not stop"


# -- the listener --------------------------------------------------------------------------------


def test_the_stream_request_carries_credentials_types_and_ping() -> None:
    with harness(streaming) as h:
        assert wait_until(lambda: h.server.connections == 1)
        conn = h.server.conns[0]
        first_line = conn.request.split("\r\n")[0]
        assert first_line.startswith(
            "GET /jmap/eventsource/?types=Calendar,CalendarEvent,Task,TaskList"
            "&closeafter=no&ping=30 "
        )
        assert (conn.header("Authorization") or "").startswith("Basic ")
        assert conn.header("Accept") == "text/event-stream"
        assert conn.header("Last-Event-ID") is None
        assert wait_until(lambda: PushState.ACTIVE in h.states())


def test_a_burst_of_changes_asks_for_one_pass() -> None:
    with harness(streaming) as h:
        # Connecting asks for one catch-up pass.
        assert wait_until(lambda: len(h.changes) == 1)
        burst = b"".join(
            state_event({"CalendarEvent": f"s{i}"}, event_id=str(i)) for i in range(20)
        )
        for i in range(20):  # twenty separate writes, as a server sends them
            h.server.send(burst[i * len(burst) // 20 : (i + 1) * len(burst) // 20])
        assert wait_until(lambda: len(h.changes) == 2)
        time.sleep(1.0)  # more than three debounce delays: nothing else may follow
        assert len(h.changes) == 2
        assert h.listener.status.last_event is not None


def test_changes_of_other_accounts_and_types_ask_for_nothing() -> None:
    with harness(streaming) as h:
        assert wait_until(lambda: len(h.changes) == 1)
        h.server.send(state_event({"Email": "1", "Mailbox": "2"}))
        h.server.send(state_event({"CalendarEvent": "9"}, account="other"))
        h.server.send(b'event: ping\ndata: {"interval": 30}\n\n')
        h.server.send(b"event: state\ndata: not json\n\n")
        h.server.send(state_event({"Calendar": "3"}))  # this one counts
        assert wait_until(lambda: len(h.changes) == 2)
        time.sleep(0.8)
        assert len(h.changes) == 2


def test_a_dropped_stream_is_reopened_with_the_last_event_id() -> None:
    with harness(streaming) as h:
        assert wait_until(lambda: len(h.changes) == 1)
        h.server.send(state_event({"CalendarEvent": "s1"}, event_id="41"))
        assert wait_until(lambda: len(h.changes) == 2)
        time.sleep(0.6)  # longer than healthy_after: the stream served its time
        h.server.drop()
        assert wait_until(lambda: h.server.connections == 2)
        assert h.server.conns[1].header("Last-Event-ID") == "41"
        # The new stream asks for a catch-up pass, and works like the first.
        assert wait_until(lambda: len(h.changes) == 3)
        h.server.send(state_event({"CalendarEvent": "s2"}))
        assert wait_until(lambda: len(h.changes) == 4)
        assert h.listener.status.state is PushState.ACTIVE
        assert h.listener.status.reconnects == 1
        assert PushState.RECONNECTING in h.states()


def test_a_silent_stream_is_presumed_dead_and_replaced() -> None:
    # ping=1: no byte for 2.5 s means the stream is dead. The server never pings.
    with harness(streaming, ping=1) as h:
        assert wait_until(lambda: h.server.connections >= 2, 15)
        dead = [s for s in h.statuses if "presumed dead" in s.detail]
        assert dead, [s.detail for s in h.statuses]


def test_pings_keep_a_stream_alive() -> None:
    stop = threading.Event()

    def pinging(server: StreamServer, conn: Conn) -> None:
        conn.sock.sendall(STREAM_HEADERS)
        while not stop.wait(0.5) and not server.stopping.is_set():
            conn.sock.sendall(b'event: ping\ndata: {"interval": 1}\n\n')

    with harness(pinging, ping=1) as h:
        assert wait_until(lambda: h.server.connections == 1)
        time.sleep(4.0)  # well past 2.5 s: only pings arrive, and they suffice
        stop.set()
        assert h.server.connections == 1
        assert h.listener.status.state is PushState.ACTIVE


def test_401_stops_push_for_good() -> None:
    with harness(status(401, "Unauthorized")) as h:
        assert h.listener.wait_stopped(10)
        assert h.listener.status.state is PushState.UNAVAILABLE
        assert "401" in h.listener.status.detail
        time.sleep(0.5)
        assert h.server.connections == 1
        assert h.changes == []


@pytest.mark.parametrize("code", [204, 404])
def test_a_server_without_push_is_given_up(code: int) -> None:
    with harness(status(code, "No")) as h:
        assert h.listener.wait_stopped(10)
        assert h.listener.status.state is PushState.UNAVAILABLE
        assert h.server.connections == 1


def test_400_is_retried_once_with_all_types() -> None:
    with harness(status(400, "Bad Request")) as h:
        assert h.listener.wait_stopped(10)
        assert h.server.connections == 2
        assert "types=*&" in h.server.conns[1].request.split("\r\n")[0]
        assert h.listener.status.state is PushState.UNAVAILABLE


def test_a_server_that_closes_at_once_is_retried_with_growing_delays() -> None:
    with harness(close_at_once, failing_after=2) as h:
        time.sleep(3.0)
        count = h.server.connections
    # base 0.2 s doubling: 0.1-0.2, 0.2-0.4, 0.4-0.8, 0.8-1.6 ... at most ~6 within 3 s.
    assert 2 <= count <= 8, count
    assert PushState.FAILING in h.states()
    assert h.listener.status.state is PushState.STOPPED


def test_5xx_is_retried_with_backoff() -> None:
    with harness(status(503, "Unavailable")) as h:
        assert wait_until(lambda: h.server.connections >= 2)
        assert h.listener.status.state in (PushState.RECONNECTING, PushState.FAILING)
        assert "503" in h.listener.status.detail


def test_stop_closes_a_blocked_stream_promptly() -> None:
    server = StreamServer(streaming)
    listener = PushListener(TEMPLATE, server.session_url, ACCOUNT, on_change=lambda: None, ping=300)
    listener.start()
    try:
        assert wait_until(lambda: listener.status.state is PushState.ACTIVE)
        assert listener.stop(timeout=2.0)
        assert listener.status.state is PushState.STOPPED
    finally:
        server.close()


def test_from_session_needs_an_event_source_url() -> None:
    @dataclass
    class FakeSession:
        raw: dict[str, object]
        url: str = "http://127.0.0.1:1/jmap"
        account_id: str = ACCOUNT

        def has(self, capability: str) -> bool:
            return False

    assert PushListener.from_session(FakeSession({}), on_change=lambda: None) is None
    listener = PushListener.from_session(
        FakeSession({"eventSourceUrl": TEMPLATE}), on_change=lambda: None
    )
    assert listener is not None
    assert "types=Calendar,CalendarEvent&" in listener.url


def test_stop_is_prompt_while_the_server_has_not_answered_yet() -> None:
    def never_answer(server: StreamServer, conn: Conn) -> None:
        server.stopping.wait(30)

    server = StreamServer(never_answer)
    listener = PushListener(TEMPLATE, server.session_url, ACCOUNT, on_change=lambda: None, ping=300)
    listener.start()
    try:
        assert wait_until(lambda: server.connections == 1)
        assert listener.stop(timeout=2.0)
    finally:
        server.close()
