"""An in-process fake JMAP server for tests (RFC 8620, JMAP Calendars and Tasks drafts).

It speaks three dialects — ``stalwart`` (Stalwart 0.16), ``ietf`` (Cyrus 3.10) and ``cyrus36``
(Cyrus 3.6's own) — optionally offers JMAP Tasks, records every request and injects faults::

    from tests.fakeserver import FakeJMAPServer, Fault

    with FakeJMAPServer(dialect="stalwart", tasks=False) as srv:
        cal = srv.store.default_calendar_id
        srv.store.add_event(cal, {"title": "x", "start": "2026-01-01T10:00:00"})
        srv.faults.append(Fault(status=503, retry_after=1))
        ...  # point the client at srv.session_url with srv.username / srv.password

``python -m tests.fakeserver --dialect ietf --tasks --port 0`` serves from a separate process and
prints the session URL.
"""

from tests.fakeserver.objects import SetErr
from tests.fakeserver.server import FakeJMAPServer, Fault, RecordedRequest
from tests.fakeserver.store import ChangesPage, Store

__all__ = ["ChangesPage", "FakeJMAPServer", "Fault", "RecordedRequest", "SetErr", "Store"]
