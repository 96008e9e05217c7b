"""The OSINT tools against a real DNS server and real HTTP(S) servers on 127.0.0.1.

`dns_records` asks the test DNS server (the policy's nameserver) about made-up ``*.test`` domains whose
records are good or bad on purpose (`tests.fixtures.osint.add_mail_zones`); `web_intel` reads a small
site served over HTTPS as ``app.test`` (or HTTP on 127.0.0.1). Every finding is checked against the
observations it cites.
"""

from __future__ import annotations

from typing import Any

import pytest

from orchestrion.domain.findings import Severity
from orchestrion.exceptions import TargetRefusedError, ToolError, ValidationError
from orchestrion.tools.base import Observation, ProposedFinding, ToolContext, ToolOutput
from orchestrion.tools.mailauth import is_dmarc, is_spf, parse_dmarc, parse_spf
from orchestrion.tools.osint import DnsRecordsTool, WebIntelTool
from orchestrion.tools.targets import TargetPolicy
from orchestrion.tools.webparse import parse_page, parse_security_txt, parse_sitemap, sensitive_paths
from tests.fixtures.dns import LocalDNSServer
from tests.fixtures.net import LocalHTTPServer, PolicyFactory, Route, ServerFactory, redirect
from tests.fixtures.osint import (
    HOME_PAGE,
    LEAKY_TXT_TOKEN,
    add_mail_zones,
    expired_security_txt,
    intel_site_routes,
    security_txt,
    valid_security_txt,
)

LOCAL = "127.0.0.1/32"


@pytest.fixture
def zones(dns_server: LocalDNSServer) -> LocalDNSServer:
    add_mail_zones(dns_server)
    return dns_server


def _ctx(policy: TargetPolicy | None, target: str | None) -> ToolContext:
    return ToolContext(task_id="t", step_id="s", target=target, targets=policy)


async def _dns(policy: TargetPolicy, target: str) -> ToolOutput:
    output, _ = await DnsRecordsTool().run({}, _ctx(policy, target))
    _assert_citations(output)
    return output


def _assert_citations(output: ToolOutput) -> None:
    for finding in output.findings:
        assert finding.observation_indexes, finding.title
        assert all(0 <= i < len(output.observations) for i in finding.observation_indexes), finding.title


def _finding(output: ToolOutput, fragment: str) -> ProposedFinding:
    matches = [f for f in output.findings if fragment in f.title]
    assert len(matches) == 1, [f.title for f in output.findings]
    return matches[0]


def _cited(output: ToolOutput, finding: ProposedFinding) -> list[Observation]:
    return [output.observations[i] for i in finding.observation_indexes]


def _observation(output: ToolOutput, location: str) -> Observation:
    matches = [o for o in output.observations if o.location == location]
    assert len(matches) == 1, [o.location for o in output.observations]
    return matches[0]


def _severities(output: ToolOutput) -> dict[str, Severity]:
    return {f.title: f.severity for f in output.findings}


# -- dns_records: records -------------------------------------------------------------------------


async def test_dns_records_observes_every_record_type_of_a_well_configured_domain(
    make_policy: PolicyFactory, zones: LocalDNSServer
) -> None:
    output = await _dns(make_policy(), "example.test")

    records = {
        o.data["type"]: o.data
        for o in output.observations
        if o.location == f"dns:example.test/{o.data.get('type')}"
    }
    assert set(records) == {"A", "AAAA", "MX", "TXT", "NS", "CAA", "SOA"}
    assert records["A"]["records"] == ["127.0.0.1"]
    assert records["AAAA"]["records"] == ["::1"]
    assert records["MX"]["records"] == ["10 mail.example.test", "20 backup.example.test"]
    assert records["NS"]["records"] == ["ns1.example.test.", "ns2.example.test."]
    assert records["SOA"]["status"] == "no_records"
    assert "v=spf1 ip4:127.0.0.1 -all" in records["TXT"]["records"]
    dmarc = _observation(output, "dns:_dmarc.example.test/TXT")
    assert dmarc.data["records"] == ["v=DMARC1; p=reject; rua=mailto:dmarc@example.test"]
    spf = next(o for o in output.observations if o.summary.startswith("SPF of example.test"))
    assert (spf.data["effective_all"], spf.data["dns_lookups"]) == ("-", 0)
    policy = next(o for o in output.observations if o.summary.startswith("DMARC for example.test"))
    assert (policy.data["applied_policy"], policy.data["rua"]) == ("reject", ["mailto:dmarc@example.test"])
    caa = next(o for o in output.observations if o.summary.startswith("CAA for example.test"))
    assert caa.data["tags"] == {"issue": ["letsencrypt.org"], "iodef": ["mailto:security@example.test"]}
    # SPF, DMARC and CAA are right; the only problem is the backup exchanger that does not exist.
    assert [f.title for f in output.findings] == [
        "MX records of example.test point to names that do not resolve"
    ]
    assert output.data["domain"] == "example.test"
    assert output.data["resolver"] == "configured nameservers"
    assert zones.nameserver not in repr(output)


async def test_dns_records_asks_the_policy_nameserver_and_never_connects_to_the_target(
    make_policy: PolicyFactory, zones: LocalDNSServer
) -> None:
    # No allowlist at all: the records are the resolver's answers, not the target's.
    await _dns(make_policy(), "https://shop.example.test:8443/some/path")

    assert zones.count("shop.example.test", "MX") == 1
    assert zones.count("_dmarc.shop.example.test", "TXT") == 1


async def test_mx_pointing_to_a_name_that_does_not_resolve_is_low(
    make_policy: PolicyFactory, zones: LocalDNSServer
) -> None:
    output = await _dns(make_policy(), "nospf.test")

    finding = _finding(output, "point to names that do not resolve")
    assert finding.severity is Severity.LOW
    assert "ghost.nospf.test" in finding.description
    assert "mail.example.test" not in finding.description
    cited = _cited(output, finding)
    assert cited[0].location == "dns:nospf.test/MX"
    assert [o.data["exchange"] for o in cited[1:]] == ["ghost.nospf.test"]
    assert cited[1].data["addresses"] == []
    alive = next(o for o in output.observations if o.data.get("exchange") == "mail.example.test")
    assert alive.data["addresses"] == ["127.0.0.1"]


async def test_a_null_mx_means_no_mail_and_needs_no_spf(
    make_policy: PolicyFactory, zones: LocalDNSServer
) -> None:
    output = await _dns(make_policy(), "nullmx.test")

    assert any(o.data.get("null_mx") for o in output.observations)
    assert output.findings == ()


async def test_a_failed_query_proves_nothing(make_policy: PolicyFactory, zones: LocalDNSServer) -> None:
    output = await _dns(make_policy(), "brokenmx.test")

    mx = _observation(output, "dns:brokenmx.test/MX")
    assert mx.data["status"] == "error"
    assert "query failed" in mx.summary
    assert not any("MX" in f.title or "receives mail" in f.title for f in output.findings)
    assert zones.errors  # the malformed zone entry was answered with SERVFAIL


async def test_txt_values_are_redacted(make_policy: PolicyFactory, zones: LocalDNSServer) -> None:
    output = await _dns(make_policy(), "nospf.test")

    assert LEAKY_TXT_TOKEN not in repr(output)
    txt = _observation(output, "dns:nospf.test/TXT")
    assert "site-verification=abc" in txt.data["records"]
    assert any(record.startswith("github-token=ghp_…(") for record in txt.data["records"])


async def test_a_domain_that_does_not_exist_gives_no_findings(
    make_policy: PolicyFactory, zones: LocalDNSServer
) -> None:
    output = await _dns(make_policy(), "missing.test")

    assert output.findings == ()
    assert output.observations[-1].summary == "missing.test does not exist (NXDOMAIN)"
    assert output.data["exists"] is False


# -- dns_records: SPF -----------------------------------------------------------------------------


async def test_spf_plus_all_is_high(make_policy: PolicyFactory, zones: LocalDNSServer) -> None:
    output = await _dns(make_policy(), "plusall.test")

    finding = _finding(output, "(+all)")
    assert finding.severity is Severity.HIGH
    txt, spf = _cited(output, finding)
    assert txt.location == "dns:plusall.test/TXT"
    assert spf.data["all"] == "+"
    assert spf.data["terms"] == ["a", "mx", "all"]
    assert spf.data["dns_lookups"] == 2


async def test_spf_question_mark_all_is_medium(make_policy: PolicyFactory, zones: LocalDNSServer) -> None:
    output = await _dns(make_policy(), "neutral.test")

    finding = _finding(output, "neutral about unlisted senders (?all)")
    assert finding.severity is Severity.MEDIUM
    assert _cited(output, finding)[1].data["effective_all"] == "?"


async def test_spf_redirect_is_followed_to_the_deciding_all(
    make_policy: PolicyFactory, zones: LocalDNSServer
) -> None:
    output = await _dns(make_policy(), "redirected.test")

    finding = _finding(output, "neutral about unlisted senders")
    assert finding.severity is Severity.MEDIUM
    spf = _cited(output, finding)[1]
    assert (spf.data["all"], spf.data["redirect"], spf.data["effective_all"]) == (
        None,
        "_spf.redirected.test",
        "?",
    )
    assert spf.data["dns_lookups"] == 1


async def test_missing_spf_on_a_domain_with_mx_is_medium(
    make_policy: PolicyFactory, zones: LocalDNSServer
) -> None:
    output = await _dns(make_policy(), "nospf.test")

    finding = _finding(output, "No SPF record")
    assert finding.severity is Severity.MEDIUM
    txt, mx, verdict = _cited(output, finding)
    assert (txt.location, mx.location) == ("dns:nospf.test/TXT", "dns:nospf.test/MX")
    assert (verdict.data["spf"], verdict.data["receives_mail"]) == (None, True)


async def test_spf_lookups_are_counted_through_nested_includes(
    make_policy: PolicyFactory, zones: LocalDNSServer
) -> None:
    output = await _dns(make_policy(), "lookups.test")

    finding = _finding(output, "more than 10 DNS lookups")
    assert finding.severity is Severity.LOW
    spf = _cited(output, finding)[1]
    # Three includes at the top; the rest is in the records they include.
    assert spf.data["lookup_terms"] == 3
    assert spf.data["dns_lookups"] > 10
    assert spf.data["lookups_by_domain"]["_spf1.lookups.test"] == 4
    assert "at least" in finding.description
    assert _severities(output) == {finding.title: Severity.LOW}


async def test_spf_includes_without_spf_and_macros_are_reported(
    make_policy: PolicyFactory, zones: LocalDNSServer
) -> None:
    output = await _dns(make_policy(), "voidinclude.test")

    spf = next(o for o in output.observations if o.summary.startswith("SPF of voidinclude.test"))
    assert spf.data["targets_without_spf"] == ["nothing.voidinclude.test"]
    # The macro's domain depends on the sender, so the count is only a lower bound.
    assert (spf.data["dns_lookups"], spf.data["dns_lookups_lower_bound"]) == (2, True)
    assert "at least 2 DNS lookups" in spf.summary
    assert zones.count("nothing.voidinclude.test", "TXT") == 1


async def test_several_spf_records_are_medium(make_policy: PolicyFactory, zones: LocalDNSServer) -> None:
    output = await _dns(make_policy(), "multispf.test")

    finding = _finding(output, "publishes 2 SPF records")
    assert finding.severity is Severity.MEDIUM
    assert _cited(output, finding)[1].data["spf_records"] == 2


# -- dns_records: DMARC and CAA -------------------------------------------------------------------


async def test_dmarc_p_none_is_low_and_reports_its_addresses(
    make_policy: PolicyFactory, zones: LocalDNSServer
) -> None:
    output = await _dns(make_policy(), "plusall.test")

    finding = _finding(output, "does not act on spoofed mail (p=none)")
    assert finding.severity is Severity.LOW
    record, verdict = _cited(output, finding)
    assert record.location == "dns:_dmarc.plusall.test/TXT"
    assert verdict.data["rua"] == ["mailto:agg@plusall.test"]
    assert verdict.data["ruf"] == ["mailto:forensic@plusall.test"]


async def test_missing_dmarc_is_medium(make_policy: PolicyFactory, zones: LocalDNSServer) -> None:
    output = await _dns(make_policy(), "neutral.test")

    finding = _finding(output, "No usable DMARC record")
    assert finding.severity is Severity.MEDIUM
    assert [o.data["status"] for o in _cited(output, finding)] == ["nxdomain"]


async def test_dmarc_and_caa_are_inherited_from_the_parent_domain(
    make_policy: PolicyFactory, zones: LocalDNSServer
) -> None:
    output = await _dns(make_policy(), "shop.example.test")

    dmarc = next(o for o in output.observations if o.summary.startswith("DMARC for shop.example.test"))
    assert (dmarc.data["source"], dmarc.data["inherited"], dmarc.data["applied_policy"]) == (
        "_dmarc.example.test",
        True,
        "reject",
    )
    caa = next(o for o in output.observations if o.summary.startswith("CAA for shop.example.test"))
    assert caa.data["source"] == "example.test"
    assert output.findings == ()


async def test_missing_caa_is_info_and_cites_every_name_asked(
    make_policy: PolicyFactory, zones: LocalDNSServer
) -> None:
    output = await _dns(make_policy(), "nospf.test")

    finding = _finding(output, "No CAA record")
    assert finding.severity is Severity.INFO
    assert [o.location for o in _cited(output, finding)] == ["dns:nospf.test/CAA"]


async def test_caa_present_gives_no_finding(make_policy: PolicyFactory, zones: LocalDNSServer) -> None:
    output = await _dns(make_policy(), "neutral.test")

    assert not any("CAA" in f.title for f in output.findings)
    caa = next(o for o in output.observations if o.summary.startswith("CAA for neutral.test"))
    assert caa.data["tags"]["issue"] == ["letsencrypt.org"]


# -- dns_records: refusals ------------------------------------------------------------------------


async def test_dns_records_needs_a_policy_and_a_target(make_policy: PolicyFactory) -> None:
    with pytest.raises(ToolError, match="needs network access"):
        await DnsRecordsTool().run({}, _ctx(None, "example.test"))
    with pytest.raises(ToolError, match="needs a target"):
        await DnsRecordsTool().run({}, _ctx(make_policy(), None))


@pytest.mark.parametrize(
    "target", ["127.0.0.1", "ftp://example.test/", "user@example.test", "bad_host..test"]
)
async def test_dns_records_refuses_targets_that_are_not_domains(
    make_policy: PolicyFactory, zones: LocalDNSServer, target: str
) -> None:
    with pytest.raises(ValidationError):
        await DnsRecordsTool().run({}, _ctx(make_policy(), target))
    assert zones.queries == []


async def test_dns_records_fails_when_the_resolver_never_answers(make_policy: PolicyFactory) -> None:
    policy = make_policy(nameservers=("127.0.0.1:9",), connect_timeout=0.3)
    with pytest.raises(ToolError, match="did not answer"):
        await DnsRecordsTool().run({}, _ctx(policy, "example.test"))


async def test_dns_records_takes_no_arguments(make_policy: PolicyFactory) -> None:
    with pytest.raises(ToolError, match="invalid arguments"):
        await DnsRecordsTool().run({"domain": "x.test"}, _ctx(make_policy(), "example.test"))


# -- mail authentication parsing ------------------------------------------------------------------


def test_spf_parsing_reads_qualifiers_mechanisms_and_modifiers() -> None:
    record = parse_spf(
        "v=spf1 ip4:192.0.2.0/24 a/24 -mx:mail.test ~include:_spf.test exp=x.test redirect=r.test foo"
    )
    assert [t.text for t in record.terms] == [
        "ip4:192.0.2.0/24",
        "a/24",
        "-mx:mail.test",
        "~include:_spf.test",
        "exp=x.test",
        "redirect=r.test",
        "foo",
    ]
    assert (record.all_qualifier, record.redirect, record.includes) == (None, "r.test", ("_spf.test",))
    assert record.lookup_terms == 4  # a, mx, include, redirect
    assert record.unknown == ("foo",)
    assert is_spf("v=spf1") and is_spf("V=SPF1 -all") and not is_spf("v=spf10 -all")


def test_dmarc_parsing_reads_tags() -> None:
    record = parse_dmarc("v=DMARC1;p=Quarantine; sp=reject; pct=50; rua=mailto:a@x.test,mailto:b@x.test")
    assert (record.policy, record.subdomain_policy, record.pct) == ("quarantine", "reject", 50)
    assert record.rua == ("mailto:a@x.test", "mailto:b@x.test")
    assert record.ruf == ()
    assert is_dmarc("v = DMARC1; p=none") and not is_dmarc("v=spf1 -all")


# -- web_intel ------------------------------------------------------------------------------------


async def _acme(server_factory: ServerFactory, *, security: bytes | None, **kwargs: Any) -> LocalHTTPServer:
    server = await server_factory(routes={})
    server.routes.update(
        intel_site_routes(server.url("/", host="app.test").rstrip("/"), security=security, **kwargs)
    )
    return server


async def _intel(policy: TargetPolicy, target: str, **args: Any) -> ToolOutput:
    output, _ = await WebIntelTool().run(args, _ctx(policy, target))
    _assert_citations(output)
    return output


async def test_web_intel_reads_the_home_page_metadata(
    make_policy: PolicyFactory, server_factory: ServerFactory
) -> None:
    server = await _acme(server_factory, security=valid_security_txt())
    url = server.url("/", host="app.test")
    output = await _intel(make_policy(LOCAL), url)

    meta = output.observations[0]
    assert meta.location == url
    assert meta.data["status"] == 200
    assert meta.data["title"] == "Acme Widgets"
    assert meta.data["description"] == "Widgets for everyone"
    assert meta.data["generators"] == ["WordPress 6.4.2"]
    assert meta.data["canonical"] == server.url("/home", host="app.test")
    assert meta.data["open_graph"] == {
        "og:title": "Acme Widgets",
        "og:type": "website",
        "og:image": "https://cdn.acme.test/og.png",
    }
    finding = _finding(output, "generator meta tag")
    assert finding.severity is Severity.LOW
    assert _cited(output, finding) == [meta]
    assert "WordPress 6.4.2" in finding.description
    # Every request went to the checked address with the site's name, over TLS with SNI.
    assert {r.server_name for r in server.requests} == {"app.test"}


async def test_web_intel_counts_links_and_external_domains(
    make_policy: PolicyFactory, server_factory: ServerFactory
) -> None:
    server = await _acme(server_factory, security=valid_security_txt())
    output = await _intel(make_policy(LOCAL), server.url("/", host="app.test"))

    links = next(o for o in output.observations if "links on" in o.summary)
    assert (links.data["links"], links.data["internal"], links.data["external"]) == (6, 3, 3)
    assert links.data["external_domains"] == {"github.com": 2, "twitter.com": 1}


async def test_web_intel_lists_published_emails_as_public_data(
    make_policy: PolicyFactory, server_factory: ServerFactory
) -> None:
    server = await _acme(server_factory, security=valid_security_txt())
    output = await _intel(make_policy(LOCAL), server.url("/", host="app.test"))

    emails = next(o for o in output.observations if "e-mail address" in o.summary)
    # Deduplicated and lower-cased; mailto: included; scripts and "logo@2x.png" are not addresses.
    assert emails.data["emails"] == ["sales@acme.test", "support@acme.test"]
    assert "public data" in emails.summary
    assert not any("mail" in f.title.lower() for f in output.findings)


async def test_web_intel_hints_technologies_without_reading_cookie_values(
    make_policy: PolicyFactory, server_factory: ServerFactory
) -> None:
    server = await _acme(server_factory, security=valid_security_txt())
    output = await _intel(make_policy(LOCAL), server.url("/", host="app.test"))

    tech = next(o for o in output.observations if o.summary.startswith("Technologies hinted"))
    found = {t["technology"]: t["evidence"] for t in tech.data["technologies"]}
    assert found["nginx/1.18.0"] == "header server: nginx/1.18.0"
    assert found["PHP/8.1.2"] == "header x-powered-by: PHP/8.1.2"
    assert found["PHP"] == "cookie PHPSESSID"
    assert found["WordPress 6.4.2"] == "meta generator"
    assert found["WordPress"].startswith("resource ")
    assert "jQuery 3.6.0" in found
    assert "s3cr3tsessionvalue" not in repr(output)


async def test_web_intel_flags_sensitive_robots_paths_and_follows_the_declared_sitemap(
    make_policy: PolicyFactory, server_factory: ServerFactory
) -> None:
    server = await _acme(server_factory, security=valid_security_txt(), sitemap_urls=3)
    output = await _intel(make_policy(LOCAL), server.url("/", host="app.test"))

    finding = _finding(output, "points at sensitive-looking paths")
    assert finding.severity is Severity.INFO
    (robots,) = _cited(output, finding)
    assert robots.location == server.url("/robots.txt", host="app.test")
    assert [hit["path"] for hit in robots.data["sensitive_paths"]] == [
        "/admin/",
        "/backup/",
        "/private/reports",
    ]
    assert robots.data["disallow"] == ["/admin/", "/backup/", "/private/reports", "/search"]
    sitemap = next(o for o in output.observations if o.summary.startswith("Sitemap "))
    # The same-origin sitemap robots.txt declares, not the one on another host, nor /sitemap.xml.
    assert sitemap.location == server.url("/custom-sitemap.xml", host="app.test")
    assert sitemap.data["count"] == 3
    assert sitemap.data["sample"][0] == server.url("/page/0?a=1&b=2", host="app.test")
    assert "/sitemap.xml" not in [r.path for r in server.requests]


async def test_valid_security_txt_gives_no_finding(
    make_policy: PolicyFactory, server_factory: ServerFactory
) -> None:
    server = await _acme(server_factory, security=valid_security_txt())
    output = await _intel(make_policy(LOCAL), server.url("/", host="app.test"))

    security = next(o for o in output.observations if o.summary.startswith("security.txt at"))
    assert security.data["present"] is True
    assert security.data["contact"] == ["mailto:security@acme.test"]
    assert security.data["expired"] is False
    assert not any("security.txt" in f.title for f in output.findings)
    site = f"https://app.test:{server.port}"
    assert _severities(output) == {
        f"{site} discloses its software version in a generator meta tag": Severity.LOW,
        f"robots.txt of {site} points at sensitive-looking paths": Severity.INFO,
    }


async def test_expired_security_txt_is_low(make_policy: PolicyFactory, server_factory: ServerFactory) -> None:
    server = await _acme(server_factory, security=expired_security_txt())
    output = await _intel(make_policy(LOCAL), server.url("/", host="app.test"))

    finding = _finding(output, "security.txt of")
    assert finding.title.endswith("has expired")
    assert finding.severity is Severity.LOW
    (cited,) = _cited(output, finding)
    assert cited.data["expired"] is True
    assert cited.location == server.url("/.well-known/security.txt", host="app.test")


async def test_missing_security_txt_is_low(make_policy: PolicyFactory, server_factory: ServerFactory) -> None:
    server = await _acme(server_factory, security=None)
    output = await _intel(make_policy(LOCAL), server.url("/", host="app.test"))

    finding = _finding(output, "publishes no security.txt")
    assert finding.severity is Severity.LOW
    (cited,) = _cited(output, finding)
    assert (cited.data["status"], cited.data["present"]) == (404, False)


async def test_security_txt_served_as_an_html_page_counts_as_missing(
    make_policy: PolicyFactory, server_factory: ServerFactory
) -> None:
    server = await _acme(server_factory, security=None)
    server.routes["/.well-known/security.txt"] = Route(
        headers=[("Content-Type", "text/html")], body=HOME_PAGE
    )
    output = await _intel(make_policy(LOCAL), server.url("/", host="app.test"))

    assert _finding(output, "publishes no security.txt").severity is Severity.LOW


async def test_security_txt_without_expires_is_info(
    make_policy: PolicyFactory, server_factory: ServerFactory
) -> None:
    server = await _acme(server_factory, security=security_txt(expires=None))
    output = await _intel(make_policy(LOCAL), server.url("/", host="app.test"))

    finding = _finding(output, "no valid Expires field")
    assert finding.severity is Severity.INFO
    assert _cited(output, finding)[0].data["expires"] is None


async def test_web_intel_refuses_a_target_that_is_not_allowed(
    make_policy: PolicyFactory, server_factory: ServerFactory
) -> None:
    server = await _acme(server_factory, security=valid_security_txt())
    with pytest.raises(TargetRefusedError, match="loopback"):
        await _intel(make_policy(), server.url("/", host="app.test"))
    assert server.requests == []


async def test_web_intel_needs_a_policy_and_a_target(make_policy: PolicyFactory) -> None:
    with pytest.raises(ToolError, match="needs network access"):
        await WebIntelTool().run({}, _ctx(None, "app.test"))
    with pytest.raises(ToolError, match="needs a target"):
        await WebIntelTool().run({}, _ctx(make_policy(LOCAL), ""))
    with pytest.raises(ValidationError):
        await WebIntelTool().run({}, _ctx(make_policy(LOCAL), "ftp://app.test/"))


async def test_a_refused_redirect_of_an_extra_file_is_recorded_not_fatal(
    make_policy: PolicyFactory, http_server: LocalHTTPServer
) -> None:
    http_server.routes["/robots.txt"] = redirect("http://10.0.0.1/robots.txt")
    output = await _intel(make_policy(LOCAL), http_server.url("/"))

    robots = _observation(output, http_server.url("/robots.txt"))
    assert robots.summary.startswith("No robots.txt")
    assert "10.0.0.1" in robots.data["error"]
    assert output.data["status"] == 200


async def test_an_extra_file_that_never_answers_is_recorded(
    make_policy: PolicyFactory, http_server: LocalHTTPServer
) -> None:
    http_server.routes["/.well-known/security.txt"] = Route(hang=True)
    output = await _intel(make_policy(LOCAL, read_timeout=0.3), http_server.url("/"))

    security = _observation(output, http_server.url("/.well-known/security.txt"))
    assert security.data["present"] is False
    assert "did not answer" in security.data["error"]
    # Nothing is known about the file, so nothing is concluded.
    assert not any("security.txt" in f.title for f in output.findings)


async def test_web_intel_respects_the_body_cap(
    make_policy: PolicyFactory, http_server: LocalHTTPServer
) -> None:
    entries = "".join(f"<url><loc>http://127.0.0.1/p/{n}</loc></url>" for n in range(500))
    http_server.routes["/sitemap.xml"] = Route(body=f"<urlset>{entries}</urlset>".encode())
    output = await _intel(make_policy(LOCAL, max_response_bytes=4096), http_server.url("/"))

    sitemap = next(o for o in output.observations if o.summary.startswith("Sitemap "))
    assert sitemap.data["truncated"] is True
    assert sitemap.data["bytes"] == 4096
    assert 0 < sitemap.data["count"] < 500
    assert "at least" in sitemap.summary


async def test_a_target_without_a_scheme_falls_back_to_http(
    make_policy: PolicyFactory, http_server: LocalHTTPServer
) -> None:
    output = await _intel(make_policy(LOCAL, connect_timeout=0.5), f"127.0.0.1:{http_server.port}")

    assert output.data["page"] == http_server.url("/")
    assert output.data["site"] == f"http://127.0.0.1:{http_server.port}"
    assert output.observations[0].data["title"] == "test"


# -- web parsing ----------------------------------------------------------------------------------


def test_page_parsing_tolerates_broken_markup() -> None:
    page = parse_page("<title>Half<p>open <a href='/x'>x<a href=mailto:a@b.test,c@d.test>", "https://s.test/")
    assert page.links == ("https://s.test/x",)
    assert page.emails == ("a@b.test", "c@d.test")


def test_sitemap_parsing_reads_indexes_and_rejects_html() -> None:
    index = parse_sitemap(
        "<sitemapindex><sitemap><loc><![CDATA[https://s.test/a.xml]]></loc></sitemap></sitemapindex>"
    )
    assert index is not None and index.is_index and index.urls == ("https://s.test/a.xml",)
    assert parse_sitemap("<html><body>not found</body></html>") is None


def test_security_txt_parsing_reads_signed_files() -> None:
    text = (
        "-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\nContact: https://s.test/report\n"
        "Expires: 2031-01-01T00:00:00+02:00\n-----BEGIN PGP SIGNATURE-----\nContact: forged\n"
    )
    parsed = parse_security_txt(text)
    assert parsed.signed
    assert parsed.values("contact") == ["https://s.test/report"]
    assert parsed.expires_at is not None and parsed.expires_at.utcoffset() is not None


def test_sensitive_paths_name_what_matched() -> None:
    assert sensitive_paths(["/wp-admin/", "/search", "/%2Egit/"]) == [
        {"path": "/wp-admin/", "matched": "admin"},
        {"path": "/%2Egit/", "matched": ".git"},
    ]
