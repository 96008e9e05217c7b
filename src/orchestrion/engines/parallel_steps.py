"""The Parallel engine's step executors: `BatchMapper` (one item) and `BatchReducer` (all of them).

A map step either applies the task's instruction to a text item with one schema-constrained LLM
call (`parallel_processing`), or runs the default specialists of the task type named by
`options.operation` on one file (`batch_operation`) or one target (`concurrent_analysis`). An item
fails by raising OrchestrionError with a message that says why (no LLM route, every tool failed on
the target...); the engine retries it, then checkpoints the failure and moves on.

The reduce step reads every map run, this execution's and those checkpointed by an earlier one, and
writes the task's Result: counts, every failed item with its error, per-item outputs and label
counts for LLM operations, and the items' findings merged and ranked (`engines/report.py`).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from orchestrion.agents.batch import BATCH_OPERATION, PARALLEL_PROCESSING
from orchestrion.agents.registry import AgentRegistry
from orchestrion.agents.runner import AgentRequest, AgentRunner
from orchestrion.domain.findings import Evidence, Finding
from orchestrion.domain.tasks import AgentRun, Result, StepStatus, Task, utcnow
from orchestrion.engines.parallel import DEFAULT_LLM_OPERATION
from orchestrion.engines.report import aggregate
from orchestrion.engines.steps import ITEM_PREFIX, StepContext, StepExecutor, StepOutput, item_index
from orchestrion.exceptions import BudgetExceededError, LeaseLostError, OrchestrionError, ProviderError
from orchestrion.providers.base import ChatRequest, Message
from orchestrion.providers.router import ProviderRouter
from orchestrion.tools.base import InputFile
from orchestrion.tools.policy import WorkspacePolicy

logger = logging.getLogger(__name__)

MAX_OUTPUT_CHARS = 300
MAX_LABEL_CHARS = 40
MAX_OUTPUTS_IN_RESULT = 1000
"""Per-item outputs kept in the Result; every output stays in its map step's run."""
MAX_FINDINGS_IN_RESULT = 200
MAX_EVIDENCE_PER_FINDING = 20
MAX_ERROR_CHARS = 300

_REPLY_SHAPES = {
    "transform": '{"output": "<the result>", "label": "<an optional short tag>"}',
    "classify": '{"label": "<one short category>", "output": "<one sentence saying why>"}',
    "summarise": '{"output": "<a one-sentence summary>"}',
    "extract": '{"output": "<the extracted value, empty if it is absent>"}',
}


def item_request(
    *, system_prompt: str, instruction: str, operation: str, item: str, max_tokens: int
) -> ChatRequest:
    """The one LLM call of a `parallel_processing` map step: short, and schema-constrained."""
    label: dict[str, Any] = {"type": "string", "maxLength": MAX_LABEL_CHARS}
    output: dict[str, Any] = {"type": "string", "maxLength": MAX_OUTPUT_CHARS}
    # The label comes first when it is the point, so that a small model commits to it first.
    properties = (
        {"label": label, "output": output} if operation == "classify" else {"output": output, "label": label}
    )
    schema = {
        "type": "object",
        "properties": properties,
        "required": ["label", "output"] if operation == "classify" else ["output"],
    }
    user = f"Instruction: {instruction}\n\nItem:\n{item}\n\nReply with JSON: {_REPLY_SHAPES[operation]}"
    return ChatRequest(
        messages=(Message(role="system", content=system_prompt), Message(role="user", content=user)),
        json_schema=schema,
        max_tokens=max_tokens,
        temperature=0.1,
        seed=7,
    )


class BatchMapper(StepExecutor):
    """Runs one map step: the task's operation on the item its step id names.

    Args:
        registry: Agents and task types (an operation's default specialists).
        runner: Runs those specialists (`batch_operation`, `concurrent_analysis`).
        router: The LLM router (`parallel_processing`); None when no LLM is configured.
        max_tokens: Output budget of one item's LLM call (capped at 256: outputs are short).
        policy: Reads an input path item's files; without it, path items are matched by name
            among the task's files.
    """

    kinds = ("mapper",)

    def __init__(
        self,
        registry: AgentRegistry,
        runner: AgentRunner,
        router: ProviderRouter | None,
        max_tokens: int = 256,
        *,
        policy: WorkspacePolicy | None = None,
    ) -> None:
        self._registry = registry
        self._runner = runner
        self._router = router
        self._max_tokens = min(max_tokens, 256)
        self._policy = policy

    async def execute(self, ctx: StepContext) -> StepOutput:
        index = item_index(ctx.step.id)
        items = ctx.task.inputs.get("items") or []
        if index >= len(items):
            raise OrchestrionError(f"{ctx.step.id}: the task has {len(items)} item(s), none at index {index}")
        item = str(items[index])
        if ctx.task.task_type == PARALLEL_PROCESSING:
            return await self._instruct(ctx, index, item), None
        return await self._operate(ctx, item), None

    async def _instruct(self, ctx: StepContext, index: int, item: str) -> AgentRun:
        spec, step_id = ctx.spec, ctx.step.id
        router = self._router
        if router is None or not router.has_route(spec.route):
            raise OrchestrionError(
                f"no LLM route {spec.route!r} is configured: parallel_processing needs an LLM "
                "(ORCHESTRION_LLM)"
            )
        operation = str(ctx.options.get("operation") or DEFAULT_LLM_OPERATION)
        if operation not in _REPLY_SHAPES:
            raise OrchestrionError(f"unknown parallel_processing operation {operation!r}")
        request = item_request(
            system_prompt=spec.system_prompt,
            instruction=str(ctx.options.get("instruction") or ""),
            operation=operation,
            item=item,
            max_tokens=self._max_tokens,
        )
        try:
            response = await router.complete(spec.route, request)
            data = response.json()
        except ProviderError as exc:
            raise OrchestrionError(f"the LLM call for item {index} failed: {exc.message}") from exc
        output = " ".join(str(data.get("output") or "").split())[:MAX_OUTPUT_CHARS]
        label = " ".join(str(data.get("label") or "").split())[:MAX_LABEL_CHARS] or None
        if operation == "classify" and label is None:
            raise OrchestrionError(f"the model gave item {index} no label")
        if not output and operation in ("transform", "summarise"):
            raise OrchestrionError(f"the model returned an empty output for item {index}")
        evidence = (
            Evidence(
                id=f"{step_id}:item:1",
                tool="item",
                summary=item[:160],
                data={"index": index, "chars": len(item)},
            ),
            Evidence(
                id=f"{step_id}:llm:1",
                tool="llm",
                summary=(f"[{label}] " if label else "") + output[:160],
                data={"output": output, "label": label},
            ),
        )
        return AgentRun(
            task_id=ctx.task.id,
            step_id=step_id,
            agent_id=spec.id,
            status=StepStatus.SUCCEEDED,
            evidence=evidence,
            summary=output,
            provider=response.provider,
            model=response.model,
            tokens_in=response.usage.input_tokens,
            tokens_out=response.usage.output_tokens,
            cost_usd=response.cost_usd,
            attempts=ctx.attempt,
        )

    async def _operate(self, ctx: StepContext, item: str) -> AgentRun:
        task = ctx.task
        operation = str(ctx.options.get("operation") or "")
        if not operation:
            raise OrchestrionError(f"{task.task_type} task has no options.operation")
        team = self._registry.task_type(operation).default_agents
        target_based = task.task_type != BATCH_OPERATION
        files: Sequence[InputFile] = () if target_based else await self._files_of(ctx, item)
        runs: list[AgentRun] = []
        for agent_id in team:
            spec = self._registry.agent(agent_id)
            # One agent per step keeps the step's id in its evidence ids; several get one each.
            step_id = ctx.step.id if len(team) == 1 else f"{ctx.step.id}/{agent_id}"
            request = AgentRequest(
                task_id=task.id,
                step_id=step_id,
                title=f"{task.title}: {item}"[:200],
                task_type=operation,
                target=item if target_based else None,
                files=files,
                allow_active_scanning=task.allow_active_scanning,
                owner_id=task.owner_id,
            )
            try:
                runs.append(await self._runner.run(spec, request, on_tool_call=ctx.on_tool_call))
            except (BudgetExceededError, LeaseLostError):
                raise
            except OrchestrionError as exc:
                raise OrchestrionError(f"{operation} on {item!r} failed ({agent_id}): {exc.message}") from exc
        calls = [c for run in runs for c in run.tool_calls]
        if calls and all(c.error for c in calls):
            errors = "; ".join(dict.fromkeys(f"{c.tool}: {c.error}" for c in calls))
            raise OrchestrionError(f"every tool failed on {item!r}: {errors}"[:1000])
        first_llm = next((r for r in runs if r.provider), None)
        return AgentRun(
            task_id=task.id,
            step_id=ctx.step.id,
            agent_id=ctx.spec.id,
            status=StepStatus.SUCCEEDED,
            tool_calls=tuple(calls),
            evidence=tuple(e for run in runs for e in run.evidence),
            findings=tuple(f for run in runs for f in run.findings),
            summary=" ".join(r.summary for r in runs if r.summary),
            provider=first_llm.provider if first_llm else None,
            model=first_llm.model if first_llm else None,
            tokens_in=sum(r.tokens_in for r in runs),
            tokens_out=sum(r.tokens_out for r in runs),
            cost_usd=sum(r.cost_usd for r in runs),
            attempts=ctx.attempt,
        )

    async def _files_of(self, ctx: StepContext, item: str) -> list[InputFile]:
        """The files of one `batch_operation` item: the upload of that name, else that input path."""
        uploaded = [f for f in ctx.files if f.source == "upload" and f.name == item]
        if uploaded:
            return uploaded[:1]
        if self._policy is not None:
            files = await self._policy.aread_files([item])
        else:
            prefix = item.strip().removeprefix("./").rstrip("/")
            files = [
                f
                for f in ctx.files
                if f.source == "workspace" and (f.name == prefix or f.name.startswith(prefix + "/"))
            ]
        if not files:
            raise OrchestrionError(f"no readable text file at input path {item!r}")
        return files


class BatchReducer(StepExecutor):
    """Combines every map run into the task's Result; fails only when it cannot aggregate at all."""

    kinds = ("reducer",)

    async def execute(self, ctx: StepContext) -> StepOutput:
        task, step = ctx.task, ctx.step
        items = [str(i) for i in task.inputs.get("items") or []]
        runs = {run.step_id: run for run in await ctx.dependency_runs()}
        map_steps = [d for d in step.depends_on if d.startswith(ITEM_PREFIX)]
        if len(map_steps) != len(items):
            raise OrchestrionError(
                f"cannot reduce: the plan has {len(map_steps)} map step(s) for {len(items)} item(s)"
            )
        succeeded: list[tuple[int, AgentRun]] = []
        failed: list[dict[str, Any]] = []
        for step_id in map_steps:
            index = item_index(step_id)
            run = runs.get(step_id)
            if run is not None and run.status is StepStatus.SUCCEEDED:
                succeeded.append((index, run))
            else:
                error = (run.error if run is not None else None) or "the item was not run (skipped)"
                failed.append({"index": index, "item": items[index][:200], "error": error[:MAX_ERROR_CHARS]})
        ok_runs = [run for _, run in succeeded]
        agg = aggregate(ok_runs, planned_specialists=len(items))
        findings = _with_items(agg.findings, succeeded, items)
        outputs, labels = _outputs(succeeded, items)
        operation = str(ctx.options.get("operation") or "")
        stats: dict[str, Any] = {
            "operation": operation,
            "concurrency": ctx.options.get("concurrency"),
            "items_total": len(items),
            "items_succeeded": len(succeeded),
            "items_failed": len(failed),
            "failed_items": failed,
            "evidence": sum(len(r.evidence) for r in ok_runs),
            "tool_calls": sum(len(r.tool_calls) for r in ok_runs),
            "tokens_in": sum(r.tokens_in for r in runs.values()),
            "tokens_out": sum(r.tokens_out for r in runs.values()),
            "cost_usd": round(sum(r.cost_usd for r in runs.values()), 8),
            "severity_counts": agg.counts,
            "findings_total": len(agg.findings),
        }
        if task.task_type == PARALLEL_PROCESSING:
            stats |= {
                "outputs": outputs[:MAX_OUTPUTS_IN_RESULT],
                "outputs_truncated": len(outputs) > MAX_OUTPUTS_IN_RESULT,
                "label_counts": dict(labels.most_common()),
            }
        summary = _summary(task, len(items), failed, labels, findings, agg.counts)
        result = Result(
            task_id=task.id,
            summary=summary,
            findings=tuple(findings[:MAX_FINDINGS_IN_RESULT]),
            remediation=agg.remediation,
            quality=agg.quality,
            stats=stats,
            created_at=utcnow(),
        )
        run = AgentRun(
            task_id=task.id,
            step_id=step.id,
            agent_id=ctx.spec.id,
            status=StepStatus.SUCCEEDED,
            summary=summary,
            attempts=ctx.attempt,
        )
        return run, result


def _outputs(
    succeeded: Sequence[tuple[int, AgentRun]], items: Sequence[str]
) -> tuple[list[dict[str, Any]], Counter[str]]:
    """Per-item LLM outputs in item order, and how often each label was given."""
    outputs: list[dict[str, Any]] = []
    labels: Counter[str] = Counter()
    for index, run in sorted(succeeded, key=lambda pair: pair[0]):
        produced = next((e for e in run.evidence if e.tool == "llm"), None)
        if produced is None:
            continue
        label = produced.data.get("label")
        if label:
            labels[str(label).lower()] += 1
        outputs.append(
            {
                "index": index,
                "item": items[index][:200],
                "output": produced.data.get("output"),
                "label": label,
            }
        )
    return outputs, labels


def _with_items(
    findings: Sequence[Finding], succeeded: Sequence[tuple[int, AgentRun]], items: Sequence[str]
) -> list[Finding]:
    """The merged findings, each saying which items it was seen in, its evidence list capped."""
    seen_in: dict[str, set[int]] = {}
    for index, run in succeeded:
        for finding in run.findings:
            seen_in.setdefault(finding.key(), set()).add(index)
    annotated = []
    for finding in findings:
        indexes = sorted(seen_in.get(finding.key(), ()))
        names = ", ".join(items[i][:80] for i in indexes[:5]) + (", ..." if len(indexes) > 5 else "")
        where = f"Seen in {len(indexes)} of {len(items)} item(s): {names}." if indexes else ""
        annotated.append(
            replace(
                finding,
                description=f"{finding.description} {where}".strip(),
                evidence_ids=finding.evidence_ids[:MAX_EVIDENCE_PER_FINDING],
            )
        )
    return annotated


def _summary(
    task: Task,
    total: int,
    failed: Sequence[Mapping[str, Any]],
    labels: Counter[str],
    findings: Sequence[Finding],
    counts: Mapping[str, int],
) -> str:
    """A deterministic summary: the counts first, then what the items produced."""
    text = f"{total - len(failed)} of {total} items succeeded"
    if failed:
        shown = ", ".join(f"#{f['index']} {f['item'][:40]!r}" for f in failed[:5])
        more = f" and {len(failed) - 5} more" if len(failed) > 5 else ""
        text += f"; {len(failed)} failed ({shown}{more}); retry the task to re-run only the failed items"
    text += "."
    if task.task_type == PARALLEL_PROCESSING:
        if labels:
            text += " Labels: " + ", ".join(f"{label} {n}" for label, n in labels.most_common(8)) + "."
    elif findings:
        parts = ", ".join(f"{n} {severity}" for severity, n in counts.items() if n)
        text += f" {len(findings)} distinct finding(s) ({parts}). Top: {findings[0].title}."
    else:
        text += " No findings."
    return text
