"""The MCP servers file: which stdio MCP servers to start and which of their tools to offer.

The file (``ORCHESTRION_MCP_SERVERS_FILE``) looks like::

    servers:
      files:                        # the server's name; its tools become mcp.files.<tool>
        command: /usr/bin/python3
        args: [-m, my_mcp_server]
        env: {API_TOKEN: from_env:MY_TOKEN, LOG_LEVEL: warning}
        cwd: /srv/x
        timeout_seconds: 30         # per tool call
        startup_timeout_seconds: 30 # start, initialize and list the tools
        tools: [read_file, search]  # optional allowlist; default all

An ``env`` value ``from_env:VAR`` is copied from Orchestrion's own environment when the server starts,
so secrets live in the environment rather than in the file; other values are passed as written. Env
values are never logged nor put in error messages, only their keys.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic import ValidationError as PydanticValidationError

from orchestrion.exceptions import ConfigurationError

__all__ = ["FROM_ENV_PREFIX", "McpServerConfig", "load_mcp_config", "resolve_env"]

FROM_ENV_PREFIX = "from_env:"
# Server and tool names become part of `mcp.<server>.<tool>`, so a dot would make the name ambiguous.
_SERVER_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_ENV_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True, kw_only=True)
class McpServerConfig:
    """One configured MCP server (validated).

    Attributes:
        name: The server's key in the file; its tools are named ``mcp.<name>.<tool>``.
        command: The executable to start.
        args: Its arguments.
        env: Extra environment variables, values either literal or ``from_env:VAR``.
        cwd: The working directory, or None for Orchestrion's own.
        timeout_seconds: The limit of one tool call.
        startup_timeout_seconds: The limit of starting the server and listing its tools.
        tools: The allowlist of tool names, or None for every tool the server lists.
        source: The file it came from (for error messages).
    """

    name: str
    command: str
    args: tuple[str, ...] = ()
    env: Mapping[str, str] | None = None
    cwd: Path | None = None
    timeout_seconds: float = 30.0
    startup_timeout_seconds: float = 30.0
    tools: frozenset[str] | None = None
    source: str = "<config>"


class _ServerIn(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    command: str = Field(min_length=1)
    args: list[str] = Field(default_factory=list)
    env: dict[str, str] = Field(default_factory=dict)
    cwd: Path | None = None
    timeout_seconds: float = Field(default=30.0, gt=0, le=3600)
    startup_timeout_seconds: float = Field(default=30.0, gt=0, le=600)
    tools: list[str] | None = None

    @field_validator("args", mode="before")
    @classmethod
    def _args_are_strings(cls, value: Any) -> Any:
        # YAML reads `[-p, 8080]` with an int; the command line only ever holds strings.
        if isinstance(value, list):
            return [str(v) if isinstance(v, int | float) and not isinstance(v, bool) else v for v in value]
        return value

    @field_validator("env")
    @classmethod
    def _env_keys(cls, value: dict[str, str]) -> dict[str, str]:
        for key, item in value.items():
            if not _ENV_KEY.match(key):
                raise ValueError(f"{key!r} is not a valid environment variable name")
            if item.startswith(FROM_ENV_PREFIX) and not _ENV_KEY.match(item[len(FROM_ENV_PREFIX) :]):
                raise ValueError(f"{key}: {FROM_ENV_PREFIX} must name an environment variable")
        return value

    @field_validator("tools")
    @classmethod
    def _tool_names(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and not value:
            raise ValueError("an empty allowlist would offer no tool; omit `tools` to offer them all")
        return value


class _FileIn(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    servers: dict[str, _ServerIn]

    @field_validator("servers")
    @classmethod
    def _server_names(cls, value: dict[str, _ServerIn]) -> dict[str, _ServerIn]:
        for name in value:
            if not _SERVER_NAME.match(name):
                raise ValueError(f"server name {name!r} must be 1-64 letters, digits, '_' or '-'")
        return value


def _where(location: Sequence[int | str]) -> str:
    text = ""
    for part in location:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def load_mcp_config(path: Path) -> list[McpServerConfig]:
    """Read and validate an MCP servers file.

    Args:
        path: The YAML file.

    Returns:
        One config per server, in file order.

    Raises:
        ConfigurationError: Naming the file and the field (``servers.files.timeout_seconds``).
    """
    source = str(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigurationError(f"{path}: cannot be read: {exc}", details={"file": source}) from exc
    except yaml.YAMLError as exc:
        raise ConfigurationError(f"{path}: not valid YAML: {exc}", details={"file": source}) from exc
    try:
        parsed = _FileIn.model_validate(raw if raw is not None else {})
    except PydanticValidationError as exc:
        error = exc.errors()[0]
        field = _where(error["loc"])
        # A bad env value must not be echoed back: it may be the secret itself.
        message = str(error["msg"]) if ".env." not in f".{field}." else "invalid environment entry"
        raise ConfigurationError(
            f"{path}: {field or '(top level)'}: {message}", details={"file": source, "field": field}
        ) from exc
    return [
        McpServerConfig(
            name=name,
            command=server.command,
            args=tuple(server.args),
            env=dict(server.env) or None,
            cwd=server.cwd,
            timeout_seconds=server.timeout_seconds,
            startup_timeout_seconds=server.startup_timeout_seconds,
            tools=frozenset(server.tools) if server.tools is not None else None,
            source=source,
        )
        for name, server in parsed.servers.items()
    ]


def resolve_env(config: McpServerConfig, environ: Mapping[str, str] | None = None) -> dict[str, str] | None:
    """The server's extra environment, ``from_env:VAR`` values read from `environ` (default os.environ).

    Raises:
        ConfigurationError: When a ``from_env:`` variable is not set, naming the field but not a value.
    """
    if config.env is None:
        return None
    source = os.environ if environ is None else environ
    resolved: dict[str, str] = {}
    for key, value in config.env.items():
        if value.startswith(FROM_ENV_PREFIX):
            variable = value[len(FROM_ENV_PREFIX) :]
            if variable not in source:
                field = f"servers.{config.name}.env.{key}"
                raise ConfigurationError(
                    f"{config.source}: {field}: environment variable {variable} is not set",
                    details={"file": config.source, "field": field},
                )
            resolved[key] = source[variable]
        else:
            resolved[key] = value
    return resolved
