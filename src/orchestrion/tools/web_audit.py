"""HTTP security headers, CORS and cookies of a page: `HeadersAuditTool`.

The tool fetches the target (following redirects through the policy, with an ``Origin`` header for the
CORS check), audits the final response's headers against `header_rules.RULES`, and every Set-Cookie of
every response on the redirect chain (session cookies are often set on a redirect): Secure on HTTPS,
HttpOnly on session-like names, SameSite present and never ``None`` without Secure. Cookies being
deleted (empty, expired) are skipped, and cookie values are never recorded.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import ClassVar

from pydantic import Field

from orchestrion.exceptions import ToolError
from orchestrion.tools.base import Tool, ToolArgs, ToolContext, ToolOutput
from orchestrion.tools.header_rules import PROBE_ORIGIN, RULES, check_headers
from orchestrion.tools.netclient import FetchResult
from orchestrion.tools.web_security import Report, SiteClient, require_target, site_url

__all__ = ["Cookie", "HeadersAuditArgs", "HeadersAuditTool", "parse_set_cookie"]

_SESSION_NAME = re.compile(r"(?i)sess|sid$|^sid|auth|token|jwt|login|remember|identity|user_?id")
# Double-submit CSRF cookies must stay readable by the page's own script: not session cookies here.
_CSRF_NAME = re.compile(r"(?i)csrf|xsrf")


class HeadersAuditArgs(ToolArgs):
    """Arguments of `HeadersAuditTool`."""

    path: str | None = Field(
        default=None,
        max_length=2000,
        pattern=r"^/([^/\s#][^\s#]*)?$",
        description="Path to audit on the target's host (``/login``); the target URL by default.",
    )


@dataclass(frozen=True, kw_only=True)
class Cookie:
    """One Set-Cookie header, its value left out.

    Attributes:
        name: The cookie name.
        value_length: Length of the value (the value itself is never kept).
        attributes: Attribute names lower-cased, with their values (``""`` for flags).
        url: The response that set it.
    """

    name: str
    value_length: int
    attributes: dict[str, str] = field(default_factory=dict)
    url: str = ""

    @property
    def secure(self) -> bool:
        """Whether the Secure flag is set."""
        return "secure" in self.attributes

    @property
    def httponly(self) -> bool:
        """Whether the HttpOnly flag is set."""
        return "httponly" in self.attributes

    @property
    def samesite(self) -> str | None:
        """The SameSite value, lower-cased, or None."""
        value = self.attributes.get("samesite")
        return value.lower() if value is not None else None

    @property
    def session_like(self) -> bool:
        """Whether the name looks like a session or authentication cookie."""
        return _SESSION_NAME.search(self.name) is not None and _CSRF_NAME.search(self.name) is None

    def is_deletion(self, now: datetime) -> bool:
        """Whether the header clears the cookie (empty value, Max-Age <= 0 or an Expires in the past)."""
        if self.value_length == 0:
            return True
        max_age = self.attributes.get("max-age", "").strip()
        if re.fullmatch(r"-?\d+", max_age):
            return int(max_age) <= 0
        expires = self.attributes.get("expires")
        if expires:
            try:
                when = parsedate_to_datetime(expires)
            except (TypeError, ValueError):
                return False
            when = when if when.tzinfo else when.replace(tzinfo=UTC)
            return when < now
        return False


def parse_set_cookie(header: str, url: str = "") -> Cookie | None:
    """Parse a Set-Cookie value (RFC 6265 §5.2); None when it names no cookie."""
    pair, _, rest = header.partition(";")
    name, equals, value = pair.partition("=")
    name = name.strip()
    if not equals or not name:
        return None
    attributes: dict[str, str] = {}
    for part in rest.split(";"):
        key, _, attribute_value = part.partition("=")
        key = key.strip().lower()
        if key:
            attributes[key] = attribute_value.strip()
    return Cookie(name=name, value_length=len(value.strip().strip('"')), attributes=attributes, url=url)


class HeadersAuditTool(Tool):
    """HTTP security headers, CORS and cookies of the target page, against a documented rule table."""

    name: ClassVar[str] = "http_headers_audit"
    description: ClassVar[str] = (
        "Fetch the target page (following redirects) and check its security headers: HSTS (presence, "
        "max-age >= 6 months, includeSubDomains), Content-Security-Policy (presence, 'unsafe-inline', "
        "'unsafe-eval', wildcard sources), X-Content-Type-Options, X-Frame-Options / frame-ancestors, "
        "Referrer-Policy, Permissions-Policy, CORS with credentials, and every Set-Cookie (Secure, "
        "HttpOnly on session cookies, SameSite). Each finding names its OWASP ASVS requirement."
    )
    args_model: ClassVar[type[ToolArgs]] = HeadersAuditArgs

    async def execute(self, args: ToolArgs, ctx: ToolContext) -> ToolOutput:
        """Fetch the page and apply `RULES`."""
        if not isinstance(args, HeadersAuditArgs):
            raise ToolError(f"{self.name} expects HeadersAuditArgs", tool=self.name)
        policy, target = require_target(ctx, self.name)
        url = site_url(target, args.path) if args.path else target.url
        chain = await SiteClient(policy).follow(url, headers={"origin": PROBE_ORIGIN})
        final = chain.final
        report = Report()
        html = _is_html(final)
        response_index = report.observe(
            f"GET {url} -> {final.status}"
            + (f" at {final.url} after {len(chain.hops) - 1} redirect(s)" if len(chain.hops) > 1 else "")
            + f"; {_header_summary(final)}",
            {
                "url": final.url,
                "status": final.status,
                "redirects": [hop.url for hop in chain.hops[1:]],
                "redirect_stopped": chain.stopped,
                "content_type": final.header("content-type"),
                "headers": _security_headers(final),
            },
            location=final.url,
        )
        hits = check_headers(final, https=final.url.startswith("https://"), html=html)
        for rule_id, detail in hits:
            _find(report, rule_id, detail, [response_index])
        cookies = [
            cookie
            for hop in chain.hops
            for value in hop.header_values("set-cookie")
            if (cookie := parse_set_cookie(value, hop.url)) is not None
        ]
        cookie_rules = _check_cookies(report, cookies)
        return report.output(
            {
                "url": final.url,
                "status": final.status,
                "https": final.url.startswith("https://"),
                "document_rules": _document_rules(final, html),
                "rules_failed": sorted({rule for rule, _ in hits} | cookie_rules),
                "cookies": len(cookies),
            }
        )


def _document_rules(final: FetchResult, html: bool) -> str:
    if 300 <= final.status < 400:
        return "skipped: the final response is a redirect that was not followed"
    return "applied" if html else "skipped: not an HTML response"


def _find(report: Report, rule_id: str, detail: str, cite: list[int]) -> None:
    rule = RULES[rule_id]
    report.find(
        f"{rule.title}{f' ({detail})' if detail else ''}",
        rule.severity,
        description=f"{rule.rationale} (OWASP ASVS {rule.asvs}; rule {rule.id})",
        recommendation=rule.recommendation,
        cite=cite,
    )


_SHOWN_HEADERS = (
    "strict-transport-security",
    "content-security-policy",
    "content-security-policy-report-only",
    "x-frame-options",
    "x-content-type-options",
    "referrer-policy",
    "permissions-policy",
    "access-control-allow-origin",
    "access-control-allow-credentials",
)


def _security_headers(result: FetchResult) -> dict[str, list[str]]:
    return {name: [v[:500] for v in result.header_values(name)] for name in _SHOWN_HEADERS}


def _header_summary(result: FetchResult) -> str:
    present = [name for name in _SHOWN_HEADERS[:7] if result.header(name) is not None]
    return f"security headers present: {', '.join(present) or 'none'}"


def _is_html(result: FetchResult) -> bool:
    content_type = (result.header("content-type") or "").lower()
    if content_type:
        return "html" in content_type
    return result.body.lstrip()[:1] == b"<"


def _check_cookies(report: Report, cookies: list[Cookie]) -> set[str]:
    """One observation per cookie; one finding per failed rule, naming and citing its cookies."""
    now = datetime.now(UTC)
    failed: dict[str, list[tuple[str, int]]] = {}
    for cookie in cookies:
        if cookie.is_deletion(now):
            continue
        https = cookie.url.startswith("https://")
        index = report.observe(
            f"Set-Cookie {cookie.name} from {cookie.url}: Secure={'yes' if cookie.secure else 'no'}, "
            f"HttpOnly={'yes' if cookie.httponly else 'no'}, SameSite={cookie.samesite or 'not set'}",
            {
                "name": cookie.name,
                "url": cookie.url,
                "attributes": cookie.attributes,
                "value_length": cookie.value_length,
                "session_like": cookie.session_like,
            },
            location=cookie.url,
        )
        rules: list[str] = []
        if https and not cookie.secure:
            rules.append("cookie_session_not_secure" if cookie.session_like else "cookie_not_secure")
        if cookie.session_like and not cookie.httponly:
            rules.append("cookie_not_httponly")
        if cookie.samesite is None:
            rules.append("cookie_samesite_missing")
        elif cookie.samesite == "none" and not cookie.secure:
            rules.append("cookie_samesite_none_insecure")
        for rule in rules:
            failed.setdefault(rule, []).append((cookie.name, index))
    for rule, entries in failed.items():
        names = sorted({name for name, _ in entries})
        _find(report, rule, ", ".join(names), [index for _, index in entries])
    return set(failed)
