"""The Parallel engine's planning and step executors, with real agents, tools and a scripted LLM.

The map and reduce executors run here on StepContexts built by hand over real objects; the engine
runs them end to end (partial failure, retry of only the failed items, bounded concurrency, resume)
in `test_parallel_run.py` and through the HTTP API in `tests/api/test_parallel_api.py`.
"""

from __future__ import annotations

import socket
import uuid
from collections import Counter
from collections.abc import Sequence
from typing import Any

import pytest

from orchestrion.agents.batch import BATCH_AGENTS, BATCH_TASK_TYPES
from orchestrion.agents.builtin import BUILTIN_AGENTS, BUILTIN_TASK_TYPES
from orchestrion.agents.registry import AgentRegistry
from orchestrion.agents.runner import AgentRunner
from orchestrion.domain.intelligence import Selection
from orchestrion.domain.tasks import AgentRun, StepStatus, Task, TaskStatus, ToolCall, utcnow
from orchestrion.engines.parallel import (
    REDUCE_STEP,
    batch_operations,
    build_parallel_plan,
    validate_batch,
)
from orchestrion.engines.parallel_steps import BatchMapper, BatchReducer
from orchestrion.engines.steps import StepContext, dependency_order, item_step_id, task_concurrency
from orchestrion.exceptions import OrchestrionError, ProviderError, UnknownChoiceError, ValidationError
from orchestrion.providers.base import ChatRequest
from orchestrion.providers.router import ProviderRouter
from orchestrion.testing import ScriptedProvider
from orchestrion.tools.base import InputFile
from orchestrion.tools.registry import build_builtin_tools
from orchestrion.tools.targets import TargetPolicy
from tests.fixtures.net import LocalHTTPServer, http_server

__all__ = ["http_server"]

POLICY = TargetPolicy(allow=("127.0.0.1/32",))
PLAYBOOK = ("tls_audit", "http_headers_audit", "exposed_files", "banner_advisories")


def make_registry() -> AgentRegistry:
    registry = AgentRegistry(tool_names=build_builtin_tools())
    for agent in (*BUILTIN_AGENTS, *BATCH_AGENTS):
        registry.register_agent(agent)
    for task_type in (*BUILTIN_TASK_TYPES, *BATCH_TASK_TYPES):
        registry.register_task_type(task_type)
    return registry


REGISTRY = make_registry()


def item_of(request: ChatRequest) -> str:
    """The item a map step's prompt is about."""
    prompt = request.messages[-1].content
    return prompt.split("Item:\n", 1)[1].split("\n\nReply with JSON", 1)[0]


class Sentiment:
    """A scripted classifier: counts calls per item and fails the items in `failing`."""

    def __init__(self, failing: Sequence[str] = ()) -> None:
        self.failing = set(failing)
        self.calls: Counter[str] = Counter()

    def __call__(self, request: ChatRequest) -> dict[str, Any]:
        item = item_of(request)
        self.calls[item] += 1
        if item in self.failing:
            raise ProviderError(f"scripted outage for {item}", provider="scripted")
        return {"label": "positive" if "good" in item else "negative", "output": f"It says {item}."}


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def batch_task(task_type: str, items: Sequence[str], options: dict[str, Any], **inputs: Any) -> Task:
    normalised, options = validate_batch(
        REGISTRY,
        task_type=task_type,
        items=items if task_type != "batch_operation" else (),
        file_names=items if task_type == "batch_operation" else (),
        options=options,
        max_items=100,
        parse_target=POLICY.parse_target,
    )
    plan = build_parallel_plan(
        REGISTRY,
        items=normalised,
        options=options,
        step_timeout=30.0,
        max_retries=0,
        selection=Selection(strategy="only_candidates", team=("batch_mapper",)),
    )
    return Task(
        id=str(uuid.uuid4()),
        owner_id="owner",
        title="batch",
        task_type=task_type,
        target=None,
        inputs={"items": normalised, "options": options, **inputs},
        priority=5,
        agents=("batch_mapper",),
        status=TaskStatus.RUNNING,
        plan=plan,
        created_at=utcnow(),
    )


def context(
    task: Task, step_id: str, *, runs: Sequence[AgentRun] = (), files: Sequence[InputFile] = ()
) -> tuple[StepContext, list[ToolCall]]:
    assert task.plan is not None
    step = task.plan.step(step_id)
    calls: list[ToolCall] = []

    async def on_tool_call(call: ToolCall) -> None:
        calls.append(call)

    async def read_dependencies() -> list[AgentRun]:
        return dependency_order(runs, step)

    ctx = StepContext(
        task=task,
        step=step,
        spec=REGISTRY.agent(step.agent_id),
        attempt=1,
        files=files,
        on_tool_call=on_tool_call,
        read_dependencies=read_dependencies,
    )
    return ctx, calls


async def map_all(
    task: Task, mapper: BatchMapper, *, files: Sequence[InputFile] = ()
) -> tuple[list[AgentRun], dict[int, str]]:
    """Run every map step as the engine would: a failed attempt becomes a failed run."""
    runs: list[AgentRun] = []
    errors: dict[int, str] = {}
    for index in range(len(task.inputs["items"])):
        step_id = item_step_id(index)
        ctx, _ = context(task, step_id, files=files)
        try:
            run, result = await mapper.execute(ctx)
        except OrchestrionError as exc:
            errors[index] = exc.message
            run = AgentRun(
                task_id=task.id,
                step_id=step_id,
                agent_id="batch_mapper",
                status=StepStatus.FAILED,
                error=exc.message,
            )
        else:
            assert result is None
        runs.append(run)
    return runs, errors


# -- validation and planning ---------------------------------------------------------------------


def validate(
    task_type: str, items: Sequence[str] = ("a",), **kwargs: Any
) -> tuple[list[str], dict[str, Any]]:
    arguments: dict[str, Any] = {
        "task_type": task_type,
        "items": items,
        "file_names": (),
        "options": {"instruction": "Classify."} if task_type == "parallel_processing" else {},
        "max_items": 10,
        "parse_target": POLICY.parse_target,
    }
    arguments.update(kwargs)
    return validate_batch(REGISTRY, **arguments)


def test_a_batch_over_the_item_limit_is_refused_naming_the_limit() -> None:
    with pytest.raises(ValidationError) as caught:
        validate("parallel_processing", items=[f"row {i}" for i in range(11)])
    assert caught.value.field == "inputs.items"
    assert "10" in caught.value.message and "ORCHESTRION_PARALLEL_MAX_ITEMS" in caught.value.message
    assert caught.value.details["limit"] == 10 and caught.value.details["count"] == 11


def test_operations_are_the_registered_task_types_that_fit_the_batch_type() -> None:
    file_based = batch_operations(REGISTRY, "batch_operation")
    target_based = batch_operations(REGISTRY, "concurrent_analysis")
    assert {"code_analysis", "data_analysis", "log_analysis", "documentation"} <= set(file_based)
    assert {"security_scan", "domain_analysis", "network_analysis"} <= set(target_based)
    assert not {"parallel_processing", "batch_operation", "security_scan"} & set(file_based)
    with pytest.raises(UnknownChoiceError) as caught:
        validate("concurrent_analysis", items=["example.com"], options={"operation": "code_analysis"})
    assert caught.value.field == "options.operation" and caught.value.choices == target_based
    with pytest.raises(ValidationError) as missing:
        validate("batch_operation", items=(), file_names=["a.py"], options={})
    assert missing.value.field == "options.operation" and missing.value.choices == file_based
    with pytest.raises(UnknownChoiceError) as llm:
        validate("parallel_processing", options={"instruction": "x", "operation": "translate"})
    assert llm.value.choices == ["transform", "classify", "summarise", "extract"]


@pytest.mark.parametrize(
    ("task_type", "kwargs", "field"),
    [
        ("parallel_processing", {"items": []}, "inputs.items"),
        ("parallel_processing", {"options": {}}, "options.instruction"),
        ("parallel_processing", {"options": {"instruction": "  "}}, "options.instruction"),
        ("parallel_processing", {"items": ["ok", " "]}, "inputs.items[1]"),
        ("parallel_processing", {"items": ["ok", "x" * 4001]}, "inputs.items[1]"),
        ("parallel_processing", {"options": {"instruction": "x", "concurrency": 0}}, "options.concurrency"),
        ("parallel_processing", {"options": {"instruction": "x", "concurrency": 17}}, "options.concurrency"),
        ("parallel_processing", {"options": {"instruction": "x", "candidates": 3}}, "options.candidates"),
        (
            "concurrent_analysis",
            {"items": ["example.com", "ftp://example.org"], "options": {"operation": "security_scan"}},
            "inputs.items[1]",
        ),
        (
            "concurrent_analysis",
            {"items": ["example.com", "https://EXAMPLE.com/"], "options": {"operation": "security_scan"}},
            "inputs.items[1]",
        ),
        (
            "concurrent_analysis",
            {"items": ["a.com"], "options": {"operation": "security_scan", "instruction": "x"}},
            "options.instruction",
        ),
        (
            "batch_operation",
            {"items": ["x"], "file_names": ["a.py"], "options": {"operation": "code_analysis"}},
            "inputs.items",
        ),
        (
            "batch_operation",
            {"items": (), "file_names": [], "options": {"operation": "code_analysis"}},
            "inputs",
        ),
        (
            "batch_operation",
            {"items": (), "file_names": ["a.py", "a.py"], "options": {"operation": "code_analysis"}},
            "inputs",
        ),
    ],
)
def test_bad_batches_are_refused_naming_the_field(task_type: str, kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        validate(task_type, **kwargs)
    assert caught.value.field == field, caught.value.message


def test_valid_batches_are_normalised() -> None:
    items, options = validate(
        "concurrent_analysis",
        items=[" example.com ", "127.0.0.1:8443"],
        options={"operation": "security_scan", "concurrency": 4},
    )
    assert items == ["example.com", "127.0.0.1:8443"]
    assert options == {"operation": "security_scan", "concurrency": 4}
    rows, llm = validate("parallel_processing", items=["same", "same"], options={"instruction": " Tag it. "})
    assert rows == ["same", "same"]  # text items may repeat: each has its own step and output
    assert llm == {"operation": "transform", "instruction": "Tag it.", "concurrency": 16}


def test_the_plan_is_one_map_step_per_item_then_a_reduce_over_all_of_them() -> None:
    task = batch_task("parallel_processing", ["a", "b", "c"], {"instruction": "Tag.", "concurrency": 2})
    assert task.plan is not None
    steps = task.plan.steps
    assert [s.id for s in steps] == ["item-00000", "item-00001", "item-00002", REDUCE_STEP]
    assert all(s.agent_id == "batch_mapper" and not s.depends_on for s in steps[:3])
    reduce = steps[-1]
    assert reduce.agent_id == "batch_reducer" and reduce.trigger == "all_done"
    assert reduce.depends_on == ("item-00000", "item-00001", "item-00002")
    assert task_concurrency(task, 16) == 2 and task_concurrency(task, 1) == 1


# -- map and reduce ------------------------------------------------------------------------------


async def test_llm_items_map_to_outputs_and_labels_and_failed_items_are_listed() -> None:
    sentiment = Sentiment(failing=["broken row"])
    router = ProviderRouter({"default": [ScriptedProvider(default=sentiment)]})
    mapper = BatchMapper(REGISTRY, AgentRunner(tools={}, router=router), router)
    items = ["good food", "bad service", "broken row", "good view"]
    task = batch_task("parallel_processing", items, {"instruction": "Sentiment?", "operation": "classify"})
    runs, errors = await map_all(task, mapper)

    assert list(errors) == [2] and "scripted outage" in errors[2]
    first = runs[0]
    assert first.status is StepStatus.SUCCEEDED and first.provider == "scripted"
    assert [e.id for e in first.evidence] == ["item-00000:item:1", "item-00000:llm:1"]
    assert first.evidence[1].data == {"output": "It says good food.", "label": "positive"}
    assert sentiment.calls == dict.fromkeys(items, 1)

    ctx, _ = context(task, REDUCE_STEP, runs=runs)
    run, result = await BatchReducer().execute(ctx)
    assert result is not None and run.status is StepStatus.SUCCEEDED
    stats = result.stats
    assert (stats["items_total"], stats["items_succeeded"], stats["items_failed"]) == (4, 3, 1)
    assert stats["failed_items"] == [{"index": 2, "item": "broken row", "error": errors[2][:300]}]
    assert stats["label_counts"] == {"positive": 2, "negative": 1}
    assert [(o["index"], o["label"]) for o in stats["outputs"]] == [
        (0, "positive"),
        (1, "negative"),
        (3, "positive"),
    ]
    assert result.summary.startswith("3 of 4 items succeeded; 1 failed (#2 'broken row')")
    assert result.quality.completion == 0.75


async def test_an_llm_item_fails_clearly_without_a_route() -> None:
    mapper = BatchMapper(REGISTRY, AgentRunner(tools={}, router=None), None)
    task = batch_task("parallel_processing", ["x"], {"instruction": "Tag."})
    ctx, _ = context(task, item_step_id(0))
    with pytest.raises(OrchestrionError, match="no LLM route 'default' is configured"):
        await mapper.execute(ctx)


async def test_classify_without_a_label_fails_the_item() -> None:
    router = ProviderRouter({"default": [ScriptedProvider(default={"label": "", "output": "no idea"})]})
    mapper = BatchMapper(REGISTRY, AgentRunner(tools={}, router=router), router)
    task = batch_task("parallel_processing", ["x"], {"instruction": "Tag.", "operation": "classify"})
    ctx, _ = context(task, item_step_id(0))
    with pytest.raises(OrchestrionError, match="no label"):
        await mapper.execute(ctx)


async def test_targets_are_analysed_one_per_step_and_an_unreachable_one_fails(
    http_server: LocalHTTPServer,
) -> None:
    tools = build_builtin_tools()
    runner = AgentRunner(tools=tools, router=None, targets=POLICY)
    mapper = BatchMapper(REGISTRY, runner, None)
    live, dead = f"http://127.0.0.1:{http_server.port}/", f"http://127.0.0.1:{closed_port()}/"
    task = batch_task("concurrent_analysis", [live, dead], {"operation": "security_scan"})
    runs, errors = await map_all(task, mapper)

    assert list(errors) == [1] and f"security_scan on {dead!r} failed" in errors[1]
    assert "every tool of security_expert failed: cannot connect" in errors[1]
    ok = runs[0]
    assert ok.status is StepStatus.SUCCEEDED and ok.evidence and ok.findings
    assert all(e.id.startswith("item-00000:") for e in ok.evidence)
    assert [c.tool for c in ok.tool_calls] == list(PLAYBOOK)

    ctx, _ = context(task, REDUCE_STEP, runs=runs)
    _, result = await BatchReducer().execute(ctx)
    assert result is not None
    assert result.stats["failed_items"][0]["index"] == 1 and result.stats["items_succeeded"] == 1
    assert result.findings and all("Seen in 1 of 2 item(s)" in f.description for f in result.findings)
    assert result.stats["severity_counts"] == {
        s: sum(1 for f in result.findings if f.severity.value == s) for s in result.stats["severity_counts"]
    }
    assert "outputs" not in result.stats


async def test_each_file_is_analysed_on_its_own() -> None:
    runner = AgentRunner(tools=build_builtin_tools(), router=None)
    mapper = BatchMapper(REGISTRY, runner, None)
    files = [
        InputFile(name="risky.py", content="import subprocess\nsubprocess.call(input(), shell=True)\n"),
        InputFile(name="clean.py", content="def add(a: int, b: int) -> int:\n    return a + b\n"),
    ]
    task = batch_task("batch_operation", ["risky.py", "clean.py"], {"operation": "code_analysis"})
    runs, errors = await map_all(task, mapper, files=files)
    assert not errors
    risky, clean = runs
    assert any("shell" in f.title.lower() for f in risky.findings)
    assert not any("shell" in f.title.lower() for f in clean.findings)
    metrics = [e for e in clean.evidence if e.tool == "python_metrics"]
    assert metrics and all("risky" not in (e.location or "") + e.summary for e in metrics)
    ids = [e.id for run in runs for e in run.evidence]
    assert len(ids) == len(set(ids))

    ctx, _ = context(task, REDUCE_STEP, runs=runs)
    _, result = await BatchReducer().execute(ctx)
    assert result is not None and result.stats["items_failed"] == 0
    shell = next(f for f in result.findings if "shell" in f.title.lower())
    assert "Seen in 1 of 2 item(s): risky.py." in shell.description


async def test_the_reducer_counts_items_that_never_ran_as_failed() -> None:
    task = batch_task("parallel_processing", ["a", "b"], {"instruction": "Tag."})
    ran = AgentRun(
        task_id=task.id, step_id=item_step_id(0), agent_id="batch_mapper", status=StepStatus.SUCCEEDED
    )
    ctx, _ = context(task, REDUCE_STEP, runs=[ran])
    _, result = await BatchReducer().execute(ctx)
    assert result is not None
    assert result.stats["failed_items"] == [
        {"index": 1, "item": "b", "error": "the item was not run (skipped)"}
    ]
