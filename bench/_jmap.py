"""A bare JMAP caller for the benchmarks (seeding, edits, the floor, polling the server).

Deliberately not jmapsyncd's client: what it measures must not depend on the code under test.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urljoin

import niquests

USING = ["urn:ietf:params:jmap:core", "urn:ietf:params:jmap:calendars"]


class BareJmap:
    """One niquests session, the session resource fetched once, ``call`` posts method calls."""

    def __init__(self, session_url: str, username: str, password: str) -> None:
        self.http = niquests.Session()
        self.http.auth = (username, password)
        resp = self.http.get(session_url, allow_redirects=True)
        resp.raise_for_status()
        session: dict[str, Any] = resp.json()
        self.api_url = urljoin(str(resp.url), session["apiUrl"])
        self.account_id: str = session["primaryAccounts"]["urn:ietf:params:jmap:calendars"]
        core = session["capabilities"]["urn:ietf:params:jmap:core"]
        self.max_get: int = int(core["maxObjectsInGet"])
        self.max_set: int = int(core["maxObjectsInSet"])
        self.max_calls: int = int(core["maxCallsInRequest"])

    def post(self, calls: list[list[Any]]) -> bytes:
        """Send calls, return the raw body (no parsing: the floor times only the server)."""
        resp = self.http.post(self.api_url, json={"using": USING, "methodCalls": calls})
        resp.raise_for_status()
        content = resp.content
        assert isinstance(content, bytes)
        return content

    def call(self, calls: list[list[Any]]) -> list[list[Any]]:
        resp = self.http.post(self.api_url, json={"using": USING, "methodCalls": calls})
        resp.raise_for_status()
        answers: list[list[Any]] = resp.json()["methodResponses"]
        for name, args, _ in answers:
            if name == "error":
                raise RuntimeError(f"JMAP error: {args}")
        return answers

    def one(self, method: str, args: dict[str, Any]) -> dict[str, Any]:
        args = {"accountId": self.account_id, **args}
        result: dict[str, Any] = self.call([[method, args, "0"]])[0][1]
        return result

    def close(self) -> None:
        self.http.close()
