"""File triage for forensics: hashes, type by magic bytes, disguised names and entropy.

This module holds `FileTriageTool` and re-exports the other forensics tools, so that
``from orchestrion.tools.forensics import ...`` reaches all four:

- `FileTriageTool` (``file_triage``): this module, signatures in `orchestrion.tools.filetypes`.
- `StringsTool` (``strings_extract``): `orchestrion.tools.binstrings`, indicators in
  `orchestrion.tools.indicators`.
- `ArchiveListingTool` (``archive_listing``): `orchestrion.tools.archives`, reading in
  `orchestrion.tools.archive_read`.
- `MediaMetadataTool` (``media_metadata``): `orchestrion.tools.media`, with `orchestrion.tools.images`,
  `orchestrion.tools.exif` and `orchestrion.tools.pdfscan`.

Shared plumbing (file selection, offsets, redaction) is in `orchestrion.tools.artifacts`.

Every one of them reads the uploaded bytes in memory only: nothing is written, extracted or run.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections import Counter
from collections.abc import Sequence
from typing import ClassVar

from pydantic import Field

from orchestrion.domain.findings import Severity
from orchestrion.tools.archives import ArchiveListingTool
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
from orchestrion.tools.binstrings import StringsTool
from orchestrion.tools.filetypes import (
    RUNNABLE_EXTENSIONS,
    Category,
    Detection,
    FileType,
    block_entropies,
    detect_type,
    expected_types,
    extension_of,
)
from orchestrion.tools.media import MediaMetadataTool

__all__ = ["ArchiveListingTool", "FileTriageArgs", "FileTriageTool", "MediaMetadataTool", "StringsTool"]

HIGH_ENTROPY = 7.5
# Below this many bytes a block cannot show its entropy reliably: 256 random bytes only reach about 7.2.
_MIN_ENTROPY_BYTES = 1024
_MAX_RANGES = 20
_MAX_NAMES = 50
_PROFILE_BLOCKS = 64
_ENTROPY_CHECKED = frozenset({Category.EXECUTABLE, Category.BYTECODE, Category.DATA})
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_PACKER_MARKS = ((b"UPX!", "UPX"), (b"UPX0", "UPX"), (b"MPRESS1", "MPRESS"), (b".aspack", "ASPack"))


class FileTriageArgs(ForensicsArgs):
    """Arguments of `FileTriageTool`."""

    block_size: int = Field(
        default=4096, ge=1024, le=1024 * 1024, description="Bytes per block of the entropy profile."
    )


class FileTriageTool(Tool):
    """Per file: size, hashes, type by magic bytes, extension mismatches and entropy."""

    name: ClassVar[str] = "file_triage"
    description: ClassVar[str] = (
        "Triage uploaded files without running them: size, MD5/SHA-1/SHA-256, type by magic bytes (ELF, PE, "
        "Mach-O, ZIP/docx/jar/apk, gzip, 7z, RAR, tar, PDF, images, SQLite, bytecode, scripts...), an "
        "extension that hides the real type (invoice.pdf that is a PE), double extensions, and Shannon "
        "entropy overall and per block (packed or encrypted content)."
    )
    args_model: ClassVar[type[ToolArgs]] = FileTriageArgs

    async def execute(self, args: ToolArgs, ctx: ToolContext) -> ToolOutput:
        """Triage the selected files."""
        options = expect_args(args, FileTriageArgs, tool=self.name)
        files = select_files(ctx.files, options.files, tool=self.name)
        return await asyncio.to_thread(triage_files, files, block_size=options.block_size)


def triage_files(files: Sequence[InputFile], *, block_size: int = 4096) -> ToolOutput:
    """Blocking body of `FileTriageTool`."""
    observations: list[Observation] = []
    findings: list[ProposedFinding] = []
    by_type: Counter[str] = Counter()
    flagged: dict[str, list[str]] = {"mismatched": [], "runnable": [], "high_entropy": []}
    for file in files:
        data = file.data
        detection = detect_type(data)
        by_type[detection.type.id] += 1
        entropy, blocks = block_entropies(data[:MAX_SCAN_BYTES], block_size)
        observations.append(_file_observation(file, detection, entropy, blocks, block_size))
        index = len(observations) - 1
        mismatch = _name_findings(file.name, detection, index, findings)
        if mismatch:
            flagged["mismatched"].append(file.name)
        if detection.type.runnable:
            flagged["runnable"].append(file.name)
            findings.append(_runnable_finding(file.name, detection, index))
        if detection.type.category in _ENTROPY_CHECKED and len(data) >= _MIN_ENTROPY_BYTES:
            cited = [index]
            ranges = _high_ranges(blocks, block_size, len(data))
            if ranges:
                observations.append(_ranges_observation(file.name, ranges, len(blocks)))
                cited.append(len(observations) - 1)
            packer = observations[index].data["packer"]
            finding = _entropy_finding(file.name, detection, entropy, bool(ranges), tuple(cited), packer)
            if finding:
                flagged["high_entropy"].append(file.name)
                findings.append(finding)
    return ToolOutput(
        observations=tuple(observations),
        findings=tuple(findings),
        data={
            "files": len(files),
            "by_type": dict(by_type.most_common()),
            **{key: names[:_MAX_NAMES] for key, names in flagged.items()},
            "high_entropy_threshold": HIGH_ENTROPY,
            "block_size": block_size,
        },
    )


def _file_observation(
    file: InputFile, detection: Detection, entropy: float, blocks: list[float], block_size: int
) -> Observation:
    data = file.data
    kind = detection.type
    extension = extension_of(file.name)
    expected = expected_types(extension)
    detail = f" ({detection.detail})" if detection.detail else ""
    packer = _packer(data) if kind.category is Category.EXECUTABLE else None
    sha256 = hashlib.sha256(data).hexdigest()
    summary = (
        f"{quote(file.name)}: {kind.label}{detail}, {len(data):,} bytes, entropy {entropy:.2f} bits/byte, "
        f"sha256 {sha256}"
    )
    return Observation(
        summary=summary,
        data={
            "file": file.name,
            "size": len(data),
            "md5": hashlib.md5(data, usedforsecurity=False).hexdigest(),
            "sha1": hashlib.sha1(data, usedforsecurity=False).hexdigest(),
            "sha256": sha256,
            "type": kind.id,
            "label": kind.label,
            "category": kind.category.value,
            "detail": detection.detail,
            "runnable": kind.runnable,
            "extension": extension,
            "extension_types": [t.id for t in expected],
            "extension_mismatch": _mismatch(detection, expected),
            "entropy": round(entropy, 3),
            "entropy_scanned_bytes": min(len(data), MAX_SCAN_BYTES),
            "block_size": block_size,
            "blocks": len(blocks),
            "block_entropy_max": round(max(blocks), 3) if blocks else 0.0,
            "block_entropy_min": round(min(blocks), 3) if blocks else 0.0,
            "high_entropy_blocks": sum(e > HIGH_ENTROPY for e in blocks),
            "block_entropy_profile": [round(e, 2) for e in blocks[:_PROFILE_BLOCKS]],
            "packer": packer,
        },
        location=file.name,
    )


def _mismatch(detection: Detection, expected: Sequence[FileType]) -> bool:
    kind = detection.type
    if not expected or kind.id == "empty":
        return False
    return not any(t.id in (kind.id, kind.family) for t in expected)


def _name_findings(name: str, detection: Detection, index: int, findings: list[ProposedFinding]) -> bool:
    """Add findings for a name that hides the real type; return whether the extension mismatches."""
    kind = detection.type
    extension = extension_of(name)
    expected = expected_types(extension)
    mismatch = _mismatch(detection, expected)
    shown = quote(name)
    if mismatch:
        disguised = kind.runnable and not any(t.runnable for t in expected)
        claimed = " or ".join(sorted({t.label for t in expected}))
        findings.append(
            ProposedFinding(
                title=f"Extension of {shown} hides its type: {kind.label}, not {claimed}",
                severity=Severity.MEDIUM if disguised else Severity.LOW,
                description=(
                    f"The name of {shown} ends in .{extension}, but its magic bytes identify a {kind.label}"
                    + (
                        ". Executables named like documents are a classic way to trick a user"
                        if disguised
                        else ""
                    )
                    + "."
                ),
                recommendation=(
                    "Do not open or run the file; handle it as a likely malware sample (isolate, hash "
                    "lookup, sandbox) and find out who sent it."
                    if disguised
                    else "Confirm where the file came from and rename it to match its real type."
                ),
                observation_indexes=(index,),
            )
        )
    stem_extension = extension_of(name[: -(len(extension) + 1)]) if extension else ""
    stem_types = expected_types(stem_extension)
    if (
        extension in RUNNABLE_EXTENSIONS
        and stem_types
        and not any(t.runnable for t in stem_types)
        and stem_extension not in RUNNABLE_EXTENSIONS
    ):
        findings.append(
            ProposedFinding(
                title=f"Double extension in {shown}",
                severity=Severity.MEDIUM,
                description=(
                    f"{shown} looks like a .{stem_extension} file but ends in .{extension}: systems that "
                    "hide known extensions show it as a harmless document."
                ),
                recommendation="Treat the file as the executable it is named as; do not open it.",
                observation_indexes=(index,),
            )
        )
    if any(c in _BIDI_CONTROLS for c in name):
        findings.append(
            ProposedFinding(
                title=f"Bidirectional control character in the name {shown}",
                severity=Severity.MEDIUM,
                description=(
                    "The file name contains a Unicode bidirectional override, which makes the end of the "
                    "name display reversed (e.g. an .exe shown as .pdf)."
                ),
                recommendation="Rename the file without control characters and treat it as suspicious.",
                observation_indexes=(index,),
            )
        )
    return mismatch


def _runnable_finding(name: str, detection: Detection, index: int) -> ProposedFinding:
    kind = detection.type
    native = kind.category is Category.EXECUTABLE
    return ProposedFinding(
        title=f"{'Executable' if native else 'Runnable code'} uploaded: {quote(name)} ({kind.label})",
        severity=Severity.LOW if native else Severity.INFO,
        description=(
            f"{quote(name)} is a {kind.label}"
            + (f" ({detection.detail})" if detection.detail else "")
            + ". It was only read, never run."
        ),
        recommendation="Analyse it in an isolated sandbox and look its SHA-256 up in threat intelligence.",
        observation_indexes=(index,),
    )


def _high_ranges(blocks: list[float], block_size: int, size: int) -> list[tuple[int, int, float]]:
    """Runs of consecutive high-entropy blocks as (start, end, peak); short tail blocks are ignored."""
    ranges: list[tuple[int, int, float]] = []
    for number, entropy in enumerate(blocks):
        start = number * block_size
        end = min(start + block_size, size)
        if entropy <= HIGH_ENTROPY or end - start < _MIN_ENTROPY_BYTES:
            continue
        if ranges and ranges[-1][1] == start:
            first, _, peak = ranges[-1]
            ranges[-1] = (first, end, max(peak, entropy))
        else:
            ranges.append((start, end, entropy))
    return ranges


def _ranges_observation(name: str, ranges: list[tuple[int, int, float]], blocks: int) -> Observation:
    covered = sum(end - start for start, end, _ in ranges)
    first = ranges[0]
    shown = ", ".join(f"0x{s:x}-0x{e:x}" for s, e, _ in ranges[:5])
    return Observation(
        summary=(
            f"{quote(name)}: {len(ranges)} high-entropy region(s) above {HIGH_ENTROPY} bits/byte covering "
            f"{covered:,} bytes: {shown}"
        ),
        data={
            "file": name,
            "threshold": HIGH_ENTROPY,
            "blocks": blocks,
            "bytes_covered": covered,
            "ranges": [{"start": s, "end": e, "peak": round(p, 3)} for s, e, p in ranges[:_MAX_RANGES]],
            "ranges_total": len(ranges),
        },
        location=at(name, first[0]),
    )


def _entropy_finding(
    name: str,
    detection: Detection,
    entropy: float,
    has_ranges: bool,
    cited: tuple[int, ...],
    packer: str | None,
) -> ProposedFinding | None:
    kind = detection.type
    shown = quote(name)
    if kind.category is Category.DATA:
        if entropy <= HIGH_ENTROPY:
            return None
        return ProposedFinding(
            title=f"Unidentified high-entropy data in {shown}",
            severity=Severity.LOW,
            description=(
                f"{shown} matches no known file signature and its entropy is {entropy:.2f} bits/byte: it "
                "is most likely encrypted or compressed (an encrypted payload, ransomware output, a key)."
            ),
            recommendation="Look for the program that produced or reads it; compare with known samples.",
            observation_indexes=cited,
        )
    if entropy > HIGH_ENTROPY:
        marks = f" It carries the marks of the {packer} packer." if packer else ""
        return ProposedFinding(
            title=f"Packed or encrypted {kind.label}: {shown}",
            severity=Severity.MEDIUM,
            description=(
                f"The whole of {shown} has {entropy:.2f} bits/byte of entropy; compiled code is usually "
                f"around 5-6.5. Packers and crypters are used to hide malware from scanners.{marks}"
            ),
            recommendation="Unpack it in a sandbox before analysis and scan the unpacked image.",
            observation_indexes=cited,
        )
    if has_ranges:
        return ProposedFinding(
            title=f"High-entropy region in {kind.label} {shown}",
            severity=Severity.LOW,
            description=(
                f"Part of {shown} exceeds {HIGH_ENTROPY} bits/byte: a packed section or an embedded "
                "encrypted or compressed payload."
            ),
            recommendation="Inspect the region (resources, overlay) for an embedded payload.",
            observation_indexes=cited,
        )
    return None


def _packer(data: bytes) -> str | None:
    head = data[:65536]
    for mark, packer in _PACKER_MARKS:
        if mark in head:
            return packer
    return None
