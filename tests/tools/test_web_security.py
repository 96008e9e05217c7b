"""The web security tools' shared rules: target required, policy enforced, secrets never quoted.

Every tool reaches its target only through the task's `TargetPolicy`: without an allowlist entry for
127.0.0.1 each one fails with `TargetRefusedError` before the test server sees a request.
"""

from __future__ import annotations

from typing import Any

import pytest

from orchestrion.domain.findings import Severity
from orchestrion.exceptions import TargetRefusedError, ToolError, ValidationError
from orchestrion.tools.advisories import BannerAdvisoryTool
from orchestrion.tools.base import Tool
from orchestrion.tools.exposed_files import ExposedFilesTool
from orchestrion.tools.tls_audit import TLSAuditTool
from orchestrion.tools.web_audit import HeadersAuditTool
from orchestrion.tools.web_security import Report, SiteClient, has_credentials, safe_excerpt
from tests.fixtures.net import LocalHTTPServer, PolicyFactory, redirect
from tests.fixtures.websec import LOCAL, run_tool, serve

TOOLS: list[Tool] = [TLSAuditTool(), HeadersAuditTool(), ExposedFilesTool(), BannerAdvisoryTool()]


@pytest.mark.parametrize("tool", TOOLS, ids=lambda tool: tool.name)
async def test_a_target_not_on_the_allowlist_is_refused(
    tool: Tool, make_policy: PolicyFactory, https_server: LocalHTTPServer
) -> None:
    for target in (https_server.url("/"), https_server.url("/", host="app.test")):
        with pytest.raises(TargetRefusedError, match=r"127.0.0.1.* is loopback"):
            await run_tool(tool, make_policy(), target)
    assert https_server.requests == [] and https_server.server_names == []


@pytest.mark.parametrize("tool", TOOLS, ids=lambda tool: tool.name)
async def test_a_name_resolving_to_a_denied_address_is_refused(
    tool: Tool, make_policy: PolicyFactory
) -> None:
    # multi.test resolves to 127.0.0.1 AND 10.0.0.1: one denied address refuses the name.
    with pytest.raises(TargetRefusedError, match=r"10.0.0.1"):
        await run_tool(tool, make_policy(LOCAL), "https://multi.test:8443/")


@pytest.mark.parametrize("tool", TOOLS, ids=lambda tool: tool.name)
async def test_no_network_policy_or_no_target_is_a_tool_error(tool: Tool, make_policy: PolicyFactory) -> None:
    with pytest.raises(ToolError, match=r"needs network access"):
        await run_tool(tool, None, "https://app.test/")
    with pytest.raises(ToolError, match=r"needs a target"):
        await run_tool(tool, make_policy(LOCAL), None)
    with pytest.raises(ValidationError, match=r"scheme 'ftp' is not accepted"):
        await run_tool(tool, make_policy(LOCAL), "ftp://app.test/")


@pytest.mark.parametrize("tool", TOOLS, ids=lambda tool: tool.name)
async def test_unknown_arguments_are_refused(tool: Tool, make_policy: PolicyFactory) -> None:
    with pytest.raises(ToolError, match=r"invalid arguments"):
        await run_tool(tool, make_policy(LOCAL), "https://app.test/", surprise=True)


async def test_path_arguments_must_be_paths(make_policy: PolicyFactory) -> None:
    for tool, args in (
        (HeadersAuditTool(), {"path": "@evil.example/"}),
        (BannerAdvisoryTool(), {"path": "//evil.example/"}),
        (ExposedFilesTool(), {"base_path": "app"}),
        (TLSAuditTool(), {"port": 0}),
    ):
        with pytest.raises(ToolError, match=r"invalid arguments"):
            await run_tool(tool, make_policy(LOCAL), "https://app.test/", **args)


async def test_site_client_follows_redirects_and_stops_at_a_refused_one(
    make_policy: PolicyFactory, http_server: LocalHTTPServer
) -> None:
    client = SiteClient(make_policy(LOCAL))
    chain = await client.follow(http_server.url("/redirect-chain"))
    assert [hop.status for hop in chain.hops] == [301, 302, 200]
    assert chain.final.url == http_server.url("/") and chain.stopped is None
    refused = await client.follow(http_server.url("/redirect-denied"))
    assert [hop.status for hop in refused.hops] == [302]
    assert refused.stopped is not None and "http://10.0.0.1/" in refused.stopped
    assert "private" in refused.stopped


async def test_site_client_stops_redirect_loops(
    make_policy: PolicyFactory, http_server: LocalHTTPServer
) -> None:
    chain = await SiteClient(make_policy(LOCAL)).follow(http_server.url("/redirect-loop"), max_hops=3)
    assert len(chain.hops) == 4
    assert chain.stopped is not None and chain.stopped.startswith("more than 3 redirects")


async def test_site_client_reads_a_site_with_a_bad_certificate_and_verifies_a_good_one(
    make_policy: PolicyFactory, https_server: LocalHTTPServer, server_factory: Any
) -> None:
    expired = await server_factory(kind="expired")
    client = SiteClient(make_policy(LOCAL))
    for _ in range(2):
        result = await client.get(expired.url("/", host="app.test"))
        assert result.status == 200 and result.tls is not None and result.tls.chain_verified is False
    good = await client.get(https_server.url("/", host="app.test"))
    assert good.tls is not None and good.tls.chain_verified is True
    again = await client.get(https_server.url("/robots.txt", host="app.test"))
    # Once the origin is known to verify, requests verify (one handshake, not two).
    assert again.status == 200
    assert len(https_server.server_names) == 3


async def test_first_request_errors_propagate(make_policy: PolicyFactory) -> None:
    async with serve({"/": redirect("/")}) as server:
        port = server.port
    with pytest.raises(ToolError, match=r"cannot connect"):
        await SiteClient(make_policy(LOCAL)).follow(f"http://127.0.0.1:{port}/")


def test_report_numbers_observations_and_sorts_findings_worst_first() -> None:
    report = Report()
    first = report.observe("a", {"x": 1})
    second = report.observe("b", location="https://app.test/")
    report.find("minor", Severity.LOW, description="", recommendation="", cite=[second, first, first])
    report.find("major", Severity.HIGH, description="", recommendation="", cite=[second])
    output = report.output({"n": 2})
    assert (first, second) == (0, 1)
    assert [f.title for f in output.findings] == ["major", "minor"]
    assert output.findings[1].observation_indexes == (0, 1)
    assert output.observations[1].location == "https://app.test/"


def test_safe_excerpt_hides_values_credentials_and_tokens() -> None:
    token = "ghp_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8"
    text = f"DB_PASSWORD=hunter2\nurl = https://deploy:pa55word@git.example.test/x.git\nTOKEN {token}\n"
    values = safe_excerpt(text, "values")
    assert values.splitlines()[0] == "DB_PASSWORD=…(7 chars)"
    assert "url = …(" in values.splitlines()[1]
    plain = safe_excerpt(text, "plain")
    assert plain.splitlines()[:2] == ["DB_PASSWORD=…(7 chars)", "url = https://…@git.example.test/x.git"]
    assert safe_excerpt("[core]\n\tbare = false", "plain") == "[core]\nbare = false"
    for secret in ("hunter2", "pa55word", token):
        assert secret not in values and secret not in plain
    assert safe_excerpt(text, "none") == ""
    assert (
        safe_excerpt("define('DB_PASSWORD', 'hunter2');", "values") == "define('DB_PASSWORD', '…(7 chars)');"
    )
    assert len(safe_excerpt("\n".join(f"line {n}" for n in range(10)), "plain").splitlines()) == 3


def test_has_credentials_tells_secrets_from_settings() -> None:
    assert has_credentials("DB_PASSWORD=hunter2")
    assert has_credentials("define('AUTH_KEY', 'x8$#');")
    assert has_credentials("url = https://user:pw@example.test/")
    assert not has_credentials("APP_ENV=production\nDEBUG=false\nDB_PASSWORD=")
    assert not has_credentials("ref: refs/heads/main")
