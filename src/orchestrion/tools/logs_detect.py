"""Detections over parsed logs: authentication attacks, error bursts and web attack requests.

The rules are tables: `LOGIN_PATH` (where an HTTP 401/403 is a rejected login), `WEB_RULES`
(attack requests) and `MESSAGE_VARIABLES` (what to blank out so error messages group together).
Everything here is pure and blocking; the tools in `logs` run it in a worker thread.
"""

from __future__ import annotations

import re
import statistics
from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal
from urllib.parse import unquote_plus

from orchestrion.domain.findings import Severity
from orchestrion.tools.logs_parse import AuthOutcome, LogFormat, LogRecord, ParsedLog
from orchestrion.tools.secrets import redact_secrets

DEFAULT_WINDOW_SECONDS = 300
DEFAULT_THRESHOLD = 10
DEFAULT_DISTINCT_USERS = 5
DEFAULT_FACTOR = 5.0
DEFAULT_MIN_EVENTS = 10

# Paths whose last segment is a login endpoint: a 401/403 there is a rejected credential, not a
# missing permission, and a POST answered 2xx/3xx is a successful login.
LOGIN_PATH = re.compile(
    r"(?i)/(?:login|logon|signin|sign-in|sign_in)(?:\.php|\.aspx?|\.jsp)?/?$"
    r"|/(?:auth|authenticate|session|sessions|oauth/token|token|j_security_check|admin|administrator)/?$"
    r"|/(?:wp-login|xmlrpc)\.php$"
)
# Words that attack tools and vulnerability scanners put in their default user agents.
_SCANNERS = (
    "sqlmap nikto nmap masscan zgrab nuclei wpscan dirbuster gobuster feroxbuster ffuf acunetix nessus "
    "openvas w3af hydra zmeu whatweb"
).split()
# SQL that ordinary URLs never contain: UNION SELECT, tautologies, time delays, catalogue tables,
# a comment right after a closing quote, stacked statements.
_SQL_INJECTION = (
    r"union(?:\s|/\*[^*]*\*/)+(?:all\s+)?select",
    r"\b(?:or|and)\s+['\"]?\w+['\"]?\s*=\s*['\"]?\w+",
    r"\b(?:sleep|benchmark|pg_sleep)\s*\(",
    r"waitfor\s+delay",
    r"information_schema",
    r"xp_cmdshell",
    r"'\s*(?:--|#|/\*)",
    r";\s*(?:drop|select|insert|update|delete)\s",
)
_EPISODE_GAP = timedelta(minutes=10)
_SAMPLE = 3
_TOP = 5


@dataclass(frozen=True, kw_only=True)
class WebRule:
    """A suspicious request: `pattern` searched in the decoded path or the user agent.

    Attributes:
        served_severity: Severity when the server answered 2xx (the file was probably handed out).
    """

    id: str
    label: str
    target: Literal["path", "user_agent"]
    pattern: re.Pattern[str]
    severity: Severity
    served_severity: Severity | None = None


WEB_RULES = (
    WebRule(
        id="scanner",
        label="scanner user agent",
        target="user_agent",
        severity=Severity.LOW,
        pattern=re.compile(r"(?i)\b(?:" + "|".join(_SCANNERS) + ")"),
    ),
    WebRule(
        id="path_traversal",
        label="path traversal",
        target="path",
        severity=Severity.MEDIUM,
        pattern=re.compile(r"\.\.[/\\]"),
    ),
    WebRule(
        id="system_file",
        label="system file request",
        target="path",
        severity=Severity.MEDIUM,
        served_severity=Severity.HIGH,
        pattern=re.compile(r"(?i)/etc/(?:passwd|shadow)|/proc/self/|win\.ini|boot\.ini"),
    ),
    WebRule(
        id="sql_injection",
        label="SQL injection pattern",
        target="path",
        severity=Severity.MEDIUM,
        pattern=re.compile("(?i)" + "|".join(_SQL_INJECTION)),
    ),
    WebRule(
        id="dotenv",
        label=".env probe",
        target="path",
        severity=Severity.LOW,
        served_severity=Severity.HIGH,
        pattern=re.compile(r"(?i)/\.env(?:$|[.?/])"),
    ),
    WebRule(
        id="git",
        label=".git probe",
        target="path",
        severity=Severity.LOW,
        served_severity=Severity.HIGH,
        pattern=re.compile(r"(?i)/\.git(?:$|[/?])"),
    ),
    WebRule(
        id="wordpress_login",
        label="WordPress login probe",
        target="path",
        severity=Severity.LOW,
        pattern=re.compile(r"(?i)/(?:wp-login|xmlrpc)\.php"),
    ),
)

MESSAGE_VARIABLES = (
    (re.compile(r"(?i)\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b"), "<uuid>"),
    (re.compile(r"\b\d{1,3}(?:\.\d{1,3}){3}\b"), "<ip>"),
    (re.compile(r"(?i)\b0x[0-9a-f]+\b|\b[0-9a-f]*\d[0-9a-f]*[a-f][0-9a-f]{10,}\b"), "<hex>"),
    (re.compile(r"\d+"), "<n>"),
)


@dataclass(frozen=True, kw_only=True)
class Window:
    """The densest stretch of failures: `count` failures from line `first_line` to `last_line`."""

    count: int
    start: datetime
    end: datetime
    first_line: int
    last_line: int


@dataclass(frozen=True, kw_only=True)
class Compromise:
    """A successful login from an address after `failures_before` failures from it."""

    line: int
    time: datetime | None
    user: str
    method: str
    failures_before: int


@dataclass(frozen=True, kw_only=True)
class AuthAttack:
    """Failed logins from one address over one channel (``"ssh"`` or ``"http"``) in one file.

    Attributes:
        failures: Failed attempts (``Invalid user`` lines are not counted: sshd follows each with a
            ``Failed ... for invalid user`` line, except when no password was tried).
        users: Distinct usernames tried, in first-seen order.
        peak: The window of the most failures, if the failures have timestamps.
        compromises: Successful logins preceded by at least the threshold's failures.
    """

    file: str
    ip: str
    channel: Literal["ssh", "http"]
    failures: int
    first_line: int
    last_line: int
    first_seen: datetime | None
    last_seen: datetime | None
    peak: Window | None
    users: tuple[str, ...]
    invalid_users: int
    compromises: tuple[Compromise, ...]


@dataclass(frozen=True, kw_only=True)
class ErrorBurst:
    """Consecutive minutes whose error count rose above the file's baseline."""

    file: str
    start: datetime
    end: datetime
    minutes: int
    count: int
    first_line: int
    last_line: int
    peak_per_minute: int
    baseline: float
    kinds: Counter[str]
    top_paths: tuple[tuple[str, int], ...]
    top_messages: tuple[tuple[str, int], ...]


@dataclass(frozen=True, kw_only=True)
class WebEpisode:
    """Requests matching one rule from one address, with no gap over ten minutes between them."""

    file: str
    ip: str
    rule: WebRule
    start: datetime | None
    end: datetime | None
    first_line: int
    last_line: int
    count: int
    served: int
    statuses: Counter[str]
    sample: tuple[str, ...]

    @property
    def severity(self) -> Severity:
        """The rule's severity, raised when a request was answered 2xx and the rule says so."""
        return self.rule.served_severity if self.served and self.rule.served_severity else self.rule.severity


def find_auth_attacks(log: ParsedLog, *, window_seconds: int, threshold: int) -> list[AuthAttack]:
    """Group failed logins by source address and channel, in the order the addresses first failed.

    A success counts as a compromise when the same address failed at least `threshold` times before it
    anywhere earlier in the file (the window does not apply: slow attacks succeed too).
    """
    failures: defaultdict[tuple[str, str], list[tuple[LogRecord, int]]] = defaultdict(list)
    users: defaultdict[tuple[str, str], dict[str, bool]] = defaultdict(dict)
    compromises: defaultdict[tuple[str, str], list[Compromise]] = defaultdict(list)
    totals: Counter[tuple[str, str]] = Counter()
    for record in log.records:
        event = _auth_event(record)
        if event is None:
            continue
        key, outcome, user, method, count, invalid = event
        if outcome is AuthOutcome.SUCCESS:
            before = totals[key]
            if before >= threshold:
                compromise = Compromise(
                    line=record.line, time=record.timestamp, user=user, method=method, failures_before=before
                )
                compromises[key].append(compromise)
            continue
        weight = count if outcome is AuthOutcome.FAILURE else 0
        failures[key].append((record, weight))
        totals[key] += weight
        if user:
            users[key][user] = users[key].get(user, False) or invalid
    attacks: list[AuthAttack] = []
    for (ip, channel), attempts in failures.items():
        times = [r.timestamp for r, _ in attempts if r.timestamp]
        attacks.append(
            AuthAttack(
                file=log.name,
                ip=ip,
                channel="ssh" if channel == "ssh" else "http",
                failures=sum(n for _, n in attempts),
                first_line=attempts[0][0].line,
                last_line=attempts[-1][0].line,
                first_seen=min(times, default=None),
                last_seen=max(times, default=None),
                peak=densest_window([(r, n) for r, n in attempts if n], window_seconds),
                users=tuple(users[(ip, channel)]),
                invalid_users=sum(users[(ip, channel)].values()),
                compromises=tuple(compromises[(ip, channel)]),
            )
        )
    return attacks


def _auth_event(
    record: LogRecord,
) -> tuple[tuple[str, str], AuthOutcome, str, str, int, bool] | None:
    if record.auth is not None:
        auth = record.auth
        return (auth.ip, "ssh"), auth.outcome, auth.user, auth.method or "ssh", auth.count, auth.invalid_user
    if record.status is None or record.path is None or not LOGIN_PATH.search(record.path.split("?")[0]):
        return None
    key = (record.source_ip or "unknown", "http")
    if record.status in (401, 403):
        return key, AuthOutcome.FAILURE, "", "http", 1, False
    if record.method == "POST" and 200 <= record.status < 400:
        return key, AuthOutcome.SUCCESS, "(unknown user)", f"POST {record.path}", 1, False
    return None


def densest_window(attempts: Sequence[tuple[LogRecord, int]], window_seconds: int) -> Window | None:
    """The stretch of at most `window_seconds` (first to last event) holding the most attempts.

    Attempts are ``(record, weight)``; records without a timestamp are ignored. Returns None when
    none has a timestamp.
    """
    timed = sorted(((r.timestamp, r.line, n) for r, n in attempts if r.timestamp), key=lambda t: t[0])
    best: tuple[int, int, int] | None = None  # count, first index, last index
    total = start = 0
    for end, (moment, _, weight) in enumerate(timed):
        total += weight
        while (moment - timed[start][0]).total_seconds() > window_seconds:
            total -= timed[start][2]
            start += 1
        if best is None or total > best[0]:
            best = (total, start, end)
    if best is None:
        return None
    count, first, last = best
    lines = [line for _, line, _ in timed[first : last + 1]]
    return Window(
        count=count, start=timed[first][0], end=timed[last][0], first_line=min(lines), last_line=max(lines)
    )


def find_error_bursts(log: ParsedLog, *, factor: float, min_events: int) -> list[ErrorBurst]:
    """Runs of minutes with at least `min_events` errors and more than `factor` x the median.

    Errors are HTTP 5xx responses and ERROR/CRITICAL records. The median is taken over the minutes in
    which the file has any timestamped record, so quiet gaps in the log do not lower the baseline.
    """
    active: set[int] = set()
    errors: defaultdict[int, list[LogRecord]] = defaultdict(list)
    for record in log.records:
        if record.timestamp is None:
            continue
        minute = int(record.timestamp.timestamp() // 60)
        active.add(minute)
        if _error_kind(record):
            errors[minute].append(record)
    if not errors:
        return []
    baseline = float(statistics.median(len(errors.get(m, ())) for m in active))
    hot = sorted(
        m for m, found in errors.items() if len(found) >= min_events and len(found) > factor * baseline
    )
    return [_burst(log.name, run, errors, baseline) for run in _consecutive(hot)]


def _consecutive(minutes: Sequence[int]) -> Iterator[list[int]]:
    run: list[int] = []
    for minute in minutes:
        if run and minute != run[-1] + 1:
            yield run
            run = []
        run.append(minute)
    if run:
        yield run


def _burst(name: str, run: list[int], errors: dict[int, list[LogRecord]], baseline: float) -> ErrorBurst:
    records = [r for minute in run for r in errors[minute]]
    paths = Counter(quote(r.path.split("?")[0]) for r in records if r.path)
    messages = Counter(
        normalise_message(r.message)
        for r in records
        if r.message and r.format not in (LogFormat.COMBINED, LogFormat.COMMON)
    )
    lines = [r.line for r in records]
    return ErrorBurst(
        file=name,
        start=datetime.fromtimestamp(run[0] * 60, tz=UTC),
        end=datetime.fromtimestamp((run[-1] + 1) * 60, tz=UTC),
        minutes=len(run),
        count=len(records),
        first_line=min(lines),
        last_line=max(lines),
        peak_per_minute=max(len(errors[m]) for m in run),
        baseline=baseline,
        kinds=Counter(_error_kind(r) for r in records),
        top_paths=tuple(paths.most_common(_TOP)),
        top_messages=tuple(messages.most_common(_TOP)),
    )


def _error_kind(record: LogRecord) -> str:
    if record.status is not None and record.status >= 500:
        return f"HTTP {record.status}"
    return record.level if record.level in ("ERROR", "CRITICAL") else ""


def normalise_message(message: str) -> str:
    """`message` with ids, addresses and numbers blanked so that repeats of one error group together."""
    for pattern, placeholder in MESSAGE_VARIABLES:
        message = pattern.sub(placeholder, message)
    return quote(message)


def find_web_episodes(log: ParsedLog) -> list[WebEpisode]:
    """Requests matching `WEB_RULES`, grouped by address and rule into episodes split at 10-minute gaps."""
    groups: defaultdict[tuple[str, str], list[LogRecord]] = defaultdict(list)
    rules = {rule.id: rule for rule in WEB_RULES}
    for record in log.records:
        if record.path is None and record.user_agent is None:
            continue
        path = _decode(record.path or "")
        for rule in WEB_RULES:
            target = path if rule.target == "path" else record.user_agent or ""
            if rule.pattern.search(target):
                groups[(record.source_ip or "unknown", rule.id)].append(record)
    episodes: list[WebEpisode] = []
    for (ip, rule_id), records in groups.items():
        for run in _split_at_gaps(records):
            rule = rules[rule_id]
            times = [r.timestamp for r in run if r.timestamp]
            shown = (r.user_agent if rule.target == "user_agent" else r.path for r in run)
            episodes.append(
                WebEpisode(
                    file=log.name,
                    ip=ip,
                    rule=rule,
                    start=min(times, default=None),
                    end=max(times, default=None),
                    first_line=run[0].line,
                    last_line=run[-1].line,
                    count=len(run),
                    served=sum(1 for r in run if r.status is not None and 200 <= r.status < 300),
                    statuses=Counter(str(r.status) for r in run if r.status is not None),
                    sample=tuple(quote(s) for s in list(dict.fromkeys(s for s in shown if s))[:_SAMPLE]),
                )
            )
    return episodes


def _decode(path: str) -> str:
    # Twice, because scanners double-encode (%252e%252e%252f) to slip past filters.
    return unquote_plus(unquote_plus(path))


def _split_at_gaps(records: Sequence[LogRecord]) -> Iterator[list[LogRecord]]:
    run: list[LogRecord] = []
    last: datetime | None = None
    for record in records:
        if run and record.timestamp and last and record.timestamp - last > _EPISODE_GAP:
            yield run
            run = []
        run.append(record)
        last = record.timestamp or last
    if run:
        yield run


def iso(moment: datetime | None) -> str | None:
    """ISO 8601 text of a UTC moment with a ``Z`` suffix, or None."""
    return moment.isoformat().replace("+00:00", "Z") if moment else None


def span(name: str, first: int, last: int) -> str:
    """A location ``name:first-last``, or ``name:line`` for a single line."""
    return f"{name}:{first}" if first == last else f"{name}:{first}-{last}"


def quote(text: str, limit: int = 120) -> str:
    """Log text fit to quote: secrets redacted, at most `limit` characters."""
    return redact_secrets(text[: limit * 4])[:limit]
