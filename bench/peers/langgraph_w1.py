"""W1 on LangGraph: three specialist nodes in parallel fanning into a reporter node, no checkpointer.

Runs in bench/.venv-peers (see bench/setup_peers.sh), never in Orchestrion's environment. Each node
makes the same chat completion Orchestrion makes, with an httpx.AsyncClient configured like
Orchestrion's. Run by bench/w1.py; prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import operator
import sys
from importlib.metadata import version
from pathlib import Path
from typing import Annotated, Any, TypedDict

import httpx
from langgraph.graph import END, START, StateGraph

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from harness import contender_main, measure, peak_rss_mib, plan_from_arguments

HEADERS = {"Content-Type": "application/json", "Accept": "application/json"}


class W1State(TypedDict):
    title: str
    analyses: Annotated[list[dict[str, Any]], operator.add]
    summary: str


def build_graph(client: httpx.AsyncClient, url: str, bodies: dict[str, Any]) -> Any:
    """The compiled W1 graph (no checkpointer: nothing is persisted)."""

    async def complete(body: dict[str, Any]) -> dict[str, Any]:
        response = await client.post(url, json=body, headers=HEADERS)
        response.raise_for_status()
        value: dict[str, Any] = json.loads(response.json()["choices"][0]["message"]["content"])
        return value

    def specialist(body: dict[str, Any]) -> Any:
        async def node(state: W1State) -> dict[str, Any]:
            return {"analyses": [await complete(body)]}

        return node

    async def reporter(state: W1State) -> dict[str, Any]:
        data = await complete(bodies["reporter"])
        return {"summary": str(data.get("summary") or "")}

    graph = StateGraph(W1State)
    names = [f"specialist_{i}" for i in range(len(bodies["specialists"]))]
    for name, body in zip(names, bodies["specialists"], strict=True):
        graph.add_node(name, specialist(body))
        graph.add_edge(START, name)
    graph.add_node("reporter", reporter)
    graph.add_edge(names, "reporter")
    graph.add_edge("reporter", END)
    return graph.compile()


async def main_async(args: argparse.Namespace, bodies: dict[str, Any]) -> dict[str, Any]:
    url = args.base_url.rstrip("/") + "/chat/completions"
    async with httpx.AsyncClient(timeout=120.0) as client:
        graph = build_graph(client, url, bodies)

        async def run_task(index: int) -> None:
            state = await graph.ainvoke({"title": f"w1 #{index}", "analyses": [], "summary": ""})
            if len(state["analyses"]) != len(bodies["specialists"]):
                raise RuntimeError(f"task {index}: {len(state['analyses'])} analyses")

        result = await measure(run_task, plan_from_arguments(args))
    return {
        "name": "langgraph",
        "version": f"langgraph {version('langgraph')}, httpx {httpx.__version__}",
        **result,
        "peak_rss_mib": peak_rss_mib(),
    }


def main() -> None:
    contender_main(main_async, description=__doc__)


if __name__ == "__main__":
    main()
