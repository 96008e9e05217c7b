"""Prediction history, outcomes for learning, and the outcome model registry."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Connection, Table, case, func, insert, select, update

from orchestrion.domain.intelligence import AgentOutcome, ModelRecord, Outcome
from orchestrion.domain.tasks import Prediction, StepStatus, TaskStatus
from orchestrion.store.database import WriteTx
from orchestrion.store.models import (
    AgentRunRow,
    LLMCallRow,
    OutcomeModelRow,
    ResultRow,
    StepRow,
    TaskPredictionRow,
    TaskRow,
)

PREDICTIONS = cast(Table, TaskPredictionRow.__table__)
MODELS = cast(Table, OutcomeModelRow.__table__)
TASKS = cast(Table, TaskRow.__table__)
RUNS = cast(Table, AgentRunRow.__table__)
RESULTS = cast(Table, ResultRow.__table__)
LEDGER = cast(Table, LLMCallRow.__table__)
STEPS = cast(Table, StepRow.__table__)

_FINISHED = [s.value for s in (TaskStatus.SUCCEEDED, TaskStatus.PARTIAL, TaskStatus.FAILED)]


@dataclass(frozen=True, kw_only=True)
class TrainingRow:
    """One resolved prediction: the features at submission and what happened."""

    task_id: str
    task_type: str
    created_at: datetime
    features: dict[str, float]
    succeeded: bool
    duration_seconds: float
    cost_usd: float
    prior: Prediction


def insert_prediction(
    tx: WriteTx,
    *,
    task_id: str,
    task_type: str,
    created_at: datetime,
    team: Sequence[str],
    features: Mapping[str, float],
    served: Prediction,
    prior: Prediction,
) -> None:
    """Record what was predicted for a new task, in the task's own transaction."""
    tx.conn.execute(
        insert(PREDICTIONS).values(
            task_id=task_id,
            task_type=task_type,
            created_at=created_at,
            team=list(team),
            features=dict(features),
            model=served.model,
            model_version=served.model_version,
            success_probability=served.success_probability,
            duration_p50_seconds=served.duration_p50_seconds,
            duration_p90_seconds=served.duration_p90_seconds,
            cost_usd=served.cost_usd,
            prior_success_probability=prior.success_probability,
            prior_duration_p50_seconds=prior.duration_p50_seconds,
            prior_duration_p90_seconds=prior.duration_p90_seconds,
            prior_cost_usd=prior.cost_usd,
        )
    )


def resolve_prediction(
    tx: WriteTx, outcome: Outcome, *, at: datetime
) -> tuple[float, float, float, str] | None:
    """Store a task's actual outcome; returns (success, duration p50, cost) predicted and the model.

    None when the task has no prediction row or was already resolved (a resumed task finishes once).
    """
    row = tx.conn.execute(
        select(
            PREDICTIONS.c.success_probability,
            PREDICTIONS.c.duration_p50_seconds,
            PREDICTIONS.c.cost_usd,
            PREDICTIONS.c.model,
        ).where(PREDICTIONS.c.task_id == outcome.task_id, PREDICTIONS.c.resolved_at.is_(None))
    ).first()
    if row is None:
        return None
    tx.conn.execute(
        update(PREDICTIONS)
        .where(PREDICTIONS.c.task_id == outcome.task_id)
        .values(
            actual_status=outcome.status,
            actual_duration_seconds=outcome.duration_seconds,
            actual_cost_usd=outcome.cost_usd,
            resolved_at=at,
        )
    )
    return float(row[0]), float(row[1]), float(row[2]), str(row[3])


def read_prediction_record(conn: Connection, task_id: str) -> dict[str, Any] | None:
    """A task's prediction row: served and prior predictions, features, and the outcome once known."""
    row = conn.execute(select(PREDICTIONS).where(PREDICTIONS.c.task_id == task_id)).first()
    return dict(row._mapping) if row is not None else None


def read_outcome(conn: Connection, task_id: str) -> Outcome | None:
    """A finished task as an outcome (None while it is not finished)."""
    task = conn.execute(
        select(TASKS.c.task_type, TASKS.c.status, TASKS.c.started_at, TASKS.c.finished_at).where(
            TASKS.c.id == task_id
        )
    ).first()
    if task is None or task.finished_at is None:
        return None
    outcomes = _outcomes(conn, [(task_id, task.task_type, task.status, task.started_at, task.finished_at)])
    return outcomes[0]


def read_history(conn: Connection, *, limit: int) -> list[Outcome]:
    """The latest `limit` finished (not cancelled) tasks as outcomes, oldest first."""
    rows = conn.execute(
        select(TASKS.c.id, TASKS.c.task_type, TASKS.c.status, TASKS.c.started_at, TASKS.c.finished_at)
        .where(TASKS.c.status.in_(_FINISHED), TASKS.c.finished_at.is_not(None))
        .order_by(TASKS.c.finished_at.desc(), TASKS.c.id)
        .limit(limit)
    ).all()
    outcomes: list[Outcome] = []
    # Chunks keep the IN lists well under every backend's bound-parameter limit.
    for start in range(0, len(rows), 500):
        outcomes.extend(_outcomes(conn, [tuple(r) for r in rows[start : start + 500]]))
    outcomes.sort(key=lambda o: o.finished_at)
    return outcomes


def _outcomes(conn: Connection, tasks: Sequence[tuple[Any, ...]]) -> list[Outcome]:
    ids = [t[0] for t in tasks]
    runs: dict[str, list[AgentOutcome]] = {}
    for task_id, agent_id, status, duration in conn.execute(
        select(RUNS.c.task_id, RUNS.c.agent_id, RUNS.c.status, RUNS.c.duration_seconds).where(
            RUNS.c.task_id.in_(ids)
        )
    ):
        runs.setdefault(task_id, []).append(
            AgentOutcome(
                agent_id=agent_id,
                succeeded=status == StepStatus.SUCCEEDED.value,
                duration_seconds=float(duration or 0.0),
            )
        )
    quality = {
        task_id: q.get("overall")
        for task_id, q in conn.execute(
            select(RESULTS.c.task_id, RESULTS.c.quality).where(RESULTS.c.task_id.in_(ids))
        )
    }
    costs = {
        task_id: float(cost)
        for task_id, cost in conn.execute(
            select(LEDGER.c.task_id, func.sum(LEDGER.c.cost_usd))
            .where(LEDGER.c.task_id.in_(ids))
            .group_by(LEDGER.c.task_id)
        )
    }
    out = []
    for task_id, task_type, status, started, finished in tasks:
        out.append(
            Outcome(
                task_id=task_id,
                task_type=task_type,
                status=status,
                succeeded=status == TaskStatus.SUCCEEDED.value,
                duration_seconds=(finished - started).total_seconds() if started and finished else None,
                cost_usd=costs.get(task_id, 0.0),
                quality=float(quality[task_id]) if quality.get(task_id) is not None else None,
                finished_at=finished,
                agents=tuple(runs.get(task_id, ())),
            )
        )
    return out


def read_route_error_rates(conn: Connection, *, since: datetime, until: datetime) -> dict[str, float]:
    """Per route, the share of failed attempts among its LLM calls made in [since, until]."""
    failed = func.sum(case((LEDGER.c.outcome != "ok", 1), else_=0))
    query = (
        select(LEDGER.c.route, func.count(), failed)
        .where(LEDGER.c.route.is_not(None), LEDGER.c.created_at >= since, LEDGER.c.created_at <= until)
        .group_by(LEDGER.c.route)
    )
    return {route: float(bad or 0) / float(total) for route, total, bad in conn.execute(query) if total}


def read_agent_loads(conn: Connection) -> dict[str, int]:
    """Running steps per agent, across every worker."""
    query = (
        select(STEPS.c.agent_id, func.count())
        .where(STEPS.c.status == StepStatus.RUNNING.value)
        .group_by(STEPS.c.agent_id)
    )
    return {agent: int(n) for agent, n in conn.execute(query)}


def count_training_rows(conn: Connection) -> int:
    """Resolved predictions usable for training."""
    query = select(func.count()).where(
        PREDICTIONS.c.resolved_at.is_not(None), PREDICTIONS.c.actual_status.in_(_FINISHED)
    )
    return int(conn.execute(query).scalar_one())


def read_training_rows(conn: Connection, *, limit: int) -> list[TrainingRow]:
    """The latest `limit` resolved predictions, oldest first (the time order holdouts rely on)."""
    query = (
        select(PREDICTIONS)
        .where(PREDICTIONS.c.resolved_at.is_not(None), PREDICTIONS.c.actual_status.in_(_FINISHED))
        .order_by(PREDICTIONS.c.created_at.desc(), PREDICTIONS.c.task_id)
        .limit(limit)
    )
    rows = []
    for r in conn.execute(query):
        prior = Prediction(
            success_probability=r.prior_success_probability,
            duration_p50_seconds=r.prior_duration_p50_seconds,
            duration_p90_seconds=r.prior_duration_p90_seconds,
            cost_usd=r.prior_cost_usd,
            confidence=0.0,
            sample_size=0,
        )
        rows.append(
            TrainingRow(
                task_id=r.task_id,
                task_type=r.task_type,
                created_at=r.created_at,
                features={k: float(v) for k, v in r.features.items()},
                succeeded=r.actual_status == TaskStatus.SUCCEEDED.value,
                duration_seconds=float(r.actual_duration_seconds or 0.0),
                cost_usd=float(r.actual_cost_usd or 0.0),
                prior=prior,
            )
        )
    rows.reverse()
    return rows


def insert_model(
    tx: WriteTx,
    record: ModelRecord,
    *,
    artefact: bytes | None,
    sha256: str | None,
    library_version: str,
) -> int:
    """Add a trained model to the registry (not promoted); returns its version."""
    result = tx.conn.execute(
        insert(MODELS).values(
            trained_at=record.trained_at,
            sample_count=record.sample_count,
            holdout_count=record.holdout_count,
            metrics=record.metrics,
            promoted=False,
            decision=record.decision,
            training_seconds=record.training_seconds,
            library_version=library_version,
            sha256=sha256,
            artefact=artefact,
        )
    )
    key = result.inserted_primary_key
    assert key is not None
    return int(key[0])


def promote_model(tx: WriteTx, version: int, *, expected_current: int | None) -> bool:
    """Make `version` the promoted model, unless another was promoted since `expected_current`."""
    if read_promoted_version(tx.conn) != expected_current:
        return False
    # Only the promoted model keeps its artefact: the registry keeps every record, not every pickle.
    tx.conn.execute(update(MODELS).where(MODELS.c.version != version).values(promoted=False, artefact=None))
    tx.conn.execute(update(MODELS).where(MODELS.c.version == version).values(promoted=True))
    return True


def read_promoted_version(conn: Connection) -> int | None:
    """The promoted model's version, if any."""
    value = conn.execute(select(MODELS.c.version).where(MODELS.c.promoted.is_(True))).scalar()
    return int(value) if value is not None else None


def read_promoted(conn: Connection) -> tuple[ModelRecord, bytes | None, str | None, str] | None:
    """The promoted model's record, artefact bytes, their SHA-256 and the library version."""
    row = conn.execute(select(MODELS).where(MODELS.c.promoted.is_(True))).first()
    if row is None:
        return None
    return _record(row), row.artefact, row.sha256, row.library_version


def read_models(conn: Connection, *, limit: int = 100) -> list[ModelRecord]:
    """The registry, newest first."""
    columns = [c for c in MODELS.c if c.name != "artefact"]
    query = select(*columns).order_by(MODELS.c.version.desc()).limit(limit)
    return [_record(row) for row in conn.execute(query)]


def _record(row: Any) -> ModelRecord:
    return ModelRecord(
        version=row.version,
        trained_at=row.trained_at,
        sample_count=row.sample_count,
        holdout_count=row.holdout_count,
        metrics=dict(row.metrics),
        promoted=bool(row.promoted),
        decision=row.decision,
        training_seconds=row.training_seconds,
    )
