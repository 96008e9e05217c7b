"""The built-in tools, keyed by name."""

from __future__ import annotations

from orchestrion.tools.base import Tool
from orchestrion.tools.code import BanditTool, PythonMetricsTool
from orchestrion.tools.data import DataProfileTool
from orchestrion.tools.secrets import SecretScanTool


def build_builtin_tools() -> dict[str, Tool]:
    """Return a fresh instance of every built-in tool, keyed by its `name`."""
    tools: list[Tool] = [PythonMetricsTool(), BanditTool(), SecretScanTool(), DataProfileTool()]
    return {tool.name: tool for tool in tools}
