"""/api/v1/intelligence (the outcome model registry, retraining) and /api/v1/tasks/{id}/prediction."""

from __future__ import annotations

from dataclasses import asdict

from fastapi import APIRouter

from orchestrion.api.deps import AdminDep, CallerDep, RuntimeDep
from orchestrion.api.schemas import (
    ModelPublic,
    ModelsPublic,
    PredictedPublic,
    PredictionErrorPublic,
    PredictionRecordPublic,
)
from orchestrion.exceptions import NotFoundError
from orchestrion.store.predictions import read_prediction_record

router = APIRouter(prefix="/intelligence", tags=["intelligence"])
task_router = APIRouter(prefix="/tasks", tags=["tasks"])


@router.get("/models", response_model=ModelsPublic)
async def read_models(_caller: CallerDep, runtime: RuntimeDep) -> ModelsPublic:
    """Which model serves predictions, and every trained candidate with its holdout scores."""
    intelligence = runtime.intelligence
    version = intelligence.model_version
    return ModelsPublic(
        serving="learned" if version is not None else "prior",
        serving_version=version,
        training=intelligence.training,
        outcomes_since_training=intelligence.outcomes_since_training,
        retrain_every=runtime.settings.retrain_every,
        training_rows=await intelligence.count_training_rows(),
        min_train_samples=runtime.settings.min_train_samples,
        models=[ModelPublic(**asdict(m)) for m in await intelligence.read_models()],
    )


@router.post("/retrain", response_model=ModelPublic)
async def retrain(_admin: AdminDep, runtime: RuntimeDep) -> ModelPublic:
    """Train a candidate now (admins); 409 with the count needed when history is too short."""
    record = await runtime.intelligence.retrain()
    return ModelPublic(**asdict(record))


@task_router.get("/{task_id}/prediction", response_model=PredictionRecordPublic)
async def read_task_prediction(
    task_id: str, caller: CallerDep, runtime: RuntimeDep
) -> PredictionRecordPublic:
    """What was predicted for a task (and what the prior said), and the errors once it finished."""
    await runtime.coordinator.get(caller, task_id)
    row = await runtime.db.read(lambda conn: read_prediction_record(conn, task_id))
    if row is None:
        raise NotFoundError(f"task {task_id} has no prediction record", details={"task_id": task_id})
    served = PredictedPublic(
        success_probability=row["success_probability"],
        duration_p50_seconds=row["duration_p50_seconds"],
        duration_p90_seconds=row["duration_p90_seconds"],
        cost_usd=row["cost_usd"],
    )
    prior = PredictedPublic(
        success_probability=row["prior_success_probability"],
        duration_p50_seconds=row["prior_duration_p50_seconds"],
        duration_p90_seconds=row["prior_duration_p90_seconds"],
        cost_usd=row["prior_cost_usd"],
    )
    status = row["actual_status"]
    resolved = status is not None and status != "cancelled"
    return PredictionRecordPublic(
        task_id=task_id,
        model=row["model"],
        model_version=row["model_version"],
        served=served,
        prior=prior,
        features=row["features"],
        actual_status=status,
        actual_duration_seconds=row["actual_duration_seconds"],
        actual_cost_usd=row["actual_cost_usd"],
        resolved_at=row["resolved_at"],
        error=_error(served, row) if resolved else None,
        prior_error=_error(prior, row) if resolved else None,
    )


def _error(predicted: PredictedPublic, row: dict[str, object]) -> PredictionErrorPublic:
    succeeded = 1.0 if row["actual_status"] == "succeeded" else 0.0
    duration = row["actual_duration_seconds"]
    cost = row["actual_cost_usd"]
    return PredictionErrorPublic(
        success_squared_error=round((predicted.success_probability - succeeded) ** 2, 6),
        duration_error_seconds=round(abs(predicted.duration_p50_seconds - duration), 3)
        if isinstance(duration, float)
        else None,
        duration_within_p90=duration <= predicted.duration_p90_seconds
        if isinstance(duration, float)
        else None,
        cost_error_usd=round(abs(predicted.cost_usd - (cost if isinstance(cost, float) else 0.0)), 6),
    )
