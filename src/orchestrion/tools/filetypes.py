"""File type identification by magic bytes, and byte entropy.

Signature table (offset: bytes → type), checked in this order; the first match wins:

==================  ============================================  ======================================
Type                Signature                                     Refinement
==================  ============================================  ======================================
Empty               no bytes at all
ELF                 0: ``7F 45 4C 46``                            class, byte order, e_type, e_machine
PE / DOS MZ         0: ``MZ``                                     ``PE\\0\\0`` at e_lfanew: PE32/PE32+,
                                                                  DLL, machine, .NET; else DOS MZ
Mach-O              0: ``FEEDFACE``, ``FEEDFACF``, ``CEFAEDFE``,  32/64-bit, byte order
                    ``CFFAEDFE``
Mach-O universal /  0: ``CAFEBABE``                               next u32 < 45: fat Mach-O (arch
Java class                                                        count), else class (major version)
ZIP                 0: ``PK\\3\\4``, ``PK\\5\\6``, ``PK\\7\\8``   inner names: docx/xlsx/pptx
                                                                  (``[Content_Types].xml`` + ``word/``,
                                                                  ``xl/``, ``ppt/``), apk
                                                                  (``AndroidManifest.xml`` +
                                                                  ``classes.dex``), odt/ods/odp/epub
                                                                  (``mimetype`` entry), whl
                                                                  (``*.dist-info/WHEEL``), jar
                                                                  (``META-INF/MANIFEST.MF``/``.class``)
RIFF                0: ``RIFF``, 8: ``WEBP`` / ``WAVE`` / ``AVI ``
Android DEX         0: ``dex\\n``
WebAssembly         0: ``\\0asm``
Windows shortcut    0: ``4C 00 00 00 01 14 02 00``
gzip, bzip2, xz     0: ``1F 8B``; ``BZh``; ``FD 37 7A 58 5A 00``
zstd, 7z, RAR       0: ``28 B5 2F FD``; ``37 7A BC AF 27 1C``;
                    ``Rar!\\x1a\\x07``
CAB                 0: ``MSCF``
tar                 257: ``ustar``
ISO 9660            0x8001: ``CD001``
OLE2 compound       0: ``D0 CF 11 E0 A1 B1 1A E1``                 (doc, xls, ppt, msi, msg)
RTF                 0: ``{\\rtf``
PNG, JPEG, GIF      0: ``89 PNG\\r\\n\\x1a\\n``; ``FF D8 FF``;
                    ``GIF87a``/``GIF89a``
TIFF                0: ``II*\\0`` / ``MM\\0*``
MP4, MP3            4: ``ftyp``; 0: ``ID3``
SQLite 3            0: ``SQLite format 3\\0``
PDF                 ``%PDF-`` in the first 1024 bytes             header version
Python bytecode     0: u16 LE magic in 3000..3999 or 62211,       the magic number
                    then ``\\r\\n``
Script              0: ``#!``                                     interpreter from the shebang line
Text                no NUL; UTF-8 (or a UTF-16 BOM); 95% printable in the first 8 KiB
Data                anything else
==================  ============================================  ======================================
"""

from __future__ import annotations

import enum
import io
import math
import re
import struct
import zipfile
from collections import Counter
from dataclasses import dataclass

__all__ = [
    "RUNNABLE_EXTENSIONS",
    "TYPES",
    "Category",
    "Detection",
    "FileType",
    "block_entropies",
    "byte_entropy",
    "detect_type",
    "expected_types",
    "extension_of",
]


class Category(enum.StrEnum):
    """Broad kind of a file type."""

    EXECUTABLE = "executable"
    BYTECODE = "bytecode"
    SCRIPT = "script"
    ARCHIVE = "archive"
    COMPRESSED = "compressed"
    DOCUMENT = "document"
    IMAGE = "image"
    MEDIA = "media"
    DATABASE = "database"
    TEXT = "text"
    DATA = "data"


@dataclass(frozen=True, kw_only=True)
class FileType:
    """A type the table can detect.

    Attributes:
        id: Short stable identifier (``"pe"``, ``"docx"``).
        label: Human name.
        category: Broad kind.
        extensions: Extensions (lower case, no dot) files of this type usually carry.
        family: The container a subtype lives in (``"zip"`` for docx), so ``.zip`` fits a docx.
        runnable: Code a machine or interpreter can run directly.
    """

    id: str
    label: str
    category: Category
    extensions: frozenset[str]
    family: str | None = None
    runnable: bool = False


@dataclass(frozen=True, kw_only=True)
class Detection:
    """What `detect_type` concluded: the type and details read from its headers."""

    type: FileType
    detail: str = ""


def _t(
    id: str,
    label: str,
    category: Category,
    extensions: str,
    *,
    family: str | None = None,
    runnable: bool = False,
) -> FileType:
    return FileType(
        id=id,
        label=label,
        category=category,
        extensions=frozenset(extensions.split()),
        family=family,
        runnable=runnable,
    )


_C = Category
_TEXT_EXTENSIONS = (
    "txt csv tsv log json jsonl xml html htm md rst yaml yml ini cfg conf toml js mjs ts ps1 psm1 bat cmd "
    "vbs py sh bash rb pl php c h cpp java go rs sql svg eml css hta wsf reg url"
)
TYPES: dict[str, FileType] = {
    t.id: t
    for t in (
        _t("elf", "ELF executable", _C.EXECUTABLE, "so o ko elf axf out", runnable=True),
        _t(
            "pe",
            "PE executable (Windows)",
            _C.EXECUTABLE,
            "exe dll sys scr com ocx cpl efi drv",
            runnable=True,
        ),
        _t("mz", "DOS MZ executable", _C.EXECUTABLE, "exe com", runnable=True),
        _t("macho", "Mach-O executable", _C.EXECUTABLE, "dylib bundle o", runnable=True),
        _t("macho_fat", "Mach-O universal binary", _C.EXECUTABLE, "dylib bundle", runnable=True),
        _t("class", "Java class file", _C.BYTECODE, "class", runnable=True),
        _t("dex", "Android DEX bytecode", _C.BYTECODE, "dex", runnable=True),
        _t("wasm", "WebAssembly module", _C.BYTECODE, "wasm", runnable=True),
        _t("pyc", "Python bytecode", _C.BYTECODE, "pyc pyo", runnable=True),
        _t("lnk", "Windows shortcut", _C.EXECUTABLE, "lnk", runnable=True),
        _t("script", "script with a shebang", _C.SCRIPT, "sh bash zsh ksh py pl rb php js", runnable=True),
        _t("zip", "ZIP archive", _C.ARCHIVE, "zip"),
        _t("docx", "Word document (OOXML)", _C.DOCUMENT, "docx docm dotx", family="zip"),
        _t("xlsx", "Excel workbook (OOXML)", _C.DOCUMENT, "xlsx xlsm xltx", family="zip"),
        _t("pptx", "PowerPoint presentation (OOXML)", _C.DOCUMENT, "pptx pptm", family="zip"),
        _t("odt", "OpenDocument text", _C.DOCUMENT, "odt", family="zip"),
        _t("ods", "OpenDocument spreadsheet", _C.DOCUMENT, "ods", family="zip"),
        _t("odp", "OpenDocument presentation", _C.DOCUMENT, "odp", family="zip"),
        _t("epub", "EPUB book", _C.DOCUMENT, "epub", family="zip"),
        _t("jar", "Java archive", _C.ARCHIVE, "jar war ear", family="zip", runnable=True),
        _t("apk", "Android package", _C.ARCHIVE, "apk", family="zip", runnable=True),
        _t("whl", "Python wheel", _C.ARCHIVE, "whl", family="zip"),
        _t("gzip", "gzip compressed data", _C.COMPRESSED, "gz tgz"),
        _t("bzip2", "bzip2 compressed data", _C.COMPRESSED, "bz2 tbz tbz2"),
        _t("xz", "xz compressed data", _C.COMPRESSED, "xz txz"),
        _t("zstd", "Zstandard compressed data", _C.COMPRESSED, "zst"),
        _t("7z", "7-Zip archive", _C.ARCHIVE, "7z"),
        _t("rar", "RAR archive", _C.ARCHIVE, "rar"),
        _t("cab", "Microsoft cabinet", _C.ARCHIVE, "cab"),
        _t("tar", "tar archive", _C.ARCHIVE, "tar"),
        _t("iso", "ISO 9660 disk image", _C.ARCHIVE, "iso img"),
        _t("pdf", "PDF document", _C.DOCUMENT, "pdf"),
        _t("ole", "OLE2 compound document", _C.DOCUMENT, "doc xls ppt msi msg dot xlt pot"),
        _t("rtf", "RTF document", _C.DOCUMENT, "rtf doc"),
        _t("png", "PNG image", _C.IMAGE, "png"),
        _t("jpeg", "JPEG image", _C.IMAGE, "jpg jpeg jpe jfif"),
        _t("gif", "GIF image", _C.IMAGE, "gif"),
        _t("tiff", "TIFF image", _C.IMAGE, "tif tiff dng"),
        _t("webp", "WebP image", _C.IMAGE, "webp"),
        _t("wav", "WAVE audio", _C.MEDIA, "wav"),
        _t("avi", "AVI video", _C.MEDIA, "avi"),
        _t("mp4", "MP4/QuickTime media", _C.MEDIA, "mp4 m4a m4v mov 3gp heic heif avif"),
        _t("mp3", "MP3 audio (ID3)", _C.MEDIA, "mp3"),
        _t("sqlite", "SQLite 3 database", _C.DATABASE, "sqlite sqlite3 db"),
        _t("text", "text", _C.TEXT, _TEXT_EXTENSIONS),
        _t("data", "data (unrecognised)", _C.DATA, ""),
        _t("empty", "empty file", _C.DATA, ""),
    )
}

# Extensions Windows or a Unix shell will run or open with an interpreter; used for archive members.
RUNNABLE_EXTENSIONS = frozenset(
    "exe dll scr com pif cpl sys msi msp ocx bat cmd ps1 psm1 vbs vbe js jse wsf wsh hta lnk jar apk "
    "sh bash zsh ksh py pyc pl rb php elf so dylib app deb rpm reg scf iso".split()
)

_SIMPLE: tuple[tuple[int, bytes, str], ...] = (
    (0, b"dex\n", "dex"),
    (0, b"\x00asm", "wasm"),
    (0, b"L\x00\x00\x00\x01\x14\x02\x00", "lnk"),
    (0, b"\x1f\x8b", "gzip"),
    (0, b"BZh", "bzip2"),
    (0, b"\xfd7zXZ\x00", "xz"),
    (0, b"\x28\xb5\x2f\xfd", "zstd"),
    (0, b"7z\xbc\xaf\x27\x1c", "7z"),
    (0, b"Rar!\x1a\x07", "rar"),
    (0, b"MSCF", "cab"),
    (257, b"ustar", "tar"),
    (0x8001, b"CD001", "iso"),
    (0, b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "ole"),
    (0, b"{\\rtf", "rtf"),
    (0, b"\x89PNG\r\n\x1a\n", "png"),
    (0, b"\xff\xd8\xff", "jpeg"),
    (0, b"GIF87a", "gif"),
    (0, b"GIF89a", "gif"),
    (0, b"II*\x00", "tiff"),
    (0, b"MM\x00*", "tiff"),
    (4, b"ftyp", "mp4"),
    (0, b"ID3", "mp3"),
    (0, b"SQLite format 3\x00", "sqlite"),
)
_RIFF = {b"WEBP": "webp", b"WAVE": "wav", b"AVI ": "avi"}
_MACHO = {
    b"\xfe\xed\xfa\xce": "32-bit big-endian",
    b"\xfe\xed\xfa\xcf": "64-bit big-endian",
    b"\xce\xfa\xed\xfe": "32-bit little-endian",
    b"\xcf\xfa\xed\xfe": "64-bit little-endian",
}
_ELF_TYPES = {1: "relocatable", 2: "executable", 3: "shared object", 4: "core dump"}
_ELF_MACHINES = {
    3: "x86",
    8: "MIPS",
    20: "PowerPC",
    21: "PowerPC64",
    40: "ARM",
    62: "x86-64",
    183: "AArch64",
    243: "RISC-V",
}
_PE_MACHINES = {0x14C: "x86", 0x8664: "x86-64", 0x1C0: "ARM", 0x1C4: "ARMv7", 0xAA64: "ARM64"}
_ODF_MIMETYPES = {
    b"application/vnd.oasis.opendocument.text": "odt",
    b"application/vnd.oasis.opendocument.spreadsheet": "ods",
    b"application/vnd.oasis.opendocument.presentation": "odp",
    b"application/epub+zip": "epub",
}
_SHEBANG = re.compile(rb"#!\s*(\S+)(?:[ \t]+(\S+))?")
_ZIP_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError, RuntimeError)


def detect_type(data: bytes) -> Detection:
    """Identify `data` by its magic bytes (see the module docstring for the table)."""
    if not data:
        return Detection(type=TYPES["empty"])
    head = data[:8]
    if head.startswith(b"\x7fELF"):
        return Detection(type=TYPES["elf"], detail=_elf_detail(data))
    if head.startswith(b"MZ"):
        return _pe(data)
    if head[:4] in _MACHO:
        return Detection(type=TYPES["macho"], detail=_MACHO[head[:4]])
    if head.startswith(b"\xca\xfe\xba\xbe") and len(data) >= 8:
        # Both formats share this magic; `file` tells them apart the same way: a fat header counts
        # architectures (a handful), a class file stores its major version (45 and up) there.
        value = struct.unpack(">I", data[4:8])[0]
        if value < 45:
            return Detection(type=TYPES["macho_fat"], detail=f"{value} architectures")
        return Detection(type=TYPES["class"], detail=f"class file version {value & 0xFFFF}")
    if head[:4] in (b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08"):
        return Detection(type=TYPES[_zip_subtype(data)])
    if head.startswith(b"RIFF") and data[8:12] in _RIFF:
        return Detection(type=TYPES[_RIFF[data[8:12]]])
    for offset, magic, type_id in _SIMPLE:
        if data[offset : offset + len(magic)] == magic:
            return Detection(type=TYPES[type_id])
    if b"%PDF-" in data[:1024]:
        return Detection(type=TYPES["pdf"], detail=_pdf_version(data))
    if _is_pyc(data):
        return Detection(type=TYPES["pyc"], detail=f"magic {int.from_bytes(data[:2], 'little')}")
    if head.startswith(b"#!"):
        return Detection(type=TYPES["script"], detail=_interpreter(data))
    if _is_text(data):
        return Detection(type=TYPES["text"])
    return Detection(type=TYPES["data"])


def extension_of(name: str) -> str:
    """The last extension of a file name, lower case without the dot ("" when there is none)."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    if "." not in base.strip("."):
        return ""
    return base.rsplit(".", 1)[-1].strip().lower()


def expected_types(extension: str) -> list[FileType]:
    """The types whose files usually carry `extension` (empty for an extension nobody claims)."""
    if not extension:
        return []
    return [t for t in TYPES.values() if extension in t.extensions]


def byte_entropy(counts: Counter[int], total: int) -> float:
    """Shannon entropy in bits per byte (0 to 8) of a byte histogram."""
    if total <= 0:
        return 0.0
    return -sum(n / total * math.log2(n / total) for n in counts.values())


def block_entropies(data: bytes, block_size: int) -> tuple[float, list[float]]:
    """The entropy of `data` and of each `block_size` block, from one pass over the bytes."""
    overall: Counter[int] = Counter()
    blocks: list[float] = []
    for start in range(0, len(data), block_size):
        block = data[start : start + block_size]
        counts = Counter(block)
        overall.update(counts)
        blocks.append(byte_entropy(counts, len(block)))
    return byte_entropy(overall, len(data)), blocks


def _elf_detail(data: bytes) -> str:
    if len(data) < 20:
        return "truncated header"
    bits = {1: "32-bit", 2: "64-bit"}.get(data[4], "unknown class")
    order = {1: "<", 2: ">"}.get(data[5], "<")
    e_type, machine = struct.unpack(f"{order}HH", data[16:20])
    kind = _ELF_TYPES.get(e_type, f"type {e_type}")
    arch = _ELF_MACHINES.get(machine, f"machine {machine}")
    return f"{bits} {'LSB' if order == '<' else 'MSB'} {kind}, {arch}"


def _pe(data: bytes) -> Detection:
    if len(data) >= 0x40:
        offset = struct.unpack("<I", data[0x3C:0x40])[0]
        if 0x40 <= offset <= len(data) - 26 and data[offset : offset + 4] == b"PE\x00\x00":
            machine, characteristics = struct.unpack("<H16xH", data[offset + 4 : offset + 24])
            magic = struct.unpack("<H", data[offset + 24 : offset + 26])[0]
            kind = {0x10B: "PE32", 0x20B: "PE32+"}.get(magic, "PE")
            parts = [kind, "DLL" if characteristics & 0x2000 else "executable"]
            parts.append(_PE_MACHINES.get(machine, f"machine 0x{machine:x}"))
            if _has_clr_header(data, offset + 24, magic):
                parts.append(".NET assembly")
            return Detection(type=TYPES["pe"], detail=", ".join(parts))
    return Detection(type=TYPES["mz"])


def _has_clr_header(data: bytes, optional: int, magic: int) -> bool:
    """Whether data directory 14 (the CLR runtime header) is set: a .NET assembly."""
    directory = optional + (96 if magic == 0x10B else 112) + 14 * 8
    if directory + 8 > len(data):
        return False
    rva, size = struct.unpack("<II", data[directory : directory + 8])
    return bool(rva and size)


def _zip_subtype(data: bytes) -> str:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            infos = archive.infolist()
            names = {info.filename for info in infos}
            if "[Content_Types].xml" in names:
                for prefix, type_id in (("word/", "docx"), ("xl/", "xlsx"), ("ppt/", "pptx")):
                    if any(n.startswith(prefix) for n in names):
                        return type_id
            if "AndroidManifest.xml" in names and "classes.dex" in names:
                return "apk"
            if infos and infos[0].filename == "mimetype" and infos[0].file_size < 200:
                subtype = _ODF_MIMETYPES.get(archive.read(infos[0]).strip())
                if subtype:
                    return subtype
            if any(n.endswith(".dist-info/WHEEL") for n in names):
                return "whl"
            if "META-INF/MANIFEST.MF" in names or any(n.endswith(".class") for n in names):
                return "jar"
    except _ZIP_ERRORS:
        pass
    return "zip"


def _pdf_version(data: bytes) -> str:
    match = re.search(rb"%PDF-(\d\.\d)", data[:1024])
    return f"version {match.group(1).decode()}" if match else ""


def _is_pyc(data: bytes) -> bool:
    if len(data) < 8 or data[2:4] != b"\r\n":
        return False
    magic = int.from_bytes(data[:2], "little")
    return 3000 <= magic < 4000 or magic == 62211


def _interpreter(data: bytes) -> str:
    match = _SHEBANG.match(data[:256].split(b"\n", 1)[0])
    if not match:
        return ""
    program = match.group(1).decode("latin-1")
    if program.endswith("/env") and match.group(2):
        program = match.group(2).decode("latin-1")
    return f"interpreter {program}"


def _is_text(data: bytes) -> bool:
    sample = data[:8192]
    if sample.startswith((b"\xff\xfe", b"\xfe\xff")):
        return True
    if b"\x00" in sample:
        return False
    try:
        text = sample.decode("utf-8")
    except UnicodeDecodeError as exc:
        # The sample may end in the middle of a multi-byte character.
        if exc.start < len(sample) - 3:
            return False
        text = sample[: exc.start].decode("utf-8")
    if not text:
        return False
    printable = sum(c.isprintable() or c in "\t\r\n\f" for c in text)
    return printable / len(text) >= 0.95
