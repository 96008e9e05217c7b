"""The workspace policy: which files on the server a task may read, and how many.

Paths named by a task are resolved (symlinks followed) and must land inside one of the configured
roots; anything else is refused with `InputRefusedError`. Refusal messages repeat only the path the
caller gave, never what lies around it on the server.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from orchestrion.exceptions import InputRefusedError
from orchestrion.tools.base import InputFile

logger = logging.getLogger(__name__)

_FIELD = "inputs.paths"
_BINARY_SNIFF_BYTES = 8 * 1024
_SKIPPED_DIRS = frozenset({"__pycache__", "node_modules", "venv", "site-packages"})


@dataclass(frozen=True, kw_only=True)
class WorkspacePolicy:
    """Where workspace inputs may come from, and how much of them a task may read.

    Attributes:
        roots: Directories a task may read below. Empty means workspace paths are disabled.
        max_file_bytes: Larger files are skipped.
        max_files: More files than this refuses the whole request.
        max_total_bytes: More bytes in total than this refuses the whole request.
    """

    roots: tuple[Path, ...] = ()
    max_file_bytes: int = 2 * 1024 * 1024
    max_files: int = 200
    max_total_bytes: int = 10 * 1024 * 1024

    def resolve(self, path: str) -> Path:
        """Resolve `path` (following symlinks) and require it to exist inside a root.

        Relative paths are tried against each root in order; the first that exists wins.

        Args:
            path: The path as the caller wrote it.

        Returns:
            The fully resolved path.

        Raises:
            InputRefusedError: No roots are configured, the path is outside them, or it does not exist.
        """
        roots = self._resolved_roots()
        if not roots:
            raise InputRefusedError(
                "workspace paths are disabled: ORCHESTRION_WORKSPACE_ROOTS is not set", field=_FIELD
            )
        if not path or "\x00" in path:
            raise InputRefusedError("path must be a non-empty string without NUL bytes", field=_FIELD)
        candidate = Path(path)
        candidates = [candidate] if candidate.is_absolute() else [root / candidate for root in roots]
        for option in candidates:
            try:
                # Check containment before existence so that the answer for a path outside the
                # roots never reveals whether it exists.
                if not self._inside(option.resolve(strict=False), roots):
                    continue
                resolved = option.resolve(strict=True)
            except (OSError, RuntimeError):
                continue
            if self._inside(resolved, roots):
                return resolved
        if any(self._inside_loosely(option, roots) for option in candidates):
            raise InputRefusedError(
                f"path {path!r} does not exist or is not readable inside the workspace roots", field=_FIELD
            )
        raise InputRefusedError(
            f"path {path!r} is outside the configured workspace roots ({len(roots)} configured)",
            field=_FIELD,
            details={"roots_configured": len(roots)},
        )

    def read_files(self, paths: Sequence[str]) -> list[InputFile]:
        """Read the text files at `paths` (files or directories, walked recursively in sorted order).

        Binary files, files over `max_file_bytes`, hidden and tool directories (``.git``,
        ``node_modules``...) and symlinks leaving the roots are skipped. Symlinked directories are
        not followed. This call blocks; use `aread_files` on the event loop.

        Args:
            paths: Paths as the caller wrote them.

        Returns:
            One `InputFile` per file read, named relative to its root, with ``source="workspace"``.

        Raises:
            InputRefusedError: A path is refused, or reading would exceed `max_files` or `max_total_bytes`.
        """
        roots = self._resolved_roots()
        files: list[InputFile] = []
        seen: set[Path] = set()
        total = 0
        skipped = 0
        for raw in paths:
            resolved = self.resolve(raw)
            for shown, real in self._walk(resolved, roots):
                if real in seen:
                    continue
                seen.add(real)
                content = self._read_text(real)
                if content is None:
                    skipped += 1
                    continue
                size = len(content.encode("utf-8", "surrogatepass"))
                if len(files) + 1 > self.max_files:
                    raise InputRefusedError(
                        f"too many files: more than max_files={self.max_files}",
                        field=_FIELD,
                        details={"limit": "max_files", "value": self.max_files},
                    )
                if total + size > self.max_total_bytes:
                    raise InputRefusedError(
                        f"inputs exceed max_total_bytes={self.max_total_bytes}",
                        field=_FIELD,
                        details={"limit": "max_total_bytes", "value": self.max_total_bytes},
                    )
                total += size
                files.append(
                    InputFile(name=_relative_name(shown, roots), content=content, source="workspace")
                )
        logger.debug("read %d workspace files (%d bytes), skipped %d", len(files), total, skipped)
        return files

    async def aread_files(self, paths: Sequence[str]) -> list[InputFile]:
        """`read_files` in a worker thread, for use on the event loop."""
        return await asyncio.to_thread(self.read_files, paths)

    def _resolved_roots(self) -> tuple[Path, ...]:
        return tuple(Path(root).resolve() for root in self.roots)

    @staticmethod
    def _inside(path: Path, roots: Sequence[Path]) -> bool:
        return any(path.is_relative_to(root) for root in roots)

    @classmethod
    def _inside_loosely(cls, path: Path, roots: Sequence[Path]) -> bool:
        """Whether `path` would be inside a root if it existed (symlinks followed where they do)."""
        try:
            return cls._inside(path.resolve(strict=False), roots)
        except (OSError, RuntimeError):
            return False

    def _walk(self, start: Path, roots: Sequence[Path]) -> list[tuple[Path, Path]]:
        """Return (path as found, resolved path) for every regular file under `start`."""
        if start.is_file():
            return [(start, start)]
        if not start.is_dir():
            return []
        found: list[tuple[Path, Path]] = []
        for dirpath, dirnames, filenames in os.walk(start, followlinks=False):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and d not in _SKIPPED_DIRS)
            for filename in sorted(filenames):
                entry = Path(dirpath) / filename
                try:
                    real = entry.resolve(strict=True)
                except (OSError, RuntimeError):
                    continue
                if real.is_file() and self._inside(real, roots):
                    found.append((entry, real))
        return found

    def _read_text(self, path: Path) -> str | None:
        """Return the file's text, or None when it is too large, binary or unreadable."""
        try:
            if path.stat().st_size > self.max_file_bytes:
                return None
            raw = path.read_bytes()
        except OSError:
            return None
        if len(raw) > self.max_file_bytes or b"\x00" in raw[:_BINARY_SNIFF_BYTES]:
            return None
        return raw.decode("utf-8", errors="replace")


def _relative_name(path: Path, roots: Sequence[Path]) -> str:
    """Name `path` relative to the most specific root that contains it."""
    containing = [root for root in roots if path.is_relative_to(root)]
    if not containing:
        return path.name
    root = max(containing, key=lambda r: len(r.parts))
    relative = path.relative_to(root)
    return relative.as_posix() if relative.parts else path.name
