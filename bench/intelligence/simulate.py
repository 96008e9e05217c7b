"""Intelligence benchmark: the real selector, predictor and trainer against a world with hidden truth.

For each of `--tasks` submissions (default 2,000) the simulator:
1. draws the submission's context from the world (`world.py`: type, size, target, time, incidents);
2. asks Orchestrion's `Intelligence.assess` for a team and a prediction (the same call
   `POST /api/v1/tasks` makes), reading loads and LLM error rates from the store;
3. draws the outcome from the world for that team, and writes it to a real SQLite store the way a
   worker does: the task with its plan and status, the prediction row, one agent run per member,
   the report's quality, and the LLM call ledger (costs and failed attempts);
4. calls `Intelligence.observe`, which resolves the prediction and, every `--retrain-every`
   outcomes, trains and maybe promotes a model; the simulator waits for that training before the
   next submission (real tasks take minutes, training seconds).

Reported:
- selector: cumulative regret against the oracle (the team with the highest true expected reward
  in each context), for Orchestrion's choices, for random choice (exact expectation: the mean
  over every possible team) and for always using the type's default team;
- predictor over the last `--last` tasks: Brier score and log loss of the served prediction against
  the prior's (recorded at submission in the same run) and against the truth's own probability
  (the floor); duration MAE against the per-type median (the prior's p50), and p90 coverage;
- training: count, promotions, seconds; latency of `Intelligence.predict` (features, model and
  risk factors) and of `assess` (plus store reads), p50/p99 once a learned model serves.

Usage::

    .venv/bin/python bench/intelligence/simulate.py                 # 2,000 tasks, seed 1
    .venv/bin/python bench/intelligence/simulate.py --seeds 1 2 3   # several worlds
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import platform
import random
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from world import CAPABILITIES, TASK_TYPES, TEAM_SIZE, Context, Drawn, World, arrivals

from orchestrion.agents.registry import AgentRegistry
from orchestrion.agents.spec import AgentSpec, TaskTypeSpec
from orchestrion.domain.llm import LLMCall
from orchestrion.domain.tasks import AgentRun, QualityScore, Result, StepStatus, Task, TaskStatus
from orchestrion.engines.planner import build_team_plan
from orchestrion.intelligence.features import Submission
from orchestrion.intelligence.service import Assessment, Intelligence
from orchestrion.monitoring.metrics import Metrics
from orchestrion.store import llm_calls, runs, users
from orchestrion.store import tasks as task_store
from orchestrion.store.database import Database, WriteTx
from orchestrion.store.llm_calls import percentile
from orchestrion.store.migrate import aupgrade_database

RESULTS = Path(__file__).resolve().parent.parent / "results"


def build_registry() -> AgentRegistry:
    """The world's agents and task types in a real registry (no tools: nothing really runs)."""
    registry = AgentRegistry(tool_names=())
    for task_type, agents in TASK_TYPES.items():
        for agent in agents:
            existing = registry.agents.get(agent)
            types = (*existing.task_types, task_type) if existing else (task_type,)
            registry.register_agent(
                AgentSpec(
                    id=agent,
                    name=agent,
                    description=agent,
                    capabilities=CAPABILITIES[agent],
                    task_types=types,
                )
            )
    registry.register_agent(
        AgentSpec(id="reporter", name="Reporter", description="aggregates", kind="reporter")
    )
    for task_type, agents in TASK_TYPES.items():
        registry.register_task_type(
            TaskTypeSpec(id=task_type, description=task_type, default_agents=agents[: TEAM_SIZE[task_type]])
        )
    return registry


@dataclass(frozen=True, kw_only=True)
class Record:
    """What one simulated task tells the report."""

    index: int
    task_type: str
    oracle: float
    chosen: float
    random: float
    default: float
    true_p: float
    served_p: float
    prior_p: float
    model: str
    succeeded: bool
    duration: float
    served_p50: float
    served_p90: float
    prior_p50: float
    prior_p90: float
    cost: float
    served_cost: float
    prior_cost: float
    predict_seconds: float
    assess_seconds: float


def _persist(
    tx: WriteTx,
    *,
    intelligence: Intelligence,
    registry: AgentRegistry,
    owner: str,
    submission: Submission,
    assessment: Assessment,
    ctx: Context,
    drawn: Drawn,
) -> str:
    task_id = str(uuid.uuid4())
    team = assessment.selection.team
    plan = build_team_plan(registry, team, selection=assessment.selection, step_timeout=300, max_retries=0)
    started = ctx.at + timedelta(seconds=1)
    finished = started + timedelta(seconds=drawn.duration)
    successes = sum(drawn.agent_success.values())
    status = (
        TaskStatus.SUCCEEDED
        if successes == len(team)
        else TaskStatus.FAILED
        if successes == 0
        else TaskStatus.PARTIAL
    )
    task = Task(
        id=task_id,
        owner_id=owner,
        title=f"simulated {ctx.task_type}",
        task_type=ctx.task_type,
        target=ctx.target,
        inputs={"files": [], "paths": []},
        priority=ctx.priority,
        agents=team,
        status=TaskStatus.QUEUED,
        plan=plan,
        prediction=assessment.prediction,
        created_at=ctx.at,
        queued_at=ctx.at,
    )
    task_store.insert_task(tx, task)
    intelligence.record(tx, task_id=task_id, submission=submission, assessment=assessment)
    for agent in team:
        ok = drawn.agent_success[agent]
        runs.save_run(
            tx,
            AgentRun(
                task_id=task_id,
                step_id=agent,
                agent_id=agent,
                status=StepStatus.SUCCEEDED if ok else StepStatus.FAILED,
                duration_seconds=drawn.agent_duration[agent],
                error=None if ok else "simulated failure",
            ),
        )
    if successes:
        q = drawn.quality
        runs.save_result(
            tx,
            Result(
                task_id=task_id,
                summary="simulated",
                findings=(),
                remediation=(),
                quality=QualityScore(coverage=q, grounding=q, agreement=q, completion=q),
                created_at=finished,
            ),
        )
    calls = []
    per_call_cost = drawn.cost / max(1, drawn.llm_calls - drawn.llm_failures)
    for n in range(drawn.llm_calls):
        failed = n < drawn.llm_failures
        calls.append(
            LLMCall(
                id=uuid.uuid4().hex,
                created_at=started + timedelta(seconds=n * drawn.duration / max(1, drawn.llm_calls)),
                task_id=task_id,
                step_id=team[n % len(team)],
                route="default",
                deployment="sim",
                provider="openai",
                model="sim-model",
                position=0,
                attempt=1,
                latency_seconds=1.0,
                input_tokens=0 if failed else 1000,
                output_tokens=0 if failed else 200,
                cost_usd=0.0 if failed else per_call_cost,
                outcome="error" if failed else "ok",
                error_kind="server_error" if failed else None,
            )
        )
    llm_calls.insert_llm_calls(tx, calls)
    task_store.set_task_fields(
        tx, task_id, status=status.value, started_at=started, finished_at=finished, attempt=1
    )
    return task_id


async def simulate(
    *, seed: int, tasks: int, retrain_every: int, last: int, workdir: Path, verbose: bool = False
) -> dict[str, Any]:
    """Run one world for `tasks` submissions and summarise."""
    world = World(seed=seed)
    registry = build_registry()
    url = f"sqlite+aiosqlite:///{workdir / f'sim-{seed}.db'}"
    await aupgrade_database(url)
    db = Database(url)
    intelligence = Intelligence(
        db=db,
        registry=registry,
        metrics=Metrics(),
        rng=random.Random(seed),
        retrain_every=retrain_every,
        refresh_seconds=0,
        live_ttl_seconds=0,
        seed=seed,
    )
    await intelligence.start()
    owner = (await db.write(lambda tx: users.create_user(tx, name="sim", role="operator"))).id
    records: list[Record] = []
    replay: list[tuple[Submission, Any]] = []
    started = time.perf_counter()
    times = arrivals(datetime(2026, 11, 2, tzinfo=UTC), tasks, seed)
    for index, at in enumerate(times):
        ctx = world.next_context(index, at)
        submission = Submission(
            task_type=ctx.task_type,
            submitted_at=at,
            target=ctx.target,
            input_bytes=ctx.input_bytes,
            input_files=1,
            priority=ctx.priority,
        )
        t0 = time.perf_counter()
        assessment = await intelligence.assess(submission)
        t1 = time.perf_counter()
        intelligence.predict(submission, assessment.selection)
        t2 = time.perf_counter()
        replay.append((submission, assessment.selection))
        team = assessment.selection.team
        drawn = world.draw(team, ctx)
        task_id = await db.write(
            lambda tx, s=submission, a=assessment, c=ctx, d=drawn: _persist(
                tx,
                intelligence=intelligence,
                registry=registry,
                owner=owner,
                submission=s,
                assessment=a,
                ctx=c,
                drawn=d,
            )
        )
        await intelligence.observe(task_id)
        await intelligence.wait_for_training()
        teams = world.teams(ctx.task_type)
        rewards = [world.expected_reward(t, ctx) for t in teams]
        default = tuple(TASK_TYPES[ctx.task_type][: TEAM_SIZE[ctx.task_type]])
        served, prior = assessment.prediction, assessment.prior
        records.append(
            Record(
                index=index,
                task_type=ctx.task_type,
                oracle=max(rewards),
                chosen=world.expected_reward(team, ctx),
                random=statistics.fmean(rewards),
                default=world.expected_reward(default, ctx),
                true_p=world.success_probability(team, ctx),
                served_p=served.success_probability,
                prior_p=prior.success_probability,
                model=served.model,
                succeeded=drawn.succeeded,
                duration=drawn.duration + 0.0,
                served_p50=served.duration_p50_seconds,
                served_p90=served.duration_p90_seconds,
                prior_p50=prior.duration_p50_seconds,
                prior_p90=prior.duration_p90_seconds,
                cost=drawn.cost,
                served_cost=served.cost_usd,
                prior_cost=prior.cost_usd,
                predict_seconds=t2 - t1,
                assess_seconds=t1 - t0,
            )
        )
    wall = time.perf_counter() - started
    # A quiet second measurement: re-predict the last submissions with the final model, back to back.
    tight: list[float] = []
    for submission, selection in replay[-last:]:
        t0 = time.perf_counter()
        intelligence.predict(submission, selection)
        tight.append(time.perf_counter() - t0)
    models = await intelligence.read_models(limit=10_000)
    if verbose:
        for m in reversed(models):
            print(m.version, m.sample_count, m.holdout_count, m.training_seconds, m.decision, file=sys.stderr)
    await intelligence.stop()
    await db.dispose()
    summary = summarise(
        seed=seed, records=records, models=models, last=last, wall=wall, retrain_every=retrain_every
    )
    summary["latency_ms"]["predict_replay_p50"] = round(_pct(tight, 0.5) * 1e3, 3)
    summary["latency_ms"]["predict_replay_p99"] = round(_pct(tight, 0.99) * 1e3, 3)
    return summary


def _brier(ps: list[float], ys: list[bool]) -> float:
    return statistics.fmean((p - (1.0 if y else 0.0)) ** 2 for p, y in zip(ps, ys, strict=True))


def _log_loss(ps: list[float], ys: list[bool]) -> float:
    eps = 1e-6
    return statistics.fmean(
        -math.log(min(1 - eps, max(eps, p)) if y else 1 - min(1 - eps, max(eps, p)))
        for p, y in zip(ps, ys, strict=True)
    )


def _pct(values: list[float], q: float) -> float:
    return percentile(sorted(values), q) or 0.0


def summarise(
    *, seed: int, records: list[Record], models: list[Any], last: int, wall: float, retrain_every: int
) -> dict[str, Any]:
    """The figures BENCHMARKS.md reports."""
    regret = sum(r.oracle - r.chosen for r in records)
    regret_random = sum(r.oracle - r.random for r in records)
    regret_default = sum(r.oracle - r.default for r in records)
    tail = records[-last:]
    ys = [r.succeeded for r in tail]
    durations = [r.duration for r in tail]
    brier_served = _brier([r.served_p for r in tail], ys)
    brier_prior = _brier([r.prior_p for r in tail], ys)
    mae_served = statistics.fmean(abs(r.served_p50 - r.duration) for r in tail)
    mae_prior = statistics.fmean(abs(r.prior_p50 - r.duration) for r in tail)
    learned = [r for r in records if r.model == "learned"]
    promoted = [m for m in models if m.decision.startswith("promoted")]
    return {
        "seed": seed,
        "tasks": len(records),
        "retrain_every": retrain_every,
        "wall_seconds": round(wall, 1),
        "selector": {
            "regret": round(regret, 2),
            "regret_random": round(regret_random, 2),
            "regret_default_team": round(regret_default, 2),
            "ratio_to_random": round(regret / regret_random, 4),
            "regret_by_type": {
                t: [
                    round(sum(r.oracle - r.chosen for r in records if r.task_type == t), 2),
                    round(sum(r.oracle - r.random for r in records if r.task_type == t), 2),
                ]
                for t in sorted({r.task_type for r in records})
            },
            "regret_first_half": round(sum(r.oracle - r.chosen for r in records[: len(records) // 2]), 2),
            "regret_second_half": round(sum(r.oracle - r.chosen for r in records[len(records) // 2 :]), 2),
        },
        "predictor_last": {
            "n": len(tail),
            "served_learned_share": round(sum(r.model == "learned" for r in tail) / len(tail), 3),
            "brier": round(brier_served, 4),
            "brier_prior": round(brier_prior, 4),
            "brier_truth": round(_brier([r.true_p for r in tail], ys), 4),
            "brier_reduction": round(1 - brier_served / brier_prior, 4),
            "log_loss": round(_log_loss([r.served_p for r in tail], ys), 4),
            "log_loss_prior": round(_log_loss([r.prior_p for r in tail], ys), 4),
            "duration_mae": round(mae_served, 2),
            "duration_mae_type_median": round(mae_prior, 2),
            "duration_mae_reduction": round(1 - mae_served / mae_prior, 4),
            "p90_coverage": round(
                sum(d <= r.served_p90 for d, r in zip(durations, tail, strict=True)) / len(tail), 4
            ),
            "p90_coverage_prior": round(
                sum(d <= r.prior_p90 for d, r in zip(durations, tail, strict=True)) / len(tail), 4
            ),
            "cost_mae": round(statistics.fmean(abs(r.served_cost - r.cost) for r in tail), 5),
            "cost_mae_prior": round(statistics.fmean(abs(r.prior_cost - r.cost) for r in tail), 5),
            "success_rate": round(sum(ys) / len(ys), 3),
        },
        "training": {
            "trainings": len(models),
            "promoted": len(promoted),
            "first_promoted_at_samples": min(
                (m.sample_count + m.holdout_count for m in promoted), default=None
            ),
            "seconds_median": round(statistics.median(m.training_seconds for m in models), 3)
            if models
            else None,
            "seconds_max": round(max((m.training_seconds for m in models), default=0.0), 3),
            "largest_sample": max((m.sample_count + m.holdout_count for m in models), default=0),
        },
        "latency_ms": {
            "predict_p50": round(_pct([r.predict_seconds for r in learned], 0.5) * 1e3, 3)
            if learned
            else None,
            "predict_p99": round(_pct([r.predict_seconds for r in learned], 0.99) * 1e3, 3)
            if learned
            else None,
            "assess_p50": round(_pct([r.assess_seconds for r in learned], 0.5) * 1e3, 3) if learned else None,
            "assess_p99": round(_pct([r.assess_seconds for r in learned], 0.99) * 1e3, 3)
            if learned
            else None,
            "samples": len(learned),
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1])
    parser.add_argument("--tasks", type=int, default=2000)
    parser.add_argument("--retrain-every", type=int, default=20)
    parser.add_argument("--last", type=int, default=500)
    parser.add_argument("--no-save", action="store_true")
    parser.add_argument("--verbose", action="store_true", help="print every training decision to stderr")
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            summary = asyncio.run(
                simulate(
                    seed=seed,
                    tasks=args.tasks,
                    retrain_every=args.retrain_every,
                    last=args.last,
                    workdir=Path(tmp),
                    verbose=args.verbose,
                )
            )
            print(json.dumps(summary, indent=2))
            results.append(summary)
    if not args.no_save:
        RESULTS.mkdir(exist_ok=True)
        out = RESULTS / f"intelligence-{datetime.now(UTC).date().isoformat()}.json"
        runs_so_far = json.loads(out.read_text()) if out.exists() else []
        runs_so_far.append(
            {
                "machine": f"{platform.node()} {platform.machine()} {platform.python_version()}",
                "args": vars(args),
                "results": results,
            }
        )
        out.write_text(json.dumps(runs_so_far, indent=2) + "\n")


if __name__ == "__main__":
    main()
