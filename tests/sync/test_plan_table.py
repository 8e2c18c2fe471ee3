"""One test per row of the decision table in docs/sync.md (and in the branches of plan())."""

from __future__ import annotations

import subprocess
import sys

import pytest

from jmapsyncd.sync.plan import (
    Conflict,
    ConflictPolicy,
    DeleteLocal,
    DeleteRemote,
    DownloadNew,
    DownloadUpdate,
    ForgetStatus,
    ItemStatus,
    LocalEntry,
    RecordStatus,
    ServerChanges,
    ServerEntry,
    UploadNew,
    UploadUpdate,
    apply_changes,
    plan,
)
from jmapsyncd.vdir.names import href_for_uid

ID = "E1"
HREF = "u1.ics"
SYNCED = ItemStatus(ID, HREF, local_etag="t0", local_hash="h0", server_hash="h0", uid="u1")
SAME_LOCAL = {HREF: LocalEntry("t0", "h0", "u1")}
SAME_SERVER = {ID: ServerEntry("h0", "u1")}
STATUS = {ID: SYNCED}


# -- rows with a stored status ---------------------------------------------------------------


def test_row_in_sync_does_nothing() -> None:
    assert plan(SAME_SERVER, SAME_LOCAL, STATUS) == []


def test_row_in_sync_without_reading_the_file_does_nothing() -> None:
    assert plan(SAME_SERVER, {HREF: LocalEntry("t0")}, STATUS) == []


def test_row_local_touched_records_the_new_etag() -> None:
    local = {HREF: LocalEntry("t1", "h0")}
    assert plan(SAME_SERVER, local, STATUS) == [RecordStatus(ID, HREF, "t1", "h0", "h0")]


def test_row_local_edited_uploads_an_update() -> None:
    local = {HREF: LocalEntry("t1", "h1")}
    assert plan(SAME_SERVER, local, STATUS) == [UploadUpdate(ID, HREF, "t1")]


def test_row_local_new_etag_without_hash_counts_as_edited() -> None:
    local = {HREF: LocalEntry("t1")}
    assert plan(SAME_SERVER, local, STATUS) == [UploadUpdate(ID, HREF, "t1")]


def test_row_server_edited_downloads_an_update() -> None:
    server = {ID: ServerEntry("h2", "u1")}
    assert plan(server, SAME_LOCAL, STATUS) == [DownloadUpdate(ID, HREF, "t0")]


def test_row_both_edited_to_the_same_content_records_status() -> None:
    server = {ID: ServerEntry("h9", "u1")}
    local = {HREF: LocalEntry("t1", "h9")}
    assert plan(server, local, STATUS) == [RecordStatus(ID, HREF, "t1", "h9", "h9")]


@pytest.mark.parametrize("policy", list(ConflictPolicy))
def test_row_both_edited_differently_is_a_conflict_resolved_by_policy(
    policy: ConflictPolicy,
) -> None:
    server = {ID: ServerEntry("h2", "u1")}
    local = {HREF: LocalEntry("t1", "h1")}
    assert plan(server, local, STATUS, policy) == [Conflict(ID, HREF, "t1", policy)]


def test_row_local_deleted_server_unchanged_deletes_remote() -> None:
    assert plan(SAME_SERVER, {}, STATUS) == [DeleteRemote(ID, HREF)]


def test_row_local_deleted_server_edited_downloads_again() -> None:
    server = {ID: ServerEntry("h2", "u1")}
    assert plan(server, {}, STATUS) == [DownloadNew(ID, HREF, replaces_status=True)]


def test_row_server_deleted_local_unchanged_deletes_local() -> None:
    assert plan({}, SAME_LOCAL, STATUS) == [DeleteLocal(ID, HREF, "t0")]


def test_row_server_deleted_local_touched_deletes_local() -> None:
    local = {HREF: LocalEntry("t1", "h0")}
    assert plan({}, local, STATUS) == [DeleteLocal(ID, HREF, "t1")]


def test_row_server_deleted_local_edited_uploads_again() -> None:
    local = {HREF: LocalEntry("t1", "h1")}
    assert plan({}, local, STATUS) == [UploadNew(HREF, "t1", stale_jmap_id=ID)]


def test_row_deleted_on_both_sides_forgets_status() -> None:
    assert plan({}, {}, STATUS) == [ForgetStatus(ID, HREF)]


# -- rows without a stored status --------------------------------------------------------------


def test_row_new_on_server_downloads_to_the_uid_name() -> None:
    assert plan({"E2": ServerEntry("h", "u2")}, {}, {}) == [DownloadNew("E2", "u2.ics")]


def test_row_new_on_server_with_an_unsafe_uid_downloads_to_a_hashed_name() -> None:
    actions = plan({"E2": ServerEntry("h", "../../x")}, {}, {})
    assert actions == [DownloadNew("E2", href_for_uid("../../x"))]
    assert "/" not in href_for_uid("../../x")


def test_row_new_on_server_whose_name_is_taken_downloads_to_a_fallback_name() -> None:
    # u1.ics already belongs to another synced item (its file names a different UID)
    status = {"E0": ItemStatus("E0", "u2.ics", "t0", "h0", "h0", uid="other")}
    local = {"u2.ics": LocalEntry("t0", "h0", "other")}
    server = {"E0": ServerEntry("h0", "other"), "E2": ServerEntry("h2", "u2")}
    [action] = plan(server, local, status)
    assert isinstance(action, DownloadNew)
    assert action.jmap_id == "E2"
    assert action.href not in ("u2.ics",)
    assert action.href.endswith(".ics")


def test_row_new_on_server_without_uid_downloads_to_a_name_from_its_id() -> None:
    [action] = plan({"E2": ServerEntry("h")}, {}, {})
    assert isinstance(action, DownloadNew)
    assert action.href.endswith(".ics")


def test_row_two_new_server_items_with_one_uid_get_two_files() -> None:
    actions = plan({"E2": ServerEntry("a", "dup"), "E3": ServerEntry("b", "dup")}, {}, {})
    hrefs = [a.href for a in actions if isinstance(a, DownloadNew)]
    assert len(hrefs) == 2
    assert len(set(hrefs)) == 2


def test_row_new_locally_uploads() -> None:
    assert plan({}, {"n.ics": LocalEntry("t", "h", "n")}, {}) == [UploadNew("n.ics", "t")]


def test_row_new_on_both_sides_with_the_same_content_links_them() -> None:
    server = {"E2": ServerEntry("h", "u2")}
    local = {"mine.ics": LocalEntry("t", "h", "u2")}
    assert plan(server, local, {}) == [RecordStatus("E2", "mine.ics", "t", "h", "h", False)]


@pytest.mark.parametrize("policy", list(ConflictPolicy))
def test_row_new_on_both_sides_with_different_content_is_a_conflict(
    policy: ConflictPolicy,
) -> None:
    server = {"E2": ServerEntry("hs", "u2")}
    local = {"mine.ics": LocalEntry("t", "hl", "u2")}
    assert plan(server, local, {}, policy) == [
        Conflict("E2", "mine.ics", "t", policy, had_status=False)
    ]


def test_row_new_on_both_sides_matched_by_file_name_when_uid_unread() -> None:
    server = {"E2": ServerEntry("h", "u2")}
    local = {"u2.ics": LocalEntry("t", "h")}
    assert plan(server, local, {}) == [RecordStatus("E2", "u2.ics", "t", "h", "h", False)]


def test_row_new_local_file_with_another_uid_under_the_server_name_is_not_matched() -> None:
    server = {"E2": ServerEntry("h", "u2")}
    local = {"u2.ics": LocalEntry("t", "h", "someone-else")}
    actions = plan(server, local, {})
    assert UploadNew("u2.ics", "t") in actions
    [download] = [a for a in actions if isinstance(a, DownloadNew)]
    assert download.href != "u2.ics"


# -- inputs and properties ---------------------------------------------------------------------


def test_status_may_be_given_as_a_sequence() -> None:
    assert plan(SAME_SERVER, {}, [SYNCED]) == [DeleteRemote(ID, HREF)]


def test_apply_changes_overlays_a_change_set_on_the_status() -> None:
    status = {
        "a": ItemStatus("a", "a.ics", "t", "ha", "ha", "ua"),
        "b": ItemStatus("b", "b.ics", "t", "hb", "hb", "ub"),
        "c": ItemStatus("c", "c.ics", "t", "hc", "hc", "uc"),
    }
    changes = ServerChanges(
        changed={"b": ServerEntry("hb2", "ub"), "d": ServerEntry("hd", "ud")},
        destroyed=frozenset({"c", "never-seen"}),
    )
    assert apply_changes(status, changes) == {
        "a": ServerEntry("ha", "ua"),
        "b": ServerEntry("hb2", "ub"),
        "d": ServerEntry("hd", "ud"),
    }


def test_plan_orders_actions_deterministically() -> None:
    server = {f"E{i}": ServerEntry(f"h{i}", f"u{i}") for i in range(5)}
    local = {f"l{i}.ics": LocalEntry("t", f"x{i}", f"l{i}") for i in range(5)}
    first = plan(server, local, {})
    assert first == plan(dict(reversed(server.items())), dict(reversed(local.items())), {})


def test_the_planner_imports_no_io_libraries() -> None:
    code = (
        "import sys, jmapsyncd.sync.plan\n"
        "io = {'sqlite3', 'sqlite_utils', 'niquests', 'watchdog', 'apscheduler'}\n"
        "bad = io & set(sys.modules)\n"
        "print(sorted(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
