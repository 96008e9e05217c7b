"""Evidence and findings: what agents observe and what they conclude from it."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any


class Severity(enum.StrEnum):
    """How much a finding matters, ordered from most to least severe by `rank`."""

    CRITICAL = "critical"
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"
    INFO = "info"

    @property
    def rank(self) -> int:
        """0 for critical up to 4 for info; sort ascending to put the worst first."""
        return _SEVERITY_RANK[self]

    @classmethod
    def parse(cls, value: str) -> Severity:
        """Map free text (as a weak model may write it) onto a severity, defaulting to info."""
        text = value.strip().lower()
        for severity in cls:
            if text.startswith(severity.value):
                return severity
        aliases = {"moderate": cls.MEDIUM, "warning": cls.MEDIUM, "error": cls.HIGH, "severe": cls.HIGH}
        return aliases.get(text, cls.INFO)


_SEVERITY_RANK = {
    Severity.CRITICAL: 0,
    Severity.HIGH: 1,
    Severity.MEDIUM: 2,
    Severity.LOW: 3,
    Severity.INFO: 4,
}


@dataclass(frozen=True, kw_only=True)
class Evidence:
    """One observation a tool produced, citable by its id.

    Attributes:
        id: Stable id, unique within a task (``"<step_id>:<tool>:<n>"``).
        tool: Name of the tool that produced it.
        summary: One line a person can read.
        data: The structured observation (JSON-serialisable, capped by the tool).
        location: Where it was observed (file and line, URL, column...), if anywhere.
    """

    id: str
    tool: str
    summary: str
    data: dict[str, Any] = field(default_factory=dict)
    location: str | None = None


@dataclass(frozen=True, kw_only=True)
class Finding:
    """A conclusion drawn by an agent, grounded when it cites evidence that exists.

    Attributes:
        title: Short statement of the problem or fact.
        severity: How much it matters.
        description: What was found and why it matters.
        recommendation: What to do about it.
        evidence_ids: Ids of the evidence it rests on.
        agent_id: The agent that produced it.
        grounded: True when every cited id names evidence collected in this task and at least one
            is cited; set by the runner, never by the model.
        confirmed_by: Other agents that reported the same finding (filled in by the reporter).
    """

    title: str
    severity: Severity
    description: str = ""
    recommendation: str = ""
    evidence_ids: tuple[str, ...] = ()
    agent_id: str = ""
    grounded: bool = False
    confirmed_by: tuple[str, ...] = ()

    def key(self) -> str:
        """Normalised identity used to deduplicate findings across agents."""
        return " ".join(self.title.lower().split())
