"""The protocol core is pure: importing it pulls in no HTTP library, threads or database."""

from __future__ import annotations

import subprocess
import sys


def test_protocol_imports_no_io_libraries() -> None:
    code = (
        "import sys, jmapsyncd.protocol, jmapsyncd.protocol.flows;"
        "io = ('niquests', 'urllib3', 'sqlite3', 'sqlite_utils', 'watchdog', 'icalendar');"
        "bad = [m for m in io if m in sys.modules];"
        "print(','.join(bad))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == ""
