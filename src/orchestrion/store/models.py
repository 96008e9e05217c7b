"""ORM classes. They stay inside `store/`: repositories convert them to domain values."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite stores them naive, in UTC)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store; use orchestrion.domain.utcnow()")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    """Declarative base of every table."""

    type_annotation_map = {datetime: UTCDateTime, dict[str, Any]: JSON, list[Any]: JSON}


class UserRow(Base):
    __tablename__ = "users"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    password_hash: Mapped[str | None] = mapped_column(String(255))
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime]


class ApiKeyRow(Base):
    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    prefix: Mapped[str] = mapped_column(String(16), index=True)
    key_hash: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(64), default="default")
    created_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]


class TaskRow(Base):
    __tablename__ = "tasks"
    __table_args__ = (
        Index("ix_tasks_owner_created", "owner_id", "created_at", "id"),
        Index("ix_tasks_created", "created_at", "id"),
        Index("ix_tasks_status", "status"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    owner_id: Mapped[str] = mapped_column(ForeignKey("users.id"))
    title: Mapped[str] = mapped_column(String(200))
    task_type: Mapped[str] = mapped_column(String(64))
    target: Mapped[str | None] = mapped_column(String(2048))
    inputs: Mapped[dict[str, Any]] = mapped_column(JSON, deferred=True)
    priority: Mapped[int] = mapped_column(Integer, default=5)
    agents: Mapped[list[Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(24))
    budget: Mapped[dict[str, Any]] = mapped_column(JSON)
    deadline_seconds: Mapped[float | None] = mapped_column(Float)
    allow_active_scanning: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    engine: Mapped[str] = mapped_column(String(32), default="team", server_default="team")
    plan: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    prediction: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    error: Mapped[str | None] = mapped_column(Text)
    attempt: Mapped[int] = mapped_column(Integer, default=0)
    event_seq: Mapped[int] = mapped_column(Integer, default=0)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_expires_at: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[datetime]
    queued_at: Mapped[datetime | None]
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]


class StepRow(Base):
    __tablename__ = "steps"
    __table_args__ = (Index("ix_steps_status", "status"),)

    task_id: Mapped[str] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"), primary_key=True)
    step_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    position: Mapped[int] = mapped_column(Integer)
    agent_id: Mapped[str] = mapped_column(String(64))
    depends_on: Mapped[list[Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]


class AgentRunRow(Base):
    __tablename__ = "agent_runs"
    __table_args__ = (
        UniqueConstraint("task_id", "step_id", name="uq_agent_runs_task_step"),
        Index("ix_agent_runs_agent_created", "agent_id", "created_at"),
    )

    # "<task_id>/<step_id>": known before the insert, so children need no RETURNING round trip.
    id: Mapped[str] = mapped_column(String(110), primary_key=True)
    task_id: Mapped[str] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"), index=True)
    step_id: Mapped[str] = mapped_column(String(64))
    agent_id: Mapped[str] = mapped_column(String(64), index=True)
    status: Mapped[str] = mapped_column(String(16))
    summary: Mapped[str] = mapped_column(Text, default="")
    provider: Mapped[str | None] = mapped_column(String(64))
    model: Mapped[str | None] = mapped_column(String(128))
    tokens_in: Mapped[int] = mapped_column(Integer, default=0)
    tokens_out: Mapped[int] = mapped_column(Integer, default=0)
    cost_usd: Mapped[float] = mapped_column(Float, default=0.0)
    duration_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    attempts: Mapped[int] = mapped_column(Integer, default=1)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]


class ToolCallRow(Base):
    __tablename__ = "tool_calls"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("agent_runs.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    tool: Mapped[str] = mapped_column(String(64))
    arguments: Mapped[dict[str, Any]] = mapped_column(JSON)
    result_digest: Mapped[str] = mapped_column(String(64))
    duration_seconds: Mapped[float] = mapped_column(Float)
    evidence_ids: Mapped[list[Any]] = mapped_column(JSON)
    error: Mapped[str | None] = mapped_column(Text)


class EvidenceRow(Base):
    __tablename__ = "evidence"

    task_id: Mapped[str] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"), primary_key=True)
    evidence_id: Mapped[str] = mapped_column(String(160), primary_key=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("agent_runs.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    tool: Mapped[str] = mapped_column(String(64))
    summary: Mapped[str] = mapped_column(Text)
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    location: Mapped[str | None] = mapped_column(String(1024))


class FindingRow(Base):
    __tablename__ = "findings"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("agent_runs.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    agent_id: Mapped[str] = mapped_column(String(64))
    title: Mapped[str] = mapped_column(String(500))
    severity: Mapped[str] = mapped_column(String(16))
    description: Mapped[str] = mapped_column(Text, default="")
    recommendation: Mapped[str] = mapped_column(Text, default="")
    evidence_ids: Mapped[list[Any]] = mapped_column(JSON)
    grounded: Mapped[bool] = mapped_column(Boolean, default=False)


class ResultRow(Base):
    __tablename__ = "results"

    task_id: Mapped[str] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"), primary_key=True)
    summary: Mapped[str] = mapped_column(Text)
    findings: Mapped[list[Any]] = mapped_column(JSON)
    remediation: Mapped[list[Any]] = mapped_column(JSON)
    quality: Mapped[dict[str, Any]] = mapped_column(JSON)
    stats: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime]


class EventRow(Base):
    __tablename__ = "events"
    __table_args__ = (UniqueConstraint("task_id", "seq", name="uq_events_task_seq"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    task_id: Mapped[str] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(Integer)
    type: Mapped[str] = mapped_column(String(32))
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime]


class LLMCallRow(Base):
    """One attempt at one deployment: the accounting ledger (kept when its task is deleted)."""

    __tablename__ = "llm_calls"
    __table_args__ = (
        Index("ix_llm_calls_deployment_created", "deployment", "created_at"),
        Index("ix_llm_calls_task", "task_id"),
        Index("ix_llm_calls_created", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    created_at: Mapped[datetime]
    task_id: Mapped[str | None] = mapped_column(String(36))
    step_id: Mapped[str | None] = mapped_column(String(64))
    route: Mapped[str | None] = mapped_column(String(64))
    deployment: Mapped[str] = mapped_column(String(200))
    provider: Mapped[str] = mapped_column(String(64))
    model: Mapped[str] = mapped_column(String(200))
    position: Mapped[int] = mapped_column(Integer, default=0)
    attempt: Mapped[int] = mapped_column(Integer, default=1)
    latency_seconds: Mapped[float] = mapped_column(Float)
    input_tokens: Mapped[int] = mapped_column(Integer, default=0)
    output_tokens: Mapped[int] = mapped_column(Integer, default=0)
    cost_usd: Mapped[float] = mapped_column(Float, default=0.0)
    outcome: Mapped[str] = mapped_column(String(16))
    error_kind: Mapped[str | None] = mapped_column(String(32))
    status_code: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(String(300))


class TaskPredictionRow(Base):
    """What was predicted for a task at submission, from which features, and what happened.

    Kept when the task is deleted: it is the training history of the outcome models (it holds no
    inputs, titles or owners).
    """

    __tablename__ = "task_predictions"
    __table_args__ = (Index("ix_task_predictions_created", "created_at"),)

    task_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    task_type: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]
    team: Mapped[list[Any]] = mapped_column(JSON)
    features: Mapped[dict[str, Any]] = mapped_column(JSON)
    model: Mapped[str] = mapped_column(String(32))
    model_version: Mapped[int | None] = mapped_column(Integer)
    success_probability: Mapped[float] = mapped_column(Float)
    duration_p50_seconds: Mapped[float] = mapped_column(Float)
    duration_p90_seconds: Mapped[float] = mapped_column(Float)
    cost_usd: Mapped[float] = mapped_column(Float)
    prior_success_probability: Mapped[float] = mapped_column(Float)
    prior_duration_p50_seconds: Mapped[float] = mapped_column(Float)
    prior_duration_p90_seconds: Mapped[float] = mapped_column(Float)
    prior_cost_usd: Mapped[float] = mapped_column(Float)
    actual_status: Mapped[str | None] = mapped_column(String(24))
    actual_duration_seconds: Mapped[float | None] = mapped_column(Float)
    actual_cost_usd: Mapped[float | None] = mapped_column(Float)
    resolved_at: Mapped[datetime | None]


class OutcomeModelRow(Base):
    """The model registry: every trained outcome model, its holdout metrics and its artefact."""

    __tablename__ = "outcome_models"

    version: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    trained_at: Mapped[datetime]
    sample_count: Mapped[int] = mapped_column(Integer)
    holdout_count: Mapped[int] = mapped_column(Integer)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON)
    promoted: Mapped[bool] = mapped_column(Boolean, default=False)
    decision: Mapped[str] = mapped_column(Text, default="")
    training_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    library_version: Mapped[str] = mapped_column(String(32))
    sha256: Mapped[str | None] = mapped_column(String(64))
    artefact: Mapped[bytes | None] = mapped_column(LargeBinary, deferred=True)


class AlertRow(Base):
    """An alert instance: one rule breached for one label set, from firing to resolved."""

    __tablename__ = "alerts"
    __table_args__ = (
        Index("ix_alerts_state_fired", "state", "fired_at"),
        Index("ix_alerts_fired", "fired_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    rule: Mapped[str] = mapped_column(String(128))
    metric: Mapped[str] = mapped_column(String(200))
    labels: Mapped[dict[str, Any]] = mapped_column(JSON)
    severity: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(16))
    value: Mapped[float] = mapped_column(Float)
    threshold: Mapped[float] = mapped_column(Float)
    message: Mapped[str] = mapped_column(Text)
    fired_at: Mapped[datetime]
    resolved_at: Mapped[datetime | None]
    resolved_value: Mapped[float | None] = mapped_column(Float)
    notified: Mapped[bool] = mapped_column(Boolean, default=False)
    notify_attempts: Mapped[int] = mapped_column(Integer, default=0)


# The sampler's task statistics read tasks finished in a recent window (migration 0005).
Index("ix_tasks_finished", TaskRow.finished_at)


class MemoryItemRow(Base):
    """A memory item: a document a user added, or a task's report or one of its findings (docs/recall.md).

    Its text lives in its chunks (`MemoryChunkRow`); SQLite indexes them in the FTS5 table
    `memory_fts`, PostgreSQL in the generated `tsv` column (migration 0006: neither is modelled here).
    """

    __tablename__ = "memory_items"
    __table_args__ = (
        Index("ix_memory_items_owner_created", "owner_id", "created_at", "id"),
        Index("ix_memory_items_task", "task_id"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    owner_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    shared: Mapped[bool] = mapped_column(Boolean, default=False)
    source: Mapped[str] = mapped_column(String(16))
    task_id: Mapped[str | None] = mapped_column(String(36))
    title: Mapped[str] = mapped_column(String(200))
    tags: Mapped[list[Any]] = mapped_column(JSON)
    size_bytes: Mapped[int] = mapped_column(Integer)
    content_hash: Mapped[str] = mapped_column(String(64))
    chunk_count: Mapped[int] = mapped_column(Integer)
    embedding_model: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime]


class MemoryChunkRow(Base):
    """One indexed passage of a memory item: `body` is `text[start:start + len(body)]` of its item."""

    __tablename__ = "memory_chunks"
    __table_args__ = (Index("ix_memory_chunks_item", "item_id", "position"), {"sqlite_autoincrement": True})

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    item_id: Mapped[str] = mapped_column(ForeignKey("memory_items.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    start: Mapped[int] = mapped_column(Integer)
    heading: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)


class MemoryTagRow(Base):
    """A tag of a memory item; `(tag, item_id)` is indexed so that tag filters are index lookups."""

    __tablename__ = "memory_tags"
    __table_args__ = (Index("ix_memory_tags_tag", "tag", "item_id"),)

    item_id: Mapped[str] = mapped_column(ForeignKey("memory_items.id", ondelete="CASCADE"), primary_key=True)
    tag: Mapped[str] = mapped_column(String(64), primary_key=True)


class MemoryVectorRow(Base):
    """The embedding of one chunk: float32 little-endian, L2-normalised, `dim` values."""

    __tablename__ = "memory_vectors"
    __table_args__ = (Index("ix_memory_vectors_item", "item_id"),)

    chunk_id: Mapped[int] = mapped_column(
        ForeignKey("memory_chunks.id", ondelete="CASCADE"), primary_key=True
    )
    item_id: Mapped[str] = mapped_column(ForeignKey("memory_items.id", ondelete="CASCADE"))
    model: Mapped[str] = mapped_column(String(100))
    dim: Mapped[int] = mapped_column(Integer)
    vector: Mapped[bytes] = mapped_column(LargeBinary)


class MemoryCounterRow(Base):
    """One row counting memory writes: vector caches reload what changed when the counts move."""

    __tablename__ = "memory_counters"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    inserted: Mapped[int] = mapped_column(Integer, default=0)
    deleted: Mapped[int] = mapped_column(Integer, default=0)
