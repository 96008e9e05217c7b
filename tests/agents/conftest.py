"""Agent tests reuse the engine harness (an in-process runtime with custom agents on scripted routes)."""

from __future__ import annotations

from tests.engines.conftest import harness_factory

__all__ = ["harness_factory"]
