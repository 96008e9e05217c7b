from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from orchestrion.tools import logs_parse
from orchestrion.tools.base import InputFile
from orchestrion.tools.logs_parse import (
    AuthOutcome,
    LogFormat,
    LogRecord,
    ParsedLog,
    bsd_syslog_time,
    normalise_level,
    parse_auth,
    parse_log,
    parse_timestamp,
)

NOW = datetime(2024, 3, 10, 12, 0, tzinfo=UTC)


def _parse(content: str, *, now: datetime = NOW, max_lines: int | None = None) -> ParsedLog:
    return parse_log(InputFile(name="x.log", content=content), now=now, max_lines=max_lines)


def _one(line: str, *, now: datetime = NOW) -> LogRecord:
    [record] = _parse(line, now=now).records
    return record


def test_combined_log_lines_give_client_request_status_agent_and_utc_time() -> None:
    record = _one(
        '203.0.113.9 - - [10/Mar/2024:09:15:02 +0100] "GET /search?q=a%20b HTTP/1.1" 200 5123 '
        '"https://example.com/" "Mozilla/5.0 (X11; Linux x86_64) \\"quoted\\""'
    )

    assert record.format is LogFormat.COMBINED
    assert record.source_ip == "203.0.113.9"
    assert (record.method, record.path, record.status) == ("GET", "/search?q=a%20b", 200)
    assert record.user_agent == 'Mozilla/5.0 (X11; Linux x86_64) "quoted"'
    assert record.timestamp == datetime(2024, 3, 10, 8, 15, 2, tzinfo=UTC)


def test_common_log_lines_and_extra_nginx_fields_are_recognised() -> None:
    common = _one('10.0.0.1 - frank [10/Oct/2023:13:55:36 -0700] "POST /login HTTP/1.0" 401 -')
    extended = _one(
        '10.0.0.2 - - [10/Oct/2023:13:55:36 +0000] "GET / HTTP/1.1" 502 157 "-" "curl/8.0" "-" 0.003'
    )

    assert common.format is LogFormat.COMMON
    assert (common.method, common.path, common.status, common.user_agent) == ("POST", "/login", 401, None)
    assert common.timestamp == datetime(2023, 10, 10, 20, 55, 36, tzinfo=UTC)
    assert extended.format is LogFormat.COMBINED
    assert (extended.status, extended.user_agent) == (502, "curl/8.0")


def test_a_malformed_request_line_keeps_the_record_without_method_or_path() -> None:
    record = _one('198.51.100.4 - - [10/Mar/2024:09:00:00 +0000] "\\x16\\x03\\x01\\x02" 400 157 "-" "-"')

    assert (record.status, record.method, record.path, record.user_agent) == (400, None, None, None)


def test_rfc3164_lines_carry_host_program_and_the_ssh_event() -> None:
    record = _one(
        "Mar  9 23:59:58 web1 sshd[4242]: Failed password for invalid user oracle from 203.0.113.9 "
        "port 52144 ssh2"
    )

    assert record.format is LogFormat.SYSLOG_RFC3164
    assert record.timestamp == datetime(2024, 3, 9, 23, 59, 58, tzinfo=UTC)
    assert record.program == "sshd"
    assert record.source_ip == "203.0.113.9"
    assert record.auth is not None
    assert (record.auth.outcome, record.auth.user, record.auth.method) == (
        AuthOutcome.FAILURE,
        "oracle",
        "password",
    )
    assert record.auth.invalid_user is True


def test_rsyslog_iso_timestamps_and_priorities_are_read() -> None:
    record = _one("<38>2024-03-10T09:00:00.250+02:00 web1 sshd[1]: Invalid user  from 2001:db8::7 port 22")

    assert record.format is LogFormat.SYSLOG_RFC3164
    assert record.timestamp == datetime(2024, 3, 10, 7, 0, 0, 250000, tzinfo=UTC)
    assert record.level == "INFO"  # 38 = auth facility, severity 6 (informational).
    assert record.auth is not None
    assert (record.auth.outcome, record.auth.user, record.auth.ip) == (
        AuthOutcome.INVALID_USER,
        "",
        "2001:db8::7",
    )


def test_rfc5424_lines_map_the_priority_to_a_level() -> None:
    error = _one('<11>1 2024-03-10T09:00:00.123Z api01 billing 311 ID47 [meta x="1"] charge failed')
    nil_time = _one("<165>1 - host app - - - \ufeffstarted")

    assert error.format is LogFormat.SYSLOG_RFC5424
    assert (error.level, error.program, error.message) == ("ERROR", "billing", "charge failed")
    assert error.timestamp == datetime(2024, 3, 10, 9, 0, 0, 123000, tzinfo=UTC)
    assert (nil_time.timestamp, nil_time.level, nil_time.message) == (None, "INFO", "started")


def test_json_lines_read_the_common_key_variants() -> None:
    records = [
        {"@timestamp": "2024-03-10T09:00:00Z", "severity": "WARN", "message": "slow", "client_ip": "1.2.3.4"},
        {
            "time": 1710061200123,
            "level": 50,
            "msg": "boom",
            "remote_addr": "5.6.7.8",
            "status": "503",
            "request": "GET /api/orders HTTP/1.1",
            "http_user_agent": "curl/8",
        },
        {"ts": "1710061200", "level": "info", "event": "Accepted password for bob from 9.9.9.9 port 1 ssh2"},
        {"message": "no time", "status": True},
    ]
    content = "\n".join(json.dumps(r) for r in records)

    warn, boom, login, bare = _parse(content).records

    assert {r.format for r in (warn, boom, login, bare)} == {LogFormat.JSON}
    assert (warn.level, warn.message, warn.source_ip) == ("WARNING", "slow", "1.2.3.4")
    assert warn.timestamp == datetime(2024, 3, 10, 9, 0, tzinfo=UTC)
    assert (boom.level, boom.status, boom.method, boom.path, boom.user_agent) == (
        "ERROR",
        503,
        "GET",
        "/api/orders",
        "curl/8",
    )
    assert boom.timestamp == datetime(2024, 3, 10, 9, 0, 0, 123000, tzinfo=UTC)
    assert login.timestamp == datetime(2024, 3, 10, 9, 0, tzinfo=UTC)
    assert login.auth is not None and login.auth.outcome is AuthOutcome.SUCCESS
    assert login.source_ip == "9.9.9.9"
    assert (bare.timestamp, bare.status) == (None, None)


def test_json_that_is_not_an_object_or_not_valid_is_unparsed() -> None:
    log = _parse('[1, 2, 3]\n{"broken": \n{"ok": 1}\n' + "[" * 5000)

    assert (len(log.records), log.unparsed) == (1, 3)


def test_python_logging_default_and_dashed_formats_are_read() -> None:
    default = _one("2024-03-10 09:00:01,250 CRITICAL payments.worker: queue is full (1000 items)")
    dashed = _one("2024-03-10 09:00:02,000 - app.db - WARN - pool exhausted")

    assert default.format is LogFormat.PYTHON
    assert (default.level, default.program, default.message) == (
        "CRITICAL",
        "payments.worker",
        "queue is full (1000 items)",
    )
    assert default.timestamp == datetime(2024, 3, 10, 9, 0, 1, 250000, tzinfo=UTC)
    assert (dashed.level, dashed.program) == ("WARNING", "app.db")


def test_python_lines_with_an_unknown_level_or_impossible_date_are_handled() -> None:
    log = _parse("2024-03-10 09:00:01,250 LOUD x: hi\n2024-02-30 09:00:01,250 ERROR x: hi")

    [record] = log.records
    assert (log.unparsed, record.level, record.timestamp) == (1, "ERROR", None)


def test_repeated_ssh_messages_carry_their_count() -> None:
    event = parse_auth("message repeated 7 times: [ Failed password for root from 203.0.113.9 port 22 ssh2]")

    assert event is not None
    assert (event.outcome, event.user, event.count, event.invalid_user) == (
        AuthOutcome.FAILURE,
        "root",
        7,
        False,
    )


@pytest.mark.parametrize(
    ("message", "outcome", "user", "method"),
    [
        (
            "Accepted publickey for deploy from 10.0.0.5 port 50000 ssh2: ED25519 SHA256:x",
            "success",
            "deploy",
            "publickey",
        ),
        ("Failed none for invalid user admin from 10.0.0.6 port 1 ssh2", "failure", "admin", "none"),
        ("Invalid user test from 10.0.0.7", "invalid_user", "test", None),
    ],
)
def test_openssh_messages_are_recognised(message: str, outcome: str, user: str, method: str | None) -> None:
    event = parse_auth(message)

    assert event is not None
    assert (event.outcome.value, event.user, event.method) == (outcome, user, method)


def test_other_messages_are_not_auth_events() -> None:
    assert parse_auth("Connection closed by 10.0.0.5 port 50000 [preauth]") is None
    assert parse_auth("pam_unix(sshd:session): session opened for user deploy") is None


@pytest.mark.parametrize(
    ("now", "month", "day", "expected_year"),
    [
        (datetime(2024, 3, 10, tzinfo=UTC), 3, 9, 2024),
        (datetime(2024, 1, 1, 0, 30, tzinfo=UTC), 12, 31, 2023),
        (datetime(2024, 3, 10, 12, tzinfo=UTC), 3, 11, 2024),  # 22 h ahead: a clock in another zone.
        (datetime(2024, 3, 10, tzinfo=UTC), 3, 12, 2023),  # Two days ahead: last year.
        (datetime(2025, 3, 1, tzinfo=UTC), 2, 29, 2024),  # The latest leap year.
    ],
)
def test_rfc3164_years_are_inferred_from_now(now: datetime, month: int, day: int, expected_year: int) -> None:
    moment = bsd_syslog_time(month, day, (10, 0, 0), now=now)

    assert moment == datetime(expected_year, month, day, 10, tzinfo=UTC)


def test_an_impossible_rfc3164_date_has_no_timestamp() -> None:
    assert bsd_syslog_time(2, 30, (0, 0, 0), now=NOW) is None
    record = _one("Feb 30 10:00:00 host app: hello")
    assert (record.timestamp, record.message) == (None, "hello")


def test_the_injected_now_decides_the_year_of_a_syslog_line() -> None:
    line = "Dec 31 23:59:59 host app: tick"

    assert _one(line, now=datetime(2025, 1, 2, tzinfo=UTC)).timestamp == datetime(
        2024, 12, 31, 23, 59, 59, tzinfo=UTC
    )
    assert _one(
        line, now=datetime(2025, 12, 31, 23, 59, 59, tzinfo=UTC) + timedelta(seconds=1)
    ).timestamp == (datetime(2025, 12, 31, 23, 59, 59, tzinfo=UTC))


def test_files_get_the_majority_format_and_count_unparsed_lines() -> None:
    content = "\n".join(
        [
            "Mar 10 09:00:00 web1 sshd[1]: Accepted publickey for a from 10.0.0.1 port 1 ssh2",
            "",
            "Mar 10 09:00:01 web1 sshd[1]: Accepted publickey for b from 10.0.0.2 port 2 ssh2",
            "=== log rotated ===",
            '{"msg": "json in a syslog file"}',
            "   ",
            "\x00\x01 binary junk",
            "",
        ]
    )

    log = _parse(content)

    assert log.format is LogFormat.SYSLOG_RFC3164
    assert dict(log.formats) == {"syslog_rfc3164": 2, "json_lines": 1}
    assert (log.lines, len(log.records), log.unparsed, log.last_line) == (5, 3, 2, 7)
    assert log.unparsed_sample == ((4, "=== log rotated ==="), (7, "\x00\x01 binary junk"))
    assert log.truncated is False


def test_files_with_nothing_recognisable_are_unknown() -> None:
    log = _parse("hello\nworld\n")

    assert (log.format, log.lines, log.unparsed, log.records) == (LogFormat.UNKNOWN, 2, 2, ())


def test_unparsed_samples_are_capped_and_cut() -> None:
    log = _parse("\n".join(["x" * 500] * 9))

    assert log.unparsed == 9
    assert len(log.unparsed_sample) == 5
    assert {len(text) for _, text in log.unparsed_sample} == {200}


def test_reading_stops_at_the_line_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    lines = [f"2024-03-10 09:00:0{i},000 INFO app: line {i}" for i in range(6)]
    monkeypatch.setattr(logs_parse, "MAX_LINES", 4)

    capped = _parse("\n".join(lines))
    exact = _parse("\n".join(lines[:4]) + "\n")
    explicit = _parse("\n".join(lines), max_lines=2)

    assert (capped.lines, capped.truncated, capped.last_line) == (4, True, 4)
    assert [r.message for r in capped.records] == ["line 0", "line 1", "line 2", "line 3"]
    assert (exact.lines, exact.truncated) == (4, False)
    assert (explicit.lines, explicit.truncated) == (2, True)


def test_overlong_lines_are_cut_before_parsing() -> None:
    log = _parse('{"msg": "' + "a" * (logs_parse.MAX_LINE_CHARS + 10) + '"}')

    assert (len(log.records), log.unparsed) == (0, 1)


def test_windows_line_endings_are_tolerated() -> None:
    log = _parse("2024-03-10 09:00:00,000 INFO app: a\r\n2024-03-10 09:00:01,000 INFO app: b\r\n")

    assert [r.message for r in log.records] == ["a", "b"]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2024-03-10T10:00:00+01:00", datetime(2024, 3, 10, 9, tzinfo=UTC)),
        ("2024-03-10T09:00:00", datetime(2024, 3, 10, 9, tzinfo=UTC)),
        ("2024-03-10 09:00:00.5Z", datetime(2024, 3, 10, 9, 0, 0, 500000, tzinfo=UTC)),
        (1710061200, datetime(2024, 3, 10, 9, tzinfo=UTC)),
        (1710061200.5, datetime(2024, 3, 10, 9, 0, 0, 500000, tzinfo=UTC)),
        (1710061200000, datetime(2024, 3, 10, 9, tzinfo=UTC)),
        ("yesterday", None),
        (True, None),
        (10**20, None),
        (None, None),
    ],
)
def test_timestamps_are_aware_utc(value: object, expected: datetime | None) -> None:
    assert parse_timestamp(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("warn", "WARNING"),
        ("Err", "ERROR"),
        ("fatal", "CRITICAL"),
        ("notice", "INFO"),
        ("trace", "DEBUG"),
        (60, "CRITICAL"),
        (30, "INFO"),
        (35, None),
        ("verbose", None),
        (True, None),
        (None, None),
    ],
)
def test_levels_are_normalised(value: object, expected: str | None) -> None:
    assert normalise_level(value) == expected


@pytest.mark.parametrize(
    "stamp", ["31/Feb/2024:09:00:00 +0000", "10/Foo/2024:09:00:00 +0000", "2024-03-10T09:00:00Z"]
)
def test_access_lines_with_an_unreadable_time_keep_the_request(stamp: str) -> None:
    record = _one(f'10.0.0.1 - - [{stamp}] "GET / HTTP/1.1" 200 1')

    assert (record.timestamp, record.path) == (None, "/")


def test_syslog_lines_with_an_unknown_month_are_unparsed() -> None:
    log = _parse("Foo 10 09:00:00 host app: hello")

    assert (log.records, log.unparsed) == ((), 1)
