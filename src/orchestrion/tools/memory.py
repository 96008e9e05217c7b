"""`MemorySearchTool`: search the task owner's memory; each hit becomes citable evidence.

The tool is given the recall engine's memory at construction (`runtime.py`) through the small
protocols below, so that tools do not import engines. It searches as the task's owner: their items
and shared ones, never another user's private items.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, ClassVar, Literal, Protocol

from pydantic import Field

from orchestrion.domain.findings import Severity
from orchestrion.exceptions import ToolError, ValidationError
from orchestrion.tools.base import Observation, ProposedFinding, Tool, ToolArgs, ToolContext, ToolOutput

DEFAULT_K = 8
MAX_K = 100
STATED_HITS = 3
"""Top hits the tool states as findings on its own, so a report lists them even without an LLM."""


class MemoryHitView(Protocol):
    """What the tool and the agent runner read of a memory search hit."""

    @property
    def item_id(self) -> str: ...
    @property
    def chunk_id(self) -> int: ...
    @property
    def title(self) -> str: ...
    @property
    def tags(self) -> tuple[str, ...]: ...
    @property
    def source(self) -> str: ...
    @property
    def task_id(self) -> str | None: ...
    @property
    def created_at(self) -> datetime: ...
    @property
    def snippet(self) -> str: ...
    @property
    def score(self) -> float: ...
    @property
    def matched_by(self) -> tuple[str, ...]: ...
    @property
    def scores(self) -> Mapping[str, float]: ...


class MemorySearcher(Protocol):
    """Searches memory as a user (`MemoryService.search`)."""

    async def search(
        self,
        *,
        owner_id: str,
        query: str,
        k: int = 10,
        tags: Sequence[str] = (),
        scope: str = "mine",
        sources: Sequence[str] = (),
        admin: bool = False,
    ) -> Sequence[MemoryHitView]:
        """The `k` best hits visible to `owner_id`."""
        ...


class MemoryContext(Protocol):
    """Memories relevant to a task, for an agent's context (`MemoryService.relevant`)."""

    async def relevant(
        self, *, owner_id: str, text: str, k: int, exclude_task_id: str | None = None
    ) -> Sequence[MemoryHitView]:
        """The `k` memories about `text` visible to `owner_id`, never from `exclude_task_id`."""
        ...


def hit_summary(hit: MemoryHitView) -> str:
    """One line about a hit, as evidence shows it."""
    origin = hit.source + (f" of task {hit.task_id}" if hit.task_id else "")
    return f"Memory '{hit.title}' ({origin}, {hit.created_at:%Y-%m-%d}): {hit.snippet}"


def hit_data(hit: MemoryHitView) -> dict[str, Any]:
    """The structured part of a hit, as evidence stores it."""
    return {
        "item_id": hit.item_id,
        "chunk_id": hit.chunk_id,
        "title": hit.title,
        "source": hit.source,
        "task_id": hit.task_id,
        "tags": list(hit.tags),
        "score": hit.score,
        "matched_by": list(hit.matched_by),
        "scores": dict(hit.scores),
    }


class MemorySearchArgs(ToolArgs):
    """Arguments of `memory_search`; the task's options (`query`, `k`, `tags`) take precedence."""

    query: str | None = Field(default=None, max_length=1000, description="What to look for.")
    k: int | None = Field(default=None, ge=1, le=MAX_K, description="How many items to return.")
    tags: list[str] = Field(default_factory=list, max_length=32, description="Items must have all.")
    sources: list[Literal["document", "task", "finding"]] = Field(
        default_factory=list, description="Only items from these sources (default: any)."
    )
    include_target: bool = Field(default=False, description="Search for the task's target too.")


class MemorySearchTool(Tool):
    """Search the memory of the task's owner (their items and shared ones)."""

    name: ClassVar[str] = "memory_search"
    description: ClassVar[str] = (
        "Search remembered documents, task reports and findings (keyword and meaning) for a query; "
        "returns the most relevant passages as evidence."
    )
    args_model: ClassVar[type[ToolArgs]] = MemorySearchArgs
    timeout_seconds: ClassVar[float] = 120.0  # the first search may load the embedding model

    def __init__(self, memory: MemorySearcher) -> None:
        self._memory = memory

    async def execute(self, args: ToolArgs, ctx: ToolContext) -> ToolOutput:
        """Search with the query from the options, the arguments, the brief, or the task's title."""
        assert isinstance(args, MemorySearchArgs)
        if not ctx.owner_id:
            raise ToolError("memory_search needs the task's owner", tool=self.name)
        options = ctx.options
        # A creative task's brief is what its ideas are about, a better query than its title.
        query = str(options.get("query") or args.query or options.get("brief") or ctx.title or "").strip()
        if args.include_target and ctx.target:
            query = f"{ctx.target} {query}".strip()
        k = _int_option(options.get("k"), args.k or DEFAULT_K)
        tags = _tags_option(options.get("tags"), args.tags)
        try:
            hits = await self._memory.search(
                owner_id=ctx.owner_id, query=query, k=k, tags=tags, sources=args.sources
            )
        except ValidationError as exc:
            raise ToolError(f"memory_search: {exc.message}", tool=self.name) from exc
        observations = tuple(
            Observation(summary=hit_summary(hit), data=hit_data(hit), location=f"memory:{hit.item_id}")
            for hit in hits
        )
        findings = tuple(
            ProposedFinding(
                title=f"Remembered: {hit.title}"[:120],
                severity=Severity.INFO,
                description=hit.snippet,
                observation_indexes=(index,),
            )
            for index, hit in enumerate(hits[:STATED_HITS])
        )
        return ToolOutput(
            observations=observations,
            findings=findings,
            data={"query": query, "k": k, "tags": list(tags), "hits": len(hits)},
        )


def _int_option(value: Any, default: int) -> int:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_K:
        raise ToolError(f"options.k must be an integer from 1 to {MAX_K}", tool=MemorySearchTool.name)
    return value


def _tags_option(value: Any, default: Sequence[str]) -> list[str]:
    if value is None:
        return list(default)
    if isinstance(value, str):
        return [t.strip() for t in value.split(",") if t.strip()]
    if isinstance(value, list) and all(isinstance(t, str) for t in value):
        return list(value)
    raise ToolError("options.tags must be a list of strings", tool=MemorySearchTool.name)
