"""What durable writes cost on this disk: per item, as the engine does now, against per chunk.

Writes N small ``.ics``-sized files into a temporary folder (on the file system of ``--dir``) and
records one SQLite row per file (WAL, ``synchronous=FULL``, as ``jmapsyncd.state`` does), three
ways:

* ``per-item``: temp file, fsync, link, unlink, fsync the folder, one transaction per row;
* ``chunked``: per chunk of ``--chunk`` items: temp files written and linked, ``syncfs(2)`` on
  the file system, the folder fsynced once, one transaction for the chunk's rows (a file is
  still durable before its row);
* ``none``: the same writes with no fsync at all and one transaction at the end (what vdirsyncer
  0.21 does).

Run: ``python bench/_flush_cost.py [--n 2000] [--chunk 500] [--dir /tmp]``
"""

from __future__ import annotations

import argparse
import ctypes
import os
import shutil
import sqlite3
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

DATA = b"BEGIN:VCALENDAR\r\n" + b"X-FILL:" + b"x" * 900 + b"\r\nEND:VCALENDAR\r\n"

_libc = ctypes.CDLL(None, use_errno=True)


def syncfs(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        if _libc.syncfs(fd) != 0:
            raise OSError(ctypes.get_errno(), "syncfs failed")
    finally:
        os.close(fd)


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_one(folder: Path, i: int, flush: bool) -> None:
    tmp = folder / f".tmp-{i}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, DATA)
        if flush:
            os.fsync(fd)
    finally:
        os.close(fd)
    os.link(tmp, folder / f"item-{i}.ics")
    os.unlink(tmp)


def open_db(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute("CREATE TABLE item (id INTEGER PRIMARY KEY, href TEXT UNIQUE, etag TEXT)")
    return conn


def per_item(folder: Path, conn: sqlite3.Connection, n: int, _chunk: int) -> None:
    for i in range(n):
        write_one(folder, i, flush=True)
        fsync_dir(folder)
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO item (href, etag) VALUES (?, ?)", (f"item-{i}.ics", str(i)))
        conn.execute("COMMIT")


def chunked(folder: Path, conn: sqlite3.Connection, n: int, chunk: int) -> None:
    for start in range(0, n, chunk):
        stop = min(n, start + chunk)
        for i in range(start, stop):
            write_one(folder, i, flush=False)
        syncfs(folder)
        fsync_dir(folder)
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(
            "INSERT INTO item (href, etag) VALUES (?, ?)",
            [(f"item-{i}.ics", str(i)) for i in range(start, stop)],
        )
        conn.execute("COMMIT")


def none(folder: Path, conn: sqlite3.Connection, n: int, _chunk: int) -> None:
    for i in range(n):
        write_one(folder, i, flush=False)
    conn.execute("BEGIN IMMEDIATE")
    conn.executemany(
        "INSERT INTO item (href, etag) VALUES (?, ?)", [(f"item-{i}.ics", str(i)) for i in range(n)]
    )
    conn.execute("COMMIT")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--chunk", type=int, default=500)
    parser.add_argument("--dir", default="/tmp")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    ways: dict[str, Callable[[Path, sqlite3.Connection, int, int], None]] = {
        "per-item": per_item,
        "chunked": chunked,
        "none": none,
    }
    times: dict[str, list[float]] = {name: [] for name in ways}
    for _ in range(args.repeat):
        for name, fn in ways.items():
            root = Path(tempfile.mkdtemp(prefix="flushcost-", dir=args.dir))
            folder = root / "vdir"
            folder.mkdir()
            conn = open_db(root / "state.sqlite")
            t0 = time.perf_counter()
            fn(folder, conn, args.n, args.chunk)
            times[name].append(time.perf_counter() - t0)
            conn.close()
            shutil.rmtree(root)
    print(f"{args.n} items, chunks of {args.chunk}, load {os.getloadavg()[0]:.1f}")
    for name, ts in times.items():
        best = sorted(ts)[len(ts) // 2]
        runs = ", ".join(f"{t:.2f}" for t in ts)
        print(f"{name:9} median {best:6.2f} s  ({1000 * best / args.n:.3f} ms/item; runs {runs})")


if __name__ == "__main__":
    main()
