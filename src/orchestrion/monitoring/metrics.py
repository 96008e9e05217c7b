"""Prometheus metrics of the core runtime, in a registry owned by the Runtime (never the global one)."""

from __future__ import annotations

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)

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
        self.prediction_squared_error = Histogram(
            "orchestrion_prediction_squared_error",
            "Squared error of the success probability predicted at submission (a Brier score term).",
            ["model"],
            buckets=(0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0),
            registry=self.registry,
        )
        self.prediction_duration_error = Histogram(
            "orchestrion_prediction_duration_error_seconds",
            "Absolute error of the predicted median duration.",
            ["model"],
            buckets=_DURATION_BUCKETS,
            registry=self.registry,
        )
        self.prediction_cost_error = Histogram(
            "orchestrion_prediction_cost_error_usd",
            "Absolute error of the predicted LLM cost.",
            ["model"],
            buckets=(0.0001, 0.001, 0.01, 0.05, 0.1, 0.5, 1, 5),
            registry=self.registry,
        )
        self.outcome_model_version = Gauge(
            "orchestrion_outcome_model_version",
            "Version of the promoted outcome model (0: predictions come from the prior).",
            registry=self.registry,
        )
        self.outcome_model_trainings_total = Counter(
            "orchestrion_outcome_model_trainings_total",
            "Outcome model trainings by result (promoted, refused, error).",
            ["result"],
            registry=self.registry,
        )
        self.outcome_model_training_seconds = Histogram(
            "orchestrion_outcome_model_training_seconds",
            "Time to train and evaluate a candidate outcome model.",
            buckets=(0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 40, 80),
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
        self.agent_load = Gauge(
            "orchestrion_agent_load", "Steps each agent is working on now.", ["agent"], registry=self.registry
        )
        self.agent_success_ratio = Gauge(
            "orchestrion_agent_success_ratio",
            "Succeeded share of each agent's recent runs (absent without runs).",
            ["agent"],
            registry=self.registry,
        )
        self.agent_response_p95_seconds = Gauge(
            "orchestrion_agent_response_p95_seconds",
            "95th percentile duration of each agent's recent runs (absent without runs).",
            ["agent"],
            registry=self.registry,
        )
        self.agent_alerts = Gauge(
            "orchestrion_agent_alerts",
            "Performance alerts active per agent.",
            ["agent"],
            registry=self.registry,
        )
        # -- Queue wait, task counts, HTTP and process metrics (`docs/metrics.md` lists every metric).
        self.queue_wait = Histogram(
            "orchestrion_queue_wait_seconds",
            "Time from a run being queued (submitted, executed or retried) to a worker claiming it.",
            ["task_type"],
            buckets=_DURATION_BUCKETS,
            registry=self.registry,
        )
        self.tasks = Gauge(
            "orchestrion_tasks_by_status",
            "Tasks in the store by type and current status (counted when scraped).",
            ["task_type", "status"],
            registry=self.registry,
        )
        self.http_requests_total = Counter(
            "orchestrion_http_requests_total",
            "HTTP requests by route template (`none`: no route), method and status class (2xx...).",
            ["handler", "method", "status"],
            registry=self.registry,
        )
        self.http_request_duration = Histogram(
            "orchestrion_http_request_duration_seconds",
            "Time from a request's arrival to its response's start (streams: to their first byte).",
            ["handler", "method"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=self.registry,
        )
        # The standard `process_*` and `python_*` families, on this registry rather than the global one.
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        GCCollector(registry=self.registry)

    def observe_task(self, task_type: str, status: str, duration: float | None) -> None:
        """Count a finished task."""
        self.tasks_total.labels(task_type, status).inc()
        if duration is not None:
            self.task_duration.labels(task_type).observe(duration)

    def observe_prediction_error(
        self, model: str, *, squared_error: float, duration_error: float | None, cost_error: float
    ) -> None:
        """Record how far a prediction was from the outcome."""
        self.prediction_squared_error.labels(model).observe(squared_error)
        if duration_error is not None:
            self.prediction_duration_error.labels(model).observe(duration_error)
        self.prediction_cost_error.labels(model).observe(cost_error)

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
