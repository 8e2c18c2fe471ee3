"""How many HTTP requests a sync pass costs on real Cyrus, counted at the client's one way out.

A no-op pass of a new process is one request: the session resource comes from the state
database, and one pull holds Calendar/changes and CalendarEvent/changes with the changed objects
by result reference (RFC 8620 §3.7). A server change costs no more. Regression for the four
requests (redirect, session, Calendar/get, CalendarEvent/changes) a no-op sync used to cost.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from jmapsyncd.jmap import JMAPClient
from jmapsyncd.protocol.wire import HttpRequest
from jmapsyncd.state import StateDB
from jmapsyncd.sync.engine import SyncEngine
from jmapsyncd.vdir import Vdir
from tests.conftest import ServerAccount

pytestmark = pytest.mark.integration


@contextmanager
def process(account: ServerAccount, home: Path) -> Iterator[tuple[SyncEngine, list[str]]]:
    """What one ``jmapsyncd sync`` process holds, and every request its client sends."""
    sent: list[str] = []
    with (
        JMAPClient(account.url, username=account.username, password=account.password) as client,
        StateDB(home / "state.sqlite") as db,
    ):
        send = client._send

        def recording(req: HttpRequest) -> Any:
            sent.append(f"{req.method} {req.url}")
            return send(req)

        client._send = recording  # type: ignore[method-assign]
        yield SyncEngine(client, Vdir(home / "vdir"), db), sent


def _event(uid: str, title: str) -> str:
    return (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\nBEGIN:VEVENT\r\n"
        f"UID:{uid}\r\nDTSTAMP:20260101T000000Z\r\nDTSTART:20270105T100000Z\r\n"
        f"DURATION:PT1H\r\nSUMMARY:{title}\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    )


def test_a_no_op_sync_and_a_one_change_sync_are_one_request_each(
    cyrus_account: ServerAccount, tmp_path: Path
) -> None:
    with JMAPClient(
        cyrus_account.url, username=cyrus_account.username, password=cyrus_account.password
    ) as other:
        calendar = other.get_calendars()[0].id
        uid = f"count-{uuid.uuid4().hex}"
        event_id = other.create_event(calendar, _event(uid, "Counted"))

        with process(cyrus_account, tmp_path) as (engine, sent):
            first = engine.sync()
        assert first.downloaded == 1
        assert first.full

        with process(cyrus_account, tmp_path) as (engine, sent):
            report = engine.sync()
        assert report.changed == 0
        assert not report.errors
        assert len(sent) == 1, sent

        other.update_event(event_id, _event(uid, "Counted again"))
        with process(cyrus_account, tmp_path) as (engine, sent):
            report = engine.sync()
        assert report.downloaded == 1
        assert not report.full
        assert len(sent) == 1, sent
        [path] = (tmp_path / "vdir").glob("*/*.ics")
        assert "SUMMARY:Counted again" in path.read_text()
