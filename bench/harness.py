"""The measurement every W1 contender shares: warm-up, concurrency 1, then concurrency N.

Standard library only, so that the peer environment (bench/.venv-peers) runs exactly the same code
as Orchestrion's. A contender is one coroutine function, `run_task(index)`, that performs one whole
task and returns when it is finished; the harness times it.
"""

from __future__ import annotations

import asyncio
import json
import resource
import statistics
import sys
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import asdict, dataclass
from typing import Any

RunTask = Callable[[int], Awaitable[None]]


@dataclass(frozen=True, kw_only=True)
class Plan:
    """How many tasks to run in each phase.

    Attributes:
        warmup: Sequential tasks run and discarded before concurrency 1.
        sequential: Tasks timed one after the other (concurrency 1).
        concurrent: Tasks run with `concurrency` in flight (throughput).
        concurrency: Tasks in flight during the throughput phase.
        concurrent_warmup: Tasks run at `concurrency` and discarded before the throughput phase.
    """

    warmup: int = 20
    sequential: int = 200
    concurrent: int = 1000
    concurrency: int = 50
    concurrent_warmup: int = 100


def summarise_latencies(seconds: list[float]) -> dict[str, float]:
    """p50, p95, mean, min and max in milliseconds."""
    ordered = sorted(seconds)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {
        "p50_ms": round(statistics.median(ordered) * 1000, 3),
        "p95_ms": round(p95 * 1000, 3),
        "mean_ms": round(statistics.fmean(ordered) * 1000, 3),
        "min_ms": round(ordered[0] * 1000, 3),
        "max_ms": round(ordered[-1] * 1000, 3),
    }


async def _timed(run_task: RunTask, index: int, into: list[float]) -> None:
    started = time.perf_counter()
    await run_task(index)
    into.append(time.perf_counter() - started)


async def run_sequential(run_task: RunTask, count: int, *, first_index: int = 0) -> list[float]:
    """Run `count` tasks one after the other; their wall times in seconds."""
    latencies: list[float] = []
    for i in range(count):
        await _timed(run_task, first_index + i, latencies)
    return latencies


async def run_concurrent(
    run_task: RunTask, count: int, *, concurrency: int, first_index: int = 0
) -> tuple[float, list[float]]:
    """Run `count` tasks with `concurrency` in flight; (elapsed seconds, per-task wall times)."""
    latencies: list[float] = []
    indexes = iter(range(first_index, first_index + count))

    async def lane() -> None:
        for index in indexes:
            await _timed(run_task, index, latencies)

    started = time.perf_counter()
    async with asyncio.TaskGroup() as group:
        for _ in range(min(concurrency, count)):
            group.create_task(lane())
    return time.perf_counter() - started, latencies


def peak_rss_mib() -> float:
    """Peak resident set size of this process, in MiB (Linux reports ru_maxrss in KiB)."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


async def measure(run_task: RunTask, plan: Plan) -> dict[str, Any]:
    """Run the phases of `plan`; their figures, JSON-serialisable.

    `cpu_ms_per_task` is this process's CPU time (every thread, so SQLite's too) per timed task.
    """
    index = 0
    await run_sequential(run_task, plan.warmup, first_index=index)
    index += plan.warmup
    cpu = time.process_time()
    sequential = await run_sequential(run_task, plan.sequential, first_index=index)
    c1_cpu = time.process_time() - cpu
    index += plan.sequential
    await run_concurrent(run_task, plan.concurrent_warmup, concurrency=plan.concurrency, first_index=index)
    index += plan.concurrent_warmup
    cpu = time.process_time()
    elapsed, concurrent = await run_concurrent(
        run_task, plan.concurrent, concurrency=plan.concurrency, first_index=index
    )
    cn_cpu = time.process_time() - cpu
    return {
        "plan": asdict(plan),
        "c1": {
            "tasks": len(sequential),
            **summarise_latencies(sequential),
            "cpu_ms_per_task": round(c1_cpu / len(sequential) * 1000, 3),
        },
        "cN": {
            "tasks": len(concurrent),
            "concurrency": plan.concurrency,
            "elapsed_s": round(elapsed, 3),
            "tasks_per_s": round(len(concurrent) / elapsed, 2),
            **summarise_latencies(concurrent),
            "cpu_ms_per_task": round(cn_cpu / len(concurrent) * 1000, 3),
        },
    }


def add_plan_arguments(parser: Any) -> None:
    """The command-line options every contender accepts (an argparse parser)."""
    defaults = Plan()
    parser.add_argument("--warmup", type=int, default=defaults.warmup)
    parser.add_argument("--sequential", type=int, default=defaults.sequential)
    parser.add_argument("--concurrent", type=int, default=defaults.concurrent)
    parser.add_argument("--concurrency", type=int, default=defaults.concurrency)
    parser.add_argument("--concurrent-warmup", type=int, default=defaults.concurrent_warmup)


def plan_from_arguments(args: Any) -> Plan:
    """The Plan the parsed options describe."""
    return Plan(
        warmup=args.warmup,
        sequential=args.sequential,
        concurrent=args.concurrent,
        concurrency=args.concurrency,
        concurrent_warmup=args.concurrent_warmup,
    )


def emit(result: dict[str, Any]) -> None:
    """Print a contender's result as one JSON line, the last line of its stdout."""
    sys.stdout.write(json.dumps(result) + "\n")
    sys.stdout.flush()


def contender_main(
    main_async: Callable[[Any, dict[str, Any]], Coroutine[Any, Any, dict[str, Any]]],
    *,
    description: str | None,
) -> None:
    """Command line of a contender process: `--base-url`, `--bodies` and the plan; prints its result."""
    import argparse
    from pathlib import Path

    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--bodies", required=True, help="JSON file written by bench/w1.py")
    add_plan_arguments(parser)
    args = parser.parse_args()
    emit(asyncio.run(main_async(args, json.loads(Path(args.bodies).read_text()))))
