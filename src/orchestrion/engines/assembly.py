"""Building the engines from Settings: their rules and limits, and one DAG engine per engine.

Called by the composition root (`runtime.py`); kept apart so that it stays readable.
"""

from __future__ import annotations

import logging

from orchestrion.agents.recall import RECALL_TASK_TYPES
from orchestrion.agents.registry import AgentRegistry
from orchestrion.agents.runner import AgentRunner
from orchestrion.engines.ideas import IdeaGenerator
from orchestrion.engines.judge import IdeaJudge
from orchestrion.engines.parallel_steps import BatchMapper, BatchReducer
from orchestrion.engines.recall import MemoryService, build_embedder
from orchestrion.engines.recall.embeddings import Embedder
from orchestrion.engines.routing import ENGINES, EngineRules, parse_limits, parse_rules
from orchestrion.engines.team import TeamEngine
from orchestrion.monitoring.metrics import Metrics
from orchestrion.settings import Settings
from orchestrion.store.database import Database
from orchestrion.tools.policy import WorkspacePolicy

logger = logging.getLogger(__name__)


def build_engine_rules(settings: Settings) -> EngineRules:
    """Engine rules and per-process limits: the defaults, then the settings' overrides.

    By default the team and recall engines may use every worker, the parallel and creative engines
    half of them, so a burst of batches cannot take every worker from interactive tasks.

    Raises:
        ConfigurationError: On a malformed rule or limit, or an unknown engine.
    """
    half = max(1, settings.workers // 2)
    defaults = {"team": settings.workers, "parallel": half, "creative": half, "recall": settings.workers}
    return EngineRules(
        parse_rules(settings.engine_rules), parse_limits(settings.engine_max_concurrency, defaults=defaults)
    )


def build_engines(
    settings: Settings,
    *,
    db: Database,
    registry: AgentRegistry,
    runner: AgentRunner,
    metrics: Metrics,
    embedder: Embedder | None = None,
) -> dict[str, TeamEngine]:
    """The engines: one DAG engine each, with every step executor, differing in step concurrency.

    With an embedder (the `embeddings` extra), the creative judge measures diversity by meaning too.
    """
    max_tokens = min(settings.llm_max_tokens, 256)
    router = runner.router
    executors = (
        BatchMapper(
            registry,
            runner,
            router,
            max_tokens,
            policy=WorkspacePolicy(roots=tuple(settings.workspace_roots)),
        ),
        BatchReducer(),
        IdeaGenerator(router, max_tokens=settings.llm_max_tokens),
        IdeaJudge(router, route=settings.creative_judge_route, embed=embedder.embed if embedder else None),
    )
    concurrency = {
        "team": settings.step_concurrency,
        "parallel": settings.parallel_concurrency,
        "creative": max(settings.step_concurrency, settings.creative_max_candidates),
        "recall": settings.step_concurrency,
    }
    return {
        name: TeamEngine(
            name=name,
            db=db,
            registry=registry,
            runner=runner,
            metrics=metrics,
            executors=executors,
            step_concurrency=concurrency[name],
            retry_backoff=settings.retry_backoff_seconds,
            llm_max_tokens=max_tokens,
        )
        for name in ENGINES
    }


def build_memory(settings: Settings, *, db: Database) -> MemoryService:
    """The recall engine's memory, searching by meaning too when the `embeddings` extra is installed."""
    embedder, note = build_embedder(settings.embeddings, model_path=settings.embedding_model_path)
    if note:
        logger.info("memory search is keyword-only: %s", note)
    return MemoryService(
        db=db,
        embedder=embedder,
        vector_note=note,
        max_item_bytes=settings.memory_max_item_bytes,
        ignore_task_types=frozenset(t.id for t in RECALL_TASK_TYPES),
    )
