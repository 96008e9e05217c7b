"""AgentRunner: playbook tools -> LLM analysis -> an AgentRun with grounded findings.

Phase 1 runs the agent's deterministic tool calls for the task type; every observation becomes
Evidence with an id unique in the task, and findings the tools state themselves cite it. Phase 2 asks
the agent's route for structured findings over that evidence. A finding is grounded only when it cites
at least one evidence id collected here; the model cannot mark its own findings grounded. When the LLM
is unavailable the run keeps what the tools established, unless it has nothing else (no evidence).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from orchestrion.agents.explore import explore
from orchestrion.agents.prompts import MAX_EVIDENCE_IN_PROMPT, analysis_request, select_evidence, usable_text
from orchestrion.agents.spec import AgentSpec
from orchestrion.domain.findings import Evidence, Finding, Severity
from orchestrion.domain.tasks import AgentRun, StepStatus, ToolCall
from orchestrion.exceptions import OrchestrionError, ProviderError
from orchestrion.providers.base import ChatResponse
from orchestrion.providers.router import ProviderRouter
from orchestrion.tools.base import InputFile, Tool, ToolContext, digest
from orchestrion.tools.memory import MemoryContext, MemorySearchTool, hit_data, hit_summary
from orchestrion.tools.targets import TargetPolicy

logger = logging.getLogger(__name__)

ToolCallHook = Callable[[ToolCall], Awaitable[None]]


@dataclass(frozen=True, kw_only=True)
class AgentRequest:
    """What a runner needs to know about the task and step it works on."""

    task_id: str
    step_id: str
    title: str
    task_type: str
    target: str | None
    files: Sequence[InputFile] = ()
    allow_active_scanning: bool = False
    owner_id: str = ""
    options: Mapping[str, Any] = field(default_factory=dict)


class AgentRunner:
    """Executes any AgentSpec.

    With `memory`, a specialist's analysis also sees the `memory_k` memories most relevant to its
    task (target and title) that the task's owner may see, as evidence it can cite.
    """

    def __init__(
        self,
        *,
        tools: Mapping[str, Tool],
        router: ProviderRouter | None,
        max_tokens: int = 512,
        targets: TargetPolicy | None = None,
        memory: MemoryContext | None = None,
        memory_k: int = 3,
    ) -> None:
        self._tools = tools
        self._router = router
        self._max_tokens = max_tokens
        self._targets = targets
        self._memory = memory
        self._memory_k = memory_k

    @property
    def router(self) -> ProviderRouter | None:
        """The provider router (None when LLM analysis is disabled)."""
        return self._router

    async def run(
        self, spec: AgentSpec, request: AgentRequest, *, on_tool_call: ToolCallHook | None = None
    ) -> AgentRun:
        """Run one specialist agent and return its checkpointable result."""
        started = time.perf_counter()
        ctx = ToolContext(
            task_id=request.task_id,
            step_id=request.step_id,
            files=request.files,
            target=request.target,
            targets=self._targets,
            allow_active_scanning=request.allow_active_scanning,
            owner_id=request.owner_id,
            title=request.title,
            options=request.options,
        )
        calls: list[ToolCall] = []
        evidence: list[Evidence] = []
        findings: list[Finding] = []
        for call in spec.playbook(request.task_type):
            tool_call, new_evidence, new_findings = await self._call_tool(
                spec, call.tool, dict(call.args), ctx, len(evidence)
            )
            calls.append(tool_call)
            evidence.extend(new_evidence)
            findings.extend(new_findings)
            if on_tool_call is not None:
                await on_tool_call(tool_call)

        if spec.max_steps and self._can_explore(spec):
            await self._explore(spec, request, ctx, calls, evidence, findings, on_tool_call)

        summary = _tool_summary(calls, evidence, findings)
        response: ChatResponse | None = None
        if spec.analysis and self._router is not None and self._router.has_route(spec.route):
            remembered = await self._recall(spec, request, evidence)
            try:
                response, llm_summary, llm_findings = await self._analyse(
                    spec, request, evidence, findings, remembered
                )
            except ProviderError as exc:
                if not evidence:
                    raise
                logger.warning("analysis unavailable for %s: %s", spec.id, exc.message)
                summary += f" LLM analysis unavailable ({exc.code})."
            else:
                findings.extend(llm_findings)
                if usable_text(llm_summary):
                    summary = f"{summary} {llm_summary}".strip()
        elif calls and all(c.error for c in calls):
            raise OrchestrionError(
                f"every tool of {spec.id} failed: " + "; ".join(c.error or "" for c in calls)
            )

        return AgentRun(
            task_id=request.task_id,
            step_id=request.step_id,
            agent_id=spec.id,
            status=StepStatus.SUCCEEDED,
            tool_calls=tuple(calls),
            evidence=tuple(evidence),
            findings=tuple(findings),
            summary=summary,
            provider=response.provider if response else None,
            model=response.model if response else None,
            tokens_in=response.usage.input_tokens if response else 0,
            tokens_out=response.usage.output_tokens if response else 0,
            cost_usd=response.cost_usd if response else 0.0,
            duration_seconds=time.perf_counter() - started,
        )

    def _can_explore(self, spec: AgentSpec) -> bool:
        router = self._router
        return router is not None and router.has_route(spec.route) and router.supports_tools(spec.route)

    async def _explore(
        self,
        spec: AgentSpec,
        request: AgentRequest,
        ctx: ToolContext,
        calls: list[ToolCall],
        evidence: list[Evidence],
        findings: list[Finding],
        on_tool_call: ToolCallHook | None,
    ) -> None:
        """The autonomous phase (`explore.py`); its tool calls join the playbook's."""
        assert self._router is not None

        async def call_tool(name: str, args: dict[str, object]) -> tuple[str, list[Evidence]]:
            tool_call, new_evidence, new_findings = await self._call_tool(
                spec, name, dict(args), ctx, len(evidence)
            )
            calls.append(tool_call)
            evidence.extend(new_evidence)
            findings.extend(new_findings)
            if on_tool_call is not None:
                await on_tool_call(tool_call)
            return tool_call.error or "", new_evidence

        try:
            await explore(
                router=self._router,
                spec=spec,
                tools=self._tools,
                title=request.title,
                task_type=request.task_type,
                target=request.target,
                evidence=list(evidence),
                call_tool=call_tool,
                max_tokens=self._max_tokens,
            )
        except ProviderError as exc:
            # What the playbook and the turns so far gathered stands; the analysis still runs.
            logger.warning("autonomous phase of %s ended early: %s", spec.id, exc.message)

    async def _call_tool(
        self, spec: AgentSpec, name: str, args: dict[str, Any], ctx: ToolContext, offset: int
    ) -> tuple[ToolCall, list[Evidence], list[Finding]]:
        tool = self._tools[name]
        started = time.perf_counter()
        try:
            output, duration = await tool.run(args, ctx)
        except OrchestrionError as exc:
            error = exc.message
        except Exception as exc:  # a tool bug must not take the step down with it
            logger.exception("tool %s crashed", name)
            error = f"{type(exc).__name__}: {exc}"
        else:
            evidence = [
                Evidence(
                    id=f"{ctx.step_id}:{name}:{offset + i + 1}",
                    tool=name,
                    summary=o.summary,
                    data=o.data,
                    location=o.location,
                )
                for i, o in enumerate(output.observations)
            ]
            findings = [
                Finding(
                    title=f.title,
                    severity=f.severity,
                    description=f.description,
                    recommendation=f.recommendation,
                    evidence_ids=tuple(evidence[i].id for i in f.observation_indexes),
                    agent_id=spec.id,
                    grounded=bool(f.observation_indexes),
                )
                for f in output.findings
            ]
            call = ToolCall(
                tool=name,
                arguments=args,
                result_digest=digest({"observations": [e.summary for e in evidence], "data": output.data}),
                duration_seconds=duration,
                evidence_ids=tuple(e.id for e in evidence),
            )
            return call, evidence, findings
        call = ToolCall(
            tool=name,
            arguments=args,
            result_digest=digest({"error": error}),
            duration_seconds=time.perf_counter() - started,
            error=error,
        )
        return call, [], []

    async def _recall(self, spec: AgentSpec, request: AgentRequest, evidence: list[Evidence]) -> list[str]:
        """Add the memories about the task to `evidence` (ids `<step>:memory:<n>`); returns their ids.

        One search per run, skipped for agents that search memory themselves; a failure only costs
        the context.
        """
        memory = self._memory
        if memory is None or self._memory_k <= 0 or not request.owner_id or spec.kind != "specialist":
            return []
        if MemorySearchTool.name in spec.tools:
            return []
        text = " ".join(part for part in (request.target, request.title) if part)
        try:
            hits = await memory.relevant(
                owner_id=request.owner_id, text=text, k=self._memory_k, exclude_task_id=request.task_id
            )
        except Exception:
            logger.warning("memory context unavailable for %s", spec.id, exc_info=True)
            return []
        remembered = [
            Evidence(
                id=f"{request.step_id}:memory:{n}",
                tool="memory",
                summary=hit_summary(hit),
                data=hit_data(hit),
                location=f"memory:{hit.item_id}",
            )
            for n, hit in enumerate(hits, start=1)
        ]
        evidence.extend(remembered)
        return [e.id for e in remembered]

    async def _analyse(
        self,
        spec: AgentSpec,
        request: AgentRequest,
        evidence: Sequence[Evidence],
        tool_findings: Sequence[Finding],
        remembered: Sequence[str] = (),
    ) -> tuple[ChatResponse, str, list[Finding]]:
        assert self._router is not None
        cited = [i for f in sorted(tool_findings, key=lambda f: f.severity.rank) for i in f.evidence_ids]
        # The task's own evidence comes first (E1...); the memories follow it, always shown, as context.
        recalled = set(remembered)
        memories = [e for e in evidence if e.id in recalled]
        own = select_evidence([e for e in evidence if e.id not in recalled], cited)
        shown = own[: max(0, MAX_EVIDENCE_IN_PROMPT - len(memories))] + memories
        chat = analysis_request(
            system_prompt=spec.system_prompt,
            title=request.title,
            task_type=request.task_type,
            target=request.target,
            shown=shown,
            tool_findings=tool_findings,
            max_findings=spec.max_findings,
            max_tokens=self._max_tokens,
        )
        response = await self._router.complete(spec.route, chat)
        data = response.json()
        findings = parse_findings(
            data.get("findings"), shown=shown, agent_id=spec.id, limit=spec.max_findings
        )
        summary = str(data.get("summary") or "").strip()[:400]
        return response, summary, findings


def parse_findings(raw: Any, *, shown: Sequence[Evidence], agent_id: str, limit: int) -> list[Finding]:
    """Turn the model's findings into domain findings, resolving E-labels and judging grounding."""
    if not isinstance(raw, list):
        return []
    labels = {f"E{i + 1}": e.id for i, e in enumerate(shown)}
    known_ids = {e.id for e in shown}
    findings: list[Finding] = []
    for item in raw[:limit]:
        if not isinstance(item, dict):
            continue
        title = " ".join(str(item.get("title") or "").split())[:120]
        if not _is_prose(title):
            continue
        cited: list[str] = []
        for ref in item.get("evidence") or []:
            text = str(ref).strip().strip("[]")
            resolved = labels.get(text.upper()) or (text if text in known_ids else None)
            if resolved and resolved not in cited:
                cited.append(resolved)
        findings.append(
            Finding(
                title=title,
                severity=Severity.parse(str(item.get("severity") or "info")),
                description=str(item.get("description") or "")[:400],
                recommendation=str(item.get("recommendation") or "")[:300],
                evidence_ids=tuple(cited),
                agent_id=agent_id,
                grounded=bool(cited),
            )
        )
    return findings


def _is_prose(text: str) -> bool:
    """At least two words with letters: weak models emit titles like "1" or "{{message}}"."""
    return sum(1 for word in text.split() if any(c.isalpha() for c in word) and "{" not in word) >= 2


def _tool_summary(
    calls: Sequence[ToolCall], evidence: Sequence[Evidence], findings: Sequence[Finding]
) -> str:
    if not calls:
        return ""
    failed = sum(1 for c in calls if c.error)
    text = f"{len(calls)} tool call(s), {len(evidence)} observation(s), {len(findings)} tool finding(s)"
    if failed:
        text += f", {failed} tool(s) failed"
    return text + "."
