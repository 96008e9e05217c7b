"""Validation of files uploaded with a task: safe relative names, no duplicates, bounded size."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from orchestrion.exceptions import InputRefusedError, PayloadTooLargeError, ValidationError
from orchestrion.tools.base import InputFile

_FIELD = "inputs.files"
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
        if name in seen:
            raise ValidationError(f"duplicate file name {name!r}", field=f"{item_field}.name")
        seen.add(name)
        total += len(content.encode("utf-8", "surrogatepass"))
        if total > max_total_bytes:
            raise PayloadTooLargeError(
                f"uploaded files exceed max_total_bytes={max_total_bytes}",
                details={"field": _FIELD, "limit": "max_total_bytes", "value": max_total_bytes},
            )
        result.append(InputFile(name=name, content=content, source="upload"))
    return result


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
