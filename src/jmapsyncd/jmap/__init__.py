"""Public JMAP calendar client API (RFC 8620 core, JMAP Calendars and Tasks drafts).

``JMAPClient`` and ``AsyncJMAPClient`` offer the same methods (the async ones are coroutines);
``get_jmap_client``/``get_async_jmap_client`` build them from arguments or ``JMAP_*`` variables.
The exception tree of :mod:`jmapsyncd.errors` is re-exported here.
"""

from jmapsyncd.errors import (
    CannotCalculateChanges,
    JMAPAuthError,
    JMAPCapabilityError,
    JMAPError,
    JMAPMethodError,
    JMAPNotFoundError,
    JMAPRequestError,
    JMAPSetError,
    JMAPTimeoutError,
    JMAPTransportError,
    LocalProtocolError,
    RemoteProtocolError,
    StateMismatch,
    UnsupportedFilter,
)
from jmapsyncd.jmap.async_client import AsyncJMAPClient
from jmapsyncd.jmap.client import JMAPClient
from jmapsyncd.jmap.factory import get_async_jmap_client, get_jmap_client
from jmapsyncd.jmap.objects import JMAPCalendar, JMAPCalendarObject
from jmapsyncd.protocol.dialect import replacement_patch
from jmapsyncd.protocol.values import ChangeSet, KindPull, Pull, SetResult

__all__ = [
    "AsyncJMAPClient",
    "CannotCalculateChanges",
    "ChangeSet",
    "JMAPAuthError",
    "JMAPCalendar",
    "JMAPCalendarObject",
    "JMAPCapabilityError",
    "JMAPClient",
    "JMAPError",
    "JMAPMethodError",
    "JMAPNotFoundError",
    "JMAPRequestError",
    "JMAPSetError",
    "JMAPTimeoutError",
    "JMAPTransportError",
    "KindPull",
    "LocalProtocolError",
    "Pull",
    "RemoteProtocolError",
    "SetResult",
    "StateMismatch",
    "UnsupportedFilter",
    "get_async_jmap_client",
    "get_jmap_client",
    "replacement_patch",
]
