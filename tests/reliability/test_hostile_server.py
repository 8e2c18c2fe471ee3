"""A hostile server, seen by the real ``jmapsyncd sync``: nothing escapes the vdir.

The fake server is seeded behind the client's back (its store takes any id, UID and name) with
calendar ids and names, event ids and UIDs holding ``/``, ``..``, absolute paths, NUL and other
control characters, 10 KB strings, UIDs shared by several events, and an event whose description
makes the answer several megabytes long. Then ``jmapsyncd sync`` runs twice as a process.

Checked: no path appears anywhere under the test's temporary folder except inside the vdir and
the state folder (the whole tree is snapshotted before and after), nor at the absolute paths the
server named; every file name in the vdir is a plain safe name; an item that cannot be written is
skipped and reported (sync output and ``jmapsyncd status --json``); the good items all sync; a
second pass changes nothing and the server still holds every event it had.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

from tests.fakeserver import FakeJMAPServer
from tests.reliability.conftest import Box, fake_account, jscal_event, tree_snapshot

SAFE = re.compile(r"^[A-Za-z0-9_.@+=-]{1,120}$")
OUTSIDE = [
    Path("/tmp/jmapsyncd-hostile-abs"),
    Path("/tmp/jmapsyncd-hostile-abs.ics"),
    Path("/tmp/jmapsyncd-hostile-cal"),
    Path("/jmapsyncd-hostile-root.ics"),
]

HOSTILE_UIDS = {
    "dotdot": "../../../../jmapsyncd-escape",
    "absolute": "/tmp/jmapsyncd-hostile-abs",
    "slashes": "a/b/c/d",
    "dot": ".",
    "dotfile": ".hidden",
    "long": "u" * 10_000,
    "backslash": "..\\..\\windows",
}
UNUSABLE_UIDS = {
    "nul": "nul\x00uid",
    "escape": "ctl\x1b[31mred",
    "newline": "line\r\nUID:injected",
    "empty": "",
    "bidi-override": "\u202e/etc/passwd",
}


def _seed(srv: FakeJMAPServer) -> tuple[dict[str, str], list[str]]:
    """Returns (good title → calendar kind, titles that must be reported)."""
    store = srv.store
    good = store.default_calendar_id
    cals = {
        "dotdot": store.add_calendar("../../../jmapsyncd-cal", id="../../../../jmapsyncd-cal"),
        "absolute": store.add_calendar(
            "/tmp/jmapsyncd-hostile-cal", id="/tmp/jmapsyncd-hostile-cal"
        ),
        "nul": store.add_calendar("nul\x00name", id="cal\x00nul"),
        "long": store.add_calendar("N" * 10_000, id="c" * 10_000),
        "control": store.add_calendar("bell\x07\x1b[2Jname", id="ctl\x01id"),
    }
    titles: dict[str, str] = {}
    for i in range(20):
        store.add_event(good, jscal_event(f"good-{i}", f"good {i}"))
        titles[f"good {i}"] = "good"
    for key, cal in cals.items():
        store.add_event(cal, jscal_event(f"in-{key}", f"in hostile calendar {key}"))
        titles[f"in hostile calendar {key}"] = key
    for key, uid in HOSTILE_UIDS.items():
        store.add_event(good, {**jscal_event(uid, f"hostile uid {key}"), "id": f"../{key}/../x"})
        titles[f"hostile uid {key}"] = "good"
    reported: list[str] = []
    for key, uid in UNUSABLE_UIDS.items():
        store.add_event(good, {**jscal_event("x", f"unusable uid {key}"), "uid": uid})
        reported.append(uid)
    # The same UID on three events (two in one calendar, one in another).
    store.add_event(good, {**jscal_event("shared", "shared a"), "id": "/tmp/jmapsyncd-hostile-abs"})
    store.add_event(good, {**jscal_event("shared", "shared b"), "id": "shared-b"})
    store.add_event(cals["dotdot"], {**jscal_event("shared", "shared c"), "id": "shared-c"})
    titles.update({"shared a": "good", "shared b": "good", "shared c": "dotdot"})
    # A few megabytes in one answer.
    store.add_event(
        good, {**jscal_event("huge", "huge description"), "description": "x" * 4_000_000}
    )
    titles["huge description"] = "good"
    return titles, reported


def test_hostile_ids_uids_and_names_stay_inside_the_vdir(tmp_path: Path) -> None:
    with FakeJMAPServer(dialect="ietf") as srv:
        titles, unusable = _seed(srv)
        with srv.store.lock:
            server_before = len(srv.store.events)
        box = Box(fake_account(srv), tmp_path / "home")
        box.home.mkdir()
        box.write_config()
        before = tree_snapshot(tmp_path)
        first = box.run("sync")
        status_after_first = "\n".join(box.status_errors())
        second = box.run("sync")
        after = tree_snapshot(tmp_path)
        with srv.store.lock:
            server_after = len(srv.store.events)

    assert first.returncode == 0, first.stderr[-3000:]
    assert second.returncode == 0, second.stderr[-3000:]
    new = set(after) - set(before)
    escaped = sorted(
        p for p in new if not p.startswith(("home/vdir", "home/state", "home/process"))
    )
    assert escaped == []
    for outside in OUTSIDE:
        assert not outside.exists(), outside
    for path in box.vdir.rglob("*"):
        assert SAFE.match(path.name), repr(path.name)
        assert not path.is_symlink()
        assert path.resolve().is_relative_to(box.vdir.resolve())

    local = box.local_summaries()
    for title in titles:
        assert local[title] == 1, f"{title!r}: {local[title]} local copies"
    # Nothing pushed back or deleted on the server because of the odd items.
    assert server_after == server_before
    assert "0 uploaded" in second.stdout
    assert "0 deleted on the server" in first.stdout
    assert "0 deleted on the server" in second.stdout

    for uid in unusable:
        assert repr(uid) in first.stderr, f"{uid!r} not reported by sync"
        assert repr(uid) in status_after_first, f"{uid!r} not in status"
    # Unusable UIDs never reach a file.
    for path in box.ics_files():
        text = path.read_text(encoding="utf-8")
        assert "\x00" not in text
        assert "\x1b" not in text
        assert "UID:injected" not in text


def test_hostile_names_never_reach_a_file_name_or_escape_the_displayname(tmp_path: Path) -> None:
    with FakeJMAPServer(dialect="ietf") as srv:
        srv.store.add_calendar("multi\nline\nname", id="ok-id")
        srv.store.add_calendar("../../etc", id="..")
        srv.store.add_calendar("dot", id=".")
        box = Box(fake_account(srv), tmp_path / "home")
        box.home.mkdir()
        box.write_config()
        before = tree_snapshot(tmp_path)
        result = box.run("sync")
        after = tree_snapshot(tmp_path)
    assert result.returncode == 0, result.stderr
    new = sorted(set(after) - set(before))
    assert [p for p in new if not p.startswith(("home/vdir", "home/state", "home/process"))] == []
    folders = box.calendar_folders()
    assert all(SAFE.match(f.name) and f.name not in (".", "..") for f in folders)
    names = Counter(
        (f / "displayname").read_text(encoding="utf-8")
        for f in folders
        if (f / "displayname").exists()
    )
    assert names["multi\nline\nname"] <= 1


def test_an_unwritable_server_event_is_still_reported_by_the_next_sync_process(
    tmp_path: Path,
) -> None:
    with FakeJMAPServer(dialect="ietf") as srv:
        cal = srv.store.default_calendar_id
        srv.store.add_event(cal, {**jscal_event("x", "bad"), "uid": "nul\x00uid"})
        srv.store.add_event(cal, jscal_event("good", "good"))
        box = Box(fake_account(srv), tmp_path / "home")
        box.home.mkdir()
        box.write_config()
        first = box.run("sync")
        second = box.run("sync")
    assert first.returncode == 0
    assert second.returncode == 0
    assert "unusable UID" in first.stderr
    assert any("unusable UID" in e for e in box.status_errors()), "gone from status"
    assert "unusable UID" in second.stderr, "not reported by the second pass"
