"""The JMAP wire model and sans-I/O flows (RFC 8620, JMAP Calendars and Tasks drafts).

Pure: no sockets, files or threads. Flows are generators yielding
:class:`~jmapsyncd.protocol.wire.HttpRequest` and receiving
:class:`~jmapsyncd.protocol.wire.HttpResponse`; any driver can run them.
"""

from jmapsyncd.protocol.dialect import Dialect, event_from_wire, event_to_wire, replacement_patch
from jmapsyncd.protocol.envelope import Call, Request, Response, ResultRef
from jmapsyncd.protocol.flows import ClientState, Flow
from jmapsyncd.protocol.session import Limits, Session, parse_session
from jmapsyncd.protocol.values import ChangeSet, KindPull, Pull, SetResult
from jmapsyncd.protocol.wire import HttpRequest, HttpResponse

__all__ = [
    "Call",
    "ChangeSet",
    "ClientState",
    "Dialect",
    "Flow",
    "HttpRequest",
    "HttpResponse",
    "KindPull",
    "Limits",
    "Pull",
    "Request",
    "Response",
    "ResultRef",
    "Session",
    "SetResult",
    "event_from_wire",
    "event_to_wire",
    "parse_session",
    "replacement_patch",
]
