"""The team's step executors: a specialist runs its playbook and analysis; the reporter aggregates.

Which task type a specialist works under depends on where it sits in the plan: a team's specialists
work on the task's own type; in the hybrid pipeline the `recall` step searches memory (as a
`context_search`) and the `analysis-*` steps analyse the inputs under `options.analysis_task_type`.
"""

from __future__ import annotations

import logging

from orchestrion.agents.prompts import summary_request, usable_text
from orchestrion.agents.registry import AgentRegistry
from orchestrion.agents.runner import AgentRequest, AgentRunner
from orchestrion.domain.tasks import AgentRun, Result, StepStatus, utcnow
from orchestrion.engines.report import aggregate, headline
from orchestrion.engines.steps import ANALYSIS_PREFIX, RECALL_STEP, StepContext, StepExecutor, StepOutput
from orchestrion.exceptions import ProviderError
from orchestrion.providers.context import UsageMeter, current_call

logger = logging.getLogger(__name__)

RECALL_TASK_TYPE = "context_search"
"""The task type the hybrid pipeline's `recall` step runs under (its playbook searches memory)."""


def playbook_task_type(ctx: StepContext) -> str:
    """The task type whose playbook a specialist step runs."""
    if ctx.step.id == RECALL_STEP:
        return RECALL_TASK_TYPE
    if ctx.step.id.startswith(ANALYSIS_PREFIX):
        return str(ctx.options.get("analysis_task_type") or ctx.task.task_type)
    return ctx.task.task_type


class SpecialistExecutor(StepExecutor):
    """Runs a specialist through the AgentRunner: playbook tools, then LLM analysis of the evidence."""

    kinds = ("specialist",)

    def __init__(self, runner: AgentRunner) -> None:
        self._runner = runner

    async def execute(self, ctx: StepContext) -> StepOutput:
        task = ctx.task
        run = await self._runner.run(
            ctx.spec,
            AgentRequest(
                task_id=task.id,
                step_id=ctx.step.id,
                title=task.title,
                task_type=playbook_task_type(ctx),
                target=task.target,
                files=ctx.files,
                allow_active_scanning=task.allow_active_scanning,
                owner_id=task.owner_id,
                options=ctx.options,
            ),
            on_tool_call=ctx.on_tool_call,
        )
        return run, None


class ReporterExecutor(StepExecutor):
    """Aggregates the specialists' runs into the task's Result, with an LLM summary when available."""

    kinds = ("reporter",)

    def __init__(self, registry: AgentRegistry, runner: AgentRunner, *, llm_max_tokens: int = 256) -> None:
        self._registry = registry
        self._runner = runner
        self._llm_max_tokens = llm_max_tokens

    async def execute(self, ctx: StepContext) -> StepOutput:
        task, step, spec = ctx.task, ctx.step, ctx.spec
        runs = await ctx.dependency_runs()
        agg = aggregate(runs, planned_specialists=len(step.depends_on))
        summary = headline(
            findings=agg.findings, counts=agg.counts, agents=len(step.depends_on), inputs=len(ctx.files)
        )
        response = None
        router = self._runner.router
        if spec.analysis and router is not None and router.has_route(spec.route):
            try:
                response = await router.complete(
                    spec.route,
                    summary_request(
                        system_prompt=spec.system_prompt,
                        title=task.title,
                        findings=agg.findings,
                        max_tokens=self._llm_max_tokens,
                    ),
                )
                text = str(response.json().get("summary") or "").strip()
                if usable_text(text):
                    summary = f"{summary}\n\n{text}"
            except ProviderError as exc:
                logger.warning("reporter summary unavailable: %s", exc.message)
        # The reporter's own calls (fallbacks and retries included) are on the step's meter.
        own = current_call().meter or UsageMeter()
        tokens_in = sum(r.tokens_in for r in runs) + own.input_tokens
        tokens_out = sum(r.tokens_out for r in runs) + own.output_tokens
        stats = {
            "agents": len(step.depends_on),
            "agents_succeeded": sum(1 for r in runs if r.status is StepStatus.SUCCEEDED),
            "inputs": len(ctx.files),
            "evidence": sum(len(r.evidence) for r in runs),
            "tool_calls": sum(len(r.tool_calls) for r in runs),
            "tokens_in": tokens_in,
            "tokens_out": tokens_out,
            "cost_usd": round(sum(r.cost_usd for r in runs) + own.cost_usd, 8),
            "severity_counts": agg.counts,
            "ungrounded_findings": sum(1 for f in agg.findings if not f.grounded),
        }
        result = Result(
            task_id=task.id,
            summary=summary,
            findings=agg.findings,
            remediation=agg.remediation,
            quality=agg.quality,
            stats=stats,
            created_at=utcnow(),
        )
        run = AgentRun(
            task_id=task.id,
            step_id=step.id,
            agent_id=spec.id,
            status=StepStatus.SUCCEEDED,
            summary=summary,
            provider=response.provider if response else None,
            model=response.model if response else None,
            tokens_in=response.usage.input_tokens if response else 0,
            tokens_out=response.usage.output_tokens if response else 0,
            cost_usd=response.cost_usd if response else 0.0,
            attempts=ctx.attempt,
        )
        return run, result
