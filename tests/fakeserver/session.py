"""The Session resource (RFC 8620 §2) each dialect serves, and its default limits.

Stalwart: absolute URLs, its capability list and order, calendars ``{}`` at session level, account
capability with ``maxCalendarsPerEvent`` null, empty accounts for an anonymous GET.  ``ietf``: like
Cyrus 3.10 (relative URLs, ``maxCalendarsPerEvent`` 1).  ``cyrus36``: Cyrus 3.6's own calendars
capability ``https://cyrusimap.org/ns/jmap/calendars``.
"""

from __future__ import annotations

from typing import Any

CORE = "urn:ietf:params:jmap:core"
CALENDARS = "urn:ietf:params:jmap:calendars"
CYRUS_CALENDARS = "https://cyrusimap.org/ns/jmap/calendars"
TASKS = "urn:ietf:params:jmap:tasks"
COLLATIONS = ["i;ascii-numeric", "i;ascii-casemap", "i;unicode-casemap"]

# Limits that are not part of the core capability but bound the fake's answers.
EXTRA_LIMITS = ("maxChanges", "maxQueryResults")


def calendars_capability(dialect: str) -> str:
    return CYRUS_CALENDARS if dialect == "cyrus36" else CALENDARS


def default_limits(dialect: str) -> dict[str, Any]:
    if dialect == "stalwart":
        return {
            "maxSizeUpload": 50000000,
            "maxConcurrentUpload": 4,
            "maxSizeRequest": 10000000,
            "maxConcurrentRequests": 4,
            "maxCallsInRequest": 16,
            "maxObjectsInGet": 500,
            "maxObjectsInSet": 500,
            "collationAlgorithms": list(COLLATIONS),
            "maxChanges": 5000,
            "maxQueryResults": 5000,
        }
    return {
        "maxSizeUpload": 1073741824,
        "maxConcurrentUpload": 5,
        "maxSizeRequest": 10485760,
        "maxConcurrentRequests": 5,
        "maxCallsInRequest": 50,
        "maxObjectsInGet": 4096,
        "maxObjectsInSet": 4096,
        "collationAlgorithms": ["i;ascii-numeric", "i;ascii-casemap", "i;octet"],
        "maxChanges": 4096,
        "maxQueryResults": 4096,
    }


def _session_capabilities(
    dialect: str, tasks: bool, limits: dict[str, Any], base_url: str = ""
) -> dict[str, Any]:
    core = {k: v for k, v in limits.items() if k not in EXTRA_LIMITS}
    if dialect == "stalwart":
        caps: dict[str, Any] = {
            CORE: core,
            "urn:ietf:params:jmap:mail": {},
            CALENDARS: {},
            "urn:ietf:params:jmap:calendars:parse": {},
            "urn:ietf:params:jmap:contacts": {},
            "urn:ietf:params:jmap:contacts:parse": {},
            "urn:ietf:params:jmap:filenode": {},
            "urn:ietf:params:jmap:principals": {},
            "urn:ietf:params:jmap:principals:availability": {},
            "urn:ietf:params:jmap:submission": {},
            "urn:ietf:params:jmap:vacationresponse": {},
            "urn:ietf:params:jmap:sieve": {"implementation": "Stalwart v1.0.0"},
            "urn:ietf:params:jmap:blob": {},
            "urn:ietf:params:jmap:quota": {},
            "urn:ietf:params:jmap:emailpush": {},
        }
        if tasks:
            caps[TASKS] = {}
        socket_url = base_url.replace("http", "ws", 1) + "/jmap/ws"
        caps["urn:ietf:params:jmap:websocket"] = {"url": socket_url, "supportsPush": True}
        return caps
    caps = {
        CORE: core,
        "urn:ietf:params:jmap:mail": {},
        "urn:ietf:params:jmap:submission": {},
        "urn:ietf:params:jmap:vacationresponse": {},
    }
    if dialect == "ietf":
        caps[CALENDARS] = {}
        caps["urn:ietf:params:jmap:principals"] = {}
        caps["urn:ietf:params:jmap:calendars:preferences"] = {}
    else:
        caps[CYRUS_CALENDARS] = {}
    if tasks:
        caps[TASKS] = {}
    return caps


def known_capabilities(dialect: str, tasks: bool) -> set[str]:
    return set(_session_capabilities(dialect, tasks, {}))


def _account_capabilities(dialect: str, tasks: bool) -> dict[str, Any]:
    if dialect == "stalwart":
        caps: dict[str, Any] = {
            "urn:ietf:params:jmap:mail": {
                "maxMailboxesPerEmail": None,
                "maxMailboxDepth": 10,
                "maxSizeMailboxName": 255,
                "maxSizeAttachmentsPerEmail": 50000000,
                "emailQuerySortOptions": ["receivedAt", "size", "subject", "from", "to"],
                "mayCreateTopLevelMailbox": True,
            },
            "urn:ietf:params:jmap:submission": {
                "maxDelayedSend": 2592000,
                "submissionExtensions": {},
            },
            "urn:ietf:params:jmap:vacationresponse": {},
            "urn:ietf:params:jmap:contacts": {"maxAddressBooksPerCard": None},
            CALENDARS: {
                "maxCalendarsPerEvent": None,
                "minDateTime": "0001-01-01T00:00:00Z",
                "maxDateTime": "9999-12-31T23:59:59Z",
                "maxExpandedQueryDuration": "P52W1D",
                "maxParticipantsPerEvent": 20,
                "mayCreateCalendar": True,
            },
            "urn:ietf:params:jmap:principals": {},
            "urn:ietf:params:jmap:sieve": {},
            "urn:ietf:params:jmap:blob": {},
            "urn:ietf:params:jmap:quota": {},
            "urn:ietf:params:jmap:emailpush": {},
            "urn:stalwart:jmap": {},
            "urn:ietf:params:jmap:websocket": {},
            "urn:ietf:params:jmap:mail:share": {},
        }
    elif dialect == "ietf":
        caps = {
            "urn:ietf:params:jmap:mail": {},
            "urn:ietf:params:jmap:submission": {},
            CALENDARS: {
                "maxCalendarsPerEvent": 1,
                "minDateTime": "1900-01-01T00:00:00Z",
                "maxDateTime": "2038-01-19T00:00:00Z",
                "maxExpandedQueryDuration": "P366D",
                "maxParticipantsPerEvent": None,
                "mayCreateCalendar": True,
            },
            "urn:ietf:params:jmap:principals": {},
            "urn:ietf:params:jmap:calendars:preferences": {},
        }
    else:
        caps = {
            "urn:ietf:params:jmap:mail": {},
            "urn:ietf:params:jmap:submission": {},
            CYRUS_CALENDARS: {},
        }
    if tasks:
        caps[TASKS] = {
            "minDateTime": "0001-01-01T00:00:00Z",
            "maxDateTime": "9999-12-31T23:59:59Z",
            "mayCreateTaskList": True,
        }
    return caps


def build_session(
    dialect: str,
    *,
    base_url: str,
    tasks: bool,
    limits: dict[str, Any],
    username: str | None,
    account_id: str | None,
) -> dict[str, Any]:
    """The Session object; ``username`` None is Stalwart's anonymous answer."""
    prefix = base_url if dialect == "stalwart" else ""
    accounts: dict[str, Any] = {}
    primary: dict[str, str] = {}
    if username is not None and account_id is not None:
        account_caps = _account_capabilities(dialect, tasks)
        accounts[account_id] = {
            "name": username,
            "isPersonal": True,
            "isReadOnly": False,
            "accountCapabilities": account_caps,
        }
        primary = dict.fromkeys(account_caps, account_id)
    return {
        "capabilities": _session_capabilities(dialect, tasks, limits, base_url),
        "accounts": accounts,
        "primaryAccounts": primary,
        "username": username or "",
        "apiUrl": f"{prefix}/jmap/",
        "downloadUrl": f"{prefix}/jmap/download/{{accountId}}/{{blobId}}/{{name}}?accept={{type}}",
        "uploadUrl": f"{prefix}/jmap/upload/{{accountId}}/",
        "eventSourceUrl": (
            f"{prefix}/jmap/eventsource/?types={{types}}&closeafter={{closeafter}}&ping={{ping}}"
        ),
        "state": ("3e25b2a0" if dialect == "stalwart" else "0") if username else "0",
    }
