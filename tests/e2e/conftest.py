"""End-to-end harness: the real ``jmapsyncd``, ``khal`` and ``todo`` commands on one vdir.

Each test gets a fresh account (on real Cyrus, or on the fake server run as its own process for
tasks), a config file, and khal/todoman configs that discover every folder of the vdir.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from jmapsyncd.jmap import JMAPClient
from tests.conftest import ServerAccount

BIN = Path(sys.executable).parent
REPO = Path(__file__).resolve().parents[2]

KHAL_CONF = """\
[calendars]
[[jmap]]
path = {vdir}/*
type = discover

[sqlite]
path = {home}/khal.sqlite

[locale]
timeformat = %H:%M
dateformat = %Y-%m-%d
longdateformat = %Y-%m-%d
datetimeformat = %Y-%m-%d %H:%M
longdatetimeformat = %Y-%m-%d %H:%M
default_timezone = Europe/Berlin
local_timezone = Europe/Berlin
"""

TODOMAN_CONF = """\
path = "{vdir}/*"
date_format = "%Y-%m-%d"
time_format = "%H:%M"
cache_path = "{home}/todoman.sqlite"
"""


@dataclass
class Setup:
    """One account, one vdir, and the commands that work on them."""

    account: ServerAccount
    home: Path
    vdir: Path
    config: Path

    def _run(self, argv: list[str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
        env = {
            **os.environ,
            "HOME": str(self.home),
            "XDG_CONFIG_HOME": str(self.home / ".config"),
            "XDG_STATE_HOME": str(self.home / ".state"),
            "TZ": "Europe/Berlin",
        }
        return subprocess.run(
            argv, capture_output=True, text=True, timeout=timeout, env=env, check=False
        )

    def jmapsyncd(self, *args: str) -> subprocess.CompletedProcess[str]:
        return self._run([str(BIN / "jmapsyncd"), "--config", str(self.config), *args])

    def sync(self) -> str:
        result = self.jmapsyncd("sync")
        assert result.returncode == 0, result.stderr
        return result.stdout

    def khal(self, *args: str) -> str:
        result = self._run([str(BIN / "khal"), "-c", str(self.home / "khal.conf"), *args])
        assert result.returncode == 0, result.stderr
        return result.stdout

    def todo(self, *args: str, porcelain: bool = False) -> str:
        # todoman 4.7 rejects `--porcelain new` (an empty --priority), so only some commands
        # ask for JSON.
        extra = ["--porcelain"] if porcelain else []
        result = self._run(
            [str(BIN / "todo"), "--config", str(self.home / "todoman.py"), *extra, *args]
        )
        assert result.returncode == 0, result.stderr
        return result.stdout

    def client(self) -> JMAPClient:
        return JMAPClient(
            self.account.url, username=self.account.username, password=self.account.password
        )

    def folders(self) -> list[Path]:
        return sorted(p for p in self.vdir.iterdir() if p.is_dir())

    def ics_files(self) -> list[Path]:
        return sorted(self.vdir.glob("*/*.ics"))


def make_setup(account: ServerAccount, home: Path, **extra: str | int) -> Setup:
    vdir = home / "vdir"
    config = home / "config.toml"
    lines = [
        f'url = "{account.url}"',
        f'username = "{account.username}"',
        f'password = "{account.password}"',
        f'vdir = "{vdir}"',
        f'state_db = "{home / "state.sqlite"}"',
    ]
    lines += [f"{k} = {v!r}" if isinstance(v, int) else f'{k} = "{v}"' for k, v in extra.items()]
    config.write_text("\n".join(lines) + "\n")
    config.chmod(0o600)
    (home / "khal.conf").write_text(KHAL_CONF.format(vdir=vdir, home=home))
    (home / "todoman.py").write_text(TODOMAN_CONF.format(vdir=vdir, home=home))
    return Setup(account, home, vdir, config)


@pytest.fixture
def setup(cyrus_account: ServerAccount, tmp_path: Path) -> Setup:
    return make_setup(cyrus_account, tmp_path)


@pytest.fixture
def tasks_server(tmp_path: Path) -> Iterator[ServerAccount]:
    """The fake server (JMAP Tasks draft, IETF dialect) in its own process."""
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.fakeserver",
            "--dialect",
            "ietf",
            "--tasks",
            "--user",
            "alice:secret",
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:"), url
        yield ServerAccount(url=url, username="alice", password="secret", dialect="fake-tasks")
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


def wait_for(check: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll ``check`` until it holds; fail naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.2)
