"""Local edits are seen by the file watcher, debounced, and temp files are never reported."""

from __future__ import annotations

import queue
from pathlib import Path

import pytest

from jmapsyncd.daemon.watcher import VdirWatcher, is_temporary


@pytest.mark.parametrize(
    ("name", "temporary"),
    [
        ("event.ics", False),
        ("displayname", False),
        (".event.ics.tmp", True),
        (".hidden", True),
        ("event.ics~", True),
        (".event.ics.swp", True),
        ("#event.ics#", True),
    ],
)
def test_temporary_names(name: str, temporary: bool) -> None:
    assert is_temporary(Path("/v/cal") / name) is temporary


def _collect(watcher_root: Path, **kw: object) -> tuple[VdirWatcher, queue.Queue[set[Path]]]:
    batches: queue.Queue[set[Path]] = queue.Queue()
    watcher = VdirWatcher(watcher_root, batches.put, debounce=0.2, **kw)  # type: ignore[arg-type]
    return watcher, batches


def test_a_burst_of_writes_arrives_as_one_batch(tmp_path: Path) -> None:
    (tmp_path / "cal").mkdir()
    watcher, batches = _collect(tmp_path)
    watcher.start()
    try:
        for i in range(5):
            (tmp_path / "cal" / f"e{i}.ics").write_text("x")
        (tmp_path / "cal" / ".e9.ics.tmp").write_text("ignored")
        batch = batches.get(timeout=10)
    finally:
        watcher.stop()
    wanted = {tmp_path / "cal" / f"e{i}.ics" for i in range(5)}
    assert wanted <= batch
    assert not any(is_temporary(p) for p in batch)


def test_ignored_paths_are_not_reported(tmp_path: Path) -> None:
    ours = tmp_path / "ours.ics"
    watcher, batches = _collect(tmp_path, ignore=lambda p: p == ours)
    watcher.start()
    try:
        ours.write_text("written by the sync engine")
        (tmp_path / "theirs.ics").write_text("written by khal")
        batch = batches.get(timeout=10)
    finally:
        watcher.stop()
    assert tmp_path / "theirs.ics" in batch
    assert ours not in batch
