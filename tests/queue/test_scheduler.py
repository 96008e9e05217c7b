"""The scheduler's order: priority, then age, with aging against starvation and engine slots."""

from __future__ import annotations

from orchestrion.queue.scheduler import PriorityScheduler


def _drain(scheduler: PriorityScheduler, now: float) -> list[str]:
    order = []
    while (run := scheduler.pop(now)) is not None:
        order.append(run.task_id)
    return order


def test_higher_priority_first_then_oldest_first() -> None:
    scheduler = PriorityScheduler(aging_seconds=0)
    scheduler.push("low-old", priority=2, engine="team", queued_at=100.0)
    scheduler.push("high-new", priority=9, engine="team", queued_at=300.0)
    scheduler.push("high-old", priority=9, engine="team", queued_at=200.0)
    scheduler.push("mid", priority=5, engine="team", queued_at=150.0)
    assert _drain(scheduler, now=400.0) == ["high-old", "high-new", "mid", "low-old"]


def test_same_priority_and_time_keeps_submission_order() -> None:
    scheduler = PriorityScheduler(aging_seconds=0)
    for name in ("a", "b", "c"):
        scheduler.push(name, priority=5, engine="team", queued_at=1.0)
    assert _drain(scheduler, now=2.0) == ["a", "b", "c"]


def test_a_run_waiting_long_enough_overtakes_fresh_urgent_runs() -> None:
    # Priority 1 gains a level per 30 s: after 9 levels (270 s) it ties with priority 10 and, older, wins.
    scheduler = PriorityScheduler(aging_seconds=30.0, max_boost=9)
    scheduler.push("starving", priority=1, engine="team", queued_at=0.0)
    scheduler.push("urgent", priority=10, engine="team", queued_at=269.0)
    assert scheduler.pop(now=269.0).task_id == "urgent"  # type: ignore[union-attr]
    scheduler.push("urgent-2", priority=10, engine="team", queued_at=270.0)
    assert scheduler.pop(now=270.0).task_id == "starving"  # type: ignore[union-attr]


def test_without_aging_a_stream_of_urgent_runs_starves_a_low_one() -> None:
    scheduler = PriorityScheduler(aging_seconds=0)
    scheduler.push("low", priority=1, engine="team", queued_at=0.0)
    taken = []
    for i in range(50):
        scheduler.push(f"urgent-{i}", priority=10, engine="team", queued_at=float(i))
        run = scheduler.pop(now=1000.0 + i)
        assert run is not None
        taken.append(run.task_id)
    assert "low" not in taken

    aged = PriorityScheduler(aging_seconds=10.0)
    aged.push("low", priority=1, engine="team", queued_at=0.0)
    taken = []
    for i in range(50):
        aged.push(f"urgent-{i}", priority=10, engine="team", queued_at=float(10 * i))
        run = aged.pop(now=float(10 * i))
        assert run is not None
        taken.append(run.task_id)
    assert "low" in taken and taken.index("low") <= 10


def test_the_boost_is_capped() -> None:
    scheduler = PriorityScheduler(aging_seconds=1.0, max_boost=3)
    scheduler.push("old-low", priority=1, engine="team", queued_at=0.0)
    scheduler.push("new-mid", priority=5, engine="team", queued_at=999.0)
    assert _drain(scheduler, now=1000.0) == ["new-mid", "old-low"]  # 1 + 3 < 5


def test_runs_of_an_engine_without_a_free_slot_are_skipped_not_lost() -> None:
    scheduler = PriorityScheduler(aging_seconds=0)
    scheduler.push("batch", priority=9, engine="parallel", queued_at=0.0)
    scheduler.push("review", priority=3, engine="team", queued_at=1.0)
    run = scheduler.pop(2.0, lambda engine: engine != "parallel")
    assert run is not None and run.task_id == "review"
    assert scheduler.pop(2.0, lambda engine: engine != "parallel") is None
    assert "batch" in scheduler and scheduler.depth_by_engine() == {"parallel": 1}
    assert scheduler.pop(3.0).task_id == "batch"  # type: ignore[union-attr]


def test_a_run_is_queued_once() -> None:
    scheduler = PriorityScheduler()
    assert scheduler.push("t", priority=5, engine="team", queued_at=0.0)
    assert not scheduler.push("t", priority=9, engine="team", queued_at=1.0)
    assert len(scheduler) == 1 and scheduler.oldest_wait(10.0) == 10.0
