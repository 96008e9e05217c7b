"""A documented subset of OWASP ASVS 4.0.3 checked from outside: what each requirement says, how it is
checked, and the verdict on what the target showed.

`REQUIREMENTS` is the table (id, requirement text quoted from ASVS 4.0.3, how it is checked here).
`evaluate` turns the facts gathered by `asvs.AsvsWebCheckTool` (`WebEvidence`: HTTP responses, one TLS
handshake, the TLS versions accepted, a plain-HTTP probe and two CORS probes) into one `Verdict` per
requirement: ``pass``, ``fail``, ``not_applicable`` (nothing to check: no cookies, no HTML, no TLS) or
``not_tested`` (the fact could not be gathered: the handshake failed, the version cannot be tested on
this machine...). Each verdict names the gathered facts it rests on (``sources``), which become the
observations its finding cites.

What an outside check cannot see is said in the "how checked" text: only the negotiated cipher suite
is seen (not the whole list), only the responses fetched are judged, and which cookies carry session
tokens is inferred from their names.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field
from typing import Any, Literal

from orchestrion.domain.findings import Severity
from orchestrion.tools.netclient import FetchResult, ProtocolSupport, TLSInfo

ASVS_VERSION = "4.0.3"
CORS_PROBE_ORIGIN = "https://asvs-cors-probe.invalid"
HSTS_MIN_AGE = 15_724_800  # The value in ASVS's own example for V14.4.5 (182 days).


class Status(enum.StrEnum):
    """A requirement's verdict."""

    PASS = "pass"
    FAIL = "fail"
    NOT_APPLICABLE = "not_applicable"
    NOT_TESTED = "not_tested"


@dataclass(frozen=True, kw_only=True)
class Requirement:
    """One ASVS requirement as this tool checks it."""

    id: str
    title: str
    text: str
    how_checked: str
    recommendation: str


REQUIREMENTS: tuple[Requirement, ...] = (
    Requirement(
        id="V9.1.1",
        title="TLS for all client connectivity",
        text=(
            "Verify that TLS is used for all client connectivity, and does not fall back to insecure or "
            "unencrypted communications."
        ),
        how_checked=(
            "The target's final URL (after redirects) is https; the plain-HTTP port (80 for an https "
            "target on 443, or the given http_port) either does not answer or redirects to https."
        ),
        recommendation="Serve only HTTPS; answer plain HTTP with a redirect to the https URL, nothing else.",
    ),
    Requirement(
        id="V9.1.2",
        title="Strong cipher suites only",
        text=(
            "Verify using up to date TLS testing tools that only strong cipher suites are enabled, with the "
            "strongest cipher suites set as preferred."
        ),
        how_checked=(
            "The suite negotiated by a default handshake (the server's preference) and those accepted with "
            "TLS 1.0/1.1 have at least 128-bit keys and no RC4, 3DES/DES, NULL, EXPORT, anonymous or MD5. "
            "Only negotiated suites are seen, not every suite the server enables."
        ),
        recommendation="Enable only AEAD suites (AES-GCM, ChaCha20-Poly1305) with forward secrecy.",
    ),
    Requirement(
        id="V9.1.3",
        title="Only recent TLS versions",
        text=(
            "Verify that only the latest recommended versions of the TLS protocol are enabled, such as TLS "
            "1.2 and TLS 1.3. The latest version of the TLS protocol should be the preferred option."
        ),
        how_checked=(
            "One handshake per version: TLS 1.0 and 1.1 must be refused and TLS 1.2 or 1.3 accepted. A "
            "version this machine's OpenSSL cannot speak is reported as not tested."
        ),
        recommendation="Disable TLS 1.0 and 1.1; offer TLS 1.3 and TLS 1.2.",
    ),
    Requirement(
        id="V9.2.1",
        title="Trusted TLS certificates",
        text=(
            "Verify that connections to and from the server use trusted TLS certificates. Where internally "
            "generated or self-signed certificates are used, the server must be configured to only trust "
            "specific internal CAs and specific self-signed certificates. All others should be rejected."
        ),
        how_checked=(
            "The certificate chain verifies against the trust store (plus the operator's CA) and the leaf "
            "certificate covers the host name. Only the server's own certificate is seen from outside."
        ),
        recommendation="Serve a certificate from a trusted CA that covers the host name; renew it in time.",
    ),
    Requirement(
        id="V3.4.1",
        title="Cookie Secure attribute",
        text="Verify that cookie-based session tokens have the 'Secure' attribute set.",
        how_checked="Every Set-Cookie of the fetched responses has Secure (session cookies not told apart).",
        recommendation="Set Secure on every cookie, session cookies first.",
    ),
    Requirement(
        id="V3.4.2",
        title="Cookie HttpOnly attribute",
        text="Verify that cookie-based session tokens have the 'HttpOnly' attribute set.",
        how_checked=(
            "Every Set-Cookie of the fetched responses has HttpOnly; a failure is medium when a failing "
            "cookie's name looks like a session token (session, sid, auth, token, jwt...), else low."
        ),
        recommendation="Set HttpOnly on session cookies (and on every cookie scripts do not need to read).",
    ),
    Requirement(
        id="V3.4.3",
        title="Cookie SameSite attribute",
        text=(
            "Verify that cookie-based session tokens utilize the 'SameSite' attribute to limit exposure to "
            "cross-site request forgery attacks."
        ),
        how_checked="Every Set-Cookie has SameSite=Lax or Strict (None or absent fails).",
        recommendation="Set SameSite=Lax (or Strict) on session cookies.",
    ),
    Requirement(
        id="V14.3.3",
        title="No version disclosure in headers",
        text=(
            "Verify that the HTTP headers or any part of the HTTP response do not expose detailed version "
            "information of system components."
        ),
        how_checked=(
            "Server, X-Powered-By, X-AspNet-Version, X-AspNetMvc-Version and X-Generator carry no version "
            "number."
        ),
        recommendation="Remove version numbers from Server and X-Powered-By headers (or drop the headers).",
    ),
    Requirement(
        id="V14.4.1",
        title="Content-Type with a safe charset",
        text=(
            "Verify that every HTTP response contains a Content-Type header. Also specify a safe character "
            "set (e.g., UTF-8, ISO-8859-1) if the content types are text/*, /+xml and application/xml. "
            "Content must match with the provided Content-Type header."
        ),
        how_checked=(
            "Every fetched response with a body has Content-Type, with a charset for text/*, */*+xml and "
            "application/xml. Whether the content matches its type is not checked."
        ),
        recommendation="Send Content-Type on every response, e.g. 'text/html; charset=utf-8'.",
    ),
    Requirement(
        id="V14.4.3",
        title="Content Security Policy",
        text=(
            "Verify that a Content Security Policy (CSP) response header is in place that helps mitigate "
            "impact for XSS attacks like HTML, DOM, JSON, and JavaScript injection vulnerabilities."
        ),
        how_checked=(
            "Every HTML response has an enforced Content-Security-Policy whose script-src (or default-src) "
            "exists and allows no '*', no bare scheme (https:, http:, data:) and no 'unsafe-inline' "
            "without a nonce or hash. Report-Only does not count."
        ),
        recommendation=(
            "Send an enforced CSP such as \"default-src 'self'; object-src 'none'; frame-ancestors 'none'\"."
        ),
    ),
    Requirement(
        id="V14.4.4",
        title="X-Content-Type-Options: nosniff",
        text="Verify that all responses contain a X-Content-Type-Options: nosniff header.",
        how_checked="Every fetched response has X-Content-Type-Options: nosniff.",
        recommendation="Send 'X-Content-Type-Options: nosniff' on every response.",
    ),
    Requirement(
        id="V14.4.5",
        title="Strict-Transport-Security",
        text=(
            "Verify that a Strict-Transport-Security header is included on all responses and for all "
            "subdomains, such as Strict-Transport-Security: max-age=15724800; includeSubdomains."
        ),
        how_checked=(
            f"Every https response has Strict-Transport-Security with max-age >= {HSTS_MIN_AGE} (the ASVS "
            "example) and includeSubDomains. Not applicable without https responses (see V9.1.1)."
        ),
        recommendation="Send 'Strict-Transport-Security: max-age=31536000; includeSubDomains' over HTTPS.",
    ),
    Requirement(
        id="V14.4.6",
        title="Referrer-Policy",
        text=(
            "Verify that a suitable Referrer-Policy header is included to avoid exposing sensitive "
            "information in the URL through the Referer header to untrusted parties."
        ),
        how_checked=(
            "Every fetched response has Referrer-Policy whose effective (last known) value is not "
            "unsafe-url or no-referrer-when-downgrade."
        ),
        recommendation="Send 'Referrer-Policy: strict-origin-when-cross-origin' (or no-referrer).",
    ),
    Requirement(
        id="V14.4.7",
        title="Framing restricted",
        text=(
            "Verify that the content of a web application cannot be embedded in a third-party site by "
            "default and that embedding of the exact resources is only allowed where necessary by using "
            "suitable Content-Security-Policy: frame-ancestors and X-Frame-Options response headers."
        ),
        how_checked=(
            "Every HTML response has CSP frame-ancestors without '*' or bare schemes, or, without "
            "frame-ancestors, X-Frame-Options DENY or SAMEORIGIN."
        ),
        recommendation=(
            "Send \"Content-Security-Policy: frame-ancestors 'self'\" and 'X-Frame-Options: SAMEORIGIN'."
        ),
    ),
    Requirement(
        id="V14.5.3",
        title="CORS origin allowlist",
        text=(
            "Verify that the Cross-Origin Resource Sharing (CORS) Access-Control-Allow-Origin header uses a "
            "strict allow list of trusted domains and subdomains to match against and does not support the "
            '"null" origin.'
        ),
        how_checked=(
            f"Two requests with Origin: {CORS_PROBE_ORIGIN} and Origin: null: Access-Control-Allow-Origin "
            "must not echo either, nor be '*'. With Access-Control-Allow-Credentials: true an echo is high."
        ),
        recommendation="Match Origin against an explicit allowlist; never reflect it, allow 'null' or '*'.",
    ),
)
REQUIREMENTS_BY_ID = {requirement.id: requirement for requirement in REQUIREMENTS}


@dataclass(frozen=True, kw_only=True)
class PlainHTTPProbe:
    """What the plain-HTTP port answered.

    Attributes:
        outcome: ``redirects_to_https``, ``serves_plain_http`` or ``no_answer``.
    """

    url: str
    outcome: Literal["redirects_to_https", "serves_plain_http", "no_answer"]
    status: int | None = None
    location: str | None = None
    detail: str = ""


@dataclass(frozen=True, kw_only=True)
class CorsProbe:
    """One request sent with a foreign Origin, and what the server allowed."""

    origin: str
    url: str
    allow_origin: str | None = None
    allow_credentials: bool = False
    error: str | None = None


@dataclass(frozen=True, kw_only=True)
class WebEvidence:
    """Everything gathered about one target; `evaluate` judges it."""

    target_url: str
    responses: tuple[FetchResult, ...] = ()
    fetch_errors: tuple[tuple[str, str], ...] = ()
    https_expected: bool = False
    tls: TLSInfo | None = None
    tls_error: str | None = None
    versions: tuple[ProtocolSupport, ...] = ()
    plain: PlainHTTPProbe | None = None
    plain_skipped: str | None = None
    cors: tuple[CorsProbe, ...] = ()


@dataclass(frozen=True, kw_only=True)
class Verdict:
    """One requirement's verdict, its severity when failed, and the facts it rests on.

    Attributes:
        sources: Keys of the gathered facts: ``response:<n>``, ``tls``, ``versions``, ``plain``,
            ``cors:<n>``.
    """

    requirement: Requirement
    status: Status
    detail: str
    severity: Severity | None = None
    sources: tuple[str, ...] = ()
    facts: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class Cookie:
    """The attributes of one Set-Cookie (never its value)."""

    name: str
    secure: bool
    http_only: bool
    same_site: str | None
    response: int


_SESSION_NAME = re.compile(r"sess|sid|auth|token|jwt|login|remember", re.IGNORECASE)
VERSION_HEADERS = ("server", "x-powered-by", "x-aspnet-version", "x-aspnetmvc-version", "x-generator")
_VERSION_NUMBER = re.compile(r"\d+\.\d+|/\d")
_UNSAFE_REFERRER = frozenset({"unsafe-url", "no-referrer-when-downgrade"})
_KNOWN_REFERRER = frozenset(
    {
        "no-referrer", "no-referrer-when-downgrade", "origin", "origin-when-cross-origin", "same-origin",
        "strict-origin", "strict-origin-when-cross-origin", "unsafe-url",
    }
)  # fmt: skip
_NO_BODY_STATUSES = frozenset({204, 304})


def parse_cookies(responses: tuple[FetchResult, ...]) -> list[Cookie]:
    """Every Set-Cookie of `responses`, by attributes."""
    cookies: list[Cookie] = []
    for index, response in enumerate(responses):
        for value in response.header_values("set-cookie"):
            parts = [part.strip() for part in value.split(";")]
            name = parts[0].split("=", 1)[0].strip()
            attributes = {
                part.split("=", 1)[0].strip().lower(): part.partition("=")[2].strip() for part in parts[1:]
            }
            cookies.append(
                Cookie(
                    name=name,
                    secure="secure" in attributes,
                    http_only="httponly" in attributes,
                    same_site=attributes.get("samesite"),
                    response=index,
                )
            )
    return cookies


def csp_policies(response: FetchResult) -> list[dict[str, list[str]]]:
    """The enforced CSP policies of a response (one per header or comma-separated policy)."""
    policies: list[dict[str, list[str]]] = []
    for header in response.header_values("content-security-policy"):
        for policy_text in header.split(","):
            policy: dict[str, list[str]] = {}
            for directive in policy_text.split(";"):
                words = directive.split()
                if words and words[0].lower() not in policy:
                    policy[words[0].lower()] = [word.lower() for word in words[1:]]
            if policy:
                policies.append(policy)
    return policies


def is_html(response: FetchResult) -> bool:
    """Whether a response is an HTML document (by type, or by its body when untyped)."""
    content_type = (response.header("content-type") or "").lower()
    if content_type:
        return content_type.startswith(("text/html", "application/xhtml+xml"))
    return response.body.lstrip()[:1] == b"<"


def session_like(name: str) -> bool:
    """Whether a cookie's name suggests a session token."""
    return bool(_SESSION_NAME.search(name))


def version_disclosed(value: str) -> bool:
    """Whether a header value carries a version number (``nginx/1.25.3``, ``PHP/8.2``)."""
    return bool(_VERSION_NUMBER.search(value))


def referrer_policy(value: str) -> str | None:
    """The effective Referrer-Policy: the last value a browser knows, or None."""
    known = [token.strip().lower() for token in value.split(",") if token.strip().lower() in _KNOWN_REFERRER]
    return known[-1] if known else None


def unsafe_referrer(policy: str | None) -> bool:
    """Whether a Referrer-Policy value sends full URLs to other origins."""
    return policy is None or policy in _UNSAFE_REFERRER


def has_body(response: FetchResult) -> bool:
    """Whether a response carries content (so its type matters)."""
    return response.status not in _NO_BODY_STATUSES and (bool(response.body) or response.status < 300)


def make_verdict(
    requirement: str,
    status: Status,
    detail: str,
    *,
    severity: Severity | None = None,
    sources: tuple[str, ...] = (),
    **facts: object,
) -> Verdict:
    """A `Verdict` on the requirement with id `requirement`; `severity` is kept only for a failure."""
    return Verdict(
        requirement=REQUIREMENTS_BY_ID[requirement],
        status=status,
        detail=detail,
        severity=severity if status is Status.FAIL else None,
        sources=sources,
        facts=dict(facts),
    )
