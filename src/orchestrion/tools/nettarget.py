"""The first steps every network tool takes: a policy to go through, a target to go to, typed arguments.

Tools that reach a target call `require_target`, which turns a missing policy (this server gives tools
no network access) or a missing target into a `ToolError` naming the tool, and parses the target
through the policy (a malformed target is the policy's `ValidationError`).
"""

from __future__ import annotations

import ipaddress
from typing import TypeVar

from orchestrion.exceptions import ToolError
from orchestrion.tools.base import ToolArgs, ToolContext
from orchestrion.tools.targets import Target, TargetPolicy

_A = TypeVar("_A", bound=ToolArgs)


def require_policy(ctx: ToolContext, tool: str) -> TargetPolicy:
    """The task's network policy, or a `ToolError` saying the tool has no network access.

    Args:
        ctx: The tool's context.
        tool: The tool's name, for the message.
    """
    if ctx.targets is None:
        raise ToolError(
            f"{tool} needs network access, and this server gives tools none (no target policy)", tool=tool
        )
    return ctx.targets


def require_target(ctx: ToolContext, tool: str) -> tuple[TargetPolicy, Target]:
    """The policy and the task's parsed target.

    Args:
        ctx: The tool's context.
        tool: The tool's name, for the messages.

    Returns:
        The policy and the target as `TargetPolicy.parse_target` reads it (nothing resolved yet).

    Raises:
        ToolError: No policy, or the task names no target.
        ValidationError: The target is malformed.
    """
    policy = require_policy(ctx, tool)
    if ctx.target is None or not ctx.target.strip():
        raise ToolError(f"{tool} needs a target (host, host:port or URL) and the task names none", tool=tool)
    return policy, policy.parse_target(ctx.target)


def expect_args(args: ToolArgs, model: type[_A], tool: str) -> _A:
    """`args` as the tool's own argument model (the runner validates them with it)."""
    if not isinstance(args, model):
        raise ToolError(f"{tool} expects {model.__name__}", tool=tool)
    return args


def url_host(host: str) -> str:
    """`host` as it is written in a URL (IPv6 literals in brackets)."""
    try:
        literal = ipaddress.ip_address(host)
    except ValueError:
        return host
    return f"[{literal.compressed}]" if literal.version == 6 else literal.compressed
