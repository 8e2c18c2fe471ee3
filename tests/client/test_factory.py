"""Factories and auth selection: arguments win, then JMAP_* variables; None when unconfigured."""

from __future__ import annotations

import pytest
from niquests.auth import BearerTokenAuth, HTTPBasicAuth

from jmapsyncd.errors import LocalProtocolError
from jmapsyncd.jmap import AsyncJMAPClient, JMAPClient, get_async_jmap_client, get_jmap_client


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("JMAP_URL", "JMAP_USERNAME", "JMAP_PASSWORD", "JMAP_TOKEN"):
        monkeypatch.delenv(name, raising=False)


def test_nothing_configured_gives_none() -> None:
    assert get_jmap_client() is None
    assert get_async_jmap_client() is None


def test_environment_basic(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JMAP_URL", "http://h/.well-known/jmap")
    monkeypatch.setenv("JMAP_USERNAME", "alice")
    monkeypatch.setenv("JMAP_PASSWORD", "secret")
    client = get_jmap_client()
    assert isinstance(client, JMAPClient)
    with client:
        assert client.url == "http://h/.well-known/jmap"
        assert isinstance(client._auth, HTTPBasicAuth)
        assert "secret" not in repr(client)


def test_environment_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JMAP_URL", "http://h/")
    monkeypatch.setenv("JMAP_TOKEN", "tok")
    client = get_jmap_client()
    assert client is not None
    with client:
        assert isinstance(client._auth, BearerTokenAuth)


def test_arguments_win_over_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JMAP_URL", "http://env/")
    client = get_jmap_client(url="http://arg/", username="u", password="p")
    assert client is not None
    with client:
        assert client.url == "http://arg/"


@pytest.mark.asyncio
async def test_async_factory() -> None:
    client = get_async_jmap_client(url="http://h/", password="tok")
    assert isinstance(client, AsyncJMAPClient)
    async with client:
        assert isinstance(client._auth, BearerTokenAuth)


def test_auth_object_wins() -> None:
    auth = HTTPBasicAuth("x", "y")
    with JMAPClient("http://h/", "u", "p", auth=auth) as client:
        assert client._auth is auth


def test_auth_type_forces_bearer() -> None:
    with JMAPClient("http://h/", "u", "tok", auth_type="bearer") as client:
        assert isinstance(client._auth, BearerTokenAuth)


def test_bad_auth_type() -> None:
    with pytest.raises(LocalProtocolError):
        JMAPClient("http://h/", "u", "p", auth_type="digest")
