"""Fakes that ship with the package: a scripted LLM provider and a local OpenAI-compatible server."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from orchestrion.testing.scripted import ScriptedProvider, ScriptFunction, ScriptItem

if TYPE_CHECKING:
    from orchestrion.testing.openai_server import OpenAITestServer, example_for_schema

__all__ = ["OpenAITestServer", "ScriptFunction", "ScriptItem", "ScriptedProvider", "example_for_schema"]

_LAZY = {"OpenAITestServer", "example_for_schema"}


def __getattr__(name: str) -> Any:
    # Imported lazily so that `python -m orchestrion.testing.openai_server` does not find its own
    # module already imported by the package (runpy warns about that), and so that importing the
    # scripted provider does not pull in uvicorn.
    if name in _LAZY:
        from orchestrion.testing import openai_server

        return getattr(openai_server, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
