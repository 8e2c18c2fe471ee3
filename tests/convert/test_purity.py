"""The converter belongs to the pure core (DESIGN.md, three rings): no network, files, database."""

from __future__ import annotations

import subprocess
import sys


def test_importing_and_converting_loads_no_io_modules() -> None:
    code = (
        "import sys\n"
        "from jmapsyncd.convert import ical_to_jscal, jscal_to_ical\n"
        "objs = ical_to_jscal('BEGIN:VCALENDAR\\r\\nBEGIN:VEVENT\\r\\nUID:x\\r\\n"
        "DTSTART;TZID=Europe/Berlin:20240101T100000\\r\\nEND:VEVENT\\r\\nEND:VCALENDAR\\r\\n')\n"
        "jscal_to_ical(objs)\n"
        "bad = {'niquests', 'sqlite3', 'sqlite_utils', 'watchdog', 'apscheduler', 'socket'}\n"
        "print(sorted(bad & set(sys.modules)))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"
