"""Media metadata for forensics: image EXIF/text/XMP with GPS, and PDF metadata with active content.

Images (PNG, JPEG, WebP, TIFF) are read by `orchestrion.tools.images`, PDFs by
`orchestrion.tools.pdfscan`; both are byte-level readers with no imaging or PDF library and no
rendering. Quoted values (text chunks, comments, scripts, metadata) are redacted and capped.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any, ClassVar

from orchestrion.domain.findings import Severity
from orchestrion.tools.artifacts import ForensicsArgs, at, expect_args, quote, select_files
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
from orchestrion.tools.images import ImageMetadata, read_image
from orchestrion.tools.pdfscan import NameHit, PdfScan, scan_pdf

__all__ = ["MediaMetadataTool", "read_media"]

_IMAGES = frozenset({"png", "jpeg", "webp", "tiff"})
_QUOTE = 300
_MAX_OFFSETS = 20
_SUSPICIOUS_TRAILERS = frozenset({Category.EXECUTABLE, Category.BYTECODE, Category.SCRIPT, Category.ARCHIVE})
_SUSPICIOUS_TRAILERS |= {Category.COMPRESSED, Category.DOCUMENT}
_PDF_LABELS = {
    "JS": "JavaScript code (/JS)",
    "JavaScript": "JavaScript action (/JavaScript)",
    "OpenAction": "action run on open (/OpenAction)",
    "AA": "additional automatic actions (/AA)",
    "Launch": "program launch action (/Launch)",
    "EmbeddedFile": "embedded file (/EmbeddedFile)",
    "EmbeddedFiles": "embedded files tree (/EmbeddedFiles)",
    "RichMedia": "rich media (Flash) (/RichMedia)",
    "XFA": "XFA form (/XFA)",
    "SubmitForm": "form submission action (/SubmitForm)",
    "ImportData": "data import action (/ImportData)",
    "GoToR": "link to another document (/GoToR)",
    "GoToE": "link into an embedded document (/GoToE)",
    "URI": "web link (/URI)",
    "Encrypt": "encryption dictionary (/Encrypt)",
    "ObjStm": "object stream (/ObjStm)",
}


class MediaMetadataTool(Tool):
    """EXIF, text chunks and GPS of images; Info dictionary and active content of PDFs."""

    name: ClassVar[str] = "media_metadata"
    description: ClassVar[str] = (
        "Read metadata of uploaded images and PDFs without rendering them: PNG text chunks, JPEG/PNG/WebP "
        "EXIF (camera make/model, software, dates, serial numbers, GPS position), XMP, data appended after "
        "the image; PDF Info dictionary (author, creator, producer, dates) and active content (/JavaScript, "
        "/OpenAction, /Launch, /EmbeddedFile, obfuscated names), including inside object streams."
    )
    args_model: ClassVar[type[ToolArgs]] = ForensicsArgs

    async def execute(self, args: ToolArgs, ctx: ToolContext) -> ToolOutput:
        """Read the metadata of every image and PDF among the selected files."""
        options = expect_args(args, ForensicsArgs, tool=self.name)
        files = select_files(ctx.files, options.files, tool=self.name)
        return await asyncio.to_thread(read_media, files)


def read_media(files: Sequence[InputFile]) -> ToolOutput:
    """Blocking body of `MediaMetadataTool`."""
    observations: list[Observation] = []
    findings: list[ProposedFinding] = []
    summaries: dict[str, Any] = {}
    skipped: list[str] = []
    for file in files:
        type_id = detect_type(file.data).type.id
        if type_id in _IMAGES:
            meta = read_image(file.data, type_id)
            summaries[file.name] = _report_image(file, meta, observations, findings)
        elif type_id == "pdf":
            summaries[file.name] = _report_pdf(file, scan_pdf(file.data), observations, findings)
        else:
            skipped.append(file.name)
    return ToolOutput(
        observations=tuple(observations),
        findings=tuple(findings),
        data={"files": summaries, "skipped": skipped[:100]},
    )


def _report_image(
    file: InputFile, meta: ImageMetadata, observations: list[Observation], findings: list[ProposedFinding]
) -> dict[str, Any]:
    name = quote(file.name)
    exif = meta.exif
    fields = {k: quote(v, limit=_QUOTE) for k, v in (exif.fields if exif else {}).items()}
    texts = [{"key": quote(k, limit=80), "text": quote(t, limit=_QUOTE)} for k, t in meta.texts]
    xmp = {k: quote(v, limit=_QUOTE) for k, v in meta.xmp.items()}
    size = f" {meta.width}x{meta.height}" if meta.width and meta.height else ""
    parts = [f"{name}: {meta.format.upper()} image{size}"]
    parts += [f"{k} {v}" for k, v in fields.items() if k in ("Make", "Model", "Software", "DateTimeOriginal")]
    if texts:
        parts.append(
            f"{len(texts)} text chunk(s): " + "; ".join(f"{t['key']}={t['text']}" for t in texts[:3])
        )
    observations.append(
        Observation(
            summary=", ".join(parts),
            data={
                "file": file.name,
                "format": meta.format,
                "width": meta.width,
                "height": meta.height,
                "exif": fields,
                "exif_error": meta.exif_error,
                "texts": texts,
                "xmp": xmp,
                "errors": meta.errors,
                "trailing_bytes": meta.trailing_bytes,
            },
            location=file.name,
        )
    )
    gps = _gps_observation(file.name, meta)
    if gps:
        observations.append(gps)
        findings.append(
            ProposedFinding(
                title=f"GPS position in the metadata of {name}",
                severity=Severity.MEDIUM,
                description=(
                    f"{name} records where it was taken ({gps.summary.split(': ', 1)[-1]}); publishing it "
                    "reveals the location of the photographer, a home or a site."
                ),
                recommendation="Strip EXIF/XMP metadata (exiftool -all=) before sharing or publishing.",
                observation_indexes=(len(observations) - 1,),
            )
        )
    if meta.trailing_bytes and meta.end_offset is not None:
        _trailing(file, meta.end_offset, meta.trailing_bytes, observations, findings)
    return {"format": meta.format, "gps": gps is not None, "trailing_bytes": meta.trailing_bytes}


def _gps_observation(name: str, meta: ImageMetadata) -> Observation | None:
    exif = meta.exif
    if exif and exif.latitude is not None and exif.longitude is not None:
        altitude = f", altitude {exif.altitude:g} m" if exif.altitude is not None else ""
        return Observation(
            summary=f"{quote(name)}: EXIF GPS position {exif.latitude:.6f}, {exif.longitude:.6f}{altitude}",
            data={
                "file": name,
                "source": "exif",
                "latitude": exif.latitude,
                "longitude": exif.longitude,
                "altitude": exif.altitude,
                "tags": {k: quote(v, limit=120) for k, v in exif.gps.items()},
            },
            location=f"{name}:EXIF GPS",
        )
    if "GPSLatitude" in meta.xmp and "GPSLongitude" in meta.xmp:
        latitude, longitude = (
            quote(meta.xmp["GPSLatitude"], limit=60),
            quote(meta.xmp["GPSLongitude"], limit=60),
        )
        return Observation(
            summary=f"{quote(name)}: XMP GPS position {latitude}, {longitude}",
            data={"file": name, "source": "xmp", "latitude": latitude, "longitude": longitude},
            location=f"{name}:XMP GPS",
        )
    return None


def _trailing(
    file: InputFile, end: int, count: int, observations: list[Observation], findings: list[ProposedFinding]
) -> None:
    appended = detect_type(file.data[end:]).type
    suspicious = appended.category in _SUSPICIOUS_TRAILERS
    name = quote(file.name)
    observations.append(
        Observation(
            summary=f"{name}: {count:,} bytes after the end of the image at 0x{end:x} ({appended.label})",
            data={
                "file": file.name,
                "end_offset": end,
                "trailing_bytes": count,
                "trailing_type": appended.id,
            },
            location=at(file.name, end),
        )
    )
    findings.append(
        ProposedFinding(
            title=f"{appended.label.capitalize()} hidden after the image data of {name}"
            if suspicious
            else f"Data appended after the image data of {name}",
            severity=Severity.MEDIUM if suspicious else Severity.LOW,
            description=(
                f"{count:,} bytes follow the image's end marker; viewers ignore them, so they can carry a "
                f"hidden payload or make the file valid as two formats at once (here: {appended.label})."
            ),
            recommendation="Carve the appended bytes out and analyse them separately.",
            observation_indexes=(len(observations) - 1,),
        )
    )


def _report_pdf(
    file: InputFile, scan: PdfScan, observations: list[Observation], findings: list[ProposedFinding]
) -> dict[str, Any]:
    name = quote(file.name)
    info = {k: quote(v, limit=_QUOTE) for k, v in scan.info.items()}
    counts = dict(sorted(scan.counts.items()))
    encrypted = "Encrypt" in scan.names
    shown = ", ".join(
        f"{k} {v}" for k, v in info.items() if k in ("Author", "Creator", "Producer", "CreationDate")
    )
    observations.append(
        Observation(
            summary=f"{name}: PDF {scan.version or '?'}"
            + (f", {shown}" if shown else ", no Info dictionary read"),
            data={
                "file": file.name,
                "version": scan.version,
                "info": info,
                "info_source": scan.info_source,
                "info_encrypted": encrypted,
                "xmp": {k: quote(v, limit=_QUOTE) for k, v in scan.xmp.items()},
                "names": counts,
                "object_streams": scan.object_streams,
                "eof_markers": scan.eof_markers,
                "incremental_updates": max(scan.eof_markers - 1, 0),
            },
            location=file.name,
        )
    )
    index: dict[str, int] = {}
    for key, hits in sorted(scan.names.items()):
        observations.append(_name_observation(file.name, key, hits, scan.counts[key], scan))
        index[key] = len(observations) - 1
    findings.extend(_pdf_findings(name, index, scan))
    return {"version": scan.version, "names": counts, "info_source": scan.info_source}


def _name_observation(name: str, key: str, hits: list[NameHit], count: int, scan: PdfScan) -> Observation:
    label = _PDF_LABELS.get(key, f"/{key}")
    context = quote(scan.contexts.get(key, ""), limit=_QUOTE)
    hidden = sum(h.in_object_stream for h in hits)
    where = f", {hidden} inside object streams" if hidden else ""
    data: dict[str, Any] = {
        "file": name,
        "name": key,
        "count": count,
        "offsets": [h.offset for h in hits[:_MAX_OFFSETS]],
        "in_object_stream": hidden,
        "spellings": sorted({h.raw for h in hits}),
        "context": context,
    }
    if key == "JS":
        data["scripts"] = [quote(s, limit=_QUOTE) for s in scan.javascript[:5]]
    return Observation(
        summary=f"{at(name, hits[0].offset)}: {label}, {count} occurrence(s){where}: {context}",
        data=data,
        location=at(name, hits[0].offset),
    )


def _pdf_findings(name: str, index: dict[str, int], scan: PdfScan) -> list[ProposedFinding]:
    findings: list[ProposedFinding] = []

    def add(title: str, severity: Severity, description: str, fix: str, keys: Sequence[str]) -> None:
        cited = tuple(index[k] for k in keys if k in index)
        findings.append(
            ProposedFinding(
                title=title,
                severity=severity,
                description=description,
                recommendation=fix,
                observation_indexes=cited,
            )
        )

    script = [k for k in ("JavaScript", "JS") if k in index]
    automatic = [k for k in ("OpenAction", "AA") if k in index]
    if script:
        add(
            f"JavaScript in PDF {name}" + (" run automatically" if automatic else ""),
            Severity.HIGH if automatic else Severity.MEDIUM,
            f"{name} contains JavaScript"
            + (" and an action that runs when the document opens" if automatic else "")
            + ": the usual vehicle of PDF exploits and phishing redirects.",
            "Open it only in a sandbox or a viewer with JavaScript disabled; analyse the script.",
            [*script, *automatic],
        )
    elif automatic:
        add(
            f"Automatic action in PDF {name}",
            Severity.LOW,
            f"{name} defines an action run on opening or on page events (no JavaScript found).",
            "Check what the action does (it may open a link or another document).",
            automatic,
        )
    if "Launch" in index:
        add(
            f"Launch action in PDF {name}",
            Severity.HIGH,
            f"{name} contains a /Launch action, which asks the viewer to start a program or open a file.",
            "Do not open it in a desktop viewer; extract and analyse the launched command.",
            ["Launch", *automatic],
        )
    embedded = [k for k in ("EmbeddedFile", "EmbeddedFiles") if k in index]
    if embedded:
        add(
            f"Embedded file in PDF {name}",
            Severity.MEDIUM,
            f"{name} carries embedded files, a way to deliver a payload inside an innocent-looking document.",
            "Extract the embedded files in a sandbox and triage them like any upload.",
            embedded,
        )
    if scan.obfuscated:
        keys = sorted({k for k, hits in scan.names.items() if any("#" in h.raw for h in hits)})
        add(
            f"Obfuscated names in PDF {name}",
            Severity.MEDIUM,
            f"{name} spells {', '.join('/' + k for k in keys)} with #xx escapes, a trick to evade scanners.",
            "Treat the document as malicious until its active content is analysed.",
            keys,
        )
    rich = [k for k in ("RichMedia", "XFA", "SubmitForm", "ImportData", "GoToR", "GoToE") if k in index]
    if rich:
        add(
            f"Active or external content in PDF {name}",
            Severity.LOW,
            f"{name} uses {', '.join('/' + k for k in rich)}: content or actions reaching outside the file.",
            "Review these entries; block Flash and XFA in the viewer if they are not needed.",
            rich,
        )
    return findings
