"""`strings` for forensics: printable ASCII and UTF-16LE strings, then indicators and commands in them.

The strings of a file are joined by newlines and scanned once by `orchestrion.tools.indicators`;
each match is mapped back to the byte offset of the string it came from, so every observation's
location is ``file@0xOFFSET``. Values are redacted (`artifacts.quote`).
"""

from __future__ import annotations

import asyncio
import bisect
import re
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from pydantic import Field

from orchestrion.domain.findings import Severity
from orchestrion.tools.artifacts import MAX_SCAN_BYTES, ForensicsArgs, at, expect_args, quote, select_files
from orchestrion.tools.base import (
    InputFile,
    Observation,
    ProposedFinding,
    Tool,
    ToolArgs,
    ToolContext,
    ToolOutput,
)
from orchestrion.tools.filetypes import Category, detect_type
from orchestrion.tools.indicators import (
    INDICATOR_KINDS,
    CommandHit,
    Indicator,
    find_commands,
    find_indicators,
)

__all__ = ["ExtractedString", "StringsArgs", "StringsTool", "extract_strings", "scan_strings"]

MAX_STRINGS = 100_000
_MAX_STRING_CHARS = 4096
_SAMPLE = 30
_SAMPLE_CHARS = 120
_NETWORK_KINDS = ("url", "ipv4", "ipv6")
_ROUTABLE = frozenset({"global", "private", "other"})
_COMPILED = frozenset({Category.EXECUTABLE, Category.BYTECODE})
_FAMILIES: dict[str, tuple[str, str]] = {
    "download_execute": (
        "Download-and-execute command",
        "Block the URLs and hosts it names, look for the downloaded payload on hosts that ran it, and "
        "treat those hosts as compromised.",
    ),
    "encoded_powershell": (
        "Encoded PowerShell command",
        "Decode and review the command; block encoded PowerShell by policy (Constrained Language Mode, "
        "script block logging) and hunt for it in process logs.",
    ),
    "powershell_evasion": (
        "PowerShell started hidden or bypassing policy",
        "Find what launches it; log PowerShell script blocks and restrict who may run it.",
    ),
    "shell_command": (
        "Command interpreter invocation",
        "Check what the command runs and whether the program has a reason to spawn a shell.",
    ),
}


class StringsArgs(ForensicsArgs):
    """Arguments of `StringsTool`."""

    min_length: int = Field(default=6, ge=3, le=64, description="Shortest string kept, in characters.")
    max_per_kind: int = Field(
        default=25, ge=1, le=200, description="Most distinct values kept per indicator kind and file."
    )


@dataclass(frozen=True, kw_only=True)
class ExtractedString:
    """A printable run: its byte offset, its encoding (``ascii`` or ``utf-16le``) and its text."""

    offset: int
    encoding: str
    text: str


class StringsTool(Tool):
    """Printable strings of every file and the indicators of compromise found in them."""

    name: ClassVar[str] = "strings_extract"
    description: ClassVar[str] = (
        "Extract printable ASCII and UTF-16LE strings from uploaded files (like `strings`) and find "
        "indicators in them: URLs, IPv4/IPv6 addresses, domains, e-mails, file paths, registry keys, "
        "base64 blobs, crypto wallets and suspicious commands (encoded PowerShell, cmd.exe /c, sh -c, "
        "curl/wget piped to a shell). Values are redacted and capped per kind."
    )
    args_model: ClassVar[type[ToolArgs]] = StringsArgs

    async def execute(self, args: ToolArgs, ctx: ToolContext) -> ToolOutput:
        """Extract and scan the selected files."""
        options = expect_args(args, StringsArgs, tool=self.name)
        files = select_files(ctx.files, options.files, tool=self.name)
        return await asyncio.to_thread(
            scan_strings, files, min_length=options.min_length, max_per_kind=options.max_per_kind
        )


def extract_strings(
    data: bytes, *, min_length: int = 6, limit: int = MAX_STRINGS
) -> tuple[list[ExtractedString], bool]:
    """ASCII and UTF-16LE strings of `data` in offset order, and whether `limit` cut the list."""
    ascii_run = re.compile(rb"[\x20-\x7e\t]{%d,}" % min_length)
    wide_run = re.compile(rb"(?:[\x20-\x7e\t]\x00){%d,}" % min_length)
    found: list[ExtractedString] = []
    truncated = False
    for pattern, encoding in ((ascii_run, "ascii"), (wide_run, "utf-16le")):
        # Each pass keeps its first `limit` pieces: together they hold the first `limit` by offset.
        kept = 0
        width = 2 if encoding == "utf-16le" else 1
        for match in pattern.finditer(data):
            if kept >= limit:
                truncated = True
                break
            text = match.group(0).decode("utf-16-le" if encoding == "utf-16le" else "ascii")
            # A very long run (minified code, a base64 payload) is kept whole, in pieces.
            for start in range(0, len(text), _MAX_STRING_CHARS):
                piece = text[start : start + _MAX_STRING_CHARS]
                found.append(
                    ExtractedString(offset=match.start() + start * width, encoding=encoding, text=piece)
                )
                kept += 1
    found.sort(key=lambda s: s.offset)
    if len(found) > limit:
        truncated = True
        del found[limit:]
    return found, truncated


@dataclass(kw_only=True)
class _Values:
    """Distinct values of one indicator kind in one file, capped, with occurrence counts."""

    cap: int
    items: dict[str, dict[str, Any]] = field(default_factory=dict)
    total: int = 0
    dropped: int = 0

    def add(self, shown: str, entry: dict[str, Any]) -> None:
        self.total += 1
        if shown in self.items:
            self.items[shown]["count"] += 1
        elif len(self.items) < self.cap:
            self.items[shown] = {"value": shown, **entry, "count": 1}
        else:
            self.dropped += 1


def scan_strings(files: Sequence[InputFile], *, min_length: int = 6, max_per_kind: int = 25) -> ToolOutput:
    """Blocking body of `StringsTool`."""
    observations: list[Observation] = []
    findings: list[ProposedFinding] = []
    totals: dict[str, Any] = {}
    for file in files:
        data = file.data[:MAX_SCAN_BYTES]
        strings, truncated = extract_strings(data, min_length=min_length)
        observations.append(_summary(file, strings, truncated, min_length))
        text = "\n".join(s.text for s in strings)
        starts = _starts(strings)
        values = {kind: _Values(cap=max_per_kind) for kind in INDICATOR_KINDS}
        for indicator in find_indicators(text):
            values[indicator.kind].add(*_entry(indicator, strings, starts))
        kind_index: dict[str, int] = {}
        for kind in INDICATOR_KINDS:
            if values[kind].items:
                observations.append(_kind_observation(file.name, kind, values[kind]))
                kind_index[kind] = len(observations) - 1
        by_family: dict[str, list[int]] = defaultdict(list)
        per_rule: Counter[str] = Counter()
        for hit in find_commands(text):
            per_rule[hit.rule.id] += 1
            if per_rule[hit.rule.id] > max_per_kind:
                continue
            observations.append(_command_observation(file.name, hit, strings, starts))
            index = len(observations) - 1
            # A download hidden inside an encoded command is as much a download as a plain one.
            families = {hit.rule.family} | {h.rule.family for h in find_commands(hit.decoded or "")}
            for family in sorted(families):
                by_family[family].append(index)
        compiled = detect_type(data).type.category in _COMPILED
        findings.extend(_findings(file.name, compiled, values, kind_index, by_family))
        totals[file.name] = {
            "strings": len(strings),
            "truncated": truncated,
            "indicators": {k: v.total for k, v in values.items() if v.total},
            "commands": dict(per_rule),
        }
    return ToolOutput(
        observations=tuple(observations),
        findings=tuple(findings),
        data={"files": totals, "min_length": min_length, "max_per_kind": max_per_kind},
    )


def _starts(strings: Sequence[ExtractedString]) -> list[int]:
    """Character offset of each string inside the newline-joined text."""
    starts: list[int] = []
    position = 0
    for item in strings:
        starts.append(position)
        position += len(item.text) + 1
    return starts


def _locate(position: int, strings: Sequence[ExtractedString], starts: list[int]) -> tuple[int, str]:
    """Byte offset in the file and encoding of the character at `position` of the joined text."""
    index = bisect.bisect_right(starts, position) - 1
    item = strings[index]
    width = 2 if item.encoding == "utf-16le" else 1
    return item.offset + (position - starts[index]) * width, item.encoding


def _entry(
    indicator: Indicator, strings: Sequence[ExtractedString], starts: list[int]
) -> tuple[str, dict[str, Any]]:
    offset, encoding = _locate(indicator.offset, strings, starts)
    extra = dict(indicator.extra)
    if indicator.kind == "base64":
        shown = f"{quote(indicator.value[:24])}…({len(indicator.value)} chars)"
        preview = extra.get("decoded_preview")
        extra["decoded_preview"] = quote(preview, limit=120) if preview else None
    else:
        shown = quote(indicator.value, limit=300)
    return shown, {"offset": offset, "encoding": encoding, **extra}


def _summary(
    file: InputFile, strings: list[ExtractedString], truncated: bool, min_length: int
) -> Observation:
    wide = sum(s.encoding == "utf-16le" for s in strings)
    note = f" (stopped at the {MAX_STRINGS:,}-string cap)" if truncated else ""
    return Observation(
        summary=(
            f"{quote(file.name)}: {len(strings) - wide:,} ASCII and {wide:,} UTF-16LE strings of at least "
            f"{min_length} characters{note}"
        ),
        data={
            "file": file.name,
            "size": file.size,
            "scanned_bytes": min(file.size, MAX_SCAN_BYTES),
            "ascii": len(strings) - wide,
            "utf16le": wide,
            "truncated": truncated,
            "sample": [
                {"offset": s.offset, "encoding": s.encoding, "text": quote(s.text, limit=_SAMPLE_CHARS)}
                for s in strings[:_SAMPLE]
            ],
        },
        location=file.name,
    )


def _kind_observation(name: str, kind: str, values: _Values) -> Observation:
    items = list(values.items.values())
    shown = ", ".join(str(item["value"]) for item in items[:5])
    more = f" and {len(items) - 5} more" if len(items) > 5 else ""
    capped = f" (+{values.dropped} occurrences of values past the cap)" if values.dropped else ""
    return Observation(
        summary=f"{quote(name)}: {len(items)} distinct {kind} indicator(s): {shown}{more}{capped}",
        data={
            "file": name,
            "kind": kind,
            "distinct": len(items),
            "occurrences": values.total,
            "capped": values.dropped > 0,
            "values": items,
        },
        location=at(name, int(items[0]["offset"])),
    )


def _command_observation(
    name: str, hit: CommandHit, strings: Sequence[ExtractedString], starts: list[int]
) -> Observation:
    offset, encoding = _locate(hit.offset, strings, starts)
    text = quote(hit.text, limit=300)
    decoded = quote(hit.decoded, limit=300) if hit.decoded is not None else None
    suffix = f" (decodes to: {decoded})" if decoded else ""
    return Observation(
        summary=f"{at(name, offset)}: {hit.rule.label}: {text}{suffix}",
        data={
            "file": name,
            "rule": hit.rule.id,
            "family": hit.rule.family,
            "offset": offset,
            "encoding": encoding,
            "text": text,
            "decoded": decoded,
            "decoded_commands": [h.rule.id for h in find_commands(hit.decoded)] if hit.decoded else [],
        },
        location=at(name, offset),
    )


def _findings(
    name: str,
    compiled: bool,
    values: dict[str, _Values],
    kind_index: dict[str, int],
    by_family: dict[str, list[int]],
) -> list[ProposedFinding]:
    shown = quote(name)
    findings: list[ProposedFinding] = []
    severities = {"download_execute": Severity.HIGH, "encoded_powershell": Severity.HIGH}
    severities |= {"powershell_evasion": Severity.MEDIUM, "shell_command": Severity.LOW}
    for family, cited in by_family.items():
        title, recommendation = _FAMILIES[family]
        findings.append(
            ProposedFinding(
                title=f"{title} in {shown}",
                severity=severities[family],
                description=f"{shown} contains {len(cited)} {title.lower()} string(s) at the cited offsets.",
                recommendation=recommendation,
                observation_indexes=tuple(cited),
            )
        )
    network = [kind_index[k] for k in _NETWORK_KINDS if k in kind_index and _routable(k, values[k])]
    if compiled and network:
        findings.append(
            ProposedFinding(
                title=f"Hard-coded network indicators in executable {shown}",
                severity=Severity.MEDIUM,
                description=(
                    f"The compiled file {shown} embeds URLs or IP addresses (schema and certificate hosts "
                    "aside): likely command-and-control, download or exfiltration endpoints."
                ),
                recommendation="Look the hosts up in threat intelligence and search network logs for them.",
                observation_indexes=tuple(network),
            )
        )
    registry = values["registry_key"]
    if any(item.get("persistence") for item in registry.items.values()):
        findings.append(
            ProposedFinding(
                title=f"Autostart registry key referenced in {shown}",
                severity=Severity.MEDIUM,
                description=f"{shown} names a registry location used for persistence (Run keys, services).",
                recommendation="Check those keys on affected hosts for entries the program added.",
                observation_indexes=(kind_index["registry_key"],),
            )
        )
    if "wallet" in kind_index:
        findings.append(
            ProposedFinding(
                title=f"Cryptocurrency wallet address in {shown}",
                severity=Severity.LOW,
                description=f"{shown} contains wallet-like addresses, typical of ransom notes and miners.",
                recommendation="Record the addresses for the incident report and blockchain lookups.",
                observation_indexes=(kind_index["wallet"],),
            )
        )
    return findings


def _routable(kind: str, values: _Values) -> bool:
    if kind == "url":
        return any(not item["benign"] for item in values.items.values())
    return any(item["scope"] in _ROUTABLE for item in values.items.values())
