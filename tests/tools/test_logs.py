from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from orchestrion.domain.findings import Severity
from orchestrion.exceptions import ToolError
from orchestrion.tools import logs_parse
from orchestrion.tools.base import InputFile, Observation, ProposedFinding, Tool, ToolContext, ToolOutput
from orchestrion.tools.logs import BruteForceArgs, BruteForceTool, ErrorBurstTool, LogParseTool, TimelineTool

NOW = datetime(2024, 3, 10, 12, 0, tzinfo=UTC)
T0 = datetime(2024, 3, 10, 9, 0, tzinfo=UTC)
ATTACKER = "203.0.113.9"
WEB_BRUTE = "198.51.100.23"
SCANNER = "192.0.2.66"
GITHUB = "ghp_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8"
SQLMAP = "sqlmap/1.7.2#stable (https://sqlmap.org)"
USERS = ["root", "admin", "oracle", "test", "ubuntu", "postgres"]


def _syslog(moment: datetime, message: str, program: str = "sshd[2101]") -> str:
    return f"{moment:%b} {moment.day:>2} {moment:%H:%M:%S} web1 {program}: {message}"


def _ssh_failures(ip: str, count: int, *, start: datetime, step: int = 10) -> list[str]:
    """`count` failures from `ip`, `step` seconds apart, cycling through USERS as sshd logs them."""
    lines: list[str] = []
    for i in range(count):
        moment, user, port = start + timedelta(seconds=step * i), USERS[i % len(USERS)], 40000 + i
        if user != "root":
            lines.append(_syslog(moment, f"Invalid user {user} from {ip} port {port}"))
        invalid = "" if user == "root" else "invalid user "
        lines.append(_syslog(moment, f"Failed password for {invalid}{user} from {ip} port {port} ssh2"))
    return lines


def auth_log() -> str:
    """A deploy login, a brute force from ATTACKER that ends in a root login, background noise, junk."""
    lines = [
        _syslog(
            T0 - timedelta(hours=1), "Accepted publickey for deploy from 10.0.0.5 port 50000 ssh2: ED25519"
        ),
        _syslog(
            T0 - timedelta(hours=1), "pam_unix(sshd:session): session opened for user deploy", "sshd[2000]"
        ),
        *_ssh_failures(ATTACKER, 12, start=T0),
        *_ssh_failures("198.51.100.7", 3, start=T0 + timedelta(minutes=2)),
        "=== rsyslogd was HUPed ===",
        _syslog(T0 + timedelta(minutes=3), f"Accepted password for root from {ATTACKER} port 40100 ssh2"),
        _syslog(T0 + timedelta(minutes=3, seconds=1), "pam_unix(sshd:session): session opened for user root"),
        _syslog(T0 + timedelta(minutes=4), "Received disconnect from 203.0.113.9 port 40100:11: bye"),
    ]
    return "\n".join(lines) + "\n"


def _access(ip: str, moment: datetime, request: str, status: int, agent: str = "Mozilla/5.0") -> str:
    return f'{ip} - - [{moment:%d/%b/%Y:%H:%M:%S} +0000] "{request}" {status} 512 "-" "{agent}"'


def access_log() -> str:
    """An hour of nginx traffic with a login brute force, a 5xx burst at 09:30 and a sqlmap scan."""
    events: list[tuple[datetime, str]] = []
    for minute in range(60):
        client = f"10.1.1.{minute % 5 + 1}"
        for second, path in ((5, "/"), (15, "/static/app.js"), (25, "/api/orders")):
            moment = T0 + timedelta(minutes=minute, seconds=second)
            events.append((moment, _access(client, moment, f"GET {path} HTTP/1.1", 200)))
    for minute in (10, 40):
        moment = T0 + timedelta(minutes=minute, seconds=30)
        events.append((moment, _access("10.1.1.7", moment, "GET /api/orders HTTP/1.1", 500)))
    for i in range(17):
        moment = T0 + timedelta(minutes=30, seconds=3 * i)
        path, status = ("/api/orders", 503) if i < 15 else ("/api/cart?id=9", 502)
        events.append((moment, _access(f"10.2.0.{i}", moment, f"GET {path} HTTP/1.1", status)))
    for i in range(12):
        moment = T0 + timedelta(minutes=20, seconds=4 * i)
        events.append((moment, _access(WEB_BRUTE, moment, "POST /login HTTP/1.1", 401)))
        events.append((moment, _access("10.1.1.9", moment, "GET /api/private HTTP/1.1", 401)))
    moment = T0 + timedelta(minutes=20, seconds=50)
    events.append((moment, _access(WEB_BRUTE, moment, "POST /login HTTP/1.1", 302)))
    probes = [
        ("GET /products?id=1%20UNION%20ALL%20SELECT%20NULL,NULL-- HTTP/1.1", 200),
        ("GET /products?id=1'%20OR%20'1'='1 HTTP/1.1", 200),
        ("GET /../../../../etc/passwd HTTP/1.1", 400),
        ("GET /static/..%252f..%252fetc%252fpasswd HTTP/1.1", 404),
        ("GET /.env HTTP/1.1", 200),
        ("GET /.git/config HTTP/1.1", 404),
        ("GET /wp-login.php HTTP/1.1", 404),
        (f"GET /download?file=../../secret&token={GITHUB} HTTP/1.1", 403),
    ]
    for i, (request, status) in enumerate(probes):
        moment = T0 + timedelta(minutes=45, seconds=i)
        events.append((moment, _access(SCANNER, moment, request, status, SQLMAP)))
    events.sort(key=lambda e: e[0])
    return "\n".join(line for _, line in events) + "\n"


def app_jsonl() -> str:
    """JSON application logs: steady INFO, stray ERRORs (one without a time), a database outage at 09:31."""
    records: list[dict[str, Any]] = []
    for minute in range(60):
        moment = T0 + timedelta(minutes=minute)
        for second in (0, 30):
            records.append({"time": _iso(moment + timedelta(seconds=second)), "level": "info", "msg": "ok"})
    records.append({"time": _iso(T0 + timedelta(minutes=5)), "level": "error", "msg": "cache miss storm"})
    for i in range(12):
        moment = T0 + timedelta(minutes=31, seconds=4 * i)
        records.append(
            {"time": _iso(moment), "level": "error", "msg": f"db timeout after {3000 + i}ms (conn {i})"}
        )
    records.append(
        {"time": _iso(T0 + timedelta(minutes=31, seconds=50)), "level": "fatal", "msg": "pool exhausted"}
    )
    records.sort(key=lambda r: str(r["time"]))
    records.insert(0, {"level": "error", "msg": "config file missing, using defaults"})  # No time.
    return "\n".join(json.dumps(r) for r in records) + "\n"


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def python_log() -> str:
    return "\n".join(
        [
            "2024-03-10 09:00:00,001 INFO app.main: starting worker",
            "2024-03-10 09:31:02,500 ERROR app.db: query failed",
            "Traceback (most recent call last):",
            '  File "/srv/app/db.py", line 12, in run',
            "TimeoutError: timed out",
            "2024-03-10 09:31:03,000 WARNING app.db: retrying",
        ]
    )


def _line_of(content: str, needle: str, *, occurrence: int = 1) -> int:
    hits = [n for n, line in enumerate(content.splitlines(), start=1) if needle in line]
    return hits[occurrence - 1] if occurrence > 0 else hits[occurrence]


async def _run(tool: Tool, *files: tuple[str, str], **args: Any) -> ToolOutput:
    ctx = ToolContext(task_id="t", step_id="s", files=[InputFile(name=n, content=c) for n, c in files])
    output, _ = await tool.run(args, ctx)
    return output


def _clock() -> datetime:
    return NOW


def _cited(output: ToolOutput, finding: ProposedFinding) -> list[Observation]:
    assert finding.observation_indexes, "every finding must be grounded"
    return [output.observations[i] for i in finding.observation_indexes]


def _finding(output: ToolOutput, title_start: str) -> ProposedFinding:
    [finding] = [f for f in output.findings if f.title.startswith(title_start)]
    return finding


async def test_log_parse_summarises_each_file() -> None:
    output = await _run(
        LogParseTool(clock=_clock),
        ("auth.log", auth_log()),
        ("access.log", access_log()),
        ("app.jsonl", app_jsonl()),
        ("app.log", python_log()),
    )

    by_file = {o.data["file"]: o for o in output.observations}
    auth = by_file["auth.log"]
    assert auth.location == f"auth.log:1-{len(auth_log().splitlines())}"
    assert (auth.data["format"], auth.data["unparsed"]) == ("syslog_rfc3164", 1)
    assert auth.data["unparsed_sample"] == [
        {"line": _line_of(auth_log(), "HUPed"), "text": "=== rsyslogd was HUPed ==="}
    ]
    assert (auth.data["first_seen"], auth.data["last_seen"]) == (
        "2024-03-10T08:00:00Z",
        "2024-03-10T09:04:00Z",
    )
    assert auth.data["top_source_ips"][0] == [ATTACKER, 23]
    access = by_file["access.log"]
    assert access.data["format"] == "access_combined"
    assert access.data["statuses"] == {
        "200": 183,
        "302": 1,
        "400": 1,
        "401": 24,
        "403": 1,
        "404": 3,
        "500": 2,
        "502": 2,
        "503": 15,
    }
    assert access.data["top_source_ips"][:5] == [[f"10.1.1.{n}", 36] for n in range(1, 6)]
    assert [WEB_BRUTE, 13] in access.data["top_source_ips"]
    assert by_file["app.jsonl"].data["levels"] == {"INFO": 120, "ERROR": 14, "CRITICAL": 1}
    python = by_file["app.log"]
    assert (python.data["format"], python.data["parsed"], python.data["unparsed"]) == ("python_logging", 3, 3)
    assert python.summary.startswith(
        "app.log: python_logging, 6 lines, 3 parsed, 3 unparsed, 2024-03-10T09:00:00.001000Z"
    )
    assert output.findings == ()
    assert output.data["files"]["access.log"]["truncated"] is False


async def test_log_parse_flags_unrecognised_files() -> None:
    output = await _run(LogParseTool(clock=_clock), ("notes.txt", "hello\nworld\n"), ("empty.log", ""))

    notes, empty = output.observations
    assert (notes.data["format"], notes.data["unparsed"], notes.location) == ("unknown", 2, "notes.txt:1-2")
    assert (empty.data["lines"], empty.location) == (0, "empty.log")
    [finding] = output.findings
    assert finding.title == "Unrecognised log format in notes.txt"
    assert (finding.severity, finding.observation_indexes) == (Severity.INFO, (0,))


async def test_log_parse_says_when_the_line_cap_was_hit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(logs_parse, "MAX_LINES", 10)

    output = await _run(LogParseTool(clock=_clock), ("access.log", access_log()))

    [observation] = output.observations
    assert observation.data["lines"] == 10
    assert observation.data["truncated"] is True
    assert "stopped at the 10-line cap" in observation.summary
    [finding] = output.findings
    assert (finding.title, finding.severity) == ("Log access.log only partly analysed", Severity.LOW)
    assert output.data["max_lines"] == 10


async def test_the_clock_decides_the_year_of_syslog_lines() -> None:
    output = await _run(
        LogParseTool(clock=lambda: datetime(2025, 1, 5, tzinfo=UTC)), ("auth.log", auth_log())
    )

    assert output.observations[0].data["first_seen"] == "2024-03-10T08:00:00Z"


async def test_ssh_brute_force_is_reported_with_lines_counts_and_usernames() -> None:
    content = auth_log()

    output = await _run(BruteForceTool(clock=_clock), ("auth.log", content))

    finding = _finding(output, "Brute-force SSH login")
    assert finding.title == f"Brute-force SSH login attempts from {ATTACKER} in auth.log"
    assert finding.severity is Severity.MEDIUM
    [evidence] = _cited(output, finding)
    first = _line_of(content, f"Failed password for root from {ATTACKER}")
    last = _line_of(content, f"Failed password for invalid user postgres from {ATTACKER}", occurrence=-1)
    assert evidence.location == f"auth.log:{first}-{last}"
    assert evidence.data["failures"] == 12
    assert evidence.data["peak_window"] == {
        "count": 12,
        "start": "2024-03-10T09:00:00Z",
        "end": "2024-03-10T09:01:50Z",
        "first_line": first,
        "last_line": last,
        "window_seconds": 300,
    }
    assert evidence.data["users_sample"] == USERS
    assert (evidence.data["distinct_users"], evidence.data["invalid_users"]) == (6, 5)
    assert "12 failed SSH login attempts" in evidence.summary
    # Three failures from the background address are reported nowhere.
    assert "198.51.100.7" not in repr(output)


async def test_a_login_after_the_failures_is_a_likely_compromise() -> None:
    content = auth_log()

    output = await _run(BruteForceTool(clock=_clock), ("auth.log", content))

    finding = _finding(output, "Likely compromise")
    assert finding.severity is Severity.HIGH
    assert (
        finding.title == f"Likely compromise: SSH login for root from {ATTACKER} succeeded after 12 failures"
    )
    attempts, success = _cited(output, finding)
    assert attempts.data["ip"] == ATTACKER and attempts.data["successes_after_failures"] == 1
    line = _line_of(content, f"Accepted password for root from {ATTACKER}")
    assert success.location == f"auth.log:{line}"
    assert success.data == {
        "file": "auth.log",
        "line": line,
        "time": "2024-03-10T09:03:00Z",
        "ip": ATTACKER,
        "user": "root",
        "method": "password",
        "failures_before": 12,
    }
    # The deploy key login came from an address that never failed.
    assert "deploy" not in repr(output.findings)


async def test_many_usernames_from_one_address_is_enumeration() -> None:
    output = await _run(BruteForceTool(clock=_clock), ("auth.log", auth_log()), distinct_users=6)
    finding = _finding(output, "Username enumeration")
    assert finding.title == f"Username enumeration from {ATTACKER} in auth.log"
    assert "6 distinct usernames" in finding.description and "5 of them unknown" in finding.description
    assert _cited(output, finding)[0].data["users_sample"] == USERS

    fewer = await _run(BruteForceTool(clock=_clock), ("auth.log", auth_log()), distinct_users=7)
    assert not [f for f in fewer.findings if f.title.startswith("Username enumeration")]


@pytest.mark.parametrize(("failures", "reported"), [(9, False), (10, True)])
async def test_the_threshold_counts_failures_inside_the_window(failures: int, reported: bool) -> None:
    content = "\n".join(_ssh_failures(ATTACKER, failures, start=T0, step=30))

    output = await _run(BruteForceTool(clock=_clock), ("auth.log", content), threshold=10, distinct_users=50)

    assert bool(output.findings) is reported
    assert len(output.observations) == int(reported)


async def test_failures_spread_wider_than_the_window_are_not_a_burst() -> None:
    # Ten failures 40 s apart span 360 s: at most 8 fit in any 300 s window.
    content = "\n".join(_ssh_failures(ATTACKER, 10, start=T0, step=40))

    narrow = await _run(BruteForceTool(clock=_clock), ("auth.log", content), distinct_users=50)
    wide = await _run(
        BruteForceTool(clock=_clock), ("auth.log", content), window_seconds=360, distinct_users=50
    )

    assert narrow.findings == ()
    [finding] = wide.findings
    assert _cited(wide, finding)[0].data["peak_window"]["count"] == 10


async def test_a_slow_attack_that_succeeds_is_still_a_compromise() -> None:
    lines = _ssh_failures(ATTACKER, 10, start=T0, step=3600)
    lines.append(_syslog(T0 + timedelta(hours=11), f"Accepted password for root from {ATTACKER} port 1 ssh2"))

    output = await _run(BruteForceTool(clock=_clock), ("auth.log", "\n".join(lines)), distinct_users=50)

    [finding] = output.findings
    assert finding.severity is Severity.HIGH
    assert [o.data.get("peak_window", {}).get("count") for o in _cited(output, finding)] == [1, None]


async def test_repeated_messages_count_toward_the_threshold() -> None:
    line = f"message repeated 9 times: [ Failed password for root from {ATTACKER} port 22 ssh2]"
    content = "\n".join(
        [_syslog(T0, f"Failed password for root from {ATTACKER} port 22 ssh2"), _syslog(T0, line)]
    )

    output = await _run(BruteForceTool(clock=_clock), ("auth.log", content))

    [finding] = output.findings
    assert _cited(output, finding)[0].data["failures"] == 10


async def test_http_login_bursts_and_a_following_success_are_found() -> None:
    content = access_log()

    output = await _run(BruteForceTool(clock=_clock), ("access.log", content))

    burst = _finding(output, "Brute-force HTTP login")
    assert burst.title == f"Brute-force HTTP login attempts from {WEB_BRUTE} in access.log"
    [evidence] = _cited(output, burst)
    assert (evidence.data["channel"], evidence.data["failures"]) == ("http", 12)
    first = _line_of(content, f'{WEB_BRUTE} - - [10/Mar/2024:09:20:00 +0000] "POST /login')
    assert str(evidence.location).startswith(f"access.log:{first}-")
    compromise = _finding(output, "Likely compromise: HTTP login")
    assert _cited(output, compromise)[1].data["method"] == "POST /login"
    # 401s on a path that is not a login are missing permissions, not guessed passwords.
    assert "10.1.1.9" not in repr(output)


@pytest.mark.parametrize("args", [{"threshold": 1}, {"window_seconds": 0}, {"colour": "red"}])
async def test_bad_arguments_are_refused(args: dict[str, Any]) -> None:
    with pytest.raises(ToolError, match="invalid arguments for log_bruteforce"):
        await _run(BruteForceTool(), ("auth.log", auth_log()), **args)


async def test_5xx_bursts_are_found_against_the_median_rate() -> None:
    content = access_log()

    output = await _run(ErrorBurstTool(clock=_clock), ("access.log", content))

    [finding] = output.findings
    assert finding.title == "Error burst in access.log at 2024-03-10T09:30:00Z: 17 errors"
    assert finding.severity is Severity.MEDIUM
    [evidence] = _cited(output, finding)
    first = _line_of(content, "10.2.0.0 ")
    last = _line_of(content, "10.2.0.16 ")
    assert evidence.location == f"access.log:{first}-{last}"
    assert evidence.data["kinds"] == {"HTTP 503": 15, "HTTP 502": 2}
    assert evidence.data["top_paths"] == [["/api/orders", 15], ["/api/cart", 2]]
    assert (evidence.data["baseline_per_minute"], evidence.data["peak_per_minute"]) == (0.0, 17)
    assert evidence.data["end"] == "2024-03-10T09:31:00Z"


async def test_error_level_bursts_group_messages_and_critical_is_high() -> None:
    output = await _run(ErrorBurstTool(clock=_clock), ("app.jsonl", app_jsonl()))

    [finding] = output.findings
    assert finding.severity is Severity.HIGH
    [evidence] = _cited(output, finding)
    assert evidence.data["kinds"] == {"ERROR": 12, "CRITICAL": 1}
    assert evidence.data["top_messages"] == [["db timeout after <n>ms (conn <n>)", 12], ["pool exhausted", 1]]
    assert evidence.data["top_paths"] == []


@pytest.mark.parametrize(("min_events", "reported"), [(17, True), (18, False)])
async def test_min_events_bounds_a_burst(min_events: int, reported: bool) -> None:
    output = await _run(ErrorBurstTool(clock=_clock), ("access.log", access_log()), min_events=min_events)

    assert len(output.findings) == int(reported)


async def test_steady_errors_are_the_baseline_not_a_burst() -> None:
    lines = [
        _access("10.0.0.1", T0 + timedelta(minutes=m, seconds=s), "GET /flaky HTTP/1.1", 500)
        for m in range(30)
        for s in range(12 if m != 10 else 40)
    ]

    default = await _run(ErrorBurstTool(clock=_clock), ("access.log", "\n".join(lines)))
    lower = await _run(ErrorBurstTool(clock=_clock), ("access.log", "\n".join(lines)), factor=3.0)

    assert default.findings == ()  # 40 is not over 5 x the median of 12.
    [finding] = lower.findings
    assert _cited(lower, finding)[0].data["baseline_per_minute"] == 12.0


async def test_the_timeline_merges_files_in_time_order() -> None:
    auth, access, app = auth_log(), access_log(), app_jsonl()

    output = await _run(
        TimelineTool(clock=_clock), ("auth.log", auth), ("access.log", access), ("app.jsonl", app)
    )

    entries = [(o.data["time"], o.data["kind"], o.location) for o in output.observations]
    assert [e[1] for e in entries] == [
        "brute_force",
        "auth_failures",
        "login_after_failures",
        "brute_force",
        "login_after_failures",
        "error_burst",
        "error_burst",
        "sql_injection",  # At one moment, the more severe entry comes first.
        "scanner",
        "path_traversal",
        "system_file",
        "dotenv",
        "git",
        "wordpress_login",
    ]
    assert [e[0] for e in entries] == sorted(e[0] for e in entries)
    assert entries[2] == (
        "2024-03-10T09:03:00Z",
        "login_after_failures",
        f"auth.log:{_line_of(auth, 'Accepted password for root')}",
    )
    assert all(o.location and ":" in o.location for o in output.observations)
    assert output.observations[0].summary.startswith("2024-03-10T09:00:00Z [medium] auth.log:")
    assert output.data["by_kind"]["error_burst"] == 2
    assert (output.data["entries"], output.data["dropped"]) == (14, 0)


async def test_web_attacks_are_stated_per_address_and_served_secrets_are_high() -> None:
    content = access_log()

    output = await _run(TimelineTool(clock=_clock), ("access.log", content))

    [finding] = output.findings
    assert finding.title.startswith(f"Web attack traffic from {SCANNER}: ")
    assert finding.severity is Severity.HIGH
    assert "1 requests for sensitive files were answered with 2xx" in finding.description
    cited = _cited(output, finding)
    assert {o.data["kind"] for o in cited} == {
        "scanner",
        "sql_injection",
        "path_traversal",
        "system_file",
        "dotenv",
        "git",
        "wordpress_login",
    }
    dotenv = next(o for o in cited if o.data["kind"] == "dotenv")
    assert dotenv.location == f"access.log:{_line_of(content, 'GET /.env')}"
    assert (dotenv.data["severity"], dotenv.data["served"]) == ("high", 1)
    scanner = next(o for o in cited if o.data["kind"] == "scanner")
    assert scanner.data["count"] == 8
    traversal = next(o for o in cited if o.data["kind"] == "path_traversal")
    assert traversal.data["count"] == 3  # Plain, double-encoded and in a query string.
    sqli = next(o for o in cited if o.data["kind"] == "sql_injection")
    assert sqli.data["count"] == 2


async def test_secrets_in_requests_are_redacted() -> None:
    output = await _run(TimelineTool(clock=_clock), ("access.log", access_log()))

    assert GITHUB not in repr(output)
    assert "ghp_…(40 chars)" in repr(output)


async def test_the_timeline_cap_keeps_the_most_severe_entries() -> None:
    noise = [
        _syslog(T0 + timedelta(minutes=5 + i), f"Failed password for root from 198.18.0.{i} port 22 ssh2")
        for i in range(50)
    ]
    content = "\n".join(noise) + "\n" + auth_log()

    output = await _run(TimelineTool(clock=_clock), ("auth.log", content), limit=3)

    kinds = [o.data["kind"] for o in output.observations]
    assert kinds == ["brute_force", "auth_failures", "login_after_failures"]
    assert output.observations[1].data["ip"] == "198.51.100.7"  # The earliest of the low entries.
    assert (output.data["entries"], output.data["kept"], output.data["dropped"]) == (53, 3, 50)


async def test_tools_are_named_and_describe_their_arguments() -> None:
    tools = [LogParseTool(), BruteForceTool(), ErrorBurstTool(), TimelineTool()]

    assert [t.name for t in tools] == ["log_parse", "log_bruteforce", "log_error_bursts", "log_timeline"]
    properties = BruteForceTool().json_schema()["properties"]
    assert {k: v["default"] for k, v in properties.items()} == {
        "window_seconds": 300,
        "threshold": 10,
        "distinct_users": 5,
    }
    assert ErrorBurstTool().json_schema()["properties"]["factor"]["default"] == 5.0
    assert TimelineTool().json_schema()["properties"]["limit"]["maximum"] == 200


async def test_logins_without_timestamps_are_judged_by_order_alone() -> None:
    failed = {"msg": f"Failed password for root from {ATTACKER} port 22 ssh2"}
    accepted = {"msg": f"Accepted password for root from {ATTACKER} port 22 ssh2"}
    content = "\n".join(json.dumps(r) for r in [failed] * 10 + [accepted])

    output = await _run(BruteForceTool(clock=_clock), ("auth.jsonl", content))

    [finding] = output.findings
    assert finding.title.startswith("Likely compromise: SSH login for root")
    attempts, success = _cited(output, finding)
    assert (attempts.data["peak_window"], attempts.data["first_seen"], success.data["time"]) == (
        None,
        None,
        None,
    )
    assert (
        attempts.summary
        == f"auth.jsonl:1-10: 10 failed SSH login attempts from {ATTACKER}; 1 usernames: root"
    )


async def test_separate_error_bursts_are_reported_separately() -> None:
    lines = [
        _access("10.0.0.1", T0 + timedelta(minutes=m, seconds=s), "GET /ok HTTP/1.1", 200)
        for m in range(20)
        for s in (0, 30)
    ]
    for minute in (5, 6, 15):
        lines += [
            _access("10.0.0.2", T0 + timedelta(minutes=minute, seconds=s), "GET /pay HTTP/1.1", 504)
            for s in range(10)
        ]
    lines.append("not a log line")
    lines.sort(key=lambda line: line.split("[")[-1])

    output = await _run(ErrorBurstTool(clock=_clock), ("access.log", "\n".join(lines)))

    assert [(o.data["start"], o.data["end"], o.data["count"]) for o in output.observations] == [
        ("2024-03-10T09:05:00Z", "2024-03-10T09:07:00Z", 20),
        ("2024-03-10T09:15:00Z", "2024-03-10T09:16:00Z", 10),
    ]
    assert [f.observation_indexes for f in output.findings] == [(0,), (1,)]


async def test_attack_requests_far_apart_are_separate_episodes() -> None:
    lines = [
        _access(SCANNER, T0 + timedelta(minutes=minute), "GET /.git/HEAD HTTP/1.1", 404)
        for minute in (0, 5, 30)
    ]

    output = await _run(TimelineTool(clock=_clock), ("access.log", "\n".join(lines)))

    assert [(o.location, o.data["count"]) for o in output.observations] == [
        ("access.log:1-2", 2),
        ("access.log:3", 1),
    ]
    [finding] = output.findings
    assert (finding.severity, finding.observation_indexes) == (Severity.LOW, (0, 1))


async def test_execute_refuses_arguments_of_another_tool() -> None:
    ctx = ToolContext(task_id="t", step_id="s")

    with pytest.raises(ToolError, match="log_timeline expects TimelineArgs"):
        await TimelineTool().execute(BruteForceArgs(), ctx)


async def test_the_evidence_cap_keeps_compromises_and_every_citation_valid() -> None:
    lines: list[str] = []
    for i in range(210):
        failure = f"Failed password for root from 198.18.{i // 200}.{i % 200} port 22 ssh2"
        lines += [_syslog(T0 + timedelta(seconds=s), failure) for s in range(10)]
    lines += _ssh_failures(ATTACKER, 10, start=T0, step=1)
    lines += [
        _syslog(T0 + timedelta(minutes=1), f"Accepted password for root from {ATTACKER} port 9 ssh2")
    ] * 7

    output = await _run(BruteForceTool(clock=_clock), ("auth.log", "\n".join(lines)), distinct_users=50)

    assert len(output.observations) == 200
    assert output.data["omitted_addresses"] == 210 - (200 - 6)  # One attack with 6 observations kept.
    compromise = output.findings[1]
    assert compromise.severity is Severity.HIGH
    assert compromise.observation_indexes == (0, 1, 2, 3, 4, 5)  # The attempts and the first 5 logins.
    assert "logged in 7 time(s) as root" in compromise.description
    assert all(f.observation_indexes and max(f.observation_indexes) < 200 for f in output.findings)
