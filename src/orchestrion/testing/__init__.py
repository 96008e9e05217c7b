"""Fakes that ship with the package: a scripted LLM provider and a local fault-injecting LLM vendor."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from orchestrion.testing.scripted import ScriptedProvider, ScriptFunction, ScriptItem

if TYPE_CHECKING:
    from orchestrion.testing.faults import Fault
    from orchestrion.testing.schema_example import example_for_schema
    from orchestrion.testing.vendor_server import OpenAITestServer, RecordedCall, VendorTestServer

__all__ = [
    "Fault",
    "OpenAITestServer",
    "RecordedCall",
    "ScriptFunction",
    "ScriptItem",
    "ScriptedProvider",
    "VendorTestServer",
    "example_for_schema",
]

_LAZY = {
    "Fault": "orchestrion.testing.faults",
    "OpenAITestServer": "orchestrion.testing.vendor_server",
    "RecordedCall": "orchestrion.testing.vendor_server",
    "VendorTestServer": "orchestrion.testing.vendor_server",
    "example_for_schema": "orchestrion.testing.schema_example",
}


def __getattr__(name: str) -> Any:
    # Imported lazily so that `python -m orchestrion.testing.vendor_server` does not find its own
    # module already imported by the package (runpy warns about that), and so that importing the
    # scripted provider does not pull in uvicorn.
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
