"""/api/v1/intelligence: the outcome model registry and on-demand retraining."""

from __future__ import annotations

from dataclasses import asdict

from fastapi import APIRouter

from orchestrion.api.deps import AdminDep, CallerDep, RuntimeDep
from orchestrion.api.schemas import ModelPublic, ModelsPublic

router = APIRouter(prefix="/intelligence", tags=["intelligence"])


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
