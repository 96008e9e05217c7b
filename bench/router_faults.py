"""Provider-router benchmark 2: a route [primary, secondary] whose primary fails half its calls.

2,000 calls with 20 in flight through `ProviderRouter.complete`, against two vendor servers in
their own processes: the primary fails 50 % of its requests (an even draw among HTTP 429 with
Retry-After 0.05 s, HTTP 500 with the same header, and a reply 2 s late, beyond the deployment's
0.5 s read timeout), the secondary is healthy. Options are what a careful user would configure:
timeouts connect 1 s / read 0.5 s / total 1 s, retry max_attempts 2 with base_delay 0.05 s, the
breaker's defaults with a 2 s cooldown. The same 2,000 calls through a healthy primary alone (the
same options) give the latency without faults.

Reported: the share of calls that succeeded; p50/p99 latency against the healthy run; attempts sent
to the primary and how many failed there ("wasted"); calls not sent because its circuit was open
(`orchestrion_llm_circuit_rejections_total`); retries; fallbacks; the circuit's time open and
half-open (from its state transitions). The vendor servers count what reaches them (requests,
statuses, requests abandoned by the client), independently of the client's metrics.

The same scenario runs through LiteLLM's Router (`fallbacks`, `num_retries=1`, `allowed_fails=5`,
`cooldown_time=2`, `timeout=0.5`) in bench/.venv-peers (bench/peers/litellm_faults.py), against
fresh servers with the same fault seed. Results go to stdout and are appended to
bench/results/router-<date>.json under "faults".

The servers are `orchestrion.testing.vendor_server`'s application with the same options, served by
`router_faults.py serve` with a thin ASGI wrapper that counts requests and answers
``GET /bench/counts``.

Usage::

    bash bench/setup_peers.sh && .venv/bin/python bench/router_faults.py
    .venv/bin/python bench/router_faults.py --calls 500 --no-peer          # a quick look
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

import httpx

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from router_overhead import MODEL, PRICE, REQUEST, VendorProcess, append_result, summarise  # noqa: E402
from w1 import PEERS_PYTHON, contender_env, machine  # noqa: E402

from orchestrion.exceptions import PROVIDER_ERROR_KINDS, ProviderError  # noqa: E402
from orchestrion.monitoring.metrics import Metrics  # noqa: E402
from orchestrion.providers.accounting import CallLedger  # noqa: E402
from orchestrion.providers.deployment import Deployment, build_deployment  # noqa: E402
from orchestrion.providers.openai_compat import OpenAICompatProvider, chat_completion_body  # noqa: E402
from orchestrion.providers.options import BreakerConfig, DeploymentConfig, RetryConfig, Timeouts  # noqa: E402
from orchestrion.providers.router import ProviderRouter  # noqa: E402

ROUTE = "default"
TIMEOUTS = Timeouts(connect=1.0, read=0.5, total=1.0)
RETRY = RetryConfig(max_attempts=2, base_delay=0.05)
BREAKER = BreakerConfig(cooldown_seconds=2.0)
FAULTY = ["--failure-rate=0.5", "--faults=429,500,timeout", "--retry-after=0.05", "--slow-seconds=2"]
OUTCOMES = ("ok", "cancelled", *PROVIDER_ERROR_KINDS)
PEER_TIMEOUT_SECONDS = 600


# -- the counting vendor server (`router_faults.py serve`) ----------------------------------------


def serve(argv: list[str]) -> None:
    """Run the vendor test server's application with a request counter in front of it."""
    import uvicorn

    from orchestrion.testing.faults import Fault
    from orchestrion.testing.vendor_server import VendorTestServer, uvicorn_config

    parser = argparse.ArgumentParser(prog="router_faults.py serve")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--failure-rate", type=float, default=0.0)
    parser.add_argument("--faults", default="429,500")
    parser.add_argument("--slow-seconds", type=float, default=2.0)
    parser.add_argument("--retry-after", type=float, default=None)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    server = VendorTestServer(model=MODEL, host=args.host, port=args.port, record=False)
    if args.failure_rate > 0:
        faults = [
            Fault.parse(spec, slow_seconds=args.slow_seconds, retry_after=args.retry_after)
            for spec in args.faults.split(",")
        ]
        server.set_failure_rate(args.failure_rate, faults, seed=args.seed)
    counts: Counter[str] = Counter()
    lock = threading.Lock()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"] == "/bench/counts":
            body = json.dumps(dict(counts)).encode()
            headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return
        if scope["type"] != "http" or scope["method"] != "POST":
            await server.app(scope, receive, send)
            return
        status: list[int] = []

        async def counting_send(message: Any) -> None:
            if message["type"] == "http.response.start":
                status.append(message["status"])
            await send(message)

        try:
            await server.app(scope, receive, counting_send)
        finally:
            with lock:
                counts["requests"] += 1
                counts[str(status[0]) if status else "abandoned"] += 1

    uvicorn.Server(uvicorn_config(app, host=args.host, port=args.port)).run()


def counting_server(options: list[str]) -> VendorProcess:
    return VendorProcess(options, command=[sys.executable, str(Path(__file__).resolve()), "serve"])


def server_counts(server: VendorProcess) -> dict[str, int]:
    """What the server has seen: requests, responses per status, requests abandoned by the client."""
    with httpx.Client(trust_env=False) as client:
        counts: dict[str, int] = client.get(f"{server.url}/bench/counts", timeout=5).json()
    return counts


# -- Orchestrion ----------------------------------------------------------------------------------


class CountingHandler(logging.Handler):
    """Counts the warnings the router logs (one per failed attempt or fallback) instead of printing them."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.counts: Counter[str] = Counter()

    def emit(self, record: logging.LogRecord) -> None:
        self.counts[record.name] += 1


class StateTimeline:
    """Stands in for the circuit-state gauge to record when each deployment's circuit changes state.

    `build_deployment` reports every breaker transition through `metrics.llm_circuit_state`; this
    proxy forwards to the real gauge and keeps `(monotonic time, gauge value)` per deployment.
    """

    def __init__(self, gauge: Any) -> None:
        self._gauge = gauge
        self.changes: dict[str, list[tuple[float, int]]] = {}

    def labels(self, deployment: str) -> Any:
        child = self._gauge.labels(deployment)
        changes = self.changes.setdefault(deployment, [])

        class _Recorder:
            def set(self, value: float) -> None:
                changes.append((time.monotonic(), int(value)))
                child.set(value)

        return _Recorder()

    def seconds_in(self, deployment: str, start: float, end: float) -> dict[str, float]:
        """Seconds spent open and half-open between `start` and `end`."""
        spent = {0: 0.0, 1: 0.0, 2: 0.0}
        state, since = 0, start
        for at, value in self.changes.get(deployment, []):
            if at > start:
                spent[state] += min(at, end) - since
                since = min(at, end)
            state = value
        spent[state] += end - since
        return {"open_s": round(spent[2], 3), "half_open_s": round(spent[1], 3)}


def deployment_for(
    name: str, base_url: str, *, ledger: CallLedger, metrics: Metrics
) -> tuple[Deployment, OpenAICompatProvider]:
    # The adapter is named after the deployment so that `orchestrion_llm_calls_total` (labelled by
    # provider and model) tells the primary's attempts from the secondary's.
    adapter = OpenAICompatProvider(base_url=base_url, model=MODEL, timeouts=TIMEOUTS, name=name)
    config = DeploymentConfig(
        name=name, provider="openai_compat", model=MODEL, timeouts=TIMEOUTS, retry=RETRY, breaker=BREAKER
    )
    return build_deployment(adapter, config, price=PRICE, ledger=ledger, metrics=metrics), adapter


async def run_calls(call: Any, calls: int, concurrency: int) -> tuple[float, list[int], Counter[str]]:
    """`calls` calls with `concurrency` in flight: elapsed seconds, latencies (ns), outcomes."""
    latencies: list[int] = []
    outcomes: Counter[str] = Counter()
    remaining = iter(range(calls))

    async def lane() -> None:
        for _ in remaining:
            started = time.perf_counter_ns()
            try:
                await call()
            except ProviderError as exc:
                outcomes[f"failed: {exc.kind}"] += 1
            else:
                outcomes["ok"] += 1
            latencies.append(time.perf_counter_ns() - started)

    started = time.perf_counter()
    async with asyncio.TaskGroup() as group:
        for _ in range(concurrency):
            group.create_task(lane())
    return time.perf_counter() - started, latencies, outcomes


async def orchestrion_scenario(
    servers: list[VendorProcess], *, calls: int, concurrency: int, warmup: int
) -> dict[str, Any]:
    """Run the calls through a route over `servers` (primary first); figures from the router's metrics."""
    log = CountingHandler()
    logging.getLogger().addHandler(log)
    metrics = Metrics()
    timeline = StateTimeline(metrics.llm_circuit_state)
    metrics.llm_circuit_state = timeline  # type: ignore[assignment]
    ledger = CallLedger(None, metrics)
    names = ["primary", "secondary"][: len(servers)]
    built = [
        deployment_for(name, server.base_url, ledger=ledger, metrics=metrics)
        for name, server in zip(names, servers, strict=True)
    ]
    router = ProviderRouter({ROUTE: [deployment for deployment, _ in built]}, ledger=ledger, metrics=metrics)
    try:
        # Warm up the healthy deployments only, on their adapters (not through the breakers): the
        # primary's fault draws start with the timed calls, and every circuit starts closed.
        healthy = built[1:] if len(built) > 1 else built
        for _, adapter in healthy:
            for _ in range(warmup // concurrency):
                await asyncio.gather(*(adapter.complete(REQUEST) for _ in range(concurrency)))

        async def call() -> None:
            await router.complete(ROUTE, REQUEST)

        started = time.monotonic()
        elapsed, latencies, outcomes = await run_calls(call, calls, concurrency)
        ended = time.monotonic()
    finally:
        await router.aclose()
        logging.getLogger().removeHandler(log)

    def value(name: str, labels: dict[str, str]) -> int:
        return int(metrics.registry.get_sample_value(name, labels) or 0)

    per_deployment: dict[str, Any] = {}
    for name, (deployment, _) in zip(names, built, strict=True):
        attempts = {
            outcome: count
            for outcome in OUTCOMES
            if (
                count := value(
                    "orchestrion_llm_calls_total", {"provider": name, "model": MODEL, "outcome": outcome}
                )
            )
        }
        per_deployment[name] = {
            "attempts": sum(attempts.values()),
            "attempts_failed": sum(c for o, c in attempts.items() if o != "ok"),
            "attempts_by_outcome": attempts,
            "circuit_rejections": value("orchestrion_llm_circuit_rejections_total", {"deployment": name}),
            "retries": value("orchestrion_llm_retries_total", {"deployment": name}),
            "fallbacks_from": value("orchestrion_llm_fallbacks_total", {"route": ROUTE, "deployment": name}),
            "circuit_opened": deployment.breaker.status().opened_count,
            **timeline.seconds_in(name, started, ended),
        }
    return {
        "calls": calls,
        "concurrency": concurrency,
        "succeeded": outcomes["ok"],
        "success_share": round(outcomes["ok"] / calls, 4),
        "outcomes": dict(outcomes),
        "elapsed_s": round(elapsed, 3),
        "calls_per_s": round(calls / elapsed, 1),
        **summarise(latencies),
        "warning_log_records": dict(log.counts),
        "route_failures": value("orchestrion_llm_route_failures_total", {"route": ROUTE}),
        "deployments": per_deployment,
    }


# -- LiteLLM --------------------------------------------------------------------------------------


def litellm_scenario(
    servers: list[VendorProcess], *, calls: int, concurrency: int, warmup: int
) -> dict[str, Any]:
    """Run bench/peers/litellm_faults.py over `servers` and return the JSON it prints."""
    command = [
        str(PEERS_PYTHON),
        str(BENCH / "peers" / "litellm_faults.py"),
        "--body",
        json.dumps(chat_completion_body(REQUEST, model=MODEL)),
        f"--calls={calls}",
        f"--concurrency={concurrency}",
        f"--warmup={warmup}",
        f"--timeout={TIMEOUTS.read}",
        f"--num-retries={RETRY.max_attempts - 1}",
        f"--cooldown-time={BREAKER.cooldown_seconds}",
        f"--allowed-fails={BREAKER.consecutive_failures}",
        *(f"--base-url={server.base_url}" for server in servers),
    ]
    completed = subprocess.run(
        command, env=contender_env(), stdout=subprocess.PIPE, check=False, timeout=PEER_TIMEOUT_SECONDS
    )
    if completed.returncode != 0:
        raise RuntimeError(f"the LiteLLM peer exited with {completed.returncode}")
    result: dict[str, Any] = json.loads(completed.stdout.decode().strip().splitlines()[-1])
    return result


# -- the run --------------------------------------------------------------------------------------


@contextmanager
def servers_for(scenario: str, seed: int) -> Iterator[list[VendorProcess]]:
    """Fresh counting vendor servers: [faulty primary, healthy secondary], or [healthy primary]."""
    with ExitStack() as stack:
        if scenario == "faults":
            yield [
                stack.enter_context(counting_server([*FAULTY, f"--seed={seed}"])),
                stack.enter_context(counting_server([])),
            ]
        else:
            yield [stack.enter_context(counting_server([]))]


def run_scenario(contender: str, scenario: str, args: argparse.Namespace) -> dict[str, Any]:
    print(f"-- {contender}: {scenario} ...", file=sys.stderr, flush=True)
    with servers_for(scenario, args.seed) as servers:
        options = {"calls": args.calls, "concurrency": args.concurrency, "warmup": args.warmup}
        if contender == "orchestrion":
            result = asyncio.run(orchestrion_scenario(servers, **options))
        else:
            result = litellm_scenario(servers, **options)
        counts = {name: server_counts(s) for name, s in zip(["primary", "secondary"], servers, strict=False)}
        # The warm-up calls (all answered) went to the healthy server: the secondary, or the lone primary.
        warmed = counts["secondary" if scenario == "faults" else "primary"]
        for key in ("requests", "200"):
            warmed[key] -= args.warmup
        result["server_counts"] = counts
        primary = result["deployments"]["primary"]
        primary["server_requests"] = counts["primary"]["requests"]
        primary["server_failed"] = counts["primary"]["requests"] - counts["primary"].get("200", 0)
    print(
        f"   {result['succeeded']}/{result['calls']} ok, p50 {result['p50_ms']:.1f} ms, "
        f"p99 {result['p99_ms']:.1f} ms, {result['elapsed_s']:.1f} s",
        file=sys.stderr,
        flush=True,
    )
    return result


def with_extra_latency(results: dict[str, dict[str, Any]]) -> None:
    """Add the faulty run's extra latency over the healthy one, per contender."""
    for contender in ("orchestrion", "litellm"):
        if f"{contender}_faults" in results and f"{contender}_healthy" in results:
            faults, healthy = results[f"{contender}_faults"], results[f"{contender}_healthy"]
            faults["extra_latency_ms"] = {
                f"{q}_ms": round(faults[f"{q}_ms"] - healthy[f"{q}_ms"], 3) for q in ("p50", "p99", "mean")
            }


def table(results: dict[str, dict[str, Any]]) -> str:
    """The figures in Markdown."""
    rows = [
        "| Run | succeeded | p50 (ms) | p99 (ms) | mean (ms) | extra p50 / p99 (ms) | calls/s | "
        "primary attempts | failed there | not sent: circuit open | retries | fallbacks | circuit opened "
        "| open (s) / run (s) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, r in results.items():
        primary = r["deployments"]["primary"]
        extra = r.get("extra_latency_ms")
        extra_cell = f"{extra['p50_ms']:+.1f} / {extra['p99_ms']:+.1f}" if extra else "-"
        rows.append(
            f"| {name} | {100 * r['success_share']:.1f} % | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} | "
            f"{r['mean_ms']:.1f} | {extra_cell} | {r['calls_per_s']:.0f} | {primary['server_requests']} | "
            f"{primary['server_failed']} | {primary['circuit_rejections']} | {primary['retries']} | "
            f"{primary['fallbacks_from']} | {primary['circuit_opened']} | "
            f"{primary['open_s']:.1f} / {r['elapsed_s']:.1f} |"
        )
    return "\n".join(rows)


def main() -> None:
    if sys.argv[1:2] == ["serve"]:
        serve(sys.argv[2:])
        return
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=100, help="calls to the healthy server before timing")
    parser.add_argument("--seed", type=int, default=1, help="seed of the primary's fault draws")
    parser.add_argument("--no-peer", dest="peer", action="store_false", help="skip LiteLLM")
    parser.add_argument("--results-dir", type=Path, default=BENCH / "results")
    args = parser.parse_args()
    if args.warmup % args.concurrency:
        parser.error("--warmup must be a multiple of --concurrency")
    if args.peer and not PEERS_PYTHON.exists():
        parser.error(f"{PEERS_PYTHON} is missing; run `bash bench/setup_peers.sh` first")
    started = datetime.now(UTC)
    host = machine()
    results: dict[str, dict[str, Any]] = {}
    contenders = ["orchestrion", "litellm"] if args.peer else ["orchestrion"]
    for contender in contenders:
        for scenario in ("healthy", "faults"):
            results[f"{contender}_{scenario}"] = run_scenario(contender, scenario, args)
    with_extra_latency(results)
    run = {
        "benchmark": "router_faults",
        "started_at": started.isoformat(timespec="seconds"),
        "machine": host,
        "loadavg_1m_after": round(os.getloadavg()[0], 2),
        "orchestrion": version("orchestrion"),
        "options": {
            "primary_faults": " ".join([*FAULTY, f"--seed={args.seed}"]),
            "timeouts": vars(TIMEOUTS),
            "retry": vars(RETRY),
            "breaker": vars(BREAKER),
        },
        "results": results,
    }
    out = append_result(args.results_dir, started, "faults", run)
    print(table(results))
    print(f"\nresults: {out}")


if __name__ == "__main__":
    main()
