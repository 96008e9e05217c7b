"""Observations and findings of the licence audit: what `licences.audit_licences` reports, worded.

Kept apart from the audit's logic so that the wording of a finding (its severity, its consequence and
the observations it cites) reads in one place.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from orchestrion.domain.findings import Severity
from orchestrion.tools.base import InputFile, Observation, ProposedFinding
from orchestrion.tools.licences_manifests import Dependency, Manifest
from orchestrion.tools.licences_spdx import LicenceCategory, LicenceInfo
from orchestrion.tools.licences_table import TABLE_DATE

FLAGGED = {
    LicenceCategory.NETWORK_COPYLEFT: (Severity.HIGH, "network copyleft"),
    LicenceCategory.STRONG_COPYLEFT: (Severity.MEDIUM, "strong copyleft"),
    LicenceCategory.NON_COMMERCIAL: (Severity.MEDIUM, "non-commercial / source-available"),
}
_MAX_LISTED = 50

DeclaredLicence = tuple[str, int | None, LicenceInfo]
"""Where the project's licence is declared (file, line) and what it is."""


@dataclass(frozen=True, kw_only=True)
class ResolvedDependency:
    """One package after merging every file that mentions it, with the licence that applies.

    Attributes:
        licence_source: ``lock file`` (the entry declared it), ``bundled table`` or ``none``.
    """

    name: str
    ecosystem: str
    versions: tuple[str, ...]
    licence: LicenceInfo
    licence_source: str
    files: tuple[str, ...]
    location: str
    direct: bool
    scope: str


def manifest_observation(manifest: Manifest) -> Observation:
    deps = manifest.dependencies
    pinned = sum(dep.pinned for dep in deps)
    scopes = Counter(dep.scope for dep in deps)
    parts = [
        f"{manifest.file}: {manifest.kind} ({manifest.ecosystem}{', lock file' if manifest.is_lock else ''})"
    ]
    if manifest.error:
        parts.append(f"unreadable: {manifest.error}")
    else:
        parts.append(f"{len(deps)} dependencies ({pinned} pinned)")
    if manifest.project_licence:
        parts.append(f"project licence {manifest.project_licence!r}")
    data: dict[str, Any] = {
        "file": manifest.file,
        "kind": manifest.kind,
        "ecosystem": manifest.ecosystem,
        "lock_file": manifest.is_lock,
        "dependencies": len(deps),
        "pinned": pinned,
        "by_scope": dict(scopes),
        "with_declared_licence": sum(dep.licence is not None for dep in deps),
        "project_name": manifest.project_name,
        "project_licence": manifest.project_licence,
    }
    if manifest.error:
        data["error"] = manifest.error
    if manifest.notes:
        data["notes"] = list(manifest.notes)
    return Observation(summary=", ".join(parts), data=data, location=manifest.file)


def project_observation(
    project: Sequence[DeclaredLicence],
    manifests: Sequence[Manifest],
    licence_files: Sequence[tuple[InputFile, str | None]],
) -> Observation:
    entries = [
        {"file": file, "line": line, "declared": info.raw, "spdx": info.spdx, "category": info.category.value}
        for file, line, info in project
    ]
    if not project:
        looked = ", ".join(manifest.file for manifest in manifests)
        return Observation(
            summary=f"No project licence declared (looked in {looked}; no LICENSE or COPYING file uploaded)",
            data={"licences": [], "missing": True, "looked_in": [m.file for m in manifests]},
        )
    shown = "; ".join(
        f"{info.shown or 'unrecognised text'} ({info.category.value}) in {file}{f':{line}' if line else ''}"
        for file, line, info in project
    )
    file, line, _ = project[0]
    return Observation(
        summary=f"Project licence: {shown}",
        data={"licences": entries, "missing": False, "licence_files": [f.name for f, _ in licence_files]},
        location=f"{file}:{line}" if line else file,
    )


def dependency_observation(dep: ResolvedDependency) -> Observation:
    versions = ", ".join(dep.versions) or "unversioned"
    origin = (
        f"from {dep.location}"
        if dep.licence_source == "lock file"
        else f"from the bundled table ({TABLE_DATE})"
    )
    return Observation(
        summary=(
            f"{dep.name} {versions} ({dep.ecosystem}, {dep.scope}{', direct' if dep.direct else ''}): "
            f"{dep.licence.shown} — {dep.licence.category.value.replace('_', ' ')} ({origin})"
        ),
        data={
            "name": dep.name,
            "ecosystem": dep.ecosystem,
            "versions": list(dep.versions),
            "licence": dep.licence.shown,
            "spdx": dep.licence.spdx,
            "category": dep.licence.category.value,
            "licence_source": dep.licence_source,
            "files": list(dep.files),
            "direct": dep.direct,
            "scope": dep.scope,
        },
        location=dep.location,
    )


def dependency_finding(
    dep: ResolvedDependency,
    project: Sequence[DeclaredLicence],
    copyleft_applies: bool,
    cite: tuple[int, int],
) -> ProposedFinding | None:
    category = dep.licence.category
    severity, label = FLAGGED[category]
    if category is not LicenceCategory.NON_COMMERCIAL and not copyleft_applies:
        return None
    own = ", ".join(f"{info.shown or 'unrecognised'} ({info.category.value})" for _, _, info in project)
    own_text = f"the project's licence is {own}" if project else "the project declares no licence"
    if dep.scope == "dev":
        severity = Severity.LOW
    consequence = {
        LicenceCategory.NETWORK_COPYLEFT: (
            "Offering the software to users over a network, not only distributing it, obliges you to "
            "publish the complete corresponding source of the combined work under the same licence."
        ),
        LicenceCategory.STRONG_COPYLEFT: (
            "Distributing the software with it obliges you to license the combined work under the "
            "same copyleft terms and to provide its source."
        ),
        LicenceCategory.NON_COMMERCIAL: (
            "Its licence restricts commercial or production use; using it in a commercial product may "
            "need a separate commercial licence."
        ),
    }[category]
    dev_note = (
        " It is a development dependency only, which is not shipped, hence the low severity."
        if dep.scope == "dev"
        else ""
    )
    return ProposedFinding(
        title=f"{label.capitalize()} dependency {dep.name} ({dep.licence.shown})",
        severity=severity,
        description=(
            f"{dep.name} ({dep.ecosystem}) is licensed {dep.licence.shown}, and {own_text}. "
            f"{consequence}{dev_note}"
        ),
        recommendation=(
            f"Replace {dep.name} with a permissively licensed alternative, obtain a commercial licence, or "
            "have the project's licence reviewed so that it is compatible; confirm the licence of the "
            "exact version in use."
        ),
        observation_indexes=cite,
    )


def unknown_observation(ecosystem: str, unknown: Sequence[ResolvedDependency]) -> Observation:
    listed = [
        {
            "name": dep.name,
            "versions": list(dep.versions),
            "declared": dep.licence.raw or None,
            "location": dep.location,
        }
        for dep in unknown[:_MAX_LISTED]
    ]
    names = ", ".join(dep.name for dep in unknown[:10])
    more = f" and {len(unknown) - 10} more" if len(unknown) > 10 else ""
    return Observation(
        summary=f"{_count(len(unknown), ecosystem)} with an unknown licence: {names}{more}",
        data={"ecosystem": ecosystem, "count": len(unknown), "dependencies": listed},
        location=unknown[0].location,
    )


def unknown_finding(ecosystem: str, unknown: Sequence[ResolvedDependency], index: int) -> ProposedFinding:
    return ProposedFinding(
        title=f"{_count(len(unknown), ecosystem)} with an unknown licence",
        severity=Severity.LOW,
        description=(
            f"The licence of {len(unknown)} {ecosystem} dependencies could not be established: their lock "
            "file entry declares none (or an unrecognised one) and they are not in the bundled table. "
            "Their obligations are unknown until checked."
        ),
        recommendation=(
            "Check each licence at its source (package page, repository LICENSE) and record it, e.g. with "
            "a licence checker in CI that fails on unknown or disallowed licences."
        ),
        observation_indexes=(index,),
    )


def unpinned_observation(manifest: Manifest, loose: Sequence[Dependency]) -> Observation:
    listed = [
        {"name": dep.name, "spec": dep.spec or "(any)", "line": dep.line} for dep in loose[:_MAX_LISTED]
    ]
    shown = ", ".join(f"{dep.name}{(' ' + dep.spec) if dep.spec else ''}" for dep in loose[:10])
    more = f" and {len(loose) - 10} more" if len(loose) > 10 else ""
    first = loose[0].line
    return Observation(
        summary=(
            f"{_count(len(loose), 'unpinned')} in {manifest.file} (no lock file beside it): {shown}{more}"
        ),
        data={"file": manifest.file, "count": len(loose), "dependencies": listed},
        location=f"{manifest.file}:{first}" if first else manifest.file,
    )


def unpinned_finding(
    manifest: Manifest, loose: Sequence[Dependency], cite: tuple[int, int]
) -> ProposedFinding:
    return ProposedFinding(
        title=f"{_count(len(loose), 'unpinned')} in {manifest.file}",
        severity=Severity.LOW,
        description=(
            f"{manifest.file} lets {len(loose)} dependencies float to any version in a range, and no lock "
            "file pins them. Each install may bring a different version, with a different licence or a "
            "vulnerability, so what was audited is not necessarily what runs."
        ),
        recommendation=(
            "Pin exact versions (==, exact semver) or commit the lock file (package-lock.json, poetry.lock, "
            "uv.lock, Cargo.lock, composer.lock) and install from it."
        ),
        observation_indexes=cite,
    )


def _count(n: int, adjective: str) -> str:
    return f"{n} {adjective} {'dependency' if n == 1 else 'dependencies'}"
