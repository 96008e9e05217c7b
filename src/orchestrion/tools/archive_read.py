"""Reading archive listings in memory: ZIP through its central directory, tar through a capped stream.

Nothing is extracted: a ZIP's sizes come from its central directory (no decompression), and only
the first `SNIFF_BYTES` of each entry are read to identify it. A compressed tar is decompressed as
a stream through `_CappedReader`, which stops after `MAX_DECOMPRESSED` bytes so that a bomb costs
bounded time and memory. Entries that are archives themselves are read (up to `NESTED_MAX_BYTES`)
so that the caller can list them one level down.
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import stat
import struct
import tarfile
import zipfile
import zlib
from collections import Counter
from dataclasses import dataclass, field
from typing import IO, Protocol

__all__ = [
    "MAX_DECOMPRESSED",
    "NESTED_MAX_BYTES",
    "SNIFF_BYTES",
    "ArchiveEntry",
    "ArchiveListing",
    "list_archive",
]

MAX_DECOMPRESSED = 64 * 1024 * 1024
NESTED_MAX_BYTES = 16 * 1024 * 1024
SNIFF_BYTES = 512
_LINK_MAX_BYTES = 4096
_STREAMS = {"gzip": "tar.gz", "bzip2": "tar.bz2", "xz": "tar.xz"}
_ERRORS = (
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    tarfile.TarError,
    lzma.LZMAError,
    zlib.error,
    OSError,
    EOFError,
    ValueError,
    NotImplementedError,
    RuntimeError,
)


class _Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


class _CapExceededError(Exception):
    """The decompressed stream grew past `MAX_DECOMPRESSED`."""


class _CappedReader:
    """A read-only stream that raises once more than `cap` bytes have been read through it."""

    def __init__(self, stream: _Readable, cap: int) -> None:
        self._stream = stream
        self._cap = cap
        self.consumed = 0

    def read(self, size: int = -1) -> bytes:
        # Never ask for more than one byte past the cap, so that nothing beyond it is decompressed.
        room = self._cap + 1 - self.consumed
        chunk = self._stream.read(room if size < 0 else min(size, room))
        self.consumed += len(chunk)
        if self.consumed > self._cap:
            raise _CapExceededError
        return chunk


@dataclass(frozen=True, kw_only=True)
class ArchiveEntry:
    """One member of an archive.

    Attributes:
        name: The member's path as stored (possibly hostile: ``../x``, ``/etc/x``).
        kind: ``file``, ``dir``, ``symlink``, ``hardlink`` or ``other`` (devices, FIFOs).
        size: Uncompressed size the archive declares.
        compressed: Compressed size (ZIP only).
        encrypted: The entry is encrypted (ZIP flag bit 0) and could not be read.
        mode: Unix permission bits, when stored.
        link: Target of a symlink or hard link.
        head: The first `SNIFF_BYTES` of a regular file's content.
        content: The whole content, kept only for nested archives.
    """

    name: str
    kind: str
    size: int
    compressed: int | None = None
    encrypted: bool = False
    mode: int | None = None
    link: str | None = None
    head: bytes = b""
    content: bytes | None = None


@dataclass(kw_only=True)
class ArchiveListing:
    """The entries of one archive and what stopped the listing early, if anything."""

    format: str
    compressed_size: int
    entries: list[ArchiveEntry] = field(default_factory=list)
    total_entries: int = 0
    truncated: bool = False
    decompressed: int = 0
    decompression_capped: bool = False
    overlapping_entries: int = 0
    error: str | None = None


class IsArchive(Protocol):
    """Whether an entry named `name` starting with `head` is an archive worth listing."""

    def __call__(self, name: str, head: bytes, /) -> bool: ...


def list_archive(
    data: bytes, type_id: str, *, max_entries: int, want_content: bool, is_archive: IsArchive
) -> ArchiveListing:
    """List the archive in `data`, detected as `type_id` (zip family, tar, gzip, bzip2 or xz).

    Args:
        data: The archive's bytes.
        type_id: `filetypes.detect_type`'s id for it.
        max_entries: Most entries to read; the rest are counted when the format allows.
        want_content: Keep the content of entries `is_archive` accepts (for one nested level).
        is_archive: Decides from a name and the first bytes whether an entry is an archive.
    """
    if type_id in _STREAMS:
        return _list_stream(
            data, type_id, max_entries=max_entries, want_content=want_content, is_archive=is_archive
        )
    if type_id == "tar":
        return _list_tar(io.BytesIO(data), "tar", len(data), max_entries, want_content, is_archive)
    return _list_zip(data, max_entries=max_entries, want_content=want_content, is_archive=is_archive)


def _list_zip(data: bytes, *, max_entries: int, want_content: bool, is_archive: IsArchive) -> ArchiveListing:
    listing = ArchiveListing(format="zip", compressed_size=len(data))
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            infos = archive.infolist()
            listing.total_entries = len(infos)
            listing.truncated = len(infos) > max_entries
            # Several central-directory records pointing at one local header is the trick of
            # "non-recursive" zip bombs: one compressed kernel counted many times.
            offsets = Counter(info.header_offset for info in infos)
            listing.overlapping_entries = sum(n - 1 for n in offsets.values() if n > 1)
            for info in infos[:max_entries]:
                listing.entries.append(_zip_entry(archive, info, want_content, is_archive))
    except _ERRORS as exc:
        listing.error = _describe(exc)
    return listing


def _zip_entry(
    archive: zipfile.ZipFile, info: zipfile.ZipInfo, want_content: bool, is_archive: IsArchive
) -> ArchiveEntry:
    mode = info.external_attr >> 16
    encrypted = bool(info.flag_bits & 0x1)
    kind = "symlink" if stat.S_ISLNK(mode) else "dir" if info.is_dir() else "file"
    head, link, content = b"", None, None
    if not encrypted and kind != "dir":
        try:
            with archive.open(info) as stream:
                head = stream.read(_LINK_MAX_BYTES if kind == "symlink" else SNIFF_BYTES)
                if kind == "symlink":
                    link, head = head.decode("utf-8", "replace"), b""
                elif want_content and info.file_size <= NESTED_MAX_BYTES and is_archive(info.filename, head):
                    rest = stream.read(NESTED_MAX_BYTES + 1 - len(head))
                    if len(head) + len(rest) <= NESTED_MAX_BYTES:
                        content = head + rest
        except _ERRORS:
            pass
    return ArchiveEntry(
        name=info.filename,
        kind=kind,
        size=info.file_size,
        compressed=info.compress_size,
        encrypted=encrypted,
        mode=stat.S_IMODE(mode) if mode else None,
        link=link,
        head=head,
        content=content,
    )


def _list_stream(
    data: bytes, type_id: str, *, max_entries: int, want_content: bool, is_archive: IsArchive
) -> ArchiveListing:
    """A gzip/bzip2/xz file: a compressed tar, or else a single compressed file."""
    with _decompressor(data, type_id) as stream:
        listing = _list_tar(stream, _STREAMS[type_id], len(data), max_entries, want_content, is_archive)
    if listing.entries or listing.decompression_capped:
        return listing
    # Not a tar: measure the one compressed file without keeping it.
    single = ArchiveListing(format=type_id, compressed_size=len(data), total_entries=1)
    head = b""
    with _decompressor(data, type_id) as stream:
        reader = _CappedReader(stream, MAX_DECOMPRESSED)
        try:
            head = reader.read(SNIFF_BYTES)
            while reader.read(1024 * 1024):
                pass
        except _CapExceededError:
            single.decompression_capped = True
        except _ERRORS as exc:
            single.error = _describe(exc)
        single.decompressed = reader.consumed
    name = _gzip_name(data) if type_id == "gzip" else None
    single.entries.append(
        ArchiveEntry(name=name or "(compressed content)", kind="file", size=reader.consumed, head=head)
    )
    return single


def _list_tar(
    stream: _Readable,
    format: str,
    compressed_size: int,
    max_entries: int,
    want_content: bool,
    is_archive: IsArchive,
) -> ArchiveListing:
    listing = ArchiveListing(format=format, compressed_size=compressed_size)
    reader = _CappedReader(stream, MAX_DECOMPRESSED)
    try:
        # Stream mode ("r|") reads strictly forward, so the cap bounds all the work done.
        with tarfile.open(fileobj=reader, mode="r|") as archive:  # type: ignore[call-overload]
            for member in archive:
                listing.total_entries += 1
                if len(listing.entries) >= max_entries:
                    listing.truncated = True
                    break
                listing.entries.append(_tar_entry(archive, member, want_content, is_archive))
    except _CapExceededError:
        listing.decompression_capped = True
    except _ERRORS as exc:
        listing.error = _describe(exc)
    listing.decompressed = reader.consumed
    return listing


def _tar_entry(
    archive: tarfile.TarFile, member: tarfile.TarInfo, want_content: bool, is_archive: IsArchive
) -> ArchiveEntry:
    if member.isfile():
        kind = "file"
    elif member.isdir():
        kind = "dir"
    elif member.issym():
        kind = "symlink"
    elif member.islnk():
        kind = "hardlink"
    else:
        kind = "other"
    head, content = b"", None
    if kind == "file":
        extracted: IO[bytes] | None = archive.extractfile(member)
        if extracted is not None:
            head = extracted.read(SNIFF_BYTES)
            if want_content and member.size <= NESTED_MAX_BYTES and is_archive(member.name, head):
                content = head + extracted.read(NESTED_MAX_BYTES - len(head))
    return ArchiveEntry(
        name=member.name,
        kind=kind,
        size=member.size,
        mode=member.mode,
        link=member.linkname or None,
        head=head,
        content=content,
    )


def _decompressor(data: bytes, type_id: str) -> gzip.GzipFile | bz2.BZ2File | lzma.LZMAFile:
    raw = io.BytesIO(data)
    if type_id == "gzip":
        return gzip.GzipFile(fileobj=raw, mode="rb")
    if type_id == "bzip2":
        return bz2.BZ2File(raw, mode="rb")
    return lzma.LZMAFile(raw, mode="rb")


def _gzip_name(data: bytes) -> str | None:
    """The original file name a gzip header may store (FNAME flag)."""
    if len(data) < 10 or not data[3] & 0x08:
        return None
    position = 10
    if data[3] & 0x04 and len(data) >= 12:  # FEXTRA comes first.
        position += 2 + struct.unpack("<H", data[10:12])[0]
    end = data.find(b"\x00", position, position + 1024)
    return data[position:end].decode("latin-1") if end > position else None


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:200]
