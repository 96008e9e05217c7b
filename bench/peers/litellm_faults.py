"""The LiteLLM peer of bench/router_faults.py: the fault scenario through `litellm.Router`.

Runs in bench/.venv-peers (see bench/setup_peers.sh), never in Orchestrion's environment. With two
`--base-url`s it builds the model groups "primary" and "secondary" and `fallbacks` from the first to
the second, with `num_retries`, `allowed_fails`, `cooldown_time` and a per-request `timeout`
mirroring Orchestrion's options; with one, only "primary". After a warm-up of the healthy
deployments, it makes `--calls` calls with `--concurrency` in flight and prints one JSON line.

What LiteLLM does not count for us is observed from outside: calls refused because every
deployment of "primary" was cooling down (`async_get_available_deployment` raising for it), and the
time the primary spent in cooldown (its cooldown entry, polled every 10 ms).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
from collections import Counter
from importlib.metadata import version
from typing import Any

# Set before the import: LiteLLM must not fetch its price map from the internet.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import litellm

POLL_SECONDS = 0.01


def percentile(ordered: list[int], share: float) -> int:
    return ordered[min(len(ordered) - 1, max(0, round(share * (len(ordered) - 1))))]


def summarise(latencies_ns: list[int]) -> dict[str, float]:
    """The same figures as bench/router_overhead.py's `summarise`."""
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


def build_router(args: argparse.Namespace) -> Any:
    litellm.suppress_debug_info = True
    litellm.telemetry = False
    names = ["primary", "secondary"][: len(args.base_url)]
    model_list = [
        {
            "model_name": name,
            "litellm_params": {
                "model": "openai/test-model",
                "api_base": base_url,
                "api_key": "x",
                "timeout": args.timeout,
            },
        }
        for name, base_url in zip(names, args.base_url, strict=True)
    ]
    return litellm.Router(
        model_list=model_list,
        fallbacks=[{"primary": ["secondary"]}] if len(names) > 1 else [],
        num_retries=args.num_retries,
        allowed_fails=args.allowed_fails,
        cooldown_time=args.cooldown_time,
        timeout=args.timeout,
    )


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    body = json.loads(args.body)
    router = build_router(args)
    params = {"max_tokens": body["max_tokens"], "temperature": body["temperature"]}
    primary_id = router.model_list[0]["model_info"]["id"]

    selections: Counter[str] = Counter()
    refusals: Counter[str] = Counter()
    original_select = router.async_get_available_deployment

    async def counting_select(model: str, *select_args: Any, **select_kwargs: Any) -> Any:
        selections[model] += 1
        try:
            return await original_select(model, *select_args, **select_kwargs)
        except Exception:
            refusals[model] += 1
            raise

    router.async_get_available_deployment = counting_select

    # Warm up the healthy deployments only: the primary's fault draws start with the timed calls.
    healthy = ["secondary"] if len(args.base_url) > 1 else ["primary"]
    for model in healthy:
        for _ in range(args.warmup // args.concurrency):
            await asyncio.gather(
                *(
                    router.acompletion(model=model, messages=body["messages"], **params)
                    for _ in range(args.concurrency)
                )
            )
    selections.clear()
    refusals.clear()

    cooling_s = 0.0
    cooldowns_seen = 0
    done = asyncio.Event()

    async def watch_cooldown() -> None:
        nonlocal cooling_s, cooldowns_seen
        was_cooling = False
        last = time.monotonic()
        while not done.is_set():
            await asyncio.sleep(POLL_SECONDS)
            now = time.monotonic()
            cooling = bool(router.cooldown_cache.get_active_cooldowns([primary_id], None))
            if cooling:
                cooling_s += now - last
                cooldowns_seen += not was_cooling
            was_cooling, last = cooling, now

    latencies: list[int] = []
    outcomes: Counter[str] = Counter()
    answered_by: Counter[str] = Counter()
    remaining = iter(range(args.calls))

    async def lane() -> None:
        for _ in remaining:
            started = time.perf_counter_ns()
            try:
                response = await router.acompletion(model="primary", messages=body["messages"], **params)
            except Exception as exc:
                outcomes[f"failed: {type(exc).__name__}"] += 1
            else:
                outcomes["ok"] += 1
                base = str((getattr(response, "_hidden_params", None) or {}).get("api_base") or "")
                answered_by["primary" if base.startswith(args.base_url[0]) else "secondary"] += 1
            latencies.append(time.perf_counter_ns() - started)

    watcher = asyncio.create_task(watch_cooldown())
    started = time.perf_counter()
    try:
        async with asyncio.TaskGroup() as group:
            for _ in range(args.concurrency):
                group.create_task(lane())
    finally:
        done.set()
        await watcher
    elapsed = time.perf_counter() - started
    return {
        "version": f"litellm {version('litellm')}, httpx {version('httpx')}, openai {version('openai')}",
        "settings": {
            "num_retries": args.num_retries,
            "allowed_fails": args.allowed_fails,
            "cooldown_time": args.cooldown_time,
            "timeout": args.timeout,
        },
        "calls": args.calls,
        "concurrency": args.concurrency,
        "succeeded": outcomes["ok"],
        "success_share": round(outcomes["ok"] / args.calls, 4),
        "outcomes": dict(outcomes),
        "answered_by": dict(answered_by),
        "elapsed_s": round(elapsed, 3),
        "calls_per_s": round(args.calls / elapsed, 1),
        **summarise(latencies),
        "deployments": {
            "primary": {
                # Every attempt, first or retry, selects a deployment of the group again.
                "selections": selections["primary"],
                "retries": selections["primary"] - args.calls,
                "circuit_rejections": refusals["primary"],
                "fallbacks_from": args.calls - answered_by["primary"],
                "circuit_opened": cooldowns_seen,
                "open_s": round(cooling_s, 3),
            }
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--base-url", action="append", required=True, help="primary, then secondary")
    parser.add_argument("--body", required=True, help="the chat-completions body (JSON) Orchestrion sends")
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument("--timeout", type=float, default=0.5)
    parser.add_argument("--num-retries", type=int, default=1)
    parser.add_argument("--allowed-fails", type=int, default=5)
    parser.add_argument("--cooldown-time", type=float, default=2.0)
    result = asyncio.run(main_async(parser.parse_args()))
    sys.stdout.write(json.dumps(result) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
