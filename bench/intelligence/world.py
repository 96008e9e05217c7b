"""The simulator's hidden ground truth: agents, task types, and how tasks really turn out.

Nothing here is visible to Orchestrion: the simulator submits tasks through the real selector and
predictor, draws each outcome from this world, writes it to the store like a worker would, and lets
the real trainer learn from it.

The world (seeded, so every run of a seed is the same world):
- 4 task types, each with 3 or 4 candidate agents (one of them the type's default) and a team of one
  (two for `sim_review`). Every (agent, type) pair has a true success rate in 0.35..0.97, a true
  report quality in 0.45..0.95 and a lognormal duration with its own median (8..90 s).
- What the task brings changes the odds, the same way for everyone:
  - input size: success falls smoothly above ~1 MB (to x0.6 at 30 MB); duration grows with
    the square root of size;
  - a nightly maintenance window (01:00-04:59 UTC): success x0.65;
  - provider incidents (about 12% of the timeline, in stretches): 35% of LLM calls fail, success
    x0.6 and durations x1.6 (retries); otherwise 2% of calls fail;
  - URL targets: success x0.9; high priority (8-10) does not change anything (a decoy feature).
- A team succeeds when every member does (independent draws given the context); the report quality
  is the mean of the members' qualities with noise. Reward = success x quality.
"""

from __future__ import annotations

import itertools
import math
import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta

TASK_TYPES = {
    "sim_scan": ("scan_default", "scan_fast", "scan_deep", "scan_legacy"),
    "sim_review": ("review_default", "review_strict", "review_lite", "review_ml"),
    "sim_data": ("data_default", "data_stats", "data_quick"),
    "sim_osint": ("osint_default", "osint_dns", "osint_web"),
}
TEAM_SIZE = {"sim_scan": 1, "sim_review": 2, "sim_data": 1, "sim_osint": 1}
TYPE_WEIGHTS = {"sim_scan": 0.35, "sim_review": 0.25, "sim_data": 0.2, "sim_osint": 0.2}
CAPABILITIES = {
    "scan_default": ("web", "tls"),
    "scan_fast": ("web",),
    "scan_deep": ("web", "tls", "ports"),
    "scan_legacy": ("web", "tls"),
    "review_default": ("python", "security"),
    "review_strict": ("python", "style"),
    "review_lite": ("python",),
    "review_ml": ("python", "security", "style"),
    "data_default": ("csv",),
    "data_stats": ("csv", "stats"),
    "data_quick": ("csv",),
    "osint_default": ("dns", "whois"),
    "osint_dns": ("dns",),
    "osint_web": ("dns", "web"),
}


@dataclass(frozen=True, kw_only=True)
class Truth:
    """One agent on one task type."""

    success: float
    quality: float
    duration_median: float
    cost_per_call: float


@dataclass(frozen=True, kw_only=True)
class Context:
    """What a submitted task brings (visible to Orchestrion as features)."""

    task_type: str
    at: datetime
    input_bytes: int
    target: str | None
    priority: int
    incident: bool


@dataclass(frozen=True, kw_only=True)
class Drawn:
    """How one task turned out."""

    succeeded: bool
    agent_success: dict[str, bool]
    agent_duration: dict[str, float]
    duration: float
    quality: float
    cost: float
    llm_failures: int
    llm_calls: int


@dataclass(kw_only=True)
class World:
    """The ground truth and its random streams."""

    seed: int
    truth: dict[tuple[str, str], Truth] = field(default_factory=dict)
    rng: random.Random = field(init=False)
    _incident_until: int = -1

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        setup = random.Random(self.seed * 7919 + 1)
        for task_type, agents in TASK_TYPES.items():
            for agent in agents:
                self.truth[(agent, task_type)] = Truth(
                    success=setup.uniform(0.6, 0.99),
                    quality=setup.uniform(0.45, 0.95),
                    duration_median=math.exp(setup.uniform(math.log(8), math.log(90))),
                    cost_per_call=setup.uniform(0.0005, 0.01),
                )

    def next_context(self, index: int, at: datetime) -> Context:
        """The next submission's context (incidents come in stretches of 20-80 tasks)."""
        r = self.rng
        if index > self._incident_until and r.random() < 0.004:
            self._incident_until = index + r.randint(20, 80)
        task_type = r.choices(list(TYPE_WEIGHTS), weights=list(TYPE_WEIGHTS.values()))[0]
        size = int(math.exp(r.gauss(math.log(300_000), 2.2)))
        target = None
        if task_type in ("sim_scan", "sim_osint"):
            target = r.choice(
                ["https://app.example.test/", "app.example.test", "203.0.113.7", "app.example.test:8443"]
            )
        return Context(
            task_type=task_type,
            at=at,
            input_bytes=max(100, min(size, 200_000_000)),
            target=target,
            priority=r.randint(1, 10),
            incident=index <= self._incident_until,
        )

    def context_factor(self, ctx: Context) -> float:
        """How the context scales a team's success."""
        factor = 1.0
        size_mb = ctx.input_bytes / 1e6
        factor *= 1.0 - 0.9 / (1.0 + math.exp(-3.0 * (math.log10(max(size_mb, 1e-6)) - 0.5)))
        if 1 <= ctx.at.hour <= 4:
            factor *= 0.3
        if ctx.incident:
            factor *= 0.2
        if ctx.target is not None and "://" in ctx.target:
            factor *= 0.85
        return factor

    def success_probability(self, team: tuple[str, ...], ctx: Context) -> float:
        """True probability that the whole team succeeds."""
        p = self.context_factor(ctx)
        for agent in team:
            p *= self.truth[(agent, ctx.task_type)].success
        return p

    def expected_reward(self, team: tuple[str, ...], ctx: Context) -> float:
        """Success probability x mean true quality: what the selector should maximise."""
        quality = sum(self.truth[(a, ctx.task_type)].quality for a in team) / len(team)
        return self.success_probability(team, ctx) * quality

    def teams(self, task_type: str) -> list[tuple[str, ...]]:
        """Every team the selector could choose for a type."""
        return list(itertools.combinations(TASK_TYPES[task_type], TEAM_SIZE[task_type]))

    def draw(self, team: tuple[str, ...], ctx: Context) -> Drawn:
        """Draw a task's outcome."""
        r = self.rng
        context_ok = r.random() < self.context_factor(ctx)
        agent_success = {a: context_ok and r.random() < self.truth[(a, ctx.task_type)].success for a in team}
        durations = {}
        for agent in team:
            t = self.truth[(agent, ctx.task_type)]
            scale = (
                t.duration_median * math.sqrt(1 + ctx.input_bytes / 300_000) * (1.6 if ctx.incident else 1.0)
            )
            durations[agent] = scale * math.exp(r.gauss(0, 0.35))
        succeeded = all(agent_success.values())
        duration = max(durations.values()) + 2.0 + r.expovariate(1 / 1.5)
        qualities = [self.truth[(a, ctx.task_type)].quality for a in team]
        quality = min(1.0, max(0.0, sum(qualities) / len(qualities) + r.gauss(0, 0.05)))
        calls = 0
        failures = 0
        cost = 0.0
        failure_rate = 0.45 if ctx.incident else 0.02
        for agent in team:
            n = 2 + int(math.log1p(ctx.input_bytes / 50_000))
            for _ in range(n):
                calls += 1
                if r.random() < failure_rate:
                    failures += 1
                else:
                    cost += self.truth[(agent, ctx.task_type)].cost_per_call * math.exp(r.gauss(0, 0.2))
        return Drawn(
            succeeded=succeeded,
            agent_success=agent_success,
            agent_duration=durations,
            duration=duration,
            quality=quality,
            cost=cost,
            llm_failures=failures,
            llm_calls=calls,
        )


def arrivals(start: datetime, count: int, seed: int) -> list[datetime]:
    """Submission times: a Poisson stream averaging one task every 3 minutes."""
    r = random.Random(seed * 31 + 7)
    at = start
    out = []
    for _ in range(count):
        at += timedelta(seconds=r.expovariate(1 / 180))
        out.append(at)
    return out
