"""The Creative engine's judge: score every candidate on the rubric, rank, measure diversity.

Which judge scores (docs/creative.md, "Judge selection"):

- **LLM judge** when the judge route is *capable*: it is configured and its first deployment is
  not the embedded llama.cpp model (a 135M-parameter model cannot tell a good idea from a bad one).
  One schema-constrained request per candidate gives 0-10 verdicts on relevance, specificity,
  feasibility and clarity; novelty is always measured. If any verdict is unusable (the call failed,
  or the reply is not a valid verdict) every candidate is scored by the heuristic instead: mixing
  two judges' scales would make the ranking meaningless. The reason is in `stats.judge_note`.
- **Heuristic judge** otherwise (`engines/rubric.py` defines each measurement).

The task's quality score (each part 0..1):

- completion: candidates that succeeded / candidates planned.
- coverage: how much of the idea space the set spans: the mean pairwise distance of the candidates
  (embedding cosine when an embedder is available, else n-gram Jaccard); 0 with a single candidate.
- grounding: the winner's relevance to the brief.
- agreement: with the LLM judge, the concordance of its ranking with the heuristic one (the share
  of candidate pairs both order the same way); with the heuristic judge alone, 1.0 (no second
  opinion to disagree with).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from orchestrion.domain.tasks import AgentRun, QualityScore, Result, StepStatus, utcnow
from orchestrion.engines.diversity import (
    EMBEDDING_METHOD,
    NGRAM_METHOD,
    cosine_distance,
    embedding_matrix,
    nearest_distances,
    ngram_distance,
    ngram_matrix,
    summarise,
)
from orchestrion.engines.ideas import Candidate, creative_brief, read_candidate
from orchestrion.engines.rubric import (
    HEURISTIC_WEIGHTS,
    LLM_WEIGHTS,
    Verdict,
    concordance,
    heuristic_verdict,
    parse_verdict,
    rubric_description,
    verdict_request,
)
from orchestrion.engines.steps import CANDIDATE_PREFIX, StepContext, StepExecutor, StepOutput
from orchestrion.exceptions import OrchestrionError, ProviderError
from orchestrion.providers.base import ChatResponse
from orchestrion.providers.context import UsageMeter, current_call
from orchestrion.providers.router import ProviderRouter

logger = logging.getLogger(__name__)

Embedder = Callable[[Sequence[str]], Awaitable[list[list[float]]]]
"""Embeds texts (one vector each), e.g. the Recall engine's sentence-transformers backend."""

EMBEDDED_PROVIDER = "llama_cpp"
RUNNER_UP_CHARS = 100


def judge_capability(router: ProviderRouter | None, route: str) -> str | None:
    """None when `route` can judge; otherwise why not (no router, no such route, embedded model)."""
    if router is None:
        return "LLM calls are off"
    if not router.has_route(route):
        return f"no LLM route {route!r} is configured"
    first = router.routes()[route][0]
    deployment = next((d for d in router.deployments() if d.name == first), None)
    if deployment is not None and deployment.config.provider == EMBEDDED_PROVIDER:
        return f"route {route!r} starts with the embedded model {first}, too small to judge"
    return None


class IdeaJudge(StepExecutor):
    """Scores, ranks and measures the candidates; writes the task's Result.

    Args:
        router: The provider router (None: heuristic judge only).
        route: The judge route (ORCHESTRION_CREATIVE_JUDGE_ROUTE), used when capable.
        max_tokens: Upper bound on each verdict's generated tokens.
        embed: An embedder for embedding distances (None: n-gram measures only).
    """

    kinds = ("judge",)

    def __init__(
        self,
        router: ProviderRouter | None,
        *,
        route: str = "smart",
        max_tokens: int = 160,
        embed: Embedder | None = None,
    ) -> None:
        self._router = router
        self._route = route
        self._max_tokens = max_tokens
        self._embed = embed

    async def execute(self, ctx: StepContext) -> StepOutput:
        task, step = ctx.task, ctx.step
        planned = [d for d in step.depends_on if d.startswith(CANDIDATE_PREFIX)]
        runs = {r.step_id: r for r in await ctx.dependency_runs()}
        succeeded = [runs[s] for s in planned if s in runs and runs[s].status is StepStatus.SUCCEEDED]
        failed = [s for s in planned if s not in {r.step_id for r in succeeded}]
        if not succeeded:
            raise OrchestrionError(f"no candidate succeeded ({', '.join(failed)} failed)")
        candidates = [read_candidate(r) for r in succeeded]
        brief = creative_brief(task)
        texts = [c.text for c in candidates]

        ngram = ngram_matrix(texts)
        vectors, embed_note = await self._vectors([brief, *texts])
        embedded = embedding_matrix(vectors[1:]) if vectors else None
        novelty_method = EMBEDDING_METHOD if embedded is not None else NGRAM_METHOD
        nearest = nearest_distances(embedded if embedded is not None else ngram)
        # A candidate that restates the brief adds nothing, however far it is from the others.
        novelty = [min(d, ngram_distance(brief, t)) for d, t in zip(nearest, texts, strict=True)]
        similarity = [1.0 - cosine_distance(vectors[0], v) for v in vectors[1:]] if vectors else None
        heuristic = [
            heuristic_verdict(
                c.text,
                brief=brief,
                task_type=task.task_type,
                novelty=novelty[i],
                similarity=similarity[i] if similarity else None,
            )
            for i, c in enumerate(candidates)
        ]

        judge, weights, verdicts = "heuristic", HEURISTIC_WEIGHTS, heuristic
        note = judge_capability(self._router, self._route)
        response: ChatResponse | None = None
        if note is None:
            try:
                verdicts, response = await self._llm_verdicts(ctx, brief, candidates, novelty)
            except ProviderError as exc:
                note = f"llm:{self._route} verdicts unusable, scored by the heuristic: {exc.message}"
                logger.warning("creative judge fell back to the heuristic: %s", exc.message)
            else:
                judge, weights = f"llm:{self._route}", LLM_WEIGHTS

        scores = [v.score(weights) for v in verdicts]
        order = sorted(range(len(candidates)), key=lambda i: (-scores[i], candidates[i].index))
        ranked = [_ranked(rank, candidates[i], verdicts[i], scores[i]) for rank, i in enumerate(order, 1)]
        diversity: dict[str, Any] = {"ngram": summarise(ngram, method=NGRAM_METHOD)}
        if embedded is not None:
            diversity["embedding"] = summarise(embedded, method=EMBEDDING_METHOD)
        else:
            diversity["embedding"] = {"method": EMBEDDING_METHOD, "available": False, "reason": embed_note}
        spread = (diversity["embedding"] if embedded is not None else diversity["ngram"])["mean"]
        winner = order[0]
        if judge == "heuristic":
            agreement = 1.0
        else:
            agreement = concordance(scores, [v.score(HEURISTIC_WEIGHTS) for v in heuristic])
        quality = QualityScore(
            coverage=round(spread or 0.0, 4),
            grounding=round(verdicts[winner].criteria.get("relevance", 0.0), 4),
            agreement=agreement,
            completion=round(len(candidates) / len(planned), 4),
        )
        all_runs = list(runs.values())
        own = current_call().meter or UsageMeter()
        stats = {
            "brief": brief,
            "judge": judge,
            "judge_note": note,
            "rubric": rubric_description(weights, judge=judge, novelty_method=novelty_method),
            "candidates": ranked,
            "planned": len(planned),
            "succeeded": len(candidates),
            "failed_candidates": failed,
            "diversity": diversity,
            "tokens_in": sum(r.tokens_in for r in all_runs) + own.input_tokens,
            "tokens_out": sum(r.tokens_out for r in all_runs) + own.output_tokens,
            "cost_usd": round(sum(r.cost_usd for r in all_runs) + own.cost_usd, 8),
        }
        summary = _summary(ranked, judge=judge, planned=len(planned), failed=failed, diversity=diversity)
        result = Result(
            task_id=task.id,
            summary=summary,
            findings=(),
            remediation=(),
            quality=quality,
            stats=stats,
            created_at=utcnow(),
        )
        run = AgentRun(
            task_id=task.id,
            step_id=step.id,
            agent_id=ctx.spec.id,
            status=StepStatus.SUCCEEDED,
            summary=summary,
            provider=response.provider if response else None,
            model=response.model if response else None,
            attempts=ctx.attempt,
        )
        return run, result

    async def _vectors(self, texts: Sequence[str]) -> tuple[list[list[float]], str | None]:
        """Embeddings of `texts`, or none and why (no embedder, or it failed: measured without it)."""
        if self._embed is None:
            return [], "no embedder is available"
        try:
            vectors = await self._embed(texts)
        except Exception as exc:  # an optional backend's failure must not fail the judge
            logger.warning("embedding for the creative judge failed: %s", exc)
            return [], f"the embedder failed: {type(exc).__name__}: {exc}"
        if len(vectors) != len(texts) or len({len(v) for v in vectors}) != 1:
            return (
                [],
                f"the embedder returned {len(vectors)} vectors of mixed shapes for {len(texts)} texts",
            )
        return [list(v) for v in vectors], None

    async def _llm_verdicts(
        self, ctx: StepContext, brief: str, candidates: Sequence[Candidate], novelty: Sequence[float]
    ) -> tuple[list[Verdict], ChatResponse]:
        """One verdict per candidate, in order (ProviderError when any call or reply is unusable)."""
        assert self._router is not None
        verdicts: list[Verdict] = []
        response: ChatResponse | None = None
        for candidate, distance in zip(candidates, novelty, strict=True):
            response = await self._router.complete(
                self._route,
                verdict_request(
                    system_prompt=ctx.spec.system_prompt,
                    brief=brief,
                    candidate=candidate.text,
                    max_tokens=self._max_tokens,
                ),
            )
            verdicts.append(parse_verdict(response, novelty=distance))
        assert response is not None
        return verdicts, response


def _ranked(rank: int, candidate: Candidate, verdict: Verdict, score: float) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "rank": rank,
        "step_id": candidate.step_id,
        "text": candidate.text,
        "score": score,
        "criteria": dict(verdict.criteria),
        "variant": candidate.variant,
        "temperature": candidate.temperature,
        "provider": candidate.provider,
        "model": candidate.model,
    }
    if verdict.reason:
        entry["reason"] = verdict.reason
    return entry


def _summary(
    ranked: Sequence[dict[str, Any]],
    *,
    judge: str,
    planned: int,
    failed: Sequence[str],
    diversity: dict[str, Any],
) -> str:
    best = ranked[0]
    lines = [
        f"Winner (score {best['score']:.2f}, {best['variant']} @ {best['temperature']:g}): {best['text']}"
    ]
    for entry in ranked[1:3]:
        text = " ".join(str(entry["text"]).split())
        short = text if len(text) <= RUNNER_UP_CHARS else text[: RUNNER_UP_CHARS - 1] + "…"
        lines.append(f"{entry['rank']}. ({entry['score']:.2f}, {entry['variant']}) {short}")
    ngram = diversity["ngram"]
    spread = (
        f"mean n-gram distance {ngram['mean']:.2f} (closest pair {ngram['min']:.2f})"
        if ngram["mean"] is not None
        else "not measurable with one candidate"
    )
    footer = f"{len(ranked)} of {planned} candidates judged by {judge}; diversity: {spread}."
    if failed:
        footer += f" Failed: {', '.join(failed)}."
    return "\n".join([*lines, footer])
