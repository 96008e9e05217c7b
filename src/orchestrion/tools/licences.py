"""Licence compliance of a project's dependencies, offline, from its uploaded manifests and lock files.

Each dependency's licence comes from the lock file when the entry carries one (``package-lock.json``
v2/v3, ``composer.lock``), else from the bundled table of common PyPI and npm packages
(`licences_table`, dated), else it is "unknown": the audit never guesses. Licences are classified by
`licences_spdx` and compared with the project's own licence (manifest fields, or a ``LICENSE`` /
``COPYING`` file recognised by its canonical wording).

Findings: a network-copyleft (AGPL...) dependency is high and a strong-copyleft (GPL...) one medium
when the project is not itself under a strong or network copyleft licence (permissive, proprietary,
weak copyleft, unclassified, or no licence at all, which means all rights reserved); a dependency used
only in development is low, since it is not shipped. A non-commercial / source-available dependency is
medium. Unknown licences, unpinned dependencies and a missing project licence are low.
"""

from __future__ import annotations

import asyncio
import posixpath
import re
from collections import Counter
from collections.abc import Sequence
from typing import ClassVar

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
from orchestrion.tools.licences_lockfiles import (
    parse_cargo_lock,
    parse_cargo_toml,
    parse_composer_json,
    parse_composer_lock,
    parse_gemfile_lock,
    parse_go_mod,
    parse_package_json,
    parse_package_lock,
)
from orchestrion.tools.licences_manifests import (
    Dependency,
    Manifest,
    Parser,
    parse_pipfile_lock,
    parse_pyproject,
    parse_python_toml_lock,
    parse_requirements,
    parse_setup_cfg,
)
from orchestrion.tools.licences_report import (
    FLAGGED,
    DeclaredLicence,
    ResolvedDependency,
    dependency_finding,
    dependency_observation,
    manifest_observation,
    project_observation,
    unknown_finding,
    unknown_observation,
    unpinned_finding,
    unpinned_observation,
)
from orchestrion.tools.licences_spdx import LicenceCategory, LicenceInfo, combine_all, describe_licence
from orchestrion.tools.licences_table import TABLE_DATE, known_licence, normalise_name

__all__ = ["LicenceAuditTool", "ResolvedDependency", "audit_licences", "identify_licence_text"]

_PARSERS: dict[str, Parser] = {
    "pyproject.toml": parse_pyproject,
    "setup.cfg": parse_setup_cfg,
    "pipfile.lock": parse_pipfile_lock,
    "poetry.lock": parse_python_toml_lock,
    "uv.lock": parse_python_toml_lock,
    "package.json": parse_package_json,
    "package-lock.json": parse_package_lock,
    "npm-shrinkwrap.json": parse_package_lock,
    "go.mod": parse_go_mod,
    "cargo.toml": parse_cargo_toml,
    "cargo.lock": parse_cargo_lock,
    "gemfile.lock": parse_gemfile_lock,
    "composer.json": parse_composer_json,
    "composer.lock": parse_composer_lock,
}
# Lock files that pin a manifest's dependencies even when this tool does not read them.
_UNPARSED_LOCKS = {"yarn.lock": "npm", "pnpm-lock.yaml": "npm", "pdm.lock": "pypi"}
# Title, then (version as written, SPDX id) in the order to try: "version 2.1" before "version 2".
_TITLED: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = (
    ("gnu affero general public license", (("version 3", "AGPL-3.0-only"),)),
    ("gnu lesser general public license", (("version 3", "LGPL-3.0-only"), ("version 2.1", "LGPL-2.1-only"))),
    ("gnu library general public license", (("version 2", "LGPL-2.0-only"),)),
    ("gnu general public license", (("version 3", "GPL-3.0-only"), ("version 2", "GPL-2.0-only"))),
    ("apache license", (("version 2.0", "Apache-2.0"),)),
    ("mozilla public license", (("version 2.0", "MPL-2.0"), ("v. 2.0", "MPL-2.0"))),
)
_LICENCE_FILE = re.compile(r"^(licen[cs]e|copying)([.-].*)?$", re.IGNORECASE)
_COPYLEFT_PROJECT = frozenset({LicenceCategory.STRONG_COPYLEFT, LicenceCategory.NETWORK_COPYLEFT})
_MAX_FLAGGED = 100


class LicenceAuditTool(Tool):
    """Dependency licences against the project's licence, from uploaded manifests and lock files."""

    name: ClassVar[str] = "licence_audit"
    description: ClassVar[str] = (
        "Offline licence audit of the uploaded dependency manifests and lock files (requirements*.txt, "
        "pyproject.toml, setup.cfg, Pipfile.lock, poetry.lock, uv.lock, package.json, package-lock.json, "
        "go.mod, Cargo.toml/lock, Gemfile.lock, composer.json/lock). Licences come from lock files, else "
        "a bundled table of common PyPI/npm packages, else 'unknown'. Flags AGPL/GPL/non-commercial "
        "dependencies of a permissive or proprietary project, unknown licences, unpinned dependencies "
        "and a missing project licence."
    )

    async def execute(self, args: ToolArgs, ctx: ToolContext) -> ToolOutput:
        """Audit every manifest among the task's inputs."""
        return await asyncio.to_thread(audit_licences, ctx.files)


def audit_licences(files: Sequence[InputFile]) -> ToolOutput:
    """Blocking body of `LicenceAuditTool`."""
    manifests = [parser(file) for file in files if (parser := _parser_for(file.name)) is not None]
    licence_files = [(file, identify_licence_text(file.content)) for file in files if _is_licence_file(file)]
    observations: list[Observation] = []
    findings: list[ProposedFinding] = []
    if not manifests:
        looked = ", ".join(sorted({*_PARSERS, "requirements*.txt"}))
        observations.append(
            Observation(
                summary=f"No dependency manifest among {len(files)} inputs (looked for {looked})",
                data={"inputs": len(files), "manifests": 0},
            )
        )
        return ToolOutput(observations=tuple(observations), data={"manifests": 0})
    manifest_index = {}
    for manifest in manifests:
        manifest_index[manifest.file] = len(observations)
        observations.append(manifest_observation(manifest))
    project_index = len(observations)
    project = _project_licences(manifests, licence_files)
    observations.append(project_observation(project, manifests, licence_files))
    resolved = resolve_dependencies(manifests)
    counts = Counter(dep.licence.category.value for dep in resolved)
    sources = Counter(dep.licence_source for dep in resolved)
    observations.append(
        Observation(
            summary=(
                f"{len(resolved)} distinct dependencies: "
                + ", ".join(f"{n} {category}" for category, n in counts.most_common())
                + f"; licence from lock files {sources['lock file']}, from the bundled table "
                f"({TABLE_DATE}) {sources['bundled table']}, unknown {sources['none']}"
            ),
            data={
                "dependencies": len(resolved),
                "by_category": dict(counts),
                "by_source": dict(sources),
                "table_date": TABLE_DATE,
            },
        )
    )
    copyleft_applies = not any(info.category in _COPYLEFT_PROJECT for _, _, info in project)
    flagged = sorted(
        (dep for dep in resolved if dep.licence.category in FLAGGED),
        key=lambda dep: FLAGGED[dep.licence.category][0].rank,
    )[:_MAX_FLAGGED]
    for dep in flagged:
        observations.append(dependency_observation(dep))
        finding = dependency_finding(dep, project, copyleft_applies, (len(observations) - 1, project_index))
        if finding is not None:
            findings.append(finding)
    for ecosystem in sorted({dep.ecosystem for dep in resolved}):
        unknown = [
            dep
            for dep in resolved
            if dep.ecosystem == ecosystem and dep.licence.category is LicenceCategory.UNKNOWN
        ]
        if unknown:
            observations.append(unknown_observation(ecosystem, unknown))
            findings.append(unknown_finding(ecosystem, unknown, len(observations) - 1))
    for manifest in manifests:
        loose = unpinned(manifest, manifests, files)
        if loose:
            observations.append(unpinned_observation(manifest, loose))
            findings.append(
                unpinned_finding(manifest, loose, (len(observations) - 1, manifest_index[manifest.file]))
            )
    if not project:
        findings.append(
            ProposedFinding(
                title="The project declares no licence",
                severity=Severity.LOW,
                description=(
                    "No manifest declares the project's own licence and no LICENSE or COPYING file was "
                    "uploaded. Without a licence the code is all rights reserved: nobody else may use, "
                    "change or share it, and its compatibility with its dependencies cannot be assessed."
                ),
                recommendation=(
                    "Choose a licence, add its text as LICENSE and declare its SPDX id in the manifest "
                    "(pyproject `license`, package.json `license`, Cargo.toml `license`...)."
                ),
                observation_indexes=(project_index, *manifest_index.values()),
            )
        )
    return ToolOutput(
        observations=tuple(observations),
        findings=tuple(findings),
        data={
            "manifests": len(manifests),
            "dependencies": len(resolved),
            "by_category": dict(counts),
            "project_licences": [info.shown for _, _, info in project],
            "flagged": [f"{dep.ecosystem}:{dep.name}" for dep in flagged],
            "table_date": TABLE_DATE,
        },
    )


def resolve_dependencies(manifests: Sequence[Manifest]) -> list[ResolvedDependency]:
    """Merge every entry for the same package and settle its licence (lock file, table, unknown)."""
    grouped: dict[tuple[str, str], list[tuple[Manifest, Dependency]]] = {}
    for manifest in manifests:
        for dep in manifest.dependencies:
            grouped.setdefault((dep.ecosystem, normalise_name(dep.ecosystem, dep.name)), []).append(
                (manifest, dep)
            )
    resolved: list[ResolvedDependency] = []
    for (ecosystem, _), entries in grouped.items():
        declared = sorted({dep.licence for _, dep in entries if dep.licence})
        name = entries[0][1].name
        declaring = [(m, d) for m, d in entries if d.licence]
        if declared:
            licence = combine_all([describe_licence(text) for text in declared])
            source = "lock file"
            where = declaring[0]
        elif (table_licence := known_licence(ecosystem, name)) is not None:
            licence, source, where = describe_licence(table_licence), "bundled table", entries[0]
        else:
            licence = LicenceInfo(raw="", spdx=None, category=LicenceCategory.UNKNOWN)
            source, where = "none", entries[0]
        scopes = {dep.scope for _, dep in entries}
        scope = next(s for s in ("runtime", "optional", "dev") if s in scopes)
        manifest, dep = where
        resolved.append(
            ResolvedDependency(
                name=name,
                ecosystem=ecosystem,
                versions=tuple(sorted({d.version for _, d in entries if d.version})),
                licence=licence,
                licence_source=source,
                files=tuple(dict.fromkeys(m.file for m, _ in entries)),
                location=f"{manifest.file}:{dep.line}" if dep.line else manifest.file,
                direct=any(d.direct for _, d in entries),
                scope=scope,
            )
        )
    return sorted(resolved, key=lambda dep: (dep.licence.category.rank, dep.ecosystem, dep.name.lower()))


def unpinned(
    manifest: Manifest, manifests: Sequence[Manifest], files: Sequence[InputFile]
) -> list[Dependency]:
    """Dependencies of `manifest` that name no exact version and that no lock file beside it pins.

    A requirements file is its own install list, so lock files never cover it.
    """
    if manifest.is_lock or manifest.error:
        return []
    if manifest.kind != "requirements":
        folder = posixpath.dirname(manifest.file)
        locked = any(
            other.is_lock
            and other.ecosystem == manifest.ecosystem
            and posixpath.dirname(other.file) == folder
            for other in manifests
        ) or any(
            _UNPARSED_LOCKS.get(posixpath.basename(file.name).lower()) == manifest.ecosystem
            and posixpath.dirname(file.name) == folder
            for file in files
        )
        if locked:
            return []
    return [dep for dep in manifest.dependencies if not dep.pinned]


def identify_licence_text(text: str) -> str | None:
    """The SPDX id of a licence file recognised by its canonical wording, or None.

    Only the standard texts of common licences are recognised; anything else is left unidentified. GNU,
    Apache and Mozilla licences are named by their title, near the top: the GPL's own text mentions the
    Lesser and Affero licences further down.
    """
    lowered = " ".join(text.split()).lower()
    head = lowered[:600]
    for title, versions in _TITLED:
        if title in head:
            return next((spdx for version, spdx in versions if version in head), None)
    if "permission is hereby granted, free of charge, to any person obtaining a copy" in lowered:
        return "MIT"
    if "permission to use, copy, modify, and/or distribute this software for any purpose" in lowered:
        return "ISC" if "provided that the above copyright notice" in lowered else "0BSD"
    if "redistribution and use in source and binary forms" in lowered:
        if "all advertising materials" in lowered:
            return "BSD-4-Clause"
        return "BSD-3-Clause" if "neither the name" in lowered else "BSD-2-Clause"
    if "this is free and unencumbered software released into the public domain" in lowered:
        return "Unlicense"
    return None


def _parser_for(name: str) -> Parser | None:
    base = posixpath.basename(name.replace("\\", "/"))
    lowered = base.lower()
    if lowered.endswith(".txt") and (
        lowered.startswith("requirements") or posixpath.basename(posixpath.dirname(name)) == "requirements"
    ):
        return parse_requirements
    return _PARSERS.get(lowered)


def _is_licence_file(file: InputFile) -> bool:
    return not file.is_binary and bool(_LICENCE_FILE.match(posixpath.basename(file.name)))


def _project_licences(
    manifests: Sequence[Manifest], licence_files: Sequence[tuple[InputFile, str | None]]
) -> list[DeclaredLicence]:
    declared = [
        (manifest.file, manifest.project_licence_line, describe_licence(manifest.project_licence))
        for manifest in manifests
        if manifest.project_licence
    ]
    for file, spdx in licence_files:
        info = (
            describe_licence(spdx)
            if spdx
            else LicenceInfo(raw="", spdx=None, category=LicenceCategory.UNKNOWN)
        )
        declared.append((file.name, None, info))
    return declared
