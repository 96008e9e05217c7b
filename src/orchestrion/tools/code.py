"""Python code tools: metrics (radon + ast) and a security scan (bandit, in-process)."""

from __future__ import annotations

import ast
import asyncio
import linecache
import logging
import re
import tempfile
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from orchestrion.domain.findings import Severity
from orchestrion.tools.base import (
    InputFile,
    Observation,
    ProposedFinding,
    Tool,
    ToolArgs,
    ToolContext,
    ToolOutput,
)
from orchestrion.tools.secrets import redact_secrets

with warnings.catch_warnings():
    # stevedore 5.x warns at bandit's import (verify_requirements is deprecated); running scans
    # raises no warnings, so only the import is wrapped (catch_warnings is not thread-safe).
    warnings.simplefilter("ignore", DeprecationWarning)
    from bandit.core import config as bandit_config
    from bandit.core import manager as bandit_manager
    from radon.complexity import cc_rank, cc_visit
    from radon.metrics import mi_rank, mi_visit
    from radon.raw import analyze
    from radon.visitors import Class, Function

_COMPLEX_THRESHOLD = 11
_LOW_MI = 20.0
_SNIPPET_CHARS = 500
_NESTING_NODES = (
    ast.If,
    ast.For,
    ast.AsyncFor,
    ast.While,
    ast.With,
    ast.AsyncWith,
    ast.Try,
    ast.TryStar,
    ast.Match,
    ast.FunctionDef,
    ast.AsyncFunctionDef,
    ast.ClassDef,
)


def _python_files(files: Sequence[InputFile]) -> tuple[list[InputFile], int]:
    python = [f for f in files if f.name.endswith(".py")]
    return python, len(files) - len(python)


@dataclass(frozen=True, kw_only=True)
class _Block:
    file: str
    name: str
    line: int
    complexity: int

    @property
    def rank(self) -> str:
        return str(cc_rank(self.complexity))


class PythonMetricsTool(Tool):
    """Size, complexity and maintainability of Python files (radon plus the stdlib `ast`)."""

    name: ClassVar[str] = "python_metrics"
    description: ClassVar[str] = (
        "Measure Python files: lines of code, cyclomatic complexity per function, maintainability "
        "index, counts of functions, classes and imports, and maximum nesting depth."
    )

    async def execute(self, args: ToolArgs, ctx: ToolContext) -> ToolOutput:
        """Measure every `.py` file in the task's inputs."""
        return await asyncio.to_thread(measure_python_files, ctx.files)


def measure_python_files(files: Sequence[InputFile]) -> ToolOutput:
    """Blocking body of `PythonMetricsTool`."""
    python, skipped = _python_files(files)
    observations: list[Observation] = []
    findings: list[ProposedFinding] = []
    blocks: list[_Block] = []
    total_sloc = 0
    parse_errors = 0
    for file in python:
        try:
            tree = ast.parse(file.content, filename=file.name)
            raw = analyze(file.content)
            file_blocks = _blocks(file.name, file.content)
            mi = float(mi_visit(file.content, multi=True))
        except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
            parse_errors += 1
            where = f" at line {exc.lineno}" if isinstance(exc, SyntaxError) and exc.lineno else ""
            observations.append(
                Observation(
                    summary=f"{file.name}: could not parse ({type(exc).__name__}{where})",
                    data={"file": file.name, "error": type(exc).__name__, "message": str(exc)[:200]},
                    location=file.name,
                )
            )
            findings.append(
                ProposedFinding(
                    title=f"Syntax error in {file.name}",
                    severity=Severity.LOW,
                    description=f"{file.name} is not valid Python{where}, so it was not measured.",
                    recommendation="Fix the syntax error; tools and interpreters cannot load this file.",
                    observation_indexes=(len(observations) - 1,),
                )
            )
            continue
        counts = _ast_counts(tree)
        worst = max(file_blocks, key=lambda b: b.complexity, default=None)
        worst_text = f"max complexity {worst.complexity} ({worst.rank})" if worst else "no functions"
        total_sloc += raw.sloc
        blocks.extend(file_blocks)
        file_index = len(observations)
        observations.append(
            Observation(
                summary=f"{file.name}: {raw.sloc} SLOC, {worst_text}, MI {mi:.1f}",
                data={
                    "file": file.name,
                    "loc": raw.loc,
                    "sloc": raw.sloc,
                    "lloc": raw.lloc,
                    "comments": raw.comments,
                    "multi": raw.multi,
                    "blank": raw.blank,
                    **counts,
                    "max_complexity": worst.complexity if worst else 0,
                    "maintainability_index": round(mi, 1),
                    "maintainability_rank": mi_rank(mi),
                },
                location=file.name,
            )
        )
        if mi < _LOW_MI:
            findings.append(
                ProposedFinding(
                    title=f"Low maintainability in {file.name} (MI {mi:.1f})",
                    severity=Severity.MEDIUM,
                    description=f"{file.name} has a maintainability index of {mi:.1f} (below {_LOW_MI:.0f}).",
                    recommendation="Split long functions, reduce branching and remove duplication.",
                    observation_indexes=(file_index,),
                )
            )
        for block in sorted(file_blocks, key=lambda b: b.line):
            if block.complexity < _COMPLEX_THRESHOLD:
                continue
            location = f"{block.file}:{block.line}"
            observations.append(
                Observation(
                    summary=f"{block.name} in {location}: complexity {block.complexity} ({block.rank})",
                    data={
                        "file": block.file,
                        "function": block.name,
                        "line": block.line,
                        "complexity": block.complexity,
                        "rank": block.rank,
                    },
                    location=location,
                )
            )
            findings.append(
                ProposedFinding(
                    title=f"High cyclomatic complexity in {block.name} ({location})",
                    severity=Severity.LOW if block.rank == "C" else Severity.MEDIUM,
                    description=(
                        f"{block.name} has cyclomatic complexity {block.complexity} (rank {block.rank}); "
                        "it is hard to test and easy to break."
                    ),
                    recommendation="Extract helper functions and replace nested branches with early returns.",
                    observation_indexes=(len(observations) - 1,),
                )
            )
    worst_blocks = sorted(blocks, key=lambda b: (-b.complexity, b.file, b.line))[:10]
    data: dict[str, Any] = {
        "files": len(python) - parse_errors,
        "parse_errors": parse_errors,
        "skipped_non_python": skipped,
        "sloc": total_sloc,
        "functions": len(blocks),
        "average_complexity": round(sum(b.complexity for b in blocks) / len(blocks), 2) if blocks else 0.0,
        "worst_functions": [
            {"function": b.name, "file": b.file, "line": b.line, "complexity": b.complexity, "rank": b.rank}
            for b in worst_blocks
        ],
    }
    return ToolOutput(observations=tuple(observations), findings=tuple(findings), data=data)


def _blocks(file: str, source: str) -> list[_Block]:
    """Every function, method and closure radon sees, once each."""
    found: dict[tuple[str, int], _Block] = {}

    def visit(items: Sequence[Any]) -> None:
        for item in items:
            # cc_visit lists methods both at top level and inside their Class block; classes
            # themselves are aggregates, so only functions count.
            if isinstance(item, Function):
                block = _Block(file=file, name=item.fullname, line=item.lineno, complexity=item.complexity)
                found.setdefault((block.name, block.line), block)
                visit(item.closures)
            elif isinstance(item, Class):
                visit(item.methods)

    visit(cc_visit(source))
    return list(found.values())


def _ast_counts(tree: ast.AST) -> dict[str, int]:
    nodes = list(ast.walk(tree))
    return {
        "functions": sum(isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef) for n in nodes),
        "classes": sum(isinstance(n, ast.ClassDef) for n in nodes),
        "imports": sum(isinstance(n, ast.Import | ast.ImportFrom) for n in nodes),
        "max_nesting": _max_nesting(tree, 0),
    }


def _max_nesting(node: ast.AST, depth: int) -> int:
    """Deepest nesting of compound statements; an `elif` counts at the depth of its `if`."""
    deepest = depth
    for name, value in ast.iter_fields(node):
        children = value if isinstance(value, list) else [value]
        for child in children:
            if not isinstance(child, ast.AST):
                continue
            is_elif = isinstance(node, ast.If) and name == "orelse" and isinstance(child, ast.If)
            nested = isinstance(child, _NESTING_NODES) and not is_elif
            deepest = max(deepest, _max_nesting(child, depth + 1 if nested else depth))
    return deepest


_PASSWORD_TESTS = frozenset({"B105", "B106", "B107"})
_RECOMMENDATIONS = {
    "B101": "Do not rely on assert for checks that must hold in production; raise an exception instead.",
    "B102": "Avoid exec; dispatch to known functions instead of executing generated code.",
    "B103": "Use the narrowest file permissions that work (e.g. 0o600 or 0o644), never world-writable.",
    "B104": "Bind to 127.0.0.1 or a configured interface instead of all interfaces.",
    "B105": "Move the secret to an environment variable or a secret store and rotate it.",
    "B106": "Move the secret to an environment variable or a secret store and rotate it.",
    "B107": "Move the secret to an environment variable or a secret store and rotate it.",
    "B404": "Pass subprocess commands as argument lists and never let untrusted input choose them.",
    "B108": "Use tempfile.mkstemp/TemporaryDirectory instead of fixed paths under /tmp.",
    "B110": "Handle or at least log the exception instead of silently passing.",
    "B113": "Pass an explicit timeout to every HTTP request.",
    "B201": "Never run Flask with debug=True outside local development.",
    "B301": "Do not unpickle untrusted data; use JSON or another data-only format.",
    "B303": "Use SHA-256 or better; MD5 and SHA-1 are broken for security purposes.",
    "B307": "Replace eval with ast.literal_eval or explicit parsing.",
    "B311": "Use the secrets module for tokens, keys and anything security-sensitive.",
    "B324": "Use SHA-256 or better, or pass usedforsecurity=False when the hash is not for security.",
    "B501": "Keep certificate verification on (verify=True).",
    "B506": "Use yaml.safe_load instead of yaml.load.",
    "B602": "Pass the command as a list and drop shell=True; never build shell strings from input.",
    "B603": "Make sure the executable and arguments cannot be influenced by untrusted input.",
    "B605": "Use subprocess.run with a list of arguments instead of os.system/os.popen.",
    "B607": "Call executables by absolute path, or resolve them with shutil.which once at start-up.",
    "B608": "Use parameterised queries instead of building SQL with string formatting.",
    "B701": "Enable Jinja2 autoescape (select_autoescape) for HTML templates.",
}
_SEVERITY = {"HIGH": Severity.HIGH, "MEDIUM": Severity.MEDIUM, "LOW": Severity.LOW}
_DOWNGRADE = {Severity.HIGH: Severity.MEDIUM, Severity.MEDIUM: Severity.LOW, Severity.LOW: Severity.INFO}
_QUOTED = re.compile(r"""(?P<q>'''|\"\"\"|'|")(?:\\.|(?!(?P=q)).)*(?P=q)""", re.DOTALL)


class BanditTool(Tool):
    """Security issues in Python files, found by bandit run in-process on a temporary copy."""

    name: ClassVar[str] = "bandit_scan"
    description: ClassVar[str] = (
        "Scan Python files for common security issues with bandit (shell injection, eval, weak "
        "hashes, hardcoded passwords, unsafe deserialisation...)."
    )

    async def execute(self, args: ToolArgs, ctx: ToolContext) -> ToolOutput:
        """Scan every `.py` file in the task's inputs."""
        return await asyncio.to_thread(scan_python_files, ctx.files)


def scan_python_files(files: Sequence[InputFile]) -> ToolOutput:
    """Blocking body of `BanditTool`."""
    for logger_name in ("bandit", "stevedore"):
        logging.getLogger(logger_name).setLevel(logging.WARNING)
    python, skipped = _python_files(files)
    observations: list[Observation] = []
    findings: list[ProposedFinding] = []
    bandit_skipped: list[str] = []
    with tempfile.TemporaryDirectory(prefix="orchestrion-bandit-") as tmp:
        root = Path(tmp).resolve()
        names: dict[str, str] = {}
        for file in python:
            target = (root / file.name).resolve()
            if not target.is_relative_to(root) or str(target) in names:
                bandit_skipped.append(file.name)
                continue
            try:
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(file.content, encoding="utf-8", errors="surrogatepass")
            except OSError:  # A name clashing with a directory of another input, for example.
                bandit_skipped.append(file.name)
                continue
            names[str(target)] = file.name
        manager = bandit_manager.BanditManager(bandit_config.BanditConfig(), "file", quiet=True)
        manager.discover_files(list(names), False)
        manager.run_tests()
        issues = sorted(manager.get_issue_list(), key=lambda i: (names.get(i.fname, i.fname), i.lineno))
        bandit_skipped.extend(names.get(str(fname), str(fname)) for fname, _reason in manager.skipped)
        password_lines = {(i.fname, i.lineno) for i in issues if i.test_id in _PASSWORD_TESTS}
        for issue in issues:
            name = names.get(issue.fname, Path(issue.fname).name)
            lines = {line for fname, line in password_lines if fname == issue.fname}
            observations.append(_issue_observation(issue, name, _snippet(issue, lines)))
            findings.append(_issue_finding(issue, name, len(observations) - 1))
    # Drop bandit's cached lines of this scan's deleted temporary files; only this scan's: a global
    # `linecache.checkcache()` races with scans running in other threads (a KeyError in linecache).
    for path in names:
        linecache.cache.pop(path, None)
    by_severity: dict[str, int] = {}
    for finding in findings:
        by_severity[finding.severity.value] = by_severity.get(finding.severity.value, 0) + 1
    data = {
        "files": len(python) - len(bandit_skipped),
        "skipped_non_python": skipped,
        "skipped_by_bandit": bandit_skipped,
        "issues": len(findings),
        "by_severity": by_severity,
    }
    return ToolOutput(observations=tuple(observations), findings=tuple(findings), data=data)


def _issue_text(issue: Any) -> str:
    text = str(issue.text).strip().rstrip(".")
    # Bandit's hardcoded-password messages quote the password itself; keep it out of evidence.
    return text.split(":", 1)[0] if issue.test_id in _PASSWORD_TESTS else text


def _snippet(issue: Any, password_lines: set[int]) -> str:
    """The issue's code with secrets redacted, and every string on a hardcoded-password line masked."""
    lines = []
    for line in str(issue.get_code(max_lines=3) or "").splitlines(keepends=True):
        number, _, _code = line.partition(" ")
        if number.isdigit() and int(number) in password_lines:
            line = _QUOTED.sub("'<redacted>'", line)
        lines.append(redact_secrets(line))
    return "".join(lines)[:_SNIPPET_CHARS]


def _issue_observation(issue: Any, name: str, snippet: str) -> Observation:
    cwe = getattr(issue, "cwe", None)
    cwe_id = getattr(cwe, "id", None)
    location = f"{name}:{issue.lineno}"
    return Observation(
        summary=f"{issue.test_id} {issue.test} in {location} ({issue.severity}/{issue.confidence})",
        data={
            "test_id": issue.test_id,
            "test_name": issue.test,
            "text": _issue_text(issue),
            "severity": issue.severity,
            "confidence": issue.confidence,
            "line": issue.lineno,
            "code": snippet,
            "cwe": f"CWE-{cwe_id}" if cwe_id else None,
        },
        location=location,
    )


def _issue_finding(issue: Any, name: str, index: int) -> ProposedFinding:
    severity = _SEVERITY.get(str(issue.severity).upper(), Severity.LOW)
    if str(issue.confidence).upper() == "LOW":
        severity = _DOWNGRADE.get(severity, severity)
    recommendation = _RECOMMENDATIONS.get(
        issue.test_id, f"Review this call; see bandit docs for {issue.test_id}."
    )
    return ProposedFinding(
        title=f"{issue.test_id}: {_issue_text(issue)}",
        severity=severity,
        description=(
            f"bandit reports {issue.test} at {name}:{issue.lineno} "
            f"(severity {issue.severity}, confidence {issue.confidence})."
        ),
        recommendation=recommendation,
        observation_indexes=(index,),
    )
