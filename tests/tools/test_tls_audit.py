"""`tls_audit` against real HTTPS servers on 127.0.0.1 with test-CA certificates."""

from __future__ import annotations

from typing import Any

import pytest

from orchestrion.domain.findings import Severity
from orchestrion.exceptions import ToolError
from orchestrion.tools import tlsprobe
from orchestrion.tools.base import ToolOutput
from orchestrion.tools.tls_audit import TLSAuditTool
from tests.fixtures.net import CertificateSet, LocalHTTPServer, PolicyFactory, ServerFactory, redirect
from tests.fixtures.websec import (
    LOCAL,
    legacy_context,
    run_tool,
    serve,
    short_lived_context,
    weak_certificate,
)


async def audit(policy: Any, target: str, **args: Any) -> ToolOutput:
    return await run_tool(TLSAuditTool(), policy, target, **args)


def titles(output: ToolOutput) -> dict[str, Severity]:
    return {finding.title: finding.severity for finding in output.findings}


def assert_citations_are_valid(output: ToolOutput) -> None:
    for finding in output.findings:
        assert finding.observation_indexes, finding.title
        assert all(index < len(output.observations) for index in finding.observation_indexes)


async def test_a_valid_modern_endpoint_has_no_findings(
    make_policy: PolicyFactory, https_server: LocalHTTPServer
) -> None:
    output = await audit(make_policy(LOCAL), https_server.url("/", host="app.test"))
    assert output.findings == ()
    handshake, leaf = output.observations[0], output.observations[1]
    assert "chain verifies" in handshake.summary and "certificate covers app.test" in handshake.summary
    assert leaf.data["role"] == "leaf" and "app.test" in leaf.data["san_dns"]
    assert output.data["chain_verified"] is True and output.data["hostname_matches"] is True
    assert output.data["versions"]["TLSv1.2"] == "accepted"
    assert output.data["versions"]["TLSv1.3"] == "accepted"
    assert output.data["versions"]["TLSv1"] in ("refused", "not_testable_locally")


async def test_an_expired_certificate_is_high_and_not_reported_twice(
    make_policy: PolicyFactory, server_factory: ServerFactory
) -> None:
    server = await server_factory(kind="expired")
    output = await audit(make_policy(LOCAL), server.url("/", host="app.test"), check_versions=False)
    (finding,) = output.findings
    assert finding.severity is Severity.HIGH and finding.title.startswith(
        f"Certificate of app.test:{server.port} expired"
    )
    assert "chain does not verify (certificate has expired)" in output.observations[0].summary
    assert_citations_are_valid(output)
    assert "versions" not in output.data


async def test_a_wrong_host_certificate_is_high(
    make_policy: PolicyFactory, server_factory: ServerFactory
) -> None:
    server = await server_factory(kind="wrong_host")
    output = await audit(make_policy(LOCAL), server.url("/", host="app.test"), check_versions=False)
    (finding,) = output.findings
    assert finding.severity is Severity.HIGH
    assert finding.title == f"Certificate of app.test:{server.port} does not cover app.test"
    assert "wrong.example" in finding.description
    assert_citations_are_valid(output)


async def test_an_untrusted_chain_is_high_with_openssls_reason(
    make_policy: PolicyFactory, https_server: LocalHTTPServer
) -> None:
    output = await audit(
        make_policy(LOCAL, ca_pem=None), https_server.url("/", host="app.test"), check_versions=False
    )
    (finding,) = output.findings
    assert finding.severity is Severity.HIGH
    assert finding.title.endswith("does not verify: unable to get local issuer certificate")
    assert_citations_are_valid(output)


@pytest.mark.parametrize(("days", "severity"), [(10.5, Severity.MEDIUM), (20.5, Severity.LOW), (45, None)])
async def test_expiry_soon_is_medium_under_14_days_and_low_under_30(
    make_policy: PolicyFactory, certs: CertificateSet, days: float, severity: Severity | None
) -> None:
    async with serve({}, context=short_lived_context(certs, days)) as server:
        output = await audit(make_policy(LOCAL), server.url("/", host="app.test"), check_versions=False)
    found = titles(output)
    if severity is None:
        assert found == {}
    else:
        assert found == {
            f"Certificate of app.test:{server.port} expires in {int(days)} day(s)" + _until(output): severity
        }


def _until(output: ToolOutput) -> str:
    leaf = output.observations[1].data
    return f" ({leaf['not_after'][:10]} {leaf['not_after'][11:16]} UTC)"


async def test_a_certificate_not_yet_valid_is_high(make_policy: PolicyFactory, certs: CertificateSet) -> None:
    async with serve({}, context=short_lived_context(certs, 90, starts_in_days=2)) as server:
        output = await audit(make_policy(LOCAL), server.url("/", host="app.test"), check_versions=False)
    titles_found = titles(output)
    assert any(
        t.startswith(f"Certificate of app.test:{server.port} is not valid before") for t in titles_found
    )
    assert all(severity is Severity.HIGH for severity in titles_found.values())


async def test_a_weak_key_and_a_sha1_signature_are_medium(make_policy: PolicyFactory) -> None:
    weak = weak_certificate()
    async with serve({}, context=weak.server_context()) as server:
        output = await audit(
            make_policy(LOCAL, ca_pem=weak.ca_pem), server.url("/", host="app.test"), check_versions=False
        )
    found = titles(output)
    where = f"app.test:{server.port}"
    assert found[f"Weak RSA key (1024 bits) in the certificate of {where}"] is Severity.MEDIUM
    assert found[f"Certificate of {where} is signed with SHA1"] is Severity.MEDIUM
    leaf = output.observations[1].data
    assert (leaf["key_type"], leaf["key_bits"], leaf["signature_hash"]) == ("RSA", 1024, "sha1")
    assert_citations_are_valid(output)


async def test_tls_1_0_accepted_is_medium_when_this_machine_can_test_it(
    make_policy: PolicyFactory, certs: CertificateSet
) -> None:
    async with serve({}, context=legacy_context(certs)) as server:
        output = await audit(make_policy(LOCAL), server.url("/", host="app.test"))
    versions = output.data["versions"]
    if not tlsprobe.locally_testable("TLSv1"):
        assert versions["TLSv1"] == "not_testable_locally"
        assert not any("deprecated" in title for title in titles(output))
        return
    assert versions == {"TLSv1": "accepted", "TLSv1.1": "refused", "TLSv1.2": "refused", "TLSv1.3": "refused"}
    deprecated = next(f for f in output.findings if "deprecated" in f.title)
    assert deprecated.severity is Severity.MEDIUM
    assert deprecated.title == f"app.test:{server.port} accepts deprecated TLSv1"
    cited = [output.observations[i].summary for i in deprecated.observation_indexes]
    assert cited == [
        f"app.test:{server.port} accepts TLSv1 (cipher {output.observations[i].data['cipher']})"
        for i in deprecated.observation_indexes
    ]
    assert output.data["version"] == "TLSv1"


async def test_untestable_versions_are_observations_never_findings(
    make_policy: PolicyFactory, certs: CertificateSet, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tlsprobe, "locally_testable", lambda version: version not in ("TLSv1", "TLSv1.1"))
    async with serve({}, context=legacy_context(certs)) as server:
        output = await audit(make_policy(LOCAL), server.url("/", host="app.test"))
    assert output.data["versions"]["TLSv1"] == "not_testable_locally"
    untested = [o for o in output.observations if o.data.get("status") == "not_testable_locally"]
    assert [o.data["version"] for o in untested] == ["TLSv1", "TLSv1.1"]
    assert all("was not tested" in o.summary and "nothing is known" in o.summary for o in untested)
    assert not any("deprecated" in title for title in titles(output))


async def test_a_port_without_tls_is_an_info_observation(
    make_policy: PolicyFactory, http_server: LocalHTTPServer
) -> None:
    output = await audit(make_policy(LOCAL, connect_timeout=0.5), f"https://127.0.0.1:{http_server.port}/")
    (finding,) = output.findings
    assert finding.severity is Severity.INFO and finding.title == f"No TLS on 127.0.0.1:{http_server.port}"
    assert "completes no TLS handshake" in output.observations[0].summary
    assert output.data["tls"] is False


async def test_a_closed_port_is_a_tool_error(make_policy: PolicyFactory) -> None:
    async with serve({}) as server:
        port = server.port
    with pytest.raises(ToolError, match=rf"cannot connect to 127.0.0.1:{port}"):
        await audit(make_policy(LOCAL), f"https://127.0.0.1:{port}/")


async def test_plain_http_without_a_redirect_is_medium(
    make_policy: PolicyFactory, http_server: LocalHTTPServer
) -> None:
    output = await audit(make_policy(LOCAL), http_server.url("/", host="app.test"))
    (finding,) = output.findings
    assert (finding.title, finding.severity) == ("Site does not redirect HTTP to HTTPS", Severity.MEDIUM)
    assert output.observations[0].summary.endswith(
        "is served over plain HTTP: no TLS protects this connection"
    )
    assert finding.observation_indexes == (0, 1)
    assert output.data == {
        "url": http_server.url("/", host="app.test"),
        "tls": False,
        "redirects_to_https": False,
    }


async def test_plain_http_redirecting_to_https_audits_the_https_endpoint(
    make_policy: PolicyFactory, server_factory: ServerFactory
) -> None:
    secure = await server_factory(kind="expired")
    async with serve({"/": redirect(f"https://app.test:{secure.port}/")}) as plain:
        output = await audit(make_policy(LOCAL), plain.url("/", host="app.test"), check_versions=False)
    assert output.data["redirects_to_https"] is True
    assert output.data["https"]["server_name"] == "app.test"
    assert [f.severity for f in output.findings] == [Severity.HIGH]
    assert "expired" in output.findings[0].title
    assert output.observations[0].summary.endswith("no TLS protects this connection")


async def test_an_explicit_port_audits_tls_even_for_an_http_target(
    make_policy: PolicyFactory, https_server: LocalHTTPServer
) -> None:
    output = await audit(make_policy(LOCAL), "http://app.test/", port=https_server.port, check_versions=False)
    assert output.findings == () and output.data["tls"] is True
