"""Technology hints for `web_intel`: what response headers, cookie names and page resources give away.

Hints, not proof: each names the evidence it rests on (a header and its value, a cookie's name, a
resource path). Cookie values are never read.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from orchestrion.tools.webparse import PageInfo

__all__ = ["TechnologyHint", "hint_technologies"]

# Headers whose value names the software (shown with the value), and those whose presence alone does.
_NAMING_HEADERS = {
    "server": None,
    "x-powered-by": None,
    "x-aspnet-version": "ASP.NET",
    "x-aspnetmvc-version": "ASP.NET MVC",
    "x-generator": None,
    "via": None,
}
_PRESENCE_HEADERS = {
    "x-drupal-cache": "Drupal",
    "x-drupal-dynamic-cache": "Drupal",
    "x-shopify-stage": "Shopify",
    "cf-ray": "Cloudflare",
    "x-amz-cf-id": "Amazon CloudFront",
    "x-vercel-id": "Vercel",
    "x-github-request-id": "GitHub Pages",
    "x-varnish": "Varnish",
    "x-litespeed-cache": "LiteSpeed",
    "x-wix-request-id": "Wix",
}
_COOKIE_PREFIXES = (
    ("phpsessid", "PHP"),
    ("jsessionid", "Java servlet container"),
    ("asp.net_sessionid", "ASP.NET"),
    ("laravel_session", "Laravel"),
    ("ci_session", "CodeIgniter"),
    ("wordpress_", "WordPress"),
    ("wp-settings", "WordPress"),
    ("_shopify", "Shopify"),
    ("csrftoken", "Django"),
    ("connect.sid", "Express (Node.js)"),
    ("rack.session", "Ruby Rack"),
)
_RESOURCE_PATTERNS = (
    (re.compile(r"/wp-(?:content|includes)/"), "WordPress"),
    (re.compile(r"/_next/"), "Next.js"),
    (re.compile(r"/_nuxt/"), "Nuxt"),
    (re.compile(r"/sites/default/files/|/core/misc/drupal"), "Drupal"),
    (re.compile(r"/media/jui/|/media/system/js/"), "Joomla"),
    (re.compile(r"cdn\.shopify\.com"), "Shopify"),
)
_JQUERY = re.compile(r"jquery[.-](\d+(?:\.\d+){1,2})(?:\.min)?\.js", re.IGNORECASE)


@dataclass(frozen=True, kw_only=True)
class TechnologyHint:
    """One technology the site hints at, and where."""

    technology: str
    evidence: str

    def as_dict(self) -> dict[str, str]:
        """A JSON-ready form."""
        return {"technology": self.technology, "evidence": self.evidence}


def hint_technologies(headers: Sequence[tuple[str, str]], page: PageInfo | None) -> list[TechnologyHint]:
    """Technologies hinted by response headers (names lower-cased), cookie names and page resources."""
    hints: list[TechnologyHint] = []
    for name, value in headers:
        if name in _NAMING_HEADERS and value.strip():
            prefix = _NAMING_HEADERS[name]
            shown = f"{prefix} {value.strip()}" if prefix else value.strip()
            hints.append(
                TechnologyHint(technology=shown[:120], evidence=f"header {name}: {value.strip()[:120]}")
            )
        elif name in _PRESENCE_HEADERS:
            hints.append(TechnologyHint(technology=_PRESENCE_HEADERS[name], evidence=f"header {name}"))
        elif name == "set-cookie":
            cookie = value.split("=", 1)[0].strip()
            technology = next(
                (tech for prefix, tech in _COOKIE_PREFIXES if cookie.lower().startswith(prefix)), None
            )
            if technology is not None:
                hints.append(TechnologyHint(technology=technology, evidence=f"cookie {cookie}"))
    if page is not None:
        for generator in page.generators:
            hints.append(TechnologyHint(technology=generator[:120], evidence="meta generator"))
        for url in page.resources:
            for pattern, technology in _RESOURCE_PATTERNS:
                if pattern.search(url):
                    hints.append(TechnologyHint(technology=technology, evidence=f"resource {url[:200]}"))
            jquery = _JQUERY.search(url)
            if jquery is not None:
                hints.append(
                    TechnologyHint(technology=f"jQuery {jquery.group(1)}", evidence=f"resource {url[:200]}")
                )
    # One hint per technology: the first evidence found is enough to cite.
    first: dict[str, TechnologyHint] = {}
    for hint in hints:
        first.setdefault(hint.technology, hint)
    return list(first.values())
