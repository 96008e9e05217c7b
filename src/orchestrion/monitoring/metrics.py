"""Prometheus metrics of the core runtime, in a registry owned by the Runtime (never the global one)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from orchestrion.domain.tasks import StepStatus

_LLM_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60, 120)
_DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900)


class Metrics:
    """The metrics the runtime records; names follow `orchestrion_<noun>_<unit>`."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.tasks_total = Counter(
            "orchestrion_tasks_total",
            "Tasks that reached a final status.",
            ["task_type", "status"],
            registry=self.registry,
        )
        self.tasks_submitted_total = Counter(
            "orchestrion_tasks_submitted_total", "Tasks submitted.", ["task_type"], registry=self.registry
        )
        self.task_duration = Histogram(
            "orchestrion_task_duration_seconds",
            "Wall time of finished tasks.",
            ["task_type"],
            buckets=_DURATION_BUCKETS,
            registry=self.registry,
        )
        self.step_duration = Histogram(
            "orchestrion_step_duration_seconds",
            "Wall time of step attempts.",
            ["agent", "status"],
            buckets=_DURATION_BUCKETS,
            registry=self.registry,
        )
        self.tool_calls_total = Counter(
            "orchestrion_tool_calls_total", "Tool calls.", ["tool", "outcome"], registry=self.registry
        )
        self.tool_duration = Histogram(
            "orchestrion_tool_duration_seconds",
            "Tool call duration.",
            ["tool"],
            buckets=_DURATION_BUCKETS,
            registry=self.registry,
        )
        self.queue_depth = Gauge(
            "orchestrion_queue_depth", "Runs waiting for a worker.", registry=self.registry
        )
        self.runs_in_progress = Gauge(
            "orchestrion_runs_in_progress", "Runs executing in this process.", registry=self.registry
        )
        self.llm_calls_total = Counter(
            "orchestrion_llm_calls_total",
            "LLM call attempts; outcome is `ok`, `cancelled` or the error kind.",
            ["provider", "model", "outcome"],
            registry=self.registry,
        )
        self.llm_call_duration = Histogram(
            "orchestrion_llm_call_duration_seconds",
            "Latency of successful LLM call attempts.",
            ["provider", "model"],
            buckets=_LLM_BUCKETS,
            registry=self.registry,
        )
        self.llm_tokens_total = Counter(
            "orchestrion_llm_tokens_total",
            "Tokens billed by LLM vendors.",
            ["provider", "model", "direction"],
            registry=self.registry,
        )
        self.llm_cost_usd_total = Counter(
            "orchestrion_llm_cost_usd_total",
            "USD spent on LLM calls, priced from the price table.",
            ["provider", "model"],
            registry=self.registry,
        )
        self.llm_retries_total = Counter(
            "orchestrion_llm_retries_total",
            "Attempts retried on the same deployment.",
            ["deployment"],
            registry=self.registry,
        )
        self.llm_fallbacks_total = Counter(
            "orchestrion_llm_fallbacks_total",
            "Calls a route passed on from a deployment to the next one.",
            ["route", "deployment"],
            registry=self.registry,
        )
        self.llm_route_failures_total = Counter(
            "orchestrion_llm_route_failures_total",
            "Calls for which every deployment of the route failed.",
            ["route"],
            registry=self.registry,
        )
        self.llm_circuit_state = Gauge(
            "orchestrion_llm_circuit_state",
            "Circuit breaker state per deployment: 0 closed, 1 half-open, 2 open.",
            ["deployment"],
            registry=self.registry,
        )
        self.llm_circuit_rejections_total = Counter(
            "orchestrion_llm_circuit_rejections_total",
            "Calls not made because the deployment's circuit was open.",
            ["deployment"],
            registry=self.registry,
        )
        self.llm_budget_exceeded_total = Counter(
            "orchestrion_llm_budget_exceeded_total",
            "Calls refused because they would exceed their task's budget.",
            ["limit"],
            registry=self.registry,
        )

    def observe_task(self, task_type: str, status: str, duration: float | None) -> None:
        """Count a finished task."""
        self.tasks_total.labels(task_type, status).inc()
        if duration is not None:
            self.task_duration.labels(task_type).observe(duration)

    def observe_step(self, agent: str, status: StepStatus, duration: float) -> None:
        """Record one step attempt."""
        self.step_duration.labels(agent, status.value).observe(duration)

    def observe_tool(self, tool: str, outcome: str, duration: float) -> None:
        """Record one tool call."""
        self.tool_calls_total.labels(tool, outcome).inc()
        self.tool_duration.labels(tool).observe(duration)

    def render(self) -> bytes:
        """The exposition text."""
        return generate_latest(self.registry)
