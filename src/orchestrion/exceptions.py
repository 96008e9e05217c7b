"""Orchestrion's exceptions. `api/errors.py` maps them to HTTP in one place.

The tree::

    OrchestrionError
    ├── ConfigurationError          settings that cannot work (bad URL, missing model file)
    ├── ValidationError             bad input: carries `field` and, when known, `choices`
    │   ├── UnknownChoiceError      a value outside a closed set (task type, agent, role)
    │   └── InputRefusedError       an input path outside the workspace roots, or unreadable
    ├── PayloadTooLargeError        a body or upload over the configured limit
    ├── AuthError                   missing or invalid credentials
    │   └── PermissionDeniedError   authenticated but not allowed
    ├── NotFoundError               an unknown id, or one the caller may not see
    ├── ConflictError               an illegal state transition: carries `status`
    ├── ProviderError               an LLM call failed: carries `provider`, `retryable`
    │   └── OutputSchemaError       the model's output did not match the requested JSON schema
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
    ) -> None:
        super().__init__(message, details={"provider": provider, "status_code": status_code})
        self.provider = provider
        self.retryable = retryable
        self.status_code = status_code
        self.retry_after = retry_after


class OutputSchemaError(ProviderError):
    """The model's output was not valid JSON for the requested schema."""

    code = "output_schema_error"


class ToolError(OrchestrionError):
    """A tool failed."""

    code = "tool_error"

    def __init__(self, message: str, *, tool: str) -> None:
        super().__init__(message, details={"tool": tool})
        self.tool = tool


class LeaseLostError(OrchestrionError):
    """This worker's lease on a run expired and another worker took it: stop writing."""

    code = "lease_lost"
