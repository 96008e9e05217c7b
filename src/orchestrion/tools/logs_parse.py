"""Line-by-line log parsing: access logs, syslog with OpenSSH messages, JSON lines and Python logging.

Recognised formats (`LogFormat`): Apache/Nginx combined and common log format, syslog RFC 3164 (also
with the ISO 8601 timestamps rsyslog writes by default) and RFC 5424, JSON lines, and Python logging's
``%(asctime)s %(levelname)s %(name)s: %(message)s`` and ``%(asctime)s - %(name)s - %(levelname)s -
%(message)s``. OpenSSH authentication messages are recognised inside any message (`AUTH_RULES`).

Each line is tried against the format that matched the previous line first, so a file of one format
costs one regular expression per line. A file's format is the one most of its lines matched; lines
that no format matches are counted as unparsed, blank lines are skipped.

Time: every timestamp is an aware UTC datetime. Timestamps without a zone (RFC 3164, Python logging,
zone-less ISO strings) are taken as UTC. RFC 3164 has no year either: see `bsd_syslog_time`.
"""

from __future__ import annotations

import enum
import functools
import json
import re
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from orchestrion.tools.base import InputFile

MAX_LINES = 500_000
MAX_LINE_CHARS = 20_000
_UNPARSED_SAMPLE = 5
_FUTURE_SLACK = timedelta(days=1)
_MONTHS = {m: i for i, m in enumerate("Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split(), start=1)}


class LogFormat(enum.StrEnum):
    """A log line format this module recognises."""

    COMBINED = "access_combined"
    COMMON = "access_common"
    SYSLOG_RFC3164 = "syslog_rfc3164"
    SYSLOG_RFC5424 = "syslog_rfc5424"
    JSON = "json_lines"
    PYTHON = "python_logging"
    UNKNOWN = "unknown"


class AuthOutcome(enum.StrEnum):
    """What an OpenSSH authentication message reports."""

    FAILURE = "failure"
    SUCCESS = "success"
    INVALID_USER = "invalid_user"


@dataclass(frozen=True, kw_only=True, slots=True)
class AuthEvent:
    """An OpenSSH authentication message; `count` > 1 when syslog folded repeats into one line."""

    outcome: AuthOutcome
    user: str
    ip: str
    method: str | None = None
    invalid_user: bool = False
    count: int = 1


@dataclass(frozen=True, kw_only=True, slots=True)
class LogRecord:
    """One parsed line. Fields a format does not carry are None.

    Attributes:
        line: 1-based line number in the file.
        level: Normalised to DEBUG, INFO, WARNING, ERROR or CRITICAL.
        source_ip: The client address (access logs, JSON ``ip`` keys, OpenSSH ``from`` addresses).
    """

    line: int
    format: LogFormat
    timestamp: datetime | None = None
    level: str | None = None
    message: str = ""
    source_ip: str | None = None
    status: int | None = None
    method: str | None = None
    path: str | None = None
    user_agent: str | None = None
    program: str | None = None
    auth: AuthEvent | None = None


@dataclass(frozen=True, kw_only=True)
class ParsedLog:
    """A parsed file: its records, its detected format and what could not be read."""

    name: str
    format: LogFormat
    records: tuple[LogRecord, ...]
    lines: int
    unparsed: int
    unparsed_sample: tuple[tuple[int, str], ...] = ()
    last_line: int = 0
    truncated: bool = False
    formats: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class AuthRule:
    """An OpenSSH message pattern; named groups ``user``, ``ip`` and optionally ``method``/``invalid``."""

    outcome: AuthOutcome
    pattern: re.Pattern[str]


_IP = r"(?P<ip>(?:\d{1,3}\.){3}\d{1,3}|[0-9A-Fa-f]*:[0-9A-Fa-f:.]+)"
AUTH_RULES = (
    AuthRule(
        outcome=AuthOutcome.FAILURE,
        pattern=re.compile(
            rf"Failed (?P<method>\S+) for (?P<invalid>invalid user )?(?P<user>.*?) from {_IP}(?: |$)"
        ),
    ),
    AuthRule(
        outcome=AuthOutcome.SUCCESS,
        pattern=re.compile(rf"Accepted (?P<method>\S+) for (?P<user>\S+) from {_IP}(?: |$)"),
    ),
    AuthRule(
        outcome=AuthOutcome.INVALID_USER,
        pattern=re.compile(rf"Invalid user (?P<user>.*?) from {_IP}(?: |$)"),
    ),
)
_REPEATED = re.compile(r"message repeated (?P<count>\d+) times: \[ ?(?P<message>.*?) ?\]$")

# Level words of every format, and pino/bunyan's numeric levels, onto Python's five names.
_LEVELS = {
    "trace": "DEBUG",
    "debug": "DEBUG",
    "info": "INFO",
    "information": "INFO",
    "notice": "INFO",
    "warn": "WARNING",
    "warning": "WARNING",
    "err": "ERROR",
    "error": "ERROR",
    "crit": "CRITICAL",
    "critical": "CRITICAL",
    "fatal": "CRITICAL",
    "alert": "CRITICAL",
    "emerg": "CRITICAL",
    "emergency": "CRITICAL",
    "panic": "CRITICAL",
}
_NUMERIC_LEVELS = {10: "DEBUG", 20: "DEBUG", 30: "INFO", 40: "WARNING", 50: "ERROR", 60: "CRITICAL"}
_SYSLOG_SEVERITIES = ("CRITICAL", "CRITICAL", "CRITICAL", "ERROR", "WARNING", "INFO", "INFO", "DEBUG")

# The keys JSON loggers commonly use for each field, in order of preference.
JSON_KEYS: Mapping[str, tuple[str, ...]] = {
    "timestamp": ("timestamp", "time", "@timestamp", "ts", "datetime", "date"),
    "level": ("level", "severity", "levelname", "log_level", "loglevel"),
    "message": ("msg", "message", "event", "MESSAGE"),
    "ip": ("ip", "remote_addr", "client_ip", "clientip", "remote_ip", "src_ip"),
    "status": ("status", "status_code", "statusCode"),
    "method": ("method", "request_method", "http_method"),
    "path": ("path", "url", "uri", "request_uri"),
    "user_agent": ("user_agent", "http_user_agent", "userAgent", "agent"),
    "request": ("request",),
}

_QUOTED = r'(?:[^"\\]|\\.)*'
_ACCESS = re.compile(
    rf'(?P<ip>\S+) \S+ \S+ \[(?P<time>[^\]]+)\] "(?P<request>{_QUOTED})" (?P<status>\d{{3}}) (?:\d+|-)'
    rf'(?P<combined> "{_QUOTED}" "(?P<agent>{_QUOTED})")?(?: .*)?'
)
_CLF_TIME = re.compile(
    r"(?P<d>\d{1,2})/(?P<mon>[A-Z][a-z]{2})/(?P<y>\d{4}):(?P<h>\d\d):(?P<m>\d\d):(?P<s>\d\d)"
    r" (?P<sign>[+-])(?P<oh>\d\d)(?P<om>\d\d)"
)
_ISO = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:?\d\d)?"
_RFC5424 = re.compile(
    rf"<(?P<pri>\d{{1,3}})>1 (?P<time>{_ISO}|-) (?P<host>\S+) (?P<app>\S+) \S+ \S+"
    r" (?:-|(?:\[(?:[^\]\\]|\\.)*\])+)(?: (?P<msg>.*))?"
)
_RFC3164 = re.compile(
    r"(?:<(?P<pri>\d{1,3})>)?"
    r"(?:(?P<mon>[A-Z][a-z]{2}) {1,2}(?P<d>\d{1,2}) (?P<h>\d\d):(?P<m>\d\d):(?P<s>\d\d)"
    rf"|(?P<iso>{_ISO})) (?P<host>\S+) (?:(?P<tag>[^\s:\[]+)(?:\[\w*\])?: )?(?P<msg>.*)"
)
_PYTHON_TIME = r"(?P<time>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)[,.](?P<ms>\d{3})"
_PYTHON_PATTERNS = (
    re.compile(rf"{_PYTHON_TIME} (?P<level>[A-Z]+) (?P<name>\S+?): (?P<msg>.*)"),
    re.compile(rf"{_PYTHON_TIME} - (?P<name>\S+) - (?P<level>[A-Z]+) - (?P<msg>.*)"),
)

_Parser = Callable[[str, int, datetime], LogRecord | None]


def parse_log(file: InputFile, *, now: datetime, max_lines: int | None = None) -> ParsedLog:
    """Parse `file` line by line, reading at most `max_lines` (default `MAX_LINES`) lines.

    Args:
        file: The log.
        now: The current time, used to infer RFC 3164 years.
        max_lines: Lines to read at most; the rest is ignored and `ParsedLog.truncated` is set.
    """
    limit = MAX_LINES if max_lines is None else max_lines
    parts = file.content.split("\n", limit)
    truncated = len(parts) > limit and parts[limit] != ""
    records: list[LogRecord] = []
    unparsed_sample: list[tuple[int, str]] = []
    lines = unparsed = last_line = 0
    order = list(_PARSERS)
    for number, raw in enumerate(parts[:limit], start=1):
        text = raw.rstrip("\r")[:MAX_LINE_CHARS]
        if not text.strip():
            continue
        lines += 1
        last_line = number
        for position, parser in enumerate(order):
            record = parser(text, number, now)
            if record is not None:
                records.append(record)
                if position:
                    order.insert(0, order.pop(position))
                break
        else:
            unparsed += 1
            if len(unparsed_sample) < _UNPARSED_SAMPLE:
                unparsed_sample.append((number, text[:200]))
    formats = Counter(r.format.value for r in records)
    dominant = LogFormat(formats.most_common(1)[0][0]) if formats else LogFormat.UNKNOWN
    return ParsedLog(
        name=file.name,
        format=dominant,
        records=tuple(records),
        lines=lines,
        unparsed=unparsed,
        unparsed_sample=tuple(unparsed_sample),
        last_line=last_line,
        truncated=truncated,
        formats=dict(formats),
    )


def bsd_syslog_time(month: int, day: int, hms: tuple[int, int, int], *, now: datetime) -> datetime | None:
    """Date an RFC 3164 timestamp, which has neither year nor zone, taking it as UTC.

    The year is `now`'s, unless that puts the moment more than a day after `now` (a day of slack
    because the log's clock is in an unknown zone): then it is the previous year. Going back further
    only happens for 29 February, which takes the most recent leap year.

    Returns:
        The moment, or None when no year in the last eight makes it a valid date.
    """
    for year in range(now.year, now.year - 8, -1):
        try:
            moment = datetime(year, month, day, *hms, tzinfo=UTC)
        except ValueError:
            continue
        if moment <= now + _FUTURE_SLACK:
            return moment
    return None


def parse_timestamp(value: object) -> datetime | None:
    """An aware UTC datetime from an ISO 8601 string or epoch seconds/milliseconds, else None."""
    try:
        if isinstance(value, bool):
            return None
        if isinstance(value, int | float):
            seconds = value / 1000 if value > 1e11 else value
            return datetime.fromtimestamp(seconds, tz=UTC)
        if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
            return parse_timestamp(int(value))
        if isinstance(value, str):
            moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
            return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)
    except (ValueError, OverflowError, OSError):
        return None
    return None


def normalise_level(value: object) -> str | None:
    """DEBUG, INFO, WARNING, ERROR or CRITICAL for a level word or pino/bunyan number, else None."""
    if isinstance(value, int) and not isinstance(value, bool):
        return _NUMERIC_LEVELS.get(value)
    if isinstance(value, str):
        return _LEVELS.get(value.strip().lower())
    return None


def parse_auth(message: str) -> AuthEvent | None:
    """The OpenSSH authentication event a syslog message reports, if any."""
    count = 1
    repeated = _REPEATED.match(message)
    if repeated:
        count, message = int(repeated["count"]), repeated["message"]
    for rule in AUTH_RULES:
        match = rule.pattern.match(message)
        if match:
            groups = match.groupdict()
            return AuthEvent(
                outcome=rule.outcome,
                user=match["user"],
                ip=match["ip"],
                method=groups.get("method"),
                invalid_user=rule.outcome is AuthOutcome.INVALID_USER or bool(groups.get("invalid")),
                count=count,
            )
    return None


def _parse_access(text: str, number: int, now: datetime) -> LogRecord | None:
    match = _ACCESS.fullmatch(text)
    if not match:
        return None
    method = path = None
    request = match["request"].split(" ")
    if len(request) in (2, 3):
        method, path = request[0], request[1]
    agent = match["agent"].replace('\\"', '"') if match["agent"] else None
    return LogRecord(
        line=number,
        format=LogFormat.COMBINED if match["combined"] else LogFormat.COMMON,
        timestamp=_clf_time(match["time"]),
        message=match["request"],
        source_ip=match["ip"],
        status=int(match["status"]),
        method=method,
        path=path,
        user_agent=agent if agent and agent != "-" else None,
    )


@functools.lru_cache(maxsize=4096)
def _clf_time(text: str) -> datetime | None:
    # Cached: busy access logs repeat the same second on many consecutive lines.
    match = _CLF_TIME.fullmatch(text)
    if not match or match["mon"] not in _MONTHS:
        return None
    offset = timedelta(hours=int(match["oh"]), minutes=int(match["om"]))
    zone = timezone(-offset if match["sign"] == "-" else offset)
    try:
        moment = datetime(
            int(match["y"]),
            _MONTHS[match["mon"]],
            int(match["d"]),
            int(match["h"]),
            int(match["m"]),
            int(match["s"]),
            tzinfo=zone,
        )
    except ValueError:
        return None
    return moment.astimezone(UTC)


def _parse_rfc5424(text: str, number: int, now: datetime) -> LogRecord | None:
    match = _RFC5424.fullmatch(text)
    if not match:
        return None
    return _syslog_record(
        LogFormat.SYSLOG_RFC5424,
        number,
        parse_timestamp(match["time"]),
        match["pri"],
        match["app"] if match["app"] != "-" else None,
        (match["msg"] or "").removeprefix("\ufeff"),
    )


def _parse_rfc3164(text: str, number: int, now: datetime) -> LogRecord | None:
    match = _RFC3164.fullmatch(text)
    if not match:
        return None
    if match["iso"]:
        moment = parse_timestamp(match["iso"])
    elif match["mon"] in _MONTHS:
        hms = (int(match["h"]), int(match["m"]), int(match["s"]))
        moment = bsd_syslog_time(_MONTHS[match["mon"]], int(match["d"]), hms, now=now)
    else:
        return None
    return _syslog_record(LogFormat.SYSLOG_RFC3164, number, moment, match["pri"], match["tag"], match["msg"])


def _syslog_record(
    kind: LogFormat, number: int, moment: datetime | None, pri: str | None, program: str | None, msg: str
) -> LogRecord:
    auth = parse_auth(msg)
    return LogRecord(
        line=number,
        format=kind,
        timestamp=moment,
        level=_SYSLOG_SEVERITIES[int(pri) % 8] if pri else None,
        message=msg,
        source_ip=auth.ip if auth else None,
        program=program,
        auth=auth,
    )


def _parse_json(text: str, number: int, now: datetime) -> LogRecord | None:
    if not text.lstrip().startswith("{"):
        return None
    try:
        document = json.loads(text)
    except (ValueError, RecursionError):
        return None
    fields = {name: _first(document, keys) for name, keys in JSON_KEYS.items()}
    method, path = fields["method"], fields["path"]
    request = str(fields["request"]).split(" ")
    if len(request) in (2, 3):
        method, path = method or request[0], path or request[1]
    status = str(fields["status"])
    message = str(fields["message"]) if fields["message"] is not None else ""
    auth = parse_auth(message)
    ip = fields["ip"]
    return LogRecord(
        line=number,
        format=LogFormat.JSON,
        timestamp=parse_timestamp(fields["timestamp"]),
        level=normalise_level(fields["level"]),
        message=message,
        source_ip=str(ip) if ip is not None else (auth.ip if auth else None),
        status=int(status) if status.isascii() and status.isdigit() else None,
        method=str(method) if method is not None else None,
        path=str(path) if path is not None else None,
        user_agent=str(fields["user_agent"]) if fields["user_agent"] is not None else None,
        auth=auth,
    )


def _first(document: dict[str, Any], keys: tuple[str, ...]) -> Any:
    for key in keys:
        value = document.get(key)
        if value is not None and value != "":
            return value
    return None


def _parse_python(text: str, number: int, now: datetime) -> LogRecord | None:
    for pattern in _PYTHON_PATTERNS:
        match = pattern.fullmatch(text)
        if match and match["level"].lower() in _LEVELS:
            try:
                moment: datetime | None = datetime.fromisoformat(f"{match['time']}.{match['ms']}")
            except ValueError:
                moment = None
            auth = parse_auth(match["msg"])
            return LogRecord(
                line=number,
                format=LogFormat.PYTHON,
                timestamp=moment.replace(tzinfo=UTC) if moment else None,
                level=_LEVELS[match["level"].lower()],
                message=match["msg"],
                source_ip=auth.ip if auth else None,
                program=match["name"],
                auth=auth,
            )
    return None


# Order matters only for speed and for lines two formats could claim (none of these can: each
# starts differently), so the cheapest checks come first.
_PARSERS: tuple[_Parser, ...] = (_parse_json, _parse_access, _parse_rfc5424, _parse_rfc3164, _parse_python)
