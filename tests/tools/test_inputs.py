from __future__ import annotations

from typing import Any

import pytest

from orchestrion.exceptions import InputRefusedError, PayloadTooLargeError, ValidationError
from orchestrion.tools.inputs import validate_uploaded_files


def _validate(files: list[Any], *, max_files: int = 10, max_total_bytes: int = 1000) -> list[Any]:
    return validate_uploaded_files(files, max_files=max_files, max_total_bytes=max_total_bytes)


def test_valid_uploads_become_input_files_with_normalised_names() -> None:
    files = _validate([{"name": "src/./app.py", "content": "x = 1\n"}, {"name": "README.md", "content": ""}])

    assert [(f.name, f.content, f.source) for f in files] == [
        ("src/app.py", "x = 1\n", "upload"),
        ("README.md", "", "upload"),
    ]


@pytest.mark.parametrize("name", ["/etc/passwd", "\\windows\\system32", "C:/boot.ini"])
def test_absolute_names_are_refused(name: str) -> None:
    with pytest.raises(InputRefusedError, match="relative path") as info:
        _validate([{"name": "ok.txt", "content": ""}, {"name": name, "content": ""}])

    assert info.value.field == "inputs.files[1].name"


@pytest.mark.parametrize("name", ["../secret", "a/../../b", "a\\..\\b"])
def test_dotdot_segments_are_refused(name: str) -> None:
    with pytest.raises(InputRefusedError, match=r"'\.\.' segments") as info:
        _validate([{"name": name, "content": ""}])

    assert info.value.field == "inputs.files[0].name"


def test_nul_in_name_is_refused() -> None:
    with pytest.raises(InputRefusedError, match="NUL"):
        _validate([{"name": "a\x00.py", "content": ""}])


@pytest.mark.parametrize("name", ["", "   ", None, 42, "./"])
def test_missing_or_empty_names_are_invalid(name: object) -> None:
    with pytest.raises(ValidationError) as info:
        _validate([{"name": name, "content": "x"}])

    assert info.value.field == "inputs.files[0].name"


def test_non_string_content_is_invalid() -> None:
    with pytest.raises(ValidationError) as info:
        _validate([{"name": "a.py", "content": b"bytes"}])

    assert info.value.field == "inputs.files[0].content"


def test_items_that_are_not_objects_are_invalid() -> None:
    with pytest.raises(ValidationError) as info:
        _validate(["a.py"])

    assert info.value.field == "inputs.files[0]"


def test_duplicate_names_after_normalisation_are_invalid() -> None:
    with pytest.raises(ValidationError, match=r"duplicate file name 'a/b\.py'") as info:
        _validate([{"name": "a/b.py", "content": ""}, {"name": "a//./b.py", "content": ""}])

    assert info.value.field == "inputs.files[1].name"


def test_too_many_files_is_a_validation_error_on_the_list() -> None:
    with pytest.raises(ValidationError, match="3 > max_files=2") as info:
        _validate([{"name": f"{i}.txt", "content": ""} for i in range(3)], max_files=2)

    assert info.value.field == "inputs.files"
    assert not isinstance(info.value, InputRefusedError)


def test_too_many_bytes_is_payload_too_large() -> None:
    files = [{"name": "a.txt", "content": "a" * 60}, {"name": "b.txt", "content": "é" * 30}]

    assert len(_validate(files, max_total_bytes=120)) == 2
    with pytest.raises(PayloadTooLargeError, match="max_total_bytes=119") as info:
        _validate(files, max_total_bytes=119)

    assert info.value.details["field"] == "inputs.files"


def test_base64_uploads_keep_their_exact_bytes() -> None:
    import base64

    from orchestrion.tools.inputs import decode_upload, encode_upload

    blob = bytes(range(256)) * 3
    files = validate_uploaded_files(
        [{"name": "a.bin", "content": base64.b64encode(blob).decode(), "encoding": "base64"}],
        max_files=5,
        max_total_bytes=10_000,
    )
    assert files[0].is_binary and files[0].data == blob and files[0].size == len(blob)
    stored = encode_upload(files[0])
    assert decode_upload(stored["name"], stored["content"], stored["encoding"]).data == blob


@pytest.mark.parametrize(
    ("item", "field"),
    [
        ({"name": "a.bin", "content": "not base64!", "encoding": "base64"}, "inputs.files[0].content"),
        ({"name": "a.bin", "content": "AA==", "encoding": "utf-16"}, "inputs.files[0].encoding"),
    ],
)
def test_bad_encodings_name_the_field(item: dict[str, str], field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        validate_uploaded_files([item], max_files=5, max_total_bytes=10_000)
    assert caught.value.details["field"] == field


def test_binary_size_counts_bytes_not_base64_characters() -> None:
    import base64

    blob = b"\x00" * 900
    with pytest.raises(PayloadTooLargeError):
        validate_uploaded_files(
            [{"name": "a.bin", "content": base64.b64encode(blob).decode(), "encoding": "base64"}],
            max_files=5,
            max_total_bytes=800,
        )
