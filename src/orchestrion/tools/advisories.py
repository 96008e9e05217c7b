"""Version banners against a bundled advisory table: `BannerAdvisoryTool`.

The tool reads the banners a site volunteers (``Server``, ``X-Powered-By``, ``X-AspNet-Version``...) on
the target page and its redirects, and the product/version strings of its default error page (Apache's
``<address>``, nginx's ``<center>``, Tomcat's and Jetty's footers), then matches each product and version
against ``data/advisories.json``: a modest, hand-compiled and dated table (see its ``about``, ``as_of``
and per-product ``source``) with OSV-style ranges (``introduced`` / ``fixed`` / ``last_affected``).

Versions compare by numeric parts, a trailing lower-case letter suffix (OpenSSL's ``1.0.1f``) counting
as a further part. A banner that gives fewer parts than a range's bounds (``Apache/2.4`` against
``2.4.0 <= v < 2.4.56``) cannot be decided: that is recorded as undecided, never as a finding.
Disclosing a version is itself a low finding (ASVS V14.3.3); a match is reported with the advisory's
severity and the caveat that distributions backport fixes without changing version numbers.
"""

from __future__ import annotations

import asyncio
import functools
import json
import re
from dataclasses import dataclass
from importlib import resources
from typing import Any, ClassVar, Literal

from pydantic import Field

from orchestrion.domain.findings import Severity
from orchestrion.exceptions import ConfigurationError, ToolError, ValidationError
from orchestrion.tools.base import Tool, ToolArgs, ToolContext, ToolOutput
from orchestrion.tools.netclient import FetchResult
from orchestrion.tools.web_security import Report, SiteClient, require_target, site_url, unknown_path

__all__ = [
    "Advisory",
    "AdvisoryTable",
    "BannerAdvisoryArgs",
    "BannerAdvisoryTool",
    "Version",
    "VersionRange",
    "compare_versions",
    "load_advisories",
    "parse_advisories",
    "parse_version",
]

Verdict = Literal["affected", "not_affected", "undecided"]

_MAX_BODY = 64 * 1024
_VERSION_START = re.compile(r"v?(\d+(?:\.\d+)*)", re.IGNORECASE)
_LETTERS = re.compile(r"([a-z]{1,2})(?![a-z0-9])")
_HEADER_TOKEN = re.compile(r"([A-Za-z][\w.\-]*)(?:/|\()(v?\d[\w.\-+~]*)")
_PAGE_TOKEN = re.compile(
    r"\b(Apache Tomcat|Apache|nginx|OpenSSL|PHP|Microsoft-IIS|Jetty|lighttpd|LiteSpeed|Werkzeug|gunicorn)"
    r"(?:/|:// ?|\()(\d[\w.\-]*)",
    re.IGNORECASE,
)
# Headers whose whole value is a version of a known product.
_VERSION_HEADERS = {"x-aspnet-version": "ASP.NET", "x-aspnetmvc-version": "ASP.NET MVC"}
BANNER_HEADERS = ("server", "x-powered-by", "x-aspnet-version", "x-aspnetmvc-version", "x-generator")
_HIDE = {
    "server": "Hide versions in the Server header: Apache `ServerTokens Prod`, nginx `server_tokens off`, "
    "IIS `removeServerHeader`, Tomcat's Connector `server` attribute.",
    "x-powered-by": "Remove X-Powered-By: PHP `expose_php = Off`, Express `app.disable('x-powered-by')`, "
    'IIS `<remove name="X-Powered-By"/>`.',
    "x-aspnet-version": 'Set `<httpRuntime enableVersionHeader="false"/>`.',
    "x-aspnetmvc-version": "Set `MvcHandler.DisableMvcResponseHeader = true`.",
    "error page": "Serve custom error pages: Apache `ServerSignature Off`, nginx `server_tokens off`, "
    "Tomcat's ErrorReportValve `showServerInfo=false`.",
}


@dataclass(frozen=True)
class Version:
    """A version as comparable parts.

    Attributes:
        parts: Numeric parts, then one part per letter of a suffix (a=1...).
        precision: How many numeric parts were written (``2.4`` has 2: it stands for any 2.4.x).
    """

    parts: tuple[int, ...]
    precision: int


def parse_version(text: str) -> Version | None:
    """The version at the start of `text`, or None.

    ``"2.4.49 (Unix)"`` -> (2, 4, 49); ``"1.0.1f-fips"`` -> (1, 0, 1, 6); ``"9.4.43.v20210629"`` ->
    (9, 4, 43); ``"2.4.49rc1"`` -> (2, 4, 49).
    """
    text = text.strip()
    match = _VERSION_START.match(text)
    if match is None:
        return None
    numbers = [int(part) for part in match.group(1).split(".")]
    letters = _LETTERS.match(text, match.end())
    suffix = [ord(letter) - ord("a") + 1 for letter in letters.group(1)] if letters else []
    return Version(parts=(*numbers, *suffix), precision=len(numbers))


def compare_versions(first: tuple[int, ...], second: tuple[int, ...]) -> int:
    """-1, 0 or 1 as `first` is below, equal to or above `second` (missing parts count as 0)."""
    length = max(len(first), len(second))
    a = first + (0,) * (length - len(first))
    b = second + (0,) * (length - len(second))
    return (a > b) - (a < b)


@dataclass(frozen=True, kw_only=True)
class VersionRange:
    """Affected versions: from `introduced` (inclusive) to `fixed` (exclusive) or `last_affected`."""

    introduced: Version
    fixed: Version | None = None
    last_affected: Version | None = None

    def verdict(self, version: Version) -> Verdict:
        """Whether `version` is in the range; undecided when it has too few parts to tell."""
        bounds = [
            b for b in (self.introduced, self.fixed, self.last_affected) if b is not None and any(b.parts)
        ]
        if all(version.precision >= bound.precision for bound in bounds):
            return "affected" if self._contains(version.parts, version.parts) else "not_affected"
        # A coarse version ("2.4") stands for every version below it ("2.4.0" up to "2.4.x"): affected
        # only if all of them are, not affected only if none is.
        lowest = version.parts[: version.precision]
        highest = (*lowest, 10**9)
        if self._contains(lowest, highest):
            return "affected"
        if self._overlaps(lowest, highest):
            return "undecided"
        return "not_affected"

    def _contains(self, lowest: tuple[int, ...], highest: tuple[int, ...]) -> bool:
        if compare_versions(lowest, self.introduced.parts) < 0:
            return False
        if self.fixed is not None:
            return compare_versions(highest, self.fixed.parts) < 0
        return self.last_affected is not None and compare_versions(highest, self.last_affected.parts) <= 0

    def _overlaps(self, lowest: tuple[int, ...], highest: tuple[int, ...]) -> bool:
        if compare_versions(highest, self.introduced.parts) < 0:
            return False
        if self.fixed is not None:
            return compare_versions(lowest, self.fixed.parts) < 0
        return self.last_affected is not None and compare_versions(lowest, self.last_affected.parts) <= 0


@dataclass(frozen=True, kw_only=True)
class Advisory:
    """One advisory of the table."""

    product: str
    id: str
    severity: Severity
    summary: str
    affected: tuple[VersionRange, ...]
    fixed_in: tuple[str, ...]
    reference: str
    condition: str | None = None

    def verdict(self, version: Version) -> Verdict:
        """Affected if any range says so; undecided if any range cannot tell."""
        verdicts = {affected.verdict(version) for affected in self.affected}
        if "affected" in verdicts:
            return "affected"
        return "undecided" if "undecided" in verdicts else "not_affected"


@dataclass(frozen=True, kw_only=True)
class Product:
    """A product of the table and the names its banners use (lower-case)."""

    key: str
    name: str
    banner_names: tuple[str, ...]
    source: str


@dataclass(frozen=True, kw_only=True)
class AdvisoryTable:
    """The bundled table: its date, its caveats, its products and advisories."""

    as_of: str
    severity_basis: str
    caveat: str
    products: dict[str, Product]
    advisories: tuple[Advisory, ...]

    def product_named(self, banner_name: str) -> Product | None:
        """The product a banner name (``Apache``, ``Microsoft-IIS``) stands for, if the table has it."""
        wanted = banner_name.strip().lower()
        return next((p for p in self.products.values() if wanted in p.banner_names), None)

    def for_product(self, key: str) -> list[Advisory]:
        """The advisories of one product."""
        return [advisory for advisory in self.advisories if advisory.product == key]


def parse_advisories(raw: dict[str, Any]) -> AdvisoryTable:
    """Build the table from its JSON form.

    Raises:
        ConfigurationError: A field is missing or malformed (a severity, a version, a product).
    """
    try:
        products = {
            key: Product(
                key=key,
                name=str(value["name"]),
                banner_names=tuple(str(name).lower() for name in value["banner_names"]),
                source=str(value["source"]),
            )
            for key, value in raw["products"].items()
        }
        advisories = tuple(_parse_advisory(entry, products) for entry in raw["advisories"])
        return AdvisoryTable(
            as_of=str(raw["as_of"]),
            severity_basis=str(raw["severity_basis"]),
            caveat=str(raw["caveat"]),
            products=products,
            advisories=advisories,
        )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ConfigurationError(f"the advisory table is malformed: {exc!r}") from exc


def _parse_advisory(entry: dict[str, Any], products: dict[str, Product]) -> Advisory:
    if entry["product"] not in products:
        raise ValueError(f"{entry['id']}: unknown product {entry['product']!r}")
    return Advisory(
        product=entry["product"],
        id=str(entry["id"]),
        severity=Severity(entry["severity"]),
        summary=str(entry["summary"]),
        affected=tuple(
            VersionRange(
                introduced=_required_version(item["introduced"]),
                fixed=_required_version(item["fixed"]) if "fixed" in item else None,
                last_affected=_required_version(item["last_affected"]) if "last_affected" in item else None,
            )
            for item in entry["affected"]
        ),
        fixed_in=tuple(str(version) for version in entry["fixed_in"]),
        reference=str(entry["reference"]),
        condition=entry.get("condition"),
    )


def _required_version(text: str) -> Version:
    version = parse_version(text)
    if version is None:
        raise ValueError(f"{text!r} is not a version")
    return version


@functools.cache
def load_advisories() -> AdvisoryTable:
    """The bundled table, read once (blocking: call it in a thread)."""
    source = resources.files("orchestrion.tools") / "data" / "advisories.json"
    return parse_advisories(json.loads(source.read_text(encoding="utf-8")))


class BannerAdvisoryArgs(ToolArgs):
    """Arguments of `BannerAdvisoryTool`."""

    path: str | None = Field(
        default=None,
        max_length=2000,
        pattern=r"^/([^/\s#][^\s#]*)?$",
        description="Path to read banners from (``/``); the target URL by default.",
    )


class BannerAdvisoryTool(Tool):
    """Version disclosure in banners and error pages, matched against a dated advisory table."""

    name: ClassVar[str] = "banner_advisories"
    description: ClassVar[str] = (
        "Read the Server, X-Powered-By and X-AspNet-Version headers and the default error page's "
        "version strings, report version disclosure, and match Apache httpd, nginx, OpenSSL, PHP, IIS, "
        "Tomcat and Jetty versions against a bundled, dated advisory table (CVE, severity, fixed-in). "
        "Matches are by version only: distributions backport fixes."
    )
    args_model: ClassVar[type[ToolArgs]] = BannerAdvisoryArgs

    async def execute(self, args: ToolArgs, ctx: ToolContext) -> ToolOutput:
        """Collect banners from the target page and a missing page, then match them."""
        if not isinstance(args, BannerAdvisoryArgs):
            raise ToolError(f"{self.name} expects BannerAdvisoryArgs", tool=self.name)
        policy, target = require_target(ctx, self.name)
        client = SiteClient(policy)
        url = site_url(target, args.path) if args.path else target.url
        chain = await client.follow(url, max_bytes=_MAX_BODY)
        responses = list(chain.hops)
        error_page: FetchResult | None = None
        try:
            error_page = await client.get(site_url(target, unknown_path()), max_bytes=_MAX_BODY)
            responses.append(error_page)
        except (ValidationError, ToolError):
            pass  # the banners of the page itself are still worth reporting
        table = await asyncio.to_thread(load_advisories)
        report = Report()
        sightings = _observe_banners(report, responses, error_page)
        matched, undecided = _match(report, table, sightings)
        return report.output(
            {
                "url": chain.final.url,
                "products": [
                    {
                        "name": name,
                        "version": version,
                        "product": getattr(table.product_named(name), "key", None),
                    }
                    for name, version in sightings
                ],
                "matched": matched,
                "undecided": undecided,
                "table_as_of": table.as_of,
            }
        )


def header_tokens(header: str, value: str) -> list[tuple[str, str]]:
    """(product, version) pairs a banner header names (``Apache/2.4.49 (Unix) OpenSSL/1.0.1f``)."""
    header = header.lower()
    if header in _VERSION_HEADERS and parse_version(value) is not None:
        return [(_VERSION_HEADERS[header], value.strip())]
    return [(m.group(1), m.group(2)) for m in _HEADER_TOKEN.finditer(value)]


def page_tokens(body: bytes) -> list[tuple[str, str]]:
    """(product, version) pairs of known servers named in an error page's text."""
    text = body.decode("utf-8", "replace")
    return list(dict.fromkeys((m.group(1), m.group(2)) for m in _PAGE_TOKEN.finditer(text)))


def _observe_banners(
    report: Report, responses: list[FetchResult], error_page: FetchResult | None
) -> dict[tuple[str, str], list[int]]:
    """Observe each distinct banner, find version disclosure; return where each product/version was seen."""
    sightings: dict[tuple[str, str], list[int]] = {}
    disclosures: dict[str, list[tuple[int, list[str]]]] = {}
    seen: set[tuple[str, str]] = set()
    for response in responses:
        for header in BANNER_HEADERS:
            for value in response.header_values(header):
                if (header, value) in seen:
                    continue
                seen.add((header, value))
                tokens = header_tokens(header, value)
                index = report.observe(
                    f"{header.title()} header from {response.url}: {value[:200]}",
                    {"header": header, "value": value[:500], "url": response.url, "versions": tokens},
                    location=response.url,
                )
                if tokens:
                    disclosures.setdefault(header, []).append((index, [f"{n}/{v}" for n, v in tokens]))
                for token in tokens:
                    sightings.setdefault(token, []).append(index)
    if error_page is not None and (tokens := page_tokens(error_page.body)):
        shown = ", ".join(f"{name}/{version}" for name, version in tokens)
        index = report.observe(
            f"Error page {error_page.url} ({error_page.status}) names {shown}",
            {"url": error_page.url, "status": error_page.status, "versions": tokens},
            location=error_page.url,
        )
        disclosures["error page"] = [(index, [f"{n}/{v}" for n, v in tokens])]
        for token in tokens:
            sightings.setdefault(token, []).append(index)
    for source, entries in disclosures.items():
        names = list(dict.fromkeys(name for _, shown in entries for name in shown))
        where = f"the {source.title()} header" if source != "error page" else "the default error page"
        report.find(
            f"{'Error page' if source == 'error page' else source.title() + ' header'} discloses versions: "
            f"{', '.join(names)}",
            Severity.LOW,
            description=f"{where.capitalize()} names exact software versions, which tells an attacker "
            "which known vulnerabilities to try (ASVS V14.3.3).",
            recommendation=_HIDE.get(source, "Remove version information from the header."),
            cite=[index for index, _ in entries],
        )
    return sightings


def _match(
    report: Report, table: AdvisoryTable, sightings: dict[tuple[str, str], list[int]]
) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    matched: list[dict[str, str]] = []
    undecided: list[dict[str, str]] = []
    for (name, version_text), cited in sightings.items():
        product = table.product_named(name)
        version = parse_version(version_text)
        if product is None or version is None:
            continue
        for advisory in table.for_product(product.key):
            verdict = advisory.verdict(version)
            record = {"product": product.key, "version": version_text, "advisory": advisory.id}
            if verdict == "undecided":
                undecided.append(record)
            elif verdict == "affected":
                matched.append(record)
                _report_advisory(report, table, product, version_text, advisory, cited)
    return matched, undecided


def _report_advisory(
    report: Report,
    table: AdvisoryTable,
    product: Product,
    version: str,
    advisory: Advisory,
    cited: list[int],
) -> None:
    end_of_life = advisory.id.startswith("EOL-")
    title = (
        f"{product.name} {version} is end of life"
        if end_of_life
        else f"{product.name} {version} is in the affected range of {advisory.id}"
    )
    condition = f" {advisory.condition}" if advisory.condition else ""
    report.find(
        title,
        advisory.severity,
        description=(
            f"{advisory.summary}{condition} Fixed in: {', '.join(advisory.fixed_in)}. Matched from the "
            f"version a banner shows: {table.caveat} Source: {advisory.reference} (bundled table as of "
            f"{table.as_of}; {product.source})."
        ),
        recommendation=(
            f"Upgrade {product.name} to {' / '.join(advisory.fixed_in)} or later, or confirm that the "
            "installed package carries the fix; then hide version banners."
        ),
        cite=cited,
    )
