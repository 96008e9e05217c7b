"""Validation of files uploaded with a task: safe relative names, no duplicates, bounded size."""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping, Sequence
from typing import Any

from orchestrion.exceptions import InputRefusedError, PayloadTooLargeError, ValidationError
from orchestrion.tools.base import InputFile

_FIELD = "inputs.files"
ENCODINGS = ("utf-8", "base64")
_MAX_NAME_CHARS = 1024
_DRIVE = re.compile(r"^[A-Za-z]:")


def validate_uploaded_files(
    files: Sequence[Mapping[str, Any]], *, max_files: int, max_total_bytes: int
) -> list[InputFile]:
    """Check uploaded files and turn them into `InputFile`s with normalised names.

    Args:
        files: Items with a ``name`` (a relative path) and a ``content`` (text).
        max_files: Most files accepted.
        max_total_bytes: Most UTF-8 bytes accepted over all contents.

    Returns:
        The files, in order, with ``source="upload"``.

    Raises:
        ValidationError: Too many files, a malformed item or a duplicate name.
        InputRefusedError: A name that is absolute, climbs out with ``..`` or contains NUL.
        PayloadTooLargeError: The contents add up to more than `max_total_bytes`.
    """
    if len(files) > max_files:
        raise ValidationError(
            f"too many files: {len(files)} > max_files={max_files}",
            field=_FIELD,
            details={"limit": "max_files", "value": max_files},
        )
    result: list[InputFile] = []
    seen: set[str] = set()
    total = 0
    for index, item in enumerate(files):
        item_field = f"{_FIELD}[{index}]"
        if not isinstance(item, Mapping):
            raise ValidationError("each file must be an object with name and content", field=item_field)
        name = normalise_upload_name(item.get("name"), field=f"{item_field}.name")
        content = item.get("content")
        if not isinstance(content, str):
            raise ValidationError("content must be a string", field=f"{item_field}.content")
        encoding = item.get("encoding") or "utf-8"
        if encoding not in ENCODINGS:
            raise ValidationError(
                f"unknown encoding {encoding!r}", field=f"{item_field}.encoding", choices=ENCODINGS
            )
        if name in seen:
            raise ValidationError(f"duplicate file name {name!r}", field=f"{item_field}.name")
        seen.add(name)
        file = decode_upload(name, content, encoding, field=f"{item_field}.content")
        total += file.size
        if total > max_total_bytes:
            raise PayloadTooLargeError(
                f"uploaded files exceed max_total_bytes={max_total_bytes}",
                details={"field": _FIELD, "limit": "max_total_bytes", "value": max_total_bytes},
            )
        result.append(file)
    return result


def decode_upload(name: str, content: str, encoding: str, *, field: str = _FIELD) -> InputFile:
    """An uploaded file from its transport form: UTF-8 text, or base64 for binary artefacts.

    Raises:
        ValidationError: When base64 content does not decode.
    """
    if encoding != "base64":
        return InputFile(name=name, content=content, source="upload")
    try:
        raw = base64.b64decode(content, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValidationError(f"content of {name!r} is not valid base64", field=field) from exc
    return InputFile(name=name, content=raw.decode("utf-8", "replace"), source="upload", raw=raw)


def encode_upload(file: InputFile) -> dict[str, str]:
    """The stored form of an uploaded file (what `decode_upload` reads back)."""
    if file.raw is not None:
        return {
            "name": file.name,
            "content": base64.b64encode(file.raw).decode("ascii"),
            "encoding": "base64",
        }
    return {"name": file.name, "content": file.content}


def normalise_upload_name(name: object, *, field: str) -> str:
    """Return `name` as a clean relative POSIX path (``a/./b`` becomes ``a/b``).

    Args:
        name: The name as uploaded.
        field: The field to blame in errors.

    Raises:
        ValidationError: Not a non-empty string, or too long.
        InputRefusedError: Absolute, contains a ``..`` segment or a NUL byte.
    """
    if not isinstance(name, str) or not name.strip():
        raise ValidationError("name must be a non-empty string", field=field)
    if len(name) > _MAX_NAME_CHARS:
        raise ValidationError(f"name is longer than {_MAX_NAME_CHARS} characters", field=field)
    if "\x00" in name:
        raise InputRefusedError("name must not contain NUL bytes", field=field)
    # Backslashes count as separators so that Windows-style names cannot smuggle `..` through.
    posix = name.replace("\\", "/")
    if posix.startswith("/") or _DRIVE.match(posix):
        raise InputRefusedError(f"name {name!r} must be a relative path", field=field)
    parts = [part for part in posix.split("/") if part not in ("", ".")]
    if ".." in parts:
        raise InputRefusedError(f"name {name!r} must not contain '..' segments", field=field)
    if not parts:
        raise ValidationError(f"name {name!r} does not name a file", field=field)
    return "/".join(parts)
