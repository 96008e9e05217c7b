"""Training, promotion, background retraining and model persistence, on real databases.

Training tests run on SQLite only (one training costs about a second); the registry round trips
run on PostgreSQL too.
"""

from __future__ import annotations

import functools
import logging
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

from orchestrion.domain.tasks import Prediction, TaskStatus
from orchestrion.exceptions import InsufficientDataError
from orchestrion.intelligence.trainer import train
from orchestrion.store.database import WriteTx
from orchestrion.store.predictions import MODELS, PREDICTIONS, TrainingRow
from tests.intelligence.conftest import START, Lab

SERVICE_LOGGER = "orchestrion.intelligence.service"
sqlite_only = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


async def model_rows(lab: Lab) -> list[Any]:
    return await lab.db.read(lambda conn: list(conn.execute(select(MODELS).order_by(MODELS.c.version)).all()))


def set_artefact(data: bytes | None, tx: WriteTx) -> None:
    tx.conn.execute(update(MODELS).values(artefact=data))


async def promoted_lab(make_lab: Any, **settings: Any) -> Lab:
    """A lab whose history hinges on input size, with the model trained on it promoted."""
    lab: Lab = await make_lab(**settings)
    await lab.size_history(160)
    record = await lab.intelligence.retrain()
    assert record.promoted, record.decision
    return lab


async def test_retrain_with_too_little_history_is_refused(make_lab: Any) -> None:
    lab: Lab = await make_lab(min_train_samples=30)
    for _ in range(12):
        await lab.run()
    await lab.submit()  # Unresolved predictions are not training rows.
    with pytest.raises(InsufficientDataError) as caught:
        await lab.intelligence.retrain()
    assert caught.value.needed == 30 and caught.value.have == 12
    assert caught.value.details["missing"] == 18
    assert await model_rows(lab) == []
    assert lab.intelligence.model_version is None


@sqlite_only
async def test_a_model_that_beats_the_prior_is_promoted_and_serves(make_lab: Any) -> None:
    lab = await promoted_lab(make_lab)
    [row] = await model_rows(lab)
    assert row.promoted is True and row.artefact is not None and row.sha256
    assert row.decision.startswith("promoted")
    assert row.sample_count == 120 and row.holdout_count == 40
    candidate, prior = row.metrics["candidate"], row.metrics["prior"]
    assert candidate["n"] == prior["n"] == 40
    assert candidate["brier"] < prior["brier"]
    # The prior's durations ignore input size, the model's do not.
    assert candidate["duration_mae"] < prior["duration_mae"]
    assert lab.intelligence.model_version == row.version
    assert "orchestrion_outcome_model_version 1.0" in lab.metrics.render().decode()

    _, big = await lab.submit(input_bytes=200_000)
    _, small = await lab.submit(input_bytes=200)
    for assessment in (big, small):
        assert assessment.prediction.model == "learned"
        assert assessment.prediction.model_version == row.version
        assert assessment.prior.model == "prior"
    assert big.prediction.success_probability < 0.4
    assert small.prediction.success_probability > big.prediction.success_probability + 0.3
    assert big.prediction.duration_p50_seconds > 3 * small.prediction.duration_p50_seconds
    factors = {f.feature: f for f in big.prediction.risk_factors}
    assert "input_bytes_log" in factors
    size = factors["input_bytes_log"]
    assert size.impact <= -0.2
    assert size.message.startswith("input size is 200.0 kB (typically 200 B)")
    assert any(s.startswith("the inputs (200 kB) are larger than usual") for s in big.prediction.suggestions)
    assert "input_bytes_log" not in {f.feature for f in small.prediction.risk_factors}
    assert big.prediction.confidence == round(120 / 130, 4)


@sqlite_only
async def test_a_learned_prediction_is_stored_with_its_version(make_lab: Any) -> None:
    lab = await promoted_lab(make_lab)
    task = await lab.run(input_bytes=200_000, status=TaskStatus.FAILED)
    row = await lab.db.read(
        lambda conn: conn.execute(select(PREDICTIONS).where(PREDICTIONS.c.task_id == task.id)).one()
    )
    assert row.model == "learned" and row.model_version == lab.intelligence.model_version
    assert row.prior_success_probability != row.success_probability
    assert row.actual_status == "failed"
    text = lab.metrics.render().decode()
    assert 'orchestrion_prediction_squared_error_count{model="learned"} 1.0' in text


@sqlite_only
async def test_a_candidate_trained_on_noise_is_refused(make_lab: Any) -> None:
    lab: Lab = await make_lab()
    # Success 80% whatever the task, durations independent of everything: nothing to learn.
    await lab.size_history(160, seed=5, signal=False)
    record = await lab.intelligence.retrain()
    assert not record.promoted
    assert record.decision.startswith("refused: Brier score ")
    assert "does not beat the prior's" in record.decision
    assert record.metrics["candidate"]["brier"] >= record.metrics["prior"]["brier"]
    [row] = await model_rows(lab)
    assert row.promoted is False and row.artefact is None and row.sha256 is None
    assert row.decision == record.decision
    assert 'orchestrion_outcome_model_trainings_total{result="refused"} 1.0' in lab.metrics.render().decode()
    assert lab.intelligence.model_version is None
    _, assessment = await lab.submit(input_bytes=200_000)
    assert assessment.prediction.model == "prior" and assessment.prediction.model_version is None


def test_a_candidate_without_skill_is_not_promoted() -> None:
    rows = [
        TrainingRow(
            task_id=f"t{i}",
            task_type="code_analysis",
            created_at=START + timedelta(minutes=i),
            # Every task looks the same: there is nothing to learn but the base rate.
            features={"type=code_analysis": 1.0, "input_bytes_log": 5.3},
            succeeded=i % 5 != 0,
            duration_seconds=30.0,
            cost_usd=0.0,
            prior=Prediction(
                success_probability=0.79,
                duration_p50_seconds=30.0,
                duration_p90_seconds=120.0,
                cost_usd=0.0,
                confidence=0.9,
                sample_size=i,
            ),
        )
        for i in range(160)
    ]
    report = train(rows, current=None, holdout_fraction=0.25, min_holdout=15)
    candidate, prior = report.metrics["candidate"], report.metrics["prior"]
    assert abs(candidate["brier"] - prior["brier"]) < 0.001
    assert not report.promote, report.decision


@sqlite_only
async def test_a_new_model_must_beat_the_promoted_one(make_lab: Any) -> None:
    lab = await promoted_lab(make_lab)
    first = lab.intelligence.model_version
    await lab.size_history(60, seed=2)
    second = await lab.intelligence.retrain()
    assert "current" in second.metrics and "candidate_vs_current" in second.metrics
    rows = await model_rows(lab)
    assert [r.version for r in rows] == [first, second.version]
    # Whatever was decided, exactly one model is promoted and only it keeps its artefact.
    assert [r.promoted for r in rows].count(True) == 1
    assert all((r.artefact is not None) == r.promoted for r in rows)
    assert lab.intelligence.model_version == (second.version if second.promoted else first)


async def test_retraining_starts_in_the_background_every_n_outcomes(make_lab: Any) -> None:
    lab: Lab = await make_lab(retrain_every=25, min_train_samples=20)
    tasks = []
    for i in range(24):
        tasks.append(await lab.run(status=TaskStatus.FAILED if i % 4 == 0 else TaskStatus.SUCCEEDED))
    assert lab.intelligence.outcomes_since_training == 24
    assert not lab.intelligence.training
    assert await lab.intelligence.wait_for_training() is None
    # Observing finished tasks again does not count.
    for task in tasks[:5]:
        await lab.intelligence.observe(task.id)
    assert lab.intelligence.outcomes_since_training == 24
    assert await lab.intelligence.wait_for_training() is None
    assert await lab.intelligence.read_models() == []

    await lab.run()
    record = await lab.intelligence.wait_for_training()
    assert record is not None and record.version >= 1
    assert record.sample_count + record.holdout_count == 25
    assert [m.version for m in await lab.intelligence.read_models()] == [record.version]
    assert lab.intelligence.outcomes_since_training == 0
    assert not lab.intelligence.training
    result = "promoted" if record.promoted else "refused"
    assert (
        f'orchestrion_outcome_model_trainings_total{{result="{result}"}} 1.0' in lab.metrics.render().decode()
    )


async def test_background_training_waits_for_enough_history(make_lab: Any) -> None:
    lab: Lab = await make_lab(retrain_every=5, min_train_samples=20)
    for _ in range(5):
        await lab.run()
    # The trigger fired, found too few rows and gave up quietly.
    assert await lab.intelligence.wait_for_training() is None
    assert await lab.intelligence.read_models() == []
    assert lab.intelligence.outcomes_since_training == 0


async def test_retrain_every_zero_never_trains(make_lab: Any) -> None:
    lab: Lab = await make_lab(retrain_every=0, min_train_samples=20)
    for _ in range(25):
        await lab.run()
    assert await lab.intelligence.wait_for_training() is None
    assert await lab.intelligence.read_models() == []
    assert lab.intelligence.outcomes_since_training == 25


async def test_a_restarted_service_serves_the_promoted_model(make_lab: Any) -> None:
    lab = await promoted_lab(make_lab)
    version = lab.intelligence.model_version
    assert version is not None
    restarted = lab.build()
    assert restarted.model_version is None
    await restarted.reload()
    assert restarted.model_version == version
    _, before = await lab.submit(input_bytes=200_000)
    _, after = await lab.submit(input_bytes=200_000, intelligence=restarted)
    assert after.prediction.model == "learned" and after.prediction.model_version == version
    assert after.prediction.success_probability == pytest.approx(
        before.prediction.success_probability, abs=0.05
    )
    models = await restarted.read_models()
    assert [(m.version, m.promoted) for m in models] == [(version, True)]


@sqlite_only
async def test_a_damaged_artefact_falls_back_to_the_prior(
    make_lab: Any, caplog: pytest.LogCaptureFixture
) -> None:
    lab = await promoted_lab(make_lab)
    version = lab.intelligence.model_version
    caplog.set_level(logging.ERROR, logger=SERVICE_LOGGER)
    for artefact, expected in [
        (b"\x80\x05not a pickle at all", "the artefact does not match its SHA-256"),
        (None, "the artefact is missing"),
    ]:
        await lab.db.write(functools.partial(set_artefact, artefact))
        caplog.clear()
        restarted = lab.build()
        _, assessment = await lab.submit(input_bytes=200_000, intelligence=restarted)
        errors = [r for r in caplog.records if r.name == SERVICE_LOGGER and r.levelno == logging.ERROR]
        assert [r.getMessage() for r in errors] == [
            f"outcome model v{version} cannot be loaded ({expected}); predicting with the prior"
        ]
        assert restarted.model_version is None
        assert assessment.prediction.model == "prior" and assessment.prediction.model_version is None
        # It keeps serving, and learning.
        before = restarted.history.type_stats("code_analysis").n
        task = await lab.run(intelligence=restarted, observe=False)
        await restarted.observe(task.id)
        assert restarted.history.type_stats("code_analysis").n == before + 1


@sqlite_only
async def test_a_model_whose_artefact_cannot_be_loaded_can_be_replaced(make_lab: Any) -> None:
    lab = await promoted_lab(make_lab)
    # What a scikit-learn upgrade does to the stored artefact.
    await lab.db.write(lambda tx: tx.conn.execute(update(MODELS).values(library_version="scikit-learn 0.1")))
    restarted = lab.build()
    await restarted.reload()
    assert restarted.model_version is None
    record = await restarted.retrain()
    assert record.promoted, record.decision
    assert restarted.model_version == record.version
