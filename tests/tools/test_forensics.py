from __future__ import annotations

import bz2
import gzip
import hashlib
import importlib.util
import json
import lzma
import sqlite3
import sys
import threading
import zipfile
from collections.abc import Iterator
from typing import Any

import pytest

from orchestrion.domain.findings import Severity
from orchestrion.exceptions import ToolError
from orchestrion.tools.base import ToolOutput
from orchestrion.tools.filetypes import (
    TYPES,
    block_entropies,
    detect_type,
    expected_types,
    extension_of,
)
from orchestrion.tools.forensics import (
    HIGH_ENTROPY,
    ArchiveListingTool,
    FileTriageTool,
    MediaMetadataTool,
    StringsTool,
)
from tests.tools import forensics_samples as samples


async def _triage(*files: tuple[str, bytes | str], **args: Any) -> ToolOutput:
    output, _ = await FileTriageTool().run(args, samples.ctx(*files))
    return output


def _observation(output: ToolOutput, name: str) -> Any:
    return next(o for o in output.observations if o.location == name)


def _finding(output: ToolOutput, words: str) -> Any:
    return next(f for f in output.findings if words in f.title)


def _cited(output: ToolOutput, finding: Any) -> list[Any]:
    return [output.observations[i] for i in finding.observation_indexes]


def _sqlite() -> bytes:
    connection = sqlite3.connect(":memory:")
    try:
        connection.execute("create table t (x)")
        return connection.serialize()
    finally:
        connection.close()


def _tar() -> bytes:
    return samples.tar_bytes([(samples.tar_info("a.txt"), b"hello")], "w")


def _class_file() -> bytes:
    return b"\xca\xfe\xba\xbe\x00\x00\x00\x41" + b"\x00" * 16


def _ooxml(prefix: str) -> bytes:
    return samples.zip_bytes([("[Content_Types].xml", b"<Types/>"), (f"{prefix}document.xml", b"<x/>")])


SIGNATURES: list[tuple[str, bytes, str, str]] = [
    ("ELF", samples.elf(), "elf", "64-bit LSB executable, x86-64"),
    ("PE", samples.pe(), "pe", "PE32, executable, x86"),
    ("PE DLL", samples.pe(dll=True), "pe", "PE32, DLL, x86"),
    ("DOS MZ", b"MZ" + b"\x00" * 100, "mz", ""),
    ("Mach-O", b"\xcf\xfa\xed\xfe" + b"\x00" * 28, "macho", "64-bit little-endian"),
    ("fat Mach-O", b"\xca\xfe\xba\xbe\x00\x00\x00\x02" + b"\x00" * 40, "macho_fat", "2 architectures"),
    ("class", _class_file(), "class", "class file version 65"),
    ("DEX", b"dex\n035\x00" + b"\x00" * 100, "dex", ""),
    ("wasm", b"\x00asm\x01\x00\x00\x00", "wasm", ""),
    ("LNK", b"L\x00\x00\x00\x01\x14\x02\x00" + b"\x00" * 70, "lnk", ""),
    ("zip", samples.zip_bytes([("a.txt", b"x")]), "zip", ""),
    ("docx", _ooxml("word/"), "docx", ""),
    ("xlsx", _ooxml("xl/"), "xlsx", ""),
    ("pptx", _ooxml("ppt/"), "pptx", ""),
    ("jar", samples.zip_bytes([("META-INF/MANIFEST.MF", b"Manifest-Version: 1.0\n")]), "jar", ""),
    (
        "apk",
        samples.zip_bytes([("AndroidManifest.xml", b"\x03\x00"), ("classes.dex", b"dex\n035")]),
        "apk",
        "",
    ),
    (
        "odt",
        samples.zip_bytes(
            [("mimetype", b"application/vnd.oasis.opendocument.text")], compression=zipfile.ZIP_STORED
        ),
        "odt",
        "",
    ),
    ("whl", samples.zip_bytes([("pkg-1.0.dist-info/WHEEL", b"Wheel-Version: 1.0")]), "whl", ""),
    ("gzip", gzip.compress(b"hello"), "gzip", ""),
    ("bzip2", bz2.compress(b"hello"), "bzip2", ""),
    ("xz", lzma.compress(b"hello"), "xz", ""),
    ("zstd", b"\x28\xb5\x2f\xfd" + b"\x00" * 10, "zstd", ""),
    ("7z", b"7z\xbc\xaf\x27\x1c\x00\x04" + b"\x00" * 24, "7z", ""),
    ("RAR", b"Rar!\x1a\x07\x01\x00" + b"\x00" * 10, "rar", ""),
    ("CAB", b"MSCF\x00\x00\x00\x00" + b"\x00" * 30, "cab", ""),
    ("tar", _tar(), "tar", ""),
    ("ISO", b"\x00" * 0x8001 + b"CD001" + b"\x00" * 10, "iso", ""),
    ("PDF", b"%PDF-1.4\n%\xe2\xe3\n1 0 obj\n<<>>\nendobj\n", "pdf", "version 1.4"),
    ("OLE2", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 100, "ole", ""),
    ("RTF", b"{\\rtf1\\ansi hello}", "rtf", ""),
    ("PNG", samples.png(texts=[]), "png", ""),
    ("JPEG", samples.jpeg(), "jpeg", ""),
    ("GIF", b"GIF89a\x01\x00\x01\x00\x00\x00\x00;", "gif", ""),
    ("WebP", b"RIFF\x1a\x00\x00\x00WEBPVP8 " + b"\x00" * 14, "webp", ""),
    ("TIFF", samples.tiff({0x010F: (2, "Canon")}), "tiff", ""),
    ("WAVE", b"RIFF\x24\x00\x00\x00WAVEfmt " + b"\x00" * 20, "wav", ""),
    ("MP4", b"\x00\x00\x00\x18ftypisom" + b"\x00" * 12, "mp4", ""),
    ("MP3", b"ID3\x04\x00\x00\x00\x00\x00\x00", "mp3", ""),
    ("SQLite", _sqlite(), "sqlite", ""),
    (
        "pyc",
        importlib.util.MAGIC_NUMBER + b"\x00" * 12,
        "pyc",
        f"magic {int.from_bytes(importlib.util.MAGIC_NUMBER[:2], 'little')}",
    ),
    ("shell script", b"#!/bin/sh\necho hi\n", "script", "interpreter /bin/sh"),
    ("env script", b"#!/usr/bin/env python3\nprint(1)\n", "script", "interpreter python3"),
    ("text", "plain text, caf\u00e9\n".encode(), "text", ""),
    ("UTF-16 text", "\ufeffhello".encode("utf-16-le"), "text", ""),
    ("random", samples.random_bytes(2048), "data", ""),
    ("empty", b"", "empty", ""),
]


@pytest.mark.parametrize(
    ("data", "type_id", "detail"), [s[1:] for s in SIGNATURES], ids=[s[0] for s in SIGNATURES]
)
def test_signature_table_identifies_each_format(data: bytes, type_id: str, detail: str) -> None:
    detection = detect_type(data)

    assert detection.type.id == type_id
    assert detection.detail == detail


def test_every_detectable_type_is_in_the_table_and_the_docstring() -> None:
    from orchestrion.tools import filetypes

    detected = {s[2] for s in SIGNATURES}
    assert detected <= set(TYPES)
    assert set(TYPES) - detected == {"avi", "odp", "ods", "epub"}  # Same code paths as wav/odt.
    assert filetypes.__doc__ is not None
    for label in ("ELF", "PE", "Mach-O", "ZIP", "gzip", "7z", "RAR", "tar", "PDF", "PNG", "JPEG", "GIF"):
        assert label in filetypes.__doc__


def test_extension_helpers() -> None:
    assert extension_of("dir/Invoice.PDF") == "pdf"
    assert extension_of("archive.tar.gz") == "gz"
    assert extension_of("Makefile") == ""
    assert extension_of(".bashrc") == ""
    assert extension_of("C:\\Users\\x\\setup.EXE") == "exe"
    assert [t.id for t in expected_types("pdf")] == ["pdf"]
    assert expected_types("") == []
    assert expected_types("unknownext") == []


def test_entropy_of_uniform_and_random_bytes() -> None:
    overall, blocks = block_entropies(b"\x00" * 8192, 4096)
    assert overall == 0.0
    assert blocks == [0.0, 0.0]
    overall, blocks = block_entropies(bytes(range(256)) * 16, 1024)
    assert overall == pytest.approx(8.0)
    assert blocks == [pytest.approx(8.0)] * 4
    overall, _ = block_entropies(samples.random_bytes(65536), 4096)
    assert overall > 7.99


async def test_triage_reports_size_hashes_type_and_entropy() -> None:
    data = samples.elf()
    output = await _triage(("bin/tool", data))

    observation = output.observations[0]
    assert observation.location == "bin/tool"
    assert observation.data["size"] == len(data)
    assert observation.data["md5"] == hashlib.md5(data).hexdigest()
    assert observation.data["sha1"] == hashlib.sha1(data).hexdigest()
    assert observation.data["sha256"] == hashlib.sha256(data).hexdigest()
    assert observation.data["type"] == "elf"
    assert observation.data["detail"] == "64-bit LSB executable, x86-64"
    assert observation.data["extension_mismatch"] is False
    assert 0 < observation.data["entropy"] < 3
    assert hashlib.sha256(data).hexdigest() in observation.summary
    finding = _finding(output, "Executable uploaded")
    assert finding.severity is Severity.LOW
    assert finding.observation_indexes == (0,)
    assert output.data["runnable"] == ["bin/tool"]


async def test_pe_named_as_pdf_is_a_medium_extension_mismatch() -> None:
    output = await _triage(("invoice.pdf", samples.pe()), ("real.pdf", b"%PDF-1.7\n%%EOF\n"))

    finding = _finding(output, "Extension of invoice.pdf hides its type")
    assert finding.severity is Severity.MEDIUM
    assert "PE executable" in finding.title
    assert "PDF document" in finding.title
    (cited,) = _cited(output, finding)
    assert cited.location == "invoice.pdf"
    assert cited.data["type"] == "pe"
    assert cited.data["extension"] == "pdf"
    assert cited.data["extension_types"] == ["pdf"]
    assert cited.data["extension_mismatch"] is True
    assert _observation(output, "real.pdf").data["extension_mismatch"] is False
    assert output.data["mismatched"] == ["invoice.pdf"]
    assert not [f for f in output.findings if "real.pdf" in f.title]


async def test_harmless_mismatch_is_low_and_container_families_match() -> None:
    png = samples.png(texts=[])
    docx = _ooxml("word/")
    output = await _triage(
        ("photo.jpg", png),
        ("report.docx", docx),
        ("report-copy.zip", docx),
        ("broken.docx", samples.zip_bytes([("a.txt", b"x")])),
        ("empty.pdf", b""),
        ("data.unknownext", samples.pe()),
    )

    assert _finding(output, "Extension of photo.jpg").severity is Severity.LOW
    assert _finding(output, "Extension of broken.docx").severity is Severity.LOW
    assert output.data["mismatched"] == ["photo.jpg", "broken.docx"]


async def test_double_extension_and_bidi_override_names_are_medium() -> None:
    output = await _triage(
        ("scan.pdf.exe", samples.pe()), ("cod\u202egpj.exe", samples.pe()), ("a.tar.gz", gzip.compress(b"x"))
    )

    double = _finding(output, "Double extension")
    assert double.severity is Severity.MEDIUM
    assert _cited(output, double)[0].location == "scan.pdf.exe"
    bidi = _finding(output, "Bidirectional control character")
    assert bidi.severity is Severity.MEDIUM
    assert "\\u202e" in bidi.title  # The control character is shown escaped, never raw.
    assert "\u202e" not in json.dumps(
        [o.summary for o in output.observations] + [f.title for f in output.findings]
    )
    assert not [f for f in output.findings if "a.tar.gz" in f.title]


async def test_random_data_is_flagged_as_encrypted_or_compressed() -> None:
    output = await _triage(("blob.bin", samples.random_bytes(65536)))

    finding = _finding(output, "Unidentified high-entropy data")
    assert finding.severity is Severity.LOW
    summary, ranges = _cited(output, finding)
    assert summary.data["entropy"] > HIGH_ENTROPY
    assert summary.data["high_entropy_blocks"] == 16
    assert ranges.location == "blob.bin@0x0"
    (region,) = ranges.data["ranges"]
    assert (region["start"], region["end"]) == (0, 65536)
    assert region["peak"] > 7.9


async def test_packed_executable_is_medium_and_a_high_entropy_region_is_low() -> None:
    region_start = 0x5000
    plain = b"A" * (region_start - len(samples.pe()))
    region_exe = samples.pe(plain + samples.random_bytes(8192) + b"B" * 20000)
    output = await _triage(
        ("packed.exe", samples.pe(b"UPX!" + samples.random_bytes(65536))),
        ("region.exe", region_exe),
    )

    packed = _finding(output, "Packed or encrypted PE executable")
    assert packed.severity is Severity.MEDIUM
    first = _cited(output, packed)[0]
    assert first.location == "packed.exe"
    assert first.data["packer"] == "UPX"
    assert "UPX packer" in packed.description
    region = _finding(output, "High-entropy region")
    assert region.severity is Severity.LOW
    summary, ranges = _cited(output, region)
    assert summary.data["entropy"] < HIGH_ENTROPY
    assert ranges.location == f"region.exe@0x{region_start:x}"
    assert ranges.data["ranges"][0]["start"] == region_start
    assert ranges.data["ranges"][0]["end"] == region_start + 8192


async def test_compressed_formats_and_small_files_are_not_called_packed() -> None:
    output = await _triage(
        ("archive.gz", gzip.compress(samples.random_bytes(65536))),
        ("tiny.bin", samples.random_bytes(600)),
        ("image.png", samples.png(texts=[], trailer=b"")),
    )

    assert not [f for f in output.findings if "entropy" in f.title.lower() or "Packed" in f.title]
    assert output.data["high_entropy"] == []


async def test_block_size_argument_and_profile() -> None:
    output = await _triage(("blob.bin", samples.random_bytes(8192)), block_size=1024)

    observation = output.observations[0]
    assert observation.data["block_size"] == 1024
    assert observation.data["blocks"] == 8
    assert len(observation.data["block_entropy_profile"]) == 8
    with pytest.raises(ToolError, match="invalid arguments"):
        await _triage(("blob.bin", b"x"), block_size=10)


async def test_bytecode_and_scripts_are_info() -> None:
    output = await _triage(("run.sh", "#!/bin/sh\necho hi\n"), ("Main.class", _class_file()))

    assert {f.severity for f in output.findings} == {Severity.INFO}
    assert len(output.findings) == 2


async def test_file_selection_by_name() -> None:
    files = (("a.bin", samples.elf()), ("b.bin", samples.pe()))
    output = await _triage(*files, files=["b.bin"])

    assert [o.location for o in output.observations] == ["b.bin"]
    with pytest.raises(ToolError, match=r"no uploaded file named missing\.bin"):
        await _triage(*files, files=["missing.bin"])


def test_forensics_module_exports_the_four_tools() -> None:
    tools = [FileTriageTool(), StringsTool(), ArchiveListingTool(), MediaMetadataTool()]

    assert [t.name for t in tools] == ["file_triage", "strings_extract", "archive_listing", "media_metadata"]
    for tool in tools:
        assert tool.description
        assert tool.json_schema()["type"] == "object"
        assert "files" in tool.json_schema()["properties"]


@pytest.fixture
def audit_log() -> Iterator[list[tuple[str, str]]]:
    """Audit events (file opens, process starts, dynamic loads) raised while the test is armed.

    An audit hook cannot be removed, so it stays installed and only records while `_ARMED` is set.
    """
    events: list[tuple[str, str]] = []
    _AUDIT["events"] = events
    _install_audit_hook()
    yield events
    _AUDIT["events"] = None


_AUDIT: dict[str, Any] = {"events": None, "installed": False}
_WATCHED = ("open", "os.", "subprocess.", "shutil.", "ctypes.", "tempfile.", "pty.", "socket.", "mmap.")
_LOCK = threading.Lock()


def _install_audit_hook() -> None:
    with _LOCK:
        if _AUDIT["installed"]:
            return

        def hook(event: str, args: tuple[Any, ...]) -> None:
            events = _AUDIT["events"]
            if events is not None and event.startswith(_WATCHED):
                events.append((event, repr(args)[:200]))

        sys.addaudithook(hook)
        _AUDIT["installed"] = True


async def test_tools_never_write_extract_or_execute_anything(audit_log: list[tuple[str, str]]) -> None:
    inputs = samples.ctx(
        ("invoice.pdf", samples.pe()),
        ("dropper.exe", samples.dropper()),
        ("evil.zip", samples.evil_zip()),
        ("pkg.tar.gz", samples.script_tarball()),
        ("photo.jpg", samples.jpeg(samples.gps_tiff())),
        ("shot.png", samples.png()),
        ("bad.pdf", samples.malicious_pdf()),
    )
    tools = [FileTriageTool(), StringsTool(), ArchiveListingTool(), MediaMetadataTool()]
    for tool in tools:  # A first pass, unwatched, lets lazy imports (codecs...) read their modules.
        await tool.run({}, inputs)
    audit_log.clear()

    outputs = [(await tool.run({}, inputs))[0] for tool in tools]

    assert audit_log == []
    assert all(output.observations for output in outputs)
    json.dumps([o.data for output in outputs for o in output.observations])  # Serialisable.


def test_audit_hook_sees_what_the_tools_must_not_do(audit_log: list[tuple[str, str]]) -> None:
    """The guard of the test above works: opening a file is recorded."""
    with open(__file__, "rb") as handle:
        handle.read(1)
    assert any(event == "open" for event, _ in audit_log)
