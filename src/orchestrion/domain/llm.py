"""LLM call accounting values: one record per attempt at one deployment, and usage totals."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

CallOutcome = Literal["ok", "error", "cancelled"]


@dataclass(frozen=True, kw_only=True)
class LLMCall:
    """One attempt at one deployment, successful or not.

    Attributes:
        id: Unique id (hex).
        created_at: When the attempt started (UTC).
        task_id: The task it served, if any.
        step_id: The step it served, if any.
        route: The route it served, if any.
        deployment: The deployment's configured name.
        provider: The provider (preset) name.
        model: The vendor's model id.
        position: Index of the deployment in the route (0 = primary, more = a fallback).
        attempt: Attempt number on this deployment, from 1.
        latency_seconds: Wall time of the attempt.
        input_tokens: Billed input tokens (0 when the vendor reported none).
        output_tokens: Billed output tokens.
        cost_usd: Priced from the price table (0 for unpriced and local deployments).
        outcome: ``ok``, ``error`` or ``cancelled``.
        error_kind: `ProviderError.kind` on errors.
        status_code: The vendor's HTTP status on errors, when there was one.
        error: A short error message (no secrets: adapters redact keys).
    """

    id: str
    created_at: datetime
    task_id: str | None
    step_id: str | None
    route: str | None
    deployment: str
    provider: str
    model: str
    position: int
    attempt: int
    latency_seconds: float
    input_tokens: int
    output_tokens: int
    cost_usd: float
    outcome: CallOutcome
    error_kind: str | None = None
    status_code: int | None = None
    error: str | None = None


@dataclass(frozen=True, kw_only=True)
class DeploymentUsage:
    """What a deployment has done to date, from the ledger.

    Attributes:
        calls: Attempts recorded.
        errors: Attempts that failed.
        input_tokens: Input tokens to date.
        output_tokens: Output tokens to date.
        cost_usd: USD to date.
        recent_calls: Attempts in the recent sample the rates below are computed over.
        error_rate: Failed share of the recent sample.
        latency_p50_seconds: Median latency of the recent successful attempts.
        latency_p95_seconds: 95th percentile latency of the recent successful attempts.
        last_call_at: The latest attempt's start.
    """

    calls: int = 0
    errors: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    recent_calls: int = 0
    error_rate: float | None = None
    latency_p50_seconds: float | None = None
    latency_p95_seconds: float | None = None
    last_call_at: datetime | None = None
