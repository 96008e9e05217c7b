"""Static test-to-code mapping for Python trees: which public callables the tests reference, per module.

Everything here reads source with `ast`; the user's code is never imported or run. "Coverage" is static
reference coverage: a public callable counts as covered when some test module names it (imports and calls
it, or calls it on an instance of its class). It says nothing about which lines run, so it is a map of
intent, not a substitute for line coverage.

`build_code_map` is the shared analysis: `untested.py` ranks what no test references and `testplan.py`
drafts tests for it. The lower-level AST helpers (name resolution, reference collection) are in `pyast.py`.
"""

from __future__ import annotations

import ast
import asyncio
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath
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
from orchestrion.tools.pyast import (
    CodeModule,
    FunctionNode,
    PublicCallable,
    _code_module,
    _package_of,
    _References,
    _Resolver,
    _Scope,
    _target_key,
    is_test_file,
    module_name,
)

_TOOLING_FILES = frozenset({"setup.py", "noxfile.py"})
_LISTED = 20
MEASURE = "static reference coverage (names referenced by tests), not line coverage"


@dataclass(frozen=True, kw_only=True)
class MappedTest:
    """One test function or method and the public callables it references."""

    file: str
    name: str
    line: int
    style: str
    references: tuple[str, ...]

    @property
    def test_id(self) -> str:
        """The pytest node id, e.g. ``tests/test_x.py::TestX::test_y``."""
        return f"{self.file}::{self.name.replace('.', '::')}"


@dataclass(frozen=True, kw_only=True)
class MappedTestFile:
    """A test module: its tests, the code it imports and everything it references anywhere."""

    file: str
    tests: tuple[MappedTest, ...]
    imports: tuple[str, ...]
    references: frozenset[str]


@dataclass(frozen=True, kw_only=True)
class CodeMap:
    """The static map of a Python tree: modules under test, test modules and who references what."""

    modules: tuple[CodeModule, ...]
    test_files: tuple[MappedTestFile, ...]
    referenced_by: dict[str, tuple[str, ...]]
    parse_errors: tuple[tuple[str, str], ...]
    skipped_non_python: int

    def callables(self) -> Iterator[PublicCallable]:
        """Every public callable, in file and line order."""
        for module in self.modules:
            yield from module.callables

    @property
    def test_count(self) -> int:
        """Number of test functions and methods found."""
        return sum(len(f.tests) for f in self.test_files)


def build_code_map(files: Sequence[InputFile]) -> CodeMap:
    """Parse every `.py` input and link tests to the public callables they reference."""
    python = [f for f in files if f.name.endswith(".py")]
    packages = frozenset(
        str(PurePosixPath(f.name).parent) for f in python if PurePosixPath(f.name).name == "__init__.py"
    )
    modules: list[CodeModule] = []
    test_trees: list[tuple[str, str, ast.Module]] = []
    errors: list[tuple[str, str]] = []
    for file in python:
        try:
            tree = ast.parse(file.content, filename=file.name)
        except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
            where = f" at line {exc.lineno}" if isinstance(exc, SyntaxError) and exc.lineno else ""
            errors.append((file.name, f"{type(exc).__name__}{where}"))
            continue
        module = module_name(file.name, packages)
        if is_test_file(file.name):
            test_trees.append((file.name, _package_of(file.name, module), tree))
        elif PurePosixPath(file.name).name not in _TOOLING_FILES:
            try:
                modules.append(_code_module(file.name, module, file.content, tree))
            except RecursionError:  # ast.unparse of a pathologically nested expression.
                errors.append((file.name, "RecursionError"))
    resolver = _Resolver(modules)
    scopes = [(name, tree, _Scope.of(tree, package, resolver)) for name, package, tree in test_trees]
    fixtures: dict[str, str] = {}
    test_files: list[MappedTestFile] = []
    try:
        for _name, tree, scope in scopes:  # Fixtures usually live in conftest.py, so they are shared.
            fixtures.update(_fixture_types(tree, scope))
    except RecursionError:
        errors.append(("<fixtures>", "RecursionError"))
    for name, tree, scope in scopes:
        try:
            test_files.append(_map_test_file(name, tree, scope, fixtures))
        except RecursionError:  # The visitors recurse once per nesting level, like ast itself.
            errors.append((name, "RecursionError"))
    referenced_by: dict[str, list[str]] = {}
    for test_file in test_files:
        for ref in sorted(test_file.references):
            owners = [t.test_id for t in test_file.tests if ref in t.references] or [test_file.file]
            referenced_by.setdefault(ref, []).extend(owners)
    return CodeMap(
        modules=tuple(modules),
        test_files=tuple(test_files),
        referenced_by={k: tuple(v) for k, v in referenced_by.items()},
        parse_errors=tuple(errors),
        skipped_non_python=len(files) - len(python),
    )


def _param_types(node: FunctionNode, scope: _Scope, fixtures: dict[str, str]) -> dict[str, str]:
    """Types of a test's parameters: from annotations naming a class, else from fixtures' values."""
    types: dict[str, str] = {}
    for arg in [*node.args.posonlyargs, *node.args.args, *node.args.kwonlyargs]:
        annotated = scope.resolver.class_of(scope.dotted(arg.annotation)) if arg.annotation else None
        if annotated is not None:
            types[arg.arg] = annotated.full_name
        elif arg.arg in fixtures:
            types[arg.arg] = fixtures[arg.arg]
    return types


def _fixture_types(tree: ast.Module, scope: _Scope) -> dict[str, str]:
    """Fixture name -> class of the value it returns or yields, for `@pytest.fixture` functions."""
    types: dict[str, str] = {}
    for node in ast.walk(tree):
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        decorators = [d for d in node.decorator_list if "fixture" in ast.unparse(d)]
        if not decorators:
            continue
        name = node.name
        for decorator in decorators:
            for kw in decorator.keywords if isinstance(decorator, ast.Call) else ():
                if kw.arg == "name" and isinstance(kw.value, ast.Constant):
                    name = str(kw.value.value)
        collector = _References(scope)
        collector.visit(node)
        for inner in ast.walk(node):
            if isinstance(inner, ast.Return | ast.Yield) and inner.value is not None:
                owner = collector.instance_of(inner.value)
                if owner:
                    types[name] = owner
    return types


def _self_types(cls: ast.ClassDef, scope: _Scope) -> dict[str, str]:
    """``self.x`` -> class, from assignments anywhere in the class (typically unittest's setUp)."""
    collector = _References(scope)
    types: dict[str, str] = {}
    for node in ast.walk(cls):
        if isinstance(node, ast.Assign):
            for target in node.targets:
                key = _target_key(target)
                owner = collector.instance_of(node.value)
                if key and key.startswith("self.") and owner:
                    types[key] = owner
    return types


def _test_class_style(cls: ast.ClassDef, unittest_classes: set[str]) -> str | None:
    bases = [ast.unparse(b) for b in cls.bases]
    if any(b.rpartition(".")[2].endswith("TestCase") or b in unittest_classes for b in bases):
        unittest_classes.add(cls.name)
        return "unittest"
    has_init = any(isinstance(i, ast.FunctionDef) and i.name == "__init__" for i in cls.body)
    return "pytest" if cls.name.startswith("Test") and not has_init else None


def _map_test_file(file: str, tree: ast.Module, scope: _Scope, fixtures: dict[str, str]) -> MappedTestFile:
    local_fixtures = {**fixtures, **_fixture_types(tree, scope)}
    tests: list[MappedTest] = []
    references: set[str] = set()
    unittest_classes: set[str] = set()

    def collect(node: ast.AST, types: dict[str, str]) -> frozenset[str]:
        collector = _References(scope, types)
        collector.visit(node)
        found = collector.references()
        references.update(found)
        return found

    def add_test(node: FunctionNode, name: str, style: str, found: frozenset[str]) -> None:
        tests.append(
            MappedTest(file=file, name=name, line=node.lineno, style=style, references=tuple(sorted(found)))
        )

    for stmt in tree.body:
        if isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef):
            found = collect(stmt, _param_types(stmt, scope, local_fixtures))
            if stmt.name.startswith("test"):
                add_test(stmt, stmt.name, "pytest", found)
        elif isinstance(stmt, ast.ClassDef):
            style = _test_class_style(stmt, unittest_classes)
            class_types = _self_types(stmt, scope)
            for item in stmt.body:
                if not isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef):
                    collect(item, class_types)
                    continue
                found = collect(item, {**class_types, **_param_types(item, scope, local_fixtures)})
                if style and item.name.startswith("test"):
                    add_test(item, f"{stmt.name}.{item.name}", style, found)
        else:
            collect(stmt, {})
    imports = sorted({t for t in scope.names.values() if scope.resolver.knows(t)} | set(scope.stars))
    return MappedTestFile(
        file=file, tests=tuple(tests), imports=tuple(imports), references=frozenset(references)
    )


def _percent(part: int, whole: int) -> float:
    return round(100.0 * part / whole, 1) if whole else 0.0


class TestMapArgs(ToolArgs):
    """Arguments of `test_map`."""

    __test__: ClassVar[bool] = False  # Not a pytest test class, despite the name.

    low_ratio: float = Field(
        default=0.5, ge=0.0, le=1.0, description="Overall reference ratio below which a finding is raised."
    )


class TestMapTool(Tool):
    """Which public functions, classes and methods the tests reference, per module (static, by AST)."""

    __test__: ClassVar[bool] = False  # Not a pytest test class, despite the name.
    name: ClassVar[str] = "test_map"
    description: ClassVar[str] = (
        "Map Python tests to the code they exercise by reading the AST (never running it): test "
        "modules and functions (pytest and unittest), what each test imports and calls, and per module "
        "which public callables are referenced by tests. The ratio is static reference coverage, not "
        "line coverage."
    )
    args_model: ClassVar[type[ToolArgs]] = TestMapArgs

    async def execute(self, args: ToolArgs, ctx: ToolContext) -> ToolOutput:
        """Map every `.py` file in the task's inputs."""
        if not isinstance(args, TestMapArgs):
            raise ToolError("test_map expects TestMapArgs", tool=self.name)
        return await asyncio.to_thread(map_tests, ctx.files, low_ratio=args.low_ratio)


def map_tests(files: Sequence[InputFile], *, low_ratio: float = 0.5) -> ToolOutput:
    """Blocking body of `TestMapTool`."""
    code_map = build_code_map(files)
    refs = code_map.referenced_by
    public = list(code_map.callables())
    covered = sum(c.full_name in refs for c in public)
    ratio = covered / len(public) if public else 0.0
    overall = (
        f"Static reference coverage: {covered}/{len(public)} public callables "
        f"({_percent(covered, len(public))}%) in {len(code_map.modules)} modules are referenced by "
        f"{code_map.test_count} tests in {len(code_map.test_files)} test files (not line coverage)"
    )
    errors = [{"file": f, "error": e} for f, e in code_map.parse_errors[:_LISTED]]
    totals = {"public_callables": len(public), "referenced": covered, "ratio": round(ratio, 3)}
    observations = [Observation(summary=overall, data={**totals, "measure": MEASURE, "parse_errors": errors})]
    findings: list[ProposedFinding] = []
    rows: list[dict[str, Any]] = []
    low_modules: list[int] = []
    for module in (m for m in code_map.modules if m.callables):
        hit = [c for c in module.callables if c.full_name in refs]
        missed = [c for c in module.callables if c.full_name not in refs]
        share = len(hit) / len(module.callables)
        rows.append({"file": module.file, "public": len(module.callables), "referenced": len(hit)})
        observations.append(
            Observation(
                summary=(
                    f"{module.file}: {len(hit)}/{len(module.callables)} public callables referenced by "
                    f"tests ({_percent(len(hit), len(module.callables))}% static reference coverage)"
                ),
                data={
                    **rows[-1],
                    "module": module.module,
                    "ratio": round(share, 3),
                    "referenced_by": {c.qualname: list(refs[c.full_name][:5]) for c in hit[:_LISTED]},
                    "unreferenced": [{"name": c.qualname, "kind": c.kind, "line": c.line} for c in missed],
                },
                location=module.file,
            )
        )
        if share < low_ratio:
            low_modules.append(len(observations) - 1)
        if not hit and code_map.test_files:
            findings.append(
                ProposedFinding(
                    title=f"No test references {module.file}",
                    severity=Severity.MEDIUM,
                    description=(
                        f"None of the {len(module.callables)} public callables of {module.module} "
                        f"({', '.join(c.qualname for c in missed[:5])}) is named by any test."
                    ),
                    recommendation=f"Add tests that import and exercise {module.module}.",
                    observation_indexes=(len(observations) - 1,),
                )
            )
    test_rows = _observe_test_files(code_map, observations, findings)
    if public and not code_map.test_files:
        findings.append(
            ProposedFinding(
                title="No tests found",
                severity=Severity.MEDIUM,
                description=f"The upload has {len(public)} public callables and no test modules.",
                recommendation="Add a tests/ package with pytest tests for the public API.",
                observation_indexes=(0,),
            )
        )
    elif public and ratio < low_ratio:
        findings.append(
            ProposedFinding(
                title=f"Low static test reference coverage ({_percent(covered, len(public))}%)",
                severity=Severity.LOW,
                description=(
                    f"Tests reference only {covered} of {len(public)} public callables; this counts names "
                    "referenced by tests, not executed lines."
                ),
                recommendation="Start with the untested callables of the modules with the lowest ratios.",
                observation_indexes=(0, *low_modules),
            )
        )
    data = {
        **totals,
        "measure": MEASURE,
        "tests": code_map.test_count,
        "modules": rows,
        "test_files": test_rows,
        "parse_errors": errors,
        "skipped_non_python": code_map.skipped_non_python,
    }
    return ToolOutput(observations=tuple(observations), findings=tuple(findings), data=data)


def _observe_test_files(
    code_map: CodeMap, observations: list[Observation], findings: list[ProposedFinding]
) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for test_file in code_map.test_files:
        pytest_style = sum(t.style == "pytest" for t in test_file.tests)
        row = {"file": test_file.file, "tests": len(test_file.tests), "references": len(test_file.references)}
        rows.append(row)
        tests = [
            {"id": t.test_id, "line": t.line, "style": t.style, "references": list(t.references[:_LISTED])}
            for t in test_file.tests[:50]
        ]
        observations.append(
            Observation(
                summary=(
                    f"{test_file.file}: {len(test_file.tests)} tests ({pytest_style} pytest, "
                    f"{len(test_file.tests) - pytest_style} unittest) reference "
                    f"{len(test_file.references)} callables under test"
                ),
                data={**row, "imports": list(test_file.imports[:_LISTED]), "test_details": tests},
                location=test_file.file,
            )
        )
        if test_file.tests and not test_file.references and code_map.modules:
            findings.append(
                ProposedFinding(
                    title=f"Tests in {test_file.file} reference no code under test",
                    severity=Severity.INFO,
                    description=(
                        f"The {len(test_file.tests)} tests in {test_file.file} name none of the uploaded "
                        "modules' public callables (they may use dynamic imports or test something else)."
                    ),
                    recommendation="Check that these tests exercise the project's code, not only fixtures.",
                    observation_indexes=(len(observations) - 1,),
                )
            )
    return rows
