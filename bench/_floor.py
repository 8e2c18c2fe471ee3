"""The floor: the least a JMAP client must ask the server, timed with nothing else done.

``initial``: ``CalendarEvent/query`` for every id (one request), then ``CalendarEvent/get`` in
chunks of ``maxObjectsInGet``, as many calls per request as ``maxCallsInRequest`` allows.
``changes STATE``: one request, ``CalendarEvent/changes`` with ``CalendarEvent/get`` of the
created and the updated ids by result reference.

Bodies are read but not parsed inside the timed part (no conversion, no writes). The session is
fetched before the clock starts; when the session URL points at the counting proxy, its counters
are reset right after, so they hold only the timed requests. Prints one JSON line.

Run: ``python bench/_floor.py URL USER PASSWORD initial|changes [STATE]``
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._jmap import BareJmap


def initial(jmap: BareJmap) -> tuple[int, int]:
    """Return (requests, events)."""
    acc = jmap.account_id
    query = json.loads(jmap.post([["CalendarEvent/query", {"accountId": acc}, "q"]]))
    ids: list[str] = query["methodResponses"][0][1]["ids"]
    requests = 1
    chunks = [ids[i : i + jmap.max_get] for i in range(0, len(ids), jmap.max_get)]
    bodies: list[bytes] = []
    for start in range(0, len(chunks), jmap.max_calls):
        calls: list[list[Any]] = [
            ["CalendarEvent/get", {"accountId": acc, "ids": chunk}, f"g{start + k}"]
            for k, chunk in enumerate(chunks[start : start + jmap.max_calls])
        ]
        bodies.append(jmap.post(calls))
        requests += 1
    got = sum(len(r[1]["list"]) for b in bodies for r in json.loads(b)["methodResponses"])
    return requests, got if len(ids) == got else -got


def changes(jmap: BareJmap, since: str) -> tuple[int, int]:
    acc = jmap.account_id
    calls: list[list[Any]] = [
        ["CalendarEvent/changes", {"accountId": acc, "sinceState": since}, "c"],
        [
            "CalendarEvent/get",
            {
                "accountId": acc,
                "#ids": {"resultOf": "c", "name": "CalendarEvent/changes", "path": "/created"},
            },
            "gc",
        ],
        [
            "CalendarEvent/get",
            {
                "accountId": acc,
                "#ids": {"resultOf": "c", "name": "CalendarEvent/changes", "path": "/updated"},
            },
            "gu",
        ],
    ]
    body = jmap.post(calls)
    answers = json.loads(body)["methodResponses"]
    if answers[0][1].get("hasMoreChanges"):
        raise SystemExit("floor: hasMoreChanges; not a one-request case")
    return 1, sum(len(a[1]["list"]) for a in answers[1:])


def main() -> None:
    url, user, password, mode = sys.argv[1:5]
    jmap = BareJmap(url, user, password)
    jmap.http.post(urljoin(url, "/__bench__/reset"))  # a 404 when not behind the proxy
    t0 = time.perf_counter()
    if mode == "initial":
        requests, events = initial(jmap)
    else:
        requests, events = changes(jmap, sys.argv[5])
    took = time.perf_counter() - t0
    jmap.close()
    print(json.dumps({"seconds": took, "requests": requests, "events": events}))


if __name__ == "__main__":
    main()
