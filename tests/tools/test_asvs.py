"""The ASVS web check against real HTTP and HTTPS servers on 127.0.0.1 (`tests.fixtures.net`/`web`)."""

from __future__ import annotations

import socket
from typing import Any

import pytest

from orchestrion.domain.findings import Severity
from orchestrion.exceptions import TargetRefusedError, ToolError
from orchestrion.tools import tlsprobe
from orchestrion.tools.asvs import AsvsWebCheckTool
from orchestrion.tools.asvs_checks import (
    CORS_PROBE_ORIGIN,
    REQUIREMENTS,
    Status,
    WebEvidence,
    referrer_policy,
    version_disclosed,
)
from orchestrion.tools.asvs_transport import weak_cipher
from orchestrion.tools.asvs_verdicts import check_csp, check_framing, evaluate
from orchestrion.tools.base import Observation, ProposedFinding, ToolContext, ToolOutput
from orchestrion.tools.netclient import FetchResult
from tests.fixtures.net import CertificateSet, LocalHTTPServer, PolicyFactory, Route, ServerFactory, redirect
from tests.fixtures.web import HTML, SECURE_HEADERS, insecure_routes, legacy_tls_context, secure_routes

LOCAL = "127.0.0.1/32"
IDS = [requirement.id for requirement in REQUIREMENTS]


async def _check(policy: Any, target: str | None, **args: Any) -> ToolOutput:
    ctx = ToolContext(task_id="t", step_id="s", target=target, targets=policy)
    output, _ = await AsvsWebCheckTool().run(args, ctx)
    return output


def _row(output: ToolOutput, requirement: str) -> Observation:
    return next(o for o in output.observations if o.data.get("requirement") == requirement)


def _finding(output: ToolOutput, requirement: str) -> ProposedFinding:
    (finding,) = [f for f in output.findings if f.title.startswith(f"ASVS {requirement} not met")]
    return finding


def _cited(output: ToolOutput, finding: ProposedFinding) -> list[Observation]:
    return [output.observations[i] for i in finding.observation_indexes]


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- a good application ----------------------------------------------------------------------------


async def test_a_well_configured_https_site_passes_every_requirement(
    make_policy: PolicyFactory, server_factory: ServerFactory
) -> None:
    https = await server_factory(routes=secure_routes())
    plain = await server_factory(kind=None, routes={"/": redirect(https.url("/"), 301)})

    output = await _check(make_policy(LOCAL), https.url("/"), http_port=plain.port, paths=["/api/status"])

    expected = dict.fromkeys(IDS, "pass")
    if not tlsprobe.locally_testable("TLSv1") or not tlsprobe.locally_testable("TLSv1.1"):
        expected["V9.1.3"] = "not_tested"
    assert output.data["results"] == expected
    assert output.findings == ()
    assert output.data["asvs_version"] == "4.0.3"
    assert _row(output, "V9.1.1").data["detail"] == (
        f"content is served over HTTPS; http://127.0.0.1:{plain.port}/ redirects to HTTPS"
    )
    assert _row(output, "V3.4.2").data["detail"] == "every cookie has HttpOnly: session"
    # Cookie values are evidence of nothing and may be live session tokens: never recorded.
    assert "s3cr3t-session-value" not in repr(output)


async def test_every_requirement_is_a_documented_row(
    make_policy: PolicyFactory, server_factory: ServerFactory
) -> None:
    https = await server_factory(routes=secure_routes())
    output = await _check(make_policy(LOCAL), https.url("/"))

    rows = [o for o in output.observations if "requirement" in o.data]
    assert [row.data["requirement"] for row in rows] == IDS
    for row, requirement in zip(rows, REQUIREMENTS, strict=True):
        assert row.data["text"] == requirement.text
        assert row.data["how_checked"] == requirement.how_checked
        assert row.data["status"] in {status.value for status in Status}
        assert row.summary.startswith(f"ASVS {requirement.id} ({requirement.title}): ")
    assert len(set(IDS)) == len(IDS) == 15


# -- a bad application: each failure, its severity and its citations --------------------------------


async def test_an_insecure_site_fails_with_findings_citing_their_evidence(
    make_policy: PolicyFactory, server_factory: ServerFactory
) -> None:
    routes, headers = insecure_routes()
    https = await server_factory(routes=routes)
    headers.server = https
    plain = await server_factory(
        kind=None, routes={"/": Route(headers=[("Content-Type", "text/html")], body=HTML)}
    )

    output = await _check(make_policy(LOCAL), https.url("/"), http_port=plain.port)

    failed = set(output.data["failed"])
    assert failed == {
        "V9.1.1",
        "V3.4.1",
        "V3.4.2",
        "V3.4.3",
        "V14.3.3",
        "V14.4.1",
        "V14.4.3",
        "V14.4.4",
        "V14.4.5",
        "V14.4.6",
        "V14.4.7",
        "V14.5.3",
    }
    severities = {requirement: _finding(output, requirement).severity for requirement in failed}
    assert severities == {
        "V9.1.1": Severity.MEDIUM,
        "V3.4.1": Severity.MEDIUM,
        "V3.4.2": Severity.MEDIUM,
        "V3.4.3": Severity.MEDIUM,
        "V14.3.3": Severity.LOW,
        "V14.4.1": Severity.LOW,
        "V14.4.3": Severity.MEDIUM,
        "V14.4.4": Severity.LOW,
        "V14.4.5": Severity.MEDIUM,
        "V14.4.6": Severity.LOW,
        "V14.4.7": Severity.MEDIUM,
        "V14.5.3": Severity.HIGH,
    }
    for requirement in failed:
        finding = _finding(output, requirement)
        row, *facts = _cited(output, finding)
        # The first citation is the requirement's own row; the others are the facts it rests on.
        assert (row.data["requirement"], row.data["status"]) == (requirement, "fail")
        assert facts, requirement
        assert f"OWASP ASVS 4.0.3 {requirement}:" in finding.description
        assert finding.recommendation

    _, plain_fact, response = _cited(output, _finding(output, "V9.1.1"))
    assert plain_fact.data == {
        "url": f"http://127.0.0.1:{plain.port}/",
        "outcome": "serves_plain_http",
        "status": 200,
        "location": None,
    }
    assert response.data["url"] == https.url("/")

    cookies = _cited(output, _finding(output, "V3.4.1"))[1]
    assert cookies.data["cookies"] == [
        {"name": "sessionid", "secure": False, "httponly": False, "samesite": None},
        {"name": "theme", "secure": True, "httponly": True, "samesite": "None"},
    ]
    assert _row(output, "V3.4.3").data["detail"] == (
        "cookies without SameSite=Lax or Strict: sessionid, theme (session-like: sessionid)"
    )
    assert _row(output, "V14.3.3").data["detail"].endswith("server: nginx/1.18.0, x-powered-by: PHP/8.1.2")
    assert "scripts allowed from * 'unsafe-inline'" in _row(output, "V14.4.3").data["detail"]
    assert "max-age 300 is below 15724800, no includeSubDomains" in _row(output, "V14.4.5").data["detail"]
    assert "X-Frame-Options is 'ALLOW-FROM https://partner.example'" in _row(output, "V14.4.7").data["detail"]

    _, foreign, null = _cited(output, _finding(output, "V14.5.3"))
    assert (foreign.data["origin"], foreign.data["allow_origin"]) == (CORS_PROBE_ORIGIN, CORS_PROBE_ORIGIN)
    assert (null.data["origin"], null.data["allow_origin"], null.data["allow_credentials"]) == (
        "null",
        "null",
        True,
    )
    assert _row(output, "V14.5.3").data["detail"] == (
        f"the origin {CORS_PROBE_ORIGIN} is reflected with credentials; "
        "the null origin is allowed with credentials"
    )
    assert "s3cr3t-session-value" not in repr(output)


async def test_cors_wildcard_is_low_and_a_static_null_is_medium(
    make_policy: PolicyFactory, server_factory: ServerFactory
) -> None:
    wildcard = await server_factory(
        routes={"/": Route(headers=[*SECURE_HEADERS, ("Access-Control-Allow-Origin", "*")], body=HTML)}
    )
    null = await server_factory(
        routes={"/": Route(headers=[*SECURE_HEADERS, ("Access-Control-Allow-Origin", "null")], body=HTML)}
    )
    policy = make_policy(LOCAL)

    star = await _check(policy, wildcard.url("/"))
    assert _finding(star, "V14.5.3").severity is Severity.LOW
    assert _row(star, "V14.5.3").data["detail"] == "Access-Control-Allow-Origin is '*'"
    allowed = await _check(policy, null.url("/"))
    assert _finding(allowed, "V14.5.3").severity is Severity.MEDIUM
    assert _row(allowed, "V14.5.3").data["detail"] == "the null origin is allowed"


async def test_extra_paths_are_checked_and_cited(
    make_policy: PolicyFactory, server_factory: ServerFactory
) -> None:
    https = await server_factory(routes=secure_routes())

    output = await _check(make_policy(LOCAL), https.url("/"), paths=["/login"])

    finding = _finding(output, "V3.4.1")
    assert finding.severity is Severity.MEDIUM
    _, login = _cited(output, finding)
    assert login.data["url"] == https.url("/login")
    assert _row(output, "V3.4.1").data["detail"] == (
        "cookies without Secure: remember_token (session-like: remember_token)"
    )
    assert _finding(output, "V3.4.3").severity is Severity.MEDIUM
    assert "V3.4.2" not in output.data["failed"]


# -- transport -----------------------------------------------------------------------------------


async def test_a_plain_http_site_fails_tls_everywhere_and_skips_tls_checks(
    make_policy: PolicyFactory, server_factory: ServerFactory
) -> None:
    plain = await server_factory(kind=None, routes=secure_routes())

    output = await _check(make_policy(LOCAL), plain.url("/"))

    results = output.data["results"]
    assert results["V9.1.1"] == "fail"
    assert {results[r] for r in ("V9.1.2", "V9.1.3", "V9.2.1", "V14.4.5")} == {"not_applicable"}
    finding = _finding(output, "V9.1.1")
    assert finding.severity is Severity.HIGH
    assert _cited(output, finding)[1].data["url"] == plain.url("/")
    assert not any(o.summary.startswith("TLS") for o in output.observations)


async def test_plain_http_redirecting_to_https_passes_and_the_https_side_is_checked(
    make_policy: PolicyFactory, server_factory: ServerFactory
) -> None:
    https = await server_factory(routes=secure_routes())
    plain = await server_factory(kind=None, routes={"/": redirect(https.url("/"), 301)})

    output = await _check(make_policy(LOCAL), plain.url("/"))

    results = output.data["results"]
    assert (results["V9.1.1"], results["V9.2.1"], results["V14.4.5"]) == ("pass", "pass", "pass")
    assert "plain HTTP not probed (the target itself is plain HTTP)" in _row(output, "V9.1.1").data["detail"]
    assert output.observations[0].data["redirects"] == [https.url("/")]


async def test_plain_http_probe_is_explained_when_skipped_or_unanswered(
    make_policy: PolicyFactory, server_factory: ServerFactory
) -> None:
    https = await server_factory(routes=secure_routes())
    policy = make_policy(LOCAL)

    skipped = await _check(policy, https.url("/"))
    assert f"the target is on port {https.port}; give http_port" in _row(skipped, "V9.1.1").data["detail"]
    disabled = await _check(policy, https.url("/"), check_plain_http=False, http_port=80)
    assert "disabled by check_plain_http" in _row(disabled, "V9.1.1").data["detail"]
    closed = await _check(policy, https.url("/"), http_port=_closed_port())
    assert _row(closed, "V9.1.1").data["status"] == "pass"
    assert "does not answer" in _row(closed, "V9.1.1").data["detail"]


async def test_an_expired_certificate_fails_v921(
    make_policy: PolicyFactory, server_factory: ServerFactory
) -> None:
    expired = await server_factory(kind="expired", routes=secure_routes())

    output = await _check(make_policy(LOCAL), expired.url("/"))

    finding = _finding(output, "V9.2.1")
    assert finding.severity is Severity.HIGH
    assert "the chain does not verify (certificate has expired)" in _row(output, "V9.2.1").data["detail"]
    tls = _cited(output, finding)[1]
    assert tls.data["chain_verified"] is False
    # The rest of the check still ran: verification is reported, not a reason to stop.
    assert output.data["results"]["V14.4.4"] == "pass"


async def test_a_certificate_for_another_host_fails_v921(
    make_policy: PolicyFactory, server_factory: ServerFactory
) -> None:
    wrong = await server_factory(kind="wrong_host", routes=secure_routes())

    output = await _check(make_policy(LOCAL), f"https://app.test:{wrong.port}/")

    assert "the certificate does not cover app.test" in _row(output, "V9.2.1").data["detail"]
    assert _cited(output, _finding(output, "V9.2.1"))[1].data["hostname_matches"] is False


async def test_legacy_tls_versions_fail_v913(make_policy: PolicyFactory, certs: CertificateSet) -> None:
    server = LocalHTTPServer(ssl_context=legacy_tls_context(certs), routes=secure_routes())
    await server.start()
    try:
        output = await _check(make_policy(LOCAL), server.url("/"))
    finally:
        await server.stop()

    if tlsprobe.locally_testable("TLSv1"):
        finding = _finding(output, "V9.1.3")
        assert finding.severity is Severity.MEDIUM
        assert _row(output, "V9.1.3").data["detail"].startswith("obsolete TLS versions accepted: TLSv1")
        versions = _cited(output, finding)[1]
        assert {v["version"]: v["status"] for v in versions.data["versions"]}["TLSv1"] == "accepted"
    else:
        assert output.data["results"]["V9.1.3"] == "not_tested"


async def test_versions_this_machine_cannot_test_are_not_tested(
    make_policy: PolicyFactory, server_factory: ServerFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    https = await server_factory(routes=secure_routes())
    monkeypatch.setattr(tlsprobe, "locally_testable", lambda version: version not in ("TLSv1", "TLSv1.1"))

    output = await _check(make_policy(LOCAL), https.url("/"))

    row = _row(output, "V9.1.3")
    assert row.data["status"] == "not_tested"
    assert row.data["detail"] == (
        "accepts TLSv1.2, TLSv1.3, but TLSv1, TLSv1.1 could not be tested from this machine"
    )


async def test_json_only_responses_make_html_requirements_not_applicable(
    make_policy: PolicyFactory, server_factory: ServerFactory
) -> None:
    https = await server_factory(routes=secure_routes())

    output = await _check(make_policy(LOCAL), https.url("/api/status"))

    results = output.data["results"]
    assert {results[r] for r in ("V3.4.1", "V3.4.2", "V3.4.3", "V14.4.3", "V14.4.7")} == {"not_applicable"}
    assert results["V14.4.1"] == "pass"


# -- refusals ----------------------------------------------------------------------------------------


async def test_no_policy_or_no_target_is_a_tool_error(make_policy: PolicyFactory) -> None:
    with pytest.raises(ToolError, match="needs network access"):
        await _check(None, "https://127.0.0.1/")
    with pytest.raises(ToolError, match="needs a target"):
        await _check(make_policy(LOCAL), None)


async def test_the_policy_decides_what_may_be_reached(
    make_policy: PolicyFactory, server_factory: ServerFactory
) -> None:
    https = await server_factory(routes=secure_routes())

    with pytest.raises(TargetRefusedError, match="loopback"):
        await _check(make_policy(), https.url("/"))
    assert https.requests == []


async def test_an_unreachable_target_is_a_tool_error(make_policy: PolicyFactory) -> None:
    with pytest.raises(ToolError, match=r"cannot reach https://127\.0\.0\.1:"):
        await _check(make_policy(LOCAL), f"https://127.0.0.1:{_closed_port()}/")


async def test_bad_arguments_are_refused(make_policy: PolicyFactory) -> None:
    with pytest.raises(ToolError, match="invalid arguments"):
        await _check(make_policy(LOCAL), "https://127.0.0.1/", paths=["no-slash"])
    with pytest.raises(ToolError, match="invalid arguments"):
        await _check(make_policy(LOCAL), "https://127.0.0.1/", http_port=0)


# -- pure checks -------------------------------------------------------------------------------------


def _response(
    headers: list[tuple[str, str]], *, url: str = "https://shop.test/", body: bytes = HTML
) -> FetchResult:
    return FetchResult(
        url=url,
        status=200,
        headers=tuple((name.lower(), value) for name, value in headers),
        body=body,
        elapsed=0.01,
        redirects=[],
        address="127.0.0.1",
        truncated=False,
        tls=None,
    )


def _status(check: Any, headers: list[tuple[str, str]]) -> str:
    evidence = WebEvidence(target_url="https://shop.test/", responses=(_response(headers),))
    return str(check(evidence).status.value)


def test_csp_with_a_nonce_or_one_strict_policy_passes() -> None:
    html = ("Content-Type", "text/html; charset=utf-8")
    assert (
        _status(check_csp, [html, ("Content-Security-Policy", "script-src 'nonce-abc' 'unsafe-inline'")])
        == "pass"
    )
    assert _status(check_csp, [html, ("Content-Security-Policy", "img-src *")]) == "fail"
    assert _status(check_csp, [html, ("Content-Security-Policy-Report-Only", "default-src 'self'")]) == "fail"
    two = [
        html,
        ("Content-Security-Policy", "script-src *"),
        ("Content-Security-Policy", "default-src 'self'"),
    ]
    assert _status(check_csp, two) == "pass"


def test_framing_accepts_frame_ancestors_or_x_frame_options() -> None:
    html = ("Content-Type", "text/html; charset=utf-8")
    assert _status(check_framing, [html, ("Content-Security-Policy", "frame-ancestors 'self'")]) == "pass"
    assert _status(check_framing, [html, ("X-Frame-Options", "sameorigin")]) == "pass"
    # frame-ancestors, when present, wins over X-Frame-Options (as in browsers).
    loose = [html, ("Content-Security-Policy", "frame-ancestors *"), ("X-Frame-Options", "DENY")]
    assert _status(check_framing, loose) == "fail"


def test_helpers_read_headers_as_browsers_do() -> None:
    assert referrer_policy("no-referrer, unsafe-url") == "unsafe-url"
    assert referrer_policy("unsafe-url, strict-origin, made-up") == "strict-origin"
    assert referrer_policy("made-up") is None
    assert version_disclosed("Apache/2.4.58 (Debian)")
    assert not version_disclosed("cloudflare")
    assert weak_cipher("DES-CBC3-SHA", 112)
    assert weak_cipher("RC4-SHA", 128)
    assert weak_cipher("ECDHE-RSA-NULL-SHA", 0)
    assert not weak_cipher("ECDHE-RSA-AES128-GCM-SHA256", 128)
    assert not weak_cipher("TLS_CHACHA20_POLY1305_SHA256", 256)


def test_evidence_without_anything_is_not_tested_rather_than_passed() -> None:
    verdicts = evaluate(
        WebEvidence(target_url="https://shop.test/", https_expected=True, tls_error="refused")
    )
    statuses = {verdict.requirement.id: verdict.status for verdict in verdicts}
    assert statuses["V9.1.1"] is Status.NOT_TESTED
    assert statuses["V9.2.1"] is Status.NOT_TESTED
    assert statuses["V14.4.4"] is Status.NOT_TESTED
    assert statuses["V14.5.3"] is Status.NOT_TESTED
    assert Status.PASS not in statuses.values()
