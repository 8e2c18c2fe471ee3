"""The JMAP Session resource (RFC 8620 §2): capabilities, accounts, limits, URLs.

:func:`parse_session` validates the server's JSON and returns a frozen :class:`Session`; anything
malformed raises :class:`~jmapsyncd.errors.RemoteProtocolError`. Relative ``apiUrl`` values (Cyrus
answers ``/jmap/``) are resolved against the URL the session was fetched from.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin

from jmapsyncd.errors import JMAPAuthError, RemoteProtocolError

CORE = "urn:ietf:params:jmap:core"
CALENDARS = "urn:ietf:params:jmap:calendars"
CYRUS_CALENDARS = "https://cyrusimap.org/ns/jmap/calendars"
TASKS = "urn:ietf:params:jmap:tasks"
PRINCIPALS = "urn:ietf:params:jmap:principals"


@dataclass(frozen=True)
class Limits:
    """Core capability limits (RFC 8620 §2); defaults are conservative when the server is silent."""

    max_size_request: int = 10_000_000
    max_calls_in_request: int = 16
    max_objects_in_get: int = 500
    max_objects_in_set: int = 500


@dataclass(frozen=True)
class Session:
    """What a client needs from the session resource."""

    url: str
    api_url: str
    account_id: str
    capabilities: frozenset[str]
    account_capabilities: frozenset[str]
    limits: Limits = field(default_factory=Limits)
    username: str = ""
    state: str = ""
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def has(self, capability: str) -> bool:
        return capability in self.capabilities or capability in self.account_capabilities


def _positive_int(value: Any, default: int) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    return default


def parse_session(data: dict[str, Any], url: str) -> Session:
    """Build a :class:`Session` from the JSON object fetched from ``url``."""

    def bad(why: str) -> RemoteProtocolError:
        return RemoteProtocolError(url, f"invalid session resource: {why}")

    caps = data.get("capabilities")
    if not isinstance(caps, dict):
        raise bad("no capabilities object")
    api_url = data.get("apiUrl")
    if not isinstance(api_url, str) or not api_url:
        raise bad("no apiUrl")
    accounts = data.get("accounts")
    if not isinstance(accounts, dict):
        raise bad("no accounts object")
    if not accounts:
        # Stalwart answers an unauthenticated GET with a session listing no accounts.
        raise JMAPAuthError(url, "the session lists no accounts: not authenticated")
    primary = data.get("primaryAccounts")
    primary = primary if isinstance(primary, dict) else {}
    account_id: str | None = None
    # The account that is primary for calendars wins; then core; then the only account there is.
    for cap in (CALENDARS, CYRUS_CALENDARS, TASKS, "urn:ietf:params:jmap:mail", CORE):
        candidate = primary.get(cap)
        if isinstance(candidate, str) and candidate:
            account_id = candidate
            break
    if account_id is None:
        for candidate in primary.values():
            if isinstance(candidate, str) and candidate:
                account_id = candidate
                break
    if account_id is None and len(accounts) == 1:
        account_id = next(iter(accounts))
    if account_id is None:
        raise bad("no primary account (are the credentials right?)")
    account = accounts.get(account_id)
    account_caps: dict[str, Any] = {}
    if isinstance(account, dict) and isinstance(account.get("accountCapabilities"), dict):
        account_caps = account["accountCapabilities"]
    core = caps.get(CORE)
    core = core if isinstance(core, dict) else {}
    defaults = Limits()
    limits = Limits(
        max_size_request=_positive_int(core.get("maxSizeRequest"), defaults.max_size_request),
        max_calls_in_request=_positive_int(
            core.get("maxCallsInRequest"), defaults.max_calls_in_request
        ),
        max_objects_in_get=_positive_int(core.get("maxObjectsInGet"), defaults.max_objects_in_get),
        max_objects_in_set=_positive_int(core.get("maxObjectsInSet"), defaults.max_objects_in_set),
    )
    username = data.get("username")
    state = data.get("state")
    return Session(
        url=url,
        api_url=urljoin(url, api_url),
        account_id=account_id,
        capabilities=frozenset(k for k in caps if isinstance(k, str)),
        account_capabilities=frozenset(k for k in account_caps if isinstance(k, str)),
        limits=limits,
        username=username if isinstance(username, str) else "",
        state=state if isinstance(state, str) else "",
        raw=data,
    )
