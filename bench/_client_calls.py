"""Time two client-library calls: ``search_events()`` over the whole account and
``get_objects_by_sync_token(token)``, with jmapsyncd's ``JMAPClient`` (``--impl ours``, run with
our environment) or calendaring-jmap's (``--impl theirs``, run with the bench environment, which
has that package; it is loaded by name so that this file type-checks without it).

Each repetition makes a new client (session fetch included in the time, as a script calling the
library once would), resets the counting proxy first and reads its counters after.
Prints one JSON line: a list of ``{"seconds", "objects", "requests", "bytes_in", "error"}``.

Run: ``python bench/_client_calls.py --impl ours --op search URL USER PASSWORD [--token T]``
"""

from __future__ import annotations

import argparse
import importlib
import json
import time
import urllib.request
from typing import Any
from urllib.parse import urljoin


def proxy(url: str, what: str) -> dict[str, Any]:
    req = urllib.request.Request(urljoin(url, f"/__bench__/{what}"), method="POST")
    with urllib.request.urlopen(req, timeout=10) as resp:
        data: dict[str, Any] = json.loads(resp.read())
    return data


def make_client(impl: str, url: str, user: str, password: str) -> Any:
    if impl == "ours":
        from jmapsyncd.jmap import JMAPClient

        return JMAPClient(url, username=user, password=password)
    module: Any = importlib.import_module("calendaring_jmap")
    return module.JMAPClient(url=url, username=user, password=password)


def run_once(impl: str, op: str, url: str, user: str, password: str, token: str) -> dict[str, Any]:
    proxy(url, "reset")
    error = None
    objects = 0
    t0 = time.perf_counter()
    client = make_client(impl, url, user, password)
    try:
        if op == "search":
            objects = len(client.search_events())
        else:
            result = client.get_objects_by_sync_token(token)
            objects = len(result[0]) + len(result[1])
    except Exception as exc:
        error = f"{type(exc).__name__}: {str(exc)[:300]}"
    took = time.perf_counter() - t0
    client.close()
    counts = proxy(url, "counts")
    return {
        "seconds": took,
        "objects": objects,
        "requests": counts["requests"],
        "bytes_in": counts["bytes_in"],
        "error": error,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--impl", choices=["ours", "theirs"], required=True)
    parser.add_argument("--op", choices=["search", "changes"], required=True)
    parser.add_argument("--token", default="")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("url")
    parser.add_argument("user")
    parser.add_argument("password")
    a = parser.parse_args()
    runs = [run_once(a.impl, a.op, a.url, a.user, a.password, a.token) for _ in range(a.repeat)]
    print(json.dumps(runs))


if __name__ == "__main__":
    main()
