"""The `web_intel` tool: what a web site publishes about itself, read the way a visitor would.

It fetches the target page (the home page when the target names no path), ``/robots.txt``,
``/.well-known/security.txt`` and the sitemap (the first one robots.txt declares on the same origin,
else ``/sitemap.xml``), every request through `netclient.fetch` and so through the target policy, each
body cut at a small cap. The extra files are fetched from the origin the page ended up on after
redirects. Parsing (`webparse`, `webtech`) runs in a worker thread.

A target written without a scheme is tried over https first, then over http if https cannot connect.
A text file answered with an HTML page (a "soft 404") counts as missing.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar
from urllib.parse import urlsplit

from pydantic import Field

from orchestrion.domain.findings import Severity
from orchestrion.domain.tasks import utcnow
from orchestrion.exceptions import TargetRefusedError, ToolError
from orchestrion.tools.base import Observation, ProposedFinding, Tool, ToolArgs, ToolContext, ToolOutput
from orchestrion.tools.netclient import FetchResult, fetch
from orchestrion.tools.nettarget import expect_args, require_target
from orchestrion.tools.secrets import redact_secrets
from orchestrion.tools.targets import Target, TargetPolicy
from orchestrion.tools.webparse import (
    PageInfo,
    decode_body,
    looks_like_html,
    parse_page,
    parse_robots,
    parse_security_txt,
    parse_sitemap,
    sensitive_paths,
)
from orchestrion.tools.webtech import hint_technologies

__all__ = ["WebIntelArgs", "WebIntelTool"]

_PAGE_BYTES = 1024 * 1024
_TEXT_BYTES = 256 * 1024
_SECURITY_TXT_BYTES = 32 * 1024
_SAMPLE = 10
_MAX_DOMAINS = 50
# An extra file that trickles in slowly must not use up the tool's whole time and lose the rest.
_EXTRA_FILE_SECONDS = 20.0


class WebIntelArgs(ToolArgs):
    """Arguments of `WebIntelTool`."""

    verify_tls: bool = Field(
        default=True,
        description=(
            "Verify the site's TLS certificate. Turn off only to read a site whose certificate is broken "
            "(certificate problems are the TLS tools' subject)."
        ),
    )


@dataclass(frozen=True, kw_only=True)
class _Fetched:
    """One secondary fetch: its response, or why there is none."""

    url: str
    result: FetchResult | None = None
    error: str | None = None

    @property
    def text_file(self) -> str | None:
        """The body as text when the server sent the plain file asked for (200 and not an HTML page)."""
        result = self.result
        if result is None or result.status != 200:
            return None
        content_type = result.header("content-type")
        if looks_like_html(result.body, content_type):
            return None
        return decode_body(result.body, content_type)

    @property
    def status_text(self) -> str:
        """``HTTP 404``, ``not fetched: <why>``..."""
        return f"HTTP {self.result.status}" if self.result is not None else f"not fetched: {self.error}"

    @property
    def absent(self) -> bool:
        """Whether the server said the file does not exist (a 4xx, or a 200 that is an HTML page)."""
        if self.result is None:
            return False
        return 400 <= self.result.status < 500 or (self.result.status == 200 and self.text_file is None)

    def base(self) -> dict[str, Any]:
        """The facts every observation of this fetch starts with."""
        data: dict[str, Any] = {"url": self.url}
        if self.result is not None:
            data.update(
                status=self.result.status,
                final_url=self.result.url,
                content_type=self.result.header("content-type"),
                bytes=len(self.result.body),
                truncated=self.result.truncated,
            )
        else:
            data["error"] = self.error
        return data


class WebIntelTool(Tool):
    """Public information a web site publishes: metadata, links, e-mails, robots, sitemap, security.txt."""

    name: ClassVar[str] = "web_intel"
    description: ClassVar[str] = (
        "Read what the target web site publishes about itself: the page's title, description, generator, "
        "canonical URL and Open Graph tags, its internal and external links, published e-mail "
        "addresses, technologies hinted by headers and markup, robots.txt (sensitive-looking "
        "disallowed paths), the sitemap, and /.well-known/security.txt (present, contact, expiry)."
    )
    args_model: ClassVar[type[ToolArgs]] = WebIntelArgs
    timeout_seconds: ClassVar[float] = 90.0

    async def execute(self, args: ToolArgs, ctx: ToolContext) -> ToolOutput:
        """Fetch the page and the well-known files, then read them."""
        options = expect_args(args, WebIntelArgs, self.name)
        policy, target = require_target(ctx, self.name)
        verify = options.verify_tls
        home = await _fetch_page(policy, target, verify=verify)
        site = _origin(home.url)
        robots, security = await asyncio.gather(
            _get(policy, f"{site}/robots.txt", max_bytes=_TEXT_BYTES, verify=verify),
            _get(policy, f"{site}/.well-known/security.txt", max_bytes=_SECURITY_TXT_BYTES, verify=verify),
        )
        robots_text = robots.text_file
        declared = parse_robots(robots_text).sitemaps if robots_text is not None else ()
        sitemap_url = next((url for url in declared if _origin_or_none(url) == site), f"{site}/sitemap.xml")
        sitemap = await _get(policy, sitemap_url, max_bytes=policy.max_response_bytes, verify=verify)
        return await asyncio.to_thread(
            _read_site, site=site, home=home, robots=robots, security=security, sitemap=sitemap, now=utcnow()
        )


async def _fetch_page(policy: TargetPolicy, target: Target, *, verify: bool) -> FetchResult:
    try:
        return await fetch(policy, target.url, max_bytes=_PAGE_BYTES, verify=verify)
    except ToolError as https_error:
        if target.scheme is not None:
            raise
        # The caller wrote no scheme and https did not work: the site may be plain http only.
        try:
            return await fetch(policy, f"http://{target.netloc}{target.path or '/'}", max_bytes=_PAGE_BYTES)
        except ToolError as exc:
            raise ToolError(f"{https_error.message}; over http: {exc.message}", tool="web_intel") from exc


async def _get(policy: TargetPolicy, url: str, *, max_bytes: int, verify: bool) -> _Fetched:
    try:
        async with asyncio.timeout(_EXTRA_FILE_SECONDS):
            return _Fetched(url=url, result=await fetch(policy, url, max_bytes=max_bytes, verify=verify))
    except (ToolError, TargetRefusedError) as exc:
        # A missing or refused extra file says something about the site; it must not lose the rest.
        return _Fetched(url=url, error=exc.message)
    except TimeoutError:
        return _Fetched(url=url, error=f"took longer than {_EXTRA_FILE_SECONDS:g}s")


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _origin_or_none(url: str) -> str | None:
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return None
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme in ("http", "https") and parts.netloc else None


class _Report:
    def __init__(self) -> None:
        self.observations: list[Observation] = []
        self.findings: list[ProposedFinding] = []

    def observe(self, summary: str, data: dict[str, Any], location: str) -> int:
        self.observations.append(Observation(summary=summary, data=data, location=location))
        return len(self.observations) - 1

    def find(self, title: str, severity: Severity, description: str, recommendation: str, cite: int) -> None:
        self.findings.append(
            ProposedFinding(
                title=title,
                severity=severity,
                description=description,
                recommendation=recommendation,
                observation_indexes=(cite,),
            )
        )


def _read_site(
    *,
    site: str,
    home: FetchResult,
    robots: _Fetched,
    security: _Fetched,
    sitemap: _Fetched,
    now: datetime,
) -> ToolOutput:
    """Blocking body of `WebIntelTool`: parse what was fetched into observations and findings."""
    report = _Report()
    page = _read_page(report, home)
    _read_robots(report, robots, site=site)
    _read_sitemap(report, sitemap)
    _read_security_txt(report, security, site=site, now=now)
    data = {
        "site": site,
        "page": home.url,
        "status": home.status,
        "emails": len(page.emails) if page is not None else 0,
        "robots": robots.status_text,
        "sitemap": sitemap.status_text,
        "security_txt": security.status_text,
    }
    return ToolOutput(observations=tuple(report.observations), findings=tuple(report.findings), data=data)


def _quote(text: str | None, limit: int = 300) -> str | None:
    return redact_secrets(text)[:limit] if text else None


def _read_page(report: _Report, home: FetchResult) -> PageInfo | None:
    content_type = home.header("content-type")
    page = None
    if looks_like_html(home.body, content_type):
        page = parse_page(decode_body(home.body, content_type), home.url)
    meta: dict[str, Any] = {
        "url": home.url,
        "status": home.status,
        "redirects": home.redirects,
        "content_type": content_type,
        "bytes": len(home.body),
        "truncated": home.truncated,
    }
    if page is not None:
        meta.update(
            title=_quote(page.title),
            description=_quote(page.description),
            generators=[_quote(g, 120) for g in page.generators],
            canonical=page.canonical,
            open_graph={key: _quote(value) for key, value in page.open_graph},
        )
    described = f"title {meta['title']!r}" if page is not None and page.title else "no title"
    if page is not None and page.generators:
        described += f"; generator {', '.join(str(g) for g in meta['generators'])}"
    cited = report.observe(f"{home.url} (HTTP {home.status}): {described}", meta, home.url)
    versioned = [g for g in (page.generators if page is not None else ()) if any(ch.isdigit() for ch in g)]
    if versioned:
        report.find(
            f"{_origin(home.url)} discloses its software version in a generator meta tag",
            Severity.LOW,
            f'The page\'s <meta name="generator"> says {_quote(versioned[0], 120)!r}: the exact version '
            "tells an attacker which known vulnerabilities to try.",
            "Remove the generator meta tag (most CMSs have a setting or a one-line filter for it) and keep "
            "the software up to date.",
            cited,
        )
    technologies = hint_technologies(home.headers, page)
    if technologies:
        report.observe(
            "Technologies hinted: " + ", ".join(f"{t.technology} ({t.evidence})" for t in technologies),
            {"url": home.url, "technologies": [t.as_dict() for t in technologies]},
            home.url,
        )
    if page is not None:
        _read_links(report, page, home.url)
        if page.emails:
            report.observe(
                f"{len(page.emails)} e-mail address(es) published on {home.url}: {', '.join(page.emails)} "
                "(public data)",
                {
                    "url": home.url,
                    "emails": list(page.emails),
                    "note": "published on the public page: public data, listed for the record, not a leak",
                },
                home.url,
            )
    return page


def _read_links(report: _Report, page: PageInfo, url: str) -> None:
    site = (urlsplit(url).hostname or "").removeprefix("www.")
    internal = 0
    external: Counter[str] = Counter()
    for link in page.links:
        host = (urlsplit(link).hostname or "").removeprefix("www.")
        if host == site or host.endswith("." + site):
            internal += 1
        else:
            external[host] += 1
    domains = dict(external.most_common(_MAX_DOMAINS))
    report.observe(
        f"{len(page.links)} links on {url}: {internal} internal, {sum(external.values())} external to "
        f"{len(external)} domain(s)" + (f" ({', '.join(list(domains)[:_SAMPLE])})" if domains else ""),
        {
            "url": url,
            "links": len(page.links),
            "internal": internal,
            "external": sum(external.values()),
            "external_domains": domains,
            "sample": list(page.links[:_SAMPLE]),
        },
        url,
    )


def _read_robots(report: _Report, robots: _Fetched, *, site: str) -> None:
    text = robots.text_file
    if text is None:
        report.observe(f"No robots.txt at {robots.url} ({robots.status_text})", robots.base(), robots.url)
        return
    parsed = parse_robots(text)
    sensitive = sensitive_paths(parsed.disallow)
    cited = report.observe(
        f"robots.txt: {len(parsed.disallow)} disallowed, {len(parsed.allow)} allowed path(s), "
        f"{len(parsed.sitemaps)} sitemap(s)"
        + (
            f"; sensitive-looking: {', '.join(hit['path'] for hit in sensitive[:_SAMPLE])}"
            if sensitive
            else ""
        ),
        {
            **robots.base(),
            "user_agents": list(parsed.user_agents[:_MAX_DOMAINS]),
            "disallow": [_quote(path, 200) for path in parsed.disallow[:100]],
            "allow": [_quote(path, 200) for path in parsed.allow[:100]],
            "sitemaps": list(parsed.sitemaps[:_SAMPLE]),
            "sensitive_paths": sensitive[:100],
        },
        robots.url,
    )
    if sensitive:
        report.find(
            f"robots.txt of {site} points at sensitive-looking paths",
            Severity.INFO,
            "robots.txt asks crawlers to stay away from "
            + ", ".join(hit["path"] for hit in sensitive[:_SAMPLE])
            + ": the file is public, so it also tells anyone where the interesting parts of the site are.",
            "Protect those paths with authentication rather than relying on robots.txt, and leave out of it "
            "paths that need not be advertised.",
            cited,
        )


def _read_sitemap(report: _Report, sitemap: _Fetched) -> None:
    text = sitemap.text_file
    parsed = parse_sitemap(text) if text is not None else None
    if parsed is None:
        report.observe(f"No sitemap at {sitemap.url} ({sitemap.status_text})", sitemap.base(), sitemap.url)
        return
    kind = "sitemaps (index)" if parsed.is_index else "URLs"
    at_least = "at least " if sitemap.result is not None and sitemap.result.truncated else ""
    report.observe(
        f"Sitemap {sitemap.url}: {at_least}{len(parsed.urls)} {kind}",
        {
            **sitemap.base(),
            "is_index": parsed.is_index,
            "count": len(parsed.urls),
            "sample": list(parsed.urls[:_SAMPLE]),
        },
        sitemap.url,
    )


def _read_security_txt(report: _Report, security: _Fetched, *, site: str, now: datetime) -> None:
    text = security.text_file
    parsed = parse_security_txt(text) if text is not None else None
    contacts = parsed.values("contact") if parsed is not None else []
    if parsed is None or not contacts:
        present = "without a Contact field" if parsed is not None else f"({security.status_text})"
        cited = report.observe(
            f"No valid security.txt at {security.url} {present}",
            {**security.base(), "present": False},
            security.url,
        )
        if security.absent:
            report.find(
                f"{site} publishes no security.txt",
                Severity.LOW,
                f"{security.url} is missing (or has no Contact field), so someone who finds a vulnerability "
                "has no published way to report it (RFC 9116).",
                "Publish /.well-known/security.txt with at least a Contact and an Expires field.",
                cited,
            )
        return
    expires_at = parsed.expires_at
    expired = expires_at is not None and expires_at < now
    shown_expiry = f"{parsed.expires or 'not set'}{' (expired)' if expired else ''}"
    cited = report.observe(
        f"security.txt at {security.url}: contact {', '.join(str(_quote(c, 200)) for c in contacts)}; "
        f"expires {shown_expiry}",
        {
            **security.base(),
            "present": True,
            "contact": [_quote(c, 200) for c in contacts],
            "expires": parsed.expires,
            "expired": expired,
            "signed": parsed.signed,
            "fields": sorted({name for name, _ in parsed.fields}),
            "policy": parsed.values("policy")[:3],
            "encryption": parsed.values("encryption")[:3],
        },
        security.url,
    )
    if expired:
        report.find(
            f"security.txt of {site} has expired",
            Severity.LOW,
            f"{security.url} expired on {parsed.expires}; RFC 9116 tells researchers to treat an expired "
            "file as stale, so its contacts may not be used.",
            "Update the Expires field (less than a year ahead) and check the contacts still work.",
            cited,
        )
    elif expires_at is None:
        report.find(
            f"security.txt of {site} has no valid Expires field",
            Severity.INFO,
            f"{security.url} has {'an unreadable' if parsed.expires else 'no'} Expires field, which RFC 9116 "
            "requires so that readers can tell a maintained file from a stale one.",
            "Add an Expires field with an RFC 3339 date less than a year ahead.",
            cited,
        )
