"""Orchestrion's exceptions. `api/errors.py` maps them to HTTP in one place.

The tree::

    OrchestrionError
    ├── ConfigurationError          settings that cannot work (bad URL, missing model file)
    ├── ValidationError             bad input: carries `field` and, when known, `choices`
    │   ├── UnknownChoiceError      a value outside a closed set (task type, agent, role)
    │   ├── InputRefusedError       an input path outside the workspace roots, or unreadable
    │   └── TargetRefusedError      a network target (or active scan) the tool policy refuses: carries
    │                               `host`, `address`, `reason`; the caller's target is the problem
    ├── PayloadTooLargeError        a body or upload over the configured limit
    ├── AuthError                   missing or invalid credentials
    │   └── PermissionDeniedError   authenticated but not allowed
    ├── NotFoundError               an unknown id, or one the caller may not see
    ├── ConflictError               an illegal state transition: carries `status`
    │   └── InsufficientDataError   too little history to train a model: carries `needed`, `have`
    ├── ProviderError               an LLM call failed: carries `provider`, `retryable`, `kind`
    │   ├── OutputSchemaError       the model's output did not match the requested JSON schema
    │   ├── CircuitOpenError        the deployment's circuit breaker is open: not called at all
    │   └── RouteFailedError        every deployment of a route failed: carries each `failure`
    ├── BudgetExceededError         a call would take a task past its token or cost budget
    ├── ToolError                   a tool failed: carries `tool`
    └── LeaseLostError              this worker no longer holds the run's lease (another resumed it)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


class OrchestrionError(Exception):
    """Base of every error Orchestrion raises on purpose."""

    code = "error"

    def __init__(self, message: str, *, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details: dict[str, Any] = dict(details or {})


class ConfigurationError(OrchestrionError):
    """Settings that cannot work."""

    code = "configuration_error"


class ValidationError(OrchestrionError):
    """Bad input, naming the offending field."""

    code = "validation_error"

    def __init__(
        self,
        message: str,
        *,
        field: str,
        choices: Sequence[str] | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        merged = {"field": field, **(details or {})}
        if choices is not None:
            merged["choices"] = list(choices)
        super().__init__(message, details=merged)
        self.field = field
        self.choices = list(choices) if choices is not None else None


class UnknownChoiceError(ValidationError):
    """A value outside a closed set; `choices` lists the valid ones."""

    code = "unknown_choice"

    def __init__(self, *, field: str, value: str, choices: Sequence[str], code: str | None = None) -> None:
        super().__init__(
            f"unknown {field} {value!r}; valid choices: {', '.join(choices)}",
            field=field,
            choices=choices,
            details={"value": value},
        )
        if code:
            self.code = code


class InputRefusedError(ValidationError):
    """An input that Orchestrion will not read."""

    code = "input_refused"


class TargetRefusedError(ValidationError):
    """A network target the tool policy will not reach.

    Attributes:
        host: The host as the caller named it, when the refusal is about a host.
        address: The resolved address that was refused, when there is one.
        reason: Why, in a few words ("loopback", "a cloud metadata endpoint", "active scanning...").
    """

    code = "target_refused"

    def __init__(
        self,
        message: str,
        *,
        reason: str,
        host: str | None = None,
        address: str | None = None,
        field: str = "target",
    ) -> None:
        super().__init__(message, field=field, details={"host": host, "address": address, "reason": reason})
        self.host = host
        self.address = address
        self.reason = reason


class PayloadTooLargeError(OrchestrionError):
    """A body or upload over the configured limit."""

    code = "payload_too_large"


class AuthError(OrchestrionError):
    """Missing or invalid credentials."""

    code = "unauthorized"


class PermissionDeniedError(AuthError):
    """Authenticated, but the role does not allow this."""

    code = "forbidden"


class NotFoundError(OrchestrionError):
    """An unknown id, or one owned by someone else (never revealed)."""

    code = "not_found"


class ConflictError(OrchestrionError):
    """An action that the current status does not allow."""

    code = "conflict"

    def __init__(self, message: str, *, status: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message, details={"status": status, **(details or {})})
        self.status = status


class InsufficientDataError(ConflictError):
    """Training was asked for before enough finished tasks exist."""

    code = "insufficient_data"

    def __init__(self, *, needed: int, have: int) -> None:
        super().__init__(
            f"training needs {needed} finished tasks with predictions; there are {have}",
            status="insufficient_data",
            details={"needed": needed, "have": have, "missing": max(0, needed - have)},
        )
        self.needed = needed
        self.have = have


class ProviderError(OrchestrionError):
    """An LLM call failed."""

    code = "provider_error"

    def __init__(
        self,
        message: str,
        *,
        provider: str,
        retryable: bool = False,
        status_code: int | None = None,
        retry_after: float | None = None,
        kind: str | None = None,
    ) -> None:
        super().__init__(message, details={"provider": provider, "status_code": status_code})
        self.provider = provider
        self.retryable = retryable
        self.status_code = status_code
        self.retry_after = retry_after
        self.kind = kind or _kind_of_status(status_code, retryable)


def _kind_of_status(status_code: int | None, retryable: bool) -> str:
    """The error class recorded in accounting when an adapter did not name one."""
    if status_code is None:
        return "transport" if retryable else "error"
    if status_code == 429:
        return "rate_limited"
    if status_code == 408:
        return "timeout"
    if status_code in (401, 403):
        return "auth"
    if status_code == 404:
        return "not_found"
    if status_code >= 500:
        return "server_error"
    return "bad_request" if status_code >= 400 else "bad_response"


PROVIDER_ERROR_KINDS = (
    "rate_limited",
    "timeout",
    "transport",
    "server_error",
    "bad_response",
    "auth",
    "bad_request",
    "not_found",
    "schema",
    "circuit_open",
    "error",
)
"""Values of `ProviderError.kind`: the error classes accounting and metrics count by."""


class OutputSchemaError(ProviderError):
    """The model's output was not valid JSON for the requested schema."""

    code = "output_schema_error"

    def __init__(self, message: str, *, provider: str) -> None:
        super().__init__(message, provider=provider, retryable=False, kind="schema")


class CircuitOpenError(ProviderError):
    """The deployment's breaker is open (or half-open with its probe in flight); it was not called."""

    code = "circuit_open"

    def __init__(self, message: str, *, provider: str, retry_after: float | None = None) -> None:
        super().__init__(
            message, provider=provider, retryable=False, retry_after=retry_after, kind="circuit_open"
        )


class RouteFailedError(ProviderError):
    """Every deployment of a route failed.

    Attributes:
        route: The route name.
        failures: `(deployment, error)` for each deployment tried or skipped, in route order.
    """

    code = "route_failed"

    def __init__(self, route: str, failures: Sequence[tuple[str, ProviderError]]) -> None:
        summary = "; ".join(f"{name}: {exc.message}" for name, exc in failures)
        last = failures[-1][1]
        super().__init__(
            f"all {len(failures)} deployments of route {route!r} failed: {summary}",
            provider=last.provider,
            retryable=any(exc.retryable for _, exc in failures),
            status_code=last.status_code,
            retry_after=last.retry_after,
            kind=last.kind,
        )
        self.route = route
        self.failures = list(failures)
        self.details["route"] = route
        self.details["failures"] = [
            {"deployment": name, "kind": exc.kind, "message": exc.message} for name, exc in failures
        ]


class BudgetExceededError(OrchestrionError):
    """An LLM call would take the task past its budget; the call is not made.

    Attributes:
        limit: ``max_tokens`` or ``max_cost_usd``.
        allowed: The task's limit.
        spent: What the task had used (and reserved for calls in flight) before this call.
        needed: The call's worst-case estimate.
    """

    code = "budget_exceeded"

    def __init__(self, *, limit: str, allowed: float, spent: float, needed: float) -> None:
        super().__init__(
            f"budget exceeded: {limit} is {allowed:g}, {spent:g} already used or reserved, "
            f"and the next LLM call may need up to {needed:g}",
            details={"limit": limit, "allowed": allowed, "spent": spent, "needed": needed},
        )
        self.limit = limit
        self.allowed = allowed
        self.spent = spent
        self.needed = needed


class ToolError(OrchestrionError):
    """A tool failed."""

    code = "tool_error"

    def __init__(self, message: str, *, tool: str) -> None:
        super().__init__(message, details={"tool": tool})
        self.tool = tool


class LeaseLostError(OrchestrionError):
    """This worker's lease on a run expired and another worker took it: stop writing."""

    code = "lease_lost"
