"""API models of the engines: task engine options and GET /api/v1/engines."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class TaskOptions(BaseModel):
    """Engine options of a submission; each applies to the task types named (others refuse it).

    Stored with the task's inputs; docs/engines.md, docs/parallel.md, docs/creative.md and
    docs/recall.md say what each does.
    """

    model_config = ConfigDict(extra="forbid")

    operation: str | None = Field(default=None, max_length=64, description="Batch types: what runs per item.")
    instruction: str | None = Field(
        default=None, max_length=2000, description="parallel_processing: what to do with each item."
    )
    concurrency: int | None = Field(
        default=None, ge=1, le=1024, description="Steps in flight for this task (at most the engine's)."
    )
    candidates: int | None = Field(default=None, ge=1, le=1000, description="Creative types: how many.")
    brief: str | None = Field(default=None, max_length=2000, description="Creative types: the brief.")
    analysis_task_type: str | None = Field(
        default=None, max_length=64, description="innovation: the task type of the analysis stage."
    )
    query: str | None = Field(default=None, max_length=1000, description="Recall types: what to search.")
    k: int | None = Field(default=None, ge=1, le=100, description="Recall types: memories to retrieve.")
    tags: list[str] | None = Field(default=None, max_length=20, description="Recall types: tags to match.")


class EngineRulePublic(BaseModel):
    task_type: str
    primary: str
    fallbacks: list[str]


class EnginePublic(BaseModel):
    name: str
    state: str
    running: int
    queued: int
    max_concurrency: int
    step_concurrency: int
    current_tasks: list[str]
    error: str | None
    primary_for: list[str]
    fallback_for: list[str]
    changed_at: str


class EngineQueuePublic(BaseModel):
    waiting: int
    oldest_wait_seconds: float
    aging_seconds: float


class EngineHealthPublic(BaseModel):
    status: str
    reasons: list[str]


class EnginesPublic(BaseModel):
    engines: list[EnginePublic]
    rules: list[EngineRulePublic]
    queue: EngineQueuePublic
    health: EngineHealthPublic
