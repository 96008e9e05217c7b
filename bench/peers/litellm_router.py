"""The LiteLLM peer of bench/router_overhead.py: `litellm.Router.acompletion` over one deployment.

Runs in bench/.venv-peers (see bench/setup_peers.sh), never in Orchestrion's environment. It stays
up for the whole benchmark so that blocks of LiteLLM calls can be interleaved with Orchestrion's:
it prints one JSON line when ready (`{"version": ...}`), then, for every line `N` read on stdin,
makes N calls one after the other and prints `{"latencies_ns": [...], "cpu_ns": ...}`. It exits at
the end of stdin.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from importlib.metadata import version
from typing import Any

# Set before the import: LiteLLM must not fetch its price map from the internet.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import litellm


def build_router(base_url: str) -> Any:
    """LiteLLM's Router over one OpenAI-compatible deployment, default settings."""
    litellm.suppress_debug_info = True
    litellm.telemetry = False
    return litellm.Router(
        model_list=[
            {
                "model_name": "default",
                "litellm_params": {"model": "openai/test-model", "api_base": base_url, "api_key": "x"},
            }
        ]
    )


def reply(value: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(value) + "\n")
    sys.stdout.flush()


async def main_async(args: argparse.Namespace) -> None:
    body = json.loads(args.body)
    router = build_router(args.base_url)
    params = {"max_tokens": body["max_tokens"], "temperature": body["temperature"]}

    async def call() -> None:
        response = await router.acompletion(model="default", messages=body["messages"], **params)
        if not response.choices[0].message.content:
            raise RuntimeError("empty answer")

    reply({"version": f"litellm {version('litellm')}, httpx {version('httpx')}, openai {version('openai')}"})
    while True:
        line = await asyncio.to_thread(sys.stdin.readline)
        if not line.strip():
            break
        latencies: list[int] = []
        cpu = time.process_time_ns()
        for _ in range(int(line)):
            started = time.perf_counter_ns()
            await call()
            latencies.append(time.perf_counter_ns() - started)
        reply({"latencies_ns": latencies, "cpu_ns": time.process_time_ns() - cpu})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--body", required=True, help="the chat-completions body (JSON) the others send")
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
