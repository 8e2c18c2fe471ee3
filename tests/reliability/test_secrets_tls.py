"""Secrets and transport: no password in any output, TLS checked unless explicitly turned off.

* ``jmapsyncd -v -v`` (debug logging, tracebacks) for ``sync``, ``run``, ``status``, ``calendars``
  and a refused login prints neither the password, nor the Bearer token, nor the Basic header's
  base64; the state database does not hold them; ``repr()``/``str()`` of the client, the settings
  and the errors do not show them.
* A local HTTPS server with a self-signed certificate (made with the ``openssl`` command):
  ``jmapsyncd sync`` fails with exit 4 and a message about the certificate; with
  ``verify_tls = false`` it syncs and warns.
* ``password_command`` that is missing, fails or prints nothing: exit 2 and a clear message.
"""

from __future__ import annotations

import base64
import secrets
import shutil
import ssl
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from jmapsyncd.config import load_config
from jmapsyncd.errors import JMAPAuthError
from jmapsyncd.jmap import JMAPClient
from tests.conftest import ServerAccount
from tests.fakeserver import FakeJMAPServer
from tests.reliability.conftest import (
    Box,
    FaultProxy,
    jscal_event,
    upstream_of,
    wait_for,
)

PASSWORD = "pw-" + secrets.token_hex(8)
TOKEN = "tok-alice"  # the fake server's Bearer token for alice


@pytest.fixture
def secret_srv() -> Iterator[FakeJMAPServer]:
    with FakeJMAPServer(dialect="ietf", users={"alice": PASSWORD}) as srv:
        srv.store.add_event(srv.store.default_calendar_id, jscal_event("e1", "one event"))
        yield srv


def _forms(secret: str, user: str = "alice") -> list[str]:
    basic = base64.b64encode(f"{user}:{secret}".encode()).decode()
    return [secret, basic, basic[:16]]


def _leaks(text: str, secret: str) -> list[str]:
    return [form for form in _forms(secret) if form in text]


def _box(srv: FakeJMAPServer, tmp_path: Path, **settings: object) -> Box:
    account = ServerAccount(srv.session_url, "alice", PASSWORD, "fake")
    box = Box(account, tmp_path / "home", settings=dict(settings))
    box.home.mkdir()
    box.write_config()
    return box


def test_password_never_in_verbose_output_status_or_state(
    secret_srv: FakeJMAPServer, tmp_path: Path
) -> None:
    box = _box(secret_srv, tmp_path)
    outputs = []
    for args in (["sync"], ["sync"], ["status"], ["status", "--json"], ["calendars", "--json"]):
        result = box.run("-v", "-v", *args)
        assert result.returncode == 0, result.stderr[-2000:]
        outputs.append(result.stdout + result.stderr)
    # The daemon at debug level, until its first pass is done.
    log = box.home / "run.log"
    with box.start("-v", "-v", "run", log=log) as proc:
        wait_for(lambda: "jmapsyncd running" in log.read_text(), 60, "the daemon to start")
        (box.calendar_folders()[0] / "new.ics").write_text(
            "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//EN\r\nBEGIN:VEVENT\r\nUID:new\r\n"
            "DTSTAMP:20260101T000000Z\r\nDTSTART:20260105T100000Z\r\nSUMMARY:new\r\n"
            "END:VEVENT\r\nEND:VCALENDAR\r\n"
        )
        wait_for(lambda: len(secret_srv.store.events) == 2, 60, "the daemon to push")
        proc.terminate()
        assert proc.wait(timeout=60) == 0
    outputs.append(log.read_text())
    assert "DEBUG" in outputs[-1]  # really at debug level
    for text in outputs:
        assert _leaks(text, PASSWORD) == []
    for path in box.state_db.parent.iterdir():
        assert _leaks(path.read_bytes().decode("latin-1"), PASSWORD) == [], path.name


def test_refused_password_not_in_traceback(secret_srv: FakeJMAPServer, tmp_path: Path) -> None:
    wrong = "wrong-" + secrets.token_hex(8)
    box = _box(secret_srv, tmp_path)
    box.write_config(password=wrong)
    result = box.run("-v", "-v", "sync")
    assert result.returncode == 3
    assert "Traceback" in result.stderr  # -vv shows it; it must still hide the secret
    assert _leaks(result.stdout + result.stderr, wrong) == []


def test_bearer_token_never_in_verbose_output(secret_srv: FakeJMAPServer, tmp_path: Path) -> None:
    box = _box(secret_srv, tmp_path)
    box.write_config(username=None, password=TOKEN)  # a password alone is a Bearer token
    assert "username" not in box.config.read_text()
    result = box.run("-v", "-v", "sync")
    assert result.returncode == 0, result.stderr[-2000:]
    assert TOKEN not in result.stdout + result.stderr


def test_repr_and_errors_hide_secrets(secret_srv: FakeJMAPServer, tmp_path: Path) -> None:
    box = _box(secret_srv, tmp_path)
    settings = load_config(box.config, box.env())
    texts = [repr(settings), str(settings), repr(settings.password), str(settings.model_dump())]
    with JMAPClient(secret_srv.session_url, username="alice", password=PASSWORD) as client:
        client.get_session()
        texts += [repr(client), str(client), repr(vars(client).get("_state"))]
    wrong = "wrong-" + secrets.token_hex(8)
    with JMAPClient(secret_srv.session_url, username="alice", password=wrong) as client:
        with pytest.raises(JMAPAuthError) as caught:
            client.get_session()
        texts += [str(caught.value), repr(caught.value), repr(caught.value.args)]
    for text in texts:
        assert _leaks(text, PASSWORD) == [], text
        assert _leaks(text, wrong) == [], text


# -- TLS ----------------------------------------------------------------------------------------


@pytest.fixture
def self_signed(tmp_path: Path) -> ssl.SSLContext:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("the openssl command is not installed")
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        [
            openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
            "-keyout", str(key), "-out", str(cert),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )  # fmt: skip
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    return context


@pytest.fixture
def https(
    secret_srv: FakeJMAPServer, self_signed: ssl.SSLContext
) -> Iterator[tuple[FaultProxy, str]]:
    with FaultProxy(upstream_of(secret_srv.session_url), tls=self_signed) as proxy:
        yield proxy, proxy.url_for(secret_srv.session_url)


def test_self_signed_certificate_is_refused_by_default(
    https: tuple[FaultProxy, str], secret_srv: FakeJMAPServer, tmp_path: Path
) -> None:
    proxy, url = https
    assert url.startswith("https://")
    box = _box(secret_srv, tmp_path, url=url)
    result = box.run("sync")
    assert result.returncode == 4, result.stderr
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, result.stderr
    assert "certificate" in lines[0].lower(), lines[0]
    print(lines[0])
    assert proxy.handshakes == 0
    assert proxy.requests == []
    assert not box.vdir.exists() or box.ics_files() == []


NO_CA_ENV: dict[str, str | None] = {"REQUESTS_CA_BUNDLE": None, "CURL_CA_BUNDLE": None}


def test_verify_tls_false_syncs_and_warns(
    https: tuple[FaultProxy, str], secret_srv: FakeJMAPServer, tmp_path: Path
) -> None:
    proxy, url = https
    box = _box(secret_srv, tmp_path, url=url, verify_tls=False)
    box.environ.update(NO_CA_ENV)
    result = box.run("sync")
    assert result.returncode == 0, result.stderr
    assert "verify_tls is false" in result.stderr
    assert proxy.handshakes >= 1
    assert box.local_summaries()["one event"] == 1


@pytest.mark.parametrize("variable", ["REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"])
def test_verify_tls_false_works_with_a_ca_bundle_in_the_environment(
    https: tuple[FaultProxy, str], secret_srv: FakeJMAPServer, tmp_path: Path, variable: str
) -> None:
    _proxy, url = https
    box = _box(secret_srv, tmp_path, url=url, verify_tls=False)
    box.environ.update(NO_CA_ENV)
    box.environ[variable] = ssl.get_default_verify_paths().openssl_cafile
    result = box.run("sync")
    assert result.returncode == 0, result.stderr


# -- password_command ---------------------------------------------------------------------------

PASSWORD_COMMANDS = [
    pytest.param(["/nonexistent/pass-helper"], "program not found", id="missing"),
    pytest.param([sys.executable, "-c", "import sys; sys.exit(3)"], "exit status 3", id="fails"),
    pytest.param([sys.executable, "-c", "pass"], "printed nothing", id="empty"),
    pytest.param([sys.executable, "-c", "print('   ')"], "printed nothing", id="blank"),
]


@pytest.mark.parametrize(("argv", "words"), PASSWORD_COMMANDS)
@pytest.mark.parametrize("command", ["sync", "calendars"])
def test_password_command_failures_exit_2(
    secret_srv: FakeJMAPServer, tmp_path: Path, argv: list[str], words: str, command: str
) -> None:
    box = _box(secret_srv, tmp_path)
    box.settings["password"] = None
    box.write_config(password_command=argv)
    result = box.run(command, timeout=120)
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("jmapsyncd: configuration error: password_command"), lines[0]
    assert words in lines[0]
    assert secret_srv.requests == [] or all(r.path != "/jmap/" for r in secret_srv.requests)


def test_password_command_failure_stops_run_with_exit_2(
    secret_srv: FakeJMAPServer, tmp_path: Path
) -> None:
    box = _box(secret_srv, tmp_path)
    box.settings["password"] = None
    box.write_config(password_command=["/nonexistent/pass-helper"])
    log = box.home / "run.log"
    with box.start("run", log=log) as proc:
        try:
            code = proc.wait(timeout=10)  # it should stop at once; 10 s is generous
        except subprocess.TimeoutExpired:
            code = None
    assert code == 2, log.read_text()[-2000:]
    assert "program not found" in log.read_text()


def test_password_command_output_is_used_and_not_shown(
    secret_srv: FakeJMAPServer, tmp_path: Path
) -> None:
    box = _box(secret_srv, tmp_path)
    box.settings["password"] = None
    box.write_config(password_command=[sys.executable, "-c", f"print({PASSWORD!r})"])
    result = box.run("-v", "-v", "sync")
    assert result.returncode == 0, result.stderr[-2000:]
    assert _leaks(result.stdout + result.stderr, PASSWORD) == []
    assert box.local_summaries()["one event"] == 1
