"""The scheduling frontier: plan order, free slots, skips that cascade, progress tallies."""

from __future__ import annotations

from orchestrion.domain.tasks import Step, StepStatus
from orchestrion.engines.frontier import Frontier

PENDING, OK, FAILED, SKIPPED = StepStatus.PENDING, StepStatus.SUCCEEDED, StepStatus.FAILED, StepStatus.SKIPPED


def _plan(items: int) -> list[Step]:
    maps = [Step(id=f"item-{i}", agent_id="m") for i in range(items)]
    reduce = Step(id="reduce", agent_id="r", depends_on=tuple(s.id for s in maps), trigger="all_done")
    return [*maps, reduce]


def test_steps_start_in_plan_order_into_free_slots_only() -> None:
    steps = _plan(5)
    frontier = Frontier(steps, {s.id: PENDING for s in steps})
    ready, skipped = frontier.take(2)
    assert [s.id for s in ready] == ["item-0", "item-1"] and skipped == []
    assert frontier.take(0) == ([], [])
    frontier.set_state("item-1", FAILED)
    assert [s.id for s in frontier.take(1)[0]] == ["item-2"]
    for step_id in ("item-0", "item-2"):
        frontier.set_state(step_id, OK)
    assert [s.id for s in frontier.take(10)[0]] == ["item-3", "item-4"]
    assert not frontier.waiting()
    for step_id in ("item-3", "item-4"):
        frontier.set_state(step_id, OK)
    # The reduce runs whatever its dependencies' outcome (all_done).
    assert [s.id for s in frontier.take(10)[0]] == ["reduce"]
    assert (frontier.done, frontier.total, frontier.tally[OK]) == (5, 6, 4)


def test_a_failed_dependency_skips_its_dependents_transitively() -> None:
    steps = [
        Step(id="a", agent_id="x"),
        Step(id="b", agent_id="x", depends_on=("a",)),
        Step(id="c", agent_id="x", depends_on=("b",)),
        Step(id="report", agent_id="r", depends_on=("a", "b", "c"), trigger="all_done"),
    ]
    frontier = Frontier(steps, {s.id: PENDING for s in steps})
    assert [s.id for s in frontier.take(4)[0]] == ["a"]
    frontier.set_state("a", FAILED)
    ready, skipped = frontier.take(4)
    assert [s.id for s in skipped] == ["b", "c"] and [s.id for s in ready] == ["report"]
    assert frontier.states["c"] is SKIPPED and frontier.tally[SKIPPED] == 2


def test_finished_steps_of_an_earlier_run_are_kept() -> None:
    steps = _plan(3)
    frontier = Frontier(steps, {"item-0": OK, "item-1": FAILED, "item-2": PENDING, "reduce": PENDING})
    assert [s.id for s in frontier.take(5)[0]] == ["item-2"]
    frontier.set_state("item-2", OK)
    assert [s.id for s in frontier.take(5)[0]] == ["reduce"]
    assert frontier.done == 3
