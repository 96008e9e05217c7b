"""Performance tools: timed requests against a real HTTP server on 127.0.0.1, and this host's profile.

No assertion depends on how fast anything is: thresholds are set where any request crosses them (or
none can), and the pure reporting functions get synthetic samples.
"""

from __future__ import annotations

import asyncio
import gzip
from typing import Any

import pytest

from orchestrion.domain.findings import Severity
from orchestrion.exceptions import TargetRefusedError, ToolError
from orchestrion.tools.base import ToolContext, ToolOutput
from orchestrion.tools.hostprofile import DiskUsage, HostSnapshot, ProcessUsage, assess_host
from orchestrion.tools.netclient import FetchResult
from orchestrion.tools.performance import (
    HostProfileArgs,
    HostProfileTool,
    RequestSample,
    TimedRequestsArgs,
    TimedRequestsTool,
    percentile,
    report_timings,
)
from orchestrion.tools.targets import TargetPolicy
from tests.fixtures.net import LocalHTTPServer, PolicyFactory, Route

LOCAL = "127.0.0.1/32"
QUICK = {"count": 3, "pause_seconds": 0}
TEXT = b"<!doctype html><p>" + b"lorem ipsum dolor sit amet " * 100 + b"</p>"


def context(policy: TargetPolicy | None, target: str | None) -> ToolContext:
    return ToolContext(task_id="t1", step_id="s1", target=target, targets=policy)


async def timed(policy: TargetPolicy, url: str, **args: Any) -> ToolOutput:
    output, _ = await TimedRequestsTool().run({**QUICK, **args}, context(policy, url))
    return output


def titles(output: ToolOutput) -> dict[str, Severity]:
    return {f.title: f.severity for f in output.findings}


# -- timed_requests --------------------------------------------------------------------------------


async def test_timed_requests_measure_totals_headers_and_statuses(
    make_policy: PolicyFactory, http_server: LocalHTTPServer
) -> None:
    output = await timed(make_policy(LOCAL), http_server.url("/"))
    summary = output.observations[0]
    assert output.data["statuses"] == {"200": 3}
    assert set(output.data["total_ms"]) == {"min", "p50", "p95", "p99", "max", "mean"}
    assert output.data["headers_ms"] is not None
    assert "first body byte" in summary.data["measured"]
    assert [s["n"] for s in summary.data["samples"]] == [1, 2, 3]
    assert all(s["bytes"] == 46 and s["headers_ms"] is not None for s in summary.data["samples"])
    # Three timed fetches and three headers probes, each asking for compression like a browser.
    assert len(http_server.requests) == 6
    assert {r.headers["accept-encoding"] for r in http_server.requests} == {"gzip, deflate, br"}
    assert output.findings == ()


async def test_headers_are_not_timed_when_not_asked(
    make_policy: PolicyFactory, http_server: LocalHTTPServer
) -> None:
    output = await timed(make_policy(LOCAL), http_server.url("/"), count=2, measure_headers=False)
    assert output.data["headers_ms"] is None
    assert len(http_server.requests) == 2


async def test_uncompressed_text_over_a_kilobyte_is_low(
    make_policy: PolicyFactory, http_server: LocalHTTPServer
) -> None:
    http_server.routes["/page"] = Route(headers=[("Content-Type", "text/html; charset=utf-8")], body=TEXT)
    http_server.routes["/zipped"] = Route(
        headers=[("Content-Type", "text/html"), ("Content-Encoding", "gzip")], body=gzip.compress(TEXT)
    )
    policy = make_policy(LOCAL)
    output = await timed(policy, http_server.url("/page"), count=1)
    assert titles(output) == {f"No compression on {http_server.url('/page')}": Severity.LOW}
    assert output.findings[0].observation_indexes == (1,)
    assert "Content-Encoding none" in output.observations[1].summary
    output = await timed(policy, http_server.url("/zipped"), count=1)
    assert output.findings == ()
    payload = output.observations[1]
    assert (payload.data["content_encoding"], payload.data["bytes"]) == ("gzip", len(TEXT))


async def test_static_assets_without_caching_headers_are_low(
    make_policy: PolicyFactory, http_server: LocalHTTPServer
) -> None:
    http_server.routes["/app.js"] = Route(headers=[("Content-Type", "application/javascript")], body=b"x()")
    http_server.routes["/cached.js"] = Route(
        headers=[
            ("Content-Type", "application/javascript"),
            ("Cache-Control", "max-age=600"),
            ("ETag", '"1"'),
        ],
        body=b"x()",
    )
    policy = make_policy(LOCAL)
    output = await timed(policy, http_server.url("/app.js"), count=1)
    assert titles(output) == {
        f"No caching headers on static asset {http_server.url('/app.js')}": Severity.LOW
    }
    assert output.observations[2].summary.endswith("none")
    output = await timed(policy, http_server.url("/cached.js"), count=1)
    assert output.findings == ()
    assert output.observations[2].data["cache-control"] == "max-age=600"
    assert 'etag: "1"' in output.observations[2].summary


async def test_error_statuses_are_medium(make_policy: PolicyFactory, http_server: LocalHTTPServer) -> None:
    output = await timed(make_policy(LOCAL), http_server.url("/missing"), count=2)
    (finding,) = output.findings
    assert (finding.severity, finding.observation_indexes) == (Severity.MEDIUM, (0,))
    assert finding.title == f"Errors from {http_server.url('/missing')}: 2 answered 404 of 2 requests"


async def test_failed_requests_are_counted_not_raised(
    make_policy: PolicyFactory, http_server: LocalHTTPServer
) -> None:
    policy = make_policy(LOCAL, read_timeout=0.2)
    output = await timed(policy, http_server.url("/hang"), count=2, measure_headers=False)
    assert output.data["failed"] == 2
    assert output.data["total_ms"] is None
    (finding,) = output.findings
    assert finding.severity is Severity.MEDIUM and "2 failed" in finding.title
    assert "did not answer within 0.2s" in finding.title


async def test_p95_over_the_thresholds_is_a_finding(
    make_policy: PolicyFactory, http_server: LocalHTTPServer
) -> None:
    # Every real request takes longer than a microsecond: this asserts the threshold, not a speed.
    output = await timed(make_policy(LOCAL), http_server.url("/"), slow_p95_ms=0.001, very_slow_p95_ms=1e9)
    (finding,) = output.findings
    assert finding.severity is Severity.LOW and finding.title.startswith("Slow responses")


def _sample(number: int, total_ms: float | None, status: int = 200) -> RequestSample:
    if total_ms is None:
        return RequestSample(
            number=number, total_ms=None, headers_ms=None, status=None, result=None, error="boom"
        )
    result = FetchResult(
        url="https://app.test/",
        status=status,
        headers=(("content-type", "text/html"),),
        body=b"ok",
        elapsed=total_ms / 1000,
        redirects=[],
        address="127.0.0.1",
        truncated=False,
        tls=None,
    )
    return RequestSample(
        number=number, total_ms=total_ms, headers_ms=total_ms / 2, status=status, result=result
    )


def test_report_timings_grades_p95_against_both_thresholds() -> None:
    options = TimedRequestsArgs(slow_p95_ms=100, very_slow_p95_ms=500)
    slow = report_timings("https://app.test/", [_sample(1, 50.0), _sample(2, 300.0)], options, requested=2)
    assert [(f.severity, f.title) for f in slow.findings] == [
        (Severity.LOW, "Slow responses from https://app.test/: p95 288 ms")
    ]
    very = report_timings("https://app.test/", [_sample(1, 50.0), _sample(2, 900.0)], options, requested=2)
    assert [f.severity for f in very.findings] == [Severity.MEDIUM]
    assert very.data["total_ms"]["p50"] == 475.0 and very.data["headers_ms"]["max"] == 450.0


def test_report_timings_says_when_the_budget_cut_the_series() -> None:
    samples = [_sample(1, 10.0), _sample(2, None), _sample(3, 20.0, status=503)]
    output = report_timings("https://app.test/", samples, TimedRequestsArgs(), requested=10)
    assert (
        "3 GET requests to https://app.test/ (of 10: stopped at the 120s budget)"
        in output.observations[0].summary
    )
    (finding,) = output.findings
    assert finding.title == "Errors from https://app.test/: 1 answered 503 and 1 failed (boom) of 3 requests"


def test_percentiles_interpolate_between_ranks() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == pytest.approx(50.5)
    assert percentile(values, 95) == pytest.approx(95.05)
    assert percentile([7.0], 99) == 7.0
    assert percentile([3.0, 1.0, 2.0], 0) == 1.0
    with pytest.raises(ValueError):
        percentile([], 50)


async def test_timed_requests_need_a_policy_a_target_and_bounded_arguments(
    make_policy: PolicyFactory, http_server: LocalHTTPServer
) -> None:
    with pytest.raises(ToolError, match=r"timed_requests needs network access"):
        await TimedRequestsTool().run({}, context(None, http_server.url("/")))
    with pytest.raises(ToolError, match=r"needs a target"):
        await TimedRequestsTool().run({}, context(make_policy(LOCAL), None))
    with pytest.raises(TargetRefusedError):
        await TimedRequestsTool().run({}, context(make_policy(), http_server.url("/")))
    with pytest.raises(ToolError, match=r"invalid arguments"):
        TimedRequestsTool().parse_args({"count": 51})
    assert TimedRequestsTool().parse_args({}) == TimedRequestsArgs(count=10)
    assert http_server.requests == []


# -- host_profile ----------------------------------------------------------------------------------


async def test_host_profile_of_this_host_lists_its_listening_ports() -> None:
    server = await asyncio.start_server(lambda _r, w: w.close(), "127.0.0.1", 0)
    port = int(server.sockets[0].getsockname()[1])
    try:
        output, _ = await HostProfileTool().run({"sample_seconds": 0.1}, context(None, None))
    finally:
        server.close()
        await server.wait_closed()
    summaries = [o.summary for o in output.observations]
    assert "CPU" in summaries[0] and "load average" in summaries[0]
    assert "memory" in summaries[1] and "swap" in summaries[1]
    assert any(": disk /" in s for s in summaries)
    assert any("top processes by CPU" in s for s in summaries)
    assert any("top processes by memory" in s for s in summaries)
    assert port in output.data["listening_ports"]
    assert 0 <= output.data["memory_percent"] <= 100


async def test_host_profile_accepts_an_allowlisted_loopback_target(make_policy: PolicyFactory) -> None:
    output, _ = await HostProfileTool().run({"sample_seconds": 0.1}, context(make_policy(LOCAL), "127.0.0.1"))
    assert output.observations


async def test_host_profile_refuses_other_hosts(make_policy: PolicyFactory) -> None:
    with pytest.raises(TargetRefusedError, match=r"loopback"):
        await HostProfileTool().run({}, context(make_policy(), "127.0.0.1"))
    with pytest.raises(ToolError, match=r"public.test resolves to 93.184.216.34, which is not one of its"):
        await HostProfileTool().run({}, context(make_policy(), "public.test"))
    with pytest.raises(ToolError, match=r"host_profile needs network access"):
        await HostProfileTool().run({}, context(None, "127.0.0.1"))


def _snapshot(
    *, memory: float = 40.0, swap: float = 10.0, disk: float = 50.0, load: float = 0.5
) -> HostSnapshot:
    gib = 1024**3
    return HostSnapshot(
        hostname="web1",
        cpu_count=2,
        cpu_percent=12.5,
        sample_seconds=0.5,
        load=(load, load, load),
        memory_total=8 * gib,
        memory_available=int(8 * gib * (100 - memory) / 100),
        memory_percent=memory,
        swap_total=2 * gib,
        swap_used=int(2 * gib * swap / 100),
        swap_percent=swap,
        disks=(
            DiskUsage(mountpoint="/", fstype="ext4", total=100 * gib, used=0, free=0, percent=disk),
            DiskUsage(mountpoint="/data", fstype="xfs", total=100 * gib, used=0, free=0, percent=20.0),
        ),
        top_cpu=(ProcessUsage(pid=10, name="python", cpu_percent=80.0, rss=300 * 1024**2),),
        top_rss=(ProcessUsage(pid=11, name="postgres", cpu_percent=2.0, rss=900 * 1024**2),),
        listening=({"address": "0.0.0.0", "port": 5432, "pid": 11, "process": "postgres"},),
    )


def test_a_healthy_host_has_no_findings() -> None:
    output = assess_host(_snapshot(), HostProfileArgs())
    assert output.findings == ()
    assert output.data["listening_ports"] == [5432]
    assert "0.0.0.0:5432 (postgres)" in output.observations[-1].summary
    assert "python (10) 80% CPU 300 MiB" in output.observations[4].summary


def test_pressure_above_the_thresholds_is_reported() -> None:
    output = assess_host(_snapshot(memory=95.0, swap=90.0, disk=99.0, load=5.0), HostProfileArgs())
    found = {f.title: (f.severity, f.observation_indexes) for f in output.findings}
    assert found == {
        "CPU overloaded on web1": (Severity.LOW, (0,)),
        "Memory pressure on web1": (Severity.MEDIUM, (1,)),
        "Heavy swap use on web1": (Severity.LOW, (1,)),
        "Disk / nearly full on web1": (Severity.HIGH, (2,)),
    }
    relaxed = HostProfileArgs(memory_percent=96, swap_percent=95, disk_percent=99.5, load_per_cpu=3)
    assert assess_host(_snapshot(memory=95.0, swap=90.0, disk=99.0, load=5.0), relaxed).findings == ()
    medium = assess_host(_snapshot(disk=92.0), HostProfileArgs())
    assert [(f.title, f.severity) for f in medium.findings] == [
        ("Disk / nearly full on web1", Severity.MEDIUM)
    ]
