"""Log detections as evidence: observations and grounded findings for brute force, error bursts, timelines.

The functions here are the blocking bodies of the tools in `logs`: each parses the files, runs the
detectors of `logs_detect` and turns what they found into observations, and into findings that cite
those observations by index. Quoted log text (paths, messages, usernames) goes through `quote`, which
redacts secrets: logs often carry tokens in query strings and passwords typed at username prompts.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from orchestrion.domain.findings import Severity
from orchestrion.tools import logs_parse
from orchestrion.tools.base import InputFile, Observation, ProposedFinding, Tool, ToolOutput
from orchestrion.tools.logs_detect import (
    DEFAULT_FACTOR,
    DEFAULT_MIN_EVENTS,
    DEFAULT_THRESHOLD,
    DEFAULT_WINDOW_SECONDS,
    WEB_RULES,
    AuthAttack,
    Compromise,
    ErrorBurst,
    WebEpisode,
    find_auth_attacks,
    find_error_bursts,
    find_web_episodes,
    iso,
    quote,
    span,
)
from orchestrion.tools.logs_parse import ParsedLog, parse_log

_TOP = 10
_MAX_SUCCESSES = 5
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_COMPROMISE_RECOMMENDATION = (
    "Treat the account and host as compromised: disable the account, kill its sessions, rotate its "
    "credentials and keys, review what it did after the login, and block the source address."
)
_BRUTE_FORCE_RECOMMENDATION = (
    "Block or rate-limit the source (fail2ban, firewall, WAF), disable password authentication where "
    "keys or SSO are possible, and check that no attempt from it succeeded."
)


def report_brute_force(
    files: Sequence[InputFile], *, now: datetime, window_seconds: int, threshold: int, distinct_users: int
) -> ToolOutput:
    """Failed-login bursts, username enumeration and logins after failures, per file and address.

    Args:
        files: The logs.
        now: The current time (dates RFC 3164 lines).
        window_seconds: Length of the sliding window counting failures.
        threshold: Failures within a window that make a burst, and before a success that make a
            likely compromise.
        distinct_users: Usernames tried from one address that make enumeration.
    """
    logs = [parse_log(file, now=now) for file in files]
    reported = [
        attack
        for log in logs
        for attack in find_auth_attacks(log, window_seconds=window_seconds, threshold=threshold)
        if _is_burst(attack, threshold) or len(attack.users) >= distinct_users or attack.compromises
    ]
    # Compromises first, then the heaviest attacks: the observation cap then drops the least important,
    # and never evidence that a stated finding cites.
    reported.sort(key=lambda a: (not a.compromises, -a.failures))
    observations: list[Observation] = []
    findings: list[ProposedFinding] = []
    omitted = 0
    for attack in reported:
        successes = attack.compromises[:_MAX_SUCCESSES]
        if len(observations) + 1 + len(successes) > Tool.max_observations:
            omitted += 1
            continue
        observations.append(_attempts_observation(attack, window_seconds))
        attempts = len(observations) - 1
        what = "SSH login" if attack.channel == "ssh" else "HTTP login"
        where = span(attack.file, attack.first_line, attack.last_line)
        if attack.peak and _is_burst(attack, threshold):
            findings.append(
                ProposedFinding(
                    title=f"Brute-force {what} attempts from {attack.ip} in {attack.file}",
                    severity=Severity.MEDIUM,
                    description=(
                        f"{attack.peak.count} failed {what} attempts from {attack.ip} within "
                        f"{window_seconds}s ({attack.failures} in all, {where})."
                    ),
                    recommendation=_BRUTE_FORCE_RECOMMENDATION,
                    observation_indexes=(attempts,),
                )
            )
        if len(attack.users) >= distinct_users:
            findings.append(
                ProposedFinding(
                    title=f"Username enumeration from {attack.ip} in {attack.file}",
                    severity=Severity.MEDIUM,
                    description=(
                        f"{len(attack.users)} distinct usernames tried from {attack.ip} "
                        f"({attack.invalid_users} of them unknown to the host), e.g. "
                        f"{', '.join(_users_sample(attack, 5))}."
                    ),
                    recommendation=_BRUTE_FORCE_RECOMMENDATION,
                    observation_indexes=(attempts,),
                )
            )
        if successes:
            observations.extend(_success_observation(attack, success) for success in successes)
            first = successes[0]
            users = sorted({quote(s.user, 40) for s in attack.compromises})
            findings.append(
                ProposedFinding(
                    title=(
                        f"Likely compromise: {what} for {quote(first.user, 40)} from {attack.ip} "
                        f"succeeded after {first.failures_before} failures"
                    ),
                    severity=Severity.HIGH,
                    description=(
                        f"{attack.ip} failed {first.failures_before} times ({where}), then logged in "
                        f"{len(attack.compromises)} time(s) as {', '.join(users)}, first at "
                        f"{span(attack.file, first.line, first.line)}."
                    ),
                    recommendation=_COMPROMISE_RECOMMENDATION,
                    observation_indexes=tuple(range(attempts, len(observations))),
                )
            )
    data = _run_data(logs, window_seconds=window_seconds, threshold=threshold, distinct_users=distinct_users)
    data["omitted_addresses"] = omitted
    return ToolOutput(observations=tuple(observations), findings=tuple(findings), data=data)


def _is_burst(attack: AuthAttack, threshold: int) -> bool:
    return attack.peak is not None and attack.peak.count >= threshold


def _success_observation(attack: AuthAttack, success: Compromise) -> Observation:
    where = span(attack.file, success.line, success.line)
    return Observation(
        summary=(
            f"{where}: accepted {success.method} login for {quote(success.user, 40)} from {attack.ip} "
            f"after {success.failures_before} failed attempts"
        ),
        data={
            "file": attack.file,
            "line": success.line,
            "time": iso(success.time),
            "ip": attack.ip,
            "user": quote(success.user, 40),
            "method": success.method,
            "failures_before": success.failures_before,
        },
        location=where,
    )


def _attempts_observation(attack: AuthAttack, window_seconds: int) -> Observation:
    where = span(attack.file, attack.first_line, attack.last_line)
    what = "SSH login" if attack.channel == "ssh" else "HTTP login"
    summary = f"{where}: {attack.failures} failed {what} attempts from {attack.ip}"
    if attack.first_seen:
        summary += f" between {iso(attack.first_seen)} and {iso(attack.last_seen)}"
    peak: dict[str, Any] | None = None
    if attack.peak:
        summary += f"; peak {attack.peak.count} within {window_seconds}s"
        peak = {
            "count": attack.peak.count,
            "start": iso(attack.peak.start),
            "end": iso(attack.peak.end),
            "first_line": attack.peak.first_line,
            "last_line": attack.peak.last_line,
            "window_seconds": window_seconds,
        }
    if attack.users:
        summary += f"; {len(attack.users)} usernames: {', '.join(_users_sample(attack, 5))}"
    return Observation(
        summary=summary,
        data={
            "file": attack.file,
            "ip": attack.ip,
            "channel": attack.channel,
            "failures": attack.failures,
            "first_line": attack.first_line,
            "last_line": attack.last_line,
            "first_seen": iso(attack.first_seen),
            "last_seen": iso(attack.last_seen),
            "peak_window": peak,
            "distinct_users": len(attack.users),
            "invalid_users": attack.invalid_users,
            "users_sample": _users_sample(attack, _TOP),
            "successes_after_failures": len(attack.compromises),
        },
        location=where,
    )


def _users_sample(attack: AuthAttack, count: int) -> list[str]:
    return [quote(user, 40) for user in list(attack.users)[:count]]


def report_error_bursts(
    files: Sequence[InputFile], *, now: datetime, factor: float, min_events: int
) -> ToolOutput:
    """Bursts of HTTP 5xx responses and ERROR/CRITICAL records, per file (see `find_error_bursts`)."""
    logs = [parse_log(file, now=now) for file in files]
    bursts = [b for log in logs for b in find_error_bursts(log, factor=factor, min_events=min_events)]
    # Over the observation cap the largest bursts stay, reported in file and time order.
    kept = sorted(bursts, key=lambda b: -b.count)[: Tool.max_observations]
    kept.sort(key=lambda b: (b.file, b.start))
    observations: list[Observation] = []
    findings: list[ProposedFinding] = []
    for burst in kept:
        observations.append(_burst_observation(burst))
        kinds = ", ".join(f"{n}x {kind}" for kind, n in burst.kinds.most_common(3))
        top = burst.top_paths or burst.top_messages
        findings.append(
            ProposedFinding(
                title=f"Error burst in {burst.file} at {iso(burst.start)}: {burst.count} errors",
                severity=Severity.HIGH if "CRITICAL" in burst.kinds else Severity.MEDIUM,
                description=(
                    f"{burst.count} errors ({kinds}) in {burst.minutes} minute(s) from {iso(burst.start)}, "
                    f"peaking at {burst.peak_per_minute}/min against a median of {burst.baseline:g}/min; "
                    f"most frequent: {top[0][0] if top else 'n/a'}."
                ),
                recommendation=(
                    "Correlate the burst with deployments, dependency outages and traffic spikes at that "
                    "time, and read the first errors of the burst for the root cause."
                ),
                observation_indexes=(len(observations) - 1,),
            )
        )
    data = _run_data(logs, factor=factor, min_events=min_events)
    data["omitted_bursts"] = len(bursts) - len(kept)
    return ToolOutput(observations=tuple(observations), findings=tuple(findings), data=data)


def _burst_observation(burst: ErrorBurst) -> Observation:
    where = span(burst.file, burst.first_line, burst.last_line)
    top = burst.top_paths or burst.top_messages
    return Observation(
        summary=(
            f"{where}: {burst.count} errors from {iso(burst.start)} to {iso(burst.end)} "
            f"(peak {burst.peak_per_minute}/min, median {burst.baseline:g}/min)"
            + (f"; top: {top[0][0]} ({top[0][1]})" if top else "")
        ),
        data={
            "file": burst.file,
            "start": iso(burst.start),
            "end": iso(burst.end),
            "first_line": burst.first_line,
            "last_line": burst.last_line,
            "count": burst.count,
            "peak_per_minute": burst.peak_per_minute,
            "baseline_per_minute": burst.baseline,
            "kinds": dict(burst.kinds.most_common()),
            "top_paths": [list(p) for p in burst.top_paths],
            "top_messages": [list(m) for m in burst.top_messages],
        },
        location=where,
    )


def build_timeline(files: Sequence[InputFile], *, now: datetime, limit: int) -> ToolOutput:
    """Suspicious events of every file in time order, at most `limit`, the most severe kept first.

    Failed logins become one entry per address (a brute-force entry when they burst), logins after
    failures and error bursts one entry each, and attack requests one entry per address, rule and
    episode; the detectors run with their default arguments. Findings are stated for web attacks
    only, per source address, because the other tools state the rest.
    """
    logs = [parse_log(file, now=now) for file in files]
    entries: list[_Entry] = []
    for log in logs:
        for attack in find_auth_attacks(
            log, window_seconds=DEFAULT_WINDOW_SECONDS, threshold=DEFAULT_THRESHOLD
        ):
            bursting = _is_burst(attack, DEFAULT_THRESHOLD)
            entries.append(
                _entry(
                    _attempts_observation(attack, DEFAULT_WINDOW_SECONDS),
                    time=attack.first_seen,
                    kind="brute_force" if bursting else "auth_failures",
                    severity=Severity.MEDIUM if bursting else Severity.LOW,
                    ip=attack.ip,
                )
            )
            for success in attack.compromises:
                where = span(log.name, success.line, success.line)
                summary = f"{where}: accepted login for {quote(success.user, 40)} from {attack.ip} "
                summary += f"after {success.failures_before} failed attempts"
                entries.append(
                    _entry(
                        Observation(
                            summary=summary, data={"file": log.name, "line": success.line}, location=where
                        ),
                        time=success.time,
                        kind="login_after_failures",
                        severity=Severity.HIGH,
                        ip=attack.ip,
                    )
                )
        for burst in find_error_bursts(log, factor=DEFAULT_FACTOR, min_events=DEFAULT_MIN_EVENTS):
            severity = Severity.HIGH if "CRITICAL" in burst.kinds else Severity.MEDIUM
            entries.append(
                _entry(_burst_observation(burst), time=burst.start, kind="error_burst", severity=severity)
            )
        entries.extend(_web_entry(episode) for episode in find_web_episodes(log))
    # Over the cap, the most severe entries win; the survivors are then put back in time order.
    kept = sorted(entries, key=lambda e: (e.severity.rank, _time_key(e)))[:limit]
    kept.sort(key=_time_key)
    observations = tuple(e.observation for e in kept)
    data = _run_data(logs, limit=limit)
    data.update(
        entries=len(entries),
        kept=len(kept),
        dropped=len(entries) - len(kept),
        by_kind=dict(Counter(e.kind for e in entries)),
    )
    return ToolOutput(observations=observations, findings=tuple(_web_findings(observations)), data=data)


@dataclass(frozen=True, kw_only=True)
class _Entry:
    time: datetime | None
    severity: Severity
    kind: str
    observation: Observation


def _entry(
    base: Observation, *, time: datetime | None, kind: str, severity: Severity, ip: str | None = None
) -> _Entry:
    stamp = iso(time) or "(no time)"
    observation = Observation(
        summary=f"{stamp} [{severity}] {base.summary}",
        data={"time": iso(time), "kind": kind, "severity": severity.value, "ip": ip, **base.data},
        location=base.location,
    )
    return _Entry(time=time, severity=severity, kind=kind, observation=observation)


def _time_key(entry: _Entry) -> tuple[bool, datetime, str, int, int]:
    # Entries without a time go last; ties go by file and line, then the more severe first.
    data = entry.observation.data
    return (
        entry.time is None,
        entry.time or _EPOCH,
        str(data.get("file")),
        int(data.get("first_line") or data.get("line") or 0),
        entry.severity.rank,
    )


def _web_entry(episode: WebEpisode) -> _Entry:
    where = span(episode.file, episode.first_line, episode.last_line)
    served = f", {episode.served} answered 2xx" if episode.served else ""
    sample = ", ".join(episode.sample)
    return _entry(
        Observation(
            summary=(
                f"{where}: {episode.rule.label} from {episode.ip}, {episode.count} requests{served}: {sample}"
            ),
            data={
                "file": episode.file,
                "rule": episode.rule.id,
                "first_line": episode.first_line,
                "last_line": episode.last_line,
                "end": iso(episode.end),
                "count": episode.count,
                "served": episode.served,
                "statuses": dict(episode.statuses.most_common()),
                "sample": list(episode.sample),
            },
            location=where,
        ),
        time=episode.start,
        kind=episode.rule.id,
        severity=episode.severity,
        ip=episode.ip,
    )


def _web_findings(entries: Sequence[Observation]) -> list[ProposedFinding]:
    by_ip: defaultdict[str, list[int]] = defaultdict(list)
    for index, entry in enumerate(entries):
        if "rule" in entry.data:
            by_ip[str(entry.data["ip"])].append(index)
    findings: list[ProposedFinding] = []
    rules = {rule.id: rule for rule in WEB_RULES}
    for ip, indexes in by_ip.items():
        cited = [entries[i] for i in indexes]
        severity = min((Severity(e.data["severity"]) for e in cited), key=lambda s: s.rank)
        labels = sorted({rules[e.data["rule"]].label for e in cited})
        requests = sum(int(e.data["count"]) for e in cited)
        served = sum(int(e.data["served"]) for e in cited if rules[e.data["rule"]].served_severity)
        description = f"{requests} suspicious requests from {ip} ({', '.join(labels)})."
        if served:
            description += (
                f" {served} requests for sensitive files were answered with 2xx: assume them leaked."
            )
        findings.append(
            ProposedFinding(
                title=f"Web attack traffic from {ip}: {', '.join(labels)}",
                severity=severity,
                description=description,
                recommendation=(
                    "Block the source, confirm no sensitive file is reachable over HTTP (.env, .git, system "
                    "files), check the application for the injection and traversal it was probed with, and "
                    "rotate any secret that was served."
                ),
                observation_indexes=tuple(indexes[:_TOP]),
            )
        )
    return findings


def _run_data(logs: Sequence[ParsedLog], **args: Any) -> dict[str, Any]:
    truncated = [log.name for log in logs if log.truncated]
    return {
        "files": len(logs),
        "args": args,
        "truncated_files": truncated,
        "max_lines": logs_parse.MAX_LINES,
    }
