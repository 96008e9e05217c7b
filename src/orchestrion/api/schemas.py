"""API schemas (pydantic): `XCreate` for input, `XPublic` for output."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from orchestrion.api.engine_schemas import TaskOptions


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FileInput(_In):
    """Uploaded content."""

    name: str = Field(min_length=1, max_length=512)
    content: str
    encoding: Literal["utf-8", "base64"] = "utf-8"


class TaskInputs(_In):
    """Uploaded files and/or server paths under the workspace roots."""

    files: list[FileInput] = Field(default_factory=list)
    paths: list[str] = Field(default_factory=list, max_length=100)
    items: list[str] = Field(
        default_factory=list, description="Batch task types: the targets or text rows to map over."
    )


class Budget(_In):
    """Per-task limits (enforced by the provider router)."""

    max_tokens: int | None = Field(default=None, gt=0)
    max_cost_usd: float | None = Field(default=None, ge=0)


class TaskCreate(_In):
    """A task submission."""

    title: str = Field(min_length=1, max_length=200)
    task_type: str = Field(min_length=1, max_length=64)
    target: str | None = Field(default=None, max_length=2048)
    inputs: TaskInputs = Field(default_factory=TaskInputs)
    priority: int = Field(default=5, ge=1, le=10)
    agents: list[str] | None = Field(default=None, max_length=20)
    auto_execute: bool = True
    budget: Budget = Field(default_factory=Budget)
    deadline_seconds: float | None = Field(default=None, gt=0, le=7 * 24 * 3600)
    allow_active_scanning: bool = False
    required_capabilities: list[str] = Field(default_factory=list, max_length=20)
    engine: str | None = Field(default=None, max_length=32, description="Preferred engine (docs/engines.md).")
    options: TaskOptions = Field(default_factory=TaskOptions)


class StepPublic(BaseModel):
    id: str
    agent_id: str
    depends_on: list[str]
    status: str
    attempts: int
    error: str | None = None


class AgentScorePublic(BaseModel):
    agent_id: str
    runs: float
    success_mean: float
    quality_mean: float
    sample: float
    load: int
    score: float
    chosen: bool
    reason: str


class SelectionPublic(BaseModel):
    strategy: str
    team: list[str]
    candidates: list[AgentScorePublic]
    required_capabilities: list[str]
    reasons: list[str]


class PlanPublic(BaseModel):
    steps: list[StepPublic]
    reasons: list[str]
    selection: SelectionPublic | None = None


class RiskFactorPublic(BaseModel):
    feature: str
    value: float
    impact: float
    message: str


class PredictionPublic(BaseModel):
    success_probability: float
    duration_p50_seconds: float
    duration_p90_seconds: float
    cost_usd: float
    confidence: float
    sample_size: int
    model: str
    model_version: int | None = None
    risk_factors: list[RiskFactorPublic] = Field(default_factory=list)
    suggestions: list[str] = Field(default_factory=list)


class TaskPublic(BaseModel):
    id: str
    owner_id: str
    title: str
    task_type: str
    target: str | None
    status: str
    priority: int
    agents: list[str]
    plan: PlanPublic | None
    prediction: PredictionPublic | None
    budget: dict[str, Any]
    deadline_seconds: float | None
    allow_active_scanning: bool
    engine: str
    error: str | None
    attempt: int
    created_at: datetime
    queued_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None


class TasksPublic(BaseModel):
    data: list[TaskPublic]
    next_cursor: str | None


class StepProgress(BaseModel):
    id: str
    agent_id: str
    status: str
    attempts: int


class ProgressPublic(BaseModel):
    task_id: str
    status: str
    percent: float
    steps: list[StepProgress]
    elapsed_seconds: float | None
    eta_seconds: float | None


class FindingPublic(BaseModel):
    title: str
    severity: str
    description: str
    recommendation: str
    evidence_ids: list[str]
    agent_id: str
    grounded: bool
    confirmed_by: list[str]


class EvidencePublic(BaseModel):
    id: str
    tool: str
    summary: str
    location: str | None
    data: dict[str, Any]


class QualityPublic(BaseModel):
    coverage: float
    grounding: float
    agreement: float
    completion: float
    overall: float


class ResultPublic(BaseModel):
    task_id: str
    status: str
    summary: str
    findings: list[FindingPublic]
    remediation: list[str]
    quality: QualityPublic
    evidence: list[EvidencePublic]
    stats: dict[str, Any]
    usage: TaskUsagePublic
    created_at: datetime


class EventPublic(BaseModel):
    task_id: str
    seq: int
    type: str
    data: dict[str, Any]
    created_at: datetime


class EventsPublic(BaseModel):
    data: list[EventPublic]
    last_seq: int


class TaskTypePublic(BaseModel):
    id: str
    description: str
    default_agents: list[str]
    agents: list[str]
    needs_inputs: bool
    needs_target: bool
    input_extensions: list[str]


class AgentAlertPublic(BaseModel):
    metric: Literal["response_p95_seconds", "success_rate", "error_rate"]
    value: float
    threshold: float
    severity: Literal["warning", "critical"]
    message: str


class AgentMetricsPublic(BaseModel):
    """Totals to date; rates and response times over the latest `recent_runs` runs (None without runs)."""

    runs: int
    succeeded: int
    errors: int
    recent_runs: int
    success_rate: float | None
    error_rate: float | None
    response_avg_seconds: float | None
    response_p95_seconds: float | None
    load: int
    last_activity_at: datetime | None
    status: Literal["idle", "processing", "error", "offline"]
    alerts: list[AgentAlertPublic]


class AgentPublic(BaseModel):
    id: str
    name: str
    description: str
    kind: str
    capabilities: list[str]
    task_types: list[str]
    tools: list[str]
    route: str
    metrics: AgentMetricsPublic


class TokenCreate(_In):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024)


class TokenPublic(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int


class UserCreate(_In):
    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.@-]+$")
    role: Literal["admin", "operator", "viewer"]
    password: str | None = Field(default=None, min_length=8, max_length=1024)


class UserPublic(BaseModel):
    id: str
    name: str
    role: str


class UserCreated(UserPublic):
    api_key: str


class HealthPublic(BaseModel):
    status: Literal["ok", "degraded"]
    version: str
    database: dict[str, Any]
    queue: dict[str, Any]
    providers: dict[str, Any]


class PricePublic(BaseModel):
    input_per_mtok: float
    output_per_mtok: float


class CircuitPublic(BaseModel):
    state: Literal["closed", "half_open", "open"]
    consecutive_failures: int
    window_calls: int
    window_failures: int
    opened_count: int
    retry_in_seconds: float | None


class LimitsPublic(BaseModel):
    max_concurrent: int | None
    requests_per_minute: int | None
    tokens_per_minute: int | None
    in_flight: int
    waiting: int
    requests_last_minute: int
    tokens_last_minute: int


class DeploymentUsagePublic(BaseModel):
    calls: int
    errors: int
    input_tokens: int
    output_tokens: int
    cost_usd: float
    recent_calls: int
    error_rate: float | None
    latency_p50_seconds: float | None
    latency_p95_seconds: float | None
    last_call_at: datetime | None


class DeploymentPublic(BaseModel):
    name: str
    provider: str
    model: str
    routes: list[str]
    price: PricePublic | None
    circuit: CircuitPublic
    limits: LimitsPublic
    usage: DeploymentUsagePublic


class ProvidersPublic(BaseModel):
    routes: dict[str, list[str]]
    deployments: list[DeploymentPublic]


class LLMCallPublic(BaseModel):
    id: str
    created_at: datetime
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
    outcome: str
    error_kind: str | None
    status_code: int | None
    error: str | None


class UsageTotalsPublic(BaseModel):
    calls: int = 0
    failed_calls: int = 0
    fallback_calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0


class StepUsagePublic(UsageTotalsPublic):
    step_id: str
    deployments: list[str] = Field(default_factory=list)


class TaskUsagePublic(BaseModel):
    total: UsageTotalsPublic
    steps: list[StepUsagePublic]
    calls: list[LLMCallPublic]


class ModelPublic(BaseModel):
    version: int
    trained_at: datetime
    sample_count: int
    holdout_count: int
    metrics: dict[str, Any]
    promoted: bool
    decision: str
    training_seconds: float


class ModelsPublic(BaseModel):
    serving: str
    serving_version: int | None
    training: bool
    outcomes_since_training: int
    retrain_every: int
    training_rows: int
    min_train_samples: int
    models: list[ModelPublic]


class PredictedPublic(BaseModel):
    success_probability: float
    duration_p50_seconds: float
    duration_p90_seconds: float
    cost_usd: float


class PredictionErrorPublic(BaseModel):
    success_squared_error: float
    duration_error_seconds: float | None
    duration_within_p90: bool | None
    cost_error_usd: float


class PredictionRecordPublic(BaseModel):
    task_id: str
    model: str
    model_version: int | None
    served: PredictedPublic
    prior: PredictedPublic
    features: dict[str, float]
    actual_status: str | None
    actual_duration_seconds: float | None
    actual_cost_usd: float | None
    resolved_at: datetime | None
    error: PredictionErrorPublic | None
    prior_error: PredictionErrorPublic | None


class AlertPublic(BaseModel):
    id: int
    rule: str
    metric: str
    labels: dict[str, str]
    severity: str
    state: str
    value: float
    threshold: float
    message: str
    fired_at: datetime
    resolved_at: datetime | None
    resolved_value: float | None
    notified: bool
    notify_attempts: int


class AlertsPublic(BaseModel):
    data: list[AlertPublic]
    firing: dict[str, int]


class SystemHealthPublic(BaseModel):
    status: Literal["healthy", "degraded", "stressed"]
    reasons: list[str]


class SystemAgentsPublic(BaseModel):
    total: int
    active: int
    processing: int
    by_status: dict[str, int]


class SystemTasksPublic(BaseModel):
    total: int
    by_status: dict[str, int]


class SystemPerformancePublic(BaseModel):
    recent_runs: int
    avg_response_seconds: float | None
    success_rate: float | None
    task_window_seconds: float
    tasks_recent_finished: int | None
    task_failure_ratio: float | None
    task_duration_p95_seconds: float | None


class SystemAlertsPublic(BaseModel):
    firing: int
    by_severity: dict[str, int]


class HostSamplePublic(BaseModel):
    cpu_percent: float
    memory_percent: float
    memory_used_bytes: int
    memory_total_bytes: int
    disk_path: str
    disk_percent: float
    disk_used_bytes: int
    disk_total_bytes: int
    network_sent_bytes_per_second: float | None
    network_received_bytes_per_second: float | None
    process_cpu_percent: float
    process_resident_memory_bytes: int
    process_open_fds: int | None


class SystemSamplePublic(BaseModel):
    sampled_at: datetime
    host: HostSamplePublic
    queue_depth: int
    queue_backlog: int
    open_circuits: int


class SystemPublic(BaseModel):
    health: SystemHealthPublic
    agents: SystemAgentsPublic
    tasks: SystemTasksPublic
    performance: SystemPerformancePublic
    alerts: SystemAlertsPublic
    sample: SystemSamplePublic | None
