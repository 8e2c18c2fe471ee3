"""A full listing hands its pages to the engine as they arrive; the engine hashes each object and
converts the ones new to it while the server prepares the next page, and never converts twice.

Costs counted, not timed: conversions per object, and which objects were converted ahead.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import jmapsyncd.sync.engine as engine_module
from jmapsyncd.convert import jscal_to_ical
from jmapsyncd.protocol import flows
from tests.sync.test_engine_support import fake_world, jscal_event


def _count_conversions(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    converted: list[str] = []
    real = jscal_to_ical

    def counting(obj: Any) -> str:
        converted.append(obj["uid"])
        return real(obj)

    monkeypatch.setattr(engine_module, "jscal_to_ical", counting)
    return converted


def test_an_initial_sync_converts_each_event_once_while_listing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(flows, "STREAM_PAGE", 4)
    with fake_world(tmp_path) as (srv, w):
        cal = srv.store.default_calendar_id
        for i in range(10):
            srv.store.add_event(cal, jscal_event(f"ahead-{i}", f"Event {i}"))
        converted = _count_conversions(monkeypatch)
        listed: list[int] = []
        real_list_all = engine_module.SyncEngine._list_all

        def spying(self: Any, kind: Any, collections: Any) -> Any:
            result = real_list_all(self, kind, collections)
            # converted while listing, before any plan or download
            listed.append(len(converted))
            return result

        monkeypatch.setattr(engine_module.SyncEngine, "_list_all", spying)
        report = w.sync_clean()
        assert report.downloaded == 10
        assert listed == [10]
        assert sorted(converted) == sorted(f"ahead-{i}" for i in range(10))
        for i in range(10):
            assert f"SUMMARY:Event {i}" in (w.folder(cal) / f"ahead-{i}.ics").read_text()


def test_a_relisting_converts_only_what_it_downloads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with fake_world(tmp_path) as (srv, w):
        cal = srv.store.default_calendar_id
        for i in range(5):
            srv.store.add_event(cal, jscal_event(f"known-{i}", f"Known {i}"))
        w.sync_clean()
        srv.store.add_event(cal, jscal_event("newcomer", "New"))
        srv.store.update_event(
            next(j for j, e in srv.store.events.items() if e["uid"] == "known-2"),
            {"title": "Known 2 edited"},
        )
        srv.force_cannot_calculate = "CalendarEvent"
        converted = _count_conversions(monkeypatch)
        report = w.sync_clean()
        assert report.full
        assert report.downloaded == 2
        # The newcomer ahead of the plan, the edited one when downloaded; the rest never.
        assert sorted(converted) == ["known-2", "newcomer"]
        assert "SUMMARY:Known 2 edited" in (w.folder(cal) / "known-2.ics").read_text()


def test_an_unconvertible_event_listed_ahead_is_reported_like_any_other(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with fake_world(tmp_path) as (srv, w):
        cal = srv.store.default_calendar_id
        srv.store.add_event(cal, jscal_event("fine", "Fine"))
        srv.store.add_event(cal, {**jscal_event("broken", "Broken"), "start": "not a time"})
        report = w.sync()
        assert report.downloaded == 1
        [error] = report.errors
        assert "broken" in error or "not a time" in error
        assert (w.folder(cal) / "fine.ics").exists()
        assert not (w.folder(cal) / "broken.ics").exists()
