"""Bad files in the vdir, seen by the real ``jmapsyncd sync``: reported, never touched.

Into a synced calendar folder go: a file that is not iCalendar, one that is not UTF-8, an empty
one, one holding two UIDs, an event without UID, an event with a broken RRULE, a symlink to an
event outside the vdir, and a synced file overwritten with garbage; beside them, good new files.
``jmapsyncd sync`` runs twice. Checked: each bad file is named in the log and in
``jmapsyncd status --json``; each is byte-identical afterwards (the symlink still a symlink to the
same, unchanged target); nothing of them reaches the server, and the server event behind the
garbled file is neither changed nor deleted; the good files are pushed.

A file that appears and vanishes over and over while passes run must not break a pass, and once
it stops, both sides agree about it.
"""

from __future__ import annotations

import os
import threading
from collections import Counter
from pathlib import Path

from tests.fakeserver import FakeJMAPServer
from tests.reliability.conftest import Box, fake_account, ics_event, jscal_event

CAL_HEAD = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\n"


def _bad_files(outside: Path) -> dict[str, bytes | Path]:
    two = (
        CAL_HEAD
        + ics_event("two-a", "bad two uids A").split(CAL_HEAD)[1].replace("END:VCALENDAR\r\n", "")
        + ics_event("two-b", "bad two uids B").split(CAL_HEAD)[1]
    )
    no_uid = ics_event("x", "bad no uid").replace("UID:x\r\n", "")
    rrule = ics_event("bad-rrule", "bad rrule", extra="RRULE:FREQ=SOMETIMES;COUNT=many\r\n")
    target = outside / "secret.ics"
    target.write_text(ics_event("secret", "bad secret outside"), encoding="utf-8")
    return {
        "not-ical.ics": b"hello, this is not a calendar\n",
        "not-utf8.ics": ics_event("latin", "bad caf\xe9").encode("latin-1") + b"\xff\xfe",
        "empty.ics": b"",
        "two-uids.ics": two.encode(),
        "no-uid.ics": no_uid.encode(),
        "bad-rrule.ics": rrule.encode(),
        "link-outside.ics": target,
    }


def _snapshot(folder: Path, names: list[str]) -> dict[str, tuple[str, bytes]]:
    out: dict[str, tuple[str, bytes]] = {}
    for name in names:
        path = folder / name
        if path.is_symlink():
            out[name] = (f"link:{os.readlink(path)}", path.read_bytes())
        else:
            out[name] = ("file", path.read_bytes())
    return out


def test_bad_files_are_reported_and_left_alone_while_good_ones_sync(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    with FakeJMAPServer(dialect="ietf") as srv:
        cal = srv.store.default_calendar_id
        ids = {
            i: srv.store.add_event(cal, jscal_event(f"srv-{i}", f"server {i}")) for i in range(5)
        }
        box = Box(fake_account(srv), tmp_path / "home")
        box.home.mkdir()
        box.write_config()
        box.sync_here()
        [folder] = box.calendar_folders()

        bad = _bad_files(outside)
        for name, content in bad.items():
            if isinstance(content, Path):
                (folder / name).symlink_to(content)
            else:
                (folder / name).write_bytes(content)
        # A synced file overwritten with garbage: frozen, not pushed, not deleted.
        garbled = next(p for p in folder.glob("*.ics") if "SUMMARY:server 0" in p.read_text())
        garbled.write_bytes(b"BEGIN:VCALENDAR\r\ngarbage\r\n")
        bad_names = [*bad, garbled.name]
        for i in range(3):
            (folder / f"good-{i}.ics").write_text(ics_event(f"good-{i}", f"good {i}"))
        before = _snapshot(folder, bad_names)
        target_before = (outside / "secret.ics").read_bytes()

        first = box.run("-v", "sync")
        second = box.run("sync")
        status_errors = "\n".join(box.status_errors())
        with srv.store.lock:
            on_server = Counter(str(e.get("title")) for e in srv.store.events.values())
            server_0 = srv.store.events.get(ids[0])

    assert first.returncode == 0, first.stderr[-3000:]
    assert second.returncode == 0, second.stderr[-3000:]
    assert _snapshot(folder, bad_names) == before
    assert (outside / "secret.ics").read_bytes() == target_before
    assert sorted(p.name for p in outside.iterdir()) == ["secret.ics"]
    missing_in_log = [n for n in bad_names if n not in first.stderr]
    missing_in_status = [n for n in bad_names if n not in status_errors]
    assert missing_in_log == []
    assert missing_in_status == []
    assert "Traceback" not in first.stderr + second.stderr
    # Nothing of the bad files on the server; the garbled file's event untouched.
    assert not any(title.startswith("bad") for title in on_server), on_server
    assert server_0 is not None
    assert server_0["title"] == "server 0"
    assert on_server == Counter([f"server {i}" for i in range(5)] + [f"good {i}" for i in range(3)])


def test_a_file_flickering_during_passes_breaks_nothing(tmp_path: Path) -> None:
    with FakeJMAPServer(dialect="ietf") as srv:
        cal = srv.store.default_calendar_id
        for i in range(50):
            srv.store.add_event(cal, jscal_event(f"srv-{i}", f"server {i}"))
        box = Box(fake_account(srv), tmp_path / "home")
        box.home.mkdir()
        box.write_config()
        box.sync_here()
        [folder] = box.calendar_folders()
        for i in range(50):
            (folder / f"loc-{i}.ics").write_text(ics_event(f"loc-{i}", f"local {i}"))

        stop = threading.Event()
        flips = 0

        def flicker() -> None:
            nonlocal flips
            path = folder / "flicker.ics"
            text = ics_event("flicker", "flicker").encode()
            while not stop.is_set() and flips < 200_000:
                path.write_bytes(text)
                path.unlink()
                flips += 1

        thread = threading.Thread(target=flicker)
        thread.start()
        try:
            runs = [box.run("sync") for _ in range(2)]
        finally:
            stop.set()
            thread.join(timeout=30)
        final = box.run("sync")
        with srv.store.lock:
            on_server = Counter(str(e.get("title")) for e in srv.store.events.values())

    assert flips > 0
    for run in [*runs, final]:
        assert run.returncode == 0, run.stderr[-3000:]
        assert "Traceback" not in run.stderr
    assert not (folder / "flicker.ics").exists()
    # The flickering file may have been caught and pushed once, then deleted again: either
    # way it is gone from both sides now, and nothing else moved.
    assert on_server["flicker"] == 0
    assert box.local_summaries() == on_server
    assert on_server == Counter(
        [f"server {i}" for i in range(50)] + [f"local {i}" for i in range(50)]
    )
    assert box.temp_files() == []
