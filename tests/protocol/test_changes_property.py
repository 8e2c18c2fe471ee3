"""Property: however a server pages its change log (RFC 8620 §5.2), the collapsed ChangeSet
says exactly what changed between the two states."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from jmapsyncd.protocol import flows
from jmapsyncd.protocol.flows import EVENT
from tests.protocol.scripted import jmap, run, state_for

IDS = ["a", "b", "c", "d"]


@st.composite
def histories(draw: st.DrawFn) -> tuple[set[str], list[tuple[str, str]], list[int]]:
    """Ids existing at the start, a valid sequence of (op, id), and page sizes."""
    existing = set(draw(st.lists(st.sampled_from(IDS), unique=True)))
    alive = set(existing)
    ops: list[tuple[str, str]] = []
    for _ in range(draw(st.integers(0, 12))):
        oid = draw(st.sampled_from(IDS))
        if oid in alive:
            op = draw(st.sampled_from(["updated", "destroyed"]))
            if op == "destroyed":
                alive.discard(oid)
        else:
            op = "created"  # ids may come back after being destroyed (Cyrus 3.6: id = UID)
            alive.add(oid)
        ops.append((op, oid))
    sizes = draw(st.lists(st.integers(1, 4), min_size=len(ops), max_size=len(ops)))
    return existing, ops, sizes


@settings(max_examples=300, deadline=None)
@given(histories())
def test_collapsed_changes_match_the_truth(
    history: tuple[set[str], list[tuple[str, str]], list[int]],
) -> None:
    existing, ops, sizes = history
    pages: list[list[tuple[str, str]]] = []
    rest = list(ops)
    for size in sizes:
        if not rest:
            break
        pages.append(rest[:size])
        rest = rest[size:]
    pages = pages or [[]]

    # What a correct server lists per page: each id once, by its existence before and after.
    answers: list[dict[str, Any]] = []
    alive = set(existing)
    for index, page in enumerate(pages):
        before = set(alive)
        for op, oid in page:
            if op == "destroyed":
                alive.discard(oid)
            else:
                alive.add(oid)
        touched_here = {oid for _, oid in page}
        answers.append(
            {
                "created": sorted(i for i in touched_here if i in alive and i not in before),
                "updated": sorted(i for i in touched_here if i in alive and i in before),
                "destroyed": sorted(i for i in touched_here if i in before and i not in alive),
                "newState": str(index + 1),
                "hasMoreChanges": index < len(pages) - 1,
            }
        )

    def handler(name: str, args: dict[str, Any]) -> dict[str, Any]:
        return answers[int(args["sinceState"])]

    result, _ = run(flows.changes(state_for(), EVENT, "0"), jmap(handler))

    touched = {oid for _, oid in ops}
    assert set(result.created) == {i for i in touched if i in alive and i not in existing}
    assert set(result.destroyed) == {i for i in touched if i in existing and i not in alive}
    assert set(result.updated) == {i for i in touched if i in existing and i in alive}
    assert result.new_state == str(len(pages))
