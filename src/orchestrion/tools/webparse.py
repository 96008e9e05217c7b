"""Parsers for what the `web_intel` tool reads: HTML pages, robots.txt, sitemaps and security.txt.

Pure, blocking functions (the tool runs them in a worker thread). HTML goes through the standard
library's `html.parser`, which never fetches anything and tolerates broken markup; sitemaps are read
with a regular expression rather than an XML parser, so entity expansion cannot blow up a capped body.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from html import unescape
from html.parser import HTMLParser
from urllib.parse import unquote, urljoin, urlsplit

__all__ = [
    "PageInfo",
    "RobotsTxt",
    "SecurityTxt",
    "Sitemap",
    "decode_body",
    "find_emails",
    "looks_like_html",
    "parse_page",
    "parse_robots",
    "parse_security_txt",
    "parse_sitemap",
    "sensitive_paths",
]

_MAX_EMAILS = 100
_EMAIL = re.compile(r"(?<![\w.%+-])[A-Za-z0-9._%+-]{1,64}@(?:[A-Za-z0-9-]{1,63}\.)+[A-Za-z]{2,24}(?![\w-])")
# "logo@2x.png" looks like an address; a file extension is never a real top-level domain here.
_NOT_TLDS = frozenset({"png", "jpg", "jpeg", "gif", "svg", "webp", "avif", "ico", "css", "js", "json", "map"})
_CHARSET = re.compile(r"charset=[\"']?([A-Za-z0-9_.:-]+)", re.IGNORECASE)
# Path fragments that make a disallowed path interesting to someone mapping the site.
_SENSITIVE = re.compile(
    r"admin|backup|\.bak\b|private|secret|internal|config|\.git\b|\.env\b|\.svn\b|staging|debug|dump"
    r"|\.sql\b|database|credential|passw",
    re.IGNORECASE,
)
_LOC = re.compile(r"<loc>\s*(?:<!\[CDATA\[)?\s*(.*?)\s*(?:\]\]>)?\s*</loc>", re.IGNORECASE | re.DOTALL)
_FIELD = re.compile(r"^([A-Za-z][A-Za-z0-9-]*):\s*(.*?)\s*$")


@dataclass(frozen=True, kw_only=True)
class PageInfo:
    """What an HTML page says about itself.

    Attributes:
        title: The first ``<title>``'s text, whitespace collapsed.
        description: ``<meta name="description">``.
        generators: Every ``<meta name="generator">`` value.
        canonical: ``<link rel="canonical">``, made absolute.
        open_graph: ``og:*`` properties (first value of each).
        links: Every ``<a href>`` to an http(s) URL, made absolute, in order.
        resources: ``<script src>`` and ``<link href>`` URLs, made absolute (technology hints).
        emails: Addresses in ``mailto:`` links and in the visible text, lower-cased, deduplicated.
    """

    title: str | None
    description: str | None
    generators: tuple[str, ...]
    canonical: str | None
    open_graph: tuple[tuple[str, str], ...]
    links: tuple[str, ...]
    resources: tuple[str, ...]
    emails: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class RobotsTxt:
    """The rules of a robots.txt (all user-agent groups together)."""

    disallow: tuple[str, ...]
    allow: tuple[str, ...]
    sitemaps: tuple[str, ...]
    user_agents: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class Sitemap:
    """A sitemap: its ``<loc>`` URLs, and whether it is an index of other sitemaps."""

    urls: tuple[str, ...]
    is_index: bool


@dataclass(frozen=True, kw_only=True)
class SecurityTxt:
    """A security.txt file (RFC 9116).

    Attributes:
        fields: ``(name, value)`` pairs in order, names lower-cased.
        signed: Whether it is an OpenPGP cleartext-signed message.
    """

    fields: tuple[tuple[str, str], ...]
    signed: bool

    def values(self, name: str) -> list[str]:
        """Every value of field `name` (case-insensitive)."""
        wanted = name.lower()
        return [value for key, value in self.fields if key == wanted]

    @property
    def expires(self) -> str | None:
        """The first ``Expires`` value as written."""
        values = self.values("expires")
        return values[0] if values else None

    @property
    def expires_at(self) -> datetime | None:
        """``Expires`` as an aware datetime (UTC when no offset is written), or None if absent or invalid."""
        if self.expires is None:
            return None
        try:
            moment = datetime.fromisoformat(self.expires.replace("z", "Z"))
        except ValueError:
            return None
        return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


class _PageParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.title: list[str] = []
        self.title_done = False
        self.in_title = False
        self.metas: list[dict[str, str]] = []
        self.link_tags: list[dict[str, str]] = []
        self.anchors: list[str] = []
        self.scripts: list[str] = []
        self.text: list[str] = []
        self.hidden = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {key.lower(): (value or "") for key, value in attrs}
        if tag == "title" and not self.title_done:
            self.in_title = True
        elif tag == "meta":
            self.metas.append(values)
        elif tag == "link":
            self.link_tags.append(values)
        elif tag == "a" and values.get("href"):
            self.anchors.append(values["href"])
        elif tag in ("script", "style"):
            self.hidden += 1
            if values.get("src"):
                self.scripts.append(values["src"])

    def handle_endtag(self, tag: str) -> None:
        if tag == "title" and self.in_title:
            self.in_title, self.title_done = False, True
        elif tag in ("script", "style") and self.hidden:
            self.hidden -= 1

    def handle_data(self, data: str) -> None:
        if self.in_title:
            self.title.append(data)
        elif not self.hidden:
            self.text.append(data)


def parse_page(html: str, base_url: str) -> PageInfo:
    """Read an HTML page's metadata, links and e-mail addresses; relative URLs resolve against `base_url`."""
    parser = _PageParser()
    parser.feed(html)
    parser.close()
    named: dict[str, list[str]] = {}
    open_graph: dict[str, str] = {}
    for meta in parser.metas:
        content = meta.get("content", "").strip()
        key = meta.get("name", "").strip().lower()
        prop = meta.get("property", "").strip().lower()
        if key:
            named.setdefault(key, []).append(content)
        if prop.startswith("og:") and prop not in open_graph:
            open_graph[prop] = content
    canonical = next(
        (
            tag["href"]
            for tag in parser.link_tags
            if "canonical" in tag.get("rel", "").lower().split() and tag.get("href")
        ),
        None,
    )
    links: list[str] = []
    emails: list[str] = []
    for href in parser.anchors:
        href = href.strip()
        if href.lower().startswith("mailto:"):
            emails += _mailto_addresses(href)
            continue
        absolute = urljoin(base_url, href)
        if urlsplit(absolute).scheme in ("http", "https") and not href.startswith("#"):
            links.append(absolute)
    resources = [urljoin(base_url, src.strip()) for src in parser.scripts]
    resources += [urljoin(base_url, tag["href"].strip()) for tag in parser.link_tags if tag.get("href")]
    title = " ".join("".join(parser.title).split()) or None
    description = next((value for value in named.get("description", []) if value), None)
    return PageInfo(
        title=title,
        description=description,
        generators=tuple(value for value in named.get("generator", []) if value),
        canonical=urljoin(base_url, canonical.strip()) if canonical else None,
        open_graph=tuple(open_graph.items()),
        links=tuple(links),
        resources=tuple(resources),
        emails=tuple(_dedupe([*emails, *find_emails(" ".join(parser.text))])[:_MAX_EMAILS]),
    )


def find_emails(text: str) -> list[str]:
    """E-mail addresses in `text`, lower-cased and deduplicated in order of appearance."""
    found = (match.group(0).lower().strip(".") for match in _EMAIL.finditer(text))
    return _dedupe(address for address in found if address.rsplit(".", 1)[-1] not in _NOT_TLDS)


def parse_robots(text: str) -> RobotsTxt:
    """Read the Disallow, Allow, Sitemap and User-agent lines of a robots.txt."""
    lines: dict[str, list[str]] = {"disallow": [], "allow": [], "sitemap": [], "user-agent": []}
    for raw in text.splitlines():
        key, sep, value = raw.split("#", 1)[0].partition(":")
        key, value = key.strip().lower(), value.strip()
        if sep and value and key in lines:
            lines[key].append(value)
    return RobotsTxt(
        disallow=tuple(_dedupe(lines["disallow"])),
        allow=tuple(_dedupe(lines["allow"])),
        sitemaps=tuple(_dedupe(lines["sitemap"])),
        user_agents=tuple(_dedupe(lines["user-agent"])),
    )


def sensitive_paths(paths: Sequence[str]) -> list[dict[str, str]]:
    """The paths that look sensitive (admin, backup, private...), each with the fragment that matched."""
    hits: list[dict[str, str]] = []
    for path in paths:
        match = _SENSITIVE.search(unquote(path))
        if match is not None:
            hits.append({"path": path, "matched": match.group(0).lower()})
    return hits


def parse_sitemap(text: str) -> Sitemap | None:
    """Read a sitemap or sitemap index; None when `text` is neither (an HTML error page, say)."""
    lowered = text[:4096].lower()
    is_index = "<sitemapindex" in lowered
    if not is_index and "<urlset" not in lowered:
        return None
    return Sitemap(urls=tuple(unescape(url) for url in _LOC.findall(text) if url), is_index=is_index)


def parse_security_txt(text: str) -> SecurityTxt:
    """Read the ``Field: value`` lines of a security.txt (inside the signed part, if signed)."""
    signed = "-----BEGIN PGP SIGNED MESSAGE-----" in text
    fields: list[tuple[str, str]] = []
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("-----BEGIN PGP SIGNATURE-----"):
            break
        # Cleartext signatures escape lines starting with a dash as "- ".
        line = line[2:] if line.startswith("- ") else line
        match = _FIELD.match(line)
        if match is not None and not line.startswith("#") and match.group(2):
            fields.append((match.group(1).lower(), match.group(2)))
    return SecurityTxt(fields=tuple(fields), signed=signed)


def decode_body(body: bytes, content_type: str | None) -> str:
    """Decode with the Content-Type's charset when it names a known one, else UTF-8 (lenient)."""
    match = _CHARSET.search(content_type or "")
    encoding = "utf-8"
    if match is not None:
        try:
            encoding = codecs.lookup(match.group(1)).name
        except LookupError:
            pass
    return body.decode(encoding, "replace")


def looks_like_html(body: bytes, content_type: str | None) -> bool:
    """Whether a response is an HTML page (a soft 404 when a text file was asked for)."""
    if "html" in (content_type or "").lower():
        return True
    head = body[:512].lstrip().lower()
    return head.startswith((b"<!doctype html", b"<html", b"<head", b"<body"))


def _mailto_addresses(href: str) -> list[str]:
    recipients = unquote(href[len("mailto:") :].split("?", 1)[0])
    return [address for part in recipients.split(",") for address in find_emails(part)]


def _dedupe(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))
