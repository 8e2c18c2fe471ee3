"""The single worker: one job at a time, bursts coalesce, failures do not stop it."""

from __future__ import annotations

import threading
from collections.abc import Callable

from jmapsyncd.daemon.worker import Worker


def _gated(gate: threading.Event, log: list[str], name: str) -> Callable[[], None]:
    """A job that waits for ``gate`` and then records that it ran."""

    def job() -> None:
        gate.wait(5)
        log.append(name)

    return job


def test_jobs_run_one_at_a_time_in_order() -> None:
    worker = Worker()
    gate = threading.Event()
    log: list[str] = []
    running = 0
    overlap = False

    def job(name: str) -> None:
        nonlocal running, overlap
        running += 1
        overlap = overlap or running > 1
        if name == "pull":
            gate.wait(5)
        log.append(name)
        running -= 1

    worker.start()
    assert worker.submit("pull", lambda: job("pull"))
    assert worker.submit("push", lambda: job("push"))
    gate.set()
    assert worker.wait_idle(5)
    assert worker.stop(5)
    assert log == ["pull", "push"]
    assert not overlap


def test_a_burst_of_the_same_kind_coalesces_while_waiting() -> None:
    worker = Worker()
    gate = threading.Event()
    calls: list[str] = []
    worker.start()
    worker.submit("pull", _gated(gate, calls, "pull"))
    accepted = [worker.submit("push", lambda: calls.append("push")) for _ in range(10)]
    gate.set()
    assert worker.wait_idle(5)
    worker.stop(5)
    assert accepted == [True] + [False] * 9
    assert calls == ["pull", "push"]


def test_a_failing_job_does_not_stop_the_worker() -> None:
    worker = Worker()
    done = threading.Event()

    def boom() -> None:
        raise RuntimeError("server said no")

    worker.start()
    worker.submit("pull", boom)
    worker.submit("push", done.set)
    assert done.wait(5)
    worker.stop(5)


def test_stop_drops_the_queue_and_refuses_new_jobs() -> None:
    worker = Worker()
    gate = threading.Event()
    ran: list[str] = []
    worker.start()
    worker.submit("pull", _gated(gate, ran, "pull"))
    worker.submit("push", lambda: ran.append("push"))
    stopper = threading.Thread(target=worker.stop, args=(5,))
    stopper.start()
    gate.set()
    stopper.join(5)
    assert not worker.submit("push", lambda: ran.append("late"))
    assert "late" not in ran
    assert "push" not in ran


def test_idle_callback_runs_between_jobs() -> None:
    pings = threading.Event()
    worker = Worker(on_idle=pings.set, idle_interval=0.05)
    worker.start()
    assert pings.wait(5)
    worker.stop(5)
