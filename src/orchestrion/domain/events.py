"""Events: every state change of a task, numbered per task so clients can resume."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


class EventType(enum.StrEnum):
    """Event types emitted by the core runtime."""

    TASK_CREATED = "task.created"
    TASK_QUEUED = "task.queued"
    TASK_STARTED = "task.started"
    TASK_PROGRESS = "task.progress"
    TASK_COMPLETED = "task.completed"
    TASK_FAILED = "task.failed"
    TASK_CANCELLED = "task.cancelled"
    STEP_STARTED = "step.started"
    STEP_COMPLETED = "step.completed"
    STEP_FAILED = "step.failed"
    STEP_RETRYING = "step.retrying"
    TOOL_CALLED = "tool.called"
    LLM_CALLED = "llm.called"
    AGENT_STATUS = "agent.status"
    ENGINE_STATUS = "engine.status"
    PROVIDER_CIRCUIT = "provider.circuit"
    ALERT_FIRED = "alert.fired"
    ALERT_RESOLVED = "alert.resolved"
    SYSTEM_METRICS = "system.metrics"


class Channel(enum.StrEnum):
    """Channels of notices: live events that belong to no task."""

    AGENTS = "agents"
    ENGINES = "engines"
    PROVIDERS = "providers"
    ALERTS = "alerts"
    SYSTEM = "system"


@dataclass(frozen=True, kw_only=True)
class Event:
    """A persisted event.

    Attributes:
        task_id: The task it belongs to.
        seq: Monotonic per task, starting at 1, without gaps; the resume cursor.
        type: What happened.
        data: Event payload (JSON-serialisable).
        created_at: When it was persisted (UTC).
        id: Its global id in the event log (increasing across all tasks; the cursor of streams that
            follow many tasks); None until it is persisted.
    """

    task_id: str
    seq: int
    type: str
    data: dict[str, Any] = field(default_factory=dict)
    created_at: datetime
    id: int | None = None


@dataclass(frozen=True, kw_only=True)
class Notice:
    """A live event on a channel rather than a task (agent status, circuit changes, alerts, metrics).

    Attributes:
        channel: One of `Channel`.
        type: What happened (an `EventType` value).
        data: Payload (JSON-serialisable).
        created_at: When it happened (UTC).
        id: Its id in a persisted log, for channels that keep one (alerts); None otherwise.
    """

    channel: str
    type: str
    data: dict[str, Any] = field(default_factory=dict)
    created_at: datetime
    id: int | None = None
