"""Parallel engine: a 1,000-item batch with 200 ms of simulated LLM latency per item.

A real Runtime on a SQLite file in a temporary directory; its `default` route is a ScriptedProvider
that sleeps 200 ms per call and counts the calls in flight. Each run submits one `parallel_processing`
task (`operation=classify`) through `coordinator.submit` and waits for its terminal event on the bus,
so the wall time covers planning, persisting the plan (1,001 steps), the queue, every map step's
checkpoint and the reduce. Measured per run: wall time; the concurrency the provider actually saw
(most calls in flight, and the time-average over the run); the overhead per item over the 200 ms
floor (`wall x concurrency / items - 0.2 s`: what one lane spends per item beyond the LLM's own
latency); database write transactions (calls to `Database.write`) and rows written.

Sequential (concurrency 1) is measured on 100 items and, unless `--no-full-sequential`, on all
1,000 when the 100-item run predicts under four minutes. Writes `bench/results/parallel-<date>.json`.

    .venv/bin/python bench/parallel.py [--items 1000] [--concurrency 16 32 64]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import platform
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Connection, func, select

from orchestrion.domain.events import EventType
from orchestrion.engines.coordinator import Caller, TaskRequest
from orchestrion.providers.base import ChatRequest, ChatResponse
from orchestrion.runtime import Runtime
from orchestrion.settings import Settings
from orchestrion.store.database import WriteTx
from orchestrion.store.migrate import aupgrade_database
from orchestrion.store.models import AgentRunRow, EventRow, EvidenceRow, LLMCallRow, StepRow
from orchestrion.store.users import get_user_by_name
from orchestrion.testing import ScriptedProvider

LATENCY = 0.2
RESULTS = Path(__file__).resolve().parent / "results"
T = TypeVar("T")


def classify(request: ChatRequest) -> dict[str, Any]:
    """A deterministic classifier: the label depends on the item's text."""
    item = request.messages[-1].content.split("Item:\n", 1)[-1].split("\n\n", 1)[0]
    return {"label": ("even", "odd")[len(item) % 2], "output": f"{len(item)} characters."}


class InflightProvider(ScriptedProvider):
    """A ScriptedProvider that records how many calls are in flight, and for how long."""

    def __init__(self) -> None:
        super().__init__(default=classify, delay=LATENCY, name="bench", model="scripted-200ms")
        self.reset()

    def reset(self) -> None:
        """Start a new measurement."""
        self.calls = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self._area = 0.0
        self._since = time.perf_counter()
        self.first_call: float | None = None
        self.last_return: float | None = None

    def _move(self, by: int) -> None:
        now = time.perf_counter()
        self._area += self.in_flight * (now - self._since)
        self._since = now
        self.in_flight += by
        self.max_in_flight = max(self.max_in_flight, self.in_flight)

    async def complete(self, request: ChatRequest) -> ChatResponse:
        """Answer after the delay, counting the call in flight meanwhile."""
        self.calls += 1
        if self.first_call is None:
            self.first_call = time.perf_counter()
        self._move(+1)
        try:
            return await super().complete(request)
        finally:
            self._move(-1)
            self.last_return = time.perf_counter()

    def average_in_flight(self, over_seconds: float) -> float:
        """Calls in flight, averaged over `over_seconds` since the last reset."""
        self._move(0)
        return self._area / over_seconds if over_seconds > 0 else 0.0


class CountingWrites:
    """Counts the write transactions (units) the runtime submits to its database."""

    def __init__(self, runtime: Runtime) -> None:
        self.count = 0
        original = runtime.db.write

        async def write(unit: Callable[[WriteTx], T]) -> T:
            self.count += 1
            return await original(unit)

        runtime.db.write = write  # type: ignore[method-assign]


@contextlib.asynccontextmanager
async def bench_runtime(
    home: Path, provider: InflightProvider, max_concurrency: int
) -> AsyncIterator[Runtime]:
    settings = Settings(
        _env_file=None,
        home=home,
        llm="none",
        # Two parallel runs per process may start at once (half the workers): the measured task never
        # falls back to the team engine because the warm-up's run had not released its slot yet.
        workers=4,
        parallel_concurrency=max_concurrency,
        admin_api_key="orc_bench_" + "x" * 32,
        jwt_secret="bench-secret-" + "y" * 32,
        system_sample_seconds=3600,
        retrain_every=0,
    )
    await aupgrade_database(settings.resolved_database_url)
    runtime = Runtime.create(settings, routes={"default": [provider]})
    await runtime.bootstrap_admin()
    await runtime.start()
    try:
        yield runtime
    finally:
        await runtime.stop()


async def rows(runtime: Runtime) -> dict[str, int]:
    def count(conn: Connection) -> dict[str, int]:
        tables = {
            "steps": StepRow,
            "events": EventRow,
            "agent_runs": AgentRunRow,
            "evidence": EvidenceRow,
            "llm_calls": LLMCallRow,
        }
        return {
            name: conn.execute(select(func.count()).select_from(t)).scalar_one() for name, t in tables.items()
        }

    return await runtime.db.read(count)


async def run_batch(
    runtime: Runtime,
    caller: Caller,
    provider: InflightProvider,
    writes: CountingWrites,
    *,
    items: int,
    concurrency: int,
) -> dict[str, Any]:
    """Submit one batch and wait for its outcome; the figures of that run."""
    batch = [f"item number {i} of the benchmark batch" + "!" * (i % 7) for i in range(items)]
    before_rows, before_writes = await rows(runtime), writes.count
    subscription = runtime.bus.subscribe(None, maxsize=1_000_000)
    provider.reset()
    started = time.perf_counter()
    try:
        task = await runtime.coordinator.submit(
            caller,
            TaskRequest(
                title=f"bench {items} items at {concurrency}",
                task_type="parallel_processing",
                items=batch,
                options={
                    "instruction": "Is the length even or odd?",
                    "operation": "classify",
                    "concurrency": concurrency,
                },
            ),
        )
        submitted = time.perf_counter() - started
        while True:
            event = await subscription.get()
            if event is None:
                raise RuntimeError("the event subscription closed")
            if event.task_id == task.id and event.type in (EventType.TASK_COMPLETED, EventType.TASK_FAILED):
                break
    finally:
        runtime.bus.unsubscribe(subscription)
    wall = time.perf_counter() - started
    finished = await runtime.coordinator.get(caller, task.id)
    if finished.engine != "parallel":
        raise RuntimeError(f"the batch ran on the {finished.engine} engine, not the parallel one")
    if finished.status.value != "succeeded":
        raise RuntimeError(f"the batch ended {finished.status.value}: {finished.error}")
    after_rows = await rows(runtime)
    ideal = math.ceil(items / concurrency) * LATENCY
    return {
        "items": items,
        "concurrency": concurrency,
        "engine": finished.engine,
        "wall_s": round(wall, 3),
        "submit_s": round(submitted, 3),
        "ideal_wall_s": round(ideal, 3),
        "efficiency": round(ideal / wall, 4),
        "items_per_s": round(items / wall, 2),
        "llm_calls": provider.calls,
        "max_in_flight": provider.max_in_flight,
        "avg_in_flight": round(provider.average_in_flight(wall), 2),
        "overhead_per_item_ms": round((wall * concurrency / items - LATENCY) * 1000, 2),
        "db_write_transactions": writes.count - before_writes,
        "rows_written": {k: after_rows[k] - before_rows[k] for k in after_rows},
    }


async def timed(label: str, coro: Awaitable[dict[str, Any]]) -> dict[str, Any]:
    print(f"{label} ...", flush=True)
    result = await coro
    print(json.dumps(result), flush=True)
    return result


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    provider = InflightProvider()
    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="orchestrion-parallel-") as home:
        async with bench_runtime(Path(home), provider, max(args.concurrency)) as runtime:
            writes = CountingWrites(runtime)
            admin = await runtime.db.read(lambda conn: get_user_by_name(conn, "admin"))
            assert admin is not None
            caller = Caller(user_id=admin.id, role="admin")
            # Warm-up: imports, statement caches, the first SQLite pages.
            await run_batch(runtime, caller, provider, writes, items=20, concurrency=4)
            for concurrency in args.concurrency:
                runs.append(
                    await timed(
                        f"{args.items} items at concurrency {concurrency}",
                        run_batch(
                            runtime, caller, provider, writes, items=args.items, concurrency=concurrency
                        ),
                    )
                )
            sample = await timed(
                "100 items sequentially",
                run_batch(runtime, caller, provider, writes, items=100, concurrency=1),
            )
            runs.append(sample)
            predicted = sample["wall_s"] * args.items / 100
            if args.full_sequential and predicted < 240:
                runs.append(
                    await timed(
                        f"{args.items} items sequentially",
                        run_batch(runtime, caller, provider, writes, items=args.items, concurrency=1),
                    )
                )
    return {
        "name": "parallel",
        "date": datetime.now(UTC).date().isoformat(),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "latency_s": LATENCY,
        "sequential_prediction_s": round(predicted, 1),
        "runs": runs,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--items", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[16, 32, 64])
    parser.add_argument("--no-full-sequential", dest="full_sequential", action="store_false")
    args = parser.parse_args()
    result = asyncio.run(main_async(args))
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"parallel-{result['date']}.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
