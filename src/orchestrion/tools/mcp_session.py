"""One MCP server process over stdio and the `ClientSession` talking to it.

The SDK's `stdio_client` and `ClientSession` are anyio context managers whose task groups and cancel
scopes must be entered and exited by the same task, so each connection has an *owner task* that enters
both, publishes the live session, and waits for a stop signal before leaving them. Tool calls from any
other task only send requests through that session (which the SDK allows: requests go through memory
streams).

A relay between the transport and the session notices the server's stdout closing (the process
exited) and stops the owner at once, so a crashed server is known to be down before the next call,
which then restarts it once. The server's stderr is read through a pipe: its tail explains failures
and each chunk is logged at DEBUG only.
"""

from __future__ import annotations

import asyncio
import logging
import os
from datetime import timedelta
from typing import Any, BinaryIO, TextIO

import anyio
from anyio.abc import ObjectReceiveStream, ObjectSendStream
from mcp import ClientSession, McpError, StdioServerParameters, types
from mcp.client.stdio import stdio_client
from mcp.shared.message import SessionMessage

from orchestrion.exceptions import ConfigurationError, ToolError
from orchestrion.tools.mcp_config import McpServerConfig, resolve_env
from orchestrion.tools.secrets import redact_secrets

__all__ = ["McpServerConnection"]

logger = logging.getLogger(__name__)

_TIMEOUT_CODE = 408  # what the SDK's McpError carries when a request's read timeout expires
_SHUTDOWN_SECONDS = 10.0  # the SDK itself waits 2 s for a graceful exit, then 2 s after SIGTERM
_DRAIN_SECONDS = 1.0
_STDERR_TAIL_CHARS = 2000
_MESSAGE_CHARS = 500


def _clip(text: str, limit: int = _MESSAGE_CHARS) -> str:
    # Cut before redacting: redaction time grows fast with line length, and a cut secret still reads as one.
    text = redact_secrets(text.strip()[: limit * 2])
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _last_lines(tail: str, limit: int = _MESSAGE_CHARS) -> str:
    """The end of the server's stderr (where the reason for an exit usually is), redacted."""
    lines = [line.strip() for line in tail.splitlines() if line.strip()]
    text = redact_secrets(" | ".join(lines)[-limit * 2 :])
    return text if len(text) <= limit else "..." + text[-(limit - 3) :]


class _StderrTail:
    """The server's stderr: a pipe whose write end the child gets, read here into a short tail."""

    def __init__(self, server: str) -> None:
        self._server = server
        read_fd, write_fd = os.pipe()
        self.writer: TextIO = open(write_fd, "w", encoding="utf-8")
        self._reader: BinaryIO = open(read_fd, "rb", buffering=0)
        self._tail = ""
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        stream = asyncio.StreamReader()
        transport, _ = await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(stream), self._reader
        )
        self._task = asyncio.create_task(self._read(stream, transport), name=f"mcp-stderr:{self._server}")

    def child_started(self) -> None:
        # The child holds its own copy of the write end; closing ours lets EOF arrive when it exits.
        self.writer.close()

    @property
    def tail(self) -> str:
        return self._tail

    async def _read(self, stream: asyncio.StreamReader, transport: asyncio.ReadTransport) -> None:
        try:
            while chunk := await stream.read(4096):
                text = chunk.decode("utf-8", "replace")
                self._tail = (self._tail + text)[-_STDERR_TAIL_CHARS:]
                logger.debug("mcp server %s stderr: %s", self._server, text.rstrip())
        finally:
            transport.close()

    async def aclose(self) -> None:
        self.writer.close()
        if self._task is None:
            self._reader.close()
            return
        # A grandchild that inherited stderr may keep the pipe open: do not wait for it for long.
        done, _ = await asyncio.wait({self._task}, timeout=1.0)
        if not done:
            self._task.cancel()
            await asyncio.wait({self._task})


async def _relay(
    source: ObjectReceiveStream[SessionMessage | Exception],
    sink: ObjectSendStream[SessionMessage | Exception],
    on_eof: asyncio.Event,
) -> None:
    """Forward the server's messages to the session; set `on_eof` when its stdout closes."""
    try:
        async with sink:
            async for message in source:
                await sink.send(message)
    except (anyio.BrokenResourceError, anyio.ClosedResourceError):
        pass
    finally:
        on_eof.set()


def _leaf(exc: BaseException) -> BaseException:
    """The first real error inside the exception groups that anyio's task groups wrap it in."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc


async def _list_tools(session: ClientSession) -> tuple[types.Tool, ...]:
    tools: list[types.Tool] = []
    result = await session.list_tools()
    tools.extend(result.tools)
    # A misbehaving server could page forever; 100 pages of tools is far past any real one.
    for _ in range(100):
        if not result.nextCursor:
            break
        result = await session.list_tools(result.nextCursor)
        tools.extend(result.tools)
    return tuple(tools)


class McpServerConnection:
    """A configured MCP server: its process, its session, restart on demand and shutdown.

    Call `start()` once, then `call_tool` from any task; `aclose()` stops the process.
    """

    def __init__(self, config: McpServerConfig) -> None:
        self.config = config
        self.restarts = 0
        self._lock = asyncio.Lock()
        self._session: ClientSession | None = None
        self._task: asyncio.Task[None] | None = None
        self._stop: asyncio.Event | None = None
        self._stderr: _StderrTail | None = None
        self._closed = False
        # Calls in flight, so that stopping a session lets them see "connection closed" first.
        self._calls = 0
        self._idle = asyncio.Event()
        self._idle.set()

    @property
    def name(self) -> str:
        """The server's name from the config file."""
        return self.config.name

    @property
    def running(self) -> bool:
        """True while the process is up and its session initialised."""
        return self._session is not None and self._task is not None and not self._task.done()

    async def start(self) -> tuple[types.Tool, ...]:
        """Start the server, initialise the session and return every tool it lists.

        Raises:
            ConfigurationError: When the process cannot start, exits, or does not answer in
                `startup_timeout_seconds`; the message has the tail of its stderr.
        """
        async with self._lock:
            if self._closed:
                raise ConfigurationError(f"MCP server {self.name} is closed", details={"server": self.name})
            return await self._start_locked()

    async def call_tool(
        self, tool: str, arguments: dict[str, Any], *, qualified: str
    ) -> types.CallToolResult:
        """Call one tool under the configured timeout, restarting a server found down (once).

        Args:
            tool: The tool's name on the server.
            arguments: Its arguments (already validated against its schema).
            qualified: The Orchestrion tool name, for error messages.

        Raises:
            ToolError: On timeout, a protocol error, the server exiting, or a failed restart.
        """
        session = await self._live_session(qualified)
        timeout = self.config.timeout_seconds
        self._calls += 1
        self._idle.clear()
        try:
            # The outer limit covers a server that stops reading stdin, where even sending blocks.
            async with asyncio.timeout(timeout + 2.0):
                return await session.call_tool(
                    tool, arguments, read_timeout_seconds=timedelta(seconds=timeout)
                )
        except TimeoutError as exc:
            raise ToolError(f"{qualified} timed out after {timeout:g}s", tool=qualified) from exc
        except McpError as exc:
            if exc.error.code == _TIMEOUT_CODE:
                raise ToolError(f"{qualified} timed out after {timeout:g}s", tool=qualified) from exc
            if not self.running:
                raise ToolError(self._exited_message(qualified), tool=qualified) from exc
            raise ToolError(f"{qualified}: MCP error: {_clip(exc.error.message)}", tool=qualified) from exc
        except (anyio.BrokenResourceError, anyio.ClosedResourceError, anyio.EndOfStream) as exc:
            raise ToolError(self._exited_message(qualified), tool=qualified) from exc
        except RuntimeError as exc:
            # The SDK raises RuntimeError for structured content that breaks the tool's output schema.
            raise ToolError(f"{qualified}: invalid result: {_clip(str(exc))}", tool=qualified) from exc
        finally:
            self._calls -= 1
            if self._calls == 0:
                self._idle.set()

    async def aclose(self) -> None:
        """Stop the server (close its stdin, then SIGTERM, then SIGKILL) and reap it."""
        self._closed = True
        async with self._lock:
            await self._stop_owner()

    def _exited_message(self, qualified: str) -> str:
        tail = self._stderr.tail if self._stderr is not None else ""
        detail = f"; stderr: {_last_lines(tail)}" if tail.strip() else ""
        if self._closed:
            return f"{qualified}: MCP server {self.name} was shut down during the call"
        return f"{qualified}: MCP server {self.name} exited during the call{detail}"

    async def _live_session(self, qualified: str) -> ClientSession:
        session = self._session
        if session is not None and self.running:
            return session
        async with self._lock:
            session = self._session
            if session is not None and self.running:
                return session  # another call restarted it while this one waited
            if self._closed:
                raise ToolError(f"{qualified}: MCP server {self.name} is shut down", tool=qualified)
            logger.warning("MCP server %s is not running; restarting it", self.name)
            try:
                await self._start_locked()
            except ConfigurationError as exc:
                raise ToolError(
                    f"{qualified}: MCP server {self.name} is down and did not restart: {exc.message}",
                    tool=qualified,
                ) from exc
            self.restarts += 1
            assert self._session is not None  # set by a successful start
            return self._session

    async def _start_locked(self) -> tuple[types.Tool, ...]:
        await self._stop_owner()  # a crashed owner may still be reaping its process
        config = self.config
        params = StdioServerParameters(
            command=config.command,
            args=list(config.args),
            env=resolve_env(config),
            cwd=config.cwd,
        )
        stderr = _StderrTail(config.name)
        await stderr.start()
        ready: asyncio.Future[tuple[types.Tool, ...]] = asyncio.get_running_loop().create_future()
        stop = asyncio.Event()
        task = asyncio.create_task(self._own(params, stderr, ready, stop), name=f"mcp:{config.name}")
        self._task, self._stop, self._stderr = task, stop, stderr
        try:
            # The owner enforces the startup limit itself; this one only guards against a hang there.
            async with asyncio.timeout(config.startup_timeout_seconds + _SHUTDOWN_SECONDS):
                tools = await asyncio.shield(ready)
        except BaseException as exc:
            await self._stop_owner()
            if isinstance(exc, asyncio.CancelledError):
                raise
            raise self._start_error(exc, stderr.tail) from exc
        logger.info("MCP server %s started with %d tools", config.name, len(tools))
        return tools

    def _start_error(self, error: BaseException, tail: str) -> ConfigurationError:
        exc = _leaf(error)
        if isinstance(exc, TimeoutError):
            why = f"no answer within {self.config.startup_timeout_seconds:g}s"
        elif isinstance(exc, McpError):
            why = f"MCP error: {exc.error.message}"
        elif isinstance(exc, OSError):
            why = f"cannot run {self.config.command!r}: {exc.strerror or exc}"
        else:
            why = f"{type(exc).__name__}: {exc}"
        detail = f"; stderr: {_last_lines(tail)}" if tail.strip() else ""
        return ConfigurationError(
            f"{self.config.source}: MCP server {self.name} failed to start: {_clip(why)}{detail}",
            details={"file": self.config.source, "server": self.name},
        )

    async def _own(
        self,
        params: StdioServerParameters,
        stderr: _StderrTail,
        ready: asyncio.Future[tuple[types.Tool, ...]],
        stop: asyncio.Event,
    ) -> None:
        """Enter the transport and the session, publish the session, wait for `stop`, leave both."""
        try:
            async with stdio_client(params, errlog=stderr.writer) as (read, write):
                stderr.child_started()
                relay_send, relay_receive = anyio.create_memory_object_stream[SessionMessage | Exception](0)
                async with anyio.create_task_group() as group:
                    group.start_soon(_relay, read, relay_send, stop)
                    async with ClientSession(relay_receive, write) as session:
                        with anyio.fail_after(self.config.startup_timeout_seconds):
                            await session.initialize()
                            tools = await _list_tools(session)
                        self._session = session
                        ready.set_result(tools)
                        await stop.wait()
                        self._session = None
                        if not self._closed:
                            logger.warning("MCP server %s exited", self.name)
                        # Ending the session's input lets its receive loop finish normally, answering
                        # every call in flight with "connection closed" rather than leaving it to time out.
                        relay_send.close()
                        with anyio.move_on_after(_DRAIN_SECONDS):
                            await self._idle.wait()
                    group.cancel_scope.cancel()
        except Exception as exc:
            if not ready.done():
                ready.set_exception(exc)
            else:
                logger.warning("MCP server %s stopped: %s", self.name, _clip(str(_leaf(exc))))
        finally:
            self._session = None
            if not ready.done():
                ready.cancel()

    async def _stop_owner(self) -> None:
        task, stop, stderr = self._task, self._stop, self._stderr
        self._task = self._stop = self._stderr = None
        self._session = None
        if stop is not None:
            stop.set()
        if task is not None:
            done, _ = await asyncio.wait({task}, timeout=_SHUTDOWN_SECONDS)
            if not done:
                logger.warning(
                    "MCP server %s did not stop in %gs; cancelling it", self.name, _SHUTDOWN_SECONDS
                )
                task.cancel()
                await asyncio.wait({task})
        if stderr is not None:
            await stderr.aclose()
