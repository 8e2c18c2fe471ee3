"""Property: paging the fake's change log from any past state tells exactly what changed.

Drives :class:`Store` directly (no HTTP) with random writes, batches and page sizes, for every
dialect, and compares the merged ``/changes`` pages (RFC 8620 §5.2) with two snapshots.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.fakeserver.store import CannotCalculateChanges, Store

POOL = ["a", "b", "c", "d", "e"]
Op = tuple[str, int]


def _merge(status: dict[str, str], obj_id: str, kind: str) -> None:
    current = status.get(obj_id)
    if current is None:
        status[obj_id] = kind
    elif current == "created" and kind == "destroyed":
        del status[obj_id]
    elif current == "updated" and kind == "destroyed":
        status[obj_id] = "destroyed"
    elif current == "destroyed" and kind != "destroyed":
        status[obj_id] = "updated"


def _apply(store: Store, ops: list[Op], dialect: str, batch_sizes: list[int]) -> None:
    cal = store.default_calendar_id
    index = 0
    for size in batch_sizes:
        with store.batch():
            for op, slot in ops[index : index + size]:
                alive = list(store.events)
                if op == "create":
                    jscal = {"uid": f"uid-{slot}-{index}"}
                    if dialect != "stalwart":
                        jscal["id"] = POOL[slot]  # Cyrus reuses UID-based ids
                        if POOL[slot] in store.events:
                            continue
                    store.add_event(cal, jscal)
                elif alive:
                    target = alive[slot % len(alive)]
                    if op == "update":
                        store.update_event(target, {"title": f"t{index}"})
                    else:
                        store.destroy_event(target)
        index += size
        if index >= len(ops):
            break


ops_strategy = st.lists(
    st.tuples(st.sampled_from(["create", "update", "destroy"]), st.integers(0, len(POOL) - 1)),
    max_size=25,
)


@settings(max_examples=150, deadline=None)
@given(
    dialect=st.sampled_from(["stalwart", "ietf", "cyrus36"]),
    before=ops_strategy,
    after=ops_strategy,
    batches=st.lists(st.integers(1, 4), min_size=1, max_size=30),
    page=st.integers(1, 4),
)
def test_paged_changes_match_the_snapshots(
    dialect: str, before: list[Op], after: list[Op], batches: list[int], page: int
) -> None:
    store = Store(dialect, "alice", "b" if dialect == "stalwart" else "alice")
    _apply(store, before, dialect, batches)
    since = store.state("CalendarEvent")
    then = {k: dict(v) for k, v in store.events.items()}
    _apply(store, after, dialect, batches)
    now = store.events

    status: dict[str, str] = {}
    state = since
    for _ in range(200):
        result = store.changes("CalendarEvent", state, page)
        assert len(result.created) + len(result.updated) + len(result.destroyed) <= page
        for kind in ("created", "updated", "destroyed"):
            for obj_id in getattr(result, kind):
                _merge(status, obj_id, kind)
        state = result.new_state
        if not result.has_more:
            break
    else:
        raise AssertionError("paging did not end")

    assert state == store.state("CalendarEvent")
    created = {i for i, k in status.items() if k == "created"}
    updated = {i for i, k in status.items() if k == "updated"}
    destroyed = {i for i, k in status.items() if k == "destroyed"}
    assert created == set(now) - set(then)
    assert destroyed == set(then) - set(now)
    assert updated <= set(now) & set(then)
    assert {i for i in set(now) & set(then) if now[i] != then[i]} <= updated


def test_unknown_states_cannot_be_calculated() -> None:
    for dialect, bad in (("stalwart", "szzzzz"), ("ietf", "-1"), ("cyrus36", "01")):
        store = Store(dialect, "alice", "alice")
        try:
            store.changes("CalendarEvent", bad, None)
        except CannotCalculateChanges:
            continue
        raise AssertionError(f"{dialect} accepted {bad!r}")
