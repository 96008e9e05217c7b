"""Performance tools: timed HTTP requests to the target, and a resource snapshot of this host.

`TimedRequestsTool` sends `count` sequential GETs through `netclient.fetch` (so the target policy checks
each one, redirects included). How times are measured, since the client reports only a whole fetch:

- total: the whole fetch of a response body, redirects included;
- time to headers: a second fetch right after each timed one that stops reading after the first body
  byte (``max_bytes=1``), so it ends once the headers and the first chunk have arrived.

Every fetch opens a new connection: both times include name resolution, the TCP connect and the TLS
handshake, as a first visit would. `HostProfileTool` (in `hostprofile`) is exported from here.
"""

from __future__ import annotations

import asyncio
import math
import re
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar
from urllib.parse import urlsplit

from pydantic import Field

from orchestrion.domain.findings import Severity
from orchestrion.exceptions import ToolError
from orchestrion.tools.base import Observation, ProposedFinding, Tool, ToolArgs, ToolContext, ToolOutput
from orchestrion.tools.hostprofile import HostProfileArgs, HostProfileTool
from orchestrion.tools.netclient import FetchResult, fetch
from orchestrion.tools.nettarget import expect_args, require_target

__all__ = [
    "HostProfileArgs",
    "HostProfileTool",
    "RequestSample",
    "TimedRequestsArgs",
    "TimedRequestsTool",
    "percentile",
]

ACCEPT_ENCODING = "gzip, deflate, br"
_CACHE_HEADERS = ("cache-control", "etag", "last-modified", "expires")
_COMPRESSIBLE = re.compile(
    r"^(text/|application/(json|javascript|ecmascript|xml|xhtml\+xml|rss\+xml|atom\+xml|wasm|manifest\+json"
    r"|ld\+json|x-javascript|graphql-response\+json)|image/svg\+xml|[^;]*\+(json|xml)\b)",
    re.IGNORECASE,
)
_STATIC_EXTENSIONS = frozenset(
    {"css", "js", "mjs", "map", "png", "jpg", "jpeg", "gif", "svg", "webp", "avif", "ico", "woff", "woff2"}
    | {"ttf", "otf", "eot", "mp4", "webm", "mp3", "pdf", "wasm"}
)
_STATIC_TYPES = re.compile(r"^(image/|font/|text/css|(text|application)/javascript|application/wasm)", re.I)
_COMPRESSION_MIN_BYTES = 1024
_HEADERS_PROBE_BYTES = 1


class TimedRequestsArgs(ToolArgs):
    """Arguments of `TimedRequestsTool`."""

    count: int = Field(default=10, ge=1, le=50, description="Requests to time (sequential).")
    pause_seconds: float = Field(default=0.2, ge=0.0, le=5.0, description="Pause between requests.")
    measure_headers: bool = Field(
        default=True, description="Also time each request to its headers (one more small fetch per request)."
    )
    slow_p95_ms: float = Field(default=1000.0, gt=0, description="p95 total time above this: a low finding.")
    very_slow_p95_ms: float = Field(
        default=3000.0, gt=0, description="p95 total time above this: a medium finding."
    )
    budget_seconds: float = Field(
        default=120.0, ge=1.0, le=170.0, description="Stop sending new requests after this long."
    )


@dataclass(frozen=True, kw_only=True)
class RequestSample:
    """One timed request.

    Attributes:
        number: 1-based order.
        total_ms: Whole fetch (body included), or None when it failed.
        headers_ms: Fetch stopped after the first body byte, or None (not measured, or failed).
        status: HTTP status of the final response.
        result: The full fetch's result.
        error: Why the request failed.
    """

    number: int
    total_ms: float | None
    headers_ms: float | None
    status: int | None
    result: FetchResult | None
    error: str | None = None


class TimedRequestsTool(Tool):
    """Response times (p50/p95/p99), sizes, compression, caching headers and status mix of the target."""

    name: ClassVar[str] = "timed_requests"
    description: ClassVar[str] = (
        "Send `count` sequential GET requests to the target URL (asking for gzip/br) and measure each "
        "one's total time and time to headers (p50/p95/p99), payload sizes, Content-Encoding, caching "
        "headers (Cache-Control, ETag, Last-Modified, Expires) and the status mix. Flags slow p95, error "
        "statuses, failed requests, uncompressed text over 1 KB and static assets without caching headers."
    )
    args_model: ClassVar[type[ToolArgs]] = TimedRequestsArgs
    timeout_seconds: ClassVar[float] = 180.0

    async def execute(self, args: ToolArgs, ctx: ToolContext) -> ToolOutput:
        """Time requests to the task's target."""
        options = expect_args(args, TimedRequestsArgs, self.name)
        policy, target = require_target(ctx, self.name)
        url = target.url
        headers = {"accept-encoding": ACCEPT_ENCODING, "accept": "*/*"}
        samples: list[RequestSample] = []
        deadline = time.monotonic() + options.budget_seconds
        for number in range(1, options.count + 1):
            if samples and time.monotonic() >= deadline:
                break
            if samples and options.pause_seconds:
                await asyncio.sleep(options.pause_seconds)
            try:
                result = await fetch(policy, url, headers=headers)
            except ToolError as exc:
                samples.append(
                    RequestSample(
                        number=number,
                        total_ms=None,
                        headers_ms=None,
                        status=None,
                        result=None,
                        error=exc.message,
                    )
                )
                continue
            headers_ms: float | None = None
            if options.measure_headers:
                try:
                    probe = await fetch(policy, url, headers=headers, max_bytes=_HEADERS_PROBE_BYTES)
                    headers_ms = probe.elapsed * 1000
                except ToolError:
                    headers_ms = None
            samples.append(
                RequestSample(
                    number=number,
                    total_ms=result.elapsed * 1000,
                    headers_ms=headers_ms,
                    status=result.status,
                    result=result,
                )
            )
        return report_timings(url, samples, options, requested=options.count)


def percentile(values: Sequence[float], q: float) -> float:
    """The `q`-th percentile (0-100) of `values`, interpolating linearly between ranks."""
    if not values:
        raise ValueError("percentile of no values")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def _stats(values: Sequence[float]) -> dict[str, float] | None:
    if not values:
        return None
    return {
        "min": round(min(values), 1),
        "p50": round(percentile(values, 50), 1),
        "p95": round(percentile(values, 95), 1),
        "p99": round(percentile(values, 99), 1),
        "max": round(max(values), 1),
        "mean": round(sum(values) / len(values), 1),
    }


def report_timings(
    url: str, samples: Sequence[RequestSample], options: TimedRequestsArgs, *, requested: int
) -> ToolOutput:
    """Observations and findings for a series of timed requests (pure)."""
    done = [s for s in samples if s.result is not None]
    failed = [s for s in samples if s.result is None]
    totals = [s.total_ms for s in done if s.total_ms is not None]
    header_times = [s.headers_ms for s in done if s.headers_ms is not None]
    total_stats, header_stats = _stats(totals), _stats(header_times)
    statuses = Counter(str(s.status) for s in done)
    summary = f"{len(samples)} GET requests to {url}"
    if len(samples) < requested:
        summary += f" (of {requested}: stopped at the {options.budget_seconds:g}s budget)"
    summary += f": statuses {dict(statuses) or 'none'}"
    if failed:
        summary += f", {len(failed)} failed"
    if total_stats:
        summary += f"; total ms p50 {total_stats['p50']}, p95 {total_stats['p95']}, p99 {total_stats['p99']}"
    if header_stats:
        summary += f"; to headers ms p50 {header_stats['p50']}, p95 {header_stats['p95']}"
    timing = Observation(
        summary=summary,
        data={
            "url": url,
            "requests": len(samples),
            "statuses": dict(statuses),
            "failed": len(failed),
            "total_ms": total_stats,
            "headers_ms": header_stats,
            "measured": (
                "total: whole fetch incl. body; headers: fetch stopped after the first body byte; both "
                "include DNS, TCP connect and TLS handshake (a new connection per request)"
            ),
            "samples": [
                {
                    "n": s.number,
                    "status": s.status,
                    "total_ms": _round(s.total_ms),
                    "headers_ms": _round(s.headers_ms),
                    "bytes": len(s.result.body) if s.result else None,
                    "error": s.error,
                }
                for s in samples
            ],
        },
        location=url,
    )
    observations = [timing]
    findings: list[ProposedFinding] = []
    if total_stats:
        findings.extend(_slow_findings(url, total_stats["p95"], options))
    errors = [s for s in done if s.status is not None and s.status >= 400]
    if errors or failed:
        findings.append(_error_finding(url, errors, failed, len(samples)))
    last = done[-1].result if done else None
    if last is not None:
        observations.append(_payload_observation(last))
        observations.append(_caching_observation(last))
        findings.extend(_content_findings(last, payload_index=1, caching_index=2))
    data = {
        "url": url,
        "requests": len(samples),
        "failed": len(failed),
        "statuses": dict(statuses),
        "total_ms": total_stats,
        "headers_ms": header_stats,
    }
    return ToolOutput(observations=tuple(observations), findings=tuple(findings), data=data)


def _round(value: float | None) -> float | None:
    return round(value, 1) if value is not None else None


def _slow_findings(url: str, p95: float, options: TimedRequestsArgs) -> list[ProposedFinding]:
    if p95 <= min(options.slow_p95_ms, options.very_slow_p95_ms):
        return []
    very = p95 > options.very_slow_p95_ms
    threshold = options.very_slow_p95_ms if very else options.slow_p95_ms
    return [
        ProposedFinding(
            title=f"Slow responses from {url}: p95 {p95:.0f} ms",
            severity=Severity.MEDIUM if very else Severity.LOW,
            description=(
                f"The 95th percentile of total request time is {p95:.0f} ms, above the {threshold:g} ms "
                "threshold (times include connection setup: a new connection per request)."
            ),
            recommendation=(
                "Profile the slow path (server time vs transfer vs TLS setup), add caching, and check "
                "the time to headers to tell server time from payload size."
            ),
            observation_indexes=(0,),
        )
    ]


def _error_finding(
    url: str, errors: Sequence[RequestSample], failed: Sequence[RequestSample], total: int
) -> ProposedFinding:
    parts = []
    if errors:
        parts.append(f"{len(errors)} answered {', '.join(sorted({str(s.status) for s in errors}))}")
    if failed:
        reasons = sorted({s.error or "unknown error" for s in failed})
        parts.append(f"{len(failed)} failed ({'; '.join(reasons[:3])})")
    return ProposedFinding(
        title=f"Errors from {url}: {' and '.join(parts)} of {total} requests",
        severity=Severity.MEDIUM,
        description=f"Of {total} requests to {url}, {' and '.join(parts)}.",
        recommendation="Check the server logs for these requests; fix the failing route or its dependency.",
        observation_indexes=(0,),
    )


def _payload_observation(result: FetchResult) -> Observation:
    encoding = result.header("content-encoding")
    content_type = result.header("content-type")
    length = result.header("content-length")
    summary = (
        f"Payload of {result.url}: {len(result.body)} bytes"
        + (" (decoded)" if encoding in ("gzip", "x-gzip", "deflate") else "")
        + (" (cut at the response cap)" if result.truncated else "")
        + f", Content-Type {content_type or 'none'}, Content-Encoding {encoding or 'none'} "
        f"(asked for {ACCEPT_ENCODING})"
    )
    return Observation(
        summary=summary,
        data={
            "url": result.url,
            "bytes": len(result.body),
            "content_length": length,
            "content_type": content_type,
            "content_encoding": encoding,
            "accept_encoding_sent": ACCEPT_ENCODING,
            "vary": result.header("vary"),
            "truncated": result.truncated,
        },
        location=result.url,
    )


def _caching_observation(result: FetchResult) -> Observation:
    found = {name: result.header(name) for name in _CACHE_HEADERS}
    shown = ", ".join(f"{name}: {value}" for name, value in found.items() if value is not None)
    return Observation(
        summary=f"Caching headers of {result.url}: {shown or 'none'}",
        data={"url": result.url, **found},
        location=result.url,
    )


def _content_findings(
    result: FetchResult, *, payload_index: int, caching_index: int
) -> list[ProposedFinding]:
    findings: list[ProposedFinding] = []
    content_type = (result.header("content-type") or "").strip()
    if (
        result.status < 400
        and not result.header("content-encoding")
        and len(result.body) > _COMPRESSION_MIN_BYTES
        and _COMPRESSIBLE.match(content_type)
    ):
        findings.append(
            ProposedFinding(
                title=f"No compression on {result.url}",
                severity=Severity.LOW,
                description=(
                    f"A {len(result.body)}-byte {content_type.split(';')[0]} response was sent uncompressed "
                    f"although the request accepted {ACCEPT_ENCODING}."
                ),
                recommendation="Enable gzip or Brotli compression for text, JSON, JavaScript, CSS and SVG.",
                observation_indexes=(payload_index,),
            )
        )
    if result.status < 400 and _is_static(result.url, content_type):
        if not any(result.header(name) for name in _CACHE_HEADERS):
            findings.append(
                ProposedFinding(
                    title=f"No caching headers on static asset {result.url}",
                    severity=Severity.LOW,
                    description=(
                        "The response has no Cache-Control, ETag, Last-Modified or Expires header, so "
                        "browsers and CDNs download it again on every visit."
                    ),
                    recommendation=(
                        "Serve fingerprinted assets with Cache-Control: public, max-age=31536000, immutable, "
                        "and others with an ETag or Last-Modified."
                    ),
                    observation_indexes=(caching_index, payload_index),
                )
            )
    return findings


def _is_static(url: str, content_type: str) -> bool:
    path = urlsplit(url).path
    extension = path.rsplit(".", 1)[-1].lower() if "." in path.rsplit("/", 1)[-1] else ""
    return extension in _STATIC_EXTENSIONS or bool(_STATIC_TYPES.match(content_type))
