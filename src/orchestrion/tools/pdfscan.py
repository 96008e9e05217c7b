"""A byte-level PDF scanner: the document information dictionary and active-content names.

No PDF library and no rendering. The scanner:

1. finds stream bodies (``stream`` ... ``endstream``) and leaves them out of the name scan, so that
   compressed bytes cannot fake a ``/JS``;
2. decompresses FlateDecode object streams (``/Type /ObjStm``, capped) and scans the objects inside,
   where a PDF can hide ``/OpenAction`` or its ``/Info`` dictionary;
3. decodes ``#xx`` escapes in names (``/J#61vaScript`` is ``/JavaScript``) and records the obfuscation;
4. resolves the trailer's ``/Info N G R`` (the last one wins, as with incremental updates) and
   reads its strings (literal with escapes, hex, UTF-16BE with BOM) and ``D:`` dates;
5. reads simple XMP fields from an uncompressed metadata packet.
"""

from __future__ import annotations

import re
import zlib
from collections import Counter, defaultdict
from dataclasses import dataclass, field

__all__ = ["RISKY_NAMES", "NameHit", "PdfScan", "parse_pdf_date", "scan_pdf", "xmp_fields"]

RISKY_NAMES = frozenset(
    {
        "JS",
        "JavaScript",
        "OpenAction",
        "AA",
        "Launch",
        "EmbeddedFile",
        "EmbeddedFiles",
        "RichMedia",
        "XFA",
        "SubmitForm",
        "ImportData",
        "GoToR",
        "GoToE",
        "URI",
        "Encrypt",
        "ObjStm",
    }
)
INFO_KEYS = ("Title", "Author", "Subject", "Keywords", "Creator", "Producer", "CreationDate", "ModDate")
_MAX_OBJSTM_BYTES = 8 * 1024 * 1024
_MAX_OBJSTM_TOTAL = 32 * 1024 * 1024
_MAX_HITS = 1000
_MAX_SCRIPTS = 10
_SCRIPT_BYTES = 4096
_CONTEXT_BYTES = 160
_STREAM = re.compile(rb"(?<!end)stream(?:\r\n|\n|\r)")
_NAME = re.compile(rb"/([^\s/<>\[\](){}%\x00]*)")
_HEX_ESCAPE = re.compile(rb"#([0-9A-Fa-f]{2})")
_INFO_REF = re.compile(rb"/Info\s+(\d+)\s+(\d+)\s+R")
_DATE = re.compile(r"D:(\d{4})(\d{2})?(\d{2})?(\d{2})?(\d{2})?(\d{2})?([Zz]|[+-]\d{2}'?(?:\d{2}'?)?)?")
_XMP_NAMES = (
    *("CreatorTool", "CreateDate", "ModifyDate", "MetadataDate", "Producer", "creator", "title"),
    *("DocumentID", "GPSLatitude", "GPSLongitude", "Make", "Model"),
)
_ESCAPES = {ord("n"): b"\n", ord("r"): b"\r", ord("t"): b"\t", ord("b"): b"\b", ord("f"): b"\f"}


@dataclass(frozen=True, kw_only=True)
class NameHit:
    """Where a risky name occurs: byte offset, whether inside an object stream, the raw spelling."""

    offset: int
    in_object_stream: bool
    raw: str


@dataclass(kw_only=True)
class PdfScan:
    """What `scan_pdf` found.

    Attributes:
        version: Header version (``"1.7"``).
        info: Document information strings by key, dates as ISO 8601.
        info_source: ``"trailer"`` (resolved /Info), ``"scan"`` (keys found loosely) or None.
        xmp: Simple fields of an uncompressed XMP packet.
        names: Risky names (decoded) and where they occur (the first `_MAX_HITS` of each).
        counts: How often each risky name occurs in all.
        obfuscated: Risky names spelled with ``#xx`` escapes.
        contexts: The bytes after the first occurrence of each risky name, as text.
        javascript: Literal scripts of ``/JS (...)`` entries.
        object_streams: Object streams decompressed and scanned.
        eof_markers: ``%%EOF`` markers (more than one: incremental updates).
    """

    version: str | None = None
    info: dict[str, str] = field(default_factory=dict)
    info_source: str | None = None
    xmp: dict[str, str] = field(default_factory=dict)
    names: dict[str, list[NameHit]] = field(default_factory=lambda: defaultdict(list))
    counts: Counter[str] = field(default_factory=Counter)
    obfuscated: list[NameHit] = field(default_factory=list)
    contexts: dict[str, str] = field(default_factory=dict)
    javascript: list[str] = field(default_factory=list)
    object_streams: int = 0
    eof_markers: int = 0


def scan_pdf(data: bytes) -> PdfScan:
    """Scan a PDF's bytes; never raises on malformed input (it reports what it could read)."""
    scan = PdfScan()
    version = re.search(rb"%PDF-(\d\.\d)", data[:1024])
    scan.version = version.group(1).decode() if version else None
    scan.eof_markers = data.count(b"%%EOF")
    bodies = _stream_bodies(data)
    segments = _outside(data, bodies)
    for start, chunk in segments:
        _scan_names(scan, chunk, start, data, in_object_stream=False)
    objects: dict[tuple[int, int], bytes] = {}
    budget = _MAX_OBJSTM_TOTAL
    for body_start, body_end in bodies:
        header = data[max(0, body_start - 512) : body_start]
        header = header[header.rfind(b"obj") + 3 :] if b"obj" in header else header
        if budget <= 0 or not re.search(rb"/Type\s*/ObjStm", header) or b"FlateDecode" not in header:
            continue
        try:
            text = zlib.decompressobj().decompress(data[body_start:body_end], min(budget, _MAX_OBJSTM_BYTES))
        except zlib.error:
            continue
        budget -= len(text)
        scan.object_streams += 1
        _scan_names(scan, text, body_start, text, in_object_stream=True)
        objects |= _stream_objects(header, text)
    _read_info(scan, data, segments, objects)
    scan.xmp = xmp_fields(data)
    return scan


def parse_pdf_date(value: str) -> str:
    """A PDF date (``D:20240102030405+01'00'``) as ISO 8601, or `value` unchanged if it is not one."""
    match = _DATE.match(value.strip())
    if not match:
        return value
    year, month, day, hour, minute, second, zone = match.groups()
    text = f"{year}-{month or '01'}-{day or '01'}T{hour or '00'}:{minute or '00'}:{second or '00'}"
    if zone and zone.upper() == "Z":
        return text + "+00:00"
    if zone:
        digits = zone[1:].replace("'", "")
        return f"{text}{zone[0]}{digits[:2]}:{digits[2:4] or '00'}"
    return text


def xmp_fields(data: bytes) -> dict[str, str]:
    """Simple XMP properties (element or attribute form) from the first uncompressed packet."""
    start = data.find(b"<x:xmpmeta")
    if start < 0:
        start = data.find(b"<?xpacket begin")
    if start < 0:
        return {}
    end = data.find(b"</x:xmpmeta>", start)
    packet = data[start : end if end > 0 else start + 65536].decode("utf-8", "replace")
    fields: dict[str, str] = {}
    for name in _XMP_NAMES:
        pattern = (
            rf"<\w+:{name}>\s*(?:<rdf:(?:Seq|Alt|Bag)>\s*<rdf:li[^>]*>)?([^<]{{1,300}})"
            rf"|\b\w+:{name}=\"([^\"]{{1,300}})\""
        )
        match = re.search(pattern, packet)
        if match:
            fields[name] = (match.group(1) or match.group(2)).strip()
    return fields


def _stream_bodies(data: bytes) -> list[tuple[int, int]]:
    bodies: list[tuple[int, int]] = []
    position = 0
    while True:
        match = _STREAM.search(data, position)
        if not match:
            return bodies
        end = data.find(b"endstream", match.end())
        if end < 0:
            bodies.append((match.end(), len(data)))
            return bodies
        bodies.append((match.end(), end))
        position = end + len(b"endstream")


def _outside(data: bytes, bodies: list[tuple[int, int]]) -> list[tuple[int, bytes]]:
    """The parts of `data` that are not stream bodies, with their offsets."""
    segments: list[tuple[int, bytes]] = []
    position = 0
    for start, end in bodies:
        segments.append((position, data[position:start]))
        position = end
    segments.append((position, data[position:]))
    return segments


def _scan_names(scan: PdfScan, chunk: bytes, base: int, source: bytes, *, in_object_stream: bool) -> None:
    for match in _NAME.finditer(chunk):
        raw = match.group(1)
        decoded = _HEX_ESCAPE.sub(lambda m: bytes([int(m.group(1), 16)]), raw).decode("latin-1")
        if decoded not in RISKY_NAMES:
            continue
        offset = base if in_object_stream else base + match.start()
        hit = NameHit(offset=offset, in_object_stream=in_object_stream, raw=raw.decode("latin-1"))
        scan.counts[decoded] += 1
        if scan.counts[decoded] > _MAX_HITS:
            continue
        scan.names[decoded].append(hit)
        if b"#" in raw and len(scan.obfuscated) < _MAX_HITS:
            scan.obfuscated.append(hit)
        position = match.start() if in_object_stream else base + match.start()
        if decoded not in scan.contexts:
            context = source[position : position + _CONTEXT_BYTES].split(b"endobj", 1)[0]
            scan.contexts[decoded] = " ".join(context.decode("latin-1").split())
        if decoded == "JS" and len(scan.javascript) < _MAX_SCRIPTS:
            script = _value_string(chunk, match.end(), limit=_SCRIPT_BYTES)
            if script is not None:
                scan.javascript.append(script)


def _stream_objects(header: bytes, text: bytes) -> dict[tuple[int, int], bytes]:
    """The objects of an object stream by (number, 0), from its header of number/offset pairs."""
    first = re.search(rb"/First\s+(\d+)", header)
    count = re.search(rb"/N\s+(\d+)", header)
    if not first or not count:
        return {}
    start = int(first.group(1))
    numbers = [int(n) for n in re.findall(rb"\d+", text[:start])][: 2 * int(count.group(1))]
    pairs = list(zip(numbers[0::2], numbers[1::2], strict=False))
    objects: dict[tuple[int, int], bytes] = {}
    for index, (number, offset) in enumerate(pairs):
        end = start + pairs[index + 1][1] if index + 1 < len(pairs) else len(text)
        objects[(number, 0)] = text[start + offset : end]
    return objects


def _read_info(
    scan: PdfScan, data: bytes, segments: list[tuple[int, bytes]], objects: dict[tuple[int, int], bytes]
) -> None:
    outside = b"\n".join(chunk for _, chunk in segments)
    references = _INFO_REF.findall(outside)
    body = None
    if references:
        number, generation = (int(v) for v in references[-1])
        starts = list(re.finditer(rb"(?<!\d)%d\s+%d\s+obj\b" % (number, generation), outside))
        if starts:
            tail = outside[starts[-1].end() :]
            body = tail[: tail.find(b"endobj")] if b"endobj" in tail else tail[:65536]
        else:
            body = objects.get((number, generation))
    if body is not None:
        scan.info, scan.info_source = _info_strings(body), "trailer"
        return
    loose = _info_strings(outside)
    if loose:
        scan.info, scan.info_source = loose, "scan"


def _info_strings(body: bytes) -> dict[str, str]:
    info: dict[str, str] = {}
    for key in INFO_KEYS:
        match = re.search(rb"/%s\s*(?=[(<])" % key.encode(), body)
        if not match:
            continue
        value = _value_string(body, match.end())
        if value is not None:
            info[key] = parse_pdf_date(value) if key.endswith("Date") else value
    return info


def _value_string(data: bytes, position: int, *, limit: int = 65536) -> str | None:
    """The PDF string object starting at `position` (after optional whitespace), decoded to text."""
    while position < len(data) and data[position] in b" \t\r\n\f\x00":
        position += 1
    if position >= len(data):
        return None
    if data[position : position + 1] == b"(":
        raw = _literal(data, position + 1, limit)
    elif data[position : position + 1] == b"<" and data[position + 1 : position + 2] != b"<":
        end = data.find(b">", position, position + 2 * limit)
        digits = re.sub(rb"[^0-9A-Fa-f]", b"", data[position + 1 : end if end > 0 else len(data)])
        raw = bytes.fromhex((digits + b"0" * (len(digits) % 2)).decode())
    else:
        return None
    if raw.startswith(b"\xfe\xff"):
        return raw[2:].decode("utf-16-be", "replace")
    if raw.startswith(b"\xef\xbb\xbf"):
        return raw[3:].decode("utf-8", "replace")
    return raw.decode("latin-1")


def _literal(data: bytes, position: int, limit: int = 65536) -> bytes:
    """A literal string's bytes from just after its ``(``: escapes decoded, nested parentheses kept."""
    out = bytearray()
    depth = 0
    end = min(len(data), position + limit)
    while position < end:
        byte = data[position]
        position += 1
        if byte == 0x5C and position < end:  # Backslash.
            code = data[position]
            position += 1
            if code in _ESCAPES:
                out += _ESCAPES[code]
            elif 0x30 <= code <= 0x37:
                digits = bytes([code])
                while len(digits) < 3 and position < end and 0x30 <= data[position] <= 0x37:
                    digits += data[position : position + 1]
                    position += 1
                out.append(int(digits, 8) & 0xFF)
            elif code == 0x0D:  # A line continuation: backslash, end of line.
                if position < end and data[position] == 0x0A:
                    position += 1
            elif code != 0x0A:
                out.append(code)
            continue
        if byte == 0x28:
            depth += 1
        elif byte == 0x29:
            if depth == 0:
                break
            depth -= 1
        out.append(byte)
    return bytes(out)
