"""The Creative engine's generator: one candidate per step, each from its own angle and temperature.

Candidate ``i`` writes from angle ``VARIANTS[i % len(VARIANTS)]`` at temperature
``temperature_for(i)``, so no two candidates share both. A little context from the steps before it
(the hybrid pipeline's recalled memories and analysis findings) is included. Its run records what
it was asked to do: `AgentRun.summary` is the candidate text, `AgentRun.provider`/`model` the
deployment that wrote it, and one Evidence with tool ``candidate`` carries ``{"index", "variant",
"temperature", "provider", "model", "text"}`` in its data, which the judge (`engines/judge.py`)
reads back through `StepContext.dependency_runs()` (`read_candidate`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from orchestrion.agents.creative import BRAINSTORMING, CREATIVE_GENERATION, INNOVATION
from orchestrion.domain.findings import Evidence
from orchestrion.domain.tasks import AgentRun, StepStatus, Task
from orchestrion.engines.diversity import words
from orchestrion.engines.steps import RECALL_STEP, StepContext, StepExecutor, StepOutput, candidate_index
from orchestrion.exceptions import OrchestrionError, OutputSchemaError
from orchestrion.providers.base import ChatRequest, ChatResponse, Message
from orchestrion.providers.router import ProviderRouter

CANDIDATE_TOOL = "candidate"
"""The `Evidence.tool` of the record a generator step leaves for the judge."""

TEMPERATURE_LOW = 0.4
TEMPERATURE_HIGH = 1.2
MAX_CONTEXT_LINES = 6
MAX_CONTEXT_CHARS = 140


@dataclass(frozen=True, kw_only=True)
class Variant:
    """An angle a candidate is written from: a name and the instruction the model is given."""

    name: str
    instruction: str


VARIANTS: tuple[Variant, ...] = (
    Variant(name="conventional", instruction="Give the solid answer an experienced expert would give."),
    Variant(name="contrarian", instruction="Challenge the obvious assumption and do the opposite."),
    Variant(name="analogy", instruction="Borrow a mechanism from an unrelated field and apply it here."),
    Variant(
        name="constraint_first", instruction="Assume one person, one week and no budget; design for that."
    ),
    Variant(
        name="user_centred", instruction="Start from the person who uses it: their frustration, then the fix."
    ),
    Variant(name="minimalist", instruction="Propose the simplest thing that could work, in few words."),
    Variant(name="bold", instruction="Be ambitious: the version ten times bigger than expected."),
    Variant(name="combination", instruction="Combine two existing ideas into one new one."),
    Variant(name="future_back", instruction="Picture the result five years from now and work back to today."),
    Variant(name="vivid", instruction="Make it playful and vivid, with one concrete image or story."),
    Variant(name="measurable", instruction="Anchor it in something measurable: a number, a metric, a test."),
    Variant(name="inversion", instruction="Ask what would make it fail, then design what prevents that."),
)
"""The angles, in the order candidates take them (candidate ``i`` takes ``i % len(VARIANTS)``)."""

TASK_INSTRUCTIONS: Mapping[str, str] = {
    CREATIVE_GENERATION: "Reply with the text itself, nothing else.",
    BRAINSTORMING: "Propose one idea in one to three sentences.",
    INNOVATION: "Propose one innovative, actionable idea in two to four sentences that uses the context.",
}


def variant_for(index: int) -> Variant:
    """The angle of candidate `index`."""
    return VARIANTS[index % len(VARIANTS)]


def temperature_for(index: int) -> float:
    """Candidate `index`'s temperature: the van der Corput sequence scaled to 0.4..1.2.

    0.4, 0.8, 0.6, 1.0, 0.5, 0.9, 0.7, 1.1, 0.45...: any first N candidates are spread over the
    whole range (the plan does not need to know N) and no two candidates share a temperature.
    """
    fraction, denominator, n = 0.0, 1.0, index
    while n:
        denominator *= 2
        n, bit = divmod(n, 2)
        fraction += bit / denominator
    return round(TEMPERATURE_LOW + (TEMPERATURE_HIGH - TEMPERATURE_LOW) * fraction, 4)


def creative_brief(task: Task) -> str:
    """What the candidates answer: `options.brief`, else the task title."""
    options = task.inputs.get("options") or {}
    brief = options.get("brief") if isinstance(options, Mapping) else None
    return str(brief).strip() if isinstance(brief, str) and brief.strip() else task.title


@dataclass(frozen=True, kw_only=True)
class Candidate:
    """A generated candidate as the judge reads it back from the generator's run."""

    step_id: str
    index: int
    text: str
    variant: str
    temperature: float
    provider: str | None = None
    model: str | None = None


def read_candidate(run: AgentRun) -> Candidate:
    """The candidate a successful generator run produced (older runs: angle recomputed from the id)."""
    index = candidate_index(run.step_id)
    record = next((e.data for e in run.evidence if e.tool == CANDIDATE_TOOL), {})
    return Candidate(
        step_id=run.step_id,
        index=index,
        text=str(record.get("text") or run.summary),
        variant=str(record.get("variant") or variant_for(index).name),
        temperature=float(record.get("temperature", temperature_for(index))),
        provider=run.provider,
        model=run.model,
    )


def dependency_context(runs: Sequence[AgentRun]) -> list[str]:
    """A few short lines from the steps before the candidates: memories first, then findings."""
    memories: list[str] = []
    findings: list[str] = []
    for run in runs:
        if run.status is not StepStatus.SUCCEEDED:
            continue
        if run.step_id == RECALL_STEP:
            memories.extend(f"Memory: {e.summary}" for e in run.evidence[:3])
        else:
            ranked = sorted(run.findings, key=lambda f: f.severity.rank)
            findings.extend(f"Finding ({f.severity.value}): {f.title}" for f in ranked[:3])
            if not run.findings and run.summary:
                findings.append(f"Analysis: {run.summary}")
    lines = memories[:3] + findings
    return [" ".join(line.split())[:MAX_CONTEXT_CHARS] for line in lines[:MAX_CONTEXT_LINES]]


def generation_request(
    *,
    system_prompt: str,
    brief: str,
    task_type: str,
    variant: Variant,
    temperature: float,
    seed: int,
    context: Sequence[str],
    max_tokens: int,
) -> ChatRequest:
    """One candidate's request: a little context, the brief, its angle; a plain-text reply.

    The reply is prose, not JSON: measured on the embedded SmolLM2-135M, a grammar-constrained
    ``{"text": ...}`` reply was empty or junk for 4 of 6 angles, plain text for none (docs/creative.md).
    `max_tokens` bounds it; `candidate_text` trims a reply cut off mid-sentence.
    """
    lines: list[str] = []
    if context:
        lines.append("Context:")
        lines.extend(f"- {line}" for line in context)
    instruction = TASK_INSTRUCTIONS.get(task_type, TASK_INSTRUCTIONS[BRAINSTORMING])
    lines.append(f"{brief.rstrip('.')}. {variant.instruction} {instruction}")
    return ChatRequest(
        messages=(
            Message(role="system", content=system_prompt),
            Message(role="user", content="\n".join(lines)),
        ),
        max_tokens=max_tokens,
        temperature=temperature,
        seed=seed,
    )


_LABEL_WORDS = frozenset("answer your my here is the a an idea text response candidate one final".split())
"""Words of a label a model may put before its answer ("Your answer:", "Here is one idea:")."""
_SENTENCE_END = re.compile(r"[.!?][\"'\u201d\u2019)\]]*(?=\s|$)")


def strip_label(text: str, prompt: str) -> str:
    """`text` without a leading label: up to 8 words before a colon, all label or prompt words.

    A small model often opens with "Your answer:" or echoes the instruction ("One idea in one to
    three sentences:") before the answer itself.
    """
    head, colon, rest = text.partition(":")
    label = words(head)
    if not colon or not rest.strip() or not 0 < len(label) <= 8:
        return text
    known = _LABEL_WORDS | set(words(prompt))
    if all(w in known for w in label):
        return rest.strip()
    return text


def candidate_text(response: ChatResponse, *, brief: str, prompt: str = "") -> str:
    """The candidate in a reply: its prose (or the ``text`` of a JSON object, if the model sent one).

    A leading label (`strip_label`: "Your answer:", an echo of `prompt`) and wrapping quotes are
    removed; a reply cut off by `max_tokens` is trimmed back to its last complete sentence when
    that keeps most of it.

    Raises:
        OutputSchemaError: When the reply holds no usable candidate: fewer than three letters, a JSON
            object without text, or the brief repeated back.
    """
    text = response.content.strip()
    if text.startswith("{"):
        text = str(response.json().get("text") or "")
    text = strip_label(text.strip(), prompt).strip("\"'\u201c\u201d").strip()
    if response.finish_reason == "length":
        ends = [m.end() for m in _SENTENCE_END.finditer(text)]
        if ends and ends[-1] >= len(text) * 0.5:
            text = text[: ends[-1]]
    if sum(c.isalpha() for c in text) < 3:
        raise OutputSchemaError(
            f"{response.provider}:{response.model} returned no usable candidate ({text[:40]!r})",
            provider=response.provider,
        )
    if " ".join(words(text)) == " ".join(words(brief)):
        raise OutputSchemaError(
            f"{response.provider}:{response.model} repeated the brief instead of answering it",
            provider=response.provider,
        )
    return text


class IdeaGenerator(StepExecutor):
    """Writes one candidate per generator step (`candidate-<i>`): angle and temperature by index.

    Args:
        router: The provider router (None: LLMs are off and every attempt fails, saying so).
        route: The route candidates are written on (default: the generator agent's own route).
        max_tokens: Upper bound on each candidate's generated tokens.
    """

    kinds = ("generator",)

    def __init__(
        self, router: ProviderRouter | None, *, route: str | None = None, max_tokens: int = 400
    ) -> None:
        self._router = router
        self._route = route
        self._max_tokens = max_tokens

    async def execute(self, ctx: StepContext) -> StepOutput:
        try:
            index = candidate_index(ctx.step.id)
        except ValueError as exc:
            raise OrchestrionError(f"{ctx.spec.id} runs candidate steps only: {exc}") from None
        route = self._route or ctx.spec.route
        if self._router is None or not self._router.has_route(route):
            raise OrchestrionError(f"no LLM route {route!r} is configured: candidates cannot be generated")
        variant, temperature = variant_for(index), temperature_for(index)
        brief = creative_brief(ctx.task)
        context = dependency_context(await ctx.dependency_runs()) if ctx.step.depends_on else []
        request = generation_request(
            system_prompt=ctx.spec.system_prompt,
            brief=brief,
            task_type=ctx.task.task_type,
            variant=variant,
            temperature=temperature,
            seed=index + 1,
            context=context,
            max_tokens=self._max_tokens,
        )
        response = await self._router.complete(route, request)
        text = candidate_text(response, brief=brief, prompt=request.messages[-1].content)
        record = {
            "index": index,
            "variant": variant.name,
            "temperature": temperature,
            "provider": response.provider,
            "model": response.model,
            "text": text,
        }
        evidence = Evidence(
            id=f"{ctx.step.id}:{CANDIDATE_TOOL}:1",
            tool=CANDIDATE_TOOL,
            summary=f"{variant.name} @ {temperature:g}: {' '.join(text.split())[:120]}",
            data=record,
        )
        run = AgentRun(
            task_id=ctx.task.id,
            step_id=ctx.step.id,
            agent_id=ctx.spec.id,
            status=StepStatus.SUCCEEDED,
            evidence=(evidence,),
            summary=text,
            provider=response.provider,
            model=response.model,
            attempts=ctx.attempt,
        )
        return run, None
