"""The in-memory twin behaves like the vdir on disk under any sequence of operations.

A Hypothesis state machine applies the same random operations to both stores (with current or
stale etags) and checks that they succeed or refuse alike and hold the same items.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from jmapsyncd.errors import PreconditionFailed, StoreError
from jmapsyncd.vdir import Collection, Item, MemoryStore, Vdir, href_for_uid

UIDS = st.sampled_from(["a", "b", "c@x", "../evil", "sp ace"])
SUMMARIES = st.text(alphabet="xyz é", max_size=5)


def ics(uid: str, summary: str) -> Item:
    return Item(f"BEGIN:VEVENT\r\nUID:{uid}\r\nSUMMARY:{summary}\r\nEND:VEVENT\r\n")


def outcome(coll: Collection, op: str, *args: object) -> tuple[str, object]:
    try:
        result = getattr(coll, op)(*args)
    except PreconditionFailed:
        return ("precondition", None)
    except StoreError:
        return ("store-error", None)
    return ("ok", result)


class Twins(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self._tmp = tempfile.TemporaryDirectory()
        self.disk: Collection = Vdir(Path(self._tmp.name)).create_collection("c")
        self.memory: Collection = MemoryStore().create_collection("c")
        # href -> etag as each store last told us; old etags are kept to try stale ones
        self.etags: dict[str, tuple[str, str]] = {}
        self.stale: dict[str, tuple[str, str]] = {}
        self.texts: dict[str, str] = {}

    def teardown(self) -> None:
        self._tmp.cleanup()

    @rule(uid=UIDS, summary=SUMMARIES)
    def upload(self, uid: str, summary: str) -> None:
        item = ics(uid, summary)
        disk = outcome(self.disk, "upload", item)
        memory = outcome(self.memory, "upload", item)
        assert disk[0] == memory[0]
        if disk[0] == "ok":
            assert isinstance(disk[1], tuple)
            assert isinstance(memory[1], tuple)
            href, etag_d = disk[1]
            href_m, etag_m = memory[1]
            assert href == href_m
            self.etags[href] = (str(etag_d), str(etag_m))
            self.texts[str(href)] = item.text

    @rule(uid=UIDS, summary=SUMMARIES, stale=st.booleans())
    def update(self, uid: str, summary: str, stale: bool) -> None:
        href = self._href(uid)
        etag_d, etag_m = (self.stale if stale else self.etags).get(href, ("none", "none"))
        item = ics(uid, summary)
        disk = outcome(self.disk, "update", href, item, etag_d)
        memory = outcome(self.memory, "update", href, item, etag_m)
        assert disk[0] == memory[0]
        if disk[0] == "ok":
            self.stale[href] = self.etags[href]
            self.etags[href] = (str(disk[1]), str(memory[1]))
            self.texts[href] = item.text

    @rule(uid=UIDS, stale=st.booleans())
    def delete(self, uid: str, stale: bool) -> None:
        href = self._href(uid)
        etag_d, etag_m = (self.stale if stale else self.etags).get(href, ("none", "none"))
        disk = outcome(self.disk, "delete", href, etag_d)
        memory = outcome(self.memory, "delete", href, etag_m)
        assert disk[0] == memory[0]
        if disk[0] == "ok":
            self.stale[href] = self.etags.pop(href)
            del self.texts[href]

    def _href(self, uid: str) -> str:
        return href_for_uid(uid)

    @invariant()
    def same_items(self) -> None:
        disk = dict(self.disk.list())
        memory = dict(self.memory.list())
        assert set(disk) == set(memory) == set(self.texts)
        for href, text in self.texts.items():
            assert self.disk.get(href) == (Item(text), disk[href])
            assert self.memory.get(href) == (Item(text), memory[href])


TestTwins = Twins.TestCase
TestTwins.settings = settings(max_examples=40, stateful_step_count=25, deadline=None)
