"""Tools from MCP servers: stdio servers started at runtime start, their tools offered as Orchestrion tools.

The family: `mcp_config` reads the servers file, `mcp_session` owns one server process and its
`ClientSession`, `mcp_tool` wraps one remote tool, and this module's `McpServerPool` ties them
together for the runtime::

    pool = McpServerPool(load_mcp_config(settings.mcp_servers_file))
    await pool.start()            # starts every server, lists its tools
    tools.update(pool.tools())    # {"mcp.<server>.<tool>": McpTool}
    ...
    await pool.aclose()           # stops every server, reaps every process

An MCP tool sees only the arguments the agent gives it: not the task's files, target or network
policy. The server process itself is not sandboxed by Orchestrion.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Sequence
from types import TracebackType

from jsonschema.exceptions import SchemaError
from mcp import types

from orchestrion.tools.base import Tool
from orchestrion.tools.mcp_config import McpServerConfig, load_mcp_config
from orchestrion.tools.mcp_session import McpServerConnection
from orchestrion.tools.mcp_tool import McpArguments, McpTool, result_to_output

__all__ = [
    "McpArguments",
    "McpServerConfig",
    "McpServerConnection",
    "McpServerPool",
    "McpTool",
    "load_mcp_config",
    "result_to_output",
]

logger = logging.getLogger(__name__)

# MCP tool names may use letters, digits, '_', '-' and '.'; anything else would not survive as part of a
# tool name that LLM vendors and the API pass around.
_TOOL_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,128}$")


class McpServerPool:
    """Every configured MCP server, started together and stopped together.

    Args:
        configs: The servers, from `load_mcp_config`.
    """

    def __init__(self, configs: Sequence[McpServerConfig]) -> None:
        self._connections = [McpServerConnection(config) for config in configs]
        self._tools: dict[str, Tool] = {}
        self._started = False

    @property
    def connections(self) -> tuple[McpServerConnection, ...]:
        """One connection per configured server, in file order."""
        return tuple(self._connections)

    async def start(self) -> None:
        """Start every server concurrently and collect their tools.

        If any server fails to start, the ones that did are stopped again before the error is raised.

        Raises:
            ConfigurationError: Naming the file and the server that failed (with its stderr's tail), or
                a ``from_env:`` variable that is not set.
        """
        if self._started:
            return
        results = await asyncio.gather(
            *(connection.start() for connection in self._connections), return_exceptions=True
        )
        failures = [r for r in results if isinstance(r, BaseException)]
        if failures:
            await self.aclose()
            for other in failures[1:]:
                logger.warning("%s", other)
            raise failures[0]
        tools: dict[str, Tool] = {}
        for connection, listed in zip(self._connections, results, strict=True):
            assert not isinstance(listed, BaseException)  # every failure was raised above
            tools.update(self._wrap(connection, listed))
        self._tools = tools
        self._started = True

    def tools(self) -> dict[str, Tool]:
        """The started servers' tools, keyed ``mcp.<server>.<tool>`` (empty before `start`)."""
        return dict(self._tools)

    async def aclose(self) -> None:
        """Stop every server and reap its process; safe to call more than once."""
        await asyncio.gather(*(connection.aclose() for connection in self._connections))
        self._tools = {}
        self._started = False

    async def __aenter__(self) -> McpServerPool:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    @staticmethod
    def _wrap(connection: McpServerConnection, listed: Sequence[types.Tool]) -> dict[str, Tool]:
        config = connection.config
        wrapped: dict[str, Tool] = {}
        offered: set[str] = set()
        for remote in listed:
            offered.add(remote.name)
            if config.tools is not None and remote.name not in config.tools:
                continue
            if not _TOOL_NAME.match(remote.name):
                logger.warning("MCP server %s: skipping tool %r (unusable name)", config.name, remote.name)
                continue
            try:
                tool = McpTool.create(connection, remote)
            except SchemaError:
                logger.warning(
                    "MCP server %s: skipping tool %s (invalid input schema)", config.name, remote.name
                )
                continue
            wrapped[tool.name] = tool
        missing = sorted((config.tools or frozenset()) - offered)
        if missing:
            logger.warning(
                "MCP server %s does not offer the allowlisted tools %s", config.name, ", ".join(missing)
            )
        return wrapped
