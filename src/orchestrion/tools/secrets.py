"""Secret scanning: provider token patterns, private keys, credential assignments and entropy.

A secret found must never be repeated: observations, findings and data carry only a redacted form
(the first few characters, an ellipsis and the length).
"""

from __future__ import annotations

import asyncio
import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
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

_MAX_HITS = 200
_MAX_LINE_CHARS = 20_000
_BASE64_ENTROPY = 4.0
_HEX_ENTROPY = 3.0
_RECOMMENDATION = (
    "Treat the credential as compromised: rotate or revoke it now, remove it from the source (and "
    "history), and load it at run time from a secret store or an environment variable."
)


@dataclass(frozen=True, kw_only=True)
class _Rule:
    id: str
    label: str
    pattern: re.Pattern[str]
    severity: Severity
    group: str | int = 0


_RULES = (
    _Rule(
        id="aws_access_key_id",
        label="AWS access key id",
        severity=Severity.HIGH,
        pattern=re.compile(r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA)[0-9A-Z]{16}\b"),
    ),
    _Rule(
        id="aws_secret_access_key",
        label="AWS secret access key",
        severity=Severity.HIGH,
        group="value",
        pattern=re.compile(
            r"(?i)aws_?secret(?:_?access)?_?key['\"]?\s*[:=]\s*['\"]?(?P<value>[A-Za-z0-9/+=]{40})(?![A-Za-z0-9/+=])"
        ),
    ),
    _Rule(
        id="github_token",
        label="GitHub token",
        severity=Severity.HIGH,
        pattern=re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{22,255})\b"),
    ),
    _Rule(
        id="slack_token",
        label="Slack token",
        severity=Severity.HIGH,
        pattern=re.compile(r"\bxox[baprs]-[A-Za-z0-9-]{10,250}"),
    ),
    _Rule(
        id="stripe_secret_key",
        label="Stripe live secret key",
        severity=Severity.HIGH,
        pattern=re.compile(r"\b[sr]k_live_[0-9A-Za-z]{16,247}\b"),
    ),
    _Rule(
        id="google_api_key",
        label="Google API key",
        severity=Severity.HIGH,
        pattern=re.compile(r"\bAIza[0-9A-Za-z_\-]{35}(?![0-9A-Za-z_\-])"),
    ),
    _Rule(
        id="private_key",
        label="private key",
        severity=Severity.HIGH,
        pattern=re.compile(r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----"),
    ),
    _Rule(
        id="jwt",
        label="JSON Web Token",
        severity=Severity.MEDIUM,
        pattern=re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"),
    ),
    _Rule(
        id="generic_credential",
        label="credential assignment",
        severity=Severity.MEDIUM,
        group="value",
        pattern=re.compile(
            # The lookbehind anchors the key at the start of its word: without it, a long unbroken
            # line makes the leading class backtrack from every position (seconds per 10k characters).
            r"(?i)(?<![A-Za-z0-9_.-])(?P<key>[A-Za-z0-9_.-]*(?:password|passwd|passphrase|pwd|secret|token|api[_-]?key|access[_-]?key"
            r"|auth[_-]?key|credentials?)[A-Za-z0-9_.-]*)['\"]?\s*(?::=|=>|==|=|:)\s*(?P<q>['\"])"
            r"(?P<value>[^'\"\r\n]{4,200})(?P=q)"
        ),
    ),
)
_QUOTED = re.compile(r"""(['"`])([A-Za-z0-9+/=_\-.~]{20,500})\1""")
_HEX = re.compile(r"[0-9a-fA-F]+")
_DIGEST_CONTEXT = re.compile(r"(?i)sha\d*|md5|hash|digest|checksum|integrity|commit|etag|uuid")
_PLACEHOLDER_WORDS = (
    "changeme",
    "change_me",
    "change-me",
    "example",
    "xxxx",
    "placeholder",
    "dummy",
    "sample",
    "your_",
    "your-",
    "yourpassword",
    "redacted",
    "notasecret",
    "not-a-secret",
    "fake",
    "secret_here",
    "password_here",
    "todo",
    "replace",
    "<",
    "{{",
    "${",
    "%(",
    "*****",
)
_PLACEHOLDER_VALUES = frozenset({"password", "secret", "token", "none", "null", "true", "false", "string"})


class SecretScanTool(Tool):
    """Leaked credentials in any text input: known token formats, keys and high-entropy strings."""

    name: ClassVar[str] = "secret_scan"
    description: ClassVar[str] = (
        "Scan every text file for leaked secrets: AWS, GitHub, Slack, Stripe and Google keys, private "
        "keys, JWTs, password/token assignments and high-entropy strings. Values are redacted."
    )

    async def execute(self, args: ToolArgs, ctx: ToolContext) -> ToolOutput:
        """Scan every file in the task's inputs."""
        return await asyncio.to_thread(scan_for_secrets, ctx.files)


@dataclass(frozen=True, kw_only=True)
class _Hit:
    start: int
    end: int
    rule: str
    label: str
    severity: Severity
    value: str
    entropy: float | None = None


def scan_for_secrets(files: Sequence[InputFile]) -> ToolOutput:
    """Blocking body of `SecretScanTool`."""
    hits: list[tuple[str, int, _Hit]] = []
    truncated = False
    for file in files:
        for number, line in enumerate(file.content.splitlines(), start=1):
            for hit in _scan_line(line[:_MAX_LINE_CHARS]):
                if len(hits) >= _MAX_HITS:
                    truncated = True
                    break
                hits.append((file.name, number, hit))
    observations: list[Observation] = []
    findings: list[ProposedFinding] = []
    for name, number, hit in hits:
        location = f"{name}:{number}"
        shown = redact(hit.value)
        data: dict[str, object] = {
            "rule": hit.rule,
            "file": name,
            "line": number,
            "column": hit.start + 1,
            "redacted": shown,
            "length": len(hit.value),
        }
        if hit.entropy is not None:
            data["entropy"] = round(hit.entropy, 2)
        observations.append(
            Observation(summary=f"{hit.label} in {location}: {shown}", data=data, location=location)
        )
        findings.append(
            ProposedFinding(
                title=f"Possible {hit.label} in {location}",
                severity=hit.severity,
                description=f"A value that looks like a {hit.label} ({shown}) is written in {name}.",
                recommendation=_RECOMMENDATION,
                observation_indexes=(len(observations) - 1,),
            )
        )
    by_rule = Counter(hit.rule for _, _, hit in hits)
    return ToolOutput(
        observations=tuple(observations),
        findings=tuple(findings),
        data={"files": len(files), "hits": len(hits), "by_rule": dict(by_rule), "truncated": truncated},
    )


def redact(value: str) -> str:
    """Show at most 4 leading characters (fewer for short values), an ellipsis and the length."""
    shown = value[: min(4, len(value) // 4)]
    return f"{shown}…({len(value)} chars)"


def shannon_entropy(value: str) -> float:
    """Bits of entropy per character of `value`."""
    if not value:
        return 0.0
    counts = Counter(value)
    total = len(value)
    return -sum(n / total * math.log2(n / total) for n in counts.values())


def is_placeholder(value: str) -> bool:
    """Whether `value` is obviously not a real secret (a template, a sample, one repeated char)."""
    lowered = value.lower()
    if len(set(lowered)) <= 2 or lowered in _PLACEHOLDER_VALUES:
        return True
    return any(word in lowered for word in _PLACEHOLDER_WORDS)


def redact_secrets(text: str) -> str:
    """Return `text` with every value this scanner would report replaced by its redacted form.

    Other tools use it to keep secrets out of the code snippets they quote.
    """
    lines = text.split("\n")
    for index, line in enumerate(lines):
        for hit in sorted(_scan_line(line), key=lambda h: h.start, reverse=True):
            line = line[: hit.start] + redact(hit.value) + line[hit.end :]
        lines[index] = line
    return "\n".join(lines)


def _scan_line(line: str) -> list[_Hit]:
    hits: list[_Hit] = []
    for rule in _RULES:
        for match in rule.pattern.finditer(line):
            start, end = match.span(rule.group)
            value = match.group(rule.group)
            if _overlaps(hits, start, end) or (rule.id != "private_key" and is_placeholder(value)):
                continue
            hits.append(
                _Hit(
                    start=start, end=end, rule=rule.id, label=rule.label, severity=rule.severity, value=value
                )
            )
    for match in _QUOTED.finditer(line):
        start, end = match.span(2)
        value = match.group(2)
        if _overlaps(hits, start, end) or is_placeholder(value):
            continue
        entropy = shannon_entropy(value)
        if _HEX.fullmatch(value):
            if entropy < _HEX_ENTROPY or _DIGEST_CONTEXT.search(line):
                continue
        elif entropy < _BASE64_ENTROPY or not _looks_random(value):
            continue
        hits.append(
            _Hit(
                start=start,
                end=end,
                rule="high_entropy_string",
                label="high-entropy string",
                severity=Severity.MEDIUM,
                value=value,
                entropy=entropy,
            )
        )
    return hits


def _looks_random(value: str) -> bool:
    """Base64-ish secrets mix both letter cases and several digits; paths and identifiers rarely do."""
    digits = sum(c.isdigit() for c in value)
    return digits >= 2 and any(c.isupper() for c in value) and any(c.islower() for c in value)


def _overlaps(taken: Sequence[_Hit], start: int, end: int) -> bool:
    return any(start < hit.end and hit.start < end for hit in taken)
