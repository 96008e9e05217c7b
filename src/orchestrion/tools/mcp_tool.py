"""`McpTool`: one tool of an MCP server, offered to agents as ``mcp.<server>.<tool>``.

Arguments are checked against the server's JSON schema with `jsonschema` (a dependency of the `mcp`
SDK, so always present with it), with an empty reference registry so that a schema's ``$ref`` can
never make Orchestrion fetch a URL. The result becomes observations: each text content one, images,
audio and resources summarised (never their bytes), and an ``isError`` result a `ToolError` with the
server's message. Quoted text goes through `redact_secrets`.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import copy
import json
import warnings
from typing import TYPE_CHECKING, Any, ClassVar, cast

from jsonschema.exceptions import best_match
from jsonschema.validators import Draft202012Validator, validator_for
from mcp import types
from referencing import Registry

from orchestrion.exceptions import ToolError
from orchestrion.tools.base import Observation, Tool, ToolArgs, ToolContext, ToolOutput
from orchestrion.tools.secrets import redact_secrets

if TYPE_CHECKING:
    from orchestrion.tools.mcp_session import McpServerConnection

__all__ = ["McpArguments", "McpTool", "result_to_output"]

# One observation's data stays well under the base cap of 16 KiB of JSON, and `redact_secrets`, whose
# cost grows with the square of a long unbroken line, only ever sees this much of a text.
_MAX_TEXT_CHARS = 4000
_PREVIEW_CHARS = 1000
_MESSAGE_CHARS = 500
_DESCRIPTION_CHARS = 1024


class McpArguments(ToolArgs):
    """The arguments of an MCP tool, already checked against the server's schema."""

    arguments: dict[str, Any]


class McpTool(Tool):
    """One remote tool; build it with `McpTool.create`, which names its own subclass.

    `Tool` keeps `name`, `description` and `timeout_seconds` on the class, so each remote tool gets a
    small subclass carrying its own values instead of bending those class attributes per instance.
    """

    name: ClassVar[str] = "mcp"
    description: ClassVar[str] = "A tool of an MCP server."
    args_model: ClassVar[type[ToolArgs]] = McpArguments

    def __init__(self, *, connection: McpServerConnection, remote: types.Tool) -> None:
        self._connection = connection
        self._remote = remote
        self._schema: dict[str, Any] = copy.deepcopy(remote.inputSchema)
        with warnings.catch_warnings():
            # jsonschema warns about an unknown `$schema` before falling back to the latest draft.
            warnings.simplefilter("ignore", DeprecationWarning)
            validator_class = validator_for(self._schema, default=Draft202012Validator)
        validator_class.check_schema(self._schema)
        self._validator = validator_class(self._schema, registry=Registry())

    @classmethod
    def create(cls, connection: McpServerConnection, remote: types.Tool) -> McpTool:
        """Wrap `remote`, a tool listed by the server behind `connection`.

        Raises:
            jsonschema.exceptions.SchemaError: When the server's input schema is not a valid schema.
        """
        config = connection.config
        qualified = f"mcp.{config.name}.{remote.name}"
        text = (remote.description or remote.title or remote.name).strip()
        attributes = {
            "name": qualified,
            "description": text[:_DESCRIPTION_CHARS] + f" (MCP server {config.name})",
            # Room for one restart before the call itself; the connection enforces the call's limit.
            "timeout_seconds": config.timeout_seconds + config.startup_timeout_seconds + 5.0,
            "__module__": cls.__module__,
            "__qualname__": f"McpTool[{qualified}]",
        }
        subclass = cast("type[McpTool]", type(f"McpTool[{qualified}]", (cls,), attributes))
        return subclass(connection=connection, remote=remote)

    @property
    def server(self) -> str:
        """The MCP server's name."""
        return self._connection.name

    @property
    def remote_name(self) -> str:
        """The tool's name on the server."""
        return self._remote.name

    def json_schema(self) -> dict[str, Any]:
        """The server's input schema (a copy)."""
        return copy.deepcopy(self._schema)

    def parse_args(self, raw: dict[str, Any]) -> ToolArgs:
        """Check `raw` against the server's schema, raising ToolError naming the first problem."""
        if not isinstance(raw, dict):
            raise ToolError(f"invalid arguments for {self.name}: expected an object", tool=self.name)
        error = best_match(self._validator.iter_errors(raw))
        if error is not None:
            where = error.json_path if error.json_path != "$" else "arguments"
            message = _clip(f"{where}: {error.message}", _MESSAGE_CHARS)
            raise ToolError(f"invalid arguments for {self.name}: {message}", tool=self.name)
        return McpArguments(arguments=raw)

    async def execute(self, args: ToolArgs, ctx: ToolContext) -> ToolOutput:
        """Call the remote tool; its content becomes observations."""
        if not isinstance(args, McpArguments):
            raise ToolError(f"{self.name} expects McpArguments", tool=self.name)
        result = await self._connection.call_tool(self._remote.name, args.arguments, qualified=self.name)
        # Redacting long texts is CPU work: keep it off the event loop.
        return await asyncio.to_thread(result_to_output, result, tool=self.name, server=self.server)


def _clip(text: str, limit: int) -> str:
    text = redact_secrets(text[: limit * 2])  # cut first: a secret cut in half still reads as one
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _decoded_size(data: str) -> int:
    try:
        return len(base64.b64decode(data, validate=False))
    except (binascii.Error, ValueError):
        return len(data) * 3 // 4


def _text_observation(text: str) -> Observation:
    clean = redact_secrets(text[:_MAX_TEXT_CHARS])
    first = next((line.strip() for line in clean.splitlines() if line.strip()), "(empty text)")
    data: dict[str, Any] = {"type": "text", "text": clean, "chars": len(text)}
    if len(text) > _MAX_TEXT_CHARS:
        data["truncated"] = True
    return Observation(summary=first[:200], data=data)


def _resource_observation(resource: types.TextResourceContents | types.BlobResourceContents) -> Observation:
    uri = redact_secrets(str(resource.uri))
    mime = resource.mimeType or "unknown type"
    if isinstance(resource, types.TextResourceContents):
        preview = redact_secrets(resource.text[:_PREVIEW_CHARS])
        return Observation(
            summary=f"resource {uri} ({mime}, {len(resource.text)} chars)",
            data={
                "type": "resource",
                "uri": uri,
                "mime_type": mime,
                "chars": len(resource.text),
                "preview": preview,
            },
            location=uri,
        )
    size = _decoded_size(resource.blob)
    return Observation(
        summary=f"binary resource {uri} ({mime}, {size} bytes)",
        data={"type": "resource", "uri": uri, "mime_type": mime, "bytes": size},
        location=uri,
    )


def _content_observation(content: Any) -> Observation:
    if isinstance(content, types.TextContent):
        return _text_observation(content.text)
    if isinstance(content, types.ImageContent | types.AudioContent):
        size = _decoded_size(content.data)
        return Observation(
            summary=f"{content.type} ({content.mimeType}, {size} bytes)",
            data={"type": content.type, "mime_type": content.mimeType, "bytes": size},
        )
    if isinstance(content, types.EmbeddedResource):
        return _resource_observation(content.resource)
    if isinstance(content, types.ResourceLink):
        uri = redact_secrets(str(content.uri))
        return Observation(
            summary=f"resource link {uri}" + (f" ({content.mimeType})" if content.mimeType else ""),
            data={
                "type": "resource_link",
                "uri": uri,
                "name": content.name,
                "description": redact_secrets(content.description or ""),
                "mime_type": content.mimeType,
            },
            location=uri,
        )
    kind = str(getattr(content, "type", type(content).__name__))
    return Observation(summary=f"{kind} content (not shown)", data={"type": kind})


def result_to_output(result: types.CallToolResult, *, tool: str, server: str) -> ToolOutput:
    """Turn a tool result into observations, or raise ToolError for an ``isError`` result.

    Args:
        result: What the server answered.
        tool: The Orchestrion tool name (``mcp.<server>.<tool>``).
        server: The server's name.

    Raises:
        ToolError: For ``isError``, with the server's text (redacted and cut to 500 characters).
    """
    if result.isError:
        texts = [c.text for c in result.content if isinstance(c, types.TextContent)]
        message = " ".join(t.strip() for t in texts if t.strip()) or "the server reported an error"
        raise ToolError(f"{tool} failed: {_clip(message, _MESSAGE_CHARS)}", tool=tool)
    observations = [_content_observation(content) for content in result.content]
    data: dict[str, Any] = {"server": server, "tool": tool, "contents": len(result.content)}
    if result.structuredContent is not None:
        structured = json.dumps(result.structuredContent, default=str, sort_keys=True)
        data["structured"] = redact_secrets(structured[:_MAX_TEXT_CHARS])
        if not observations:
            observations.append(_text_observation(structured))
    if not observations:
        observations.append(Observation(summary=f"{tool} returned no content", data={"type": "empty"}))
    return ToolOutput(observations=tuple(observations), data=data)
