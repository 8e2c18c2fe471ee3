"""Properties of the planner over random scenarios: nothing is lost, both sides converge.

A scenario is a set of items; each may have a stored status and may be absent, unchanged,
touched, edited or new on each side. Contents are modelled by their hash, so "the same content"
on both sides means "the same hash". The plan is carried out on a model of both sides and the
outcome is checked.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from hypothesis import given
from hypothesis import strategies as st

from jmapsyncd.sync.plan import (
    Action,
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
    ServerEntry,
    UploadNew,
    UploadUpdate,
    plan,
)


@dataclass
class Scenario:
    server: dict[str, ServerEntry] = field(default_factory=dict)
    local: dict[str, LocalEntry] = field(default_factory=dict)
    status: dict[str, ItemStatus] = field(default_factory=dict)
    #: contents that exist on one side and were never synced (must survive)
    unsynced: set[str] = field(default_factory=set)


LOCAL_WITH_STATUS = ["absent", "same", "same-unread", "touched", "edited", "edited-to-server"]
SERVER_WITH_STATUS = ["absent", "same", "edited"]
LOCAL_NEW = [
    "absent",
    "new-same-uid",
    "new-same-uid-same-content",
    "new-other-uid",
    "new-user-name",
]


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    sc = Scenario()
    n = draw(st.integers(min_value=0, max_value=8))
    for i in range(n):
        uid, jid, href = f"u{i}", f"E{i}", f"u{i}.ics"
        if draw(st.booleans()):
            base = f"c{i}"
            sc.status[jid] = ItemStatus(jid, href, f"t{i}", base, base, uid)
            srv = draw(st.sampled_from(SERVER_WITH_STATUS))
            loc = draw(st.sampled_from(LOCAL_WITH_STATUS))
            if srv == "same":
                sc.server[jid] = ServerEntry(base, uid)
            elif srv == "edited":
                sc.server[jid] = ServerEntry(f"{base}-server", uid)
                sc.unsynced.add(f"{base}-server")
            if loc == "same":
                sc.local[href] = LocalEntry(f"t{i}", base, uid)
            elif loc == "same-unread":
                sc.local[href] = LocalEntry(f"t{i}", None, uid)
            elif loc == "touched":
                sc.local[href] = LocalEntry(f"t{i}-touched", base, uid)
            elif loc == "edited":
                sc.local[href] = LocalEntry(f"t{i}-edited", f"{base}-local", uid)
                sc.unsynced.add(f"{base}-local")
            elif loc == "edited-to-server":
                sc.local[href] = LocalEntry(f"t{i}-edited", f"{base}-server", uid)
                sc.unsynced.add(f"{base}-server")
        else:
            if draw(st.booleans()):
                sc.server[jid] = ServerEntry(f"n{i}-server", uid)
                sc.unsynced.add(f"n{i}-server")
            loc = draw(st.sampled_from(LOCAL_NEW))
            if loc == "absent":
                continue
            content = f"n{i}-server" if loc == "new-same-uid-same-content" else f"n{i}-local"
            local_uid = f"other{i}" if loc == "new-other-uid" else uid
            local_href = f"user {i}.ics" if loc == "new-user-name" else href
            sc.local[local_href] = LocalEntry(f"t{i}-new", content, local_uid)
            sc.unsynced.add(content)
    return sc


def content_of(sc: Scenario, href: str) -> str:
    entry = sc.local[href]
    if entry.hash is not None:
        return entry.hash
    # "same-unread": the content is what the status recorded
    return next(s.local_hash for s in sc.status.values() if s.href == href)


def carry_out(
    sc: Scenario, actions: list[Action]
) -> tuple[dict[str, str], dict[str, str], set[str]]:
    """Apply the plan to a model; returns (local href->content, server id->content, lost)."""
    local = {href: content_of(sc, href) for href in sc.local}
    server = {jid: e.hash for jid, e in sc.server.items()}
    lost: set[str] = set()
    for a in actions:
        if isinstance(a, DownloadNew):
            assert a.href not in local, "DownloadNew must not overwrite a file"
            local[a.href] = server[a.jmap_id]
        elif isinstance(a, DownloadUpdate):
            local[a.href] = server[a.jmap_id]
        elif isinstance(a, DeleteLocal):
            del local[a.href]
        elif isinstance(a, UploadNew):
            server[f"created:{a.href}"] = local[a.href]
        elif isinstance(a, UploadUpdate):
            server[a.jmap_id] = local[a.href]
        elif isinstance(a, DeleteRemote):
            del server[a.jmap_id]
        elif isinstance(a, Conflict):
            mine, theirs = local[a.href], server[a.jmap_id]
            if a.resolution is ConflictPolicy.KEEP_BOTH:
                local[a.href] = theirs
                local[f"copy of {a.href}"] = mine
                server[f"copy of {a.href}"] = mine
            elif a.resolution is ConflictPolicy.SERVER_WINS:
                local[a.href] = theirs
                lost.add(mine)
            else:
                server[a.jmap_id] = mine
                lost.add(theirs)
        elif isinstance(a, RecordStatus):
            assert local[a.href] == server[a.jmap_id], "RecordStatus on differing content"
        else:
            assert isinstance(a, ForgetStatus)
            assert a.href not in local
            assert a.jmap_id not in server
    return local, server, lost


def touched_keys(a: Action) -> list[str]:
    keys = []
    if not isinstance(a, UploadNew):
        keys.append("id:" + a.jmap_id)
    keys.append("href:" + a.href)
    return keys


@given(scenarios(), st.sampled_from(list(ConflictPolicy)))
def test_plan_never_loses_unsynced_content(sc: Scenario, policy: ConflictPolicy) -> None:
    local, server, lost = carry_out(sc, plan(sc.server, sc.local, sc.status, policy))
    for content in sc.unsynced - lost:
        assert content in local.values(), f"{content} lost locally"
        assert content in server.values(), f"{content} lost on the server"


@given(scenarios())
def test_keep_both_loses_nothing_at_all(sc: Scenario) -> None:
    _, _, lost = carry_out(sc, plan(sc.server, sc.local, sc.status, ConflictPolicy.KEEP_BOTH))
    assert lost == set()


@given(scenarios(), st.sampled_from(list(ConflictPolicy)))
def test_both_sides_converge(sc: Scenario, policy: ConflictPolicy) -> None:
    local, server, _ = carry_out(sc, plan(sc.server, sc.local, sc.status, policy))
    assert Counter(local.values()) == Counter(server.values())


@given(scenarios(), st.sampled_from(list(ConflictPolicy)))
def test_each_item_gets_at_most_one_action(sc: Scenario, policy: ConflictPolicy) -> None:
    actions = plan(sc.server, sc.local, sc.status, policy)
    keys = [k for a in actions for k in touched_keys(a)]
    assert len(keys) == len(set(keys))


@given(scenarios(), st.sampled_from(list(ConflictPolicy)))
def test_a_second_plan_after_recording_is_empty(sc: Scenario, policy: ConflictPolicy) -> None:
    """After carrying out the plan and recording what both sides hold, there is nothing to do."""
    local, server, _ = carry_out(sc, plan(sc.server, sc.local, sc.status, policy))
    # Pair every server object with the local file holding the same content, as the engine's
    # status rows would after the run.
    by_content: dict[str, list[str]] = {}
    for href, content in sorted(local.items()):
        by_content.setdefault(content, []).append(href)
    status = {}
    for jid, content in sorted(server.items()):
        href = by_content[content].pop()
        status[jid] = ItemStatus(jid, href, "t", content, content)
    new_local = {href: LocalEntry("t", c) for href, c in local.items()}
    new_server = {jid: ServerEntry(c) for jid, c in server.items()}
    assert plan(new_server, new_local, status, policy) == []
