"""Network analysis tools against real services on 127.0.0.1: port checks, TLS offers, redirect chains.

The services are real listening sockets (`tests.fixtures.net`, `tests.fixtures.banners`): fake SSH,
SMTP, FTP, MySQL and Redis banners, a server that accepts and never speaks, closed and filtered ports,
HTTP and HTTPS servers with a test CA.
"""

from __future__ import annotations

import ssl
import warnings
from typing import Any

import pytest

from orchestrion.domain.findings import Severity
from orchestrion.exceptions import TargetRefusedError, ToolError, ValidationError
from orchestrion.tools import portscan, tlsprobe
from orchestrion.tools.banners import (
    classify_greeting,
    classify_postgres_reply,
    classify_redis_reply,
    classify_reply,
    printable,
)
from orchestrion.tools.base import ToolContext, ToolOutput
from orchestrion.tools.network import HttpChainTool, PortCheckArgs, PortCheckTool, TLSOfferTool
from orchestrion.tools.targets import TargetPolicy
from tests.fixtures import banners
from tests.fixtures.banners import (
    BannerStarter,
    FilteredPort,
    closed_port,
    ftp_server,
    mysql_greeting,
    mysql_server,
    redis_server,
    smtp_server,
    ssh_server,
)
from tests.fixtures.net import (
    CertificateSet,
    LocalHTTPServer,
    PolicyFactory,
    Route,
    ServerFactory,
    SilentServer,
    redirect,
)

# pytest finds fixtures by name in this module.
banner_servers = banners.banner_servers
filtered_port = banners.filtered_port

LOCAL = "127.0.0.1/32"
QUICK = {"banner_timeout": 0.3}


def context(
    policy: TargetPolicy | None, target: str | None, *, active: bool = True, step: str = "s1"
) -> ToolContext:
    return ToolContext(
        task_id="t1", step_id=step, target=target, targets=policy, allow_active_scanning=active
    )


def active_policy(make_policy: PolicyFactory, **overrides: Any) -> TargetPolicy:
    return make_policy(LOCAL, allow_active_scanning=True, **overrides)


def by_port(output: ToolOutput) -> dict[int, dict[str, Any]]:
    return {entry["port"]: entry for entry in output.data["open"]}


def assert_grounded(output: ToolOutput) -> None:
    for finding in output.findings:
        assert finding.observation_indexes, finding.title
        assert all(i < len(output.observations) for i in finding.observation_indexes)


# -- port_check: permission first ------------------------------------------------------------------


async def test_port_check_refuses_when_the_task_does_not_ask_for_active_scanning(
    make_policy: PolicyFactory, banner_servers: BannerStarter
) -> None:
    server = await banner_servers(ssh_server())
    ctx = context(active_policy(make_policy), "127.0.0.1", active=False)
    with pytest.raises(TargetRefusedError, match=r"port_check is an active scan.*task does not ask"):
        await PortCheckTool().run({"ports": [server.port]}, ctx)
    assert server.connections == 0


async def test_port_check_refuses_without_the_operators_permission(
    make_policy: PolicyFactory, banner_servers: BannerStarter
) -> None:
    server = await banner_servers(ssh_server())
    ctx = context(make_policy(LOCAL), "127.0.0.1", active=True)
    with pytest.raises(TargetRefusedError, match=r"operator has not enabled it"):
        await PortCheckTool().run({"ports": [server.port]}, ctx)
    assert server.connections == 0


async def test_port_check_needs_a_policy_and_a_target(make_policy: PolicyFactory) -> None:
    with pytest.raises(ToolError, match=r"needs network access"):
        await PortCheckTool().run({}, context(None, "127.0.0.1"))
    with pytest.raises(ToolError, match=r"needs a target"):
        await PortCheckTool().run({}, context(active_policy(make_policy), None))


async def test_port_check_refuses_a_denied_target_before_connecting(
    make_policy: PolicyFactory, banner_servers: BannerStarter
) -> None:
    server = await banner_servers(ssh_server())
    policy = make_policy(allow_active_scanning=True)  # loopback not allowlisted
    with pytest.raises(TargetRefusedError, match=r"loopback"):
        await PortCheckTool().run({"ports": [server.port]}, context(policy, "app.test"))
    assert server.connections == 0


def test_port_check_arguments_are_bounded() -> None:
    tool = PortCheckTool()
    assert tool.parse_args({}) == PortCheckArgs(ports=portscan.DEFAULT_PORTS)
    bad_ports: list[list[int]] = [list(range(1, 102)), [0], [70000], []]
    for ports in bad_ports:
        with pytest.raises(ToolError, match=r"invalid arguments for port_check"):
            tool.parse_args({"ports": ports})


# -- port_check: states and banners ----------------------------------------------------------------


async def test_port_check_names_services_from_their_banners(
    make_policy: PolicyFactory, banner_servers: BannerStarter
) -> None:
    ssh = await banner_servers(ssh_server())
    smtp = await banner_servers(smtp_server())
    ftp = await banner_servers(ftp_server())
    mysql = await banner_servers(mysql_server())
    closed = closed_port()
    ports = [ssh.port, smtp.port, ftp.port, mysql.port, closed]
    output, _ = await PortCheckTool().run(
        {"ports": ports, **QUICK}, context(active_policy(make_policy), "app.test")
    )
    found = by_port(output)
    assert found[ssh.port]["service"] == "ssh"
    assert found[ssh.port]["product"] == "OpenSSH_9.6p1 Ubuntu-3ubuntu13"
    assert (found[smtp.port]["service"], found[smtp.port]["product"]) == ("smtp", "Postfix")
    assert (found[ftp.port]["service"], found[ftp.port]["product"]) == ("ftp", "vsFTPd 3.0.5")
    assert found[mysql.port]["service"] == "mysql"
    assert found[mysql.port]["product"] == "MySQL 8.0.36-0ubuntu0.22.04.1"
    assert found[mysql.port]["tls"] is True
    assert output.data["closed"] == [closed]
    assert output.data["counts"] == {"open": 4, "closed": 1, "filtered": 0, "error": 0}
    assert "SSH-2.0-OpenSSH_9.6p1" in output.observations[1].summary
    assert any("connection refused" in o.summary and str(closed) in o.summary for o in output.observations)
    # Servers that speak first are never sent anything.
    assert ssh.received == smtp.received == ftp.received == mysql.received == []
    titles = {f.title: f.severity for f in output.findings}
    assert titles == {
        f"FTP open on app.test:{ftp.port}": Severity.MEDIUM,
        f"MySQL port {mysql.port} reachable on app.test": Severity.MEDIUM,
    }
    assert_grounded(output)


async def test_redis_answering_ping_without_a_password_is_high(
    make_policy: PolicyFactory, banner_servers: BannerStarter
) -> None:
    redis = await banner_servers(redis_server())
    output, _ = await PortCheckTool().run(
        {"ports": [redis.port], **QUICK}, context(active_policy(make_policy), "127.0.0.1")
    )
    entry = by_port(output)[redis.port]
    assert (entry["service"], entry["auth"]) == ("redis", "none")
    (finding,) = output.findings
    assert finding.severity is Severity.HIGH
    assert finding.title == f"Redis on 127.0.0.1:{redis.port} answers without authentication"
    assert "+PONG" in output.observations[finding.observation_indexes[0]].summary
    # On a port not known as Redis's, the HTTP probe unmasks it; then one PING, and nothing else.
    commands = [line.split()[0] for line in redis.received if line.strip() and b":" not in line]
    assert commands == [b"HEAD", b"PING"]


async def test_redis_asking_for_a_password_is_medium(
    make_policy: PolicyFactory, banner_servers: BannerStarter
) -> None:
    redis = await banner_servers(redis_server(password_required=True))
    output, _ = await PortCheckTool().run(
        {"ports": [redis.port], **QUICK}, context(active_policy(make_policy), "127.0.0.1")
    )
    assert by_port(output)[redis.port]["auth"] == "required"
    (finding,) = output.findings
    assert finding.severity is Severity.MEDIUM
    assert "asks for credentials" in finding.description


async def test_redis_ports_get_only_a_ping(
    make_policy: PolicyFactory, banner_servers: BannerStarter, monkeypatch: pytest.MonkeyPatch
) -> None:
    redis = await banner_servers(redis_server())
    monkeypatch.setattr(portscan, "_REDIS_PORTS", frozenset({redis.port}))
    output, _ = await PortCheckTool().run(
        {"ports": [redis.port], **QUICK}, context(active_policy(make_policy), "127.0.0.1")
    )
    assert redis.received == [b"PING\r\n"]
    assert by_port(output)[redis.port]["auth"] == "none"
    assert [f.severity for f in output.findings] == [Severity.HIGH]


async def test_a_server_that_never_speaks_is_open_and_unidentified(
    make_policy: PolicyFactory, silent_server: SilentServer
) -> None:
    output, _ = await PortCheckTool().run(
        {"ports": [silent_server.port], **QUICK}, context(active_policy(make_policy), "127.0.0.1")
    )
    entry = by_port(output)[silent_server.port]
    assert (entry["service"], entry["banner"], entry["identified_by"]) == (None, None, "port number")
    assert output.findings == ()
    assert "unidentified service" in output.observations[1].summary


async def test_filtered_ports_are_told_from_closed_ones(
    make_policy: PolicyFactory, filtered_port: FilteredPort
) -> None:
    closed = closed_port()
    policy = active_policy(make_policy, connect_timeout=0.5)
    output, _ = await PortCheckTool().run(
        {"ports": [filtered_port.port, closed], **QUICK}, context(policy, "127.0.0.1")
    )
    assert (output.data["filtered"], output.data["closed"]) == ([filtered_port.port], [closed])
    summaries = [o.summary for o in output.observations]
    assert any("filtered (no answer within 0.5s" in s and str(filtered_port.port) in s for s in summaries)
    assert output.observations[-1].data["ports"] == {str(filtered_port.port): "no answer within 0.5s"}


async def test_http_ports_get_a_head_request_and_show_the_server(
    make_policy: PolicyFactory, http_server: LocalHTTPServer
) -> None:
    output, _ = await PortCheckTool().run(
        {"ports": [http_server.port], **QUICK}, context(active_policy(make_policy), "app.test")
    )
    entry = by_port(output)[http_server.port]
    assert (entry["service"], entry["product"], entry["http_status"]) == ("http", "TestServer/1.0", 200)
    assert [(r.method, r.path) for r in http_server.requests] == [("HEAD", "/")]


async def test_a_tls_port_is_named_by_a_head_over_tls(
    make_policy: PolicyFactory, https_server: LocalHTTPServer
) -> None:
    output, _ = await PortCheckTool().run(
        {"ports": [https_server.port], **QUICK}, context(active_policy(make_policy), "app.test")
    )
    entry = by_port(output)[https_server.port]
    assert (entry["service"], entry["product"], entry["tls"]) == ("https", "TestServer/1.0", True)
    assert [r.method for r in https_server.requests] == ["HEAD"]


async def test_elasticsearch_answering_without_credentials_is_high(
    make_policy: PolicyFactory, server_factory: ServerFactory
) -> None:
    elastic = [("X-elastic-product", "Elasticsearch"), ("Content-Type", "application/json")]
    open_search = await server_factory(kind=None, routes={"/": Route(headers=elastic)})
    locked = await server_factory(
        kind=None, routes={"/": Route(status=401, headers=[*elastic, ("WWW-Authenticate", "Basic")])}
    )
    output, _ = await PortCheckTool().run(
        {"ports": [open_search.port, locked.port], **QUICK}, context(active_policy(make_policy), "127.0.0.1")
    )
    found = by_port(output)
    assert (found[open_search.port]["service"], found[open_search.port]["auth"]) == ("elasticsearch", "none")
    assert found[locked.port]["auth"] == "required"
    severities = {f.title: f.severity for f in output.findings}
    assert severities[f"Elasticsearch on 127.0.0.1:{open_search.port} answers without authentication"] is (
        Severity.HIGH
    )
    assert severities[f"Elasticsearch port {locked.port} reachable on 127.0.0.1"] is Severity.MEDIUM


async def test_the_port_written_in_the_target_is_checked_too(
    make_policy: PolicyFactory, banner_servers: BannerStarter
) -> None:
    ssh = await banner_servers(ssh_server())
    closed = closed_port()
    output, _ = await PortCheckTool().run(
        {"ports": [closed], **QUICK}, context(active_policy(make_policy), f"127.0.0.1:{ssh.port}")
    )
    assert list(by_port(output)) == [ssh.port]
    assert output.data["closed"] == [closed]


# -- banners (pure) ------------------------------------------------------------------------------


def test_greetings_name_telnet_pop3_imap_and_a_mysql_refusal() -> None:
    assert classify_greeting(23, b"\xff\xfd\x18\xff\xfd\x20").service == "telnet"
    assert classify_greeting(110, b"+OK Dovecot ready.\r\n").product == "Dovecot"
    assert classify_greeting(143, b"* OK [CAPABILITY IMAP4rev1] ready\r\n").service == "imap"
    refusal = b"\xffj\x04Host '10.1.2.3' is not allowed to connect to this MySQL server"
    info = classify_greeting(3306, len(refusal).to_bytes(3, "little") + b"\x00" + refusal)
    assert (info.service, info.auth) == ("mysql", "refused")
    assert info.banner is not None and info.banner.startswith("error 1130:")
    maria = classify_greeting(3306, mysql_greeting("5.5.5-10.11.6-MariaDB", ssl=False))
    assert (maria.product, maria.tls) == ("MariaDB 5.5.5-10.11.6-MariaDB", False)
    assert classify_greeting(2121, b"220 Service ready\r\n").service == "smtp"
    assert classify_greeting(21, b"220 Service ready\r\n").service == "ftp"


def test_probe_replies_name_mongodb_redis_tls_and_postgresql() -> None:
    mongo = (
        b"HTTP/1.0 200 OK\r\nConnection: close\r\nContent-Type: text/plain\r\n\r\n"
        b"It looks like you are trying to access MongoDB over HTTP on the native driver port.\r\n"
    )
    assert classify_reply(27017, mongo).service == "mongodb"
    assert classify_reply(7000, b"-ERR unknown command 'HEAD'\r\n").service == "redis"
    assert classify_reply(4433, b"\x15\x03\x01\x00\x02\x02\x46").service == "tls"
    assert classify_redis_reply(b"-DENIED Redis is running in protected mode\r\n").auth == "refused"
    assert classify_postgres_reply(b"S").tls is True
    assert classify_postgres_reply(b"N").notes == ("does not offer TLS",)


def test_banners_are_printable_redacted_and_short() -> None:
    token = "ghp_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8"
    shown = printable(f"220 hello {token}\x00\x07".encode())
    assert token not in shown
    assert shown.startswith("220 hello ghp_") and shown.endswith("\\x00\\x07")
    assert len(printable(b"x" * 1000)) == 200


# -- tls_offer -------------------------------------------------------------------------------------


async def test_tls_offer_of_a_modern_server(
    make_policy: PolicyFactory, https_server: LocalHTTPServer
) -> None:
    output, _ = await TLSOfferTool().run(
        {}, context(make_policy(LOCAL), f"https://app.test:{https_server.port}/")
    )
    versions = output.data["versions"]
    assert versions["TLSv1.2"]["status"] == versions["TLSv1.3"]["status"] == "accepted"
    assert versions["TLSv1.3"]["cipher"].startswith("TLS_")
    assert versions["TLSv1"]["status"] in ("refused", "not_testable_locally")
    assert output.data["default"]["version"] == "TLSv1.3"
    assert output.data["alpn"] is None
    assert "ALPN not measured" in output.observations[-1].summary
    assert output.findings == ()


async def test_tls_offer_without_tls_13_is_info(
    make_policy: PolicyFactory, server_factory: ServerFactory
) -> None:
    server = await server_factory(maximum_version=ssl.TLSVersion.TLSv1_2)
    output, _ = await TLSOfferTool().run({"port": server.port}, context(make_policy(LOCAL), "app.test"))
    (finding,) = output.findings
    assert (finding.title, finding.severity) == (
        f"TLS 1.3 not offered on app.test:{server.port}",
        Severity.INFO,
    )
    cited = [output.observations[i].summary for i in finding.observation_indexes]
    assert "accepts TLSv1.2" in cited[0] and "refuses TLSv1.3" in cited[1]


async def test_tls_offer_flags_legacy_versions(make_policy: PolicyFactory, certs: CertificateSet) -> None:
    if not tlsprobe.locally_testable("TLSv1"):
        pytest.skip("this machine's OpenSSL cannot speak TLS 1.0")
    context_ = certs.server_context("valid")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        context_.minimum_version = ssl.TLSVersion.TLSv1
    context_.set_ciphers("ALL:@SECLEVEL=0")
    server = LocalHTTPServer(ssl_context=context_)
    await server.start()
    try:
        output, _ = await TLSOfferTool().run({}, context(make_policy(LOCAL), f"127.0.0.1:{server.port}"))
    finally:
        await server.stop()
    legacy = [f for f in output.findings if f.severity is Severity.MEDIUM]
    assert legacy[0].title == f"TLS 1 and TLS 1.1 accepted on 127.0.0.1:{server.port}"
    assert len(legacy[0].observation_indexes) == 2
    assert_grounded(output)


async def test_tls_offer_on_a_closed_port_is_a_clear_error(make_policy: PolicyFactory) -> None:
    with pytest.raises(ToolError, match=r"no TLS handshake with 127.0.0.1:\d+: cannot connect"):
        await TLSOfferTool().run({}, context(make_policy(LOCAL), f"127.0.0.1:{closed_port()}"))


async def test_tls_offer_needs_a_target(make_policy: PolicyFactory) -> None:
    with pytest.raises(ToolError, match=r"tls_offer needs a target"):
        await TLSOfferTool().run({}, context(make_policy(LOCAL), " "))
    with pytest.raises(ValidationError, match=r"scheme 'ftp' is not accepted"):
        await TLSOfferTool().run({}, context(make_policy(LOCAL), "ftp://app.test/"))


# -- http_chain --------------------------------------------------------------------------------------


async def test_http_chain_upgrades_to_https_with_hsts(
    make_policy: PolicyFactory, server_factory: ServerFactory, https_server: LocalHTTPServer
) -> None:
    secure = https_server.url("/secure-headers", host="app.test")
    plain = await server_factory(kind=None, routes={"/": redirect(secure, 301)})
    output, _ = await HttpChainTool().run({}, context(make_policy(LOCAL), plain.url("/", host="app.test")))
    assert [h["status"] for h in output.data["hops"]] == [301, 200]
    assert output.data["transitions"] == [{"hop": 1, "notes": ["upgrade http->https"]}]
    assert output.data["hsts"] == "max-age=63072000; includeSubDomains"
    assert output.findings == ()
    final = output.observations[-1]
    assert "Final response: 200" in final.summary and final.data["http_version"] == "HTTP/1.1"
    assert output.observations[1].data["tls"]["chain_verified"] is True


async def test_http_chain_without_https_is_medium(
    make_policy: PolicyFactory, http_server: LocalHTTPServer
) -> None:
    output, _ = await HttpChainTool().run({}, context(make_policy(LOCAL), http_server.url("/redirect-chain")))
    assert [h["status"] for h in output.data["hops"]] == [301, 302, 200]
    (finding,) = output.findings
    assert (finding.title, finding.severity) == (
        "127.0.0.1 serves plain HTTP without redirecting to HTTPS",
        Severity.MEDIUM,
    )
    assert finding.observation_indexes == (0, 1, 2, 3)


async def test_http_chain_flags_a_missing_hsts_and_a_downgrade(
    make_policy: PolicyFactory, https_server: LocalHTTPServer, http_server: LocalHTTPServer
) -> None:
    policy = make_policy(LOCAL)
    output, _ = await HttpChainTool().run({}, context(policy, https_server.url("/", host="app.test")))
    assert [(f.title, f.severity) for f in output.findings] == [
        (f"No Strict-Transport-Security on https://app.test:{https_server.port}/", Severity.LOW)
    ]
    https_server.routes["/down"] = redirect(http_server.url("/"))
    output, _ = await HttpChainTool().run({}, context(policy, https_server.url("/down", host="app.test")))
    assert output.data["transitions"][0]["notes"] == [
        "downgrade https->http",
        "cross-domain app.test->127.0.0.1",
    ]
    assert [(f.title, f.severity, f.observation_indexes) for f in output.findings] == [
        ("Redirect from HTTPS to HTTP", Severity.MEDIUM, (0,))
    ]


async def test_http_chain_reports_cross_domain_hops_and_loops(
    make_policy: PolicyFactory, http_server: LocalHTTPServer
) -> None:
    policy = make_policy(LOCAL)
    http_server.routes["/away"] = redirect(http_server.url("/", host="other.test"))
    http_server.routes["/www"] = redirect(http_server.url("/", host="www.app.test"))
    output, _ = await HttpChainTool().run({}, context(policy, http_server.url("/away", host="app.test")))
    assert output.data["transitions"][0]["notes"] == ["cross-domain app.test->other.test"]
    output, _ = await HttpChainTool().run({}, context(policy, http_server.url("/www", host="app.test")))
    assert output.data["transitions"][0]["notes"] == ["host change app.test->www.app.test"]
    output, _ = await HttpChainTool().run({}, context(policy, http_server.url("/redirect-loop")))
    assert "redirect loop" in output.data["stopped"]
    assert ("Redirect loop", Severity.LOW) in [(f.title, f.severity) for f in output.findings]


async def test_http_chain_stops_at_the_policys_redirect_limit(
    make_policy: PolicyFactory, http_server: LocalHTTPServer
) -> None:
    for step in range(5):
        http_server.routes[f"/r{step}"] = redirect(f"/r{step + 1}")
    output, _ = await HttpChainTool().run(
        {}, context(make_policy(LOCAL, max_redirects=2), http_server.url("/r0"))
    )
    assert len(output.data["hops"]) == 3
    assert output.data["stopped"] == "more than 2 redirects"
    assert "Too many redirects" in [f.title for f in output.findings]


async def test_http_chain_records_a_refused_hop_without_following_it(
    make_policy: PolicyFactory, http_server: LocalHTTPServer
) -> None:
    output, _ = await HttpChainTool().run(
        {}, context(make_policy(LOCAL), http_server.url("/redirect-metadata"))
    )
    assert [h["status"] for h in output.data["hops"]] == [302]
    assert "http://169.254.169.254/latest/meta-data/ was refused" in output.data["stopped"]
    assert "chain stopped" in output.observations[-1].summary


async def test_http_chain_refuses_a_denied_target(
    make_policy: PolicyFactory, http_server: LocalHTTPServer
) -> None:
    with pytest.raises(TargetRefusedError):
        await HttpChainTool().run({}, context(make_policy(), http_server.url("/")))
    with pytest.raises(ToolError, match=r"http_chain needs network access"):
        await HttpChainTool().run({}, context(None, http_server.url("/")))
    assert http_server.requests == []


async def test_https_ports_get_the_head_over_tls_directly(
    make_policy: PolicyFactory, https_server: LocalHTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(portscan, "_HTTPS_PORTS", frozenset({https_server.port}))
    output, _ = await PortCheckTool().run(
        {"ports": [https_server.port], **QUICK}, context(active_policy(make_policy), "app.test")
    )
    assert by_port(output)[https_server.port]["service"] == "https"
    # One TLS handshake for the HEAD and one verifying the chain; no plain-text probe before them.
    assert https_server.server_names == ["app.test", "app.test"]


async def test_a_name_that_rebinds_mid_scan_is_not_followed(
    make_policy: PolicyFactory, banner_servers: BannerStarter
) -> None:
    ssh = await banner_servers(ssh_server())
    output, _ = await PortCheckTool().run(
        {"ports": [ssh.port], **QUICK}, context(active_policy(make_policy), "rebind.test")
    )
    assert output.data["counts"]["error"] == 1
    summary = output.observations[-1].summary
    assert summary.startswith(f"1 port of rebind.test not checked (connection error): {ssh.port} (")
    assert "169.254.169.254" in summary
    assert ssh.connections == 0
