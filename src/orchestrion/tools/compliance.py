"""Compliance audit tools: dependency licences, OWASP ASVS web checks and configuration hygiene.

The ``compliance_auditor`` agent's three tools, exported here together:

- `LicenceAuditTool` (``licence_audit``, offline): `orchestrion.tools.licences`.
- `AsvsWebCheckTool` (``asvs_web_check``, network): `orchestrion.tools.asvs`.
- `ConfigSecretsTool` (``config_secrets``, offline): defined here. It runs the secret scanner of
  `orchestrion.tools.secrets` over the configuration files (its detectors are not repeated) and adds
  the configuration rules of `config_checks` and `config_containers`.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Sequence
from itertools import chain
from typing import ClassVar

from orchestrion.tools.asvs import AsvsWebCheckTool
from orchestrion.tools.base import (
    InputFile,
    Observation,
    ProposedFinding,
    Tool,
    ToolArgs,
    ToolContext,
    ToolOutput,
)
from orchestrion.tools.config_checks import (
    ConfigHit,
    check_lines,
    check_settings,
    excerpt,
    is_config_file,
    read_settings,
)
from orchestrion.tools.config_containers import check_documents
from orchestrion.tools.licences import LicenceAuditTool
from orchestrion.tools.secrets import scan_for_secrets

__all__ = ["AsvsWebCheckTool", "ConfigSecretsTool", "LicenceAuditTool", "scan_config_files"]

# Observations are capped at 200 per call (`Tool.max_observations`): secrets keep at most half, so that
# a file full of keys cannot hide the configuration problems.
_MAX_SECRET_OBSERVATIONS = 100
_MAX_OBSERVATIONS = 200


class ConfigSecretsTool(Tool):
    """Secrets and risky settings in uploaded configuration files."""

    name: ClassVar[str] = "config_secrets"
    description: ClassVar[str] = (
        "Scan uploaded configuration files (.env, *.ini, *.cfg, *.conf, *.yaml/yml, *.json, *.toml, "
        "*.properties, docker-compose, Kubernetes manifests) for leaked secrets (redacted) and risky "
        "settings: debug mode on, default credentials (admin/admin, postgres/postgres, changeme), "
        "authentication disabled, TLS verification off (verify: false, sslmode=disable, "
        "NODE_TLS_REJECT_UNAUTHORIZED=0), wildcard hosts/CORS, privileged or root containers."
    )

    async def execute(self, args: ToolArgs, ctx: ToolContext) -> ToolOutput:
        """Scan every configuration file among the task's inputs."""
        return await asyncio.to_thread(scan_config_files, ctx.files)


def scan_config_files(files: Sequence[InputFile]) -> ToolOutput:
    """Blocking body of `ConfigSecretsTool`."""
    configs = [file for file in files if not file.is_binary and is_config_file(file.name)]
    secrets = scan_for_secrets(configs)
    kept = secrets.observations[:_MAX_SECRET_OBSERVATIONS]
    observations: list[Observation] = list(kept)
    # The secret scanner states one finding per observation, citing it; keep those that cite what is kept.
    findings: list[ProposedFinding] = [
        finding for finding in secrets.findings if all(i < len(kept) for i in finding.observation_indexes)
    ]
    hits = _config_hits(configs)
    by_name = {file.name: file for file in configs}
    room = _MAX_OBSERVATIONS - len(observations)
    for config_hit in hits[:room]:
        location = f"{config_hit.file}:{config_hit.line}"
        observations.append(
            Observation(
                summary=f"{config_hit.label.capitalize()} in {location}: {config_hit.detail}",
                data={
                    "rule": config_hit.rule,
                    "file": config_hit.file,
                    "line": config_hit.line,
                    "detail": config_hit.detail,
                    "excerpt": excerpt(by_name[config_hit.file], config_hit.line),
                },
                location=location,
            )
        )
        findings.append(
            ProposedFinding(
                title=f"{config_hit.label.capitalize()} in {location}",
                severity=config_hit.severity,
                description=f"{config_hit.detail} ({location}).",
                recommendation=config_hit.recommendation,
                observation_indexes=(len(observations) - 1,),
            )
        )
    return ToolOutput(
        observations=tuple(observations),
        findings=tuple(findings),
        data={
            "files": [file.name for file in configs],
            "skipped": len(files) - len(configs),
            "secrets": secrets.data.get("hits", 0),
            "by_rule": dict(Counter(config_hit.rule for config_hit in hits)),
            "truncated": len(hits) > room or len(secrets.observations) > len(kept),
        },
    )


def _config_hits(configs: Sequence[InputFile]) -> list[ConfigHit]:
    hits: list[ConfigHit] = []
    seen: set[tuple[str, str, int]] = set()
    for file in configs:
        settings, documents = read_settings(file)
        found = chain(check_settings(settings), check_lines(file), check_documents(file.name, documents))
        for config_hit in sorted(found, key=lambda h: h.line):
            # A line can match a setting rule and a raw-line rule (sslmode=disable): report it once.
            key = (config_hit.rule, config_hit.file, config_hit.line)
            if key not in seen:
                seen.add(key)
                hits.append(config_hit)
    return hits
