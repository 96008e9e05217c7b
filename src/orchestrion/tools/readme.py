"""`ReadmeCheckTool`: README presence and structure (title, install, usage, configuration, license, links).

Markdown, reStructuredText and plain-text READMEs are outlined with line-based parsing; nothing is rendered
or fetched, and relative links are checked against the uploaded file names only.
"""

from __future__ import annotations

import asyncio
import itertools
import posixpath
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import ClassVar
from urllib.parse import unquote

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

_LISTED = 20


_README = re.compile(r"^readme(\.(md|markdown|rst|txt))?$", re.IGNORECASE)
_ATX = re.compile(r"^ {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$")
_HTML_HEADING = re.compile(r"<h([1-6])\b[^>]*>(.*?)</h\1>", re.IGNORECASE)
_SETEXT = re.compile(r"^ {0,3}(=+|-+)[ \t]*$")
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_RST_ADORNMENT = re.compile(r"([!-/:-@\[-`{-~])\1{2,}\s*")
_RST_CODE = re.compile(r"::\s*$|^\s*\.\.\s+(code-block|code|sourcecode)::")
_INSTALL = re.compile(r"install|setup|set up|getting started|requirements", re.IGNORECASE)
_USAGE = re.compile(
    r"usage|quick ?start|getting started|example|tutorial|how to use|basic use", re.IGNORECASE
)
_CONFIG = re.compile(r"config|settings|environment|options|customi[sz]", re.IGNORECASE)
_LICENSE = re.compile(r"\blicen[cs]e", re.IGNORECASE)
_INSTALL_COMMAND = re.compile(
    r"\b(pip3?|pipx|uv pip|poetry|conda|mamba|npm|yarn|pnpm|cargo|go|brew|apt(-get)?|gem)\s+(install|add)\b"
)
_MD_LINKS = (
    re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+(?:\"[^\"]*\"|'[^']*'|\([^)]*\)))?\s*\)"),
    re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)"),
    re.compile(r"(?:href|src)\s*=\s*[\"']([^\"']+)[\"']", re.IGNORECASE),
)
_RST_LINKS = (
    re.compile(r"`[^`<]*<([^>`]+)>`_{1,2}"),
    re.compile(r"^\s*\.\.\s+(?:image|figure|include|literalinclude)::\s*(\S+)"),
    re.compile(r"^\s*\.\.\s+_[^:]+:\s*(\S+)"),
)
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")
_MAX_LINE_OBSERVATIONS = 50


@dataclass(frozen=True, kw_only=True)
class Heading:
    """A README heading: level 1 is the title."""

    level: int
    text: str
    line: int


@dataclass(frozen=True, kw_only=True)
class Outline:
    """A README's structure: headings, code blocks (first line, last line, text) and prose lines."""

    headings: list[Heading]
    code_blocks: list[tuple[int, int, str]]
    prose: list[tuple[int, str]]


def _atx_or_html_heading(line: str) -> tuple[int, str] | None:
    atx = _ATX.match(line)
    if atx:
        return len(atx.group(1)), (atx.group(2) or "").strip()
    html = _HTML_HEADING.search(line)
    return (int(html.group(1)), re.sub(r"<[^>]+>", "", html.group(2)).strip()) if html else None


def outline_markdown(text: str) -> Outline:
    """Headings (ATX, setext, HTML), fenced code blocks and the lines outside them."""
    headings: list[Heading] = []
    blocks: list[tuple[int, int, str]] = []
    prose: list[tuple[int, str]] = []
    fence: str | None = None
    start, body = 0, list[str]()
    previous: tuple[int, str] | None = None
    lines = text.splitlines()
    for number, line in enumerate(lines, start=1):
        if fence is not None:
            if line.strip().startswith(fence) and not line.strip().strip(fence[0]):
                blocks.append((start, number, "\n".join(body)))
                fence = None
            else:
                body.append(line)
            continue
        opening = _FENCE.match(line)
        if opening:
            fence, start, body, previous = opening.group(1), number, [], None
            continue
        prose.append((number, line))
        heading = _atx_or_html_heading(line)
        if heading is not None:
            headings.append(Heading(level=heading[0], text=heading[1], line=number))
            previous = None
        elif _SETEXT.match(line) and previous is not None:
            headings.append(Heading(level=1 if "=" in line else 2, text=previous[1], line=previous[0]))
            previous = None
        else:
            plain = line.strip() and not line.lstrip().startswith(("- ", "* ", "|", ">", "<"))
            previous = (number, line.strip()) if plain else None
    if fence is not None:  # An unclosed fence runs to the end, as renderers treat it.
        blocks.append((start, len(lines), "\n".join(body)))
    return Outline(headings=headings, code_blocks=blocks, prose=prose)


def outline_rst(text: str) -> Outline:
    """Section titles (levels in order of first use of each adornment) and literal/code blocks."""
    lines = text.splitlines()
    styles: list[tuple[str, bool]] = []
    headings: list[Heading] = []
    for index, (title, under) in enumerate(itertools.pairwise(lines)):
        if not title.strip() or _RST_ADORNMENT.fullmatch(title) or not _RST_ADORNMENT.fullmatch(under):
            continue
        if len(under.rstrip()) < len(title.strip()):
            continue
        style = (under[0], index > 0 and lines[index - 1].rstrip() == under.rstrip())
        if style not in styles:
            styles.append(style)
        headings.append(Heading(level=styles.index(style) + 1, text=title.strip(), line=index + 1))
    blocks: list[tuple[int, int, str]] = []
    for index, line in enumerate(lines):
        if _RST_CODE.search(line):
            body = list(itertools.takewhile(lambda b: not b.strip() or b[:1].isspace(), lines[index + 1 :]))
            if any(b.strip() for b in body):
                blocks.append((index + 1, index + 1 + len(body), "\n".join(body)))
    return Outline(headings=headings, code_blocks=blocks, prose=list(enumerate(lines, start=1)))


def _section_end(headings: list[Heading], index: int, last_line: int) -> int:
    level = headings[index].level
    return next((h.line - 1 for h in headings[index + 1 :] if h.level <= level), last_line)


def _relative_links(readme: InputFile, outline: Outline) -> list[tuple[int, str, str]]:
    """(line, target as written, path it resolves to) for every relative link outside code blocks."""
    patterns = _RST_LINKS if readme.name.lower().endswith(".rst") else _MD_LINKS
    folder = posixpath.dirname(readme.name)
    found: list[tuple[int, str, str]] = []
    for number, line in outline.prose:
        for pattern in patterns:
            for target in pattern.findall(line):
                if _SCHEME.match(target) or target.startswith(("#", "//")):
                    continue
                path = unquote(target.split("#", 1)[0].split("?", 1)[0])
                if path:
                    joined = path.lstrip("/") if path.startswith("/") else posixpath.join(folder, path)
                    found.append((number, target, posixpath.normpath(joined)))
    return found


def _readme_checks(readme: InputFile, outline: Outline, names: set[str]) -> dict[str, bool]:
    """Which essentials the README has, from its headings, code blocks and text."""
    headings, last = outline.headings, len(readme.content.splitlines())

    def sections(pattern: re.Pattern[str]) -> list[tuple[int, int]]:
        return [
            (h.line, _section_end(headings, i, last))
            for i, h in enumerate(headings)
            if pattern.search(h.text)
        ]

    usage = sections(_USAGE)
    license_files = any(PurePosixPath(n).stem.upper() in ("LICENSE", "LICENCE", "COPYING") for n in names)
    return {
        "title": bool(headings) and headings[0].level == 1,
        "install": bool(sections(_INSTALL)) or bool(_INSTALL_COMMAND.search(readme.content)),
        "usage": bool(usage),
        "usage_code_block": any(a <= block[0] <= z for a, z in usage for block in outline.code_blocks),
        "configuration": bool(sections(_CONFIG)),
        "license": bool(_LICENSE.search(readme.content)) or license_files,
    }


class ReadmeCheckTool(Tool):
    """README presence and structure: title, install, usage with code, configuration, license, links."""

    name: ClassVar[str] = "readme_check"
    description: ClassVar[str] = (
        "Check the project's README (.md, .rst or .txt): title, installation, usage/quickstart with a "
        "code block, configuration, license mention, relative links to files missing from the upload and "
        "heading level jumps."
    )

    async def execute(self, args: ToolArgs, ctx: ToolContext) -> ToolOutput:
        """Check the README among the task's inputs."""
        return await asyncio.to_thread(check_readme, ctx.files)


def check_readme(files: Sequence[InputFile]) -> ToolOutput:
    """Blocking body of `ReadmeCheckTool`."""
    readmes = sorted(
        (f for f in files if _README.match(PurePosixPath(f.name).name)),
        key=lambda f: (f.name.count("/"), f.name),
    )
    if not readmes:
        observation = Observation(
            summary=f"No README among {len(files)} uploaded files",
            data={"files": sorted(f.name for f in files)[:_LISTED]},
        )
        finding = ProposedFinding(
            title="No README",
            severity=Severity.MEDIUM,
            description="The upload has no README.md, README.rst or README.txt.",
            recommendation="Add a README with what the project does, how to install it and a usage example.",
            observation_indexes=(0,),
        )
        return ToolOutput(observations=(observation,), findings=(finding,), data={"readme": None})
    readme = readmes[0]
    suffix = PurePosixPath(readme.name).suffix.lower()
    kind = {".rst": "rst", ".txt": "text", "": "text"}.get(suffix, "markdown")
    outline = outline_rst(readme.content) if kind == "rst" else outline_markdown(readme.content)
    headings = outline.headings
    names = {f.name for f in files}
    checks = _readme_checks(readme, outline, names)
    if kind == "text" and not checks["title"]:
        # Plain-text READMEs rarely mark up their title: a short first line is one.
        first = next((line.strip() for line in readme.content.splitlines() if line.strip()), "")
        checks["title"] = 0 < len(first) <= 80
    links = _relative_links(readme, outline)
    broken = [
        (line, target, path)
        for line, target, path in links
        if path.startswith("..")
        or (path not in names and path != "." and not any(n.startswith(path + "/") for n in names))
    ][:_MAX_LINE_OBSERVATIONS]
    summary = (
        f"{readme.name}: {len(headings)} headings, {len(outline.code_blocks)} code blocks; "
        + ", ".join(f"{name.replace('_', ' ')} {'yes' if ok else 'no'}" for name, ok in checks.items())
    )
    observations = [
        Observation(
            summary=summary,
            data={
                "file": readme.name,
                "format": kind,
                "checks": checks,
                "headings": [{"level": h.level, "text": h.text[:80], "line": h.line} for h in headings[:50]],
                "relative_links": len(links),
                "other_readmes": [r.name for r in readmes[1:]],
            },
            location=readme.name,
        )
    ]
    findings = [
        ProposedFinding(
            title=title, severity=severity, description=text, recommendation=fix, observation_indexes=(0,)
        )
        for check, title, severity, text, fix in _MISSING
        if not checks[check] and (check != "usage_code_block" or checks["usage"])
    ]
    for line, target, path in broken:
        observations.append(
            Observation(
                summary=f"{readme.name}:{line}: relative link {target} points to no uploaded file",
                data={"target": target, "resolved": path, "line": line},
                location=f"{readme.name}:{line}",
            )
        )
    if broken:
        findings.append(
            ProposedFinding(
                title=f"README links to {len(broken)} files missing from the upload",
                severity=Severity.LOW,
                description="Relative links with no matching file: "
                + ", ".join(t for _l, t, _p in broken[:5]),
                recommendation="Fix the paths or add the files (unless they exist but were not uploaded).",
                observation_indexes=tuple(range(1, len(observations))),
            )
        )
    first_jump = len(observations)
    jumps = [(a, b) for a, b in itertools.pairwise(headings) if b.level > a.level + 1]
    for above, below in jumps[:_MAX_LINE_OBSERVATIONS]:
        observations.append(
            Observation(
                summary=(
                    f"{readme.name}:{below.line}: heading {below.text!r} jumps from level "
                    f"{above.level} to {below.level}"
                ),
                data={"heading": below.text[:80], "from": above.level, "to": below.level, "line": below.line},
                location=f"{readme.name}:{below.line}",
            )
        )
    if len(observations) > first_jump:
        findings.append(
            ProposedFinding(
                title="README heading levels skip a level",
                severity=Severity.INFO,
                description="Headings skip levels going down, which breaks outlines and tables of contents.",
                recommendation="Nest headings one level at a time.",
                observation_indexes=tuple(range(first_jump, len(observations))),
            )
        )
    data = {"readme": readme.name, "checks": checks, "broken_links": [t for _l, t, _p in broken][:_LISTED]}
    return ToolOutput(observations=tuple(observations), findings=tuple(findings), data=data)


_MISSING: tuple[tuple[str, str, Severity, str, str], ...] = (
    (
        "title",
        "README has no title",
        Severity.LOW,
        "The README does not start with a top-level heading naming the project.",
        "Start the README with a level-1 heading and a one-sentence description.",
    ),
    (
        "install",
        "README has no installation instructions",
        Severity.MEDIUM,
        "No installation section and no install command (pip install, poetry add...) was found.",
        "Add an Installation section with the exact command to install the project.",
    ),
    (
        "usage",
        "README has no usage or quickstart section",
        Severity.MEDIUM,
        "No heading mentions usage, quickstart, examples or getting started.",
        "Add a Usage (or Quickstart) section with a minimal, runnable example.",
    ),
    (
        "usage_code_block",
        "README usage section has no code example",
        Severity.LOW,
        "The usage section has no code block to copy.",
        "Add a short code block showing the most common use.",
    ),
    (
        "configuration",
        "README does not document configuration",
        Severity.INFO,
        "No heading mentions configuration, settings, options or environment variables.",
        "Document the settings and environment variables, with defaults.",
    ),
    (
        "license",
        "README does not mention a license",
        Severity.LOW,
        "The README never mentions a license and the upload has no LICENSE file.",
        "State the license in the README and add a LICENSE file.",
    ),
)
