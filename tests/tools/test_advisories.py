"""`banner_advisories` against real servers on 127.0.0.1, and the bundled advisory table."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from importlib import resources

import pytest

from orchestrion.domain.findings import Severity
from orchestrion.exceptions import ConfigurationError
from orchestrion.tools.advisories import (
    BannerAdvisoryTool,
    VersionRange,
    compare_versions,
    header_tokens,
    load_advisories,
    page_tokens,
    parse_advisories,
    parse_version,
)
from orchestrion.tools.base import ToolOutput
from orchestrion.tools.targets import TargetPolicy
from tests.fixtures.net import LocalHTTPServer, PolicyFactory, Route
from tests.fixtures.websec import LOCAL, CatchAllRoutes, run_tool, serve

HTML = [("Content-Type", "text/html")]


async def check(policy: TargetPolicy, target: str, **args: str) -> ToolOutput:
    return await run_tool(BannerAdvisoryTool(), policy, target, **args)


def site(headers: list[tuple[str, str]], error_page: bytes = b"not found") -> CatchAllRoutes:
    """A page with `headers`, and `error_page` as the 404 answer for every other path."""
    return CatchAllRoutes(
        {"/": Route(headers=[*HTML, *headers], body=b"<p>home</p>")},
        lambda _path: Route(status=404, headers=list(HTML), body=error_page),
    )


def by_title(output: ToolOutput) -> dict[str, Severity]:
    return {finding.title: finding.severity for finding in output.findings}


async def test_an_old_apache_with_openssl_and_php_matches_their_advisories(
    make_policy: PolicyFactory,
) -> None:
    routes = site(
        [("Server", "Apache/2.4.49 (Unix) OpenSSL/1.0.1f"), ("X-Powered-By", "PHP/7.3.10")],
        error_page=b"<h1>Not Found</h1><address>Apache/2.4.49 (Unix) Server at app.test Port 80</address>",
    )
    async with serve(routes) as server:
        output = await check(make_policy(LOCAL), server.url("/", host="app.test"))
    found = by_title(output)
    assert found["Server header discloses versions: Apache/2.4.49, OpenSSL/1.0.1f"] is Severity.LOW
    assert found["X-Powered-By header discloses versions: PHP/7.3.10"] is Severity.LOW
    assert found["Error page discloses versions: Apache/2.4.49"] is Severity.LOW
    assert found["Apache HTTP Server 2.4.49 is in the affected range of CVE-2021-41773"] is Severity.HIGH
    assert found["Apache HTTP Server 2.4.49 is in the affected range of CVE-2021-42013"] is Severity.CRITICAL
    assert found["OpenSSL 1.0.1f is in the affected range of CVE-2014-0160"] is Severity.HIGH
    assert found["OpenSSL 1.0.1f is end of life"] is Severity.MEDIUM
    assert found["PHP 7.3.10 is in the affected range of CVE-2019-11043"] is Severity.CRITICAL
    assert found["PHP 7.3.10 is end of life"] is Severity.MEDIUM
    assert "PHP 7.3.10 is in the affected range of CVE-2024-4577" not in found
    assert output.findings[0].severity is Severity.CRITICAL  # worst first
    matched = {(m["product"], m["advisory"]) for m in output.data["matched"]}
    assert ("openssl", "CVE-2014-0160") in matched and ("php", "CVE-2019-11043") in matched


async def test_advisory_findings_cite_every_banner_that_shows_the_version(make_policy: PolicyFactory) -> None:
    routes = site(
        [("Server", "Apache/2.4.49 (Unix)")],
        error_page=b"<address>Apache/2.4.49 (Unix) Server at app.test Port 80</address>",
    )
    async with serve(routes) as server:
        output = await check(make_policy(LOCAL), server.url("/", host="app.test"))
    finding = next(f for f in output.findings if "CVE-2021-41773" in f.title)
    cited = [output.observations[i].summary for i in finding.observation_indexes]
    assert cited[0] == f"Server header from {server.url('/', host='app.test')}: Apache/2.4.49 (Unix)"
    assert cited[1].startswith("Error page http://app.test:") and cited[1].endswith(
        "(404) names Apache/2.4.49"
    )
    assert (
        "backport" in finding.description
        and "https://nvd.nist.gov/vuln/detail/CVE-2021-41773" in finding.description
    )
    assert f"as of {load_advisories().as_of}" in finding.description
    assert finding.recommendation.startswith("Upgrade Apache HTTP Server to 2.4.50 or later")


@pytest.mark.parametrize(
    ("headers", "page", "expected"),
    [
        ([("Server", "nginx")], b"<hr><center>nginx/1.18.0</center>", ("nginx 1.18.0", "CVE-2021-23017")),
        (
            [("Server", "Apache-Coyote/1.1")],
            b"<h3>Apache Tomcat/9.0.30</h3>",
            ("Apache Tomcat 9.0.30", "CVE-2020-1938"),
        ),
        ([("Server", "Jetty(9.4.38.v20210224)")], b"", ("Eclipse Jetty 9.4.38.v20210224", "CVE-2021-28164")),
        ([("Server", "Microsoft-IIS/6.0")], b"", ("Microsoft IIS 6.0", "CVE-2017-7269")),
        ([("Server", "Microsoft-IIS/7.5")], b"", ("Microsoft IIS 7.5", "CVE-2015-1635")),
        (
            [],
            b"<p>Powered by Jetty:// 9.4.36.v20210114</p>",
            ("Eclipse Jetty 9.4.36.v20210114", "CVE-2023-26048"),
        ),
    ],
)
async def test_products_in_headers_and_error_pages(
    make_policy: PolicyFactory, headers: list[tuple[str, str]], page: bytes, expected: tuple[str, str]
) -> None:
    async with serve(site(headers, error_page=page)) as server:
        output = await check(make_policy(LOCAL), server.url("/", host="app.test"))
    product, advisory = expected
    assert f"{product} is in the affected range of {advisory}" in by_title(output)


async def test_banners_without_versions_are_observed_but_not_findings(make_policy: PolicyFactory) -> None:
    async with serve(site([("Server", "nginx"), ("X-Powered-By", "Express")])) as server:
        output = await check(make_policy(LOCAL), server.url("/", host="app.test"))
    assert output.findings == ()
    assert [o.summary.split(" from ")[0] for o in output.observations] == [
        "Server header",
        "X-Powered-By header",
    ]
    assert output.data["matched"] == []


async def test_a_coarse_version_is_undecided_not_a_finding(make_policy: PolicyFactory) -> None:
    async with serve(site([("Server", "Apache/2.4")])) as server:
        output = await check(make_policy(LOCAL), server.url("/", host="app.test"))
    assert by_title(output) == {"Server header discloses versions: Apache/2.4": Severity.LOW}
    undecided = {u["advisory"] for u in output.data["undecided"]}
    assert {"CVE-2021-41773", "CVE-2023-25690"} <= undecided


async def test_a_current_version_only_discloses(make_policy: PolicyFactory) -> None:
    async with serve(site([("Server", "nginx/1.27.3"), ("X-AspNet-Version", "4.0.30319")])) as server:
        output = await check(make_policy(LOCAL), server.url("/", host="app.test"))
    assert by_title(output) == {
        "Server header discloses versions: nginx/1.27.3": Severity.LOW,
        "X-Aspnet-Version header discloses versions: ASP.NET/4.0.30319": Severity.LOW,
    }
    assert output.data["products"] == [
        {"name": "nginx", "version": "1.27.3", "product": "nginx"},
        {"name": "ASP.NET", "version": "4.0.30319", "product": None},
    ]


async def test_banners_on_redirects_count_once(
    make_policy: PolicyFactory, http_server: LocalHTTPServer
) -> None:
    output = await check(make_policy(LOCAL), http_server.url("/redirect"))
    assert by_title(output) == {
        "Server header discloses versions: TestServer/1.0": Severity.LOW,
        "X-Powered-By header discloses versions: PHP/5.6.40": Severity.LOW,
        "PHP 5.6.40 is end of life": Severity.MEDIUM,
    }
    assert sum(1 for o in output.observations if o.data.get("header") == "server") == 1


# -- versions and the table -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "parts", "precision"),
    [
        ("2.4.49 (Unix)", (2, 4, 49), 3),
        ("1.0.1f-fips", (1, 0, 1, 6), 3),
        ("0.9.8za", (0, 9, 8, 26, 1), 3),
        ("9.4.43.v20210629", (9, 4, 43), 3),
        ("2.4.49rc1", (2, 4, 49), 3),
        ("v18.2", (18, 2), 2),
        ("10.0", (10, 0), 2),
    ],
)
def test_versions_parse_into_numeric_parts(text: str, parts: tuple[int, ...], precision: int) -> None:
    version = parse_version(text)
    assert version is not None and (version.parts, version.precision) == (parts, precision)


def test_version_comparison_and_ranges() -> None:
    assert parse_version("beta") is None
    assert compare_versions((2, 4), (2, 4, 0)) == 0
    assert compare_versions((1, 0, 1, 6), (1, 0, 1, 7)) == -1
    assert compare_versions((1, 0, 2), (1, 0, 1, 26)) == 1
    heartbleed = VersionRange(introduced=_v("1.0.1"), fixed=_v("1.0.1g"))
    assert [heartbleed.verdict(_v(text)) for text in ("1.0.1", "1.0.1f", "1.0.1g", "1.0.2", "1.0.0")] == [
        "affected",
        "affected",
        "not_affected",
        "not_affected",
        "not_affected",
    ]
    exact = VersionRange(introduced=_v("2.4.49"), last_affected=_v("2.4.50"))
    assert [
        exact.verdict(_v(text)) for text in ("2.4.48", "2.4.49", "2.4.50", "2.4.51", "2.4", "2.5", "2")
    ] == [
        "not_affected",
        "affected",
        "affected",
        "not_affected",
        "undecided",
        "not_affected",
        "undecided",
    ]
    end_of_life = VersionRange(introduced=_v("0"), fixed=_v("8.2.0"))
    assert [end_of_life.verdict(_v(text)) for text in ("7.4", "8", "8.2", "8.1.30", "9")] == [
        "affected",
        "undecided",
        "not_affected",
        "affected",
        "not_affected",
    ]


def _v(text: str):  # type: ignore[no-untyped-def]
    version = parse_version(text)
    assert version is not None
    return version


def test_the_bundled_table_is_dated_sourced_and_consistent() -> None:
    table = load_advisories()
    assert date.fromisoformat(table.as_of) <= datetime.now(UTC).date()
    assert "backport" in table.caveat and "NVD" in table.severity_basis
    ids = [advisory.id for advisory in table.advisories]
    assert len(ids) == len(set(ids)) and len(ids) >= 25
    assert {advisory.product for advisory in table.advisories} == {
        "apache_httpd",
        "nginx",
        "openssl",
        "php",
        "iis",
        "tomcat",
        "jetty",
    }
    for product in table.products.values():
        assert product.source.startswith("https://") and product.banner_names
    for advisory in table.advisories:
        assert advisory.reference.startswith("https://") and advisory.summary.endswith(".")
        assert advisory.id.startswith(("CVE-", "EOL-"))
        for fixed in advisory.fixed_in:
            version = parse_version(fixed)
            if version is not None:
                # A version the advisory names as fixed is never inside its own affected ranges.
                assert advisory.verdict(version) == "not_affected", (advisory.id, fixed)


def test_the_table_ships_as_package_data() -> None:
    source = resources.files("orchestrion.tools") / "data" / "advisories.json"
    assert json.loads(source.read_text(encoding="utf-8"))["as_of"] == load_advisories().as_of


def test_a_malformed_table_is_a_configuration_error() -> None:
    raw = json.loads((resources.files("orchestrion.tools") / "data" / "advisories.json").read_text())
    raw["advisories"][0]["severity"] = "apocalyptic"
    with pytest.raises(ConfigurationError, match=r"advisory table is malformed"):
        parse_advisories(raw)
    raw["advisories"][0]["severity"] = "high"
    raw["advisories"][0]["affected"] = [{"introduced": "not a version"}]
    with pytest.raises(ConfigurationError, match=r"not a version"):
        parse_advisories(raw)


def test_banner_tokens() -> None:
    assert header_tokens("Server", "Apache/2.4.57 (Debian) OpenSSL/3.0.11 mod_wsgi/4.9.4 Python/3.11") == [
        ("Apache", "2.4.57"),
        ("OpenSSL", "3.0.11"),
        ("mod_wsgi", "4.9.4"),
        ("Python", "3.11"),
    ]
    assert header_tokens("X-AspNet-Version", "4.0.30319") == [("ASP.NET", "4.0.30319")]
    assert header_tokens("Server", "cloudflare") == []
    assert page_tokens(b"<address>Apache/2.4.41 (Ubuntu) Server at x Port 80</address><i>PHP/8.1.2</i>") == [
        ("Apache", "2.4.41"),
        ("PHP", "8.1.2"),
    ]
