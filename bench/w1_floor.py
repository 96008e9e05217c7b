"""W1 floor: the same four chat completions with a bare httpx.AsyncClient, nothing else.

Three concurrent POSTs, then one, each response decoded and its JSON content parsed, as any client
must. Run by bench/w1.py; prints one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import contender_main, measure, peak_rss_mib, plan_from_arguments

HEADERS = {"Content-Type": "application/json", "Accept": "application/json"}


async def _complete(client: httpx.AsyncClient, url: str, body: dict[str, Any]) -> dict[str, Any]:
    response = await client.post(url, json=body, headers=HEADERS)
    response.raise_for_status()
    content = response.json()["choices"][0]["message"]["content"]
    value: dict[str, Any] = json.loads(content)
    return value


async def main_async(args: argparse.Namespace, bodies: dict[str, Any]) -> dict[str, Any]:
    url = args.base_url.rstrip("/") + "/chat/completions"
    # The client's defaults (pool limits included) match the one OpenAICompatProvider creates.
    async with httpx.AsyncClient(timeout=120.0) as client:

        async def run_task(index: int) -> None:
            await asyncio.gather(*(_complete(client, url, b) for b in bodies["specialists"]))
            await _complete(client, url, bodies["reporter"])

        result = await measure(run_task, plan_from_arguments(args))
    return {
        "name": "floor",
        "version": f"httpx {httpx.__version__}",
        **result,
        "peak_rss_mib": peak_rss_mib(),
    }


def main() -> None:
    contender_main(main_async, description=__doc__)


if __name__ == "__main__":
    main()
