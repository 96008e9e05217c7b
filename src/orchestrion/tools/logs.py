"""Log analysis tools for incident response: a parse summary, brute force, error bursts and a timeline.

The family of modules: `logs_parse` reads lines into records, `logs_detect` finds attacks and bursts
in them, `logs_report` turns those into observations and grounded findings, and this module holds the
tools, which run that blocking work in a worker thread. Every file is read up to
`logs_parse.MAX_LINES` lines; the output says when a file was cut there.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, ClassVar, TypeVar

from pydantic import Field

from orchestrion.domain.findings import Severity
from orchestrion.domain.tasks import utcnow
from orchestrion.exceptions import ToolError
from orchestrion.tools import logs_parse
from orchestrion.tools.base import (
    InputFile,
    Observation,
    ProposedFinding,
    Tool,
    ToolArgs,
    ToolContext,
    ToolOutput,
)
from orchestrion.tools.logs_detect import (
    DEFAULT_DISTINCT_USERS,
    DEFAULT_FACTOR,
    DEFAULT_MIN_EVENTS,
    DEFAULT_THRESHOLD,
    DEFAULT_WINDOW_SECONDS,
    iso,
    quote,
    span,
)
from orchestrion.tools.logs_parse import LogFormat, parse_log
from orchestrion.tools.logs_report import build_timeline, report_brute_force, report_error_bursts

__all__ = ["BruteForceTool", "ErrorBurstTool", "LogParseTool", "TimelineTool"]

_A = TypeVar("_A", bound=ToolArgs)
_TOP_IPS = 10


class BruteForceArgs(ToolArgs):
    """Arguments of `BruteForceTool`."""

    window_seconds: int = Field(
        default=DEFAULT_WINDOW_SECONDS,
        ge=1,
        le=86_400,
        description="Length of the sliding window counting failures.",
    )
    threshold: int = Field(
        default=DEFAULT_THRESHOLD,
        ge=2,
        le=1_000_000,
        description="Failures in one window (or before a success) to report.",
    )
    distinct_users: int = Field(
        default=DEFAULT_DISTINCT_USERS,
        ge=2,
        le=100_000,
        description="Distinct usernames from one address to call enumeration.",
    )


class ErrorBurstArgs(ToolArgs):
    """Arguments of `ErrorBurstTool`."""

    factor: float = Field(
        default=DEFAULT_FACTOR,
        ge=1.0,
        le=1_000.0,
        description="How many times the median per-minute error count.",
    )
    min_events: int = Field(
        default=DEFAULT_MIN_EVENTS, ge=1, le=1_000_000, description="Fewest errors in a burst minute."
    )


class TimelineArgs(ToolArgs):
    """Arguments of `TimelineTool`."""

    limit: int = Field(default=200, ge=1, le=200, description="Most timeline entries, the worst kept first.")


class _LogTool(Tool):
    """A tool that parses the task's logs; `clock` dates RFC 3164 lines (tests inject a fixed one)."""

    def __init__(self, *, clock: Callable[[], datetime] = utcnow) -> None:
        self._clock = clock

    def _args(self, args: ToolArgs, model: type[_A]) -> _A:
        if not isinstance(args, model):
            raise ToolError(f"{self.name} expects {model.__name__}", tool=self.name)
        return args


class LogParseTool(_LogTool):
    """Per-file format, line counts, time range, top source addresses and status/level mix."""

    name: ClassVar[str] = "log_parse"
    description: ClassVar[str] = (
        "Parse every uploaded log (access combined/common, syslog RFC 3164/5424 with OpenSSH messages, "
        "JSON lines, Python logging): per file the format, lines, parsed and unparsed counts, time range, "
        "top source IPs and HTTP status / log level distribution."
    )

    async def execute(self, args: ToolArgs, ctx: ToolContext) -> ToolOutput:
        """Summarise every file in the task's inputs."""
        return await asyncio.to_thread(summarise_logs, ctx.files, now=self._clock())


class BruteForceTool(_LogTool):
    """Failed-login bursts, username enumeration and successful logins after failures."""

    name: ClassVar[str] = "log_bruteforce"
    description: ClassVar[str] = (
        "Find authentication attacks in logs: bursts of failed SSH logins or HTTP 401/403 on login paths "
        "from one IP within a sliding window, enumeration of many usernames from one IP, and a successful "
        "login from an IP after many failures (likely compromise)."
    )
    args_model: ClassVar[type[ToolArgs]] = BruteForceArgs

    async def execute(self, args: ToolArgs, ctx: ToolContext) -> ToolOutput:
        """Look for authentication attacks in every file."""
        options = self._args(args, BruteForceArgs)
        return await asyncio.to_thread(
            report_brute_force,
            ctx.files,
            now=self._clock(),
            window_seconds=options.window_seconds,
            threshold=options.threshold,
            distinct_users=options.distinct_users,
        )


class ErrorBurstTool(_LogTool):
    """Minutes where 5xx responses or ERROR/CRITICAL records rise far above the file's usual rate."""

    name: ClassVar[str] = "log_error_bursts"
    description: ClassVar[str] = (
        "Find bursts of errors in logs: minutes where HTTP 5xx responses or ERROR/CRITICAL records exceed "
        "`factor` times the file's median per-minute error count and at least `min_events`, with the top "
        "paths and messages of each burst."
    )
    args_model: ClassVar[type[ToolArgs]] = ErrorBurstArgs

    async def execute(self, args: ToolArgs, ctx: ToolContext) -> ToolOutput:
        """Look for error bursts in every file."""
        options = self._args(args, ErrorBurstArgs)
        return await asyncio.to_thread(
            report_error_bursts,
            ctx.files,
            now=self._clock(),
            factor=options.factor,
            min_events=options.min_events,
        )


class TimelineTool(_LogTool):
    """One time-ordered list of suspicious events across all uploaded logs."""

    name: ClassVar[str] = "log_timeline"
    description: ClassVar[str] = (
        "Merge suspicious events from all logs into one time-ordered timeline, each with file:line: failed "
        "logins and brute-force bursts, logins after failures, error bursts, scanner user agents, path "
        "traversal, SQL injection and probes for .env, .git and wp-login.php. Capped at `limit` entries."
    )
    args_model: ClassVar[type[ToolArgs]] = TimelineArgs

    async def execute(self, args: ToolArgs, ctx: ToolContext) -> ToolOutput:
        """Build the timeline over every file."""
        options = self._args(args, TimelineArgs)
        return await asyncio.to_thread(build_timeline, ctx.files, now=self._clock(), limit=options.limit)


def summarise_logs(files: Sequence[InputFile], *, now: datetime) -> ToolOutput:
    """Blocking body of `LogParseTool`."""
    observations: list[Observation] = []
    findings: list[ProposedFinding] = []
    summaries: dict[str, Any] = {}
    for log in (parse_log(file, now=now) for file in files):
        times = [r.timestamp for r in log.records if r.timestamp]
        first, last = (iso(min(times)), iso(max(times))) if times else (None, None)
        ips = Counter(r.source_ip for r in log.records if r.source_ip)
        statuses = Counter(str(r.status) for r in log.records if r.status is not None)
        levels = Counter(r.level for r in log.records if r.level)
        parsed = len(log.records)
        note = f" (stopped at the {logs_parse.MAX_LINES}-line cap)" if log.truncated else ""
        summary = f"{log.name}: {log.format}, {log.lines} lines, {parsed} parsed, {log.unparsed} unparsed"
        if first:
            summary += f", {first} to {last}"
        top = ", ".join(f"{ip} ({n})" for ip, n in ips.most_common(3))
        observations.append(
            Observation(
                summary=summary + (f", top IPs {top}" if top else "") + note,
                data={
                    "file": log.name,
                    "format": log.format.value,
                    "formats": dict(log.formats),
                    "lines": log.lines,
                    "parsed": parsed,
                    "unparsed": log.unparsed,
                    "unparsed_sample": [{"line": n, "text": quote(t)} for n, t in log.unparsed_sample],
                    "first_seen": first,
                    "last_seen": last,
                    "top_source_ips": [[ip, n] for ip, n in ips.most_common(_TOP_IPS)],
                    "statuses": dict(sorted(statuses.items())),
                    "levels": dict(levels.most_common()),
                    "truncated": log.truncated,
                },
                location=span(log.name, 1, log.last_line) if log.last_line else log.name,
            )
        )
        index = len(observations) - 1
        if log.truncated:
            findings.append(
                ProposedFinding(
                    title=f"Log {log.name} only partly analysed",
                    severity=Severity.LOW,
                    description=f"Only the first {logs_parse.MAX_LINES} lines of {log.name} were read.",
                    recommendation="Filter the log to the incident's time range and upload it again.",
                    observation_indexes=(index,),
                )
            )
        if log.format is LogFormat.UNKNOWN and log.lines:
            findings.append(
                ProposedFinding(
                    title=f"Unrecognised log format in {log.name}",
                    severity=Severity.INFO,
                    description=f"None of the {log.lines} lines of {log.name} matched a known log format.",
                    recommendation="Convert the log to JSON lines, syslog or an access-log format.",
                    observation_indexes=(index,),
                )
            )
        summaries[log.name] = {
            "format": log.format.value,
            "lines": log.lines,
            "parsed": parsed,
            "unparsed": log.unparsed,
            "truncated": log.truncated,
        }
    return ToolOutput(
        observations=tuple(observations),
        findings=tuple(findings),
        data={"files": summaries, "max_lines": logs_parse.MAX_LINES},
    )
