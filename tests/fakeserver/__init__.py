"""An in-process fake JMAP server for tests (RFC 8620, JMAP Calendars and Tasks drafts).

It speaks three dialects — ``stalwart`` (Stalwart 0.16), ``ietf`` (Cyrus 3.10) and ``cyrus36``
(Cyrus 3.6's own) — optionally offers JMAP Tasks, records every request and injects faults.
The behaviour of each dialect follows ``/work/shared/reference/stalwart-jmap.md`` and
``cyrus-jmap.md``; the modules say which RFC sections they implement::

    from tests.fakeserver import FakeJMAPServer, Fault

    with FakeJMAPServer(dialect="stalwart", tasks=False) as srv:
        cal = srv.store.default_calendar_id            # created lazily, as the servers do
        srv.store.add_event(cal, {"title": "x", "start": "2026-01-01T10:00:00"})
        srv.faults.append(Fault(status=503, retry_after=1))
        ...  # point the client at srv.session_url with srv.username / srv.password

Server attributes: ``session_url`` (= ``url``), ``base_url``, ``api_url``, ``username``,
``password``, ``token`` (Bearer), ``account_id``, ``store`` (first user's data), ``stores``
(per user), ``limits`` (mutable: core limits plus ``maxChanges`` and ``maxQueryResults`` caps),
``faults`` (:class:`Fault`, optionally limited to one JMAP ``method``), ``requests``
(:class:`RecordedRequest`), ``force_cannot_calculate`` (the next ``*/changes`` fails once; a
type name such as ``"CalendarEvent"``: the next ``/changes`` of that type),
``lazy_text_index`` (text filters miss writes of the same request).

Store (seeding bypasses all validation, so hostile ids, UIDs and names are fine):
``add_calendar(name, **props)``, ``add_event(calendar_id, jscal)``, ``add_task_list(name,
**props)``, ``add_task(task_list_id, jscal)`` (an ``"id"`` key forces the id), ``update_event``,
``update_task``, ``update_calendar``, ``update_task_list`` (RFC 8620 patches), ``destroy_event``,
``destroy_task``, ``destroy_calendar``, ``destroy_task_list``, ``batch()`` (one change),
``forget_history()`` (older states become ``cannotCalculateChanges``), ``state(type)``, and the
dicts ``calendars``, ``events``, ``task_lists``, ``tasks``.  Events are stored with a
``calendarIds`` map in every dialect.  While requests are in flight, iterate those dicts under
``with srv.store.lock:`` (the server's lock), or the server may change them underneath.

``python -m tests.fakeserver --dialect ietf --tasks --port 0`` serves from a separate process and
prints the session URL.
"""

from tests.fakeserver.objects import SetErr
from tests.fakeserver.server import FakeJMAPServer, Fault, RecordedRequest
from tests.fakeserver.store import ChangesPage, Store

__all__ = ["ChangesPage", "FakeJMAPServer", "Fault", "RecordedRequest", "SetErr", "Store"]
