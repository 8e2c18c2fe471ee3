"""An upload the server keeps only in part is synced, reported, and the file keeps everything.

Both Cyrus versions refuse ``participationStatus: delegated`` on a participant
(``invalidProperties``); the protocol layer leaves that value out of the event, sends it again
and names what it left out in ``SetResult.dropped``. The sync report must say so, per file, and
the local file must not be rewritten to the server's poorer copy.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from jmapsyncd.jmap import JMAPClient
from jmapsyncd.state import StateDB
from jmapsyncd.sync.engine import SyncEngine
from jmapsyncd.vdir import Vdir
from tests.conftest import ServerAccount

pytestmark = pytest.mark.integration


def _delegated(uid: str, title: str) -> str:
    return (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\nBEGIN:VEVENT\r\n"
        f"UID:{uid}\r\nDTSTAMP:20260101T000000Z\r\nDTSTART:20270105T100000Z\r\n"
        f"DURATION:PT1H\r\nSUMMARY:{title}\r\n"
        "ORGANIZER;CN=Ann:mailto:ann@example.com\r\n"
        'ATTENDEE;CN=Dave;PARTSTAT=DELEGATED;DELEGATED-TO="mailto:erin@example.com":'
        "mailto:dave@example.com\r\n"
        'ATTENDEE;CN=Erin;PARTSTAT=NEEDS-ACTION;DELEGATED-FROM="mailto:dave@example.com":'
        "mailto:erin@example.com\r\n"
        "END:VEVENT\r\nEND:VCALENDAR\r\n"
    )


def test_what_the_server_leaves_out_is_reported_and_kept_in_the_file(
    cyrus_account: ServerAccount, tmp_path: Path
) -> None:
    with (
        JMAPClient(
            cyrus_account.url, username=cyrus_account.username, password=cyrus_account.password
        ) as client,
        StateDB(tmp_path / "state.sqlite") as db,
    ):
        engine = SyncEngine(client, Vdir(tmp_path / "vdir"), db)
        engine.sync()
        [folder] = [p for p in (tmp_path / "vdir").iterdir() if p.is_dir()]
        uid = f"delegated-{uuid.uuid4().hex}"
        path = folder / f"{uid}.ics"
        text = _delegated(uid, "Handed over")
        path.write_text(text, newline="")

        created = engine.sync()
        assert created.uploaded == 1
        assert not created.errors
        [warning] = created.warnings
        assert path.name in warning
        assert "participationStatus" in warning

        objects, _ = client.get_all_events()
        [event] = [o for o in objects if o.get("uid") == uid]
        assert event["title"] == "Handed over"  # the rest reached the server
        assert len(event.get("participants", {})) >= 2

        # An edit of the same file: the update is partly kept again, and said again.
        path.write_text(text.replace("Handed over", "Handed over again"), newline="")
        updated = engine.sync()
        assert updated.uploaded == 1
        assert any("participationStatus" in w for w in updated.warnings), updated

        assert "PARTSTAT=DELEGATED" in path.read_text()
        again = engine.sync()
        assert again.changed == 0
        assert "PARTSTAT=DELEGATED" in path.read_text()
