"""Dependency manifests and lock files read into one shape: `Manifest` holding `Dependency` entries.

Python: ``requirements*.txt``, ``pyproject.toml`` (PEP 621, PEP 735 groups, Poetry), ``setup.cfg``,
``Pipfile.lock``, ``poetry.lock``, ``uv.lock``. The other ecosystems (npm, Go, Cargo, RubyGems,
Composer) live in `licences_lockfiles`. A parser never raises on bad input: a file it cannot read comes
back with an `error` and no dependencies.

A dependency is *pinned* when its entry names exactly one version (``==1.2.3``, ``"1.2.3"`` in npm,
``=1.2.3`` in Cargo) or comes from a lock file; `Manifest.is_lock` says which.
"""

from __future__ import annotations

import configparser
import json
import re
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from orchestrion.tools.base import InputFile


@dataclass(frozen=True, kw_only=True)
class Dependency:
    """One dependency as a manifest or lock file states it.

    Attributes:
        name: Package name as written.
        ecosystem: ``pypi``, ``npm``, ``go``, ``cargo``, ``rubygems`` or ``composer``.
        spec: The version requirement as written (``""`` when none).
        version: The exact version when the entry pins one.
        pinned: Whether the entry names exactly one version.
        licence: The licence the entry itself declares (lock files that carry one), else None.
        scope: ``runtime``, ``dev`` or ``optional``.
        direct: Whether the project asks for it itself (False for what a lock file adds transitively).
        line: Line of the entry in the file, when known.
    """

    name: str
    ecosystem: str
    spec: str = ""
    version: str | None = None
    pinned: bool = False
    licence: str | None = None
    scope: str = "runtime"
    direct: bool = True
    line: int | None = None


@dataclass(frozen=True, kw_only=True)
class Manifest:
    """What one file says: its dependencies and, for a project manifest, the project's own licence."""

    file: str
    kind: str
    ecosystem: str
    is_lock: bool
    dependencies: tuple[Dependency, ...] = ()
    project_name: str | None = None
    project_licence: str | None = None
    project_licence_line: int | None = None
    error: str | None = None
    notes: tuple[str, ...] = field(default=())


Parser = Callable[[InputFile], Manifest]

_PEP508 = re.compile(
    r"^\s*(?P<name>[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)\s*(?:\[[^\]]*\])?\s*"
    r"(?:@\s*(?P<url>\S+)|(?P<spec>[^;@]*))?\s*(?:;.*)?$"
)
_EXACT_PEP440 = re.compile(r"^===?\s*[^*,\s;]+$")
_COMMIT = re.compile(r"@[0-9a-f]{40}\b")
_DEV_GROUPS = frozenset(
    {"dev", "develop", "development", "test", "tests", "testing", "lint", "docs", "typing"}
)


def parse_pep508(text: str) -> tuple[str, str, bool] | None:
    """Name, version spec as written and whether it pins one version, for one PEP 508 requirement.

    A direct URL pins an artifact, except a VCS URL without a full commit hash (a branch or a tag can
    move).
    """
    match = _PEP508.match(text)
    if match is None:
        return None
    url = match.group("url")
    if url:
        pinned = not url.startswith(("git+", "hg+", "svn+", "bzr+")) or bool(_COMMIT.search(url))
        return match.group("name"), f"@ {url}", pinned
    spec = (match.group("spec") or "").strip().strip("()").strip()
    return match.group("name"), spec, bool(_EXACT_PEP440.match(spec))


def exact_version(spec: str) -> str | None:
    """The version of an exact ``==``/``===`` spec, else None."""
    return spec.lstrip("=").strip() if _EXACT_PEP440.match(spec) else None


def parse_requirements(file: InputFile) -> Manifest:
    """A pip requirements file: one requirement per line; options, includes and paths skipped."""
    dependencies: list[Dependency] = []
    skipped: list[str] = []
    for number, line in _logical_lines(file.content):
        text = re.sub(r"(^|\s)#.*$", "", line).strip()
        text = re.sub(r"\s--hash[=\s]\S+", "", text).strip()
        if not text:
            continue
        if text.startswith(("-", ".", "/")) or "://" in text.split("@", 1)[0]:
            # Includes (-r/-c), editable installs, index options and local paths name no registry package.
            skipped.append(text.split()[0])
            continue
        parsed = parse_pep508(text)
        if parsed is None:
            skipped.append(text[:40])
            continue
        name, spec, pinned = parsed
        dependencies.append(
            Dependency(
                name=name,
                ecosystem="pypi",
                spec=spec,
                version=exact_version(spec),
                pinned=pinned,
                line=number,
            )
        )
    notes = (f"skipped {len(skipped)} option or non-registry lines",) if skipped else ()
    return Manifest(
        file=file.name,
        kind="requirements",
        ecosystem="pypi",
        is_lock=False,
        dependencies=tuple(dependencies),
        notes=notes,
    )


def parse_pyproject(file: InputFile) -> Manifest:
    """``pyproject.toml``: PEP 621 ``[project]``, PEP 735 ``[dependency-groups]`` and Poetry tables."""
    try:
        document = tomllib.loads(file.content)
    except tomllib.TOMLDecodeError as exc:
        return _broken(file, "pyproject", "pypi", f"not valid TOML: {exc}")
    project = _table(document.get("project"))
    dependencies: list[Dependency] = []
    for text in _strings(project.get("dependencies")):
        dependencies.extend(_pep508_dependency(file, text, scope="runtime"))
    for group, items in _table(project.get("optional-dependencies")).items():
        scope = "dev" if group.lower() in _DEV_GROUPS else "optional"
        for text in _strings(items):
            dependencies.extend(_pep508_dependency(file, text, scope=scope))
    for items in _table(document.get("dependency-groups")).values():
        for text in _strings(items):
            dependencies.extend(_pep508_dependency(file, text, scope="dev"))
    poetry = _table(_table(document.get("tool")).get("poetry"))
    dependencies.extend(_poetry_dependencies(file, poetry))
    licence = _pyproject_licence(project) or _licence_text(poetry.get("license"))
    if licence is None:
        licence = _classifier_licence(
            _strings(project.get("classifiers")) or _strings(poetry.get("classifiers"))
        )
    name = project.get("name") or poetry.get("name")
    return Manifest(
        file=file.name,
        kind="pyproject",
        ecosystem="pypi",
        is_lock=False,
        dependencies=tuple(dependencies),
        project_name=name if isinstance(name, str) else None,
        project_licence=licence,
        project_licence_line=_line_of(file.content, "license") if licence else None,
    )


def parse_setup_cfg(file: InputFile) -> Manifest:
    """``setup.cfg``: ``[options] install_requires``, ``[options.extras_require]`` and the licence."""
    config = configparser.ConfigParser(interpolation=None)
    try:
        config.read_string(file.content)
    except configparser.Error as exc:
        return _broken(file, "setup.cfg", "pypi", f"not a valid setup.cfg: {exc.message}")
    dependencies: list[Dependency] = []
    for text in _cfg_list(config.get("options", "install_requires", fallback="")):
        dependencies.extend(_pep508_dependency(file, text, scope="runtime"))
    if config.has_section("options.extras_require"):
        for group, value in config.items("options.extras_require"):
            scope = "dev" if group.lower() in _DEV_GROUPS else "optional"
            for text in _cfg_list(value):
                dependencies.extend(_pep508_dependency(file, text, scope=scope))
    licence = config.get("metadata", "license_expression", fallback="") or config.get(
        "metadata", "license", fallback=""
    )
    if not licence.strip():
        licence = _classifier_licence(_cfg_list(config.get("metadata", "classifiers", fallback=""))) or ""
    name = config.get("metadata", "name", fallback="") or None
    return Manifest(
        file=file.name,
        kind="setup.cfg",
        ecosystem="pypi",
        is_lock=False,
        dependencies=tuple(dependencies),
        project_name=name,
        project_licence=licence.strip() or None,
        project_licence_line=_line_of(file.content, "license") if licence.strip() else None,
    )


def parse_pipfile_lock(file: InputFile) -> Manifest:
    """``Pipfile.lock``: ``default`` (runtime) and ``develop`` (dev) sections, every entry pinned."""
    document = _json_object(file.content)
    if document is None:
        return _broken(file, "Pipfile.lock", "pypi", "not a JSON object")
    dependencies: list[Dependency] = []
    for section, scope in (("default", "runtime"), ("develop", "dev")):
        for name, entry in _table(document.get(section)).items():
            version = str(_table(entry).get("version", "")).lstrip("=") or None
            dependencies.append(
                Dependency(
                    name=name,
                    ecosystem="pypi",
                    spec=f"=={version}" if version else "",
                    version=version,
                    pinned=True,
                    scope=scope,
                    direct=False,
                    line=_line_of(file.content, f'"{name}"'),
                )
            )
    return Manifest(
        file=file.name, kind="Pipfile.lock", ecosystem="pypi", is_lock=True, dependencies=tuple(dependencies)
    )


def parse_python_toml_lock(file: InputFile) -> Manifest:
    """``poetry.lock`` or ``uv.lock``: ``[[package]]`` entries; the project's own entry is left out."""
    kind = file.name.rsplit("/", 1)[-1]
    try:
        document = tomllib.loads(file.content)
    except tomllib.TOMLDecodeError as exc:
        return _broken(file, kind, "pypi", f"not valid TOML: {exc}")
    dependencies: list[Dependency] = []
    for entry in _tables(document.get("package")):
        source = _table(entry.get("source"))
        if "editable" in source or "virtual" in source or source.get("type") == "directory":
            continue
        name, version = entry.get("name"), entry.get("version")
        if not isinstance(name, str):
            continue
        category = entry.get("category")
        dependencies.append(
            Dependency(
                name=name,
                ecosystem="pypi",
                spec=f"=={version}" if isinstance(version, str) else "",
                version=version if isinstance(version, str) else None,
                pinned=True,
                scope="dev" if category == "dev" else "runtime",
                direct=False,
                line=_line_of(file.content, f'name = "{name}"'),
            )
        )
    return Manifest(
        file=file.name, kind=kind, ecosystem="pypi", is_lock=True, dependencies=tuple(dependencies)
    )


# -- shared helpers (also used by `licences_lockfiles`) ------------------------------------------


def broken(file: InputFile, kind: str, ecosystem: str, error: str) -> Manifest:
    """A manifest that could not be read."""
    return _broken(file, kind, ecosystem, error)


def line_of(text: str, needle: str) -> int | None:
    """1-based number of the first line containing `needle`, or None."""
    return _line_of(text, needle)


def table(value: Any) -> dict[str, Any]:
    """`value` if it is a mapping with string keys, else an empty one."""
    return _table(value)


def json_object(text: str) -> dict[str, Any] | None:
    """`text` parsed as a JSON object, or None."""
    return _json_object(text)


def licence_text(value: Any) -> str | None:
    """A licence field that is a string, a ``{type|text: ...}`` table or a list of either (OR-ed)."""
    return _licence_text(value)


def _broken(file: InputFile, kind: str, ecosystem: str, error: str) -> Manifest:
    return Manifest(file=file.name, kind=kind, ecosystem=ecosystem, is_lock=False, error=error)


def _pep508_dependency(file: InputFile, text: str, *, scope: str) -> Iterator[Dependency]:
    parsed = parse_pep508(text)
    if parsed is None:
        return
    name, spec, pinned = parsed
    yield Dependency(
        name=name,
        ecosystem="pypi",
        spec=spec,
        version=exact_version(spec),
        pinned=pinned,
        scope=scope,
        line=_line_of(file.content, text.strip()) or _line_of(file.content, name),
    )


def _poetry_dependencies(file: InputFile, poetry: dict[str, Any]) -> Iterator[Dependency]:
    sections: list[tuple[str, dict[str, Any]]] = [("runtime", _table(poetry.get("dependencies")))]
    sections.append(("dev", _table(poetry.get("dev-dependencies"))))
    for group in _table(poetry.get("group")).values():
        sections.append(("dev", _table(_table(group).get("dependencies"))))
    for scope, entries in sections:
        for name, value in entries.items():
            if name.lower() == "python":
                continue
            spec = value if isinstance(value, str) else str(_table(value).get("version", ""))
            if isinstance(value, dict) and ("path" in value or "git" in value):
                pinned = "rev" in value and bool(re.fullmatch(r"[0-9a-f]{40}", str(value["rev"])))
            else:
                # Poetry reads a bare version ("1.2.3") as exactly that version.
                pinned = bool(re.fullmatch(r"=*\s*\d[\w.+-]*", spec.strip()))
            yield Dependency(
                name=name,
                ecosystem="pypi",
                spec=spec,
                version=spec.lstrip("=").strip() if pinned and spec else None,
                pinned=pinned,
                scope=scope,
                line=_line_of(file.content, f"{name} =") or _line_of(file.content, name),
            )


def _pyproject_licence(project: dict[str, Any]) -> str | None:
    value = project.get("license")
    if isinstance(value, dict) and "file" in value and "text" not in value:
        return None
    return _licence_text(value)


def _licence_text(value: Any) -> str | None:
    if isinstance(value, str):
        return value.strip() or None
    if isinstance(value, dict):
        for key in ("text", "type", "name"):
            if isinstance(value.get(key), str) and value[key].strip():
                return str(value[key]).strip()
        return None
    if isinstance(value, list):
        parts = [part for part in (_licence_text(item) for item in value) if part]
        if not parts:
            return None
        return parts[0] if len(parts) == 1 else " OR ".join(f"({part})" for part in parts)
    return None


def _classifier_licence(classifiers: list[str]) -> str | None:
    found = [c for c in classifiers if c.startswith("License ::")]
    if not found:
        return None
    return found[0] if len(found) == 1 else " OR ".join(f"({c})" for c in found)


def _logical_lines(text: str) -> Iterator[tuple[int, str]]:
    buffer, start = "", 0
    for number, line in enumerate(text.splitlines(), start=1):
        if not buffer:
            start = number
        if line.endswith("\\"):
            buffer += line[:-1] + " "
            continue
        yield start, buffer + line
        buffer = ""
    if buffer:
        yield start, buffer


def _cfg_list(value: str) -> list[str]:
    # One requirement per line: a ";" inside a line starts an environment marker.
    return [item.strip() for item in value.splitlines() if item.strip() and not item.strip().startswith("#")]


def _line_of(text: str, needle: str) -> int | None:
    index = text.find(needle)
    return text.count("\n", 0, index) + 1 if index >= 0 else None


def _table(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _tables(value: Any) -> list[dict[str, Any]]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def _strings(value: Any) -> list[str]:
    return [item for item in value if isinstance(item, str)] if isinstance(value, list) else []


def _json_object(text: str) -> dict[str, Any] | None:
    try:
        value = json.loads(text)
    except (json.JSONDecodeError, RecursionError):
        return None
    return value if isinstance(value, dict) else None
