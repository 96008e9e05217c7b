"""Shared plumbing of the forensics tools: file selection, argument checks, byte offsets and quoting.

The forensics tools (`forensics`, `binstrings`, `archives`, `media`) only ever read the uploaded
bytes in memory (`InputFile.data`): nothing is written to disk, extracted or executed.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TypeVar

from pydantic import Field

from orchestrion.exceptions import ToolError
from orchestrion.tools.base import InputFile, ToolArgs
from orchestrion.tools.secrets import redact_secrets

__all__ = [
    "MAX_SCAN_BYTES",
    "ForensicsArgs",
    "at",
    "expect_args",
    "printable",
    "quote",
    "redact_url",
    "select_files",
]

# Uploads are already bounded by the server's body limit; this is a second line against a huge
# workspace file making one tool call run for minutes.
MAX_SCAN_BYTES = 32 * 1024 * 1024

_REDACTION_MARGIN = 512
_USER_INFO = re.compile(r"(?<=://)([^/@:\s]+):[^/@\s]+@")
_SECRET_PARAM = re.compile(
    r"(?i)([?&;](?:[\w.-]*(?:token|key|secret|pass(?:word)?|pwd|sig(?:nature)?|auth|session|code)[\w.-]*)=)[^&#\s]+"
)

_A = TypeVar("_A", bound=ToolArgs)


class ForensicsArgs(ToolArgs):
    """Arguments every forensics tool accepts."""

    files: list[str] = Field(
        default_factory=list,
        max_length=200,
        description="Names of the uploaded files to examine; empty means every file.",
    )


def expect_args(args: ToolArgs, model: type[_A], *, tool: str) -> _A:
    """Return `args` typed as `model`, or raise ToolError if the runner passed something else."""
    if not isinstance(args, model):
        raise ToolError(f"{tool} expects {model.__name__}", tool=tool)
    return args


def select_files(files: Sequence[InputFile], names: Sequence[str], *, tool: str) -> list[InputFile]:
    """The task's files named in `names` (all of them when empty); unknown names are an error."""
    if not names:
        return list(files)
    known = {file.name for file in files}
    missing = sorted(set(names) - known)
    if missing:
        raise ToolError(f"{tool}: no uploaded file named {', '.join(missing)}", tool=tool)
    wanted = set(names)
    return [file for file in files if file.name in wanted]


def at(name: str, offset: int) -> str:
    """The location of a byte offset inside a file, e.g. ``sample.exe@0x1f40``."""
    return f"{name}@0x{offset:x}"


def printable(text: str) -> str:
    """`text` with control characters escaped, so a quoted value cannot forge extra lines."""
    return "".join(c if c.isprintable() else _escape(c) for c in text)


def _escape(char: str) -> str:
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def quote(text: str, *, limit: int = 200) -> str:
    """A value safe to put in an observation: secrets and URL credentials redacted, controls escaped,
    at most `limit` characters."""
    # Redaction is slow on very long lines; a secret that starts inside the kept part ends well
    # within this margin, so cutting first cannot leave part of one unredacted.
    shown = printable(redact_url(redact_secrets(text[: limit + _REDACTION_MARGIN])))
    return shown if len(shown) <= limit else shown[: limit - 1] + "…"


def redact_url(text: str) -> str:
    """`text` with URL passwords (``user:pass@``) and secret-looking query values masked."""
    return _SECRET_PARAM.sub(r"\1***", _USER_INFO.sub(r"\1:***@", text))
