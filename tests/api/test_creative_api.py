"""Creative tasks through the real HTTP API: ranked candidates, judges, partial failure and retry,
bad options, and the innovation pipeline."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from orchestrion.engines.ideas import VARIANTS
from orchestrion.exceptions import ProviderError
from orchestrion.providers.base import ChatRequest
from orchestrion.testing import ScriptedProvider
from orchestrion.testing.responders import grounded_analyst
from tests.api.test_tasks_api import wait_status
from tests.conftest import LiveServer, serve

BRIEF = "Ideas to reduce food waste in school cafeterias"

IDEAS = {
    "conventional": "Weigh cafeteria food waste daily and post the numbers beside the tray return.",
    "contrarian": "Stop serving trays: students carry plates, so they take less food and waste less.",
    "analogy": "Run it like a restaurant kitchen: prep to forecast, freeze surplus for Monday soup.",
    "constraint_first": "One teacher, one week: a share shelf where unopened milk and fruit go back out.",
    "user_centred": "Ask pupils which meals they bin most and change those recipes with them in March.",
}


class Ideas:
    """A scripted writer: one idea per angle, failing the angles in `failing`; analysts get findings."""

    def __init__(self, failing: tuple[str, ...] = ()) -> None:
        self.failing = set(failing)
        self.calls: Counter[str] = Counter()

    def __call__(self, request: ChatRequest) -> str | dict[str, Any]:
        if request.json_schema is not None:
            return grounded_analyst(request)
        prompt = request.messages[-1].content
        variant = next(v.name for v in VARIANTS if v.instruction in prompt)
        self.calls[variant] += 1
        if variant in self.failing:
            raise ProviderError(f"scripted outage for {variant}", provider="scripted")
        return IDEAS[variant]


def verdict(request: ChatRequest) -> dict[str, Any]:
    """A scripted capable judge that prefers the contrarian idea."""
    contrarian = IDEAS["contrarian"] in request.messages[-1].content
    score = 9 if contrarian else 4
    return {"relevance": score, "specificity": score, "feasibility": score, "clarity": score, "reason": "ok"}


def brainstorm(**options: Any) -> dict[str, Any]:
    return {"title": "cafeteria", "task_type": "brainstorming", "options": {"brief": BRIEF} | options}


async def test_brainstorming_returns_ranked_candidates_with_measured_diversity(
    server_factory: Callable[..., LiveServer],
) -> None:
    ideas = Ideas()
    server = server_factory(routes={"default": [ScriptedProvider(default=ideas)]})
    async with server.client() as client:
        created = await client.post("/api/v1/tasks", json=brainstorm(candidates=4))
        assert created.status_code == 201, created.text
        steps = created.json()["plan"]["steps"]
        assert [s["id"] for s in steps] == [
            "candidate-0",
            "candidate-1",
            "candidate-2",
            "candidate-3",
            "judge",
        ]
        task = await wait_status(client, created.json()["id"])
        assert task["status"] == "succeeded", task["error"]
        result = (await client.get(f"/api/v1/tasks/{task['id']}/result")).json()
    stats = result["stats"]
    assert stats["judge"] == "heuristic" and "no LLM route 'smart'" in stats["judge_note"]
    ranked = stats["candidates"]
    assert sorted(c["text"] for c in ranked) == sorted(list(IDEAS.values())[:4])
    assert [c["rank"] for c in ranked] == [1, 2, 3, 4]
    assert [c["score"] for c in ranked] == sorted((c["score"] for c in ranked), reverse=True)
    assert len({c["variant"] for c in ranked}) == 4 and len({c["temperature"] for c in ranked}) == 4
    assert stats["diversity"]["ngram"]["pairs"] == 6 and 0.5 < stats["diversity"]["ngram"]["mean"] <= 1.0
    assert result["summary"].startswith("Winner (score") and ranked[0]["text"] in result["summary"]
    assert result["quality"]["completion"] == 1.0
    assert ideas.calls == {v.name: 1 for v in VARIANTS[:4]}


async def test_a_capable_judge_route_ranks_by_llm_verdicts(server_factory: Callable[..., LiveServer]) -> None:
    judge = ScriptedProvider(default=verdict, name="openai", model="judge-1")
    server = server_factory(routes={"default": [ScriptedProvider(default=Ideas())], "smart": [judge]})
    async with server.client() as client:
        created = await client.post("/api/v1/tasks", json=brainstorm(candidates=3))
        assert created.status_code == 201, created.text
        task = await wait_status(client, created.json()["id"])
        assert task["status"] == "succeeded", task["error"]
        result = (await client.get(f"/api/v1/tasks/{task['id']}/result")).json()
    assert result["stats"]["judge"] == "llm:smart"
    assert result["stats"]["candidates"][0]["text"] == IDEAS["contrarian"]
    assert result["stats"]["candidates"][0]["criteria"]["feasibility"] == 0.9
    assert len(judge.requests) == 3


async def test_a_failed_candidate_makes_the_task_partial_and_retry_reruns_only_it(
    server_factory: Callable[..., LiveServer],
) -> None:
    ideas = Ideas(failing=("contrarian",))
    server = server_factory(routes={"default": [ScriptedProvider(default=ideas)]}, step_max_retries=0)
    async with server.client() as client:
        created = await client.post("/api/v1/tasks", json=brainstorm(candidates=3))
        task_id = created.json()["id"]
        task = await wait_status(client, task_id)
        assert task["status"] == "partial" and "candidate-1" in task["error"]
        result = (await client.get(f"/api/v1/tasks/{task_id}/result")).json()
        assert result["stats"]["failed_candidates"] == ["candidate-1"]
        assert [c["step_id"] for c in result["stats"]["candidates"]] != []
        assert {c["step_id"] for c in result["stats"]["candidates"]} == {"candidate-0", "candidate-2"}
        assert result["quality"]["completion"] == pytest.approx(0.6667)

        ideas.failing.clear()
        retried = await client.post(f"/api/v1/tasks/{task_id}/retry")
        assert retried.status_code == 200, retried.text
        task = await wait_status(client, task_id)
        assert task["status"] == "succeeded", task["error"]
        result = (await client.get(f"/api/v1/tasks/{task_id}/result")).json()
        events = (await client.get(f"/api/v1/tasks/{task_id}/events")).json()["data"]
    assert result["stats"]["failed_candidates"] == [] and len(result["stats"]["candidates"]) == 3
    assert ideas.calls == {"conventional": 1, "contrarian": 2, "analogy": 1}
    starts = Counter(e["data"]["step_id"] for e in events if e["type"] == "step.started")
    assert starts == {"candidate-0": 1, "candidate-1": 2, "candidate-2": 1, "judge": 2}


@pytest.mark.parametrize(
    ("body", "field", "choices"),
    [
        (brainstorm(candidates=1), "options.candidates", None),
        (brainstorm(candidates=13), "options.candidates", None),
        (brainstorm(brief="   "), "options.brief", None),
        (
            brainstorm(operation="classify"),
            "options.operation",
            ["candidates", "brief", "analysis_task_type", "concurrency"],
        ),
        (
            {"title": "t", "task_type": "innovation", "options": {"analysis_task_type": "brainstorming"}},
            "options.analysis_task_type",
            None,
        ),
    ],
)
async def test_bad_creative_options_are_422_naming_the_field(
    live_server: LiveServer, body: dict[str, Any], field: str, choices: list[str] | None
) -> None:
    async with live_server.client() as client:
        response = await client.post("/api/v1/tasks", json=body)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["details"]["field"] == field
    if field == "options.candidates":
        assert "from 2 to 12" in error["message"]
    if field == "options.analysis_task_type":
        assert "code_analysis" in error["details"]["choices"]
    if choices is not None:
        assert error["details"]["choices"] == choices


async def test_innovation_runs_analysis_then_ideas_that_see_its_findings(
    server_factory: Callable[..., LiveServer],
) -> None:
    provider = ScriptedProvider(default=Ideas())
    server = server_factory(routes={"default": [provider]})
    librarian = "memory_librarian" in server.runtime.registry.agents
    body = {
        "title": "make this service safer",
        "task_type": "innovation",
        "inputs": {
            "files": [{"name": "app.py", "content": "import subprocess\nsubprocess.call('ls', shell=True)\n"}]
        },
        "options": {"brief": BRIEF, "candidates": 2, "analysis_task_type": "code_analysis"},
    }
    async with server.client() as client:
        created = await client.post("/api/v1/tasks", json=body)
        assert created.status_code == 201, created.text
        steps = {s["id"]: s for s in created.json()["plan"]["steps"]}
        task = await wait_status(client, created.json()["id"])
        result = (await client.get(f"/api/v1/tasks/{task['id']}/result")).json()
    upstream = (["recall"] if librarian else []) + ["analysis-code_analyzer"]
    assert list(steps) == [*upstream, "candidate-0", "candidate-1", "judge"]
    assert steps["candidate-0"]["depends_on"] == upstream
    assert task["status"] in ("succeeded", "partial"), task["error"]
    assert len(result["stats"]["candidates"]) == 2
    idea_prompts = [r.messages[-1].content for r in provider.requests if r.json_schema is None]
    assert len(idea_prompts) == 2
    assert all("Finding (" in prompt for prompt in idea_prompts)


@pytest.mark.llm
@pytest.mark.slow
async def test_brainstorming_with_the_embedded_model_is_judged_by_the_heuristic(tmp_path: Path) -> None:
    # `auto` with no vendor key: every route is the embedded SmolLM2, which writes but cannot judge.
    with serve(tmp_path, configured_llm=True, llm="auto", llm_max_tokens=96) as server:
        async with server.client() as client:
            created = await client.post("/api/v1/tasks", json=brainstorm(candidates=3))
            assert created.status_code == 201, created.text
            task = await wait_status(client, created.json()["id"], timeout=240)
            result = (await client.get(f"/api/v1/tasks/{task['id']}/result")).json()
    assert task["status"] in ("succeeded", "partial"), task["error"]
    stats = result["stats"]
    assert stats["judge"] == "heuristic" and "embedded model" in stats["judge_note"]
    assert stats["candidates"] and all(c["provider"] == "llama_cpp" for c in stats["candidates"])
    assert len({c["temperature"] for c in stats["candidates"]}) == len(stats["candidates"])
    assert stats["tokens_out"] > 0
