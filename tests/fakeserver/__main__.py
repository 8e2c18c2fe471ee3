"""Serve the fake JMAP server from its own process until SIGTERM/SIGINT.

``python -m tests.fakeserver --dialect ietf --tasks --port 0 [--user alice:secret]`` prints the
session URL on the first line of stdout, then serves.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from types import FrameType

from tests.fakeserver.server import FakeJMAPServer
from tests.fakeserver.store import DIALECTS


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.fakeserver")
    parser.add_argument("--dialect", choices=DIALECTS, default="stalwart")
    parser.add_argument("--tasks", action="store_true", help="offer JMAP Tasks")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument(
        "--user", action="append", default=[], metavar="NAME:PASSWORD", help="repeatable"
    )
    options = parser.parse_args(argv)
    users = dict(u.split(":", 1) for u in options.user) if options.user else None
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    with FakeJMAPServer(
        options.dialect, options.tasks, users=users, host=options.host, port=options.port
    ) as server:
        print(server.session_url, flush=True)
        while not stop.wait(0.5):
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
