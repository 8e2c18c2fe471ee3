"""The server applied a call but its answer never arrived; the user edits on before the restart.

This is what a ``kill -9`` right after a ``CalendarEvent/set`` does, made deterministic: the proxy
forwards the ``/set`` request and cuts the answer in half, so ``jmapsyncd sync`` stops (exit 4)
with the call applied on the server but not recorded locally. Then the file is edited again
and ``jmapsyncd sync`` runs normally. Only the user's own edits happened, so there is no
conflict: the server must end with the newest local version, once, and nothing else.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from jmapsyncd.jmap import JMAPClient
from jmapsyncd.state import StateDB
from tests.conftest import ServerAccount
from tests.fakeserver import FakeJMAPServer
from tests.reliability.conftest import (
    Box,
    FaultProxy,
    ProxyFault,
    fake_account,
    ics_event,
    server_titles,
    upstream_of,
)

SET_CALL = '"CalendarEvent/set"'


@pytest.fixture(
    params=[
        pytest.param("fake", id="fake"),
        pytest.param("cyrus", id="cyrus-3.10", marks=pytest.mark.integration),
    ]
)
def setup(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[Box, FaultProxy, JMAPClient]]:
    if request.param == "fake":
        with FakeJMAPServer(dialect="ietf") as srv:
            srv.store.default_calendar_id  # noqa: B018  (created lazily, as the servers do)
            yield from _setup(fake_account(srv), tmp_path)
    else:
        yield from _setup(request.getfixturevalue("cyrus310_account"), tmp_path)


def _setup(account: ServerAccount, tmp_path: Path) -> Iterator[tuple[Box, FaultProxy, JMAPClient]]:
    with (
        FaultProxy(upstream_of(account.url)) as proxy,
        JMAPClient(account.url, username=account.username, password=account.password) as direct,
    ):
        calendars, _state = direct.fetch_calendars()
        if not calendars:
            direct.create_calendar("Calendar")
        proxied = ServerAccount(
            proxy.url_for(account.url), account.username, account.password, account.dialect
        )
        box = Box(proxied, tmp_path / "home")
        box.home.mkdir()
        box.write_config()
        box.sync_here()
        [folder] = box.calendar_folders()
        (folder / "ev.ics").write_text(ics_event("ev", "ev v1"))
        (folder / "other.ics").write_text(ics_event("other", "other"))
        box.sync_here()
        yield box, proxy, direct


def _lose_the_set_answer(box: Box, proxy: FaultProxy) -> None:
    proxy.faults.append(ProxyFault("truncate", method="POST", call=SET_CALL))
    failed = box.run("sync")
    assert failed.returncode == 4, failed.stderr
    assert proxy.faults == []


def test_update_applied_answer_lost_then_edited_again_keep_both(
    setup: tuple[Box, FaultProxy, JMAPClient],
) -> None:
    box, proxy, direct = setup
    [folder] = box.calendar_folders()
    (folder / "ev.ics").write_text(ics_event("ev", "ev v2"))
    _lose_the_set_answer(box, proxy)
    assert server_titles(direct)["ev v2"] == 1  # the server did apply it
    (folder / "ev.ics").write_text(ics_event("ev", "ev v3"))
    result = box.sync_ok()
    assert "0 conflict(s)" in result.stdout, result.stdout
    assert server_titles(direct) == Counter(["ev v3", "other"])
    assert box.local_summaries() == Counter(["ev v3", "other"])


def test_update_applied_answer_lost_then_edited_again_server_wins(
    setup: tuple[Box, FaultProxy, JMAPClient],
) -> None:
    box, proxy, direct = setup
    box.write_config(conflict_resolution="server-wins")
    [folder] = box.calendar_folders()
    (folder / "ev.ics").write_text(ics_event("ev", "ev v2"))
    _lose_the_set_answer(box, proxy)
    (folder / "ev.ics").write_text(ics_event("ev", "ev v3"))
    box.sync_ok()
    assert box.local_summaries() == Counter(["ev v3", "other"]), "the newest local edit is lost"
    assert server_titles(direct) == Counter(["ev v3", "other"])


def test_update_applied_answer_lost_then_deleted_locally(
    setup: tuple[Box, FaultProxy, JMAPClient],
) -> None:
    box, proxy, direct = setup
    [folder] = box.calendar_folders()
    (folder / "ev.ics").write_text(ics_event("ev", "ev v2"))
    _lose_the_set_answer(box, proxy)
    (folder / "ev.ics").unlink()
    box.sync_ok()
    assert box.local_summaries() == Counter(["other"]), "the deleted file came back"
    assert server_titles(direct) == Counter(["other"])


def test_update_applied_answer_lost_then_restart_without_new_edit(
    setup: tuple[Box, FaultProxy, JMAPClient],
) -> None:
    box, proxy, direct = setup
    [folder] = box.calendar_folders()
    (folder / "ev.ics").write_text(ics_event("ev", "ev v2"))
    _lose_the_set_answer(box, proxy)
    result = box.sync_ok()
    assert "0 conflict(s)" in result.stdout
    assert server_titles(direct) == Counter(["ev v2", "other"])
    assert box.local_summaries() == Counter(["ev v2", "other"])


def test_create_applied_answer_lost_then_edited_again(
    setup: tuple[Box, FaultProxy, JMAPClient],
) -> None:
    box, proxy, direct = setup
    [folder] = box.calendar_folders()
    (folder / "new.ics").write_text(ics_event("new", "new v1"))
    _lose_the_set_answer(box, proxy)
    (folder / "new.ics").write_text(ics_event("new", "new v2"))
    result = box.sync_ok()
    assert "0 conflict(s)" in result.stdout, result.stdout
    assert server_titles(direct) == Counter(["ev v1", "other", "new v2"])
    assert box.local_summaries() == Counter(["ev v1", "other", "new v2"])
    with StateDB(box.state_db) as db:
        assert db.pending_items() == []


def test_destroy_applied_answer_lost_then_restart(
    setup: tuple[Box, FaultProxy, JMAPClient],
) -> None:
    box, proxy, direct = setup
    [folder] = box.calendar_folders()
    (folder / "other.ics").unlink()
    _lose_the_set_answer(box, proxy)
    box.sync_ok()
    assert server_titles(direct) == Counter(["ev v1"])
    assert box.local_summaries() == Counter(["ev v1"])
    with StateDB(box.state_db) as db:
        assert db.pending_items() == []


def test_update_answer_lost_and_a_real_server_edit_keeps_both(
    setup: tuple[Box, FaultProxy, JMAPClient],
) -> None:
    box, proxy, direct = setup
    [folder] = box.calendar_folders()
    (folder / "ev.ics").write_text(ics_event("ev", "ev v2"))
    _lose_the_set_answer(box, proxy)
    events, _ = direct.get_all_events()
    [ev] = [e for e in events if e.get("uid") == "ev"]
    assert direct.set_events(update={str(ev["id"]): {"title": "ev server edit"}}).ok
    (folder / "ev.ics").write_text(ics_event("ev", "ev v3"))
    box.sync_ok()
    on_server = server_titles(direct)
    assert on_server == box.local_summaries()
    assert on_server["ev v3"] == 1
    assert on_server["ev server edit"] == 1
