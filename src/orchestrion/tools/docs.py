"""Documentation tools for Python trees: docstring coverage and a Markdown API reference.

Both read sources with `ast` and plain text parsing; the user's code is never imported or run. The README
structure check lives in `readme.py`.
"""

from __future__ import annotations

import ast
import asyncio
import json
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import ClassVar

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
from orchestrion.tools.pyast import FunctionNode, _decorator_names, is_test_file, module_name

_LISTED = 20
_HIDDEN_DECORATORS = frozenset({"overload", "setter", "deleter"})
_STYLED = ("google", "numpy", "rest")
_GOOGLE_SECTION = re.compile(
    r"^\s*(Args|Arguments|Parameters|Params|Keyword Args|Keyword Arguments|Other Parameters|Returns?|Yields?"
    r"|Raises|Attributes|Examples?|Notes?|Warns|Warnings?|Todo|See Also|References):\s*$",
    re.MULTILINE,
)
_GOOGLE_PARAMS = re.compile(r"^(\s*)(Args|Arguments|Parameters|Params|Keyword Args|Keyword Arguments):\s*$")
_GOOGLE_ENTRY = re.compile(r"^\s*\*{0,2}([A-Za-z_]\w*)\s*(?:\([^)]*\))?\s*:")
_NUMPY_SECTION = re.compile(
    r"^\s*(Parameters|Other Parameters|Returns|Yields|Raises|Attributes|Examples|Notes|See Also)"
    r"\s*\n\s*-{3,}\s*$",
    re.MULTILINE,
)
_DASHES = re.compile(r"\s*-{3,}\s*")
_REST_FIELD = re.compile(
    r"^\s*:(param|parameter|arg|argument|key|keyword|type|returns?|rtype|raises?|except|exception|ivar|var)\b",
    re.MULTILINE,
)
_REST_PARAM = re.compile(
    r"^\s*:(?:param|parameter|arg|argument|key|keyword)\s+(?:[^:]*?\s)?\*{0,2}([A-Za-z_]\w*)\s*:",
    re.MULTILINE,
)


@dataclass(frozen=True, kw_only=True)
class Documentable:
    """A module, class, function or method that should carry a docstring."""

    file: str
    qualname: str
    kind: str  # "module", "class", "function" or "method"
    line: int
    docstring: str | None
    node: ast.Module | ast.ClassDef | FunctionNode = field(compare=False, repr=False)

    @property
    def location(self) -> str:
        """``file:line``."""
        return f"{self.file}:{self.line}"


def documentables(file: str, module: str, tree: ast.Module, *, private: bool = False) -> list[Documentable]:
    """The module itself (unless empty), its classes and functions, and their methods (dunders excluded).

    Args:
        file: The file name.
        module: The module's dotted name.
        tree: The parsed module.
        private: Include names starting with an underscore.
    """
    found: list[Documentable] = []
    if tree.body:
        doc = ast.get_docstring(tree)
        found.append(
            Documentable(file=file, qualname=module, kind="module", line=1, docstring=doc, node=tree)
        )
    seen: set[str] = set()

    def add(node: FunctionNode | ast.ClassDef, qualname: str, kind: str) -> None:
        name = qualname.rpartition(".")[2]
        hidden = name.startswith("__") or (name.startswith("_") and not private)
        if hidden or qualname in seen or _decorator_names(node) & _HIDDEN_DECORATORS:
            return
        seen.add(qualname)
        doc = ast.get_docstring(node)
        found.append(
            Documentable(file=file, qualname=qualname, kind=kind, line=node.lineno, docstring=doc, node=node)
        )

    for stmt in tree.body:
        if isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef):
            add(stmt, stmt.name, "function")
        elif isinstance(stmt, ast.ClassDef):
            add(stmt, stmt.name, "class")
            if stmt.name in seen:
                for item in stmt.body:
                    if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef):
                        add(item, f"{stmt.name}.{item.name}", "method")
    return found


def docstring_style(doc: str) -> str:
    """``"numpy"``, ``"rest"``, ``"google"`` or ``"plain"`` (no structured sections)."""
    if _NUMPY_SECTION.search(doc):
        return "numpy"
    if _REST_FIELD.search(doc):
        return "rest"
    return "google" if _GOOGLE_SECTION.search(doc) else "plain"


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _google_params(lines: list[str]) -> list[str] | None:
    found: list[str] | None = None
    for index, line in enumerate(lines):
        header = _GOOGLE_PARAMS.match(line)
        if header is None:
            continue
        found = found or []
        entry_indent: int | None = None
        for entry in lines[index + 1 :]:
            if not entry.strip():
                continue
            if _indent(entry) <= len(header.group(1)):
                break
            entry_indent = entry_indent if entry_indent is not None else _indent(entry)
            match = _GOOGLE_ENTRY.match(entry)
            if _indent(entry) == entry_indent and match:
                found.append(match.group(1))
    return found


def _numpy_params(lines: list[str]) -> list[str] | None:
    found: list[str] | None = None
    for index, line in enumerate(lines[:-1]):
        if line.strip() not in ("Parameters", "Other Parameters") or not _DASHES.fullmatch(lines[index + 1]):
            continue
        found = found or []
        rest = lines[index + 2 :]
        for offset, entry in enumerate(rest):
            if not entry.strip() or _indent(entry) > _indent(line):
                continue
            if _indent(entry) < _indent(line) or (
                offset + 1 < len(rest) and _DASHES.fullmatch(rest[offset + 1])
            ):
                break  # The next section starts.
            names = entry.partition(":")[0].split(",")
            found.extend(n.strip().lstrip("*") for n in names if n.strip().lstrip("*").isidentifier())
    return found


def documented_params(doc: str, style: str) -> list[str] | None:
    """Parameter names a docstring documents, or None when it has no parameters section."""
    lines = doc.splitlines()
    if style == "google":
        return _google_params(lines)
    if style == "numpy":
        return _numpy_params(lines)
    if style == "rest":
        return _REST_PARAM.findall(doc) or None
    return None


def actual_params(node: FunctionNode, *, bound: bool) -> list[str]:
    """Names of a function's parameters (without self/cls when `bound`)."""
    args = node.args
    names = [a.arg for a in [*args.posonlyargs, *args.args]][1 if bound else 0 :]
    names += [a.arg for a in [args.vararg, *args.kwonlyargs, args.kwarg] if a is not None]
    return names


def _signature_params(item: Documentable) -> list[str] | None:
    """The parameters a docstring of `item` should describe (a class describes its __init__)."""
    node = item.node
    if isinstance(node, ast.ClassDef):
        init = next((i for i in node.body if isinstance(i, FunctionNode) and i.name == "__init__"), None)
        return actual_params(init, bound=True) if init else None
    if isinstance(node, ast.Module):
        return None
    bound = item.kind == "method" and "staticmethod" not in _decorator_names(node)
    return actual_params(node, bound=bound)


def _parse_python(
    files: Sequence[InputFile], *, include_tests: bool
) -> tuple[list[tuple[str, str, ast.Module]], list[str]]:
    """(file, module, tree) for each parseable `.py` input (tests only if asked), and unparseable names."""
    python = [f for f in files if f.name.endswith(".py") and (include_tests or not is_test_file(f.name))]
    packages = frozenset(
        str(PurePosixPath(f.name).parent) for f in files if PurePosixPath(f.name).name == "__init__.py"
    )
    parsed: list[tuple[str, str, ast.Module]] = []
    errors: list[str] = []
    for file in sorted(python, key=lambda f: f.name):
        try:
            parsed.append((file.name, module_name(file.name, packages), ast.parse(file.content, file.name)))
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            errors.append(file.name)
    return parsed, errors


def _percent(part: int, whole: int) -> float:
    return round(100.0 * part / whole, 1) if whole else 100.0


class DocstringCoverageArgs(ToolArgs):
    """Arguments of `docstring_coverage`."""

    include_tests: bool = Field(default=False, description="Also measure test modules.")


class DocstringCoverageTool(Tool):
    """Docstring presence of public modules, classes, functions and methods, with style and param checks."""

    name: ClassVar[str] = "docstring_coverage"
    description: ClassVar[str] = (
        "Measure docstring coverage of public Python modules, classes, functions and methods (by AST), "
        "list the missing ones with file:line, detect the docstring style (Google, NumPy, reST) and "
        "compare documented parameters with the real ones."
    )
    args_model: ClassVar[type[ToolArgs]] = DocstringCoverageArgs

    async def execute(self, args: ToolArgs, ctx: ToolContext) -> ToolOutput:
        """Measure the task's Python inputs."""
        if not isinstance(args, DocstringCoverageArgs):
            raise ToolError("docstring_coverage expects DocstringCoverageArgs", tool=self.name)
        return await asyncio.to_thread(check_docstrings, ctx.files, include_tests=args.include_tests)


def check_docstrings(files: Sequence[InputFile], *, include_tests: bool = False) -> ToolOutput:
    """Blocking body of `DocstringCoverageTool`."""
    parsed, errors = _parse_python(files, include_tests=include_tests)
    modules = [(file, module, documentables(file, module, tree)) for file, module, tree in parsed]
    items = [item for _f, _m, found in modules for item in found]
    documented = sum(bool(i.docstring) for i in items)
    styles = Counter(docstring_style(i.docstring) for i in items if i.docstring)
    dominant = next((s for s, _n in styles.most_common() if s != "plain"), "plain")
    summary = (
        f"Docstring coverage: {documented}/{len(items)} public objects documented "
        f"({_percent(documented, len(items))}%) in {len(modules)} modules; dominant style {dominant}"
    )
    by_kind = {
        kind: {"documented": sum(bool(i.docstring) for i in group), "total": len(group)}
        for kind, group in (
            (k, [i for i in items if i.kind == k]) for k in ("module", "class", "function", "method")
        )
    }
    overall = {"by_kind": by_kind, "styles": dict(styles), "parse_errors": errors[:_LISTED]}
    observations = [Observation(summary=summary, data=overall)]
    findings: list[ProposedFinding] = []
    low_modules: list[int] = []
    for file, module, found in modules:
        if not found:
            continue
        missing = [i for i in found if not i.docstring]
        share = _percent(len(found) - len(missing), len(found))
        module_styles = Counter(docstring_style(i.docstring) for i in found if i.docstring)
        observations.append(
            Observation(
                summary=f"{file}: {len(found) - len(missing)}/{len(found)} public objects documented "
                f"({share}%)",
                data={
                    "file": file,
                    "module": module,
                    "documented": len(found) - len(missing),
                    "total": len(found),
                    "coverage": share,
                    "styles": dict(module_styles),
                    "missing": [
                        {"name": i.qualname, "kind": i.kind, "location": i.location} for i in missing
                    ],
                },
                location=file,
            )
        )
        if share < 80:
            low_modules.append(len(observations) - 1)
    for item in items:
        _check_params(item, observations, findings)
    if items and documented / len(items) < 0.8:
        share = _percent(documented, len(items))
        findings.insert(
            0,
            ProposedFinding(
                title=f"Low docstring coverage ({share}%)",
                severity=Severity.MEDIUM if share < 50 else Severity.LOW,
                description=f"{len(items) - documented} of {len(items)} public objects have no docstring.",
                recommendation="Document the public API, starting with the modules listed as evidence.",
                observation_indexes=(0, *low_modules),
            ),
        )
    if sum(styles[s] > 0 for s in _STYLED) > 1:
        findings.append(
            ProposedFinding(
                title="Mixed docstring styles",
                severity=Severity.INFO,
                description="Docstrings mix styles: "
                + ", ".join(f"{s} {styles[s]}" for s in _STYLED if styles[s]),
                recommendation=f"Pick one style (mostly {dominant} so far) and enforce it with a linter.",
                observation_indexes=(0,),
            )
        )
    data = {
        "documented": documented,
        "total": len(items),
        "coverage": _percent(documented, len(items)),
        "styles": dict(styles),
        "dominant_style": dominant,
        "missing": [i.location + " " + i.qualname for i in items if not i.docstring][: _LISTED * 5],
        "parse_errors": errors[:_LISTED],
    }
    return ToolOutput(observations=tuple(observations), findings=tuple(findings), data=data)


def _check_params(
    item: Documentable, observations: list[Observation], findings: list[ProposedFinding]
) -> None:
    """Compare a docstring's parameter section with the signature; report both kinds of drift."""
    if not item.docstring:
        return
    style = docstring_style(item.docstring)
    documented = documented_params(item.docstring, style)
    actual = _signature_params(item)
    if documented is None or actual is None:
        return
    nonexistent = [d for d in documented if d not in actual]
    undocumented = [a for a in actual if a not in documented]
    if not nonexistent and not undocumented:
        return
    parts = [f"documents nonexistent {', '.join(nonexistent)}"] if nonexistent else []
    parts += [f"omits {', '.join(undocumented)}"] if undocumented else []
    observations.append(
        Observation(
            summary=f"{item.location} {item.qualname}: {style}-style docstring {'; '.join(parts)}",
            data={
                "name": item.qualname,
                "kind": item.kind,
                "style": style,
                "documented": documented,
                "actual": actual,
                "nonexistent": nonexistent,
                "undocumented": undocumented,
            },
            location=item.location,
        )
    )
    index = len(observations) - 1
    if nonexistent:
        findings.append(
            ProposedFinding(
                title=f"Docstring of {item.qualname} documents nonexistent parameters ({item.location})",
                severity=Severity.LOW,
                description=f"Documented but not in the signature: {', '.join(nonexistent)}.",
                recommendation="Rename or remove the stale entries so the docs match the signature.",
                observation_indexes=(index,),
            )
        )
    if undocumented:
        findings.append(
            ProposedFinding(
                title=f"Docstring of {item.qualname} omits parameters ({item.location})",
                severity=Severity.LOW,
                description=f"In the signature but not documented: {', '.join(undocumented)}.",
                recommendation="Describe every parameter in the docstring's parameters section.",
                observation_indexes=(index,),
            )
        )


def _render_arg(arg: ast.arg, default: ast.expr | None) -> str:
    text = arg.arg + (f": {ast.unparse(arg.annotation)}" if arg.annotation else "")
    if default is None:
        return text
    return f"{text} = {ast.unparse(default)}" if arg.annotation else f"{text}={ast.unparse(default)}"


def render_arguments(args: ast.arguments) -> str:
    """A parameter list as written in source (PEP 8 spacing), with ``/`` and ``*`` markers."""
    positional = [*args.posonlyargs, *args.args]
    defaults: list[ast.expr | None] = [None] * (len(positional) - len(args.defaults))
    defaults.extend(args.defaults)
    parts = [_render_arg(a, d) for a, d in zip(positional, defaults, strict=True)]
    if args.posonlyargs:
        parts.insert(len(args.posonlyargs), "/")
    if args.vararg:
        parts.append("*" + _render_arg(args.vararg, None))
    elif args.kwonlyargs:
        parts.append("*")
    parts += [_render_arg(a, d) for a, d in zip(args.kwonlyargs, args.kw_defaults, strict=True)]
    if args.kwarg:
        parts.append("**" + _render_arg(args.kwarg, None))
    return ", ".join(parts)


def render_signature(node: FunctionNode | ast.ClassDef) -> str:
    """The definition line of a function or class (decorators on the lines above), without the colon."""
    decorators = [f"@{ast.unparse(d)}" for d in node.decorator_list]
    if isinstance(node, ast.ClassDef):
        bases = [ast.unparse(b) for b in node.bases] + [ast.unparse(k) for k in node.keywords]
        return "\n".join([*decorators, f"class {node.name}" + (f"({', '.join(bases)})" if bases else "")])
    prefix = "async def" if isinstance(node, ast.AsyncFunctionDef) else "def"
    returns = f" -> {ast.unparse(node.returns)}" if node.returns else ""
    return "\n".join([*decorators, f"{prefix} {node.name}({render_arguments(node.args)}){returns}"])


def _first_paragraph(doc: str | None) -> str:
    if not doc:
        return "*No docstring.*"
    return " ".join(doc.strip().split("\n\n", 1)[0].split())


def _module_markdown(file: str, found: list[Documentable]) -> str:
    lines: list[str] = []
    for item in found:
        node = item.node
        if isinstance(node, ast.Module):
            lines += [f"## `{item.qualname}`", "", f"`{file}`: {_first_paragraph(item.docstring)}", ""]
            continue
        heading = "####" if item.kind == "method" else "###"
        label = f"class `{item.qualname}`" if item.kind == "class" else f"`{item.qualname}`"
        signature = render_signature(node)
        if isinstance(node, ast.ClassDef):
            init = next((i for i in node.body if isinstance(i, FunctionNode) and i.name == "__init__"), None)
            signature += f"\n    {render_signature(init)}" if init else ""
        lines += [
            f"{heading} {label}",
            "",
            "```python",
            signature,
            "```",
            "",
            _first_paragraph(item.docstring),
            "",
        ]
    return "\n".join(lines)


class ApiReferenceArgs(ToolArgs):
    """Arguments of `api_reference`."""

    include_private: bool = Field(default=False, description="Also document names starting with '_'.")
    include_tests: bool = Field(default=False, description="Also document test modules.")
    max_chars: int = Field(
        default=24_000, ge=2_000, le=48_000, description="Size cap of the Markdown (counted JSON-escaped)."
    )


class ApiReferenceTool(Tool):
    """A Markdown API reference generated from the code's AST: signatures and docstring summaries."""

    name: ClassVar[str] = "api_reference"
    description: ClassVar[str] = (
        "Generate a Markdown API reference from Python sources (by AST, never importing them): modules, "
        "classes and functions with signatures including defaults and annotations, and the first "
        "paragraph of each docstring."
    )
    args_model: ClassVar[type[ToolArgs]] = ApiReferenceArgs
    max_data_bytes: ClassVar[int] = 64 * 1024

    async def execute(self, args: ToolArgs, ctx: ToolContext) -> ToolOutput:
        """Render the reference of the task's Python inputs."""
        if not isinstance(args, ApiReferenceArgs):
            raise ToolError("api_reference expects ApiReferenceArgs", tool=self.name)
        return await asyncio.to_thread(
            render_api_reference,
            ctx.files,
            include_private=args.include_private,
            include_tests=args.include_tests,
            max_chars=args.max_chars,
        )


def render_api_reference(
    files: Sequence[InputFile],
    *,
    include_private: bool = False,
    include_tests: bool = False,
    max_chars: int = 24_000,
) -> ToolOutput:
    """Blocking body of `ApiReferenceTool`."""
    parsed, errors = _parse_python(files, include_tests=include_tests)
    sections = ["# API reference", ""]
    size = sum(len(json.dumps(s)) for s in sections)
    observations: list[Observation] = []
    omitted: list[str] = []
    for file, module, tree in parsed:
        found = documentables(file, module, tree, private=include_private)
        kinds = Counter(i.kind for i in found)
        if not found:
            continue
        text = _module_markdown(file, found)
        # Whole modules or nothing: a reference cut mid-class reads as if the rest did not exist.
        included = size + len(json.dumps(text)) <= max_chars
        if included:
            sections.append(text)
            size += len(json.dumps(text))
        else:
            omitted.append(module)
        undocumented = [i.qualname for i in found if not i.docstring]
        observations.append(
            Observation(
                summary=(
                    f"{file}: module {module} with {kinds['class']} classes, {kinds['function']} functions, "
                    f"{kinds['method']} methods ({len(undocumented)} without docstrings)"
                    + ("" if included else "; left out of the reference by the size cap")
                ),
                data={
                    "module": module,
                    "objects": len(found),
                    "undocumented": undocumented[:_LISTED],
                    "included": included,
                },
                location=file,
            )
        )
    if omitted:
        sections.append(f"*{len(omitted)} more modules left out to stay under {max_chars} characters.*\n")
    data = {
        "markdown": "\n".join(sections),
        "modules": len(observations) - len(omitted),
        "omitted_modules": omitted[:_LISTED],
        "truncated": bool(omitted),
        "parse_errors": errors[:_LISTED],
    }
    return ToolOutput(observations=tuple(observations), data=data)
