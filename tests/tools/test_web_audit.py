"""`http_headers_audit` against real HTTP(S) servers on 127.0.0.1, and its rule table."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from orchestrion.domain.findings import Severity
from orchestrion.tools.base import ToolOutput
from orchestrion.tools.header_rules import PROBE_ORIGIN, RULES, describe_rules
from orchestrion.tools.targets import TargetPolicy
from orchestrion.tools.web_audit import HeadersAuditTool, parse_set_cookie
from tests.fixtures.net import CertificateSet, PolicyFactory, Route
from tests.fixtures.websec import LOCAL, careless_routes, hardened_routes, run_tool, serve


async def audit(policy: TargetPolicy, target: str, **args: str) -> ToolOutput:
    return await run_tool(HeadersAuditTool(), policy, target, **args)


def failed(output: ToolOutput) -> set[str]:
    return set(output.data["rules_failed"])


def finding_for(output: ToolOutput, rule: str) -> tuple[str, Severity, list[str]]:
    finding = next(f for f in output.findings if f"rule {rule})" in f.description)
    return (
        finding.title,
        finding.severity,
        [output.observations[i].summary for i in finding.observation_indexes],
    )


async def test_a_hardened_https_page_passes_every_rule(
    make_policy: PolicyFactory, certs: CertificateSet
) -> None:
    async with serve(hardened_routes(), context=certs.server_context("valid")) as server:
        output = await audit(make_policy(LOCAL), server.url("/", host="app.test"))
        request = server.requests[0]
    assert output.findings == ()
    assert output.data["rules_failed"] == [] and output.data["https"] is True
    # The deleted cookie is skipped; the two live ones are observed without their values.
    assert [o.data["name"] for o in output.observations[1:]] == ["__Host-session", "csrftoken"]
    assert "s3cr3tv4lue" not in repr(output)
    assert request.headers["origin"] == PROBE_ORIGIN


async def test_a_bare_https_page_misses_every_header(
    make_policy: PolicyFactory, certs: CertificateSet
) -> None:
    async with serve(careless_routes(), context=certs.server_context("valid")) as server:
        output = await audit(make_policy(LOCAL), server.url("/bare", host="app.test"))
    assert failed(output) == {
        "hsts_missing",
        "csp_missing",
        "framing_missing",
        "xcto_missing",
        "referrer_policy_missing",
        "permissions_policy_missing",
    }
    severities = {f.title: f.severity for f in output.findings}
    assert severities["HTTPS response has no Strict-Transport-Security header"] is Severity.MEDIUM
    assert severities["No enforced Content-Security-Policy"] is Severity.MEDIUM
    assert severities["X-Content-Type-Options: nosniff is missing"] is Severity.LOW
    assert severities["No Permissions-Policy header"] is Severity.INFO
    assert all(f.observation_indexes == (0,) for f in output.findings)
    assert "security headers present: none" in output.observations[0].summary


async def test_weak_values_are_each_a_finding_with_their_asvs_requirement(
    make_policy: PolicyFactory, certs: CertificateSet
) -> None:
    async with serve(careless_routes(), context=certs.server_context("valid")) as server:
        output = await audit(make_policy(LOCAL), server.url("/", host="app.test"))
    assert {
        "hsts_short",
        "hsts_no_subdomains",
        "csp_unsafe_inline",
        "csp_unsafe_eval",
        "csp_wildcard",
        "referrer_policy_unsafe",
        "cors_reflected_origin_credentials",
    } <= failed(output)
    assert "csp_missing" not in failed(output) and "hsts_missing" not in failed(output)
    assert finding_for(output, "hsts_short")[:2] == (
        "HSTS max-age is shorter than six months (max-age=86400)",
        Severity.LOW,
    )
    assert finding_for(output, "csp_wildcard")[0].endswith("(script sources include https:)")
    title, severity, cited = finding_for(output, "cors_reflected_origin_credentials")
    assert severity is Severity.HIGH and PROBE_ORIGIN in title
    assert cited == [output.observations[0].summary]
    cors = next(f for f in output.findings if "cors" in f.description)
    assert "OWASP ASVS V14.5.3" in cors.description
    headers = output.observations[0].data["headers"]
    assert headers["strict-transport-security"] == ["max-age=86400"]


async def test_cookies_on_every_hop_are_checked_and_grouped_by_rule(
    make_policy: PolicyFactory, certs: CertificateSet
) -> None:
    async with serve(careless_routes(), context=certs.server_context("valid")) as server:
        output = await audit(make_policy(LOCAL), server.url("/login", host="app.test"))
    login = server.url("/login", host="app.test")
    assert output.observations[0].data["redirects"] == [server.url("/", host="app.test")]
    session = next(o for o in output.observations if o.data.get("name") == "PHPSESSID")
    assert session.location == login and session.data["session_like"] is True
    assert session.data["value_length"] == 12 and "9f8e7d6c5b4a" not in repr(output)
    assert finding_for(output, "cookie_session_not_secure")[:2] == (
        "Session cookie without the Secure attribute (PHPSESSID)",
        Severity.MEDIUM,
    )
    assert finding_for(output, "cookie_not_httponly")[1] is Severity.MEDIUM
    assert finding_for(output, "cookie_not_secure")[0].endswith("(theme, tracker)")
    assert finding_for(output, "cookie_samesite_missing")[0].endswith("(PHPSESSID, theme)")
    title, severity, cited = finding_for(output, "cookie_samesite_none_insecure")
    assert (title, severity) == ("Cookie with SameSite=None but without Secure (tracker)", Severity.MEDIUM)
    assert cited == [next(o.summary for o in output.observations if o.data.get("name") == "tracker")]


async def test_plain_http_skips_hsts_and_secure_rules(make_policy: PolicyFactory) -> None:
    async with serve(careless_routes()) as server:
        output = await audit(make_policy(LOCAL), server.url("/login", host="app.test"))
    assert not any(rule.startswith("hsts") for rule in failed(output))
    assert "cookie_session_not_secure" not in failed(output) and "cookie_not_secure" not in failed(output)
    assert {"cookie_not_httponly", "cookie_samesite_missing"} <= failed(output)
    assert output.data["https"] is False


@pytest.mark.parametrize(
    ("path", "rule", "severity"),
    [
        ("/wildcard-cors", "cors_any_origin_credentials", Severity.MEDIUM),
        ("/null-cors", "cors_null_origin", Severity.MEDIUM),
    ],
)
async def test_cors_that_trusts_everyone(
    make_policy: PolicyFactory, path: str, rule: str, severity: Severity
) -> None:
    async with serve(careless_routes()) as server:
        output = await audit(make_policy(LOCAL), server.url(path, host="app.test"))
    assert rule in failed(output)
    assert finding_for(output, rule)[1] is severity


async def test_report_only_csp_does_not_count(make_policy: PolicyFactory) -> None:
    async with serve(careless_routes()) as server:
        output = await audit(make_policy(LOCAL), server.url("/report-only", host="app.test"))
    assert finding_for(output, "csp_missing")[0] == (
        "No enforced Content-Security-Policy (only Content-Security-Policy-Report-Only is sent)"
    )


async def test_json_responses_skip_document_rules(make_policy: PolicyFactory) -> None:
    async with serve(careless_routes()) as server:
        output = await audit(make_policy(LOCAL), server.url("/api", host="app.test"))
    assert output.data["document_rules"] == "skipped: not an HTML response"
    assert not ({"csp_missing", "framing_missing"} & failed(output))
    assert "xcto_missing" in failed(output)


async def test_the_path_argument_picks_the_page(make_policy: PolicyFactory) -> None:
    async with serve(careless_routes()) as server:
        output = await audit(make_policy(LOCAL), server.url("/", host="app.test"), path="/api")
        assert [r.path for r in server.requests] == ["/api"]
    assert output.data["url"] == server.url("/api", host="app.test")


async def test_a_redirect_to_a_refused_host_is_recorded_and_the_first_answer_audited(
    make_policy: PolicyFactory,
) -> None:
    async with serve(careless_routes()) as server:
        output = await audit(make_policy(LOCAL), server.url("/leaves", host="app.test"))
    response = output.observations[0].data
    assert response["status"] == 302
    assert "http://10.0.0.1/" in response["redirect_stopped"]
    # A redirect has no content: only the rules of every response (HSTS, CORS) apply to it.
    assert output.data["document_rules"] == "skipped: the final response is a redirect that was not followed"
    assert output.findings == ()


async def test_a_site_with_an_expired_certificate_is_still_audited(
    make_policy: PolicyFactory, certs: CertificateSet
) -> None:
    async with serve(hardened_routes(), context=certs.server_context("expired")) as server:
        output = await audit(make_policy(LOCAL), server.url("/", host="app.test"))
    assert output.findings == ()


# -- the rule table and the parsers -----------------------------------------------------------------


def test_every_rule_is_documented() -> None:
    for rule in RULES.values():
        assert rule.title and rule.rationale and rule.recommendation
        assert rule.asvs.startswith(("V", "none"))
    table = describe_rules()
    assert {entry["id"] for entry in table} == set(RULES)
    assert {entry["severity"] for entry in table} <= {s.value for s in Severity}


def test_set_cookie_parsing_keeps_attributes_not_values() -> None:
    cookie = parse_set_cookie(
        "SID=abc; Path=/; Secure; HttpOnly; SameSite=None; Max-Age=60", "https://a.test/"
    )
    assert cookie is not None
    assert (cookie.name, cookie.value_length, cookie.secure, cookie.httponly, cookie.samesite) == (
        "SID",
        3,
        True,
        True,
        "none",
    )
    assert cookie.session_like and not cookie.is_deletion(datetime.now(UTC))
    assert parse_set_cookie("novalue") is None
    assert parse_set_cookie("=x") is None
    expired = parse_set_cookie("a=b; Expires=Thu, 01 Jan 1970 00:00:00 GMT")
    assert expired is not None and expired.is_deletion(datetime.now(UTC))
    for name in ("XSRF-TOKEN", "csrftoken", "theme"):
        parsed = parse_set_cookie(f"{name}=1")
        assert parsed is not None and not parsed.session_like


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ([("Strict-Transport-Security", "includeSubDomains")], {"hsts_invalid"}),
        ([("Strict-Transport-Security", 'max-age="31536000"; includeSubDomains')], set()),
        ([("Strict-Transport-Security", "max-age=0")], {"hsts_short", "hsts_no_subdomains"}),
        ([("Content-Security-Policy", "img-src 'self'")], {"csp_no_script_policy"}),
        (
            # Two policies are both enforced: only one of them allows inline script, so none does.
            [
                ("Content-Security-Policy", "script-src 'self' 'unsafe-inline'"),
                ("Content-Security-Policy", "default-src 'self'"),
            ],
            set(),
        ),
        ([("Content-Security-Policy", "script-src 'nonce-abc' 'strict-dynamic' https: *")], set()),
        (
            [("Content-Security-Policy", "default-src *; frame-ancestors *")],
            {"csp_wildcard", "framing_missing"},
        ),
        ([("Referrer-Policy", "no-referrer, unsafe-url, made-up")], {"referrer_policy_unsafe"}),
    ],
)
async def test_header_rule_details(
    make_policy: PolicyFactory, certs: CertificateSet, headers: list[tuple[str, str]], expected: set[str]
) -> None:
    base = [
        ("Content-Type", "text/html"),
        ("Content-Security-Policy", "default-src 'self'"),
        ("X-Frame-Options", "SAMEORIGIN"),
        ("X-Content-Type-Options", "nosniff"),
        ("Referrer-Policy", "strict-origin-when-cross-origin"),
        ("Permissions-Policy", "camera=()"),
        ("Strict-Transport-Security", "max-age=31536000; includeSubDomains"),
    ]
    overridden = {name for name, _ in headers}
    if "Content-Security-Policy" in overridden and any("frame-ancestors" in v for _, v in headers):
        overridden.add("X-Frame-Options")
    routes = {"/": Route(headers=[*[h for h in base if h[0] not in overridden], *headers], body=b"<p>x</p>")}
    async with serve(routes, context=certs.server_context("valid")) as server:
        output = await audit(make_policy(LOCAL), server.url("/", host="app.test"))
    assert failed(output) == expected
