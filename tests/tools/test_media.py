from __future__ import annotations

import json
import struct
import zlib
from typing import Any

import pytest

from orchestrion.domain.findings import Severity
from orchestrion.tools.artifacts import at
from orchestrion.tools.base import ToolOutput
from orchestrion.tools.exif import ExifError, read_exif
from orchestrion.tools.images import read_image
from orchestrion.tools.media import MediaMetadataTool
from orchestrion.tools.pdfscan import parse_pdf_date, scan_pdf
from tests.tools import forensics_samples as samples

LATITUDE = 48 + 51 / 60 + 29.64 / 3600
LONGITUDE = 2 + 17 / 60 + 40.32 / 3600


async def _media(*files: tuple[str, bytes | str], **args: Any) -> ToolOutput:
    output, _ = await MediaMetadataTool().run(args, samples.ctx(*files))
    return output


def _at(output: ToolOutput, location: str) -> Any:
    return next(o for o in output.observations if o.location == location)


def _finding(output: ToolOutput, words: str) -> Any:
    return next(f for f in output.findings if words in f.title)


def _cited(output: ToolOutput, finding: Any) -> list[Any]:
    return [output.observations[i] for i in finding.observation_indexes]


@pytest.mark.parametrize("order", ["<", ">"])
def test_exif_reader_reads_camera_dates_and_gps(order: str) -> None:
    exif = read_exif(samples.gps_tiff(order))

    assert exif.fields["Make"] == "Apple"
    assert exif.fields["Model"] == "iPhone 13"
    assert exif.fields["Software"] == "17.1"
    assert exif.fields["DateTime"] == "2024:05:01 10:00:00"
    assert exif.fields["DateTimeOriginal"] == "2024:05:01 09:59:58"
    assert exif.fields["BodySerialNumber"] == "SN-0042"
    assert exif.fields["UserComment"] == "hello"
    assert exif.gps["GPSLatitudeRef"] == "N"
    assert exif.gps["GPSVersionID"] == "2 3 0 0"
    assert exif.latitude == pytest.approx(LATITUDE, abs=1e-6)
    assert exif.longitude == pytest.approx(LONGITUDE, abs=1e-6)
    assert exif.altitude == 35.0


def test_exif_south_west_and_malformed_input() -> None:
    tiff = samples.tiff(
        {0x010F: (2, "X")},
        gps={
            1: (2, "S"),
            2: (5, [(33, 1), (52, 1), (0, 1)]),
            3: (2, "W"),
            4: (5, [(151, 1), (12, 1), (36, 1)]),
        },
    )
    exif = read_exif(tiff)
    assert exif.latitude == pytest.approx(-33.866667, abs=1e-6)
    assert exif.longitude == pytest.approx(-151.21, abs=1e-6)
    assert exif.altitude is None
    with pytest.raises(ExifError):
        read_exif(b"not a tiff")
    # A directory pointing at itself and offsets past the end are ignored, not followed forever.
    looping = bytearray(samples.tiff({0x010F: (2, "Loop")}))
    looping += struct.pack("<HHII", 0x8769, 4, 1, 8)
    assert read_exif(bytes(looping)).fields == {"Make": "Loop"}
    assert read_exif(b"II*\x00\xff\xff\x00\x00").fields == {}


async def test_jpeg_with_exif_gps_is_a_medium_privacy_finding() -> None:
    output = await _media(("holiday.jpg", samples.jpeg(samples.gps_tiff())))

    image = _at(output, "holiday.jpg")
    assert (image.data["format"], image.data["width"], image.data["height"]) == ("jpeg", 640, 480)
    assert image.data["exif"]["Make"] == "Apple"
    assert image.data["exif"]["Model"] == "iPhone 13"
    assert image.data["texts"] == [{"key": "Comment", "text": "shot by test"}]
    finding = _finding(output, "GPS position in the metadata of holiday.jpg")
    assert finding.severity is Severity.MEDIUM
    (gps,) = _cited(output, finding)
    assert gps.location == "holiday.jpg:EXIF GPS"
    assert gps.data["latitude"] == pytest.approx(LATITUDE, abs=1e-6)
    assert gps.data["longitude"] == pytest.approx(LONGITUDE, abs=1e-6)
    assert "48.858233, 2.294533" in gps.summary
    assert output.data["files"]["holiday.jpg"]["gps"] is True


async def test_jpeg_without_gps_has_no_finding() -> None:
    output = await _media(("plain.jpg", samples.jpeg(samples.tiff({0x010F: (2, "Canon")}))))

    assert _at(output, "plain.jpg").data["exif"] == {"Make": "Canon"}
    assert not output.findings


async def test_png_text_chunks_are_read_and_redacted() -> None:
    output = await _media(("shot.png", samples.png()))

    image = _at(output, "shot.png")
    assert (image.data["width"], image.data["height"]) == (2, 1)
    texts = {t["key"]: t["text"] for t in image.data["texts"]}
    assert texts["Author"] == "Jane Analyst"
    assert texts["Software"] == "GIMP 2.10"
    assert texts["Description"] == "caf\u00e9 photo"
    assert texts["Title"] == "compressed title"
    assert texts["Comment"].startswith("deploy key ghp_")
    assert samples.GITHUB not in json.dumps([(o.summary, o.data) for o in output.observations])
    assert not output.findings


async def test_png_exif_chunk_with_gps() -> None:
    output = await _media(("map.png", samples.png(texts=[], exif=samples.gps_tiff(">"))))

    assert _finding(output, "GPS position").severity is Severity.MEDIUM


async def test_data_after_the_image_end_is_reported() -> None:
    hidden = samples.zip_bytes([("payload.exe", samples.pe())])
    png = samples.png(texts=[], trailer=hidden)
    jpeg = samples.jpeg(trailer=b"just some notes appended")
    output = await _media(("cat.png", png), ("dog.jpg", jpeg))

    zip_finding = _finding(output, "hidden after the image data of cat.png")
    assert zip_finding.severity is Severity.MEDIUM
    (cited,) = _cited(output, zip_finding)
    assert cited.location == at("cat.png", len(png) - len(hidden))
    assert cited.data["trailing_bytes"] == len(hidden)
    assert cited.data["trailing_type"] == "zip"
    text_finding = _finding(output, "Data appended after the image data of dog.jpg")
    assert text_finding.severity is Severity.LOW


async def test_webp_exif_and_xmp_gps() -> None:
    exif = b"Exif\x00\x00" + samples.gps_tiff()
    xmp = b'<x:xmpmeta><rdf:Description exif:GPSLatitude="51,30.0N" exif:GPSLongitude="0,7.5W"/></x:xmpmeta>'
    chunks = [(b"VP8X", b"\x08\x00\x00\x00" + (99).to_bytes(3, "little") + (49).to_bytes(3, "little"))]
    chunks += [(b"EXIF", exif + (b"\x00" if len(exif) % 2 else b""))]
    body = b"WEBP" + b"".join(k + struct.pack("<I", len(v)) + v for k, v in chunks)
    webp = b"RIFF" + struct.pack("<I", len(body)) + body
    xmp_jpeg = samples.jpeg()
    xmp_jpeg = (
        xmp_jpeg[:2]
        + b"\xff\xe1"
        + struct.pack(">H", len(xmp) + 31)
        + b"http://ns.adobe.com/xap/1.0/\x00"
        + xmp
        + xmp_jpeg[2:]
    )
    output = await _media(("a.webp", webp), ("b.jpg", xmp_jpeg))

    assert (_at(output, "a.webp").data["width"], _at(output, "a.webp").data["height"]) == (100, 50)
    assert _at(output, "a.webp:EXIF GPS").data["latitude"] == pytest.approx(LATITUDE, abs=1e-6)
    xmp_gps = _at(output, "b.jpg:XMP GPS")
    assert (xmp_gps.data["latitude"], xmp_gps.data["longitude"]) == ("51,30.0N", "0,7.5W")
    assert len([f for f in output.findings if "GPS" in f.title]) == 2


def test_truncated_images_report_errors_instead_of_raising() -> None:
    png = samples.png()
    assert read_image(png[:40], "png").errors
    assert read_image(b"\xff\xd8\xff\xe1\x00", "jpeg").errors
    assert read_image(b"\xff\xd8" + b"\x00" * 10, "jpeg").errors
    broken_exif = samples.jpeg(b"XX*\x00")
    assert read_image(broken_exif, "jpeg").exif_error == "no TIFF header"


async def test_pdf_with_javascript_and_open_action_is_high() -> None:
    data = samples.malicious_pdf()
    output = await _media(("invoice.pdf", data))

    finding = _finding(output, "JavaScript in PDF invoice.pdf run automatically")
    assert finding.severity is Severity.HIGH
    cited = {o.data["name"]: o for o in _cited(output, finding)}
    assert set(cited) == {"JavaScript", "JS", "OpenAction"}
    assert cited["OpenAction"].location == at("invoice.pdf", data.find(b"/OpenAction"))
    assert cited["JS"].data["offsets"] == [data.find(b"/JS (")]  # The /JS inside a stream is not counted.
    assert cited["JS"].data["scripts"] == [
        "app.alert('Invoice (overdue)'); this.exportDataObject({cName: \"a.exe\", nLaunch: 2});"
    ]
    embedded = _finding(output, "Embedded file in PDF")
    assert embedded.severity is Severity.MEDIUM
    assert {o.data["name"] for o in _cited(output, embedded)} == {"EmbeddedFile", "EmbeddedFiles"}
    assert "Launch" not in output.data["files"]["invoice.pdf"]["names"]


async def test_pdf_info_dictionary() -> None:
    output = await _media(("invoice.pdf", samples.malicious_pdf()))

    info = _at(output, "invoice.pdf")
    assert info.data["version"] == "1.7"
    assert info.data["info_source"] == "trailer"
    assert info.data["info"] == {
        "Title": "Invoice 2024",
        "Author": "Mallory (finance)",
        "Creator": "MS Word",
        "Producer": "Microsoft\u00ae Word",
        "CreationDate": "2024-01-02T03:04:05+01:00",
        "ModDate": "2024-01-03T00:00:00+00:00",
    }
    assert "Author Mallory (finance)" in info.summary


async def test_pdf_launch_obfuscated_names_and_object_streams() -> None:
    hidden = (
        b"<< /Type /Action /S /Launch /F (cmd.exe) /P (/c calc) >> "
        b"<< /Author (Hidden Author) /Producer (Evil PDF) >>"
    )
    first = hidden.index(b"<< /Author")
    header = b"5 0 6 %d " % first
    objstm = samples.stream(
        b"<< /Type /ObjStm /N 2 /First %d /Filter /FlateDecode >>" % len(header),
        zlib.compress(header + hidden),
    )
    data = samples.pdf(
        [
            b"<< /Type /Catalog /Pages 2 0 R /AA << /O 4 0 R >> >>",
            b"<< /Type /Pages /Kids [] /Count 0 >>",
            objstm,
            b"<< /S /J#61vaScript /JS <6170702E616C657274283129> >>",
        ],
        trailer=b"<< /Root 1 0 R /Info 6 0 R >>",
    )
    output = await _media(("weird.pdf", data))

    launch = _finding(output, "Launch action")
    assert launch.severity is Severity.HIGH
    launch_observation = next(o for o in _cited(output, launch) if o.data["name"] == "Launch")
    assert launch_observation.data["in_object_stream"] == 1
    assert "cmd.exe" in launch_observation.data["context"]
    script = _finding(output, "JavaScript in PDF weird.pdf run automatically")
    js = next(o for o in _cited(output, script) if o.data["name"] == "JS")
    assert js.data["scripts"] == ["app.alert(1)"]
    obfuscated = _finding(output, "Obfuscated names")
    assert obfuscated.severity is Severity.MEDIUM
    (spelled,) = _cited(output, obfuscated)
    assert spelled.data["spellings"] == ["J#61vaScript"]
    info = _at(output, "weird.pdf")
    assert info.data["object_streams"] == 1
    assert info.data["info"] == {"Author": "Hidden Author", "Producer": "Evil PDF"}


async def test_benign_pdf_has_no_findings_and_loose_info_fallback() -> None:
    data = samples.pdf(
        [b"<< /Type /Catalog >>", b"<< /Producer (LibreOffice 7.6) /Author <FEFF004A006F> >>"],
        trailer=b"<< /Root 1 0 R >>",
    )
    output = await _media(("plain.pdf", data))

    info = _at(output, "plain.pdf")
    assert info.data["info_source"] == "scan"
    assert info.data["info"] == {"Author": "Jo", "Producer": "LibreOffice 7.6"}
    assert not output.findings


async def test_open_action_without_script_is_low_and_links_are_observed() -> None:
    data = samples.pdf(
        [
            b"<< /Type /Catalog /OpenAction [3 0 R /Fit] >>",
            b"<< /S /URI /URI (https://example.org) >>",
            b"<< /Type /Page >>",
        ]
    )
    output = await _media(("view.pdf", data))

    assert _finding(output, "Automatic action").severity is Severity.LOW
    assert _at(output, at("view.pdf", data.find(b"/URI"))).data["count"] == 2
    assert len(output.findings) == 1


async def test_xmp_metadata_in_pdf_and_incremental_updates() -> None:
    xmp = (
        b"<x:xmpmeta><xmp:CreatorTool>Acrobat PDFMaker</xmp:CreatorTool>"
        b"<dc:creator><rdf:Seq><rdf:li>Eve</rdf:li></rdf:Seq></dc:creator></x:xmpmeta>"
    )
    data = samples.pdf([b"<< /Type /Catalog >>", samples.stream(b"<< /Type /Metadata /Subtype /XML >>", xmp)])
    data += b"trailer\n<< /Root 1 0 R >>\n%%EOF\n"
    output = await _media(("x.pdf", data))

    info = _at(output, "x.pdf")
    assert info.data["xmp"] == {"CreatorTool": "Acrobat PDFMaker", "creator": "Eve"}
    assert info.data["incremental_updates"] == 1


async def test_pdf_name_hits_and_scripts_are_capped() -> None:
    objects = [b"<< /Type /Catalog >>"] + [b"<< /S /JavaScript /JS (s%d) >>" % i for i in range(1200)]
    output = await _media(("many.pdf", samples.pdf(objects, trailer=b"<< /Root 1 0 R >>")))

    js = next(o for o in output.observations if o.data.get("name") == "JS")
    assert js.data["count"] == 1200
    assert len(js.data["offsets"]) == 20
    assert js.data["scripts"] == ["s0", "s1", "s2", "s3", "s4"]
    assert output.data["files"]["many.pdf"]["names"]["JavaScript"] == 1200


def test_pdf_dates_and_malformed_pdfs() -> None:
    assert parse_pdf_date("D:20240102030405Z") == "2024-01-02T03:04:05+00:00"
    assert parse_pdf_date("D:2024") == "2024-01-01T00:00:00"
    assert parse_pdf_date("D:20240102030405-05'30'") == "2024-01-02T03:04:05-05:30"
    assert parse_pdf_date("yesterday") == "yesterday"
    scan = scan_pdf(b"%PDF-1.4\n1 0 obj << /JS (unterminated \\( stream\n")
    assert scan.version == "1.4"
    assert "JS" in scan.names
    assert scan_pdf(b"%PDF-1.4 << /Type /ObjStm /Filter /FlateDecode >> stream\nnot zlib").object_streams == 0


async def test_other_files_are_skipped() -> None:
    output = await _media(("a.txt", "hello"), ("b.exe", samples.pe()))

    assert output.data["skipped"] == ["a.txt", "b.exe"]
    assert not output.observations
