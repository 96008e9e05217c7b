"""The Creative engine's options, plans and step executors, with real agents and a scripted LLM.

The generator and judge run here on StepContexts built by hand over real objects (a real registry,
a ProviderRouter over ScriptedProviders); the engine runs them end to end through the HTTP API in
`tests/api/test_creative_api.py`.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest

from orchestrion.agents.builtin import BUILTIN_AGENTS, BUILTIN_TASK_TYPES
from orchestrion.agents.creative import CREATIVE_AGENTS, CREATIVE_TASK_TYPES
from orchestrion.agents.registry import AgentRegistry
from orchestrion.agents.spec import AgentSpec, TaskTypeSpec
from orchestrion.domain.findings import Evidence, Finding, Severity
from orchestrion.domain.intelligence import Selection
from orchestrion.domain.tasks import AgentRun, StepStatus, Task, TaskStatus, ToolCall, utcnow
from orchestrion.engines.creative import (
    ANALYSIS_PREFIX,
    JUDGE_STEP,
    RECALL_STEP,
    IdeaGenerator,
    IdeaJudge,
    build_creative_plan,
    validate_creative,
)
from orchestrion.engines.diversity import cosine_distance, ngram_distance, summarise
from orchestrion.engines.ideas import VARIANTS, read_candidate, temperature_for
from orchestrion.engines.judge import judge_capability
from orchestrion.engines.recall.embeddings import Embedder, build_embedder
from orchestrion.engines.rubric import HEURISTIC_WEIGHTS, LLM_WEIGHTS, concordance
from orchestrion.engines.steps import StepContext, candidate_step_id, dependency_order
from orchestrion.exceptions import OrchestrionError, UnknownChoiceError, ValidationError
from orchestrion.providers.base import ChatRequest, ChatResponse
from orchestrion.providers.router import ProviderRouter
from orchestrion.testing import ScriptedProvider
from orchestrion.tools.registry import build_builtin_tools

# The Recall engine's librarian, as data (the hybrid plan only needs an agent with this id).
LIBRARIAN = AgentSpec(
    id="memory_librarian",
    name="Memory Librarian",
    description="searches memory",
    task_types=("context_search",),
)


def make_registry(*, librarian: bool = True) -> AgentRegistry:
    registry = AgentRegistry(tool_names=build_builtin_tools())
    for agent in (*BUILTIN_AGENTS, *CREATIVE_AGENTS, *((LIBRARIAN,) if librarian else ())):
        registry.register_agent(agent)
    for task_type in (*BUILTIN_TASK_TYPES, *CREATIVE_TASK_TYPES):
        registry.register_task_type(task_type)
    if librarian:
        registry.register_task_type(
            TaskTypeSpec(id="context_search", description="memory", default_agents=("memory_librarian",))
        )
    return registry


REGISTRY = make_registry()
SELECTION = Selection(strategy="only_candidates", team=("idea_generator",), reasons=("default team",))

BRIEF = "Ideas to reduce food waste in school cafeterias"
STRONG = (
    "Weigh each school cafeteria's food waste daily on a $40 scale, post the numbers beside the tray "
    "return, and let classes compete to cut waste by 20% each month."
)
RELEVANT = "Schools could ask the cafeteria staff to serve smaller portions of food to reduce waste."
VAGUE = "Some innovative thing that is really good and maybe helps with stuff."


def creative_task(task_type: str, options: dict[str, Any] | None = None, *, title: str = BRIEF) -> Task:
    options = validate_creative(REGISTRY, task_type=task_type, options=options or {}, max_candidates=12)
    plan = build_creative_plan(
        REGISTRY,
        task_type=task_type,
        options=options,
        step_timeout=30.0,
        max_retries=0,
        selection=SELECTION,
    )
    return Task(
        id=str(uuid.uuid4()),
        owner_id="owner",
        title=title,
        task_type=task_type,
        target=None,
        inputs={"options": options},
        priority=5,
        agents=("idea_generator",),
        status=TaskStatus.RUNNING,
        plan=plan,
        created_at=utcnow(),
    )


def context(task: Task, step_id: str, runs: Sequence[AgentRun] = ()) -> StepContext:
    assert task.plan is not None
    step = task.plan.step(step_id)

    async def on_tool_call(call: ToolCall) -> None:
        raise AssertionError("creative steps call no tools")

    async def read_dependencies() -> list[AgentRun]:
        return dependency_order(runs, step)

    return StepContext(
        task=task,
        step=step,
        spec=REGISTRY.agent(step.agent_id),
        attempt=1,
        files=(),
        on_tool_call=on_tool_call,
        read_dependencies=read_dependencies,
    )


def candidate_run(task: Task, index: int, text: str) -> AgentRun:
    """A generator's checkpoint, as IdeaGenerator writes it (built by running it on a scripted reply)."""
    return AgentRun(
        task_id=task.id,
        step_id=candidate_step_id(index),
        agent_id="idea_generator",
        status=StepStatus.SUCCEEDED,
        summary=text,
        evidence=(
            Evidence(
                id=f"{candidate_step_id(index)}:candidate:1",
                tool="candidate",
                summary=text[:60],
                data={
                    "index": index,
                    "variant": VARIANTS[index].name,
                    "temperature": temperature_for(index),
                    "text": text,
                },
            ),
        ),
    )


async def generate(task: Task, texts: Sequence[str], **judge_routes: Any) -> list[AgentRun]:
    """Run every candidate step through a real IdeaGenerator whose scripted model answers `texts`."""
    provider = ScriptedProvider([{"text": t} for t in texts])
    generator = IdeaGenerator(ProviderRouter({"default": [provider]}), max_tokens=200)
    runs = []
    for index in range(len(texts)):
        run, result = await generator.execute(context(task, candidate_step_id(index)))
        assert result is None
        runs.append(run)
    return runs


# -- options and plans -----------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [1, 13, "5", True, 2.5, -3])
def test_candidates_outside_the_range_are_refused_naming_it(bad: object) -> None:
    with pytest.raises(ValidationError) as caught:
        validate_creative(REGISTRY, task_type="brainstorming", options={"candidates": bad}, max_candidates=12)
    assert caught.value.field == "options.candidates"
    assert "from 2 to 12" in caught.value.message
    assert caught.value.details["maximum"] == 12


def test_options_are_normalised_with_a_default_candidate_count() -> None:
    options = validate_creative(
        REGISTRY, task_type="creative_generation", options={"brief": "  a tagline  "}, max_candidates=12
    )
    assert options == {"brief": "a tagline", "candidates": 5}
    assert (
        validate_creative(REGISTRY, task_type="brainstorming", options={}, max_candidates=3)["candidates"]
        == 3
    )


@pytest.mark.parametrize("brief", ["   ", "x" * 2001, 42])
def test_blank_long_or_non_text_briefs_are_refused(brief: object) -> None:
    with pytest.raises(ValidationError) as caught:
        validate_creative(REGISTRY, task_type="brainstorming", options={"brief": brief}, max_candidates=12)
    assert caught.value.field == "options.brief"


def test_analysis_task_type_must_analyse_inputs_and_lists_the_valid_ones() -> None:
    with pytest.raises(UnknownChoiceError) as caught:
        validate_creative(
            REGISTRY,
            task_type="innovation",
            options={"analysis_task_type": "brainstorming"},
            max_candidates=12,
        )
    assert caught.value.field == "options.analysis_task_type"
    assert caught.value.choices is not None
    assert "code_analysis" in caught.value.choices and "data_analysis" in caught.value.choices
    assert "brainstorming" not in caught.value.choices
    with pytest.raises(ValidationError) as elsewhere:
        validate_creative(
            REGISTRY,
            task_type="brainstorming",
            options={"analysis_task_type": "code_analysis"},
            max_candidates=12,
        )
    assert elsewhere.value.field == "options.analysis_task_type"
    with pytest.raises(ValidationError) as no_inputs:
        validate_creative(
            REGISTRY,
            task_type="innovation",
            options={"analysis_task_type": "code_analysis"},
            max_candidates=12,
            has_inputs=False,
        )
    assert no_inputs.value.field == "inputs"


def test_brainstorming_plan_is_candidates_then_a_judge_of_all_of_them() -> None:
    task = creative_task("brainstorming", {"candidates": 4})
    assert task.plan is not None
    steps = task.plan.steps
    assert [s.id for s in steps] == ["candidate-0", "candidate-1", "candidate-2", "candidate-3", JUDGE_STEP]
    assert all(s.agent_id == "idea_generator" and not s.depends_on for s in steps[:-1])
    judge = steps[-1]
    assert judge.agent_id == "idea_judge" and judge.trigger == "all_done"
    assert judge.depends_on == ("candidate-0", "candidate-1", "candidate-2", "candidate-3")
    assert any("4 candidates" in r for r in task.plan.reasons)


def test_innovation_plan_is_recall_then_analysis_then_candidates_then_judge() -> None:
    task = creative_task("innovation", {"candidates": 3, "analysis_task_type": "code_analysis"})
    assert task.plan is not None
    by_id = {s.id: s for s in task.plan.steps}
    assert [s.id for s in task.plan.steps] == [
        RECALL_STEP,
        f"{ANALYSIS_PREFIX}code_analyzer",
        "candidate-0",
        "candidate-1",
        "candidate-2",
        JUDGE_STEP,
    ]
    assert by_id[RECALL_STEP].agent_id == "memory_librarian" and not by_id[RECALL_STEP].depends_on
    analysis = by_id[f"{ANALYSIS_PREFIX}code_analyzer"]
    assert analysis.agent_id == "code_analyzer" and analysis.depends_on == (RECALL_STEP,)
    for index in range(3):
        candidate = by_id[candidate_step_id(index)]
        assert candidate.depends_on == (RECALL_STEP, f"{ANALYSIS_PREFIX}code_analyzer")
        assert candidate.trigger == "all_done"
    assert by_id[JUDGE_STEP].depends_on == ("candidate-0", "candidate-1", "candidate-2")
    # Without analysis the candidates wait for recall alone; without a librarian, for nothing.
    plain = creative_task("innovation", {"candidates": 2})
    assert plain.plan is not None and plain.plan.step("candidate-0").depends_on == (RECALL_STEP,)
    bare = build_creative_plan(
        make_registry(librarian=False),
        task_type="innovation",
        options={"candidates": 2},
        step_timeout=30.0,
        max_retries=0,
        selection=SELECTION,
    )
    assert [s.id for s in bare.steps] == ["candidate-0", "candidate-1", JUDGE_STEP]
    assert any("memory_librarian" in r for r in bare.reasons)


def test_temperature_schedule_spreads_distinct_values_over_the_range() -> None:
    temperatures = [temperature_for(i) for i in range(100)]
    assert len(set(temperatures)) == 100
    assert all(0.4 <= t < 1.2 for t in temperatures)
    assert temperatures[:4] == [0.4, 0.8, 0.6, 1.0]
    first_five = temperatures[:5]
    assert max(first_five) - min(first_five) >= 0.6


# -- the generator ---------------------------------------------------------------------------------


async def test_candidates_get_distinct_variants_and_temperatures() -> None:
    task = creative_task("brainstorming", {"candidates": 5, "brief": BRIEF})
    texts = [f"Idea number {i}: compost the leftovers in garden plot {i}." for i in range(5)]
    provider = ScriptedProvider([{"text": t} for t in texts], name="vendor", model="big-1")
    generator = IdeaGenerator(ProviderRouter({"default": [provider]}), max_tokens=200)
    runs = [(await generator.execute(context(task, candidate_step_id(i))))[0] for i in range(5)]

    requests = provider.requests
    assert len({r.temperature for r in requests}) == 5
    assert all(0.4 <= r.temperature <= 1.2 for r in requests)
    assert len({r.seed for r in requests}) == 5
    prompts = [r.messages[-1].content for r in requests]
    assert all(VARIANTS[i].instruction in prompt and BRIEF in prompt for i, prompt in enumerate(prompts))
    assert len(set(prompts)) == 5
    assert all(r.max_tokens == 200 for r in requests)

    for index, run in enumerate(runs):
        assert run.status is StepStatus.SUCCEEDED and run.summary == texts[index]
        assert (run.provider, run.model) == ("vendor", "big-1")
        candidate = read_candidate(run)
        assert candidate.variant == VARIANTS[index].name
        assert candidate.temperature == requests[index].temperature
        assert candidate.text == texts[index]


@pytest.mark.parametrize("reply", [{"text": ""}, {"text": "  ?! "}, "{broken json", {"text": BRIEF}])
async def test_generator_fails_the_attempt_on_an_unusable_reply(reply: Any) -> None:
    task = creative_task("brainstorming", {"candidates": 2})
    generator = IdeaGenerator(ProviderRouter({"default": [ScriptedProvider([reply])]}))
    with pytest.raises(OrchestrionError):
        await generator.execute(context(task, "candidate-0"))


async def test_generator_accepts_prose_from_a_model_that_ignored_json() -> None:
    task = creative_task("creative_generation", {"candidates": 2, "brief": "a tagline for a bakery"})
    generator = IdeaGenerator(
        ProviderRouter({"default": [ScriptedProvider(['"Rise and shine, fresh daily."'])]})
    )
    run, _ = await generator.execute(context(task, "candidate-1"))
    assert run.summary == "Rise and shine, fresh daily."


async def test_generator_without_its_route_fails_saying_so() -> None:
    task = creative_task("brainstorming", {"candidates": 2})
    for generator in (IdeaGenerator(None), IdeaGenerator(ProviderRouter({"fast": [ScriptedProvider()]}))):
        with pytest.raises(OrchestrionError, match="no LLM route 'default'"):
            await generator.execute(context(task, "candidate-0"))


async def test_generator_includes_recalled_memories_and_analysis_findings_briefly() -> None:
    task = creative_task("innovation", {"candidates": 2, "analysis_task_type": "code_analysis"})
    recall = AgentRun(
        task_id=task.id,
        step_id=RECALL_STEP,
        agent_id="memory_librarian",
        status=StepStatus.SUCCEEDED,
        evidence=(
            Evidence(
                id="recall:memory_search:1", tool="memory_search", summary="Last year's audit: " + "x" * 300
            ),
        ),
    )
    analysis = AgentRun(
        task_id=task.id,
        step_id=f"{ANALYSIS_PREFIX}code_analyzer",
        agent_id="code_analyzer",
        status=StepStatus.SUCCEEDED,
        findings=(
            Finding(title="Low severity nit", severity=Severity.LOW),
            Finding(title="SQL built from user input", severity=Severity.HIGH),
        ),
    )
    provider = ScriptedProvider([{"text": "Parameterise every query and add a linter rule for it."}])
    generator = IdeaGenerator(ProviderRouter({"default": [provider]}))
    await generator.execute(context(task, "candidate-0", [recall, analysis]))
    prompt = provider.requests[0].messages[-1].content
    assert "Memory: Last year's audit" in prompt
    assert prompt.index("Finding (high): SQL built from user input") < prompt.index("Finding (low)")
    assert all(len(line) <= 142 for line in prompt.splitlines() if line.startswith("- "))


# -- the judge -------------------------------------------------------------------------------------


async def test_heuristic_ranking_follows_the_rubric() -> None:
    task = creative_task("brainstorming", {"candidates": 3})
    runs = await generate(task, [VAGUE, RELEVANT, STRONG])
    run, result = await IdeaJudge(None).execute(context(task, JUDGE_STEP, runs))
    assert result is not None
    stats = result.stats
    assert stats["judge"] == "heuristic" and stats["judge_note"] == "LLM calls are off"
    ranked = stats["candidates"]
    assert [c["text"] for c in ranked] == [STRONG, RELEVANT, VAGUE]
    assert [c["rank"] for c in ranked] == [1, 2, 3]
    assert ranked[0]["score"] > ranked[1]["score"] > ranked[2]["score"]
    for entry in ranked:
        assert set(entry["criteria"]) == set(HEURISTIC_WEIGHTS)
        assert all(0.0 <= v <= 1.0 for v in entry["criteria"].values())
        expected = sum(HEURISTIC_WEIGHTS[k] * v for k, v in entry["criteria"].items())
        assert entry["score"] == pytest.approx(expected, abs=1e-3)
        assert entry["variant"] == VARIANTS[int(entry["step_id"].split("-")[1])].name
    assert ranked[0]["criteria"]["specificity"] > ranked[2]["criteria"]["specificity"]
    assert ranked[2]["criteria"]["relevance"] == 0.0
    assert {c["name"]: c["weight"] for c in stats["rubric"]["criteria"]} == dict(HEURISTIC_WEIGHTS)
    assert result.summary.startswith("Winner (score")
    assert STRONG in result.summary and run.summary == result.summary
    assert result.quality.completion == 1.0 and result.quality.agreement == 1.0
    assert result.quality.grounding == ranked[0]["criteria"]["relevance"]
    assert result.quality.coverage == stats["diversity"]["ngram"]["mean"]


async def test_the_embedded_model_is_not_a_capable_judge() -> None:
    embedded = ScriptedProvider(name="llama_cpp", model="smollm2-135m-instruct")
    router = ProviderRouter({"default": [embedded], "smart": [embedded]})
    assert "embedded model" in (judge_capability(router, "smart") or "")
    assert judge_capability(router, "judge") == "no LLM route 'judge' is configured"
    task = creative_task("brainstorming", {"candidates": 2})
    runs = await generate(task, [RELEVANT, STRONG])
    _, result = await IdeaJudge(router, route="smart").execute(context(task, JUDGE_STEP, runs))
    assert result is not None and result.stats["judge"] == "heuristic"
    assert embedded.requests == []


def verdicts(*scores: tuple[int, int, int, int]) -> list[dict[str, Any]]:
    names = ("relevance", "specificity", "feasibility", "clarity")
    return [{**dict(zip(names, s, strict=True)), "reason": f"scored {s}"} for s in scores]


async def test_llm_judge_ranks_by_its_verdicts_on_a_capable_route() -> None:
    task = creative_task("brainstorming", {"candidates": 3})
    runs = await generate(task, [VAGUE, RELEVANT, STRONG])
    # The scripted judge prefers the vague candidate: the ranking must follow it, not the heuristic.
    judge_model = ScriptedProvider(verdicts((10, 10, 10, 10), (5, 5, 5, 5), (1, 1, 1, 1)), name="openai")
    router = ProviderRouter({"default": [ScriptedProvider()], "smart": [judge_model]})
    run, result = await IdeaJudge(router, route="smart").execute(context(task, JUDGE_STEP, runs))
    assert result is not None
    stats = result.stats
    assert stats["judge"] == "llm:smart" and stats["judge_note"] is None
    ranked = stats["candidates"]
    assert [c["text"] for c in ranked] == [VAGUE, RELEVANT, STRONG]
    assert ranked[0]["criteria"]["feasibility"] == 1.0 and ranked[0]["reason"] == "scored (10, 10, 10, 10)"
    assert set(ranked[0]["criteria"]) == set(LLM_WEIGHTS)
    assert {c["name"]: c["weight"] for c in stats["rubric"]["criteria"]} == dict(LLM_WEIGHTS)
    # The heuristic ranks them the other way round: the two judges disagree on every pair.
    assert result.quality.agreement == 0.0
    assert (run.provider, run.model) == ("openai", "scripted")
    for request, candidate in zip(judge_model.requests, [VAGUE, RELEVANT, STRONG], strict=True):
        assert request.json_schema is not None and request.temperature == 0.0
        assert f"Candidate: {candidate}" in request.messages[-1].content


@pytest.mark.parametrize(
    "garbage",
    [
        "I think they are all great",
        {"relevance": 42, "specificity": 1, "feasibility": 1, "clarity": 1, "reason": ""},
        {"relevance": "high", "reason": "?"},
    ],
)
async def test_llm_judge_garbage_falls_back_to_the_heuristic(garbage: Any) -> None:
    task = creative_task("brainstorming", {"candidates": 3})
    runs = await generate(task, [VAGUE, RELEVANT, STRONG])
    judge_model = ScriptedProvider([verdicts((9, 9, 9, 9))[0], garbage], name="openai")
    router = ProviderRouter({"default": [ScriptedProvider()], "smart": [judge_model]})
    _, result = await IdeaJudge(router, route="smart").execute(context(task, JUDGE_STEP, runs))
    assert result is not None
    assert result.stats["judge"] == "heuristic"
    assert "verdicts unusable" in result.stats["judge_note"]
    assert [c["text"] for c in result.stats["candidates"]] == [STRONG, RELEVANT, VAGUE]


async def test_diversity_is_zero_for_identical_candidates_and_one_for_disjoint_ones() -> None:
    task = creative_task("brainstorming", {"candidates": 3})
    same = await generate(task, [STRONG, STRONG, STRONG])
    _, result = await IdeaJudge(None).execute(context(task, JUDGE_STEP, same))
    assert result is not None
    ngram = result.stats["diversity"]["ngram"]
    assert (ngram["mean"], ngram["min"], ngram["pairs"]) == (0.0, 0.0, 3)
    assert ngram["method"].startswith("word 1-2-gram Jaccard")
    assert all(c["criteria"]["novelty"] == 0.0 for c in result.stats["candidates"])
    assert result.stats["diversity"]["embedding"] == {
        "method": result.stats["diversity"]["embedding"]["method"],
        "available": False,
        "reason": "no embedder is available",
    }

    disjoint = await generate(
        task, ["Plant rooftop gardens.", "Auction surplus yoghurt.", "Compost peelings."]
    )
    _, result = await IdeaJudge(None).execute(context(task, JUDGE_STEP, disjoint))
    assert result is not None
    ngram = result.stats["diversity"]["ngram"]
    assert (ngram["mean"], ngram["min"]) == (1.0, 1.0)
    assert all(c["criteria"]["novelty"] == 1.0 for c in result.stats["candidates"])


def test_distance_measures_at_their_bounds() -> None:
    assert ngram_distance("The cats sat.", "a cat sat") == 0.0
    assert ngram_distance("red apples", "blue oceans") == 1.0
    assert 0.0 < ngram_distance("red apples fall", "red apples rise") < 1.0
    assert cosine_distance([1.0, 0.0], [2.0, 0.0]) == 0.0
    assert cosine_distance([1.0, 0.0], [0.0, 3.0]) == 1.0
    assert cosine_distance([1.0, 0.0], [-1.0, 0.0]) == 1.0
    assert summarise([[0.0]], method="m") == {"method": "m", "pairs": 0, "mean": None, "min": None}
    assert concordance([3, 2, 1], [30, 20, 10]) == 1.0
    assert concordance([3, 2, 1], [1, 2, 3]) == 0.0


def letter_vector(text: str) -> list[float]:
    """A deterministic stand-in embedding: letter frequencies (for the judge's embedder argument)."""
    return [float(text.lower().count(c)) for c in "abcdefghijklmnopqrstuvwxyz"]


async def test_embedding_distances_are_measured_when_an_embedder_is_given() -> None:
    seen: list[list[str]] = []

    async def embed(texts: Sequence[str]) -> list[list[float]]:
        seen.append(list(texts))
        return [letter_vector(t) for t in texts]

    task = creative_task("brainstorming", {"candidates": 3})
    runs = await generate(task, [VAGUE, RELEVANT, STRONG])
    _, result = await IdeaJudge(None, embed=embed).execute(context(task, JUDGE_STEP, runs))
    assert result is not None
    assert seen == [[BRIEF, VAGUE, RELEVANT, STRONG]]
    embedding = result.stats["diversity"]["embedding"]
    assert embedding["method"].startswith("embedding cosine distance") and embedding["pairs"] == 3
    expected = [
        cosine_distance(letter_vector(a), letter_vector(b))
        for a, b in [(VAGUE, RELEVANT), (VAGUE, STRONG), (RELEVANT, STRONG)]
    ]
    assert embedding["mean"] == pytest.approx(sum(expected) / 3, abs=1e-4)
    assert embedding["min"] == pytest.approx(min(expected), abs=1e-4)
    assert "embedding cosine" in next(
        c["method"] for c in result.stats["rubric"]["criteria"] if c["name"] == "novelty"
    )
    assert result.quality.coverage == embedding["mean"]

    async def broken(texts: Sequence[str]) -> list[list[float]]:
        raise RuntimeError("model files missing")

    _, result = await IdeaJudge(None, embed=broken).execute(context(task, JUDGE_STEP, runs))
    assert result is not None
    assert "model files missing" in result.stats["diversity"]["embedding"]["reason"]
    assert result.stats["diversity"]["ngram"]["mean"] is not None


async def test_one_failed_candidate_still_yields_a_ranked_result() -> None:
    task = creative_task("brainstorming", {"candidates": 3})
    runs = await generate(task, [RELEVANT, STRONG])
    failed = AgentRun(
        task_id=task.id,
        step_id="candidate-2",
        agent_id="idea_generator",
        status=StepStatus.FAILED,
        error="boom",
    )
    _, result = await IdeaJudge(None).execute(context(task, JUDGE_STEP, [*runs, failed]))
    assert result is not None
    assert [c["step_id"] for c in result.stats["candidates"]] == ["candidate-1", "candidate-0"]
    assert result.stats["failed_candidates"] == ["candidate-2"]
    assert (result.stats["planned"], result.stats["succeeded"]) == (3, 2)
    assert result.quality.completion == pytest.approx(0.6667)
    assert "Failed: candidate-2." in result.summary
    json.dumps(result.stats)  # the stats are stored as JSON


async def test_judge_fails_when_no_candidate_succeeded() -> None:
    task = creative_task("brainstorming", {"candidates": 2})
    failed = [
        AgentRun(
            task_id=task.id, step_id=f"candidate-{i}", agent_id="idea_generator", status=StepStatus.FAILED
        )
        for i in range(2)
    ]
    with pytest.raises(OrchestrionError, match="no candidate succeeded"):
        await IdeaJudge(None).execute(context(task, JUDGE_STEP, failed))


def test_verdict_requests_are_short_and_schema_constrained() -> None:
    from orchestrion.engines.rubric import VERDICT_SCHEMA, verdict_request

    request: ChatRequest = verdict_request(
        system_prompt="judge", brief=BRIEF, candidate=STRONG, max_tokens=120
    )
    assert request.json_schema == VERDICT_SCHEMA
    assert len(request.messages[-1].content.split()) < 120


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ("Your answer: Compost the peelings.", "Compost the peelings."),
        ("One idea in one to three sentences: Share bins.", "Share bins."),
        ("Premise 1: keep it", "Premise 1: keep it"),
        ("“Fresh at five.”", "Fresh at five."),
    ],
)
async def test_generator_strips_labels_and_instruction_echoes(reply: str, expected: str) -> None:
    task = creative_task("brainstorming", {"candidates": 2})
    generator = IdeaGenerator(ProviderRouter({"default": [ScriptedProvider([reply])]}))
    run, _ = await generator.execute(context(task, "candidate-0"))
    assert run.summary == expected


async def test_a_reply_cut_off_by_max_tokens_is_trimmed_to_its_last_sentence() -> None:
    cut = ChatResponse(
        content="Share bins in every hall. Weigh the waste daily. Then the cla",
        provider="p",
        model="m",
        finish_reason="length",
    )
    task = creative_task("brainstorming", {"candidates": 2})
    generator = IdeaGenerator(ProviderRouter({"default": [ScriptedProvider([cut])]}))
    run, _ = await generator.execute(context(task, "candidate-0"))
    assert run.summary == "Share bins in every hall. Weigh the waste daily."


def test_options_of_other_engines_are_refused_naming_the_valid_ones() -> None:
    with pytest.raises(ValidationError) as caught:
        validate_creative(REGISTRY, task_type="brainstorming", options={"operation": "x"}, max_candidates=12)
    assert caught.value.field == "options.operation"
    assert caught.value.choices == ["candidates", "brief", "analysis_task_type", "concurrency"]
    with pytest.raises(ValidationError, match=r"options\.query"):
        validate_creative(REGISTRY, task_type="brainstorming", options={"query": "x"}, max_candidates=12)
    options = {"query": "audits", "k": 3, "tags": ["sec"], "concurrency": 2}
    assert validate_creative(REGISTRY, task_type="innovation", options=options, max_candidates=12) == {
        **options,
        "candidates": 5,
    }


async def test_an_answer_that_merely_has_a_colon_keeps_its_opening() -> None:
    task = creative_task("brainstorming", {"candidates": 4})
    text = "One teacher, one week: a share shelf for unopened milk."
    generator = IdeaGenerator(ProviderRouter({"default": [ScriptedProvider([text])]}))
    run, _ = await generator.execute(context(task, "candidate-3"))  # the constraint_first angle
    assert run.summary == text


@pytest.fixture
async def embedder() -> AsyncIterator[Embedder]:
    """The Recall engine's real sentence-transformers embedder (skipped when the extra is missing)."""
    built, reason = build_embedder("auto")
    if built is None:
        if os.environ.get("ORCHESTRION_REQUIRE_EMBEDDINGS") == "1":
            pytest.fail(f"no embedder but ORCHESTRION_REQUIRE_EMBEDDINGS=1: {reason}")
        pytest.skip(f"no embedder: {reason}")
    yield built
    await built.aclose()


async def test_real_sentence_embeddings_see_paraphrases_that_ngrams_miss(embedder: Embedder) -> None:
    texts = [
        "Compost the leftover lunch food in the school garden.",
        "Turn cafeteria scraps into fertiliser for vegetable beds.",
        "Launch a weather balloon to photograph the clouds.",
    ]
    task = creative_task("brainstorming", {"candidates": 3})
    runs = await generate(task, texts)
    _, result = await IdeaJudge(None, embed=embedder.embed).execute(context(task, JUDGE_STEP, runs))
    assert result is not None
    by_text = {c["text"]: c for c in result.stats["candidates"]}
    assert result.stats["diversity"]["embedding"]["pairs"] == 3
    # The two compost ideas share no content word, yet they are each other's nearest neighbours.
    assert ngram_distance(texts[0], texts[1]) > 0.9
    assert by_text[texts[0]]["criteria"]["novelty"] < by_text[texts[2]]["criteria"]["novelty"]
    assert result.stats["diversity"]["embedding"]["min"] < 0.7
