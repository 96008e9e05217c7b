"""A minimal EXIF (TIFF) reader: the IFD0, Exif and GPS tags that matter to an investigation.

Reads only the tags in `_IFD0_TAGS`, `_EXIF_TAGS` and `_GPS_TAGS` (camera, software, dates,
owner/serial numbers and GPS position) with strict bounds checks, a cap on entries per directory
and a guard against directory loops. Used by `orchestrion.tools.media` for JPEG APP1, PNG eXIf,
WebP EXIF chunks and TIFF files.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Any

__all__ = ["ExifData", "ExifError", "read_exif"]

_MAX_ENTRIES = 512
_MAX_VALUE_BYTES = 64 * 1024
_EXIF_POINTER = 0x8769
_GPS_POINTER = 0x8825
_IFD0_TAGS = {
    0x010E: "ImageDescription",
    0x010F: "Make",
    0x0110: "Model",
    0x0131: "Software",
    0x0132: "DateTime",
    0x013B: "Artist",
    0x013C: "HostComputer",
    0x8298: "Copyright",
}
_EXIF_TAGS = {
    0x9003: "DateTimeOriginal",
    0x9004: "DateTimeDigitized",
    0x9010: "OffsetTime",
    0x9011: "OffsetTimeOriginal",
    0x9286: "UserComment",
    0xA420: "ImageUniqueID",
    0xA430: "CameraOwnerName",
    0xA431: "BodySerialNumber",
    0xA433: "LensMake",
    0xA434: "LensModel",
}
_GPS_TAGS = {
    0x00: "GPSVersionID",
    0x01: "GPSLatitudeRef",
    0x02: "GPSLatitude",
    0x03: "GPSLongitudeRef",
    0x04: "GPSLongitude",
    0x05: "GPSAltitudeRef",
    0x06: "GPSAltitude",
    0x07: "GPSTimeStamp",
    0x12: "GPSMapDatum",
    0x1D: "GPSDateStamp",
}
# Bytes per value of each TIFF field type, and the struct code that reads one value.
_TYPES: dict[int, tuple[int, str]] = {
    1: (1, "B"),
    2: (1, "s"),
    3: (2, "H"),
    4: (4, "I"),
    5: (8, "II"),
    6: (1, "b"),
    7: (1, "s"),
    8: (2, "h"),
    9: (4, "i"),
    10: (8, "ii"),
    11: (4, "f"),
    12: (8, "d"),
}


class ExifError(ValueError):
    """The bytes are not a readable TIFF/EXIF structure."""


@dataclass(frozen=True, kw_only=True)
class ExifData:
    """The tags read, as text, and the GPS position in decimal degrees when one is recorded.

    Attributes:
        fields: IFD0 and Exif tags by name (``Make``, ``Model``, ``DateTimeOriginal``...).
        gps: GPS tags by name, values as text.
        latitude: Decimal degrees, negative south; None without a usable GPS position.
        longitude: Decimal degrees, negative west.
        altitude: Metres, negative below sea level.
    """

    fields: dict[str, str] = field(default_factory=dict)
    gps: dict[str, str] = field(default_factory=dict)
    latitude: float | None = None
    longitude: float | None = None
    altitude: float | None = None


def read_exif(tiff: bytes) -> ExifData:
    """Read the tags of interest from a TIFF structure (what follows ``Exif\\0\\0`` in a JPEG)."""
    if len(tiff) < 8 or tiff[:2] not in (b"II", b"MM"):
        raise ExifError("no TIFF header")
    order = "<" if tiff[:2] == b"II" else ">"
    if struct.unpack(f"{order}H", tiff[2:4])[0] != 42:
        raise ExifError("bad TIFF magic")
    reader = _Reader(tiff, order)
    ifd0 = reader.directory(struct.unpack(f"{order}I", tiff[4:8])[0])
    fields = _named(ifd0, _IFD0_TAGS)
    if _EXIF_POINTER in ifd0:
        fields |= _named(reader.directory(_first_int(ifd0[_EXIF_POINTER])), _EXIF_TAGS)
    raw_gps = reader.directory(_first_int(ifd0[_GPS_POINTER])) if _GPS_POINTER in ifd0 else {}
    gps = _named(raw_gps, _GPS_TAGS)
    latitude = _degrees(raw_gps.get(0x02), gps.get("GPSLatitudeRef", "N"), "S", 90.0)
    longitude = _degrees(raw_gps.get(0x04), gps.get("GPSLongitudeRef", "E"), "W", 180.0)
    altitude = None
    if latitude is not None and longitude is not None and raw_gps.get(0x06):
        value = raw_gps[0x06]
        altitude = value[0] if isinstance(value, list) and isinstance(value[0], float) else None
        if altitude is not None and raw_gps.get(0x05) and _first_int(raw_gps[0x05]) == 1:
            altitude = -altitude
    if latitude is None or longitude is None:
        latitude = longitude = None
    return ExifData(fields=fields, gps=gps, latitude=latitude, longitude=longitude, altitude=altitude)


class _Reader:
    """Reads IFDs of one TIFF buffer, refusing offsets outside it and directories seen before."""

    def __init__(self, data: bytes, order: str) -> None:
        self._data = data
        self._order = order
        self._seen: set[int] = set()

    def directory(self, offset: int) -> dict[int, Any]:
        data, order = self._data, self._order
        if offset in self._seen or not 8 <= offset <= len(data) - 2:
            return {}
        self._seen.add(offset)
        count = min(struct.unpack(f"{order}H", data[offset : offset + 2])[0], _MAX_ENTRIES)
        entries: dict[int, Any] = {}
        for index in range(count):
            start = offset + 2 + 12 * index
            if start + 12 > len(data):
                break
            tag, kind, number = struct.unpack(f"{order}HHI", data[start : start + 8])
            value = self._value(kind, number, start + 8)
            if value is not None:
                entries[tag] = value
        return entries

    def _value(self, kind: int, number: int, field_offset: int) -> Any:
        if kind not in _TYPES or number == 0:
            return None
        size, code = _TYPES[kind]
        total = size * number
        if total > _MAX_VALUE_BYTES:
            return None
        if total <= 4:
            start = field_offset
        else:
            start = struct.unpack(f"{self._order}I", self._data[field_offset : field_offset + 4])[0]
        raw = self._data[start : start + total]
        if len(raw) < total:
            return None
        if code == "s":
            return raw
        values = list(struct.iter_unpack(self._order + code, raw))
        if kind in (5, 10):
            return [num / den if den else 0.0 for num, den in values]
        return [v[0] for v in values]


def _named(entries: dict[int, Any], names: dict[int, str]) -> dict[str, str]:
    return {names[tag]: _text(tag, value) for tag, value in entries.items() if tag in names}


def _text(tag: int, value: Any) -> str:
    if isinstance(value, bytes):
        if tag == 0x9286:  # UserComment: an 8-byte character code, then the text.
            code, body = value[:8], value[8:]
            encoding = "utf-16" if code.startswith(b"UNICODE") else "latin-1"
            return body.decode(encoding, "replace").strip("\x00 ")
        return value.split(b"\x00", 1)[0].decode("utf-8", "replace").strip()
    if isinstance(value, list):
        return " ".join(f"{v:g}" if isinstance(v, float) else str(v) for v in value)
    return str(value)


def _first_int(value: Any) -> int:
    if isinstance(value, list) and value and isinstance(value[0], int):
        return value[0]
    return -1


def _degrees(value: Any, ref: str, negative: str, limit: float) -> float | None:
    """Degrees, minutes and seconds as a signed decimal, None when absent or out of range."""
    if not isinstance(value, list) or len(value) != 3 or not all(isinstance(v, float) for v in value):
        return None
    degrees = float(value[0] + value[1] / 60 + value[2] / 3600)
    if degrees > limit:
        return None
    return round(-degrees if ref.strip().upper().startswith(negative) else degrees, 6)
