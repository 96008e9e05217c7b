"""The network client: every connection resolved once, checked, and made to the checked address.

Real servers on 127.0.0.1 (HTTP, HTTPS with a test CA, DNS), so the allowlist names 127.0.0.1 (or
localhost) explicitly wherever a test means to connect. The suite's network guard refuses any other
connection and any system lookup of a name other than localhost: a client that looked a ``*.test``
name up again through the system resolver would fail these tests with `OutboundTrafficRefused`.
"""

from __future__ import annotations

import asyncio
import ssl
import time
import warnings
from datetime import UTC, datetime

import pytest

from orchestrion.exceptions import TargetRefusedError, ToolError
from orchestrion.tools import tlsprobe
from orchestrion.tools.certinfo import CertificateInfo, hostname_matches
from orchestrion.tools.netclient import fetch, open_tcp, probe_tls_versions, tls_probe
from tests.fixtures.dns import LocalDNSServer
from tests.fixtures.net import (
    CertificateSet,
    LocalHTTPServer,
    PolicyFactory,
    ServerFactory,
    SilentServer,
    redirect,
)
from tests.network_guard import OutboundTrafficRefused

LOCAL = "127.0.0.1/32"

# -- fetch: the policy first ---------------------------------------------------------------------


async def test_fetch_reads_a_page_from_an_allowed_address(
    make_policy: PolicyFactory, http_server: LocalHTTPServer
) -> None:
    result = await fetch(make_policy(LOCAL), http_server.url("/"))
    assert result.status == 200
    assert b"hello" in result.body
    assert result.header("Server") == "TestServer/1.0"
    assert (result.address, result.redirects, result.truncated, result.tls) == ("127.0.0.1", [], False, None)
    assert result.url == http_server.url("/")
    assert result.elapsed > 0


async def test_fetch_refuses_loopback_unless_allowed(
    make_policy: PolicyFactory, http_server: LocalHTTPServer
) -> None:
    with pytest.raises(TargetRefusedError, match=r"127.0.0.1 is loopback; allow it with"):
        await fetch(make_policy(), http_server.url("/"))
    assert http_server.requests == []


async def test_fetch_by_name_sends_the_name_as_host(
    make_policy: PolicyFactory, http_server: LocalHTTPServer
) -> None:
    result = await fetch(make_policy(LOCAL), http_server.url("/", host="app.test"))
    assert result.status == 200
    assert http_server.requests[0].headers["host"] == f"app.test:{http_server.port}"


async def test_fetch_ignores_proxy_environment(
    make_policy: PolicyFactory, http_server: LocalHTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A proxy would resolve the name itself, behind the policy's back.
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "all_proxy"):
        monkeypatch.setenv(name, "http://10.9.9.9:3128")
    assert (await fetch(make_policy(LOCAL), http_server.url("/"))).status == 200


async def test_fetch_keeps_repeated_headers(make_policy: PolicyFactory, http_server: LocalHTTPServer) -> None:
    result = await fetch(make_policy(LOCAL), http_server.url("/cookies"))
    assert result.header_values("set-cookie") == [
        "session=abc123; Path=/",
        "prefs=dark; Path=/; Secure; HttpOnly; SameSite=Strict",
    ]


async def test_fetch_head_sends_no_body(make_policy: PolicyFactory, http_server: LocalHTTPServer) -> None:
    result = await fetch(make_policy(LOCAL), http_server.url("/.env"), method="head")
    assert (result.status, result.body) == (200, b"")
    assert http_server.requests[0].method == "HEAD"


# -- redirects -----------------------------------------------------------------------------------


async def test_fetch_follows_redirects_and_lists_them(
    make_policy: PolicyFactory, http_server: LocalHTTPServer
) -> None:
    result = await fetch(make_policy(LOCAL), http_server.url("/redirect-chain"))
    assert result.status == 200
    assert result.redirects == [http_server.url("/redirect"), http_server.url("/")]
    assert result.url == http_server.url("/")


async def test_fetch_can_leave_redirects_alone(
    make_policy: PolicyFactory, http_server: LocalHTTPServer
) -> None:
    result = await fetch(make_policy(LOCAL), http_server.url("/redirect"), follow_redirects=False)
    assert (result.status, result.header("location"), result.redirects) == (302, "/", [])


@pytest.mark.parametrize(
    ("path", "address", "reason"),
    [
        ("/redirect-denied", "10.0.0.1", "private (RFC 1918)"),
        ("/redirect-metadata", "169.254.169.254", "a cloud metadata endpoint"),
    ],
)
async def test_redirect_to_a_denied_host_is_refused(
    make_policy: PolicyFactory, http_server: LocalHTTPServer, path: str, address: str, reason: str
) -> None:
    with pytest.raises(TargetRefusedError) as info:
        await fetch(make_policy(LOCAL), http_server.url(path))
    assert (info.value.address, info.value.reason) == (address, reason)


async def test_redirect_to_another_scheme_is_refused(
    make_policy: PolicyFactory, http_server: LocalHTTPServer
) -> None:
    with pytest.raises(TargetRefusedError, match=r"redirect from .* to 'ftp://example.test/file' refused"):
        await fetch(make_policy(LOCAL), http_server.url("/redirect-ftp"))


async def test_redirect_loop_stops_at_max_redirects(
    make_policy: PolicyFactory, http_server: LocalHTTPServer
) -> None:
    with pytest.raises(ToolError, match=r"too many redirects"):
        await fetch(make_policy(LOCAL, max_redirects=3), http_server.url("/redirect-loop"))
    assert len(http_server.requests) == 4


async def test_credentials_do_not_follow_a_redirect_to_another_origin(
    make_policy: PolicyFactory, http_server: LocalHTTPServer, server_factory: ServerFactory
) -> None:
    other = await server_factory(kind=None)
    http_server.routes["/elsewhere"] = redirect(other.url("/"))
    headers = {"Authorization": "Bearer secret", "X-Audit": "1"}
    await fetch(make_policy(LOCAL), http_server.url("/elsewhere"), headers=headers)
    assert http_server.requests[0].headers["authorization"] == "Bearer secret"
    assert "authorization" not in other.requests[0].headers
    assert other.requests[0].headers["x-audit"] == "1"


# -- DNS rebinding -------------------------------------------------------------------------------


async def test_fetch_connects_to_the_address_it_checked(
    make_policy: PolicyFactory, http_server: LocalHTTPServer, dns_server: LocalDNSServer
) -> None:
    # The second answer is loopback too (allowed) but nothing listens there: had the client
    # resolved the name again to connect, it would have been refused a connection.
    dns_server.add_sequence("switch.test", "A", [["127.0.0.1"], ["127.0.0.2"]])
    result = await fetch(make_policy("127.0.0.0/8"), http_server.url("/", host="switch.test"))
    assert (result.status, result.address) == (200, "127.0.0.1")
    assert dns_server.count("switch.test", "A") == 1


async def test_dns_rebinding_to_metadata_is_refused_on_the_next_lookup(
    make_policy: PolicyFactory, http_server: LocalHTTPServer, dns_server: LocalDNSServer
) -> None:
    policy = make_policy(LOCAL)
    first = await fetch(policy, http_server.url("/", host="rebind.test"))
    assert (first.status, first.address) == (200, "127.0.0.1")
    assert dns_server.count("rebind.test", "A") == 1
    with pytest.raises(TargetRefusedError) as info:
        await fetch(policy, http_server.url("/", host="rebind.test"))
    assert info.value.message.startswith("rebind.test resolves to 169.254.169.254, which is a cloud metadata")
    assert len(http_server.requests) == 1


async def test_open_tcp_and_tls_probe_connect_to_the_checked_address(
    make_policy: PolicyFactory, https_server: LocalHTTPServer, dns_server: LocalDNSServer
) -> None:
    dns_server.add_sequence("tcp.test", "A", [["127.0.0.1"], ["127.0.0.2"]])
    dns_server.add_sequence("tls.test", "A", [["127.0.0.1"], ["127.0.0.2"]])
    policy = make_policy("127.0.0.0/8")
    _reader, writer, address = await open_tcp(policy, "tcp.test", https_server.port)
    writer.close()
    await writer.wait_closed()
    info = await tls_probe(policy, "tls.test", https_server.port)
    assert (address, info.address) == ("127.0.0.1", "127.0.0.1")
    assert (dns_server.count("tcp.test", "A"), dns_server.count("tls.test", "A")) == (1, 1)


async def test_the_guard_would_catch_a_second_system_lookup() -> None:
    # What makes the rebinding tests above meaningful: a system lookup of a *.test name fails loudly.
    with pytest.raises(OutboundTrafficRefused):
        await asyncio.get_running_loop().getaddrinfo("rebind.test", 80)


# -- body cap and timeouts -------------------------------------------------------------------------


async def test_body_is_capped_at_max_bytes(make_policy: PolicyFactory, http_server: LocalHTTPServer) -> None:
    policy = make_policy(LOCAL)
    capped = await fetch(policy, http_server.url("/big"), max_bytes=1000)
    assert (len(capped.body), capped.truncated) == (1000, True)
    whole = await fetch(policy, http_server.url("/big"))
    assert (len(whole.body), whole.truncated) == (100 * 1024, False)


async def test_policy_cap_wins_over_a_larger_max_bytes(
    make_policy: PolicyFactory, http_server: LocalHTTPServer
) -> None:
    result = await fetch(
        make_policy(LOCAL, max_response_bytes=4096), http_server.url("/big"), max_bytes=10**9
    )
    assert (len(result.body), result.truncated) == (4096, True)


async def test_endless_body_stops_at_the_cap(
    make_policy: PolicyFactory, http_server: LocalHTTPServer
) -> None:
    started = time.monotonic()
    result = await fetch(make_policy(LOCAL), http_server.url("/forever"), max_bytes=64 * 1024)
    assert (len(result.body), result.truncated) == (64 * 1024, True)
    assert time.monotonic() - started < 5


async def test_gzip_is_decoded_within_the_cap(
    make_policy: PolicyFactory, http_server: LocalHTTPServer
) -> None:
    policy = make_policy(LOCAL)
    assert (await fetch(policy, http_server.url("/gzip"))).body == b"compressed hello"
    bomb = await fetch(policy, http_server.url("/gzip-bomb"), max_bytes=1000)
    assert (bomb.body, bomb.truncated) == (b"\0" * 1000, True)


async def test_server_that_never_answers_times_out(
    make_policy: PolicyFactory, http_server: LocalHTTPServer, silent_server: SilentServer
) -> None:
    policy = make_policy(LOCAL, read_timeout=0.3)
    started = time.monotonic()
    with pytest.raises(ToolError, match=r"did not answer within 0.3s"):
        await fetch(policy, http_server.url("/hang"))
    with pytest.raises(ToolError, match=r"did not answer within 0.3s"):
        await fetch(policy, f"http://127.0.0.1:{silent_server.port}/")
    assert time.monotonic() - started < 3


async def test_closed_port_is_a_tool_error(make_policy: PolicyFactory, silent_server: SilentServer) -> None:
    port = silent_server.port
    await silent_server.stop()
    with pytest.raises(ToolError, match=rf"cannot connect to 127.0.0.1:{port}"):
        await fetch(make_policy(LOCAL), f"http://127.0.0.1:{port}/")


# -- HTTPS -----------------------------------------------------------------------------------------


async def test_https_verifies_against_the_name_and_sends_it_as_sni(
    make_policy: PolicyFactory, https_server: LocalHTTPServer
) -> None:
    result = await fetch(make_policy(LOCAL), https_server.url("/secure-headers", host="app.test"))
    assert result.status == 200
    assert result.tls is not None
    assert (result.tls.chain_verified, result.tls.hostname_matches) == (True, True)
    assert result.tls.version in ("TLSv1.2", "TLSv1.3")
    assert result.tls.server_name == "app.test"
    request = https_server.requests[0]
    assert (request.server_name, request.headers["host"]) == ("app.test", f"app.test:{https_server.port}")


async def test_https_to_an_ip_literal_checks_the_ip_san(
    make_policy: PolicyFactory, https_server: LocalHTTPServer
) -> None:
    result = await fetch(make_policy(LOCAL), https_server.url("/"))
    assert result.tls is not None and result.tls.hostname_matches
    assert https_server.server_names == [None]  # no SNI for an IP address


async def test_hostname_verification_uses_the_name_not_the_connected_ip(
    make_policy: PolicyFactory, https_server: LocalHTTPServer
) -> None:
    # other.test resolves to 127.0.0.1, which the certificate DOES name: only a check against the
    # name (which it does not name) can fail here.
    with pytest.raises(ToolError, match=r"certificate verification failed for other.test: Hostname mismatch"):
        await fetch(make_policy(LOCAL), https_server.url("/", host="other.test"))
    assert https_server.server_names == ["other.test"]
    assert https_server.requests == []


async def test_untrusted_ca_fails_verification(
    make_policy: PolicyFactory, https_server: LocalHTTPServer
) -> None:
    with pytest.raises(ToolError, match=r"unable to get local issuer certificate"):
        await fetch(make_policy(LOCAL, ca_pem=None), https_server.url("/", host="app.test"))


async def test_expired_certificate_fails_unless_verify_is_off_and_is_still_reported(
    make_policy: PolicyFactory, server_factory: ServerFactory
) -> None:
    server = await server_factory(kind="expired")
    policy = make_policy(LOCAL)
    with pytest.raises(ToolError, match=r"certificate has expired"):
        await fetch(policy, server.url("/", host="app.test"))
    result = await fetch(policy, server.url("/", host="app.test"), verify=False)
    assert result.status == 200
    assert result.tls is not None
    assert result.tls.chain_verified is False
    assert "expired" in (result.tls.chain_error or "")
    assert result.tls.hostname_matches is True
    assert (result.tls.days_to_expiry or 0) < 0


async def test_wrong_host_certificate_is_reported_with_verify_off(
    make_policy: PolicyFactory, server_factory: ServerFactory
) -> None:
    server = await server_factory(kind="wrong_host")
    result = await fetch(make_policy(LOCAL), server.url("/", host="app.test"), verify=False)
    assert result.tls is not None
    assert (result.tls.chain_verified, result.tls.hostname_matches) == (True, False)


# -- open_tcp ------------------------------------------------------------------------------------


async def test_open_tcp_goes_through_the_policy(
    make_policy: PolicyFactory, http_server: LocalHTTPServer
) -> None:
    with pytest.raises(TargetRefusedError):
        await open_tcp(make_policy(), "127.0.0.1", http_server.port)
    with pytest.raises(TargetRefusedError, match=r"10.0.0.1"):
        await open_tcp(make_policy(LOCAL), "multi.test", http_server.port)
    reader, writer, address = await open_tcp(make_policy(LOCAL), "app.test", http_server.port, timeout=1)
    writer.write(b"GET /robots.txt HTTP/1.1\r\nHost: app.test\r\n\r\n")
    answer = await reader.read()
    writer.close()
    await writer.wait_closed()
    assert address == "127.0.0.1"
    assert answer.startswith(b"HTTP/1.1 200") and b"Disallow: /admin" in answer


async def test_open_tcp_lets_refused_connections_through(
    make_policy: PolicyFactory, silent_server: SilentServer
) -> None:
    port = silent_server.port
    await silent_server.stop()
    with pytest.raises(ConnectionRefusedError):
        await open_tcp(make_policy(LOCAL), "127.0.0.1", port)


# -- tls_probe -----------------------------------------------------------------------------------


async def test_tls_probe_reports_a_valid_certificate(
    make_policy: PolicyFactory, https_server: LocalHTTPServer
) -> None:
    info = await tls_probe(make_policy(LOCAL), "app.test", https_server.port)
    assert info.version in ("TLSv1.2", "TLSv1.3") and info.cipher
    assert (info.chain_verified, info.chain_error, info.hostname_matches) == (True, None, True)
    assert info.certificate is not None
    assert "app.test" in info.certificate.san_dns and "127.0.0.1" in info.certificate.san_ip
    assert info.certificate.key_type == "EC" and not info.certificate.self_signed
    assert info.days_to_expiry is not None and info.days_to_expiry > 30
    assert info.chain[0] == info.certificate
    # Two handshakes (one not verifying, one verifying the chain), both naming the host.
    assert https_server.server_names == ["app.test", "app.test"]


async def test_tls_probe_tells_expired_from_wrong_host(
    make_policy: PolicyFactory, server_factory: ServerFactory
) -> None:
    policy = make_policy(LOCAL)
    expired = await tls_probe(policy, "app.test", (await server_factory(kind="expired")).port)
    assert (expired.chain_verified, expired.hostname_matches) == (False, True)
    assert "expired" in (expired.chain_error or "")
    assert expired.certificate is not None and expired.certificate.is_expired()
    wrong = await tls_probe(policy, "app.test", (await server_factory(kind="wrong_host")).port)
    assert (wrong.chain_verified, wrong.hostname_matches) == (True, False)
    assert wrong.certificate is not None and wrong.certificate.san_dns == ("wrong.example",)


async def test_tls_probe_reports_an_untrusted_chain(
    make_policy: PolicyFactory, https_server: LocalHTTPServer
) -> None:
    info = await tls_probe(make_policy(LOCAL, ca_pem=None), "app.test", https_server.port)
    assert info.chain_verified is False
    assert "unable to get local issuer certificate" in (info.chain_error or "")


async def test_tls_probe_sends_the_given_server_name(
    make_policy: PolicyFactory, https_server: LocalHTTPServer
) -> None:
    info = await tls_probe(make_policy(LOCAL), "127.0.0.1", https_server.port, server_name="www.app.test")
    assert (info.server_name, info.hostname_matches) == ("www.app.test", True)
    assert https_server.server_names == ["www.app.test", "www.app.test"]
    by_ip = await tls_probe(make_policy(LOCAL), "127.0.0.1", https_server.port)
    assert (by_ip.server_name, by_ip.hostname_matches) == ("127.0.0.1", True)
    assert https_server.server_names[2:] == [None, None]


async def test_tls_probe_is_refused_and_times_out_like_the_rest(
    make_policy: PolicyFactory, http_server: LocalHTTPServer, silent_server: SilentServer
) -> None:
    with pytest.raises(TargetRefusedError):
        await tls_probe(make_policy(), "127.0.0.1", silent_server.port)
    with pytest.raises(ToolError, match=r"TLS handshake .* failed: timed out"):
        await tls_probe(make_policy(LOCAL, connect_timeout=0.3), "127.0.0.1", silent_server.port)
    with pytest.raises(ToolError, match=r"TLS handshake .* failed"):
        await tls_probe(make_policy(LOCAL, connect_timeout=0.3), "127.0.0.1", http_server.port)


# -- protocol versions ---------------------------------------------------------------------------


async def test_versions_of_a_default_server(
    make_policy: PolicyFactory, https_server: LocalHTTPServer
) -> None:
    results = {
        r.version: r for r in await probe_tls_versions(make_policy(LOCAL), "app.test", https_server.port)
    }
    assert list(results) == ["TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3"]
    assert results["TLSv1.2"].status == "accepted" and results["TLSv1.2"].cipher
    assert results["TLSv1.3"].status == "accepted"
    # Python's default server context does not take TLS 1.0/1.1; the honest answers are these two.
    for legacy in ("TLSv1", "TLSv1.1"):
        assert results[legacy].status in ("refused", "not_testable_locally")


async def test_versions_capped_by_the_server_are_refused(
    make_policy: PolicyFactory, server_factory: ServerFactory
) -> None:
    policy = make_policy(LOCAL)
    old = await server_factory(maximum_version=ssl.TLSVersion.TLSv1_2)
    new = await server_factory(minimum_version=ssl.TLSVersion.TLSv1_3)
    versions = ("TLSv1.2", "TLSv1.3")
    assert [r.status for r in await probe_tls_versions(policy, "127.0.0.1", old.port, versions=versions)] == [
        "accepted",
        "refused",
    ]
    assert [r.status for r in await probe_tls_versions(policy, "127.0.0.1", new.port, versions=versions)] == [
        "refused",
        "accepted",
    ]


async def test_legacy_version_accepted_when_both_sides_can_speak_it(
    make_policy: PolicyFactory, certs: CertificateSet
) -> None:
    context = certs.server_context("valid")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        context.minimum_version = ssl.TLSVersion.TLSv1
        context.maximum_version = ssl.TLSVersion.TLSv1
    context.set_ciphers("ALL:@SECLEVEL=0")
    server = LocalHTTPServer(ssl_context=context)
    await server.start()
    try:
        policy = make_policy(LOCAL)
        (result,) = await probe_tls_versions(policy, "127.0.0.1", server.port, versions=("TLSv1",))
        if tlsprobe.locally_testable("TLSv1"):
            # tls_probe retries a refused handshake with legacy settings, so the certificate is reported.
            info = await tls_probe(policy, "app.test", server.port)
            assert (info.version, info.hostname_matches) == ("TLSv1", True)
    finally:
        await server.stop()
    expected = "accepted" if tlsprobe.locally_testable("TLSv1") else "not_testable_locally"
    assert result.status == expected


async def test_versions_this_machine_cannot_speak_are_not_reported_as_refused(
    make_policy: PolicyFactory, https_server: LocalHTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tlsprobe, "locally_testable", lambda version: version != "TLSv1.1")
    results = await probe_tls_versions(make_policy(LOCAL), "127.0.0.1", https_server.port)
    status = {r.version: r.status for r in results}
    assert status["TLSv1.1"] == "not_testable_locally"
    assert "cannot negotiate TLSv1.1" in (results[1].detail or "")


async def test_unknown_version_name_is_refused(make_policy: PolicyFactory) -> None:
    with pytest.raises(ValueError, match=r"unknown TLS versions"):
        await probe_tls_versions(make_policy(LOCAL), "127.0.0.1", 443, versions=("SSLv3",))


# -- host name matching (certinfo) -------------------------------------------------------------


def _certificate(dns: tuple[str, ...] = (), ips: tuple[str, ...] = ()) -> CertificateInfo:
    moment = datetime(2030, 1, 1, tzinfo=UTC)
    return CertificateInfo(
        subject="CN=x",
        issuer="CN=ca",
        common_name="cn-only.example",
        san_dns=dns,
        san_ip=ips,
        not_before=moment,
        not_after=moment,
        serial="1",
        sha256="00",
        self_signed=False,
        key_type="EC",
        key_bits=256,
        signature_hash="sha256",
    )


@pytest.mark.parametrize(
    ("dns", "ips", "name", "matches"),
    [
        (("example.com",), (), "example.com", True),
        (("Example.COM",), (), "example.com.", True),
        (("*.example.com",), (), "www.example.com", True),
        (("*.example.com",), (), "example.com", False),
        (("*.example.com",), (), "a.b.example.com", False),
        (("*.example.com",), (), "wwwexample.com", False),
        (("example.com",), ("127.0.0.1",), "127.0.0.1", True),
        (("127.0.0.1",), (), "127.0.0.1", False),
        ((), ("::1",), "[::1]", True),
        ((), (), "cn-only.example", False),
    ],
)
def test_hostname_matching_follows_rfc_6125(
    dns: tuple[str, ...], ips: tuple[str, ...], name: str, matches: bool
) -> None:
    assert hostname_matches(_certificate(dns, ips), name) is matches
