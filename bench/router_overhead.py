"""Provider-router benchmark 1: what `ProviderRouter.complete` adds to one LLM call, sequentially.

Five ways to make the same chat completion against the same local vendor server (a separate
process, latency 0, no faults), one call at a time:

1. floor: a bare `httpx.AsyncClient.post` of the same JSON body, the JSON reply parsed;
2. provider: `OpenAICompatProvider.complete` (body building, error mapping, response parsing);
3. router: `ProviderRouter.complete` over one deployment with the full wrapper chain and default
   options (retry > breaker > budget > limits > accounting > timeout > adapter), the ledger
   metrics-only (`CallLedger(None, metrics)`);
4. router_sqlite: the same with the ledger writing every call to a real SQLite file in batches. The
   background flusher (every 0.25 s) runs during the calls, so its writer thread's work is in their
   latency and CPU; what is still pending after each block is flushed and timed separately
   ("flush"). Blocks are long enough (500 calls, about half a second) for the flusher to run in them;
5. litellm: LiteLLM's `Router.acompletion` over one deployment, in bench/.venv-peers, as a
   long-lived subprocess (bench/peers/litellm_router.py) that runs a block when asked.

After a warm-up of each, the variants run in interleaved blocks (default 10 rounds x 500 calls,
the order rotated each round), so that the noise of the shared VM falls on all of them alike.
Reported per variant: p50, p99 and mean per call, CPU per call (all threads of the process), and
the overhead over the floor at p50 and p99. Results go to stdout and are appended to
bench/results/router-<date>.json under "overhead".

Usage::

    bash bench/setup_peers.sh && .venv/bin/python bench/router_overhead.py
    .venv/bin/python bench/router_overhead.py --rounds 3 --calls 100 --no-peer     # a quick look
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

import httpx

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from w1 import PEERS_PYTHON, VendorProcess, contender_env, machine  # noqa: E402

from orchestrion.monitoring.metrics import Metrics  # noqa: E402
from orchestrion.providers.accounting import CallLedger  # noqa: E402
from orchestrion.providers.base import ChatRequest, Message  # noqa: E402
from orchestrion.providers.deployment import build_deployment  # noqa: E402
from orchestrion.providers.openai_compat import OpenAICompatProvider, chat_completion_body  # noqa: E402
from orchestrion.providers.options import DeploymentConfig, Price  # noqa: E402
from orchestrion.providers.router import ProviderRouter  # noqa: E402
from orchestrion.store.database import Database  # noqa: E402
from orchestrion.store.migrate import upgrade_database  # noqa: E402

MODEL = "test-model"
ROUTE = "default"
REQUEST = ChatRequest(
    messages=(
        Message(role="system", content="You are a code reviewer. Answer in one short paragraph."),
        Message(role="user", content="Review this function:\n\ndef add(a, b):\n    return a + b\n"),
    ),
    max_tokens=256,
    temperature=0.2,
)
BODY = chat_completion_body(REQUEST, model=MODEL)
# What OpenAICompatProvider sends without an API key.
HEADERS = {"Content-Type": "application/json", "Accept": "application/json"}
PRICE = Price(input_per_mtok=0.15, output_per_mtok=0.60)
VARIANTS = ("floor", "provider", "router", "router_sqlite", "litellm")
PEER_TIMEOUT_SECONDS = 300


def percentile(ordered: list[float], share: float) -> float:
    """The nearest-rank percentile of an ascending list."""
    return ordered[min(len(ordered) - 1, max(0, round(share * (len(ordered) - 1))))]


def summarise(latencies_ns: list[int]) -> dict[str, float]:
    """p50, p90, p99, mean, min and max in milliseconds."""
    ordered = sorted(latencies_ns)
    return {
        "calls": len(ordered),
        "p50_ms": round(statistics.median(ordered) / 1e6, 4),
        "p90_ms": round(percentile(ordered, 0.90) / 1e6, 4),
        "p99_ms": round(percentile(ordered, 0.99) / 1e6, 4),
        "mean_ms": round(statistics.fmean(ordered) / 1e6, 4),
        "min_ms": round(ordered[0] / 1e6, 4),
        "max_ms": round(ordered[-1] / 1e6, 4),
    }


def append_result(results_dir: Path, started: datetime, key: str, run: dict[str, Any]) -> Path:
    """Append `run` to the list under `key` in bench/results/router-<date>.json (created if missing)."""
    results_dir.mkdir(parents=True, exist_ok=True)
    out = results_dir / f"router-{started.date().isoformat()}.json"
    report: dict[str, Any] = json.loads(out.read_text()) if out.exists() else {}
    report.setdefault(key, []).append(run)
    out.write_text(json.dumps(report, indent=2) + "\n")
    return out


class LiteLLMPeer:
    """bench/peers/litellm_router.py in bench/.venv-peers: one process, a block of calls per request."""

    def __init__(self, base_url: str) -> None:
        self._base_url = base_url
        self._process: asyncio.subprocess.Process | None = None
        self.version = ""

    async def start(self) -> None:
        self._process = await asyncio.create_subprocess_exec(
            str(PEERS_PYTHON),
            str(BENCH / "peers" / "litellm_router.py"),
            "--base-url",
            self._base_url,
            "--body",
            json.dumps(BODY),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            env=contender_env(),
            limit=2**24,
        )
        hello = await self._reply()
        self.version = hello["version"]

    async def _reply(self) -> dict[str, Any]:
        assert self._process is not None and self._process.stdout is not None
        line = await asyncio.wait_for(self._process.stdout.readline(), PEER_TIMEOUT_SECONDS)
        if not line:
            raise RuntimeError(f"the LiteLLM peer exited ({await self._process.wait()})")
        reply: dict[str, Any] = json.loads(line)
        return reply

    async def block(self, calls: int) -> tuple[list[int], int]:
        """Run `calls` calls in the peer; their latencies and the peer's CPU time, in ns."""
        assert self._process is not None and self._process.stdin is not None
        self._process.stdin.write(f"{calls}\n".encode())
        await self._process.stdin.drain()
        reply = await self._reply()
        return reply["latencies_ns"], reply["cpu_ns"]

    async def stop(self) -> None:
        if self._process is None:
            return
        if self._process.stdin is not None:
            self._process.stdin.close()
        try:
            await asyncio.wait_for(self._process.wait(), 30)
        except TimeoutError:
            self._process.kill()
            await self._process.wait()


Call = Callable[[], Awaitable[None]]


async def run_block(call: Call, calls: int) -> tuple[list[int], int]:
    """Make `calls` calls one after the other: their latencies and this process's CPU time, in ns."""
    latencies: list[int] = []
    cpu = time.process_time_ns()
    for _ in range(calls):
        started = time.perf_counter_ns()
        await call()
        latencies.append(time.perf_counter_ns() - started)
    return latencies, time.process_time_ns() - cpu


def router_for(
    base_url: str, ledger_db: Database | None, name: str
) -> tuple[ProviderRouter, CallLedger, Metrics]:
    """A router over one deployment with the full chain and default options."""
    metrics = Metrics()
    ledger = CallLedger(ledger_db, metrics)
    adapter = OpenAICompatProvider(base_url=base_url, model=MODEL, name="openai_compat")
    config = DeploymentConfig(name=name, provider="openai_compat", model=MODEL)
    deployment = build_deployment(adapter, config, price=PRICE, ledger=ledger, metrics=metrics)
    return ProviderRouter({ROUTE: [deployment]}, ledger=ledger, metrics=metrics), ledger, metrics


async def measure(args: argparse.Namespace, server: VendorProcess, scratch: Path) -> dict[str, Any]:
    """Warm up every variant, then run the interleaved blocks; the figures."""
    url = server.base_url + "/chat/completions"
    db_url = f"sqlite+aiosqlite:///{scratch / 'ledger.db'}"
    await asyncio.to_thread(upgrade_database, db_url)
    db = Database(db_url)
    client = httpx.AsyncClient(
        timeout=httpx.Timeout(connect=10.0, read=120.0, write=120.0, pool=10.0), trust_env=False
    )
    provider = OpenAICompatProvider(base_url=server.base_url, model=MODEL)
    router, _, router_metrics = router_for(server.base_url, None, "bench-metrics-only")
    router_sqlite, ledger_sqlite, _ = router_for(server.base_url, db, "bench-sqlite")
    peer = LiteLLMPeer(server.base_url) if args.peer else None

    async def floor() -> None:
        response = await client.post(url, json=BODY, headers=HEADERS)
        response.raise_for_status()
        if not response.json()["choices"][0]["message"]["content"]:
            raise RuntimeError("empty answer")

    async def bare_provider() -> None:
        await provider.complete(REQUEST)

    async def routed() -> None:
        await router.complete(ROUTE, REQUEST)

    async def routed_sqlite() -> None:
        await router_sqlite.complete(ROUTE, REQUEST)

    calls: dict[str, Call] = {
        "floor": floor,
        "provider": bare_provider,
        "router": routed,
        "router_sqlite": routed_sqlite,
    }
    variants = [v for v in VARIANTS if v in calls or (v == "litellm" and peer is not None)]
    latencies: dict[str, list[int]] = {v: [] for v in variants}
    cpu_ns: dict[str, int] = dict.fromkeys(variants, 0)
    block_p50: dict[str, list[float]] = {v: [] for v in variants}
    flush_ms: list[float] = []
    flush_rows: list[int] = []

    async def block(variant: str, count: int) -> tuple[list[int], int]:
        if variant == "litellm":
            assert peer is not None
            return await peer.block(count)
        result = await run_block(calls[variant], count)
        if variant == "router_sqlite":
            # What the background flusher has not written yet (a peek at a private list: the ledger
            # does not say), to put the flush's time per row.
            flush_rows.append(len(ledger_sqlite._pending))
            started = time.perf_counter_ns()
            await ledger_sqlite.flush()
            flush_ms.append((time.perf_counter_ns() - started) / 1e6)
        return result

    try:
        if peer is not None:
            await peer.start()
        print(f"-- warm-up: {args.warmup} calls per variant", file=sys.stderr, flush=True)
        for variant in variants:
            await block(variant, args.warmup)
        flush_ms.clear()
        flush_rows.clear()
        server_cpu = server.cpu_seconds()
        started = time.perf_counter()
        for round_index in range(args.rounds):
            order = variants[round_index % len(variants) :] + variants[: round_index % len(variants)]
            for variant in order:
                got, cpu = await block(variant, args.calls)
                latencies[variant] += got
                cpu_ns[variant] += cpu
                block_p50[variant].append(statistics.median(got) / 1e6)
            line = ", ".join(f"{v} {block_p50[v][-1]:.3f}" for v in variants)
            print(f"   round {round_index + 1}/{args.rounds} p50 ms: {line}", file=sys.stderr, flush=True)
        elapsed = time.perf_counter() - started
        server_cpu = server.cpu_seconds() - server_cpu
        close_started = time.perf_counter_ns()
        await router_sqlite.aclose()
        close_ms = (time.perf_counter_ns() - close_started) / 1e6
        layers = await breakdown(server, args.breakdown) if args.breakdown else {}
        rows = await db.read(lambda conn: conn.exec_driver_sql("SELECT count(*) FROM llm_calls").scalar_one())
        calls_ok = router_metrics.registry.get_sample_value(
            "orchestrion_llm_calls_total", {"provider": "openai_compat", "model": MODEL, "outcome": "ok"}
        )
    finally:
        if peer is not None:
            await peer.stop()
        await router.aclose()
        await router_sqlite.aclose()
        await provider.aclose()
        await client.aclose()
        await db.dispose()

    results: dict[str, Any] = {}
    floor_summary = summarise(latencies["floor"])
    for variant in variants:
        summary = summarise(latencies[variant])
        per_round = [p - f for p, f in zip(block_p50[variant], block_p50["floor"], strict=True)]
        results[variant] = {
            **summary,
            "cpu_us_per_call": round(cpu_ns[variant] / len(latencies[variant]) / 1e3, 1),
            "overhead_p50_ms": round(summary["p50_ms"] - floor_summary["p50_ms"], 4),
            "overhead_p99_ms": round(summary["p99_ms"] - floor_summary["p99_ms"], 4),
            "overhead_mean_ms": round(summary["mean_ms"] - floor_summary["mean_ms"], 4),
            "block_p50_ms": [round(p, 4) for p in block_p50[variant]],
            "block_p50_overhead_ms": {
                "min": round(min(per_round), 4),
                "median": round(statistics.median(per_round), 4),
                "max": round(max(per_round), 4),
            },
        }
    results["router_sqlite"]["flush_after_block_ms"] = {
        "per_block": [round(f, 3) for f in flush_ms],
        "median": round(statistics.median(flush_ms), 3),
        "max": round(max(flush_ms), 3),
        "rows_per_block": flush_rows,
        "us_per_row": round(sum(flush_ms) * 1e3 / max(1, sum(flush_rows)), 1),
    }
    results["router_sqlite"]["aclose_ms"] = round(close_ms, 3)
    results["router_sqlite"]["ledger_rows"] = rows
    results["router"]["metrics_calls_ok"] = calls_ok
    versions = {
        "orchestrion": version("orchestrion"),
        "httpx": httpx.__version__,
        "litellm": peer.version if peer is not None else None,
    }
    return {
        "plan": {"warmup": args.warmup, "rounds": args.rounds, "calls_per_block": args.calls},
        "elapsed_s": round(elapsed, 1),
        "server_cpu_us_per_call": round(server_cpu / sum(len(v) for v in latencies.values()) * 1e6, 1),
        "versions": versions,
        "variants": results,
        "layer_own_time_us": layers,
    }


class LayerTimer:
    """Times every layer of a router's call path with `perf_counter_ns`, to split its overhead.

    Each layer's `complete` (and the adapter's `_body`/`_parse`, the ledger's `record`) is shadowed
    by an instance attribute that times the original; a layer's own time is its time minus that of
    the layer it calls. The timing wrappers add about a microsecond per layer themselves.
    """

    def __init__(self, router: ProviderRouter, ledger: CallLedger) -> None:
        self.order: list[str] = []
        self.inclusive: dict[str, list[int]] = {}
        fallback = router._routes[ROUTE]
        layers: list[tuple[str, Any]] = [("ProviderRouter.complete", router), ("FallbackProvider", fallback)]
        layer = fallback.deployments[0]
        while layer is not None:
            layers.append((type(layer).__name__, layer))
            layer = getattr(layer, "inner", None)
        for name, obj in layers:
            self._time_async(name, obj, "complete")
        adapter = layers[-1][1]
        self._time_sync("adapter._body (JSON body)", adapter, "_body")
        self._time_sync("adapter._parse (ChatResponse)", adapter, "_parse")
        self._time_sync("CallLedger.record (metrics)", ledger, "record")

    def _time_async(self, name: str, obj: Any, attribute: str) -> None:
        original = getattr(obj, attribute)
        samples = self.inclusive.setdefault(name, [])
        self.order.append(name)

        async def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter_ns()
            try:
                return await original(*args, **kwargs)
            finally:
                samples.append(time.perf_counter_ns() - started)

        setattr(obj, attribute, timed)

    def _time_sync(self, name: str, obj: Any, attribute: str) -> None:
        original = getattr(obj, attribute)
        samples = self.inclusive.setdefault(name, [])

        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter_ns()
            try:
                return original(*args, **kwargs)
            finally:
                samples.append(time.perf_counter_ns() - started)

        setattr(obj, attribute, timed)

    def own_times_us(self) -> dict[str, float]:
        """Median own time per call of each layer, in microseconds (the adapter's includes the HTTP call)."""
        own: dict[str, float] = {}
        for outer, inner in zip(self.order, [*self.order[1:], None], strict=True):
            outer_ns = self.inclusive[outer]
            inner_ns = self.inclusive[inner] if inner is not None else [0] * len(outer_ns)
            own_ns = [o - i for o, i in zip(outer_ns, inner_ns, strict=True)]
            own[outer] = round(statistics.median(own_ns) / 1e3, 1)
        for name in self.inclusive:
            if name not in self.order:
                own[name] = round(statistics.median(self.inclusive[name]) / 1e3, 1)
        return own


async def breakdown(server: VendorProcess, calls: int) -> dict[str, float]:
    """Median own time of each layer over `calls` sequential calls of a metrics-only router."""
    router, ledger, _ = router_for(server.base_url, None, "bench-breakdown")
    try:
        timer = LayerTimer(router, ledger)

        async def call() -> None:
            await router.complete(ROUTE, REQUEST)

        await run_block(call, calls)
        timer.inclusive = {name: samples[calls // 4 :] for name, samples in timer.inclusive.items()}
        return timer.own_times_us()
    finally:
        await router.aclose()


def table(results: dict[str, Any]) -> str:
    """The per-variant table in Markdown."""
    labels = {
        "floor": "floor: bare httpx POST + JSON parse",
        "provider": "OpenAICompatProvider.complete",
        "router": "ProviderRouter.complete, ledger metrics-only",
        "router_sqlite": "ProviderRouter.complete, ledger on SQLite",
        "litellm": "LiteLLM Router.acompletion",
    }
    rows = [
        "| Variant | p50 (ms) | p99 (ms) | mean (ms) | CPU/call (us) | overhead p50 (ms) | overhead p99 (ms) "
        "| per-round p50 overhead (ms) |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for variant, figures in results["variants"].items():
        spread = figures["block_p50_overhead_ms"]
        rows.append(
            f"| {labels[variant]} | {figures['p50_ms']:.3f} | {figures['p99_ms']:.3f} | "
            f"{figures['mean_ms']:.3f} | {figures['cpu_us_per_call']:.0f} | "
            f"{figures['overhead_p50_ms']:+.3f} | {figures['overhead_p99_ms']:+.3f} | "
            f"{spread['min']:+.3f} .. {spread['max']:+.3f} |"
        )
    flush = results["variants"]["router_sqlite"]["flush_after_block_ms"]
    rows.append("")
    rows.append(
        f"SQLite ledger: flush of what was pending after each block of {results['plan']['calls_per_block']} "
        f"calls: median {flush['median']:.2f} ms, max {flush['max']:.2f} ms "
        f"({flush['us_per_row']:.0f} us per pending row); "
        f"{results['variants']['router_sqlite']['ledger_rows']} rows written."
    )
    if results["layer_own_time_us"]:
        rows += ["", "| Layer (metrics-only router) | own time per call, median (us) |", "|---|---:|"]
        rows += [f"| {name} | {us:.1f} |" for name, us in results["layer_own_time_us"].items()]
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--calls", type=int, default=500, help="calls per variant per round")
    parser.add_argument("--warmup", type=int, default=200, help="calls per variant before timing")
    parser.add_argument(
        "--breakdown", type=int, default=2000, help="calls timed layer by layer afterwards (0: none)"
    )
    parser.add_argument("--no-peer", dest="peer", action="store_false", help="skip LiteLLM")
    parser.add_argument("--results-dir", type=Path, default=BENCH / "results")
    args = parser.parse_args()
    if args.peer and not PEERS_PYTHON.exists():
        parser.error(f"{PEERS_PYTHON} is missing; run `bash bench/setup_peers.sh` first")
    started = datetime.now(UTC)
    host = machine()
    with tempfile.TemporaryDirectory(prefix="router-overhead-") as scratch, VendorProcess() as server:
        results = asyncio.run(measure(args, server, Path(scratch)))
    target_met = results["variants"]["router"]["overhead_p50_ms"] < 1.0
    run = {
        "benchmark": "router_overhead",
        "started_at": started.isoformat(timespec="seconds"),
        "machine": host,
        "loadavg_1m_after": round(os.getloadavg()[0], 2),
        "server": "orchestrion.testing.vendor_server, separate process, latency 0, no faults",
        **results,
        "target": "router p50 overhead over the floor < 1 ms",
        "target_met": target_met,
    }
    out = append_result(args.results_dir, started, "overhead", run)
    print(table(results))
    print(f"\ntarget (router p50 overhead < 1 ms): {'met' if target_met else 'NOT met'}; results: {out}")


if __name__ == "__main__":
    main()
