"""`TestPlanTool`: a test plan and pytest skeletons for the most complex untested callables.

The skeleton writer drafts cases from signatures, type hints, defaults, raise statements and branch
conditions, all read by AST: the user's code is never imported or run. Targets come from
`rank_untested` (`untested.py`), which ranks what the static code map of `testmap.py` finds unreferenced.
"""

from __future__ import annotations

import ast
import asyncio
import builtins
import itertools
import json
import keyword
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from pydantic import Field

from orchestrion.exceptions import ToolError
from orchestrion.tools.base import (
    InputFile,
    Observation,
    Tool,
    ToolArgs,
    ToolContext,
    ToolOutput,
)
from orchestrion.tools.pyast import (
    CodeModule,
    FunctionNode,
    PublicCallable,
    _decorator_names,
    _is_literal,
    _optional,
    _outcomes,
    _type_head,
)
from orchestrion.tools.testmap import MEASURE, build_code_map
from orchestrion.tools.untested import Untested, rank_untested

logger = logging.getLogger(__name__)

_LISTED = 20


_SAMPLES: dict[str, tuple[str, str]] = {  # type name -> (typical, boundary) literal
    "int": ("1", "0"),
    "float": ("1.0", "0.0"),
    "str": ('"text"', '""'),
    "bytes": ('b"data"', 'b""'),
    "bool": ("True", "False"),
    "list": ("[1]", "[]"),
    "List": ("[1]", "[]"),
    "Sequence": ("[1]", "[]"),
    "Iterable": ("[1]", "[]"),
    "tuple": ("(1,)", "()"),
    "set": ("{1}", "set()"),
    "dict": ('{"key": 1}', "{}"),
    "Dict": ('{"key": 1}', "{}"),
    "Mapping": ('{"key": 1}', "{}"),
}
_NAME_SAMPLES: tuple[tuple[re.Pattern[str], tuple[str, str]], ...] = (
    (re.compile(r"(^|_)(path|file|filename|dirname)$"), ('"example.txt"', '""')),
    (re.compile(r"(^|_)(url|uri|endpoint)$"), ('"https://example.com"', '""')),
    (re.compile(r"^(n|count|size|limit|index|idx|digits|num_\w+|max_\w+|min_\w+|\w+_count)$"), ("1", "0")),
    (
        re.compile(r"^(is|has|should|use|allow|enable)_\w+$|^(enabled|strict|verbose|force|debug)$"),
        ("True", "False"),
    ),
    (re.compile(r"(^|_)(timeout|rate|ratio|amount|price|value|discount|weight)$"), ("1.0", "0.0")),
    (
        re.compile(r"(^|_)(name|text|title|label|key|message|owner|prefix|suffix|sku|fmt|mode)$"),
        ('"text"', '""'),
    ),
)
_OPERATOR_WORDS = (
    ("<=", " le "),
    (">=", " ge "),
    ("==", " eq "),
    ("!=", " ne "),
    ("<", " lt "),
    (">", " gt "),
)
_MAX_BRANCH_CASES = 6
_SKELETON_BUDGET = 56_000  # JSON-encoded characters of skeletons and plan; TestPlanTool keeps 64 KiB.
# Names the skeletons define or pytest reserves; parameters called so get a `_value` suffix.
_RESERVED = frozenset({"pytest", "expected", "instance", "result", "SKELETON", "request"})


@dataclass(frozen=True, kw_only=True)
class _Param:
    name: str
    kind: str  # "positional", "keyword", "star" or "double_star"
    annotation: ast.expr | None
    default: ast.expr | None

    def hint(self) -> str:
        text = {"star": "*", "double_star": "**"}.get(self.kind, "") + self.name
        if self.annotation is not None:
            text += f": {ast.unparse(self.annotation)}"
        if self.default is not None:
            text += f" = {ast.unparse(self.default)}" if self.annotation else f"={ast.unparse(self.default)}"
        return text

    def samples(self) -> tuple[str, str]:
        """Typical and boundary values: a literal default, else by type hint, else by name."""
        by_type = _SAMPLES.get(_type_head(self.annotation) or "")
        by_name = next((v for pattern, v in _NAME_SAMPLES if pattern.search(self.name)), None)
        if by_type == _SAMPLES["str"] and by_name and by_name[0].startswith('"'):
            by_type = by_name  # A str named `url` or `path` deserves a realistic value.
        guess = by_type or by_name
        none_default = isinstance(self.default, ast.Constant) and self.default.value is None
        if self.default is not None and _is_literal(self.default) and not (none_default and guess):
            # A literal default is the most typical value there is; the None path has its own case.
            return ast.unparse(self.default), guess[1] if guess else ast.unparse(self.default)
        return guess or ("None", "None")

    @property
    def accepts_none(self) -> bool:
        is_none = isinstance(self.default, ast.Constant) and self.default.value is None
        return is_none or _optional(self.annotation)


def _params(node: FunctionNode, *, bound: bool) -> list[_Param]:
    """Parameters of `node`, without the first one of a bound method."""
    args = node.args
    positional = [*args.posonlyargs, *args.args]
    defaults: list[ast.expr | None] = [None] * (len(positional) - len(args.defaults))
    defaults.extend(args.defaults)
    params: list[_Param] = []
    for index, (arg, default) in enumerate(zip(positional, defaults, strict=True)):
        if bound and index == 0:
            continue
        kind = "positional" if index < len(args.posonlyargs) or default is None else "keyword"
        params.append(_Param(name=arg.arg, kind=kind, annotation=arg.annotation, default=default))
    if args.vararg:
        params.append(
            _Param(name=args.vararg.arg, kind="star", annotation=args.vararg.annotation, default=None)
        )
    for arg, kw_default in zip(args.kwonlyargs, args.kw_defaults, strict=True):
        params.append(_Param(name=arg.arg, kind="keyword", annotation=arg.annotation, default=kw_default))
    if args.kwarg:
        params.append(
            _Param(name=args.kwarg.arg, kind="double_star", annotation=args.kwarg.annotation, default=None)
        )
    return params


def _arguments(params: Sequence[_Param], values: dict[str, str]) -> str:
    parts = [
        values[p.name] if p.kind == "positional" else f"{p.name}={values[p.name]}"
        for p in params
        if p.kind in ("positional", "keyword")
    ]
    return ", ".join(parts)


def _exception_ref(exc: ast.expr, module: CodeModule) -> tuple[str, set[str]]:
    """How a test names `exc`, and what it must import from the module for that."""
    root = exc
    while isinstance(root, ast.Attribute):
        root = root.value
    if isinstance(exc, ast.Name):
        builtin = getattr(builtins, exc.id, None)
        if isinstance(builtin, type) and issubclass(builtin, BaseException):
            return exc.id, set()
    if isinstance(root, ast.Name) and root.id in module.top_level:
        return ast.unparse(exc), {root.id}
    return "Exception", set()  # A local variable or a call result: the type is unknown statically.


def _slug(text: str) -> str:
    for operator, word in _OPERATOR_WORDS:
        text = text.replace(operator, word)
    return re.sub(r"[^0-9A-Za-z]+", "_", text).strip("_").lower()[:40].rstrip("_") or "case"


def _snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", name).lower()


def _comment(text: str) -> str:
    return " ".join(text.split())


@dataclass(frozen=True, kw_only=True)
class PlannedCase:
    """One planned test: its name, what it covers and its source."""

    name: str
    kind: str  # "typical", "raises", "none" or "branch"
    detail: str
    line: int
    code: str


@dataclass(frozen=True, kw_only=True)
class _CallSite:
    """How a test reaches the callable: set-up lines, then a call (or attribute read) expression."""

    setup: tuple[str, ...]
    callee: str
    params: tuple[_Param, ...]
    is_async: bool
    is_property: bool

    @classmethod
    def of(cls, target: PublicCallable, node: FunctionNode, module: CodeModule) -> _CallSite:
        decorators = _decorator_names(node)
        owner, _, method = target.qualname.rpartition(".")
        bound = bool(owner) and "staticmethod" not in decorators
        setup: tuple[str, ...] = ()
        callee = target.qualname
        if bound and "classmethod" not in decorators:
            init = next((i for i in _class_body(module, owner) if i.name == "__init__"), None)
            init_params = _params(init, bound=True) if init else []
            arguments = _arguments(init_params, {p.name: p.samples()[0] for p in init_params})
            setup, callee = (f"instance = {owner}({arguments})",), f"instance.{method}"
        return cls(
            setup=setup,
            callee=callee,
            params=tuple(_params(node, bound=bound)),
            is_async=isinstance(node, ast.AsyncFunctionDef),
            is_property=bool(decorators & {"property", "cached_property"}),
        )

    @property
    def passed(self) -> list[_Param]:
        """Parameters a call passes (variadic ones are left to the author)."""
        return [p for p in self.params if p.kind in ("positional", "keyword")]

    def call(self, values: dict[str, str]) -> str:
        expression = self.callee if self.is_property else f"{self.callee}({_arguments(self.params, values)})"
        return f"await {expression}" if self.is_async else expression

    def source(
        self, name: str, body: Sequence[str], *, arguments: Sequence[str] = (), marks: Sequence[str] = ()
    ) -> str:
        """A skip-marked test function; leading comment lines of `body` go before the set-up."""
        comments = list(itertools.takewhile(lambda line: line.startswith("#"), body))
        statements = [*comments, *self.setup, *body[len(comments) :]]
        asyncio_mark = ["@pytest.mark.asyncio"] if self.is_async else []
        header = f"{'async ' if self.is_async else ''}def {name}({', '.join(arguments)}):"
        return "\n".join(
            ["@SKELETON", *asyncio_mark, *marks, header, *(f"    {line}" for line in statements)]
        )


def _class_body(module: CodeModule, name: str) -> list[FunctionNode]:
    for c in module.callables:
        if c.qualname == name and isinstance(c.node, ast.ClassDef):
            return [i for i in c.node.body if isinstance(i, ast.FunctionDef | ast.AsyncFunctionDef)]
    return []


def _unique(name: str, taken: set[str]) -> str:
    unique, n = name, 1
    while unique in taken:
        n += 1
        unique = f"{name}_{n}"
    taken.add(unique)
    return unique


def plan_callable(item: Untested, module: CodeModule, taken: set[str]) -> tuple[list[PlannedCase], set[str]]:
    """Pytest skeletons for one untested function or method, and the names they import from its module.

    Args:
        item: The callable to plan for.
        module: Its module.
        taken: Test names already used in the same skeleton file; updated.
    """
    target = item.target
    if isinstance(target.node, ast.ClassDef):
        return [], set()
    site = _CallSite.of(target, target.node, module)
    imports = {target.qualname.partition(".")[0]}
    cases: list[PlannedCase] = []
    base = f"test_{_snake(target.qualname.replace('.', '_'))}"
    typical = {p.name: p.samples()[0] for p in site.params}
    todo = "assert result == ...  # TODO: expected value"

    def add(name: str, kind: str, detail: str, line: int, body: list[str], **extra: Sequence[str]) -> None:
        unique = _unique(name, taken)
        code = site.source(unique, body, **extra)
        cases.append(PlannedCase(name=unique, kind=kind, detail=detail, line=line, code=code))

    hints = "; ".join(p.hint() for p in site.params) or "no parameters"
    where = f"# {_comment(f'{target.location} {target.qualname}({hints})')}"
    if site.passed:
        local = {
            p.name: f"{p.name}_value" if p.name in module.top_level | _RESERVED else p.name
            for p in site.params
        }
        arguments = [*(local[p.name] for p in site.passed), "expected"]
        rows = [[p.samples()[i] for p in site.passed] for i in (0, 1)]
        ids = ["typical", "boundary"][: 1 if rows[0] == rows[1] else 2]
        params = [
            f'        pytest.param({", ".join(row)}, ..., id="{i}"),'
            for row, i in zip(rows, ids, strict=False)
        ]
        names = ", ".join(f'"{a}"' for a in arguments)
        marks = ["@pytest.mark.parametrize(", f"    ({names}),", "    [", *params, "    ],", ")"]
        body = [where, f"result = {site.call(local)}", "assert result == expected"]
        detail = f"typical and boundary inputs ({hints})"
        add(base, "typical", detail, target.line, body, arguments=arguments, marks=marks)
    else:
        add(base, "typical", "typical call", target.line, [where, f"result = {site.call({})}", todo])
    raises, branches = _outcomes(target.node)
    for exc, guard, line in raises:
        reference, needed = _exception_ref(exc, module)
        detail = f"raises {ast.unparse(exc)}" + (f" when {guard}" if guard else "")
        if any(c.kind == "raises" and c.detail.startswith(f"raises {ast.unparse(exc)}") for c in cases):
            continue  # One pytest.raises case per exception type; its other raise sites are branches.
        imports |= needed
        body = [
            f"# {_comment(f'{target.file}:{line} {detail}')}",
            "# TODO: choose arguments that trigger it.",
        ]
        body += [f"with pytest.raises({reference}):", f"    {site.call(typical)}"]
        add(f"{base}_raises_{_slug(reference.rpartition('.')[2])}", "raises", detail, line, body)
    for p in site.passed:
        if p.accepts_none:
            body = [
                f"# {_comment(p.hint())}: cover the None path",
                f"result = {site.call({**typical, p.name: 'None'})}",
            ]
            add(f"{base}_with_{_slug(p.name)}_none", "none", f"{p.name} is None", target.line, [*body, todo])
    guards = {c.detail.partition(" when ")[2] for c in cases if c.kind == "raises"}
    for condition, line in [b for b in branches if b[0] not in guards][:_MAX_BRANCH_CASES]:
        body = [f"# {_comment(f'Branch at {target.file}:{line}: {condition}')}"]
        body += [
            "# TODO: choose arguments that make this condition true.",
            f"result = {site.call(typical)}",
            todo,
        ]
        add(f"{base}_when_{_slug(condition)}", "branch", f"branch: {condition}", line, body)
    return cases, imports


class TestPlanArgs(ToolArgs):
    """Arguments of `test_plan`."""

    __test__: ClassVar[bool] = False  # Not a pytest test class, despite the name.

    limit: int = Field(default=10, ge=1, le=50, description="How many untested callables to plan tests for.")


class TestPlanTool(Tool):
    """A test plan and pytest skeletons for the most complex untested callables."""

    __test__: ClassVar[bool] = False  # Not a pytest test class, despite the name.
    name: ClassVar[str] = "test_plan"
    description: ClassVar[str] = (
        "Plan tests for the top-N untested public Python functions and methods (most complex first) and "
        "draft pytest skeletons: parametrised typical/boundary inputs from type hints and defaults, a "
        "pytest.raises case per raised exception, a case per branch condition and per None default."
    )
    args_model: ClassVar[type[ToolArgs]] = TestPlanArgs
    max_data_bytes: ClassVar[int] = 64 * 1024

    async def execute(self, args: ToolArgs, ctx: ToolContext) -> ToolOutput:
        """Plan tests for the task's inputs."""
        if not isinstance(args, TestPlanArgs):
            raise ToolError("test_plan expects TestPlanArgs", tool=self.name)
        return await asyncio.to_thread(plan_tests, ctx.files, limit=args.limit)


def _skeleton_path(module: CodeModule, existing: set[str]) -> str:
    path = f"tests/test_{module.module.replace('.', '_')}.py"
    return path if path not in existing else path.removesuffix(".py") + "_plan.py"


def _skeleton_file(module: CodeModule, imports: set[str], cases: Sequence[PlannedCase]) -> str:
    header = [
        f'"""Test skeletons for {module.module}, drafted by the test_plan tool.',
        "",
        "Fill in arguments and expected values, then remove the SKELETON marker.",
        '"""',
        "",
        "from __future__ import annotations",
        "",
        "import pytest",
        "",
        f"from {module.module} import {', '.join(sorted(imports))}",
        "",
        'SKELETON = pytest.mark.skip(reason="skeleton: fill in arguments and expected values")',
    ]
    return "\n\n\n".join(["\n".join(header), *(c.code for c in cases)]) + "\n"


def _importable(module: str) -> bool:
    return all(part.isidentifier() and not keyword.iskeyword(part) for part in module.split("."))


def plan_tests(files: Sequence[InputFile], *, limit: int = 10) -> ToolOutput:
    """Blocking body of `TestPlanTool`."""
    code_map = build_code_map(files)
    modules = {m.file: m for m in code_map.modules}
    existing = {f.name for f in files}
    by_file: dict[str, tuple[set[str], list[PlannedCase], set[str]]] = {}  # imports, cases, taken names
    observations: list[Observation] = []
    plan = [
        "# Test plan",
        "",
        f"Targets: the most complex public callables no test references ({MEASURE}).",
        "",
    ]
    not_planned: list[str] = []
    size = len(json.dumps("\n".join(plan)))
    full = False
    for item in rank_untested(code_map):
        target = item.target
        module = modules[target.file]
        if full or len(observations) >= limit or not _importable(module.module):
            not_planned.append(target.full_name)
            continue
        imports, cases, taken = by_file.get(target.file, (set(), [], set()))
        planned, needed = plan_callable(item, module, set(taken))
        path = _skeleton_path(module, existing)
        section = [
            f"## `{target.full_name}` ({target.location}, complexity {item.complexity}, {target.size} lines)",
            "",
            f"Skeleton: `{path}`",
            "",
            *(f"- `{c.name}`: {_comment(c.detail)} (line {c.line})" for c in planned),
            "",
        ]
        cost = sum(len(json.dumps(c.code)) + 3 for c in planned) + len(json.dumps("\n".join(section)))
        cost += 0 if target.file in by_file else len(json.dumps(_skeleton_file(module, imports | needed, [])))
        if size + cost > _SKELETON_BUDGET:
            # Stop at the first callable that does not fit, so the plan stays the top of the ranking.
            full = True
            not_planned.append(target.full_name)
            continue
        size += cost
        by_file[target.file] = (imports | needed, [*cases, *planned], taken | {c.name for c in planned})
        plan += section
        kinds = ", ".join(
            f"{sum(c.kind == k for c in planned)} {k}" for k in ("typical", "raises", "none", "branch")
        )
        observations.append(
            Observation(
                summary=f"Planned {len(planned)} tests for {target.full_name} ({target.location}): {kinds}",
                data={
                    **item.as_data(),
                    "skeleton": path,
                    "tests": [
                        {"name": c.name, "kind": c.kind, "detail": c.detail, "line": c.line} for c in planned
                    ],
                },
                location=target.location,
            )
        )
    skeletons: dict[str, str] = {}
    for file, (imports, cases, _taken) in by_file.items():
        text = _skeleton_file(modules[file], imports, cases)
        try:
            ast.parse(text)
        except SyntaxError:  # Built from identifiers and unparsed AST only, so this would be our bug.
            logger.warning("test_plan drafted invalid Python for %s; dropped it", modules[file].module)
            continue
        skeletons[_skeleton_path(modules[file], existing)] = text
    data = {
        "measure": MEASURE,
        "planned": len(observations),
        "tests": sum(len(cases) for _i, cases, _t in by_file.values()),
        "not_planned": not_planned[:_LISTED],
        "plan": "\n".join(plan),
        "skeletons": skeletons,
    }
    return ToolOutput(observations=tuple(observations), data=data)
