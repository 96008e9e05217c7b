"""Predictions before any model exists, and how outcomes resolve them (SQLite and PostgreSQL)."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import select

from orchestrion.domain.tasks import TaskStatus
from orchestrion.intelligence.features import Submission
from orchestrion.store.predictions import PREDICTIONS
from tests.intelligence.conftest import START, Lab, add_team


def histogram_count(lab: Lab, name: str, model: str = "prior") -> float:
    """The `_count` sample of a labelled histogram in the exposition text (0 when absent)."""
    text = lab.metrics.render().decode()
    found = re.search(rf'^{name}_count\{{model="{model}"\}} (\S+)$', text, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


async def prediction_row(lab: Lab, task_id: str) -> Any:
    return await lab.db.read(
        lambda conn: conn.execute(select(PREDICTIONS).where(PREDICTIONS.c.task_id == task_id)).one()
    )


async def test_cold_start_serves_the_prior(make_lab: Any) -> None:
    lab: Lab = await make_lab()
    assessment = await lab.intelligence.assess(Submission(task_type="code_analysis", submitted_at=START))
    prediction = assessment.prediction
    assert assessment.selection.team == ("code_analyzer",)
    assert assessment.selection.strategy == "only_candidates"
    assert prediction.model == "prior" and prediction.model_version is None
    assert prediction.success_probability == 0.8
    # One specialist and the reporter: two steps of 15 s, p90 four times that.
    assert prediction.duration_p50_seconds == 30.0
    assert prediction.duration_p90_seconds == 120.0
    assert prediction.cost_usd == 0.0
    assert prediction.confidence == 0.0 and prediction.sample_size == 0
    assert prediction.risk_factors == () and prediction.suggestions == ()
    assert assessment.prior == prediction
    assert lab.intelligence.model_version is None


async def test_cold_start_duration_scales_with_the_team(make_lab: Any) -> None:
    lab: Lab = await make_lab()
    add_team(lab.registry, "triage", {"a1": ["x"], "a2": ["y"], "a3": ["z"]}, default=["a1", "a2", "a3"])
    assessment = await lab.intelligence.assess(Submission(task_type="triage", submitted_at=START))
    assert len(assessment.selection.team) == 3
    assert assessment.prediction.duration_p50_seconds == 60.0
    assert assessment.prediction.duration_p90_seconds == 240.0


async def test_confidence_and_estimates_follow_the_history_of_the_type(make_lab: Any) -> None:
    lab: Lab = await make_lab()
    for duration in (10.0, 20.0, 30.0, 40.0, 50.0):
        await lab.run(duration=duration, cost=0.02)
    _, assessment = await lab.submit()
    prediction = assessment.prediction
    assert prediction.model == "prior" and prediction.sample_size == 5
    assert prediction.confidence == round(5 / 15, 4)
    # Beta(4, 1) updated with five successes.
    assert prediction.success_probability == 0.9
    assert prediction.duration_p50_seconds == 30.0 and prediction.duration_p90_seconds == 50.0
    assert prediction.cost_usd == 0.02
    for _ in range(5):
        await lab.run(status=TaskStatus.FAILED)
    _, later = await lab.submit()
    assert later.prediction.confidence == 0.5 and later.prediction.sample_size == 10
    assert later.prediction.success_probability == round(9 / 15, 4)
    # Other types are not affected.
    _, other = await lab.submit("code_review")
    assert other.prediction.confidence == 0.0 and other.prediction.success_probability == 0.8


async def test_history_survives_a_restart(make_lab: Any) -> None:
    lab: Lab = await make_lab()
    for _ in range(4):
        await lab.run(status=TaskStatus.FAILED)
    fresh = lab.build()
    _, assessment = await lab.submit(intelligence=fresh)
    assert assessment.prediction.sample_size == 4
    assert assessment.prediction.success_probability == round(4 / 9, 4)


async def test_observe_writes_the_actual_outcome_and_exports_errors(make_lab: Any) -> None:
    lab: Lab = await make_lab()
    assert histogram_count(lab, "orchestrion_prediction_squared_error") == 0
    task = await lab.run(status=TaskStatus.FAILED, duration=42.0, cost=0.125)
    row = await prediction_row(lab, task.id)
    assert row.model == "prior" and row.success_probability == 0.8
    assert row.actual_status == "failed"
    assert row.actual_duration_seconds == 42.0
    assert row.actual_cost_usd == 0.125
    assert row.resolved_at is not None
    assert histogram_count(lab, "orchestrion_prediction_squared_error") == 1
    assert histogram_count(lab, "orchestrion_prediction_duration_error_seconds") == 1
    assert histogram_count(lab, "orchestrion_prediction_cost_error_usd") == 1
    text = lab.metrics.render().decode()
    # A failure predicted at 0.8: squared error 0.64, in the 0.75 bucket but not the 0.5 one.
    assert 'orchestrion_prediction_squared_error_bucket{le="0.5",model="prior"} 0.0' in text
    assert 'orchestrion_prediction_squared_error_bucket{le="0.75",model="prior"} 1.0' in text
    assert re.search(r'^orchestrion_prediction_squared_error_sum\{model="prior"\} 0\.64', text, re.MULTILINE)

    await lab.run()
    assert histogram_count(lab, "orchestrion_prediction_squared_error") == 2
    assert lab.intelligence.outcomes_since_training == 2


async def test_an_outcome_is_counted_once(make_lab: Any) -> None:
    lab: Lab = await make_lab()
    task = await lab.run(status=TaskStatus.FAILED)
    first = await prediction_row(lab, task.id)
    await lab.intelligence.observe(task.id)
    await lab.intelligence.observe(task.id)
    assert histogram_count(lab, "orchestrion_prediction_squared_error") == 1
    assert lab.intelligence.outcomes_since_training == 1
    assert lab.intelligence.history.type_stats("code_analysis").n == 1
    assert (await prediction_row(lab, task.id)).resolved_at == first.resolved_at


async def test_unfinished_and_cancelled_tasks_are_not_outcomes(make_lab: Any) -> None:
    lab: Lab = await make_lab()
    queued, _ = await lab.submit()
    await lab.intelligence.observe(queued.id)
    assert (await prediction_row(lab, queued.id)).resolved_at is None
    await lab.intelligence.observe("no-such-task")

    cancelled = await lab.run(status=TaskStatus.CANCELLED)
    row = await prediction_row(lab, cancelled.id)
    assert row.actual_status == "cancelled"
    assert histogram_count(lab, "orchestrion_prediction_squared_error") == 0
    assert lab.intelligence.outcomes_since_training == 0
    assert lab.intelligence.history.type_stats("code_analysis").n == 0
    assert await lab.intelligence.count_training_rows() == 0


async def test_prior_names_an_agent_that_does_worse_than_its_type(make_lab: Any) -> None:
    lab: Lab = await make_lab()
    add_team(lab.registry, "triage", {"solid": ["x"], "flaky": ["y"]}, default=["solid", "flaky"])
    for _ in range(6):
        await lab.run("triage", agent_ok={"solid": True, "flaky": False}, status=TaskStatus.PARTIAL)
    for _ in range(6):
        await lab.run("triage")
    _, assessment = await lab.submit("triage")
    factors = assessment.prediction.risk_factors
    assert [f.feature for f in factors] == ["agent=flaky"]
    assert factors[0].impact < 0 and "flaky" in factors[0].message
    # No better agent exists for the type, and the suggestion says so.
    assert len(assessment.prediction.suggestions) == 1
    assert assessment.prediction.suggestions[0].startswith("agent flaky fails 50% of its runs on triage")
