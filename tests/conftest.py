"""Shared fixtures: real JMAP servers (Debian's Cyrus) on loopback, one fresh account per test.

The servers are started once per test session by ``scripts/jmap-server`` (idempotent, so a server
already started by ``.ci/run`` is reused). ``JMAPSYNCD_TEST_SERVER=url,user,password`` points the
tests at another server instead; its dialect is then reported as ``external``.

A missing server skips the integration tests on a developer machine and fails them under CI
(``CI`` set), so CI can never pass without really talking to a server.
"""

from __future__ import annotations

import importlib.util
import os
import secrets
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent
DIALECTS = ("cyrus-3.6", "cyrus-3.10")


@dataclass(frozen=True)
class ServerAccount:
    """A JMAP account on a running server, fresh for one test."""

    url: str  # the session URL
    username: str
    password: str
    dialect: str  # "cyrus-3.6", "cyrus-3.10" or "external"


def _load_server_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "jmapsyncd_jmap_server", REPO / "scripts" / "jmap_server.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"no JMAP test server under CI: {reason}", pytrace=False)
    pytest.skip(f"no JMAP test server: {reason}")


@pytest.fixture(scope="session")
def jmap_server_script() -> ModuleType:
    return _load_server_script()


@pytest.fixture(scope="session")
def cyrus_servers(jmap_server_script: ModuleType) -> dict[str, Any]:
    """Start (or reuse) both Cyrus servers; maps dialect name to the script's ``Instance``."""
    if os.environ.get("JMAPSYNCD_TEST_SERVER"):
        return {}
    if os.geteuid() != 0:
        _unavailable("scripts/jmap-server needs root to run Cyrus")
    script = jmap_server_script
    instances: dict[str, Any] = {}
    try:
        script.state_dir().mkdir(parents=True, exist_ok=True)
        script.state_dir().chmod(0o711)
        for name in DIALECTS:
            dialect = script.DIALECTS[name]
            script.install([dialect])
            instance = script.Instance(dialect)
            instance.start()
            instances[name] = instance
    except (SystemExit, Exception) as exc:  # any failure to start means "no server"
        _unavailable(f"starting Cyrus failed: {exc}")
    return instances


def _external_account() -> ServerAccount:
    url, user, password = os.environ["JMAPSYNCD_TEST_SERVER"].split(",", 2)
    return ServerAccount(url=url, username=user, password=password, dialect="external")


def _params() -> list[str]:
    return ["external"] if os.environ.get("JMAPSYNCD_TEST_SERVER") else list(DIALECTS)


@pytest.fixture(params=_params())
def cyrus_account(request: pytest.FixtureRequest, cyrus_servers: dict[str, Any]) -> ServerAccount:
    """A brand-new user on each real server, so tests never see each other's data."""
    if request.param == "external":
        return _external_account()
    return _fresh(cyrus_servers, request.param)


@pytest.fixture
def cyrus36_account(cyrus_servers: dict[str, Any]) -> ServerAccount:
    """A fresh user on the Cyrus 3.6 server only (Cyrus's own calendars dialect)."""
    return _fresh(cyrus_servers, "cyrus-3.6")


@pytest.fixture
def cyrus310_account(cyrus_servers: dict[str, Any]) -> ServerAccount:
    """A fresh user on the Cyrus 3.10 server only (IETF JMAP Calendars dialect)."""
    return _fresh(cyrus_servers, "cyrus-3.10")


def _fresh(servers: dict[str, Any], name: str) -> ServerAccount:
    if os.environ.get("JMAPSYNCD_TEST_SERVER"):
        pytest.skip(f"JMAPSYNCD_TEST_SERVER is set; {name} is not started")
    instance = servers[name]
    user = "t" + secrets.token_hex(6)
    password = secrets.token_urlsafe(12)
    instance.adduser(user, password)
    return ServerAccount(url=instance.session_url, username=user, password=password, dialect=name)
