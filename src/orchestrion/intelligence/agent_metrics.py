"""Agent metrics: what each registered agent has done, what it is doing now, and whether it is healthy.

Definitions (rows from `store.agent_stats`; one run is one finished step of a task):

- Totals over all time: `runs` (finished runs: the tasks the agent completed its part of), `succeeded`,
  and `errors` (runs that failed).
- Rates over the window of the agent's latest `window` runs (default 100): `success_rate` (succeeded
  share), `error_rate` (failed share), `response_avg_seconds` and `response_p95_seconds` (mean and
  nearest-rank 95th percentile of the runs' durations, failed runs included: a run that timed out was
  a slow response). All None when the agent has no runs.
- `load`: steps of running tasks the agent is working on now.
- `last_activity_at`: the later of its latest run and its latest step start.
- `status`, the first that applies:
  ``offline`` when the agent's LLM route has no usable deployment (the route is not configured, or
  every deployment of the route has an open circuit; a half-open circuit is usable: it lets a probe
  through). Without any LLM configured, agents still run their tools and nothing is offline;
  ``processing`` when load > 0; ``error`` when the window holds at least
  `alert_min_runs` runs and the error rate is at or above `alert_error_rate`, or the latest three runs
  all failed; ``idle`` otherwise.
- `alerts`, only once the window holds at least `alert_min_runs` runs: ``response_p95_seconds`` above
  `alert_response_seconds`, ``success_rate`` below `alert_success_rate`, ``error_rate`` above
  `alert_error_rate`. Severity is ``critical`` when the value is twice as far out (p95 above twice the
  threshold, success rate below half of it, error rate above twice it), else ``warning``.

When an agent's set of (alert, severity) changes, the monitor logs one line: a WARNING when an alert
fired or escalated, an INFO when alerts only resolved. The previous set is kept per agent in the
monitor (so per process), which makes it log on transitions only; the first computation counts as a
transition from no alerts.

Every computation also sets the Prometheus gauges `orchestrion_agent_load`,
`orchestrion_agent_success_ratio`, `orchestrion_agent_response_p95_seconds` (both removed while the
agent has no runs) and `orchestrion_agent_alerts`.
"""

from __future__ import annotations

import contextlib
import enum
import logging
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from prometheus_client import Gauge
from sqlalchemy import Connection

from orchestrion.agents.registry import AgentRegistry
from orchestrion.agents.spec import AgentSpec
from orchestrion.domain.events import Channel, EventType, Notice
from orchestrion.domain.tasks import StepStatus, utcnow
from orchestrion.exceptions import NotFoundError
from orchestrion.monitoring.metrics import Metrics
from orchestrion.providers.breaker import CircuitState
from orchestrion.providers.router import ProviderRouter
from orchestrion.store.agent_stats import AgentStats, RecentRun, read_agent_stats
from orchestrion.store.database import Database
from orchestrion.store.llm_calls import percentile

logger = logging.getLogger(__name__)

AlertMetric = Literal["response_p95_seconds", "success_rate", "error_rate"]
AlertSeverity = Literal["warning", "critical"]
FAILED_STREAK = 3


class AgentStatus(enum.StrEnum):
    """What an agent is doing, as operators see it."""

    IDLE = "idle"
    PROCESSING = "processing"
    ERROR = "error"
    OFFLINE = "offline"


@dataclass(frozen=True, kw_only=True)
class AgentAlert:
    """A metric of an agent past its threshold.

    Attributes:
        metric: Which metric.
        value: Its value over the window.
        threshold: The threshold it crossed.
        severity: ``warning``, or ``critical`` when twice as far out.
        message: One sentence for people.
    """

    metric: AlertMetric
    value: float
    threshold: float
    severity: AlertSeverity
    message: str


@dataclass(frozen=True, kw_only=True)
class AgentMetrics:
    """One agent's metrics (definitions in the module docstring).

    Attributes:
        agent_id: The agent.
        runs: Finished runs to date.
        succeeded: Runs that succeeded, to date.
        errors: Runs that failed, to date.
        recent_runs: Runs in the window the rates are computed over.
        success_rate: Succeeded share of the window (None without runs).
        error_rate: Failed share of the window (None without runs).
        response_avg_seconds: Mean run duration over the window (None without runs).
        response_p95_seconds: 95th percentile run duration over the window (None without runs).
        load: Steps the agent is working on now.
        last_activity_at: Its latest run or step start (None if it never worked).
        status: idle, processing, error or offline.
        alerts: Thresholds crossed, in a fixed order: response time, success rate, error rate.
    """

    agent_id: str
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
    status: AgentStatus
    alerts: tuple[AgentAlert, ...]


class AgentMonitor:
    """Computes agent metrics from the store, raises alerts and exports gauges.

    Args:
        db: Where runs and steps are read from.
        registry: The registered agents (the ones reported).
        router: The provider router whose circuits say whether an agent's route is usable (None: no
            LLM configured; agents then run their tools only, and none is offline).
        metrics: The runtime's metrics, whose agent gauges are set on every computation.
        window: How many of each agent's latest runs the rates are computed over.
        alert_response_seconds: Alert when the window's p95 response time is above this.
        alert_success_rate: Alert when the window's success rate is below this.
        alert_error_rate: Alert when the window's error rate is above this (status ``error`` at it).
        alert_min_runs: Runs the window needs before alerts (and the error-rate status) apply.
    """

    def __init__(
        self,
        db: Database,
        registry: AgentRegistry,
        router: ProviderRouter | None,
        metrics: Metrics,
        *,
        window: int = 100,
        alert_response_seconds: float = 120.0,
        alert_success_rate: float = 0.5,
        alert_error_rate: float = 0.3,
        alert_min_runs: int = 5,
        publish: Callable[[Notice], None] | None = None,
    ) -> None:
        self._db = db
        self._publish = publish
        self._status_state: dict[str, AgentStatus] = {}
        self._registry = registry
        self._router = router
        self._metrics = metrics
        self.window = window
        self.alert_response_seconds = alert_response_seconds
        self.alert_success_rate = alert_success_rate
        self.alert_error_rate = alert_error_rate
        self.alert_min_runs = alert_min_runs
        self._alert_state: dict[str, frozenset[tuple[str, str]]] = {}

    async def read_all(self) -> list[AgentMetrics]:
        """Every registered agent's metrics, by agent id."""
        specs = sorted(self._registry.agents.values(), key=lambda spec: spec.id)
        return await self._compute(specs, only=None)

    async def read(self, agent_id: str) -> AgentMetrics:
        """One agent's metrics.

        Raises:
            NotFoundError: When no agent has that id (details name the valid ids).
        """
        spec = self._registry.agents.get(agent_id)
        if spec is None:
            raise NotFoundError(
                f"agent {agent_id} not found", details={"choices": sorted(self._registry.agents)}
            )
        (metrics,) = await self._compute([spec], only=[agent_id])
        return metrics

    async def refresh(self) -> None:
        """Recompute every agent's metrics: updates the gauges and logs alert transitions."""
        await self.read_all()

    async def _compute(
        self, specs: Sequence[AgentSpec], *, only: Collection[str] | None
    ) -> list[AgentMetrics]:
        window = self.window

        def read(conn: Connection) -> dict[str, AgentStats]:
            return read_agent_stats(conn, window=window, agent_ids=only)

        stats = await self._db.read(read)
        usable = self._usable_routes()
        computed = [
            self._metrics_of(
                spec, stats.get(spec.id, AgentStats()), online=usable is None or spec.route in usable
            )
            for spec in specs
        ]
        for metrics in computed:
            self._track_status(metrics)
            self._track_alerts(metrics)
            self._export(metrics)
        return computed

    def _usable_routes(self) -> set[str] | None:
        """Routes with at least one deployment whose circuit is not open (None: no LLM at all)."""
        if self._router is None:
            return None
        breakers = {deployment.name: deployment.breaker for deployment in self._router.deployments()}
        return {
            route
            for route, names in self._router.routes().items()
            if any(breakers[name].state is not CircuitState.OPEN for name in names)
        }

    def _metrics_of(self, spec: AgentSpec, stats: AgentStats, *, online: bool) -> AgentMetrics:
        recent = stats.recent
        n = len(recent)
        succeeded = sum(1 for run in recent if run.status == StepStatus.SUCCEEDED.value)
        failed = sum(1 for run in recent if run.status == StepStatus.FAILED.value)
        durations = sorted(run.duration_seconds for run in recent)
        success_rate = succeeded / n if n else None
        error_rate = failed / n if n else None
        p95 = percentile(durations, 0.95)
        alerts = self._alerts_of(spec.id, n, p95=p95, success_rate=success_rate, error_rate=error_rate)
        load = stats.activity.running
        moments = [t for t in (stats.totals.last_run_at, stats.activity.last_started_at) if t is not None]
        return AgentMetrics(
            agent_id=spec.id,
            runs=stats.totals.runs,
            succeeded=stats.totals.succeeded,
            errors=stats.totals.failed,
            recent_runs=n,
            success_rate=success_rate,
            error_rate=error_rate,
            response_avg_seconds=sum(durations) / n if n else None,
            response_p95_seconds=p95,
            load=load,
            last_activity_at=max(moments) if moments else None,
            status=self._status(online=online, load=load, recent=recent, error_rate=error_rate),
            alerts=alerts,
        )

    def _status(
        self, *, online: bool, load: int, recent: Sequence[RecentRun], error_rate: float | None
    ) -> AgentStatus:
        if not online:
            return AgentStatus.OFFLINE
        if load > 0:
            return AgentStatus.PROCESSING
        erring = (
            error_rate is not None
            and len(recent) >= self.alert_min_runs
            and error_rate >= self.alert_error_rate
        )
        streak = recent[:FAILED_STREAK]
        failing = len(streak) == FAILED_STREAK and all(r.status == StepStatus.FAILED.value for r in streak)
        return AgentStatus.ERROR if erring or failing else AgentStatus.IDLE

    def _alerts_of(
        self,
        agent_id: str,
        runs: int,
        *,
        p95: float | None,
        success_rate: float | None,
        error_rate: float | None,
    ) -> tuple[AgentAlert, ...]:
        if runs < self.alert_min_runs or runs == 0:
            return ()
        alerts: list[AgentAlert] = []
        limit = self.alert_response_seconds
        if p95 is not None and p95 > limit:
            alerts.append(
                AgentAlert(
                    metric="response_p95_seconds",
                    value=p95,
                    threshold=limit,
                    severity="critical" if p95 > 2 * limit else "warning",
                    message=f"{agent_id}: p95 response time {p95:.1f}s is above {limit:g}s",
                )
            )
        floor = self.alert_success_rate
        if success_rate is not None and success_rate < floor:
            alerts.append(
                AgentAlert(
                    metric="success_rate",
                    value=success_rate,
                    threshold=floor,
                    severity="critical" if success_rate < floor / 2 else "warning",
                    message=f"{agent_id}: success rate {success_rate:.0%} is below {floor:.0%}",
                )
            )
        ceiling = self.alert_error_rate
        if error_rate is not None and error_rate > ceiling:
            alerts.append(
                AgentAlert(
                    metric="error_rate",
                    value=error_rate,
                    threshold=ceiling,
                    severity="critical" if error_rate > 2 * ceiling else "warning",
                    message=f"{agent_id}: error rate {error_rate:.0%} is above {ceiling:.0%}",
                )
            )
        return tuple(alerts)

    def _track_status(self, metrics: AgentMetrics) -> None:
        """Publish an `agent.status` notice when an agent's status differs from the one seen last time."""
        previous = self._status_state.get(metrics.agent_id)
        self._status_state[metrics.agent_id] = metrics.status
        if self._publish is None or previous is None or previous is metrics.status:
            return
        self._publish(
            Notice(
                channel=Channel.AGENTS,
                type=EventType.AGENT_STATUS,
                data={
                    "agent_id": metrics.agent_id,
                    "status": metrics.status.value,
                    "previous": previous.value,
                    "load": metrics.load,
                    "success_rate": metrics.success_rate,
                    "error_rate": metrics.error_rate,
                    "alerts": [a.metric for a in metrics.alerts],
                },
                created_at=utcnow(),
            )
        )

    def _track_alerts(self, metrics: AgentMetrics) -> None:
        """Log when the agent's alert set differs from the one seen last time."""
        current = frozenset((a.metric, a.severity) for a in metrics.alerts)
        previous = self._alert_state.get(metrics.agent_id, frozenset())
        if current == previous:
            return
        self._alert_state[metrics.agent_id] = current
        extra = {"agent_id": metrics.agent_id, "alerts": sorted(f"{m}:{s}" for m, s in current)}
        before = dict(previous)
        fired = [m for m, s in current if m not in before or (s == "critical" and before[m] == "warning")]
        if fired:
            logger.warning(
                "agent %s alerts: %s",
                metrics.agent_id,
                "; ".join(a.message for a in metrics.alerts),
                extra=extra,
            )
        else:
            resolved = sorted({metric for metric, _ in previous} - {metric for metric, _ in current})
            logger.info(
                "agent %s alerts resolved: %s (active: %d)",
                metrics.agent_id,
                ", ".join(resolved) or "severity lowered",
                len(current),
                extra=extra,
            )

    def _export(self, metrics: AgentMetrics) -> None:
        agent = metrics.agent_id
        self._metrics.agent_load.labels(agent).set(metrics.load)
        self._metrics.agent_alerts.labels(agent).set(len(metrics.alerts))
        _set_or_remove(self._metrics.agent_success_ratio, agent, metrics.success_rate)
        _set_or_remove(self._metrics.agent_response_p95_seconds, agent, metrics.response_p95_seconds)


def _set_or_remove(gauge: Gauge, label: str, value: float | None) -> None:
    """Set the labelled gauge, or drop the series while there is no value (rather than export 0)."""
    if value is not None:
        gauge.labels(label).set(value)
        return
    with contextlib.suppress(KeyError):
        gauge.remove(label)
