"""The systemd user units pass ``systemd-analyze verify`` and say what the daemon relies on."""

from __future__ import annotations

import configparser
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

UNITS = Path(__file__).resolve().parents[2] / "systemd"


def _console_script() -> Path:
    found = shutil.which("jmapsyncd", path=str(Path(sys.executable).parent))
    assert found, "the jmapsyncd console script is not installed next to this Python"
    return Path(found)


def _verify(unit: Path, home: Path) -> subprocess.CompletedProcess[str]:
    runtime = home / "run"
    runtime.mkdir(mode=0o700, exist_ok=True)
    env = dict(os.environ, HOME=str(home), XDG_RUNTIME_DIR=str(runtime))
    return subprocess.run(
        ["systemd-analyze", "verify", "--user", str(unit)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """A home whose ~/.local/bin/jmapsyncd is the installed console script (pip --user)."""
    bin_dir = tmp_path / ".local" / "bin"
    bin_dir.mkdir(parents=True)
    (bin_dir / "jmapsyncd").symlink_to(_console_script())
    return tmp_path


@pytest.fixture(autouse=True)
def _need_systemd_analyze() -> None:
    if shutil.which("systemd-analyze") is None:
        if os.environ.get("CI"):
            pytest.fail("systemd-analyze is missing (scripts/bootstrap installs systemd)")
        pytest.skip("systemd-analyze is not installed")


def test_single_account_unit_verifies(home: Path) -> None:
    result = _verify(UNITS / "jmapsyncd.service", home)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""


def test_template_unit_verifies_for_an_instance(home: Path) -> None:
    instance = home / "jmapsyncd@work.service"
    shutil.copy(UNITS / "jmapsyncd@.service", instance)
    result = _verify(instance, home)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""


def test_verify_catches_a_missing_program(tmp_path: Path) -> None:
    # Proves the check above can fail: no ~/.local/bin/jmapsyncd here.
    result = _verify(UNITS / "jmapsyncd.service", tmp_path)
    assert result.returncode != 0
    assert "jmapsyncd" in result.stderr


@pytest.mark.parametrize("name", ["jmapsyncd.service", "jmapsyncd@.service"])
def test_units_use_notify_and_watchdog(name: str) -> None:
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str  # type: ignore[assignment, method-assign]  # keep systemd's key case
    unit.read(UNITS / name)
    service = unit["Service"]
    assert service["Type"] == "notify"
    assert int(service["WatchdogSec"]) > 0
    assert service["KillSignal"] == "SIGTERM"
    assert " run" in service["ExecStart"]
    if "@" in name:
        assert "%i" in service["ExecStart"]
