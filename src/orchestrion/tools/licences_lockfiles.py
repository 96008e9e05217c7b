"""Manifests and lock files outside Python: npm, Go modules, Cargo, RubyGems and Composer.

Licences carried by lock files are read where the format has them: ``package-lock.json`` v2/v3
(``packages[*].license``) and ``composer.lock`` (``license`` lists, which Composer defines as a choice,
so they are OR-ed). ``go.mod``, ``Cargo.lock`` and ``Gemfile.lock`` record none.
"""

from __future__ import annotations

import re
import tomllib
from typing import Any

from orchestrion.tools.base import InputFile
from orchestrion.tools.licences_manifests import (
    Dependency,
    Manifest,
    broken,
    json_object,
    licence_text,
    line_of,
    table,
)

_NPM_SECTIONS = (
    ("dependencies", "runtime"),
    ("devDependencies", "dev"),
    ("optionalDependencies", "optional"),
)
_SEMVER = re.compile(r"^=?v?\d+\.\d+\.\d+(?:[-+][0-9A-Za-z.+-]+)?$")
_LOCAL_SPECS = ("file:", "link:", "workspace:", "portal:")
_GIT_SHA = re.compile(r"#[0-9a-f]{40}$")
_COMPOSER_PLATFORM = re.compile(
    r"^(php|hhvm|composer(-plugin-api|-runtime-api)?|ext-.+|lib-.+)$", re.IGNORECASE
)
_GEM_SPEC = re.compile(r"^ {4}(?P<name>[^\s(]+) \((?P<version>[^)]+)\)\s*$")
_GO_REQUIRE = re.compile(r"^(?P<path>\S+)\s+(?P<version>v\S+)(?P<rest>.*)$")


def parse_package_json(file: InputFile) -> Manifest:
    """``package.json``: dependencies by section; ``file:``/``workspace:`` entries are local, skipped."""
    document = json_object(file.content)
    if document is None:
        return broken(file, "package.json", "npm", "not a JSON object")
    dependencies: list[Dependency] = []
    for section, scope in _NPM_SECTIONS:
        for name, value in table(document.get(section)).items():
            spec = value if isinstance(value, str) else ""
            if spec.startswith(_LOCAL_SPECS):
                continue
            pinned = bool(_SEMVER.match(spec)) or bool(_GIT_SHA.search(spec))
            dependencies.append(
                Dependency(
                    name=name,
                    ecosystem="npm",
                    spec=spec,
                    version=spec.lstrip("=v") if _SEMVER.match(spec) else None,
                    pinned=pinned,
                    scope=scope,
                    line=line_of(file.content, f'"{name}"'),
                )
            )
    licence = licence_text(document.get("license")) or licence_text(document.get("licenses"))
    project_name = document.get("name")
    return Manifest(
        file=file.name,
        kind="package.json",
        ecosystem="npm",
        is_lock=False,
        dependencies=tuple(dependencies),
        project_name=project_name if isinstance(project_name, str) else None,
        project_licence=licence,
        project_licence_line=line_of(file.content, '"license') if licence else None,
    )


def parse_package_lock(file: InputFile) -> Manifest:
    """``package-lock.json`` / ``npm-shrinkwrap.json``: v2/v3 ``packages`` (with licences) or v1."""
    kind = file.name.rsplit("/", 1)[-1]
    document = json_object(file.content)
    if document is None:
        return broken(file, kind, "npm", "not a JSON object")
    packages = table(document.get("packages"))
    if not packages:
        return _package_lock_v1(file, kind, document)
    root = table(packages.get(""))
    direct = {
        name for section, _ in _NPM_SECTIONS for name in table(root.get(section)) if isinstance(name, str)
    }
    dependencies: list[Dependency] = []
    for path, value in packages.items():
        entry = table(value)
        if not path or "node_modules/" not in path or entry.get("link"):
            # The root, workspace members and links are the project's own code.
            continue
        name = (
            entry.get("name") if isinstance(entry.get("name"), str) else path.rsplit("node_modules/", 1)[-1]
        )
        version = entry.get("version") if isinstance(entry.get("version"), str) else None
        nested = path.count("node_modules/") > 1
        scope = "dev" if entry.get("dev") or entry.get("devOptional") else "runtime"
        if entry.get("optional") and scope == "runtime":
            scope = "optional"
        dependencies.append(
            Dependency(
                name=str(name),
                ecosystem="npm",
                spec=version or "",
                version=version,
                pinned=True,
                licence=licence_text(entry.get("license")) or licence_text(entry.get("licenses")),
                scope=scope,
                direct=not nested and name in direct,
                line=line_of(file.content, f'"{path}"'),
            )
        )
    root_name = root.get("name") or document.get("name")
    root_licence = licence_text(root.get("license"))
    return Manifest(
        file=file.name,
        kind=kind,
        ecosystem="npm",
        is_lock=True,
        dependencies=tuple(dependencies),
        project_name=root_name if isinstance(root_name, str) else None,
        project_licence=root_licence,
        project_licence_line=line_of(file.content, '"license"') if root_licence else None,
    )


def parse_go_mod(file: InputFile) -> Manifest:
    """``go.mod``: ``require`` lines and blocks; ``// indirect`` marks transitive modules."""
    dependencies: list[Dependency] = []
    module: str | None = None
    in_block = False
    for number, raw in enumerate(file.content.splitlines(), start=1):
        line = raw.strip()
        if line.startswith("module "):
            module = line.split(None, 1)[1].strip().strip('"')
            continue
        if line.startswith("require ("):
            in_block = True
            continue
        if in_block and line.startswith(")"):
            in_block = False
            continue
        body = line[len("require ") :].strip() if line.startswith("require ") else line if in_block else ""
        match = _GO_REQUIRE.match(body)
        if match is None:
            continue
        version = match.group("version")
        dependencies.append(
            Dependency(
                name=match.group("path"),
                ecosystem="go",
                spec=version,
                version=version,
                pinned=True,
                direct="// indirect" not in match.group("rest"),
                line=number,
            )
        )
    return Manifest(
        file=file.name,
        kind="go.mod",
        ecosystem="go",
        # go.mod names one exact version per module and go.sum locks its hash.
        is_lock=True,
        dependencies=tuple(dependencies),
        project_name=module,
    )


def parse_cargo_toml(file: InputFile) -> Manifest:
    """``Cargo.toml``: (dev-/build-) dependencies, target-specific ones too; path dependencies skipped."""
    try:
        document = tomllib.loads(file.content)
    except tomllib.TOMLDecodeError as exc:
        return broken(file, "Cargo.toml", "cargo", f"not valid TOML: {exc}")
    sections: list[tuple[str, dict[str, Any]]] = []
    for holder in [document, *(table(t) for t in table(document.get("target")).values())]:
        sections.append(("runtime", table(holder.get("dependencies"))))
        sections.append(("dev", table(holder.get("dev-dependencies"))))
        sections.append(("dev", table(holder.get("build-dependencies"))))
    sections.append(("runtime", table(table(document.get("workspace")).get("dependencies"))))
    dependencies: list[Dependency] = []
    for scope, entries in sections:
        for key, value in entries.items():
            detail = table(value)
            if "path" in detail or detail.get("workspace") is True:
                continue
            spec = value if isinstance(value, str) else str(detail.get("version", ""))
            if "git" in detail:
                pinned = bool(re.fullmatch(r"[0-9a-f]{40}", str(detail.get("rev", ""))))
            else:
                # Cargo reads "1.2.3" as "^1.2.3"; only "=1.2.3" names one version.
                pinned = bool(re.fullmatch(r"=\s*\d+\.\d+\.\d+\S*", spec.strip()))
            dependencies.append(
                Dependency(
                    name=str(detail.get("package", key)),
                    ecosystem="cargo",
                    spec=spec,
                    version=spec.lstrip("= ") if pinned and spec else None,
                    pinned=pinned,
                    scope=scope,
                    line=line_of(file.content, f"{key} =") or line_of(file.content, key),
                )
            )
    package = table(document.get("package")) or table(table(document.get("workspace")).get("package"))
    licence = package.get("license")
    if not isinstance(licence, str) and isinstance(package.get("license-file"), str):
        licence = None
    name = package.get("name")
    return Manifest(
        file=file.name,
        kind="Cargo.toml",
        ecosystem="cargo",
        is_lock=False,
        dependencies=tuple(dependencies),
        project_name=name if isinstance(name, str) else None,
        project_licence=licence if isinstance(licence, str) else None,
        project_licence_line=line_of(file.content, "license") if isinstance(licence, str) else None,
    )


def parse_cargo_lock(file: InputFile) -> Manifest:
    """``Cargo.lock``: ``[[package]]`` entries from a registry or git (workspace crates have no source)."""
    try:
        document = tomllib.loads(file.content)
    except tomllib.TOMLDecodeError as exc:
        return broken(file, "Cargo.lock", "cargo", f"not valid TOML: {exc}")
    dependencies: list[Dependency] = []
    packages = document.get("package")
    for entry in packages if isinstance(packages, list) else []:
        entry = table(entry)
        name, version = entry.get("name"), entry.get("version")
        if not isinstance(name, str) or "source" not in entry:
            continue
        dependencies.append(
            Dependency(
                name=name,
                ecosystem="cargo",
                spec=str(version or ""),
                version=version if isinstance(version, str) else None,
                pinned=True,
                direct=False,
                line=line_of(file.content, f'name = "{name}"'),
            )
        )
    return Manifest(
        file=file.name, kind="Cargo.lock", ecosystem="cargo", is_lock=True, dependencies=tuple(dependencies)
    )


def parse_gemfile_lock(file: InputFile) -> Manifest:
    """``Gemfile.lock``: gems under ``GEM``/``GIT`` specs; ``DEPENDENCIES`` says which are direct."""
    lines = file.content.splitlines()
    direct: set[str] = set()
    section = ""
    for line in lines:
        if line and not line.startswith(" "):
            section = line.strip()
        elif section == "DEPENDENCIES" and line.startswith("  ") and not line.startswith("   "):
            direct.add(line.strip().split()[0].rstrip("!"))
    dependencies: list[Dependency] = []
    section = ""
    for number, line in enumerate(lines, start=1):
        if line and not line.startswith(" "):
            section = line.strip()
            continue
        match = _GEM_SPEC.match(line)
        if match is None or section not in ("GEM", "GIT"):
            continue
        name, version = match.group("name"), match.group("version")
        dependencies.append(
            Dependency(
                name=name,
                ecosystem="rubygems",
                spec=version,
                version=version,
                pinned=True,
                direct=name in direct,
                line=number,
            )
        )
    return Manifest(
        file=file.name,
        kind="Gemfile.lock",
        ecosystem="rubygems",
        is_lock=True,
        dependencies=tuple(dependencies),
    )


def parse_composer_json(file: InputFile) -> Manifest:
    """``composer.json``: ``require`` and ``require-dev``, platform packages (php, ext-*) skipped."""
    document = json_object(file.content)
    if document is None:
        return broken(file, "composer.json", "composer", "not a JSON object")
    dependencies: list[Dependency] = []
    for section, scope in (("require", "runtime"), ("require-dev", "dev")):
        for name, value in table(document.get(section)).items():
            if _COMPOSER_PLATFORM.match(name):
                continue
            spec = value if isinstance(value, str) else ""
            pinned = bool(_SEMVER.match(spec))
            dependencies.append(
                Dependency(
                    name=name,
                    ecosystem="composer",
                    spec=spec,
                    version=spec.lstrip("=v") if pinned else None,
                    pinned=pinned,
                    scope=scope,
                    line=line_of(file.content, f'"{name}"'),
                )
            )
    licence = licence_text(document.get("license"))
    project_name = document.get("name")
    return Manifest(
        file=file.name,
        kind="composer.json",
        ecosystem="composer",
        is_lock=False,
        dependencies=tuple(dependencies),
        project_name=project_name if isinstance(project_name, str) else None,
        project_licence=licence,
        project_licence_line=line_of(file.content, '"license"') if licence else None,
    )


def parse_composer_lock(file: InputFile) -> Manifest:
    """``composer.lock``: ``packages`` and ``packages-dev`` with their ``license`` lists."""
    document = json_object(file.content)
    if document is None:
        return broken(file, "composer.lock", "composer", "not a JSON object")
    dependencies: list[Dependency] = []
    for section, scope in (("packages", "runtime"), ("packages-dev", "dev")):
        entries = document.get(section)
        for entry in entries if isinstance(entries, list) else []:
            entry = table(entry)
            name, version = entry.get("name"), entry.get("version")
            if not isinstance(name, str):
                continue
            dependencies.append(
                Dependency(
                    name=name,
                    ecosystem="composer",
                    spec=str(version or ""),
                    version=version if isinstance(version, str) else None,
                    pinned=True,
                    licence=licence_text(entry.get("license")),
                    scope=scope,
                    direct=False,
                    line=line_of(file.content, f'"name": "{name}"'),
                )
            )
    return Manifest(
        file=file.name,
        kind="composer.lock",
        ecosystem="composer",
        is_lock=True,
        dependencies=tuple(dependencies),
    )


def _package_lock_v1(file: InputFile, kind: str, document: dict[str, Any]) -> Manifest:
    dependencies: list[Dependency] = []
    pending: list[dict[str, Any]] = [table(document.get("dependencies"))]
    while pending and len(dependencies) < 100_000:
        entries = pending.pop()
        for name, value in entries.items():
            entry = table(value)
            version = entry.get("version") if isinstance(entry.get("version"), str) else None
            dependencies.append(
                Dependency(
                    name=name,
                    ecosystem="npm",
                    spec=version or "",
                    version=version,
                    pinned=True,
                    scope="dev" if entry.get("dev") else "runtime",
                    direct=False,
                    line=line_of(file.content, f'"{name}"'),
                )
            )
            pending.append(table(entry.get("dependencies")))
    return Manifest(
        file=file.name,
        kind=kind,
        ecosystem="npm",
        is_lock=True,
        dependencies=tuple(dependencies),
        notes=("lockfileVersion 1 records no licences",),
    )
