"""Verdicts on the ASVS requirements of `asvs_checks.REQUIREMENTS`, from gathered `WebEvidence`.

`evaluate` runs them all; the HTTP-level ones (cookies, headers, CORS) are here and the transport ones
(V9) in `asvs_transport`. Each returns a `Verdict` naming the facts it used (``sources``) so that the
tool can cite them. Severities of failures are set per what was seen (a reflected CORS origin with
credentials is worse than a ``*``).
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlsplit

from orchestrion.domain.findings import Severity
from orchestrion.tools.asvs_checks import (
    HSTS_MIN_AGE,
    VERSION_HEADERS,
    Cookie,
    Status,
    Verdict,
    WebEvidence,
    csp_policies,
    has_body,
    is_html,
    make_verdict,
    parse_cookies,
    referrer_policy,
    session_like,
    unsafe_referrer,
    version_disclosed,
)
from orchestrion.tools.asvs_transport import (
    check_certificate,
    check_ciphers,
    check_tls_everywhere,
    check_versions,
)
from orchestrion.tools.netclient import FetchResult

Check = Callable[[WebEvidence], Verdict]


def evaluate(evidence: WebEvidence) -> list[Verdict]:
    """One verdict per requirement, in the table's order."""
    return [check(evidence) for check in _CHECKS.values()]


def _responses(evidence: WebEvidence) -> tuple[str, ...]:
    return tuple(f"response:{i}" for i in range(len(evidence.responses)))


def _cookie_verdict(
    evidence: WebEvidence, rule: str, attribute: str, failing: Callable[[Cookie], bool]
) -> Verdict:
    cookies = parse_cookies(evidence.responses)
    if not cookies:
        return make_verdict(
            rule,
            Status.NOT_APPLICABLE,
            "no cookies were set by the fetched responses",
            sources=_responses(evidence),
        )
    bad = [cookie for cookie in cookies if failing(cookie)]
    names = sorted({cookie.name for cookie in cookies})
    if not bad:
        return make_verdict(
            rule,
            Status.PASS,
            f"every cookie has {attribute}: {', '.join(names)}",
            sources=tuple(sorted({f"response:{c.response}" for c in cookies})),
        )
    bad_names = sorted({cookie.name for cookie in bad})
    session = [name for name in bad_names if session_like(name)]
    return make_verdict(
        rule,
        Status.FAIL,
        f"cookies without {attribute}: {', '.join(bad_names)}"
        + (f" (session-like: {', '.join(session)})" if session else ""),
        severity=Severity.MEDIUM if session else Severity.LOW,
        sources=tuple(sorted({f"response:{c.response}" for c in bad})),
        cookies=bad_names,
    )


def check_cookie_secure(evidence: WebEvidence) -> Verdict:
    """V3.4.1."""
    return _cookie_verdict(evidence, "V3.4.1", "Secure", lambda cookie: not cookie.secure)


def check_cookie_httponly(evidence: WebEvidence) -> Verdict:
    """V3.4.2."""
    return _cookie_verdict(evidence, "V3.4.2", "HttpOnly", lambda cookie: not cookie.http_only)


def check_cookie_samesite(evidence: WebEvidence) -> Verdict:
    """V3.4.3."""
    return _cookie_verdict(
        evidence,
        "V3.4.3",
        "SameSite=Lax or Strict",
        lambda cookie: (cookie.same_site or "").lower() not in ("lax", "strict"),
    )


def _per_response(
    evidence: WebEvidence,
    rule: str,
    problem: Callable[[FetchResult], str | None],
    *,
    severity: Severity,
    applies: Callable[[FetchResult], bool] = lambda response: True,
    passed: str,
    nothing: str = "no response was fetched",
) -> Verdict:
    """Fail when any applicable response has a problem; not applicable when none applies."""
    checked = [(i, response) for i, response in enumerate(evidence.responses) if applies(response)]
    if not checked:
        status = Status.NOT_APPLICABLE if evidence.responses else Status.NOT_TESTED
        return make_verdict(rule, status, nothing, sources=_responses(evidence))
    failures = [(i, response.url, text) for i, response in checked if (text := problem(response)) is not None]
    if failures:
        shown = "; ".join(f"{url}: {text}" for _, url, text in failures[:5])
        return make_verdict(
            rule,
            Status.FAIL,
            shown,
            severity=severity,
            sources=tuple(f"response:{i}" for i, _, _ in failures),
            failures=[{"url": url, "problem": text} for _, url, text in failures],
        )
    return make_verdict(rule, Status.PASS, passed, sources=tuple(f"response:{i}" for i, _ in checked))


def check_version_disclosure(evidence: WebEvidence) -> Verdict:
    """V14.3.3."""

    def problem(response: FetchResult) -> str | None:
        shown = [
            f"{name}: {value}"
            for name in VERSION_HEADERS
            for value in response.header_values(name)
            if version_disclosed(value)
        ]
        return ", ".join(shown) if shown else None

    return _per_response(
        evidence, "V14.3.3", problem, severity=Severity.LOW, passed="no version numbers in headers"
    )


def check_content_type(evidence: WebEvidence) -> Verdict:
    """V14.4.1."""

    def problem(response: FetchResult) -> str | None:
        value = response.header("content-type")
        if value is None:
            return "no Content-Type"
        media = value.split(";", 1)[0].strip().lower()
        textual = media.startswith("text/") or media.endswith("+xml") or media == "application/xml"
        if textual and "charset=" not in value.lower():
            return f"Content-Type {value!r} names no charset"
        return None

    return _per_response(
        evidence,
        "V14.4.1",
        problem,
        severity=Severity.LOW,
        applies=has_body,
        passed="every response names its type (and charset for text)",
        nothing="no fetched response has a body",
    )


def check_csp(evidence: WebEvidence) -> Verdict:
    """V14.4.3."""

    def problem(response: FetchResult) -> str | None:
        policies = csp_policies(response)
        if not policies:
            extra = (
                " (only Content-Security-Policy-Report-Only)"
                if response.header("content-security-policy-report-only")
                else ""
            )
            return f"no Content-Security-Policy{extra}"
        weaknesses = []
        for policy in policies:
            sources = policy.get("script-src", policy.get("default-src"))
            if sources is None:
                weaknesses.append("no script-src or default-src")
                continue
            nonce = any(s.startswith(("'nonce-", "'sha256-", "'sha384-", "'sha512-")) for s in sources)
            bad = [s for s in sources if s in ("*", "https:", "http:", "data:")]
            if "'unsafe-inline'" in sources and not nonce:
                bad.append("'unsafe-inline'")
            if bad:
                weaknesses.append(f"scripts allowed from {' '.join(bad)}")
            else:
                return None
        return "; ".join(weaknesses)

    return _per_response(
        evidence,
        "V14.4.3",
        problem,
        severity=Severity.MEDIUM,
        applies=is_html,
        passed="every HTML response has a Content-Security-Policy restricting scripts",
        nothing="no HTML response was fetched",
    )


def check_nosniff(evidence: WebEvidence) -> Verdict:
    """V14.4.4."""

    def problem(response: FetchResult) -> str | None:
        value = response.header("x-content-type-options")
        if value is None:
            return "no X-Content-Type-Options"
        return None if value.strip().lower() == "nosniff" else f"X-Content-Type-Options is {value!r}"

    return _per_response(
        evidence, "V14.4.4", problem, severity=Severity.LOW, passed="nosniff on every response"
    )


def check_hsts(evidence: WebEvidence) -> Verdict:
    """V14.4.5."""

    def problem(response: FetchResult) -> str | None:
        value = response.header("strict-transport-security")
        if value is None:
            return "no Strict-Transport-Security"
        directives = {
            part.split("=", 1)[0].strip().lower(): part.partition("=")[2].strip().strip('"')
            for part in value.split(";")
        }
        issues = []
        age = directives.get("max-age", "")
        if not age.isdigit() or int(age) < HSTS_MIN_AGE:
            issues.append(f"max-age {age or 'missing'} is below {HSTS_MIN_AGE}")
        if "includesubdomains" not in directives:
            issues.append("no includeSubDomains")
        return f"Strict-Transport-Security {value!r}: {', '.join(issues)}" if issues else None

    return _per_response(
        evidence,
        "V14.4.5",
        problem,
        severity=Severity.MEDIUM,
        applies=lambda response: urlsplit(response.url).scheme == "https",
        passed=f"HSTS with max-age >= {HSTS_MIN_AGE} and includeSubDomains on every https response",
        nothing="no https response was fetched (see V9.1.1)",
    )


def check_referrer(evidence: WebEvidence) -> Verdict:
    """V14.4.6."""

    def problem(response: FetchResult) -> str | None:
        value = response.header("referrer-policy")
        if value is None:
            return "no Referrer-Policy"
        effective = referrer_policy(value)
        return (
            f"Referrer-Policy {value!r} sends full URLs cross-origin" if unsafe_referrer(effective) else None
        )

    return _per_response(
        evidence,
        "V14.4.6",
        problem,
        severity=Severity.LOW,
        passed="a suitable Referrer-Policy on every response",
    )


def check_framing(evidence: WebEvidence) -> Verdict:
    """V14.4.7."""

    def problem(response: FetchResult) -> str | None:
        ancestors = [
            policy["frame-ancestors"] for policy in csp_policies(response) if "frame-ancestors" in policy
        ]
        if ancestors:
            # Every enforced policy applies, so one strict frame-ancestors is enough.
            loose = [[s for s in sources if s in ("*", "https:", "http:")] for sources in ancestors]
            if not all(loose):
                return None
            return f"frame-ancestors allows {' '.join(loose[0])}"
        xfo = (response.header("x-frame-options") or "").strip()
        if xfo.upper() in ("DENY", "SAMEORIGIN"):
            return None
        return (
            f"X-Frame-Options is {xfo!r} and there is no frame-ancestors"
            if xfo
            else "no frame-ancestors and no X-Frame-Options"
        )

    return _per_response(
        evidence,
        "V14.4.7",
        problem,
        severity=Severity.MEDIUM,
        applies=is_html,
        passed="framing restricted on every HTML response",
        nothing="no HTML response was fetched",
    )


def check_cors(evidence: WebEvidence) -> Verdict:
    """V14.5.3."""
    rule = "V14.5.3"
    probes = [(i, probe) for i, probe in enumerate(evidence.cors) if probe.error is None]
    if not probes:
        return make_verdict(
            rule,
            Status.NOT_TESTED,
            "the CORS probes got no answer",
            sources=tuple(f"cors:{i}" for i in range(len(evidence.cors))),
        )
    problems: list[tuple[int, str, Severity]] = []
    for index, probe in probes:
        allowed = (probe.allow_origin or "").strip()
        if allowed and allowed == probe.origin:
            severity = Severity.HIGH if probe.allow_credentials else Severity.MEDIUM
            what = (
                "the null origin is allowed"
                if probe.origin == "null"
                else f"the origin {probe.origin} is reflected"
            )
            problems.append(
                (index, what + (" with credentials" if probe.allow_credentials else ""), severity)
            )
        elif allowed == "*":
            problems.append((index, "Access-Control-Allow-Origin is '*'", Severity.LOW))
    if problems:
        worst = min((severity for _, _, severity in problems), key=lambda s: s.rank)
        return make_verdict(
            rule,
            Status.FAIL,
            "; ".join(dict.fromkeys(text for _, text, _ in problems)),
            severity=worst,
            sources=tuple(f"cors:{i}" for i, _, _ in problems),
        )
    return make_verdict(
        rule,
        Status.PASS,
        "neither a foreign origin nor the null origin is allowed",
        sources=tuple(f"cors:{i}" for i, _ in probes),
    )


_CHECKS: dict[str, Check] = {
    "V9.1.1": check_tls_everywhere,
    "V9.1.2": check_ciphers,
    "V9.1.3": check_versions,
    "V9.2.1": check_certificate,
    "V3.4.1": check_cookie_secure,
    "V3.4.2": check_cookie_httponly,
    "V3.4.3": check_cookie_samesite,
    "V14.3.3": check_version_disclosure,
    "V14.4.1": check_content_type,
    "V14.4.3": check_csp,
    "V14.4.4": check_nosniff,
    "V14.4.5": check_hsts,
    "V14.4.6": check_referrer,
    "V14.4.7": check_framing,
    "V14.5.3": check_cors,
}
