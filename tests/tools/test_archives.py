from __future__ import annotations

import gzip
import tarfile
from typing import Any

import pytest

from orchestrion.domain.findings import Severity
from orchestrion.tools import archive_read
from orchestrion.tools.archives import ArchiveListingTool
from orchestrion.tools.base import ToolOutput
from tests.tools import forensics_samples as samples


async def _list(*files: tuple[str, bytes | str], **args: Any) -> ToolOutput:
    output, _ = await ArchiveListingTool().run(args, samples.ctx(*files))
    return output


def _at(output: ToolOutput, location: str) -> Any:
    return next(o for o in output.observations if o.location == location)


def _finding(output: ToolOutput, words: str) -> Any:
    return next(f for f in output.findings if words in f.title)


def _cited(output: ToolOutput, finding: Any) -> list[str | None]:
    return [output.observations[i].location for i in finding.observation_indexes]


async def test_zip_listing_reports_names_sizes_and_ratio() -> None:
    output = await _list(("evil.zip", samples.evil_zip()))

    summary = _at(output, "evil.zip")
    assert summary.data["format"] == "zip"
    assert summary.data["entries"] == 6
    assert summary.data["truncated"] is False
    assert summary.data["encrypted"] == 1
    assert summary.data["ratio"] > 900
    names = [e["name"] for e in summary.data["listing"]]
    assert names == [
        "../evil.sh",
        "/etc/cron.d/backdoor",
        "zeros.bin",
        "secret/notes.txt",
        "inner.zip",
        "docs/report.txt",
    ]
    zeros = summary.data["listing"][2]
    assert zeros["size"] == 20 * 1024 * 1024
    assert zeros["compressed"] < zeros["size"] / 100


async def test_path_traversal_entries_are_high() -> None:
    output = await _list(("evil.zip", samples.evil_zip()))

    finding = _finding(output, "Path traversal in archive evil.zip")
    assert finding.severity is Severity.HIGH
    assert _cited(output, finding) == ["evil.zip!../evil.sh", "evil.zip!/etc/cron.d/backdoor"]
    assert _at(output, "evil.zip!../evil.sh").data["path_problem"] == "traversal"
    assert _at(output, "evil.zip!/etc/cron.d/backdoor").data["path_problem"] == "absolute"


async def test_bomb_ratio_is_high_and_cites_the_entry() -> None:
    output = await _list(("evil.zip", samples.evil_zip()))

    finding = _finding(output, "Decompression bomb in archive evil.zip")
    assert finding.severity is Severity.HIGH
    assert _cited(output, finding) == ["evil.zip", "evil.zip!zeros.bin"]
    entry = _at(output, "evil.zip!zeros.bin")
    assert entry.data["problems"] == ["bomb"]
    assert entry.data["ratio"] > 100


async def test_scripts_executables_encrypted_and_nested_archives() -> None:
    output = await _list(("evil.zip", samples.evil_zip()))

    script = _finding(output, "Executables or scripts inside archive evil.zip")
    assert script.severity is Severity.MEDIUM
    assert _cited(output, script) == ["evil.zip!../evil.sh"]
    assert _at(output, "evil.zip!../evil.sh").data["content_type"] == "script"
    encrypted = _finding(output, "Encrypted entries")
    assert encrypted.severity is Severity.LOW
    assert _cited(output, encrypted) == ["evil.zip!secret/notes.txt"]
    assert _at(output, "evil.zip!inner.zip").data["problems"] == ["nested_archive"]
    nested = _at(output, "evil.zip!inner.zip!payload.exe")
    assert nested.data["content_type"] == "pe"
    inner = _finding(output, "Executables or scripts inside archive evil.zip!inner.zip")
    assert _cited(output, inner) == ["evil.zip!inner.zip!payload.exe"]
    assert "docs/report.txt" not in str([o.location for o in output.observations])


async def test_nested_archives_are_listed_one_level_only() -> None:
    level2 = samples.zip_bytes([("deep.exe", samples.pe())])
    level1 = samples.zip_bytes([("level2.zip", level2)])
    output = await _list(("outer.zip", samples.zip_bytes([("level1.zip", level1)])))

    locations = [o.location for o in output.observations]
    assert "outer.zip!level1.zip" in locations
    assert not [loc for loc in locations if loc and "deep.exe" in loc]
    assert set(output.data["archives"]) == {"outer.zip", "outer.zip!level1.zip"}


@pytest.mark.parametrize(
    ("mode", "name", "format"),
    [
        ("w:gz", "pkg.tgz", "tar.gz"),
        ("w:bz2", "pkg.tar.bz2", "tar.bz2"),
        ("w:xz", "pkg.tar.xz", "tar.xz"),
        ("w", "pkg.tar", "tar"),
    ],
)
async def test_tarballs_with_a_script_and_an_escaping_symlink(mode: str, name: str, format: str) -> None:
    output = await _list((name, samples.script_tarball(mode)))

    summary = _at(output, name)
    assert summary.data["format"] == format
    assert summary.data["entries"] == 5
    assert [e["kind"] for e in summary.data["listing"]] == ["dir", "file", "file", "symlink", "symlink"]
    script = _finding(output, f"Executables or scripts inside archive {name}")
    assert script.severity is Severity.MEDIUM
    assert _cited(output, script) == [f"{name}!pkg/install.sh"]
    assert _at(output, f"{name}!pkg/install.sh").data["mode"] == "0o755"
    traversal = _finding(output, f"Path traversal in archive {name}")
    assert _cited(output, traversal) == [f"{name}!pkg/link"]
    assert _at(output, f"{name}!pkg/link").data["link"] == "../../../etc/passwd"
    assert f"{name}!pkg/ok-link" not in [o.location for o in output.observations]
    assert (summary.data["ratio"] is None) == (format == "tar")


async def test_tar_hard_links_and_absolute_names() -> None:
    data = samples.tar_bytes(
        [
            (samples.tar_info("/etc/shadow"), b"root:x"),
            (samples.tar_info("hard", kind=tarfile.LNKTYPE, link="../../etc/passwd"), None),
            (samples.tar_info("fine", kind=tarfile.LNKTYPE, link="etc/shadow"), None),
        ]
    )
    output = await _list(("x.tar.gz", data))

    assert _cited(output, _finding(output, "Path traversal")) == ["x.tar.gz!/etc/shadow", "x.tar.gz!hard"]


async def test_compressed_single_file_is_measured() -> None:
    output = await _list(("notes.txt.gz", gzip.compress(b"hello " * 1000)))

    summary = _at(output, "notes.txt.gz")
    assert summary.data["format"] == "gzip"
    assert summary.data["uncompressed_size"] == 6000
    assert summary.data["listing"] == [{"name": "(compressed content)", "kind": "file", "size": 6000}]
    assert not output.findings


async def test_gzip_header_name_is_used() -> None:
    import io

    buffer = io.BytesIO()
    with gzip.GzipFile(filename="secret.docx", fileobj=buffer, mode="wb") as stream:
        stream.write(b"content")
    output = await _list(("x.gz", buffer.getvalue()))

    assert _at(output, "x.gz").data["listing"][0]["name"] == "secret.docx"


async def test_tar_gz_bomb_stops_at_the_decompression_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(archive_read, "MAX_DECOMPRESSED", 1024 * 1024)
    data = samples.tar_bytes([(samples.tar_info("zeros"), b"\x00" * (4 * 1024 * 1024))])
    output = await _list(("bomb.tar.gz", data))

    summary = _at(output, "bomb.tar.gz")
    assert summary.data["decompression_capped"] is True
    assert summary.data["decompressed_bytes"] == 1024 * 1024 + 1
    assert summary.data["listing"][0]["size"] == 4 * 1024 * 1024
    finding = _finding(output, "Decompression bomb")
    assert finding.severity is Severity.HIGH
    assert _cited(output, finding)[0] == "bomb.tar.gz"


async def test_overlapping_zip_entries_are_a_bomb() -> None:
    data = bytearray(samples.zip_bytes([("a.txt", b"A" * 1000), ("b.txt", b"B" * 1000)], compression=0))
    # Point the second central-directory record at the first local header, as overlap bombs do.
    second = data.find(b"PK\x01\x02", data.find(b"PK\x01\x02") + 4)
    data[second + 42 : second + 46] = b"\x00\x00\x00\x00"
    output = await _list(("overlap.zip", bytes(data)))

    assert _at(output, "overlap.zip").data["overlapping_entries"] == 1
    assert _finding(output, "Decompression bomb").severity is Severity.HIGH


async def test_entry_cap_truncates_the_listing() -> None:
    data = samples.zip_bytes([(f"f{i:03d}.txt", b"x") for i in range(50)])
    output = await _list(("many.zip", data), max_entries=10)

    summary = _at(output, "many.zip")
    assert summary.data["entries"] == 50
    assert summary.data["entries_read"] == 10
    assert summary.data["truncated"] is True
    assert "stopped after 10 entries" in summary.summary
    tar = await _list(
        ("many.tar", samples.tar_bytes([(samples.tar_info(f"f{i}"), b"x") for i in range(30)], "w")),
        max_entries=5,
    )
    assert _at(tar, "many.tar").data["entries_read"] == 5
    assert _at(tar, "many.tar").data["truncated"] is True


async def test_small_compressible_files_are_not_bombs() -> None:
    output = await _list(("logs.zip", samples.zip_bytes([("a.log", b"\x00" * 100_000)])))

    assert _at(output, "logs.zip").data["ratio"] > 100
    assert not output.findings


async def test_non_archives_are_skipped_and_unsupported_formats_noted() -> None:
    output = await _list(
        ("a.txt", "hello"), ("b.7z", b"7z\xbc\xaf\x27\x1c" + b"\x00" * 30), ("c.zip", b"PK\x03\x04broken")
    )

    assert output.data["skipped_not_archives"] == ["a.txt"]
    assert _at(output, "b.7z").data["supported"] is False
    broken = _at(output, "c.zip")
    assert broken.data["error"].startswith("BadZipFile")
    assert not output.findings


async def test_entry_names_are_quoted_safely() -> None:
    output = await _list(("x.zip", samples.zip_bytes([("evil\nname\u202e.sh", b"#!/bin/sh\n")])))

    entry = next(o for o in output.observations if o.location and o.location.startswith("x.zip!"))
    assert "\n" not in entry.summary
    assert entry.location == "x.zip!evil\\x0aname\\u202e.sh"
