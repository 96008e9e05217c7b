"""`UntestedFunctionsTool`: public functions and methods no test references, most complex first.

`rank_untested` orders them by radon's cyclomatic complexity, then size; it reads the static code map of
`testmap.py` (static reference coverage, not line coverage) and also feeds `testplan.py`.
"""

from __future__ import annotations

import asyncio
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from pydantic import Field

from orchestrion.domain.findings import Severity
from orchestrion.exceptions import ToolError
from orchestrion.tools.base import (
    InputFile,
    Observation,
    ProposedFinding,
    Tool,
    ToolArgs,
    ToolContext,
    ToolOutput,
)
from orchestrion.tools.pyast import CodeModule, PublicCallable
from orchestrion.tools.testmap import MEASURE, CodeMap, build_code_map

with warnings.catch_warnings():
    # Same guard as in `code.py`: radon's dependencies may warn on import, never while measuring.
    warnings.simplefilter("ignore", DeprecationWarning)
    from radon.complexity import cc_visit
    from radon.visitors import Class, Function

_COMPLEX_UNTESTED = 11


def _complexities(module: CodeModule) -> dict[tuple[str, int], int]:
    """(qualname, line) -> cyclomatic complexity, from radon."""
    try:
        blocks = cc_visit(module.source)
    except (SyntaxError, ValueError, RecursionError):  # ast accepted it, but radon may still choke.
        return {}
    found: dict[tuple[str, int], int] = {}
    for block in blocks:
        if isinstance(block, Function):
            found[(block.fullname, block.lineno)] = block.complexity
        elif isinstance(block, Class):
            found.update({(m.fullname, m.lineno): m.complexity for m in block.methods})
    return found


@dataclass(frozen=True, kw_only=True)
class Untested:
    """A public function or method no test references, with its complexity and size."""

    target: PublicCallable
    complexity: int

    def as_data(self) -> dict[str, Any]:
        """JSON-ready description."""
        c = self.target
        return {
            "name": c.full_name,
            "kind": c.kind,
            "file": c.file,
            "line": c.line,
            "location": c.location,
            "complexity": self.complexity,
            "lines": c.size,
        }


def rank_untested(code_map: CodeMap) -> list[Untested]:
    """Unreferenced public functions and methods, most complex (then largest) first."""
    ranked: list[Untested] = []
    for module in code_map.modules:
        complexity = _complexities(module)
        ranked.extend(
            Untested(target=c, complexity=complexity.get((c.qualname, c.line), 1))
            for c in module.callables
            if c.kind != "class" and c.full_name not in code_map.referenced_by
        )
    return sorted(ranked, key=lambda u: (-u.complexity, -u.target.size, u.target.file, u.target.line))


class UntestedArgs(ToolArgs):
    """Arguments of `untested_functions`."""

    limit: int = Field(default=50, ge=1, le=500, description="Most callables to list.")


class UntestedFunctionsTool(Tool):
    """Public functions and methods no test references, most complex first."""

    name: ClassVar[str] = "untested_functions"
    description: ClassVar[str] = (
        "List public Python functions and methods that no test references (static, by AST), ranked by "
        "cyclomatic complexity and size, with file:line locations."
    )
    args_model: ClassVar[type[ToolArgs]] = UntestedArgs

    async def execute(self, args: ToolArgs, ctx: ToolContext) -> ToolOutput:
        """Rank the untested callables of the task's inputs."""
        if not isinstance(args, UntestedArgs):
            raise ToolError("untested_functions expects UntestedArgs", tool=self.name)
        return await asyncio.to_thread(list_untested, ctx.files, limit=args.limit)


def list_untested(files: Sequence[InputFile], *, limit: int = 50) -> ToolOutput:
    """Blocking body of `UntestedFunctionsTool`."""
    code_map = build_code_map(files)
    ranked = rank_untested(code_map)
    functions = sum(c.kind != "class" for c in code_map.callables())
    summary = (
        f"{len(ranked)} of {functions} public functions and methods are not referenced by any test "
        f"({MEASURE}); {min(limit, len(ranked))} listed, most complex first"
    )
    observations = [Observation(summary=summary, data={"untested": len(ranked), "functions": functions})]
    findings: list[ProposedFinding] = []
    for item in ranked[:limit]:
        c = item.target
        observations.append(
            Observation(
                summary=(
                    f"{c.full_name} ({c.kind}) at {c.location}: complexity {item.complexity}, "
                    f"{c.size} lines, not referenced by any test"
                ),
                data=item.as_data(),
                location=c.location,
            )
        )
        if item.complexity >= _COMPLEX_UNTESTED:
            findings.append(
                ProposedFinding(
                    title=f"Complex untested {c.kind} {c.full_name} ({c.location})",
                    severity=Severity.MEDIUM,
                    description=f"{c.full_name} has complexity {item.complexity} and no test names it.",
                    recommendation="Write tests for its branches first; test_plan drafts skeletons for them.",
                    observation_indexes=(len(observations) - 1,),
                )
            )
    data = {
        "measure": MEASURE,
        "total_untested": len(ranked),
        "total_functions": functions,
        "untested": [u.as_data() for u in ranked[:limit]],
    }
    return ToolOutput(observations=tuple(observations), findings=tuple(findings), data=data)
