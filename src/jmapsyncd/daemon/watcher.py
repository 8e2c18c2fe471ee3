"""Watch the vdir for local edits and report them in debounced batches.

Editors save in bursts (temp file, rename, chmod …) and khal or todoman may touch several files at
once, so events are collected until the tree has been quiet for ``debounce`` seconds and then
handed over as one set of paths. Temporary files (ours and editors': dot files, ``~`` and ``.swp``)
are never reported, and ``ignore`` lets the sync engine drop events caused by its own writes.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

log = logging.getLogger(__name__)


def is_temporary(path: Path) -> bool:
    """Files no sync should look at: hidden files, editor backups and swap files."""
    name = path.name
    return name.startswith((".", "#")) or name.endswith(("~", ".swp", ".swx", ".tmp"))


class _Handler(FileSystemEventHandler):
    def __init__(self, watcher: VdirWatcher) -> None:
        self._watcher = watcher

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.event_type in ("opened", "closed_no_write"):
            return
        for raw in (event.src_path, getattr(event, "dest_path", "")):
            if raw:
                self._watcher._add(Path(os.fsdecode(raw)))


class VdirWatcher:
    """Debounced, filtered file events below ``root``; ``on_change`` runs on a timer thread."""

    def __init__(
        self,
        root: Path,
        on_change: Callable[[set[Path]], None],
        *,
        debounce: float = 0.5,
        ignore: Callable[[Path], bool] | None = None,
    ) -> None:
        self.root = root
        self._on_change = on_change
        self._debounce = debounce
        self._ignore = ignore
        self._lock = threading.Lock()
        self._paths: set[Path] = set()
        self._timer: threading.Timer | None = None
        self._observer = Observer()
        self._stopped = False

    def start(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self._observer.schedule(_Handler(self), str(self.root), recursive=True)
        self._observer.start()

    def stop(self) -> None:
        with self._lock:
            self._stopped = True
            if self._timer is not None:
                self._timer.cancel()
        self._observer.stop()
        self._observer.join(timeout=5)

    def _add(self, path: Path) -> None:
        if path == self.root or is_temporary(path):
            return
        if self._ignore is not None and self._ignore(path):
            return
        with self._lock:
            if self._stopped:
                return
            self._paths.add(path)
            if self._timer is not None:
                self._timer.cancel()
            self._timer = threading.Timer(self._debounce, self._flush)
            self._timer.daemon = True
            self._timer.start()

    def _flush(self) -> None:
        with self._lock:
            paths, self._paths = self._paths, set()
            self._timer = None
        if paths:
            log.debug("local changes: %d path(s)", len(paths))
            self._on_change(paths)
