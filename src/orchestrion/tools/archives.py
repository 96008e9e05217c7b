"""Archive listing for forensics: ZIP and tar(.gz/.bz2/.xz) contents, read in memory, never extracted.

Reports what would be dangerous to unpack: entries that climb out of the target directory (``../``,
absolute paths, links pointing outside), zip bombs (compression ratio above `BOMB_RATIO`, records
sharing one compressed kernel, streams past the decompression cap), executables and scripts,
encrypted entries, and archives inside the archive (listed one level down, named
``outer.zip!inner.tar``). Reading is done by `orchestrion.tools.archive_read`.
"""

from __future__ import annotations

import asyncio
import posixpath
import re
from collections.abc import Sequence
from typing import Any, ClassVar

from pydantic import Field

from orchestrion.domain.findings import Severity
from orchestrion.tools.archive_read import ArchiveEntry, ArchiveListing, list_archive
from orchestrion.tools.artifacts import ForensicsArgs, expect_args, quote, select_files
from orchestrion.tools.base import (
    InputFile,
    Observation,
    ProposedFinding,
    Tool,
    ToolArgs,
    ToolContext,
    ToolOutput,
)
from orchestrion.tools.filetypes import RUNNABLE_EXTENSIONS, FileType, detect_type, extension_of

__all__ = ["BOMB_RATIO", "ArchiveListingArgs", "ArchiveListingTool", "list_archives"]

BOMB_RATIO = 100.0
# Small files of zeros compress 100:1 too; only sizes like this make a ratio matter.
_BOMB_MIN_BYTES = 1024 * 1024
_MAX_LISTED = 100
_MAX_NOTABLE = 100
_STREAM_TYPES = frozenset({"zip", "tar", "gzip", "bzip2", "xz"})
_UNSUPPORTED = frozenset({"7z", "rar", "cab", "iso", "zstd"})
_ARCHIVE_EXTENSIONS = frozenset("zip jar war apk whl tar gz tgz bz2 tbz2 xz txz".split())
_DRIVE = re.compile(r"^[A-Za-z]:")


class ArchiveListingArgs(ForensicsArgs):
    """Arguments of `ArchiveListingTool`."""

    max_entries: int = Field(default=1000, ge=1, le=10_000, description="Most entries read per archive.")


class ArchiveListingTool(Tool):
    """Archive contents, sizes and ratios, with path traversal, zip bombs and executables flagged."""

    name: ClassVar[str] = "archive_listing"
    description: ClassVar[str] = (
        "List ZIP (and docx/jar/apk...) and tar/tar.gz/tar.bz2/tar.xz uploads in memory without extracting: "
        "entry names, sizes, compression ratios, encrypted entries, nested archives (one level). Flags "
        "path traversal (../, absolute paths, escaping links), zip bombs (ratio > 100) and executables or "
        "scripts inside."
    )
    args_model: ClassVar[type[ToolArgs]] = ArchiveListingArgs

    async def execute(self, args: ToolArgs, ctx: ToolContext) -> ToolOutput:
        """List every archive among the selected files."""
        options = expect_args(args, ArchiveListingArgs, tool=self.name)
        files = select_files(ctx.files, options.files, tool=self.name)
        return await asyncio.to_thread(list_archives, files, max_entries=options.max_entries)


def list_archives(files: Sequence[InputFile], *, max_entries: int = 1000) -> ToolOutput:
    """Blocking body of `ArchiveListingTool`."""
    report = _Report(max_entries=max_entries)
    skipped: list[str] = []
    for file in files:
        kind = detect_type(file.data).type
        if _listable(kind):
            report.archive(file.name, file.data, kind, depth=0)
        elif kind.id in _UNSUPPORTED:
            report.observations.append(
                Observation(
                    summary=f"{quote(file.name)}: {kind.label}; its listing is not supported offline",
                    data={"file": file.name, "format": kind.id, "supported": False},
                    location=file.name,
                )
            )
        else:
            skipped.append(file.name)
    return ToolOutput(
        observations=tuple(report.observations),
        findings=tuple(report.findings),
        data={
            "archives": report.summaries,
            "skipped_not_archives": skipped[:100],
            "max_entries": max_entries,
            "bomb_ratio": BOMB_RATIO,
        },
    )


def _listable(kind: FileType) -> bool:
    return kind.id in _STREAM_TYPES or kind.family == "zip"


def _is_archive(name: str, head: bytes) -> bool:
    return _listable(detect_type(head).type) or extension_of(name) in _ARCHIVE_EXTENSIONS


class _Report:
    """Observations and findings of every archive listed, nested ones included."""

    def __init__(self, *, max_entries: int) -> None:
        self.max_entries = max_entries
        self.observations: list[Observation] = []
        self.findings: list[ProposedFinding] = []
        self.summaries: dict[str, Any] = {}

    def archive(self, label: str, data: bytes, kind: FileType, *, depth: int) -> None:
        type_id = "zip" if kind.family == "zip" else kind.id
        listing = list_archive(
            data, type_id, max_entries=self.max_entries, want_content=depth == 0, is_archive=_is_archive
        )
        uncompressed = sum(e.size for e in listing.entries if e.kind == "file")
        ratio = _ratio(listing, uncompressed)
        self.observations.append(_summary(label, kind, listing, uncompressed, ratio))
        summary_index = len(self.observations) - 1
        cited: dict[str, list[int]] = {p: [] for p in ("traversal", "bomb", "executable", "encrypted")}
        notable = 0
        for entry in listing.entries:
            problems = _problems(entry)
            if not problems or notable >= _MAX_NOTABLE:
                continue
            notable += 1
            self.observations.append(_entry_observation(label, entry, problems))
            for problem in problems:
                if problem in cited:
                    cited[problem].append(len(self.observations) - 1)
        bomb = bool(
            (ratio is not None and ratio > BOMB_RATIO and uncompressed >= _BOMB_MIN_BYTES)
            or cited["bomb"]
            or listing.overlapping_entries
            or (
                listing.decompression_capped
                and listing.decompressed / max(listing.compressed_size, 1) > BOMB_RATIO
            )
        )
        self._findings(label, cited, bomb, summary_index, ratio)
        self.summaries[label] = {
            "format": listing.format,
            "entries": listing.total_entries,
            "uncompressed": uncompressed,
            "ratio": ratio,
            "truncated": listing.truncated,
            "error": listing.error,
        }
        for entry in listing.entries:
            if entry.content is not None and depth == 0:
                inner = detect_type(entry.content).type
                if _listable(inner):
                    self.archive(f"{label}!{entry.name}", entry.content, inner, depth=depth + 1)

    def _findings(
        self, label: str, cited: dict[str, list[int]], bomb: bool, summary_index: int, ratio: float | None
    ) -> None:
        shown = quote(label)
        if cited["traversal"]:
            self._add(
                f"Path traversal in archive {shown}",
                Severity.HIGH,
                f"{len(cited['traversal'])} entr(y/ies) of {shown} would be written outside the extraction "
                "directory (../ components, absolute paths or links pointing outside): a Zip Slip attack "
                "that can overwrite files such as startup scripts or SSH keys.",
                "Never extract this archive with a tool that follows such paths; extractors must reject "
                "entries that resolve outside the target directory.",
                tuple(cited["traversal"]),
            )
        if bomb:
            ratio_text = f" (ratio {ratio:,.0f}:1)" if ratio else ""
            self._add(
                f"Decompression bomb in archive {shown}",
                Severity.HIGH,
                f"{shown} expands far beyond its size{ratio_text}, shares compressed data between entries "
                "or exceeded the decompression cap: extracting it can exhaust disk and memory.",
                "Do not extract it; enforce size, ratio and entry-count limits in every unpacking service.",
                (summary_index, *cited["bomb"]),
            )
        if cited["executable"]:
            self._add(
                f"Executables or scripts inside archive {shown}",
                Severity.MEDIUM,
                f"{shown} holds {len(cited['executable'])} executable or script entr(y/ies); archives are a "
                "common way to smuggle them past mail and web filters.",
                "Scan the entries in a sandbox before anyone opens them.",
                tuple(cited["executable"]),
            )
        if cited["encrypted"]:
            self._add(
                f"Encrypted entries in archive {shown}",
                Severity.LOW,
                f"{len(cited['encrypted'])} entr(y/ies) of {shown} are password-protected and could not be "
                "inspected; malware is often sent this way to evade scanners.",
                "Obtain the password through a trusted channel and inspect the content in a sandbox.",
                tuple(cited["encrypted"]),
            )

    def _add(
        self, title: str, severity: Severity, description: str, fix: str, cited: tuple[int, ...]
    ) -> None:
        self.findings.append(
            ProposedFinding(
                title=title,
                severity=severity,
                description=description,
                recommendation=fix,
                observation_indexes=cited,
            )
        )


def _ratio(listing: ArchiveListing, uncompressed: int) -> float | None:
    if listing.format == "tar" or not listing.compressed_size:
        return None
    return round(uncompressed / listing.compressed_size, 1)


def _summary(
    label: str, kind: FileType, listing: ArchiveListing, uncompressed: int, ratio: float | None
) -> Observation:
    parts = [f"{listing.total_entries} entries"]
    parts.append(f"{uncompressed:,} bytes uncompressed from {listing.compressed_size:,}")
    if ratio is not None:
        parts.append(f"ratio {ratio:,.1f}:1")
    encrypted = sum(e.encrypted for e in listing.entries)
    if encrypted:
        parts.append(f"{encrypted} encrypted")
    if listing.truncated:
        parts.append(f"listing stopped after {len(listing.entries)} entries")
    if listing.decompression_capped:
        parts.append(f"decompression stopped at the cap, after {listing.decompressed:,} bytes")
    if listing.overlapping_entries:
        parts.append(f"{listing.overlapping_entries} entries overlap")
    if listing.error:
        parts.append(f"read error: {listing.error}")
    return Observation(
        summary=f"{quote(label)}: {kind.label} ({listing.format}), " + ", ".join(parts),
        data={
            "archive": label,
            "format": listing.format,
            "type": kind.id,
            "entries": listing.total_entries,
            "entries_read": len(listing.entries),
            "truncated": listing.truncated,
            "compressed_size": listing.compressed_size,
            "uncompressed_size": uncompressed,
            "ratio": ratio,
            "encrypted": encrypted,
            "overlapping_entries": listing.overlapping_entries,
            "decompressed_bytes": listing.decompressed,
            "decompression_capped": listing.decompression_capped,
            "error": listing.error,
            "listing": [_listed(e) for e in listing.entries[:_MAX_LISTED]],
        },
        location=label,
    )


def _listed(entry: ArchiveEntry) -> dict[str, Any]:
    item: dict[str, Any] = {"name": quote(entry.name, limit=300), "kind": entry.kind, "size": entry.size}
    if entry.compressed is not None:
        item["compressed"] = entry.compressed
    if entry.encrypted:
        item["encrypted"] = True
    if entry.link:
        item["link"] = quote(entry.link, limit=300)
    return item


def _problems(entry: ArchiveEntry) -> list[str]:
    problems: list[str] = []
    if _unsafe_path(entry.name) or (entry.link and _link_escapes(entry)):
        problems.append("traversal")
    if entry.compressed and entry.size >= _BOMB_MIN_BYTES and entry.size / entry.compressed > BOMB_RATIO:
        problems.append("bomb")
    if entry.kind == "file" and _runnable(entry):
        problems.append("executable")
    if entry.encrypted:
        problems.append("encrypted")
    if entry.content is not None:
        problems.append("nested_archive")
    return problems


def _unsafe_path(name: str) -> str | None:
    """``absolute`` or ``traversal`` for a member path that leaves the extraction directory."""
    path = name.replace("\\", "/")
    if path.startswith("/") or _DRIVE.match(path):
        return "absolute"
    return "traversal" if ".." in path.split("/") else None


def _link_escapes(entry: ArchiveEntry) -> bool:
    target = (entry.link or "").replace("\\", "/")
    if entry.kind == "hardlink":
        return _unsafe_path(target) is not None
    if target.startswith("/") or _DRIVE.match(target):
        return True
    resolved = posixpath.normpath(posixpath.join(posixpath.dirname(entry.name.replace("\\", "/")), target))
    return resolved == ".." or resolved.startswith("../")


def _runnable(entry: ArchiveEntry) -> bool:
    if extension_of(entry.name) in RUNNABLE_EXTENSIONS:
        return True
    if entry.head and detect_type(entry.head).type.runnable:
        return True
    return entry.mode is not None and bool(entry.mode & 0o111)


def _entry_observation(label: str, entry: ArchiveEntry, problems: list[str]) -> Observation:
    location = f"{label}!{entry.name}"
    kind = detect_type(entry.head).type if entry.head else None
    details = [", ".join(problems), f"{entry.size:,} bytes"]
    if entry.compressed:
        details.append(f"ratio {entry.size / entry.compressed:,.1f}:1")
    if kind:
        details.append(kind.label)
    if entry.link:
        details.append(f"-> {quote(entry.link)}")
    return Observation(
        summary=f"{quote(location, limit=300)}: " + "; ".join(details),
        data={
            "archive": label,
            "entry": quote(entry.name, limit=300),
            "problems": problems,
            "path_problem": _unsafe_path(entry.name),
            "kind": entry.kind,
            "size": entry.size,
            "compressed": entry.compressed,
            "ratio": round(entry.size / entry.compressed, 1) if entry.compressed else None,
            "encrypted": entry.encrypted,
            "mode": oct(entry.mode) if entry.mode is not None else None,
            "link": quote(entry.link, limit=300) if entry.link else None,
            "content_type": kind.id if kind else None,
        },
        location=quote(location, limit=300),
    )
