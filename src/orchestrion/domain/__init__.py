"""Pure domain types: no I/O, no framework imports, nothing of ours below it."""

from __future__ import annotations

from orchestrion.domain.events import Event, EventType
from orchestrion.domain.findings import Evidence, Finding, Severity
from orchestrion.domain.tasks import (
    TERMINAL_STATUSES,
    AgentRun,
    Plan,
    Prediction,
    QualityScore,
    Result,
    Step,
    StepStatus,
    Task,
    TaskStatus,
    ToolCall,
    utcnow,
)

__all__ = [
    "TERMINAL_STATUSES",
    "AgentRun",
    "Event",
    "EventType",
    "Evidence",
    "Finding",
    "Plan",
    "Prediction",
    "QualityScore",
    "Result",
    "Severity",
    "Step",
    "StepStatus",
    "Task",
    "TaskStatus",
    "ToolCall",
    "utcnow",
]
