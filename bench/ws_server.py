"""The server process of the WebSocket benchmark (`bench/ws.py` starts it; not meant to be run by hand).

It is what `orchestrion serve` runs (the same `create_app`, `prepare_database` and `uvicorn.run`
arguments; settings from `ORCHESTRION_*` variables) plus two admin-only routes the benchmark drives:

- `POST /bench/tasks?count=N`: N tasks submitted through the coordinator without running them
  (`auto_execute: false`), so the only events they get are the benchmark's;
- `POST /bench/publish?rate=R&seconds=S`: append `task.progress` events to those tasks, round robin,
  at R events per second for S seconds, one event per write transaction, on an open-loop schedule.
  Each event's data carries `ts`, the wall-clock time just before its transaction was submitted, so
  clients can measure publish-to-receive latency. Returns the last seq of each task and how far the
  schedule slipped.
"""

from __future__ import annotations

import asyncio
import functools
import gc
import os
import resource
import sys
import time
from typing import Any

import uvicorn
from fastapi import FastAPI

from orchestrion.api.app import create_app
from orchestrion.api.deps import AdminDep, RuntimeDep
from orchestrion.engines.coordinator import TaskRequest
from orchestrion.runtime import prepare_database
from orchestrion.settings import Settings
from orchestrion.store.database import WriteTx
from orchestrion.store.events import append_events

CODE = {"name": "app.py", "content": "print('benchmark')\n"}


def raise_fd_limit() -> int:
    """Raise the soft limit on open files to the hard limit (5,000 sockets need it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


class PauseWatch:
    """What stalls the server's event loop while publishing: loop lag over 20 ms and full GC passes."""

    def __init__(self) -> None:
        self.lags: list[float] = []
        self.gc_pauses: list[tuple[int, float]] = []
        self._gc_started = 0.0
        self._task: asyncio.Task[None] | None = None

    def _on_gc(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._gc_started = time.perf_counter()
        elif info.get("generation") == 2:
            self.gc_pauses.append((2, time.perf_counter() - self._gc_started))

    async def _watch(self) -> None:
        while True:
            began = time.perf_counter()
            await asyncio.sleep(0.005)
            lag = time.perf_counter() - began - 0.005
            if lag > 0.02:
                self.lags.append(lag)

    def __enter__(self) -> PauseWatch:
        gc.callbacks.append(self._on_gc)
        self._task = asyncio.get_running_loop().create_task(self._watch())
        return self

    def __exit__(self, *_: object) -> None:
        gc.callbacks.remove(self._on_gc)
        if self._task is not None:
            self._task.cancel()

    def report(self) -> dict[str, Any]:
        return {
            "loop_stalls_over_20ms": len(self.lags),
            "loop_stall_max_ms": round(max(self.lags, default=0.0) * 1000, 1),
            "full_gc_passes": len(self.gc_pauses),
            "full_gc_max_ms": round(max((d for _, d in self.gc_pauses), default=0.0) * 1000, 1),
        }


def add_bench_routes(app: FastAPI) -> None:
    tasks: list[str] = []

    @app.post("/bench/tasks")
    async def create_tasks(caller: AdminDep, runtime: RuntimeDep, count: int = 50) -> dict[str, Any]:
        request = TaskRequest(title="ws bench", task_type="code_analysis", files=[CODE], auto_execute=False)
        for _ in range(count):
            tasks.append((await runtime.coordinator.submit(caller, request)).id)
        return {"tasks": tasks}

    @app.post("/bench/publish")
    async def publish(
        _caller: AdminDep, runtime: RuntimeDep, rate: float = 200.0, seconds: float = 60.0
    ) -> dict[str, Any]:
        total = int(rate * seconds)
        last_seq: dict[str, int] = {}
        slips: list[float] = []
        write_seconds: list[float] = []
        watch = PauseWatch()
        watch.__enter__()
        started = time.monotonic()
        for index in range(total):
            due = started + index / rate
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            else:
                slips.append(-delay)
            task_id = tasks[index % len(tasks)]
            items = [("task.progress", {"n": index, "ts": time.time()})]
            began = time.perf_counter()
            await runtime.db.write(functools.partial(_append, task_id=task_id, items=items))
            write_seconds.append(time.perf_counter() - began)
        elapsed = time.monotonic() - started
        watch.__exit__()
        seqs = await runtime.db.read(functools.partial(_last_seqs, task_ids=list(tasks)))
        last_seq.update(seqs)
        write_seconds.sort()
        return {
            "events": total,
            "elapsed_seconds": round(elapsed, 3),
            "achieved_rate": round(total / elapsed, 1),
            "late_events": len(slips),
            "max_slip_ms": round(max(slips, default=0.0) * 1000, 2),
            "write_p50_ms": round(write_seconds[len(write_seconds) // 2] * 1000, 3),
            "write_p99_ms": round(write_seconds[int(len(write_seconds) * 0.99)] * 1000, 3),
            "write_max_ms": round(write_seconds[-1] * 1000, 3),
            "pauses": watch.report(),
            "last_seq": last_seq,
        }


def _append(tx: WriteTx, *, task_id: str, items: list[tuple[str, dict[str, Any]]]) -> None:
    append_events(tx, task_id, items)


def _last_seqs(conn: Any, *, task_ids: list[str]) -> dict[str, int]:
    from orchestrion.store.events import read_task_seq

    return {task_id: read_task_seq(conn, task_id) for task_id in task_ids}


def main() -> None:
    limit = raise_fd_limit()
    print(f"fd limit {limit}", file=sys.stderr)
    settings = Settings()
    app = create_app(settings)
    add_bench_routes(app)
    prepare_database(settings)
    # The arguments `orchestrion serve` passes (uvicorn defaults otherwise: websockets-sansio with
    # permessage-deflate, protocol pings every 20 s).
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level.lower(),
        access_log=False,
    )


if __name__ == "__main__":
    os.environ.setdefault("ORCHESTRION_LLM", "none")
    main()
