"""Image metadata without an imaging library: PNG chunks, JPEG segments, WebP chunks and TIFF.

Reads dimensions, PNG text chunks (tEXt, zTXt, iTXt; compressed ones inflated with a cap), EXIF
(through `orchestrion.tools.exif`), XMP fields, JPEG comments, and how many bytes follow the
image's end marker (data appended to an image hides payloads and makes polyglot files).
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field

from orchestrion.tools.exif import ExifData, ExifError, read_exif
from orchestrion.tools.pdfscan import xmp_fields

__all__ = ["ImageMetadata", "read_image"]

_MAX_CHUNKS = 10_000
_MAX_TEXTS = 50
_MAX_INFLATED = 64 * 1024
_XMP_PREFIX = b"http://ns.adobe.com/xap/1.0/\x00"
_SOF_MARKERS = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF})


@dataclass(kw_only=True)
class ImageMetadata:
    """What `read_image` found in one image.

    Attributes:
        format: ``png``, ``jpeg``, ``webp`` or ``tiff``.
        width: Pixels, when read.
        height: Pixels, when read.
        texts: Text chunks and comments as (key, text).
        exif: The EXIF tags, when present and readable.
        exif_error: Why EXIF could not be read, when it could not.
        xmp: Simple XMP fields.
        end_offset: Where the image's end marker ends (None when there is none).
        trailing_bytes: Bytes after that end marker.
        errors: Structural problems met while reading.
    """

    format: str
    width: int | None = None
    height: int | None = None
    texts: list[tuple[str, str]] = field(default_factory=list)
    exif: ExifData | None = None
    exif_error: str | None = None
    xmp: dict[str, str] = field(default_factory=dict)
    end_offset: int | None = None
    trailing_bytes: int = 0
    errors: list[str] = field(default_factory=list)


def read_image(data: bytes, type_id: str) -> ImageMetadata:
    """Read the metadata of an image `filetypes.detect_type` identified as `type_id`."""
    if type_id == "png":
        return _png(data)
    if type_id == "jpeg":
        return _jpeg(data)
    if type_id == "webp":
        return _webp(data)
    meta = ImageMetadata(format="tiff")
    _exif(meta, data)
    return meta


def _exif(meta: ImageMetadata, tiff: bytes) -> None:
    if tiff.startswith(b"Exif\x00\x00"):
        tiff = tiff[6:]
    try:
        meta.exif = read_exif(tiff)
    except (ExifError, struct.error) as exc:
        meta.exif_error = str(exc)


def _png(data: bytes) -> ImageMetadata:
    meta = ImageMetadata(format="png")
    position = 8
    for _ in range(_MAX_CHUNKS):
        if position + 12 > len(data):
            meta.errors.append("file ends before IEND")
            break
        length, kind = struct.unpack(">I4s", data[position : position + 8])
        body = data[position + 8 : position + 8 + length]
        if len(body) < length:
            meta.errors.append(f"truncated {kind.decode('latin-1')} chunk")
            break
        position += 12 + length
        if kind == b"IHDR" and length >= 8:
            meta.width, meta.height = struct.unpack(">II", body[:8])
        elif kind in (b"tEXt", b"zTXt", b"iTXt") and len(meta.texts) < _MAX_TEXTS:
            text = _png_text(kind, body)
            if text:
                meta.texts.append(text)
        elif kind == b"eXIf":
            _exif(meta, body)
        elif kind == b"IEND":
            meta.end_offset = position
            break
    if meta.end_offset is not None:
        meta.trailing_bytes = len(data) - meta.end_offset
    return meta


def _png_text(kind: bytes, body: bytes) -> tuple[str, str] | None:
    keyword, _, rest = body.partition(b"\x00")
    key = keyword.decode("latin-1")
    if kind == b"tEXt":
        return key, rest.decode("latin-1")
    if kind == b"zTXt":
        return key, _inflate(rest[1:]).decode("latin-1")
    if len(rest) < 2:
        return None
    compressed, text = rest[0], rest[2:]
    _language, _, text = text.partition(b"\x00")
    _translated, _, text = text.partition(b"\x00")
    return key, (_inflate(text) if compressed else text).decode("utf-8", "replace")


def _inflate(data: bytes) -> bytes:
    """Decompress at most `_MAX_INFLATED` bytes: a text chunk must not be a bomb either."""
    try:
        return zlib.decompressobj().decompress(data, _MAX_INFLATED)
    except zlib.error:
        return b""


def _jpeg(data: bytes) -> ImageMetadata:
    meta = ImageMetadata(format="jpeg")
    position = 2
    for _ in range(_MAX_CHUNKS):
        if position + 4 > len(data):
            meta.errors.append("file ends before EOI")
            break
        if data[position] != 0xFF:
            meta.errors.append(f"no marker at offset {position}")
            break
        marker = data[position + 1]
        if marker == 0xFF:  # Fill byte before a marker.
            position += 1
            continue
        if marker == 0xD9:
            meta.end_offset = position + 2
            break
        if marker in (0x01, 0xD8) or 0xD0 <= marker <= 0xD7:
            position += 2
            continue
        length = struct.unpack(">H", data[position + 2 : position + 4])[0]
        segment = data[position + 4 : position + 2 + length]
        _jpeg_segment(meta, marker, segment)
        position += 2 + length
        if marker == 0xDA:
            # Entropy-coded data stuffs every 0xFF with 0x00, so the next FFD9 is the end of image.
            end = data.find(b"\xff\xd9", position)
            if end < 0:
                meta.errors.append("no EOI after the scan data")
            else:
                meta.end_offset = end + 2
            break
    if meta.end_offset is not None:
        meta.trailing_bytes = len(data) - meta.end_offset
    return meta


def _jpeg_segment(meta: ImageMetadata, marker: int, segment: bytes) -> None:
    if marker == 0xE1 and segment.startswith(b"Exif\x00\x00") and meta.exif is None:
        _exif(meta, segment[6:])
    elif marker == 0xE1 and segment.startswith(_XMP_PREFIX):
        meta.xmp |= xmp_fields(segment[len(_XMP_PREFIX) :])
    elif marker == 0xFE and len(meta.texts) < _MAX_TEXTS:
        meta.texts.append(("Comment", segment.decode("utf-8", "replace")))
    elif marker in _SOF_MARKERS and len(segment) >= 5:
        meta.height, meta.width = struct.unpack(">HH", segment[1:5])


def _webp(data: bytes) -> ImageMetadata:
    meta = ImageMetadata(format="webp")
    size = struct.unpack("<I", data[4:8])[0] + 8 if len(data) >= 8 else len(data)
    position = 12
    for _ in range(_MAX_CHUNKS):
        if position + 8 > min(size, len(data)):
            break
        kind, length = struct.unpack("<4sI", data[position : position + 8])
        body = data[position + 8 : position + 8 + length]
        if kind == b"VP8X" and len(body) >= 10:
            meta.width = int.from_bytes(body[4:7], "little") + 1
            meta.height = int.from_bytes(body[7:10], "little") + 1
        elif kind == b"EXIF":
            _exif(meta, body)
        elif kind == b"XMP ":
            meta.xmp |= xmp_fields(body)
        position += 8 + length + (length & 1)
    meta.end_offset = min(size, len(data))
    meta.trailing_bytes = len(data) - meta.end_offset
    return meta
