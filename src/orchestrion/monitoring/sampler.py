"""The system sampler: host and process resources, task statistics and agent metrics, every few seconds.

Each tick (every `system_sample_seconds`; the first one at start):

1. psutil, in a thread (its calls block): the host's CPU busy share since the previous tick, memory
   in use, the fill of the filesystem holding ORCHESTRION_HOME, network bytes per second sent and
   received since the previous tick (host-wide; absent on the first tick), and this process's CPU
   share (100 is one core busy; it can exceed 100), resident memory and open file descriptors
   (handles on Windows).
2. The store: tasks per status (one grouped query); the queue backlog, tasks `queued` across every
   worker sharing the database; and over the tasks that finished in the last `task_window_seconds`
   (default 15 minutes, at most the latest 5000; succeeded, partial and failed count, cancelled does
   not): their number, the failed share and the nearest-rank 95th percentile duration (started to
   finished). Share and percentile are absent when none finished.
3. The LLM circuits open now (a breaker whose cooldown has passed reads half-open, not open), this
   process's in-memory queue depth, and the agents' metrics (the agent monitor recomputes its gauges;
   each agent's count of recent runs is exported for alert guards).
4. The gauges below are set, the sample becomes `latest`, a `system.metrics` notice is published on
   the `system` channel, and the `after_sample` hooks run (the alert manager evaluates its rules).

Gauges: ``orchestrion_system_cpu_percent``, ``orchestrion_system_memory_percent``,
``orchestrion_system_disk_percent``, ``orchestrion_system_network_bytes_per_second{direction}``
(``sent``, ``received``), ``orchestrion_process_cpu_percent``,
``orchestrion_process_resident_memory_bytes``, ``orchestrion_process_open_fds``,
``orchestrion_queue_backlog``, ``orchestrion_tasks_recent_finished``,
``orchestrion_tasks_recent_failure_ratio``, ``orchestrion_tasks_recent_duration_p95_seconds``,
``orchestrion_llm_circuits_open``, ``orchestrion_agent_recent_runs{agent}``; and the existing
``orchestrion_queue_depth``. (prometheus_client's own ``process_*`` collector is not in the registry;
these names carry the ``orchestrion_`` prefix anyway.)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

import psutil
from prometheus_client import CollectorRegistry, Gauge
from sqlalchemy import Connection

from orchestrion.bus.base import EventBus
from orchestrion.domain.events import Channel, EventType, Notice
from orchestrion.domain.tasks import TaskStatus, utcnow
from orchestrion.store import tasks as task_store
from orchestrion.store.database import Database
from orchestrion.store.llm_calls import percentile

logger = logging.getLogger(__name__)

TASK_WINDOW_SECONDS = 900.0
TASK_WINDOW_LIMIT = 5000


class AgentWindow(Protocol):
    """What the sampler reads of an agent's metrics."""

    @property
    def agent_id(self) -> str: ...

    @property
    def recent_runs(self) -> int: ...


class AgentSource(Protocol):
    """Recomputes every agent's metrics (the agent monitor)."""

    async def read_all(self) -> Sequence[AgentWindow]: ...


SampleHook = Callable[["SystemSample"], Awaitable[None]]
"""Runs after each sample (the alert manager's evaluation)."""


@dataclass(frozen=True, kw_only=True)
class HostSample:
    """Host and process resources (definitions in the module docstring)."""

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


@dataclass(frozen=True, kw_only=True)
class TaskStats:
    """Task statistics from the store (definitions in the module docstring)."""

    by_status: dict[str, int]
    backlog: int
    window_seconds: float
    recent_finished: int
    recent_failure_ratio: float | None
    recent_duration_p95_seconds: float | None


@dataclass(frozen=True, kw_only=True)
class SystemSample:
    """One tick of the sampler.

    Attributes:
        sampled_at: When (UTC).
        host: Host and process resources.
        tasks: Task statistics.
        queue_depth: Runs waiting in this process's in-memory queue.
        open_circuits: LLM deployments whose circuit is open now.
    """

    sampled_at: datetime
    host: HostSample
    tasks: TaskStats
    queue_depth: int
    open_circuits: int

    def to_json(self) -> dict[str, Any]:
        """The sample as JSON-ready data (the `system.metrics` notice payload)."""
        data = asdict(self)
        data["sampled_at"] = self.sampled_at.isoformat()
        return data


class _HostProbe:
    """psutil readings with the state rates need; used from one thread at a time."""

    def __init__(self, disk_path: Path) -> None:
        self._disk_path = disk_path
        self._process = psutil.Process()
        self._cpu: tuple[float, float] | None = None
        self._net: tuple[float, int, int] | None = None

    def measure(self) -> HostSample:
        if self._cpu is None:
            # Rates need two readings: prime them, then measure a short interval.
            self._cpu = _cpu_busy_total()
            self._process.cpu_percent(interval=None)
            time.sleep(0.1)
        busy, total = _cpu_busy_total()
        cpu = 100.0 * (busy - self._cpu[0]) / (total - self._cpu[1]) if total > self._cpu[1] else 0.0
        self._cpu = (busy, total)
        memory = psutil.virtual_memory()
        disk = psutil.disk_usage(str(self._disk_path))
        sent_rate, received_rate = self._network_rates()
        with self._process.oneshot():
            process_cpu = self._process.cpu_percent(interval=None)
            rss = self._process.memory_info().rss
            fds = _open_fds(self._process)
        return HostSample(
            cpu_percent=round(max(0.0, min(100.0, cpu)), 2),
            memory_percent=float(memory.percent),
            memory_used_bytes=int(memory.total - memory.available),
            memory_total_bytes=int(memory.total),
            disk_path=str(self._disk_path),
            disk_percent=float(disk.percent),
            disk_used_bytes=int(disk.used),
            disk_total_bytes=int(disk.total),
            network_sent_bytes_per_second=sent_rate,
            network_received_bytes_per_second=received_rate,
            process_cpu_percent=float(process_cpu),
            process_resident_memory_bytes=int(rss),
            process_open_fds=fds,
        )

    def _network_rates(self) -> tuple[float | None, float | None]:
        counters = psutil.net_io_counters()
        if counters is None:
            return None, None
        now = time.monotonic()
        previous, self._net = self._net, (now, int(counters.bytes_sent), int(counters.bytes_recv))
        if previous is None or now <= previous[0]:
            return None, None
        elapsed = now - previous[0]
        sent, received = counters.bytes_sent - previous[1], counters.bytes_recv - previous[2]
        if sent < 0 or received < 0:  # the counters wrapped or an interface went away
            return None, None
        return round(sent / elapsed, 1), round(received / elapsed, 1)


def _cpu_busy_total() -> tuple[float, float]:
    """Busy and total CPU seconds of the host (our own readings: psutil.cpu_percent's are shared)."""
    times = psutil.cpu_times()
    total = sum(times)
    # On Linux guest time is already counted in user and nice time.
    total -= getattr(times, "guest", 0.0) + getattr(times, "guest_nice", 0.0)
    idle = times.idle + getattr(times, "iowait", 0.0)
    return total - idle, total


def _open_fds(process: psutil.Process) -> int | None:
    with contextlib.suppress(psutil.Error, AttributeError):
        if sys.platform == "win32":
            return int(process.num_handles())
        return int(process.num_fds())
    return None


class SystemSampler:
    """Samples every `interval` seconds from `start` to `stop` (definitions in the module docstring).

    Args:
        db: The store task statistics are read from.
        bus: Where `system.metrics` notices are published.
        registry: Where the gauges are registered.
        disk_path: A path on the filesystem whose fill is measured (ORCHESTRION_HOME).
        interval: Seconds between ticks.
        queue_depth: This process's queue depth.
        open_circuits: The number of LLM circuits open now.
        agents: Recomputes the agents' metrics (None: no agent metrics).
        queue_gauge: An existing gauge kept equal to `queue_depth` (``orchestrion_queue_depth``).
        task_window_seconds: How far back finished tasks count towards the task statistics.
        clock: The time of samples (UTC).
    """

    def __init__(
        self,
        *,
        db: Database,
        bus: EventBus,
        registry: CollectorRegistry,
        disk_path: Path,
        interval: float,
        queue_depth: Callable[[], int],
        open_circuits: Callable[[], int],
        agents: AgentSource | None = None,
        queue_gauge: Gauge | None = None,
        task_window_seconds: float = TASK_WINDOW_SECONDS,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._db = db
        self._bus = bus
        self._probe = _HostProbe(disk_path)
        self.interval = interval
        self._queue_depth = queue_depth
        self._open_circuits = open_circuits
        self._agents = agents
        self.task_window_seconds = task_window_seconds
        self._clock = clock
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self.after_sample: list[SampleHook] = []
        self.latest: SystemSample | None = None

        def gauge(name: str, doc: str, labels: Sequence[str] = ()) -> Gauge:
            return Gauge(name, doc, list(labels), registry=registry)

        self._cpu = gauge("orchestrion_system_cpu_percent", "Host CPU busy share since the previous sample.")
        self._memory = gauge("orchestrion_system_memory_percent", "Host memory in use.")
        self._disk = gauge("orchestrion_system_disk_percent", "Fill of the filesystem holding the home dir.")
        self._network = gauge(
            "orchestrion_system_network_bytes_per_second",
            "Host network throughput since the previous sample.",
            ["direction"],
        )
        self._process_cpu = gauge(
            "orchestrion_process_cpu_percent", "This process's CPU use (100: one core busy)."
        )
        self._rss = gauge("orchestrion_process_resident_memory_bytes", "This process's resident memory.")
        self._fds = gauge("orchestrion_process_open_fds", "This process's open file descriptors.")
        self._backlog = gauge(
            "orchestrion_queue_backlog", "Tasks queued for a worker, across every worker of the database."
        )
        self._recent_finished = gauge(
            "orchestrion_tasks_recent_finished", "Tasks that finished in the recent window (not cancelled)."
        )
        self._failure_ratio = gauge(
            "orchestrion_tasks_recent_failure_ratio",
            "Failed share of the tasks finished in the recent window.",
        )
        self._duration_p95 = gauge(
            "orchestrion_tasks_recent_duration_p95_seconds",
            "95th percentile duration of the tasks finished in the recent window.",
        )
        self._circuits = gauge("orchestrion_llm_circuits_open", "LLM deployments whose circuit is open now.")
        self._agent_runs = gauge(
            "orchestrion_agent_recent_runs", "Runs in each agent's metrics window.", ["agent"]
        )
        self._queue_gauge = queue_gauge

    def start(self) -> None:
        """Sample now and then every `interval` seconds."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="system-sampler")

    async def stop(self) -> None:
        """Stop sampling."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def sample(self) -> SystemSample:
        """Take one sample: set the gauges, publish the notice (hooks are the loop's business)."""
        async with self._lock:
            host = await asyncio.to_thread(self._probe.measure)
            now = self._clock()
            since = now - timedelta(seconds=self.task_window_seconds)
            tasks = await self._db.read(lambda conn: _task_stats(conn, since, self.task_window_seconds))
            agents = await self._agents.read_all() if self._agents is not None else []
            sample = SystemSample(
                sampled_at=now,
                host=host,
                tasks=tasks,
                queue_depth=self._queue_depth(),
                open_circuits=self._open_circuits(),
            )
            self._export(sample, agents)
            self.latest = sample
        await self._bus.publish_notice(
            Notice(
                channel=Channel.SYSTEM.value,
                type=EventType.SYSTEM_METRICS.value,
                data=sample.to_json(),
                created_at=sample.sampled_at,
            )
        )
        return sample

    async def _run(self) -> None:
        while True:
            try:
                sample = await self.sample()
                for hook in self.after_sample:
                    await hook(sample)
            except Exception:
                logger.exception("system sample failed")
            await asyncio.sleep(self.interval)

    def _export(self, sample: SystemSample, agents: Sequence[AgentWindow]) -> None:
        host, tasks = sample.host, sample.tasks
        self._cpu.set(host.cpu_percent)
        self._memory.set(host.memory_percent)
        self._disk.set(host.disk_percent)
        _set_or_remove(self._network, host.network_sent_bytes_per_second, "sent")
        _set_or_remove(self._network, host.network_received_bytes_per_second, "received")
        self._process_cpu.set(host.process_cpu_percent)
        self._rss.set(host.process_resident_memory_bytes)
        if host.process_open_fds is not None:
            self._fds.set(host.process_open_fds)
        self._backlog.set(tasks.backlog)
        self._recent_finished.set(tasks.recent_finished)
        _set_or_remove(self._failure_ratio, tasks.recent_failure_ratio)
        _set_or_remove(self._duration_p95, tasks.recent_duration_p95_seconds)
        self._circuits.set(sample.open_circuits)
        for agent in agents:
            self._agent_runs.labels(agent.agent_id).set(agent.recent_runs)
        if self._queue_gauge is not None:
            self._queue_gauge.set(sample.queue_depth)


def _task_stats(conn: Connection, since: datetime, window_seconds: float) -> TaskStats:
    by_status = task_store.count_tasks_by_status(conn)
    finished = task_store.read_finished_tasks(conn, since=since, limit=TASK_WINDOW_LIMIT)
    failed = sum(1 for status, _ in finished if status == TaskStatus.FAILED.value)
    durations = sorted(d for _, d in finished if d is not None)
    return TaskStats(
        by_status=by_status,
        backlog=by_status.get(TaskStatus.QUEUED.value, 0),
        window_seconds=window_seconds,
        recent_finished=len(finished),
        recent_failure_ratio=failed / len(finished) if finished else None,
        recent_duration_p95_seconds=percentile(durations, 0.95),
    )


def _set_or_remove(gauge: Gauge, value: float | None, *labels: str) -> None:
    """Set the gauge; without a value drop the series, or set NaN when it has no labels (not a false 0)."""
    if value is not None:
        (gauge.labels(*labels) if labels else gauge).set(value)
    elif labels:
        with contextlib.suppress(KeyError):
            gauge.remove(*labels)
    else:
        gauge.set(math.nan)
