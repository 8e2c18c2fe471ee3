"""Sync benchmark: jmapsyncd against vdirsyncer (CalDAV) and against the bare JMAP floor.

For each N (``--n``, repeatable) a fresh user on the local Cyrus gets N varied events (see
``_seed.py``; seeding is not timed). Then, side by side in the same run, each measurement repeated
``--repeat`` times in turn (A B C A B C …) and reported as the median:

1. initial sync into an empty vdir — ``jmapsyncd sync`` (subprocess), ``vdirsyncer discover`` +
   ``vdirsyncer sync`` (subprocess, bench environment), the floor (``_floor.py``);
2. no-op sync, and incremental sync after 1 and after 100 events changed on the server;
3. with ``jmapsyncd run``: time from a file saved in the vdir to the change readable on the server;
4. ``search_events()`` over the account and ``get_objects_by_sync_token()`` after 100 changes,
   jmapsyncd's ``JMAPClient`` against calendaring-jmap's.

Every HTTP exchange goes through a counting proxy (``_proxy.py``), which gives the request counts
and the bytes received. Wall time is measured around each subprocess (interpreter start included);
the floor's time is its own clock around its requests. Peak RSS comes from ``wait4``.

Run: ``python bench/bench_sync.py --n 1000 --n 10000`` with jmapsyncd's environment;
vdirsyncer, calendaring-jmap and matplotlib come from ``--bench-python`` (default
``/tmp/benchenv/bin/python``). Results: ``--json`` (raw) and ``--markdown`` (tables).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._jmap import BareJmap
from bench._seed import event_state, seed, touch

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


@dataclass
class Sample:
    seconds: float
    requests: int = 0
    posts: int = 0
    bytes_in: int = 0
    rss_mb: float = 0.0
    detail: str = ""


@dataclass
class Result:
    """The median of one column of one scenario, and the load around it."""

    seconds: float
    requests: int
    posts: int
    bytes_in: int
    rss_mb: float
    runs: list[float]
    load: list[float] = field(default_factory=list)
    detail: str = ""


def median_result(samples: list[Sample], load: list[float]) -> Result:
    mid = sorted(samples, key=lambda s: s.seconds)[(len(samples) - 1) // 2]
    return Result(
        seconds=statistics.median(s.seconds for s in samples),
        requests=mid.requests,
        posts=mid.posts,
        bytes_in=mid.bytes_in,
        rss_mb=max(s.rss_mb for s in samples),
        runs=[round(s.seconds, 4) for s in samples],
        load=load,
        detail=mid.detail,
    )


# -- plumbing ------------------------------------------------------------------------------------


class Proxy:
    def __init__(self, upstream: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(HERE / "_proxy.py"), "--upstream", upstream],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        self.port = int(self.proc.stdout.readline())
        self.base = f"http://127.0.0.1:{self.port}"

    def _post(self, what: str) -> dict[str, Any]:
        req = urllib.request.Request(f"{self.base}/__bench__/{what}", method="POST")
        with urllib.request.urlopen(req, timeout=10) as resp:
            data: dict[str, Any] = json.loads(resp.read())
        return data

    def reset(self) -> None:
        self._post("reset")

    def counts(self) -> dict[str, Any]:
        return self._post("counts")

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


@dataclass
class Finished:
    seconds: float
    rss_mb: float
    returncode: int
    stdout: str
    stderr: str


def run_measured(
    argv: list[str], env: dict[str, str] | None = None, stdin: str | None = None
) -> Finished:
    """Run argv to completion; wall time and peak RSS (``wait4``) of that process."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(
            argv,
            stdout=out,
            stderr=err,
            stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
            env=env,
            text=True,
        )
        if stdin is not None:
            assert proc.stdin is not None
            with contextlib.suppress(BrokenPipeError):
                proc.stdin.write(stdin)
                proc.stdin.close()
        _, status, usage = os.wait4(proc.pid, 0)
        took = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return Finished(took, usage.ru_maxrss / 1024, proc.returncode, out.read(), err.read())


def load_now() -> float:
    return round(os.getloadavg()[0], 2)


# -- the three columns ---------------------------------------------------------------------------


@dataclass
class Account:
    n: int
    user: str
    password: str
    direct_url: str  # the Cyrus session URL
    proxy_url: str  # the same through the counting proxy
    dav_url: str  # CalDAV home through the proxy
    ids: list[str]


class Workspace:
    def __init__(self, root: Path, account: Account, bench_python: Path) -> None:
        self.root = root
        self.acc = account
        self.bench_bin = bench_python.parent
        self.jmapsyncd = Path(sys.executable).parent / "jmapsyncd"
        self.jdir = root / "jmapsyncd"
        self.vdir = root / "vdirsyncer"
        self.jcfg = root / "jmapsyncd.toml"
        self.vcfg = root / "vdirsyncer.conf"
        self.trash = root / "trash"

    def write_configs(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.jcfg.write_text(
            f'url = "{self.acc.proxy_url}"\n'
            f'username = "{self.acc.user}"\n'
            f'password = "{self.acc.password}"\n'
            f'vdir = "{self.jdir}/vdir"\n'
            f'state_db = "{self.jdir}/state.sqlite"\n'
            "pull_interval = 3600\n"
        )
        self.jcfg.chmod(0o600)
        self.vcfg.write_text(
            "[general]\n"
            f'status_path = "{self.vdir}/status/"\n\n'
            "[pair bench]\n"
            'a = "bench_remote"\nb = "bench_local"\n'
            'collections = ["from a"]\nconflict_resolution = "a wins"\n\n'
            "[storage bench_remote]\n"
            'type = "caldav"\n'
            f'url = "{self.acc.dav_url}"\n'
            f'username = "{self.acc.user}"\npassword = "{self.acc.password}"\n\n'
            "[storage bench_local]\n"
            'type = "filesystem"\n'
            f'path = "{self.vdir}/vdir/"\n'
            'fileext = ".ics"\n'
        )

    def clear(self, which: Path) -> None:
        """Empty ``which`` for the next run by moving it aside; deleted once all N are measured.

        Not deleted here: on ext4 (at least on this mount) the first files created after
        thousands were freed are several times slower to create than on a disk left alone,
        and that cost would fall on whichever column ran next.
        """
        self.trash.mkdir(parents=True, exist_ok=True)
        if which.exists():
            which.rename(self.trash / f"{which.name}-{time.monotonic_ns()}")
        which.mkdir(parents=True)

    def vdir_files(self, which: Path) -> int:
        return sum(1 for _ in (which / "vdir").glob("*/*.ics"))


def counted(proxy: Proxy, sample: Sample) -> Sample:
    c = proxy.counts()
    sample.requests = int(c["requests"])
    sample.posts = int(c["by_method"].get("POST", 0))
    sample.bytes_in = int(c["bytes_in"])
    return sample


def run_jmapsyncd(ws: Workspace, proxy: Proxy, prefix: list[str] | None = None) -> Sample:
    proxy.reset()
    fin = run_measured([*(prefix or []), str(ws.jmapsyncd), "--config", str(ws.jcfg), "sync"])
    if fin.returncode != 0:
        raise RuntimeError(f"jmapsyncd sync failed ({fin.returncode}): {fin.stderr[-2000:]}")
    last = (fin.stdout.strip().splitlines() or [""])[-1]
    return counted(proxy, Sample(fin.seconds, rss_mb=fin.rss_mb, detail=last))


def run_vdirsyncer(ws: Workspace, proxy: Proxy, discover: bool) -> Sample:
    env = dict(os.environ, VDIRSYNCER_CONFIG=str(ws.vcfg))
    vds = str(ws.bench_bin / "vdirsyncer")
    proxy.reset()
    seconds = 0.0
    rss = 0.0
    if discover:
        fin = run_measured([vds, "discover"], env=env, stdin="y\n" * 20)
        if fin.returncode != 0:
            raise RuntimeError(f"vdirsyncer discover failed: {fin.stderr[-2000:]}")
        seconds += fin.seconds
        rss = fin.rss_mb
    fin = run_measured([vds, "sync"], env=env)
    if fin.returncode != 0:
        raise RuntimeError(f"vdirsyncer sync failed: {fin.stderr[-2000:]}")
    seconds += fin.seconds
    lines = [ln for ln in fin.stderr.splitlines() + fin.stdout.splitlines() if ln.strip()]
    copied = sum("Copying" in ln for ln in lines)
    return counted(
        proxy, Sample(seconds, rss_mb=max(rss, fin.rss_mb), detail=f"{copied} item(s) copied")
    )


def run_floor(ws: Workspace, proxy: Proxy, mode: str, state: str = "") -> Sample:
    argv = [sys.executable, str(HERE / "_floor.py"), ws.acc.proxy_url, ws.acc.user]
    fin = run_measured([*argv, ws.acc.password, mode, *([state] if state else [])])
    if fin.returncode != 0:
        raise RuntimeError(f"floor failed: {fin.stderr[-2000:]}")
    data = json.loads(fin.stdout)
    return counted(
        proxy,
        Sample(float(data["seconds"]), rss_mb=fin.rss_mb, detail=f"{data['events']} event(s)"),
    )


def interleaved(repeat: int, columns: dict[str, Callable[[int], Sample]]) -> dict[str, Result]:
    samples: dict[str, list[Sample]] = {name: [] for name in columns}
    loads: list[float] = [load_now()]
    for rep in range(repeat):
        for name, fn in columns.items():
            samples[name].append(fn(rep))
        loads.append(load_now())
    return {name: median_result(s, loads) for name, s in samples.items()}


# -- scenarios -----------------------------------------------------------------------------------


def initial_sync(
    ws: Workspace, proxy: Proxy, repeat: int, eatmydata: str | None
) -> dict[str, Result]:
    def jm(_rep: int, prefix: list[str] | None = None) -> Sample:
        ws.clear(ws.jdir)
        s = run_jmapsyncd(ws, proxy, prefix)
        if ws.vdir_files(ws.jdir) != ws.acc.n:
            raise RuntimeError(f"jmapsyncd wrote {ws.vdir_files(ws.jdir)} files, not {ws.acc.n}")
        return s

    def vd(_rep: int) -> Sample:
        ws.clear(ws.vdir)
        s = run_vdirsyncer(ws, proxy, discover=True)
        if ws.vdir_files(ws.vdir) != ws.acc.n:
            raise RuntimeError(f"vdirsyncer wrote {ws.vdir_files(ws.vdir)} files, not {ws.acc.n}")
        return s

    def fl(_rep: int) -> Sample:
        return run_floor(ws, proxy, "initial")

    columns: dict[str, Callable[[int], Sample]] = {"jmapsyncd": jm, "vdirsyncer": vd, "floor": fl}
    if eatmydata:
        # Diagnosis only: the same sync with fsync() turned into a no-op by libeatmydata.
        columns["jmapsyncd_nofsync"] = lambda rep: jm(rep, [eatmydata])
    return interleaved(repeat, columns)


def changed_sync(
    ws: Workspace, proxy: Proxy, jmap: BareJmap, repeat: int, changes: int
) -> dict[str, Result]:
    """Each repetition changes ``changes`` events on the server, then runs the three columns."""
    changes = min(changes, len(ws.acc.ids))
    since = [""]

    def change(rep: int) -> None:
        since[0] = event_state(jmap)
        if changes:
            start = (rep * changes) % max(1, len(ws.acc.ids) - changes)
            touch(jmap, ws.acc.ids[start : start + changes], f"changed r{rep}")

    def jm(rep: int) -> Sample:
        change(rep)
        s = run_jmapsyncd(ws, proxy)
        want = f"{changes} downloaded"
        if changes and want not in s.detail:
            raise RuntimeError(f"jmapsyncd: expected {want!r}, got {s.detail!r}")
        return s

    def vd(_rep: int) -> Sample:
        s = run_vdirsyncer(ws, proxy, discover=False)
        if s.detail != f"{changes} item(s) copied":
            raise RuntimeError(f"vdirsyncer: expected {changes} copied, got {s.detail!r}")
        return s

    def fl(_rep: int) -> Sample:
        s = run_floor(ws, proxy, "changes", since[0])
        if s.detail != f"{changes} event(s)":
            raise RuntimeError(f"floor: expected {changes} events, got {s.detail!r}")
        return s

    return interleaved(repeat, {"jmapsyncd": jm, "vdirsyncer": vd, "floor": fl})


@contextlib.contextmanager
def daemon(ws: Workspace) -> Iterator[subprocess.Popen[str]]:
    """``jmapsyncd run``, yielded once it tells the (fake) service manager it is ready."""
    sock_path = ws.root / "notify.sock"
    with contextlib.suppress(FileNotFoundError):
        sock_path.unlink()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(sock_path))
    env = dict(os.environ, NOTIFY_SOCKET=str(sock_path))
    log = (ws.root / "daemon.log").open("w")
    proc = subprocess.Popen(
        [str(ws.jmapsyncd), "--config", str(ws.jcfg), "-v", "run"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
    )
    ready = threading.Event()

    def manager() -> None:
        # Read every message, as systemd does, for as long as the daemon runs.
        with contextlib.suppress(OSError):
            while proc.poll() is None:
                with contextlib.suppress(TimeoutError):
                    if b"READY=1" in sock.recv(4096):
                        ready.set()

    sock.settimeout(0.5)
    reader = threading.Thread(target=manager, daemon=True)
    reader.start()
    try:
        if not ready.wait(600):
            raise RuntimeError("the daemon did not report READY=1 in 600 s")
        yield proc
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
        reader.join(5)
        sock.close()
        log.close()


def edit_file(path: Path, title: str) -> None:
    """Save a new SUMMARY the way an editor that writes atomically does."""
    lines = path.read_text().splitlines(keepends=True)
    out: list[str] = []
    in_event = False
    done = False
    for line in lines:
        if line.startswith("BEGIN:VEVENT"):
            in_event = True
        if in_event and not done and line.startswith("SUMMARY"):
            out.append(f"SUMMARY:{title}\r\n")
            done = True
            continue
        if line.startswith((" ", "\t")) and out and out[-1].startswith("SUMMARY:" + title):
            continue  # a folded continuation of the old SUMMARY
        out.append(line)
    tmp = path.with_suffix(".tmp-edit")
    tmp.write_text("".join(out))
    os.replace(tmp, path)


def push_latency(
    ws: Workspace, proxy: Proxy, jmap: BareJmap, repeat: int
) -> tuple[Result, list[dict[str, Any]]]:
    """File saved → change visible on the server, with the daemon running."""
    folder = next(p for p in (ws.jdir / "vdir").iterdir() if p.is_dir())
    files = sorted(folder.glob("*.ics"))
    samples: list[Sample] = []
    raw: list[dict[str, Any]] = []
    loads = [load_now()]
    with daemon(ws):
        time.sleep(1.0)  # let the watcher settle after the start-up pass
        for rep in range(repeat):
            path = files[(rep * 7919) % len(files)]
            uid = next(
                ln.split(":", 1)[1].strip()
                for ln in path.read_text().splitlines()
                if ln.startswith("UID:")
            )
            found = jmap.one("CalendarEvent/query", {"filter": {"uid": uid}})["ids"]
            title = f"edited locally {rep} {time.time_ns()}"
            proxy.reset()
            t0 = time.perf_counter()
            edit_file(path, title)
            seen = None
            while time.perf_counter() - t0 < 30:
                got = jmap.one("CalendarEvent/get", {"ids": found, "properties": ["title"]})
                if got["list"] and got["list"][0].get("title") == title:
                    seen = time.perf_counter() - t0
                    break
                time.sleep(0.01)
            if seen is None:
                raise RuntimeError(f"the edit of {path.name} did not reach the server in 30 s")
            time.sleep(0.3)  # the pass finishes its bookkeeping before the counters are read
            sample = counted(proxy, Sample(seen))
            samples.append(sample)
            raw.append(asdict(sample))
            loads.append(load_now())
            time.sleep(1.0)
    return median_result(samples, loads), raw


def client_calls(
    ws: Workspace, proxy: Proxy, jmap: BareJmap, bench_python: Path, repeat: int
) -> dict[str, dict[str, Result]]:
    since = event_state(jmap)
    touch(jmap, ws.acc.ids[-100:], "client-call change")
    out: dict[str, dict[str, Result]] = {}
    for op in ("search", "changes"):
        out[op] = {}
        for impl, python in (("ours", Path(sys.executable)), ("theirs", bench_python)):
            argv = [str(python), str(HERE / "_client_calls.py"), "--impl", impl, "--op", op]
            argv += ["--token", since, "--repeat", str(repeat)]
            argv += [ws.acc.proxy_url, ws.acc.user, ws.acc.password]
            load0 = load_now()
            fin = run_measured(argv)
            if fin.returncode != 0:
                raise RuntimeError(f"client call {impl} {op} failed: {fin.stderr[-2000:]}")
            runs = json.loads(fin.stdout)
            samples = [
                Sample(
                    r["seconds"],
                    requests=r["requests"],
                    bytes_in=r["bytes_in"],
                    detail=r["error"] or f"{r['objects']} object(s)",
                )
                for r in runs
            ]
            out[op][impl] = median_result(samples, [load0, load_now()])
    return out


# -- one N ---------------------------------------------------------------------------------------


def bench_n(n: int, args: argparse.Namespace, proxy: Proxy, work: Path) -> dict[str, Any]:
    stamp = time.strftime("%H%M%S")
    user = f"bench{n}x{stamp}"
    subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "jmap_server.py"),
            "adduser",
            user,
            "--password",
            "pw",
            "--dialect",
            args.dialect,
        ],
        check=True,
    )
    host_port = args.server.split("//", 1)[1].split("/", 1)[0]
    direct = f"http://{host_port}/.well-known/jmap"
    acc = Account(
        n=n,
        user=user,
        password="pw",
        direct_url=direct,
        proxy_url=f"{proxy.base}/.well-known/jmap",
        dav_url=f"{proxy.base}/dav/calendars/user/{user}/",
        ids=[],
    )
    jmap = BareJmap(direct, user, "pw")
    t0 = time.perf_counter()
    acc.ids = seed(jmap, n)
    seeded = time.perf_counter() - t0
    log(f"N={n}: user {user}, seeded in {seeded:.1f}s")
    ws = Workspace(work / f"n{n}", acc, Path(args.bench_python))
    ws.write_configs()
    rep = args.repeat
    result: dict[str, Any] = {"n": n, "user": user, "seed_seconds": seeded}
    eatmydata = shutil.which("eatmydata") if args.probe_fsync else None
    result["initial"] = initial_sync(ws, proxy, rep, eatmydata)
    log(f"N={n}: initial {summary(result['initial'])}")
    result["noop"] = changed_sync(ws, proxy, jmap, rep, 0)
    log(f"N={n}: no-op {summary(result['noop'])}")
    result["inc1"] = changed_sync(ws, proxy, jmap, rep, 1)
    log(f"N={n}: 1 change {summary(result['inc1'])}")
    result["inc100"] = changed_sync(ws, proxy, jmap, rep, 100)
    log(f"N={n}: 100 changes {summary(result['inc100'])}")
    if not args.skip_daemon:
        push, raw = push_latency(ws, proxy, jmap, max(rep, 5))
        result["push"] = push
        result["push_raw"] = raw
        log(f"N={n}: local edit to server median {push.seconds:.3f}s runs {push.runs}")
    result["client"] = client_calls(ws, proxy, jmap, Path(args.bench_python), rep)
    log(f"N={n}: client calls {json.dumps(result['client'], default=asdict)[:400]}")
    jmap.close()
    return result


def summary(res: dict[str, Result]) -> str:
    return ", ".join(
        f"{k} {v.seconds:.2f}s/{v.requests}req/{v.rss_mb:.0f}MB" for k, v in res.items()
    )


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# -- report --------------------------------------------------------------------------------------


def machine_notes(bench_python: str) -> dict[str, Any]:
    cpu = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = ""
    with contextlib.suppress(OSError):
        mem = Path("/proc/meminfo").read_text().splitlines()[0].split(":", 1)[1].strip()

    def version(python: str, module: str) -> str:
        code = f"import importlib.metadata as m; print(m.version('{module}'))"
        proc = subprocess.run([python, "-c", code], capture_output=True, text=True)
        return proc.stdout.strip() or "?"

    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory": mem,
        "python": platform.python_version(),
        "jmapsyncd": version(sys.executable, "jmapsyncd"),
        "vdirsyncer": version(bench_python, "vdirsyncer"),
        "calendaring-jmap": version(bench_python, "calendaring-jmap"),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }


def use_source(rev: str, work: Path) -> str:
    """Make every jmapsyncd process of this run import ``src/`` as of ``rev``; describe it."""
    git = ["git", "-C", str(ROOT)]
    if rev == "worktree":
        dirty = subprocess.run(
            [*git, "status", "--porcelain", "--", "src"], capture_output=True, text=True
        ).stdout.split("\n")
        head = subprocess.run(
            [*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True
        ).stdout.strip()
        changed = sum(1 for line in dirty if line.strip())
        subprocess.run([sys.executable, "-m", "compileall", "-q", str(ROOT / "src")], check=True)
        return f"work tree at {head} ({changed} file(s) in src/ changed since)"
    commit = subprocess.run(
        [*git, "rev-parse", "--short", rev], capture_output=True, text=True, check=True
    ).stdout.strip()
    dest = work / f"src-{commit}"
    if not dest.exists():
        dest.mkdir(parents=True)
        archive = subprocess.run(
            [*git, "archive", commit, "src"], capture_output=True, check=True
        ).stdout
        subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    os.environ["PYTHONPATH"] = str(dest / "src")
    # Byte-compile as pip does on install (vdirsyncer's files are): with
    # PYTHONDONTWRITEBYTECODE set, every run would otherwise compile our sources anew.
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(dest / "src")], check=True)
    where = subprocess.run(
        [sys.executable, "-c", "import jmapsyncd; print(jmapsyncd.__file__)"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    if not where.startswith(str(dest)):
        raise SystemExit(f"bench: jmapsyncd still imports from {where}")
    return f"commit {commit}"


def fmt_bytes(n: int) -> str:
    if n >= 1 << 20:
        return f"{n / (1 << 20):.1f} MiB"
    if n >= 1 << 10:
        return f"{n / (1 << 10):.1f} KiB"
    return f"{n} B"


def ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}x" if b > 0 else "-"


def markdown(results: list[dict[str, Any]], notes: dict[str, Any], repeat: int) -> str:
    out: list[str] = []
    add = out.append
    add(
        f"Run {notes['date']} on {notes['cpu']} ({notes['cores']} cores, {notes['memory']}), "
        f"Python {notes['python']}; jmapsyncd {notes['jmapsyncd']}, vdirsyncer "
        f"{notes['vdirsyncer']}, calendaring-jmap {notes['calendaring-jmap']}. Median of "
        f"{repeat} runs each, columns interleaved; 1-minute load average shown per scenario. "
        f"jmapsyncd measured: {notes['measured']}."
    )
    add("")
    names = {
        "initial": "initial sync",
        "noop": "no-op sync",
        "inc1": "incremental, 1 change",
        "inc100": "incremental, 100 changes",
    }
    add(
        "| N | scenario | jmapsyncd | vdirsyncer | floor | vdirsyncer ÷ jmapsyncd "
        "| jmapsyncd ÷ floor | load |"
    )
    add("|---:|---|---|---|---|---:|---:|---|")
    for res in results:
        for key, label in names.items():
            cols: dict[str, Result] = res[key]
            j, v, f = cols["jmapsyncd"], cols["vdirsyncer"], cols["floor"]

            def cell(r: Result, rss: bool = True) -> str:
                text = f"{r.seconds:.2f} s, {r.requests} req ({r.posts} POST), "
                text += fmt_bytes(r.bytes_in)
                return text + (f", {r.rss_mb:.0f} MB" if rss else "")

            load = "-".join(f"{x:.1f}" for x in (min(j.load), max(j.load)))
            add(
                f"| {res['n']:,} | {label} | {cell(j)} | {cell(v)} | {cell(f, False)} "
                f"| {ratio(v.seconds, j.seconds)} | {ratio(j.seconds, f.seconds)} | {load} |"
            )
    add("")
    add("Cells: wall time, HTTP requests (of which JMAP POSTs), bytes received, peak RSS.")
    add("")
    if any("jmapsyncd_nofsync" in r["initial"] for r in results):
        add(
            "| N | initial sync, jmapsyncd | the same under eatmydata (no fsync) | share of fsync |"
        )
        add("|---:|---:|---:|---:|")
        for res in results:
            ini = res["initial"]
            if "jmapsyncd_nofsync" in ini:
                a, b = ini["jmapsyncd"].seconds, ini["jmapsyncd_nofsync"].seconds
                add(f"| {res['n']:,} | {a:.2f} s | {b:.2f} s | {100 * (a - b) / a:.0f} % |")
        add("")
    if any("push" in r for r in results):
        add("| N | local edit → visible on the server (daemon) | runs (s) | requests per edit |")
        add("|---:|---:|---|---:|")
        for res in results:
            if "push" in res:
                p: Result = res["push"]
                runs = ", ".join(f"{x:.2f}" for x in p.runs)
                add(f"| {res['n']:,} | {p.seconds:.2f} s | {runs} | {p.requests} |")
        add("")
    add(
        "| N | call | jmapsyncd `JMAPClient` | calendaring-jmap `JMAPClient` "
        "| calendaring-jmap ÷ jmapsyncd |"
    )
    add("|---:|---|---|---|---:|")
    for res in results:
        for op, label in (
            ("search", "`search_events()`, whole account"),
            ("changes", "`get_objects_by_sync_token()`, 100 changes"),
        ):
            ours: Result = res["client"][op]["ours"]
            theirs: Result = res["client"][op]["theirs"]

            def ccell(r: Result) -> str:
                return f"{r.seconds:.3f} s, {r.requests} req, {fmt_bytes(r.bytes_in)}; {r.detail}"

            add(
                f"| {res['n']:,} | {label} | {ccell(ours)} | {ccell(theirs)} "
                f"| {ratio(theirs.seconds, ours.seconds)} |"
            )
    add("")
    return "\n".join(out)


def targets(results: list[dict[str, Any]]) -> str:
    out = ["| target | measured | met |", "|---|---|---|"]
    big = max(results, key=lambda r: r["n"])
    small = min(results, key=lambda r: r["n"])
    ini = big["initial"]
    j, v, f = ini["jmapsyncd"], ini["vdirsyncer"], ini["floor"]
    n = f"{big['n']:,}"
    speed = v.seconds / j.seconds
    out.append(
        f"| initial sync of {n} ≥ 5x faster than vdirsyncer | {speed:.2f}x "
        f"| {'yes' if speed >= 5 else 'no'} |"
    )
    floor = j.seconds / f.seconds
    out.append(
        f"| initial sync of {n} within 1.5x of the floor | {floor:.2f}x "
        f"| {'yes' if floor <= 1.5 else 'no'} |"
    )
    for res in results:
        noop = res["noop"]["jmapsyncd"]
        out.append(
            f"| no-op sync: one HTTP request (N={res['n']:,}) | {noop.requests} "
            f"({noop.posts} POST) | {'yes' if noop.requests <= 1 else 'no'} |"
        )
        inc = res["inc1"]["jmapsyncd"]
        out.append(
            f"| incremental sync of 1 change: ≤ 2 requests (N={res['n']:,}) | {inc.requests} "
            f"({inc.posts} POST) | {'yes' if inc.requests <= 2 else 'no'} |"
        )
    rss = big["initial"]["jmapsyncd"].rss_mb
    out.append(f"| peak RSS at {n} ≤ 150 MB | {rss:.0f} MB | {'yes' if rss <= 150 else 'no'} |")
    if small is not big:
        r0 = small["initial"]["jmapsyncd"].rss_mb
        growth = rss / r0
        nratio = big["n"] / small["n"]
        out.append(
            f"| RSS grows far slower than N | x{growth:.2f} for x{nratio:.0f} events "
            f"| {'yes' if growth < nratio / 3 else 'no'} |"
        )
    for res in results:
        if "push" in res:
            p = res["push"]
            out.append(
                f"| local edit on the server within 2 s (N={res['n']:,}) | {p.seconds:.2f} s "
                f"(worst {max(p.runs):.2f} s) | {'yes' if max(p.runs) <= 2 else 'no'} |"
            )
    return "\n".join(out) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description="jmapsyncd vs vdirsyncer vs the JMAP floor")
    parser.add_argument("--n", type=int, action="append", help="events (repeatable)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--server", default="http://127.0.0.1:18310/.well-known/jmap")
    parser.add_argument("--dialect", default="cyrus-3.10")
    parser.add_argument("--bench-python", default="/tmp/benchenv/bin/python")
    parser.add_argument("--workdir", default=None, help="default: a new temporary folder")
    parser.add_argument("--json", default=None, help="write raw results here")
    parser.add_argument("--markdown", default=None, help="write the tables here")
    parser.add_argument("--plot", default=None, help="draw initial-sync time against N (PNG)")
    parser.add_argument("--skip-daemon", action="store_true")
    parser.add_argument(
        "--probe-fsync",
        action="store_true",
        help="also time the initial sync under eatmydata (fsync made a no-op), for diagnosis",
    )
    parser.add_argument(
        "--src",
        default="HEAD",
        help="git revision of src/ to measure (exported, put first on PYTHONPATH), "
        "or 'worktree' for the files as they are",
    )
    args = parser.parse_args()
    ns = sorted(args.n or [1000, 10000])
    work = Path(args.workdir or tempfile.mkdtemp(prefix="jmapsyncd-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    measured = use_source(args.src, work)
    host_port = args.server.split("//", 1)[1].split("/", 1)[0]
    notes = machine_notes(args.bench_python)
    notes["measured"] = measured
    notes["load_start"] = os.getloadavg()
    proxy = Proxy(host_port)
    t0 = time.perf_counter()
    results: list[dict[str, Any]] = []
    try:
        for n in ns:
            results.append(bench_n(n, args, proxy, work))
    finally:
        proxy.close()
        for trash in work.glob("n*/trash"):
            shutil.rmtree(trash, ignore_errors=True)
    notes["total_seconds"] = round(time.perf_counter() - t0, 1)
    notes["load_end"] = os.getloadavg()
    text = markdown(results, notes, args.repeat) + "\n" + targets(results)
    print(text)
    log(f"total {notes['total_seconds']}s; work folder {work}")
    if args.json:
        Path(args.json).write_text(
            json.dumps({"notes": notes, "results": results}, default=asdict, indent=1)
        )
    if args.markdown:
        Path(args.markdown).write_text(text)
    if args.plot and args.json:
        subprocess.run(
            [args.bench_python, str(HERE / "_plot.py"), args.json, args.plot], check=True
        )


if __name__ == "__main__":
    main()
