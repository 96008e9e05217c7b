"""The rule table of the HTTP headers audit, and the checks of a response's headers against it.

`RULES` is the table every finding of `web_audit.HeadersAuditTool` comes from: an id, a severity, the
OWASP ASVS 4.0.3 requirement it applies, why it matters and what to do. What the rules check:

- ``hsts_*`` (HTTPS responses only): Strict-Transport-Security present, with a parseable max-age of at
  least six months (15,724,800 s, ASVS's own example) and ``includeSubDomains``.
- ``csp_*``: an enforced Content-Security-Policy (Report-Only does not count) that restricts scripts,
  without ``'unsafe-inline'`` (ignored by browsers when a nonce or hash is present, so not reported
  then), ``'unsafe-eval'`` or wildcard script sources (``*``, ``https:``, ``data:``...). With several
  policies every one is enforced, so a weakness counts only when every policy has it.
- ``framing_missing``: neither X-Frame-Options DENY/SAMEORIGIN nor CSP ``frame-ancestors``.
- ``xcto_missing``, ``referrer_policy_*``, ``permissions_policy_missing``.
- ``cors_*``: the request carries an ``Origin`` of a host that cannot exist (`PROBE_ORIGIN`); the
  answer must not echo it, nor allow ``*``, together with ``Access-Control-Allow-Credentials``, and
  must never allow ``null``.
- ``cookie_*`` (checked in `web_audit`): Secure on HTTPS, HttpOnly on session-like names, SameSite
  present and never ``None`` without Secure.

CSP and framing rules apply to HTML documents only (an API's JSON is not rendered).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from orchestrion.domain.findings import Severity
from orchestrion.tools.netclient import FetchResult

__all__ = ["HSTS_MIN_SECONDS", "PROBE_ORIGIN", "RULES", "HeaderRule", "check_headers", "describe_rules"]

PROBE_ORIGIN = "https://orchestrion-cors-probe.invalid"
HSTS_MIN_SECONDS = 15_724_800
_WILDCARD_SOURCES = frozenset({"*", "http:", "https:", "data:", "blob:", "filesystem:"})
_UNSAFE_REFERRERS = frozenset({"unsafe-url", "no-referrer-when-downgrade"})
_REFERRER_POLICIES = _UNSAFE_REFERRERS | {
    "no-referrer",
    "origin",
    "origin-when-cross-origin",
    "same-origin",
    "strict-origin",
    "strict-origin-when-cross-origin",
}


@dataclass(frozen=True, kw_only=True)
class HeaderRule:
    """One check of the audit: the severity, the ASVS requirement, why, and the fix."""

    id: str
    severity: Severity
    title: str
    asvs: str
    rationale: str
    recommendation: str


_HSTS_FIX = "Send `Strict-Transport-Security: max-age=31536000; includeSubDomains` on every HTTPS response."
_CSP_FIX = (
    "Send an enforced policy such as `Content-Security-Policy: default-src 'self'; script-src 'self' "
    "'nonce-<random>'; object-src 'none'; base-uri 'none'; frame-ancestors 'self'`."
)
_COOKIE_FIX = "Set session cookies as `__Host-name=value; Path=/; Secure; HttpOnly; SameSite=Lax`."

RULES: dict[str, HeaderRule] = {
    rule.id: rule
    for rule in (
        HeaderRule(
            id="hsts_missing",
            severity=Severity.MEDIUM,
            title="HTTPS response has no Strict-Transport-Security header",
            asvs="V14.4.5",
            rationale="Without HSTS, a visit typed as a bare host name or reached through an http:// link "
            "starts in clear text, which an attacker on the network can intercept and keep on HTTP "
            "(SSL stripping).",
            recommendation=_HSTS_FIX,
        ),
        HeaderRule(
            id="hsts_invalid",
            severity=Severity.MEDIUM,
            title="Strict-Transport-Security header has no valid max-age",
            asvs="V14.4.5",
            rationale="Browsers ignore an HSTS header without a valid max-age directive, so the site has "
            "no HSTS protection at all.",
            recommendation=_HSTS_FIX,
        ),
        HeaderRule(
            id="hsts_short",
            severity=Severity.LOW,
            title="HSTS max-age is shorter than six months",
            asvs="V14.4.5",
            rationale="A short max-age lets the protection lapse between visits; ASVS's example is "
            "15724800 s (six months), and HSTS preloading asks for a year. max-age=0 removes HSTS.",
            recommendation=_HSTS_FIX,
        ),
        HeaderRule(
            id="hsts_no_subdomains",
            severity=Severity.LOW,
            title="HSTS does not cover subdomains",
            asvs="V14.4.5",
            rationale="Without includeSubDomains an attacker can use a clear-text subdomain to set or "
            "read cookies scoped to the parent domain.",
            recommendation=_HSTS_FIX,
        ),
        HeaderRule(
            id="csp_missing",
            severity=Severity.MEDIUM,
            title="No enforced Content-Security-Policy",
            asvs="V14.4.3",
            rationale="A CSP limits what an injected script can do; without one any XSS runs with the "
            "page's full power. A Report-Only policy only reports.",
            recommendation=_CSP_FIX,
        ),
        HeaderRule(
            id="csp_no_script_policy",
            severity=Severity.MEDIUM,
            title="Content-Security-Policy does not restrict scripts",
            asvs="V14.4.3",
            rationale="A policy without script-src or default-src lets scripts load from anywhere, which "
            "is what XSS mitigation needs to prevent.",
            recommendation=_CSP_FIX,
        ),
        HeaderRule(
            id="csp_unsafe_inline",
            severity=Severity.MEDIUM,
            title="Content-Security-Policy allows inline scripts ('unsafe-inline')",
            asvs="V14.4.3",
            rationale="'unsafe-inline' without a nonce or hash lets injected <script> blocks and event "
            "handlers run, which removes most of the XSS protection a CSP gives.",
            recommendation="Replace 'unsafe-inline' with nonces or hashes (and 'strict-dynamic').",
        ),
        HeaderRule(
            id="csp_unsafe_eval",
            severity=Severity.LOW,
            title="Content-Security-Policy allows eval ('unsafe-eval')",
            asvs="V14.4.3",
            rationale="'unsafe-eval' lets strings become code (eval, new Function), turning DOM injection "
            "into script execution.",
            recommendation="Remove 'unsafe-eval'; refactor code (or libraries) that needs eval.",
        ),
        HeaderRule(
            id="csp_wildcard",
            severity=Severity.MEDIUM,
            title="Content-Security-Policy allows scripts from any host",
            asvs="V14.4.3",
            rationale="A wildcard script source (*, https:, data:...) lets an attacker load a script from "
            "a host they control, bypassing the policy.",
            recommendation="List the exact script origins, or use nonces with 'strict-dynamic'.",
        ),
        HeaderRule(
            id="framing_missing",
            severity=Severity.MEDIUM,
            title="Page can be framed by any site (no X-Frame-Options or CSP frame-ancestors)",
            asvs="V14.4.7",
            rationale="A page any site can frame can be overlaid and clicked through (clickjacking).",
            recommendation="Send `Content-Security-Policy: frame-ancestors 'self'` (and "
            "`X-Frame-Options: SAMEORIGIN` for old browsers).",
        ),
        HeaderRule(
            id="xcto_missing",
            severity=Severity.LOW,
            title="X-Content-Type-Options: nosniff is missing",
            asvs="V14.4.4",
            rationale="Without nosniff, browsers may guess a response's type and run an uploaded text or "
            "image file as script or HTML.",
            recommendation="Send `X-Content-Type-Options: nosniff` on every response.",
        ),
        HeaderRule(
            id="referrer_policy_missing",
            severity=Severity.LOW,
            title="No Referrer-Policy header",
            asvs="V14.4.6",
            rationale="The policy decides how much of the URL (paths, query strings with tokens) other "
            "sites receive; without it the page relies on each browser's default.",
            recommendation="Send `Referrer-Policy: strict-origin-when-cross-origin` (or no-referrer).",
        ),
        HeaderRule(
            id="referrer_policy_unsafe",
            severity=Severity.LOW,
            title="Referrer-Policy sends full URLs to other sites",
            asvs="V14.4.6",
            rationale="unsafe-url and no-referrer-when-downgrade send the full URL, query string "
            "included, to every other HTTPS site the page links to or loads from.",
            recommendation="Use `strict-origin-when-cross-origin` or `no-referrer`.",
        ),
        HeaderRule(
            id="permissions_policy_missing",
            severity=Severity.INFO,
            title="No Permissions-Policy header",
            asvs="none (not an ASVS 4.0.3 requirement; defence in depth)",
            rationale="A Permissions-Policy switches off browser features (camera, geolocation, payment) "
            "the site does not use, so injected or framed content cannot ask for them.",
            recommendation="Send e.g. `Permissions-Policy: camera=(), microphone=(), geolocation=()`.",
        ),
        HeaderRule(
            id="cors_reflected_origin_credentials",
            severity=Severity.HIGH,
            title="CORS trusts any origin, with credentials",
            asvs="V14.5.3",
            rationale="The server echoed an arbitrary Origin in Access-Control-Allow-Origin and allows "
            "credentials: any web site a user visits can read this site's authenticated responses.",
            recommendation="Match Origin against an explicit allowlist before echoing it.",
        ),
        HeaderRule(
            id="cors_any_origin_credentials",
            severity=Severity.MEDIUM,
            title="CORS allows origin * together with credentials",
            asvs="V14.5.3",
            rationale="Browsers refuse this combination, so credentialed reads fail today, but it shows "
            "the server means to share authenticated responses with everyone; the usual 'fix', echoing "
            "the Origin, makes it exploitable.",
            recommendation="Allow credentials only for an explicit allowlist of origins.",
        ),
        HeaderRule(
            id="cors_null_origin",
            severity=Severity.MEDIUM,
            title="CORS trusts the null origin",
            asvs="V14.5.3",
            rationale="Any page can send Origin: null (from a sandboxed iframe or a data: URL), so "
            "trusting null is trusting everyone.",
            recommendation="Never allow the null origin.",
        ),
        HeaderRule(
            id="cookie_session_not_secure",
            severity=Severity.MEDIUM,
            title="Session cookie without the Secure attribute",
            asvs="V3.4.1",
            rationale="A cookie without Secure is also sent over plain HTTP, where anyone on the network "
            "can read it and take over the session.",
            recommendation=_COOKIE_FIX,
        ),
        HeaderRule(
            id="cookie_not_secure",
            severity=Severity.LOW,
            title="Cookie without the Secure attribute on an HTTPS site",
            asvs="V3.4.1",
            rationale="A cookie without Secure is also sent over plain HTTP, in clear text.",
            recommendation="Add the Secure attribute to every cookie of an HTTPS site.",
        ),
        HeaderRule(
            id="cookie_not_httponly",
            severity=Severity.MEDIUM,
            title="Session cookie readable by JavaScript (no HttpOnly)",
            asvs="V3.4.2",
            rationale="Without HttpOnly any XSS can read the session token and send it away.",
            recommendation=_COOKIE_FIX,
        ),
        HeaderRule(
            id="cookie_samesite_missing",
            severity=Severity.LOW,
            title="Cookie without a SameSite attribute",
            asvs="V3.4.3",
            rationale="An explicit SameSite=Lax or Strict keeps the cookie off cross-site requests (CSRF "
            "defence in depth); browsers differ in what they assume without it.",
            recommendation="Set SameSite=Lax (or Strict) explicitly.",
        ),
        HeaderRule(
            id="cookie_samesite_none_insecure",
            severity=Severity.MEDIUM,
            title="Cookie with SameSite=None but without Secure",
            asvs="V3.4.3",
            rationale="SameSite=None sends the cookie on every cross-site request; without Secure current "
            "browsers drop the cookie and older ones send it in clear text as well.",
            recommendation="Add Secure, or use SameSite=Lax if cross-site use is not needed.",
        ),
    )
}


def check_headers(result: FetchResult, *, https: bool, html: bool) -> list[tuple[str, str]]:
    """(rule id, detail) for every header rule `result` fails.

    Args:
        result: The response to audit.
        https: Whether it came over HTTPS (HSTS rules apply).
        html: Whether it is an HTML document (CSP and framing rules apply).

    A redirect (one whose target could not be followed) is held to the rules that matter on every
    response, HSTS and CORS, and to no others: it has no content.
    """
    hits: list[tuple[str, str]] = []
    if https:
        hits += _check_hsts(result.header("strict-transport-security"))
    hits += _check_cors(result)
    if 300 <= result.status < 400:
        return hits
    policies = [
        _parse_csp(policy)
        for value in result.header_values("content-security-policy")
        for policy in value.split(",")
        if policy.strip()
    ]
    if html:
        hits += _check_csp(policies, report_only=bool(result.header("content-security-policy-report-only")))
        framing = (result.header("x-frame-options") or "").strip().lower()
        ancestors = any(
            "frame-ancestors" in p and not any(_is_wildcard(s) for s in p["frame-ancestors"])
            for p in policies
        )
        if framing not in ("deny", "sameorigin") and not ancestors:
            hits.append(("framing_missing", f"X-Frame-Options: {framing}" if framing else ""))
    if (result.header("x-content-type-options") or "").strip().lower() != "nosniff":
        hits.append(("xcto_missing", ""))
    hits += _check_referrer(result.header_values("referrer-policy"))
    if result.header("permissions-policy") is None and result.header("feature-policy") is None:
        hits.append(("permissions_policy_missing", ""))
    return hits


def _check_hsts(value: str | None) -> list[tuple[str, str]]:
    if value is None:
        return [("hsts_missing", "")]
    directives = [part.strip() for part in value.split(";")]
    max_age = next(
        (
            int(match.group(1))
            for part in directives
            if (match := re.fullmatch(r'(?i)max-age\s*=\s*"?(\d+)"?', part))
        ),
        None,
    )
    if max_age is None:
        return [("hsts_invalid", f"Strict-Transport-Security: {value[:100]}")]
    hits: list[tuple[str, str]] = []
    if max_age < HSTS_MIN_SECONDS:
        hits.append(("hsts_short", f"max-age={max_age}"))
    if not any(part.lower() == "includesubdomains" for part in directives):
        hits.append(("hsts_no_subdomains", ""))
    return hits


def _parse_csp(policy: str) -> dict[str, list[str]]:
    """Directives of one policy, names lower-cased; the first of a repeated directive wins (CSP3)."""
    directives: dict[str, list[str]] = {}
    for part in policy.split(";"):
        tokens = part.split()
        if tokens and tokens[0].lower() not in directives:
            directives[tokens[0].lower()] = [token.lower() for token in tokens[1:]]
    return directives


def _check_csp(policies: list[dict[str, list[str]]], *, report_only: bool) -> list[tuple[str, str]]:
    if not policies:
        return [("csp_missing", "only Content-Security-Policy-Report-Only is sent" if report_only else "")]
    scripts = [p.get("script-src", p.get("default-src")) for p in policies]
    if all(sources is None for sources in scripts):
        return [("csp_no_script_policy", "")]
    # Every policy is enforced: a weakness matters only if each policy that restricts scripts has it.
    restricting = [sources for sources in scripts if sources is not None]
    hits: list[tuple[str, str]] = []
    if all(_allows_inline(sources) for sources in restricting):
        hits.append(("csp_unsafe_inline", "script sources include 'unsafe-inline'"))
    if all("'unsafe-eval'" in sources for sources in restricting):
        hits.append(("csp_unsafe_eval", ""))
    wildcards = [_wildcards(sources) for sources in restricting]
    if all(wildcards):
        hits.append(("csp_wildcard", f"script sources include {', '.join(wildcards[0])}"))
    return hits


def _allows_inline(sources: list[str]) -> bool:
    # Browsers ignore 'unsafe-inline' once a nonce or hash is listed (CSP Level 2).
    hashed = any(s.startswith(("'nonce-", "'sha256-", "'sha384-", "'sha512-")) for s in sources)
    return "'unsafe-inline'" in sources and not hashed


def _wildcards(sources: list[str]) -> list[str]:
    if "'strict-dynamic'" in sources:
        return []  # CSP3 browsers ignore host and scheme sources next to 'strict-dynamic'.
    return [s for s in sources if _is_wildcard(s)]


def _is_wildcard(source: str) -> bool:
    return source in _WILDCARD_SOURCES or re.fullmatch(r"(https?://)?\*(:\*)?", source) is not None


def _check_referrer(values: list[str]) -> list[tuple[str, str]]:
    tokens = [token.strip().lower() for value in values for token in value.split(",")]
    known = [token for token in tokens if token in _REFERRER_POLICIES]
    if not known:
        return [("referrer_policy_missing", "")]
    # The last policy the browser understands is the one it applies.
    if known[-1] in _UNSAFE_REFERRERS:
        return [("referrer_policy_unsafe", f"Referrer-Policy: {known[-1]}")]
    return []


def _check_cors(result: FetchResult) -> list[tuple[str, str]]:
    allowed = (result.header("access-control-allow-origin") or "").strip()
    credentials = (result.header("access-control-allow-credentials") or "").strip().lower() == "true"
    if allowed.lower() == "null":
        return [("cors_null_origin", "Access-Control-Allow-Origin: null")]
    if not credentials:
        return []
    if allowed == PROBE_ORIGIN:
        return [("cors_reflected_origin_credentials", f"Origin {PROBE_ORIGIN} was echoed")]
    if allowed == "*":
        return [("cors_any_origin_credentials", "")]
    return []


def describe_rules() -> list[dict[str, Any]]:
    """The rule table as plain data (for documentation and the API)."""
    return [
        {"id": r.id, "severity": r.severity.value, "title": r.title, "asvs": r.asvs, "rationale": r.rationale}
        for r in RULES.values()
    ]
