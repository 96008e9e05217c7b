"""The Tool ABC: typed arguments, a JSON schema, a timeout and an output cap."""

from __future__ import annotations

import abc
import asyncio
import hashlib
import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, ConfigDict
from pydantic import ValidationError as PydanticValidationError

from orchestrion.domain.findings import Severity
from orchestrion.exceptions import ToolError

if TYPE_CHECKING:
    from orchestrion.tools.targets import TargetPolicy


@dataclass(frozen=True, kw_only=True)
class InputFile:
    """One input the task works on: uploaded content or a file read from a workspace root."""

    name: str
    content: str
    source: str = "upload"  # "upload" or "workspace"
    raw: bytes | None = None

    @property
    def is_binary(self) -> bool:
        """True for files uploaded as base64: `raw` holds their exact bytes, `content` a lenient decoding."""
        return self.raw is not None

    @property
    def data(self) -> bytes:
        """The file's bytes (exact for binary uploads, UTF-8 of the text otherwise)."""
        return self.raw if self.raw is not None else self.content.encode("utf-8", "surrogatepass")

    @property
    def size(self) -> int:
        """Size in bytes."""
        return len(self.data)


@dataclass(frozen=True, kw_only=True)
class Observation:
    """What a tool saw; the runner turns each into citable Evidence."""

    summary: str
    data: dict[str, Any] = field(default_factory=dict)
    location: str | None = None


@dataclass(frozen=True, kw_only=True)
class ProposedFinding:
    """A finding a tool can state on its own (e.g. a bandit issue), citing its observations by index."""

    title: str
    severity: Severity
    description: str = ""
    recommendation: str = ""
    observation_indexes: tuple[int, ...] = ()


@dataclass(frozen=True, kw_only=True)
class ToolOutput:
    """A tool's result: observations (become evidence) and findings derived deterministically."""

    observations: tuple[Observation, ...] = ()
    findings: tuple[ProposedFinding, ...] = ()
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class ToolContext:
    """What a tool may see of its task. Tools never read anything else.

    Attributes:
        targets: The network target policy; network tools reach targets only through
            `tools/netclient.py` with it (None: no network access).
        allow_active_scanning: The task asked for active tools (port checks); the policy still
            needs the operator's permission too (`TargetPolicy.require_active`).
        owner_id: The user who owns the task (tools that read per-user data act as this user).
        title: The task's title.
        options: The task's options (`task.inputs["options"]`), empty when it has none.
    """

    task_id: str
    step_id: str
    files: Sequence[InputFile] = ()
    target: str | None = None
    targets: TargetPolicy | None = None
    allow_active_scanning: bool = False
    owner_id: str = ""
    title: str = ""
    options: Mapping[str, Any] = field(default_factory=dict)


class ToolArgs(BaseModel):
    """Base of every tool's argument model; unknown fields are refused."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Tool(abc.ABC):
    """A real capability an agent can invoke.

    Subclasses set `name`, `description`, `args_model` and implement `execute`. Blocking work belongs
    in `asyncio.to_thread`: `execute` runs on the event loop.
    """

    name: ClassVar[str]
    description: ClassVar[str]
    args_model: ClassVar[type[ToolArgs]] = ToolArgs
    timeout_seconds: ClassVar[float] = 60.0
    max_observations: ClassVar[int] = 200
    max_data_bytes: ClassVar[int] = 16 * 1024

    @abc.abstractmethod
    async def execute(self, args: ToolArgs, ctx: ToolContext) -> ToolOutput:
        """Do the work and return what was observed."""

    def json_schema(self) -> dict[str, Any]:
        """JSON schema of the arguments (for LLM tool calling and the API)."""
        return self.args_model.model_json_schema()

    def parse_args(self, raw: dict[str, Any]) -> ToolArgs:
        """Validate raw arguments, raising ToolError naming the problem."""
        try:
            return self.args_model.model_validate(raw)
        except PydanticValidationError as exc:
            error = exc.errors()[0]
            where = ".".join(str(part) for part in error["loc"])
            raise ToolError(
                f"invalid arguments for {self.name}: {where + ': ' if where else ''}{error['msg']}",
                tool=self.name,
            ) from exc

    async def run(self, raw_args: dict[str, Any], ctx: ToolContext) -> tuple[ToolOutput, float]:
        """Validate, execute under the timeout, cap the output; return it with its duration."""
        args = self.parse_args(raw_args)
        started = time.perf_counter()
        try:
            output = await asyncio.wait_for(self.execute(args, ctx), timeout=self.timeout_seconds)
        except TimeoutError as exc:
            raise ToolError(f"{self.name} timed out after {self.timeout_seconds}s", tool=self.name) from exc
        return self._cap(output), time.perf_counter() - started

    def _cap(self, output: ToolOutput) -> ToolOutput:
        observations = tuple(
            Observation(
                summary=o.summary[:500], data=cap_data(o.data, self.max_data_bytes), location=o.location
            )
            for o in output.observations[: self.max_observations]
        )
        kept = len(observations)
        findings = tuple(
            ProposedFinding(
                title=f.title,
                severity=f.severity,
                description=f.description,
                recommendation=f.recommendation,
                observation_indexes=tuple(i for i in f.observation_indexes if i < kept),
            )
            for f in output.findings
        )
        return ToolOutput(
            observations=observations, findings=findings, data=cap_data(output.data, self.max_data_bytes)
        )


def cap_data(data: dict[str, Any], limit: int) -> dict[str, Any]:
    """Return `data` if its JSON fits in `limit` bytes, else a truncated marker with a preview."""
    text = json.dumps(data, default=str, sort_keys=True)
    if len(text) <= limit:
        return data
    return {"truncated": True, "bytes": len(text), "preview": text[: limit // 2]}


def digest(value: Any) -> str:
    """SHA-256 of the canonical JSON of `value` (recorded for every tool call)."""
    text = json.dumps(value, default=str, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()
