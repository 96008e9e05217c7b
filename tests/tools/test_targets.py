"""The target policy: parsing targets, resolving once, refusing every special-purpose range."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from orchestrion.exceptions import ConfigurationError, TargetRefusedError, ToolError, ValidationError
from orchestrion.settings import Settings
from orchestrion.tools.addresses import deny_reason
from orchestrion.tools.targets import TargetPolicy
from tests.fixtures.dns import LocalDNSServer
from tests.fixtures.net import PolicyFactory

# -- parse_target --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "scheme", "host", "port", "path"),
    [
        ("https://example.com/path?q=1", "https", "example.com", None, "/path?q=1"),
        ("http://example.com:8080", "http", "example.com", 8080, ""),
        ("HTTPS://WWW.Example.COM./", "https", "www.example.com", None, "/"),
        ("example.com", None, "example.com", None, ""),
        ("example.com:8443", None, "example.com", 8443, ""),
        ("  example.com  ", None, "example.com", None, ""),
        ("93.184.216.34", None, "93.184.216.34", None, ""),
        ("93.184.216.34:443", None, "93.184.216.34", 443, ""),
        ("[2001:db8::1]:8443", None, "2001:db8::1", 8443, ""),
        ("[::1]", None, "::1", None, ""),
        ("::1", None, "::1", None, ""),
        ("https://[2001:DB8::1]:8443/x", "https", "2001:db8::1", 8443, "/x"),
        ("https://bücher.example/", "https", "xn--bcher-kva.example", None, "/"),
        ("_dmarc.example.com", None, "_dmarc.example.com", None, ""),
    ],
)
def test_parse_target_accepts_urls_hosts_and_ip_literals(
    text: str, scheme: str | None, host: str, port: int | None, path: str
) -> None:
    target = TargetPolicy().parse_target(text)
    assert (target.scheme, target.host, target.port, target.path) == (scheme, host, port, path)
    assert target.original == text


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("http://user@example.com/", "user info"),
        ("https://user:secret@example.com/", "user info"),
        ("http://example.com\\@evil.test/", "user info"),
        ("ftp://example.com/file", "scheme 'ftp'"),
        ("file:///etc/passwd", "scheme 'file'"),
        ("gopher://example.com", "scheme 'gopher'"),
        ("javascript:alert(1)", "scheme 'javascript'"),
        ("mailto:admin@example.com", "scheme 'mailto'"),
        ("http://", "names no host"),
        ("exa mple.com", "whitespace"),
        ("http://[::1", "not a valid target"),
        ("http://example.com:99999/", "not a valid target"),
        ("http://example.com:0/", "port 0"),
        ("[example.com]:80", "not a valid target"),
        ("-bad-.example.com", "not a valid host name"),
        ("a" * 64 + ".example.com", "not a valid host name"),
        ("127.1", "ambiguous numeric"),
        ("http://0x7f000001/", "ambiguous numeric"),
        ("2130706433", "ambiguous numeric"),
        ("example.com\x00", "control"),
    ],
)
def test_parse_target_refuses_garbage_user_info_and_other_schemes(text: str, says: str) -> None:
    with pytest.raises(ValidationError) as info:
        TargetPolicy().parse_target(text)
    assert info.value.field == "target"
    assert says in info.value.message
    if says not in ("port 0",):
        assert "accepted: https://host[:port][/path]" in info.value.message


@pytest.mark.parametrize(
    ("text", "url", "port"),
    [
        ("example.com", "https://example.com/", 443),
        ("example.com:80", "http://example.com:80/", 80),
        ("http://example.com", "http://example.com/", 80),
        ("[::1]:8443", "https://[::1]:8443/", 8443),
    ],
)
def test_target_url_defaults_to_https(text: str, url: str, port: int) -> None:
    target = TargetPolicy().parse_target(text)
    assert (target.url, target.effective_port) == (url, port)


# -- denied ranges ---------------------------------------------------------------------------------

DENIED = [
    ("127.0.0.1", "loopback"),
    ("127.255.255.254", "loopback"),
    ("::1", "loopback"),
    ("10.1.2.3", "private (RFC 1918)"),
    ("172.16.0.1", "private (RFC 1918)"),
    ("172.31.255.255", "private (RFC 1918)"),
    ("192.168.1.1", "private (RFC 1918)"),
    ("fc00::1", "unique local"),
    ("fd12:3456::1", "unique local"),
    ("169.254.1.1", "link-local"),
    ("fe80::1", "link-local"),
    ("169.254.169.254", "cloud metadata"),
    ("fd00:ec2::254", "cloud metadata"),
    ("100.100.100.200", "cloud metadata"),
    ("100.64.0.1", "carrier-grade NAT"),
    ("100.127.255.254", "carrier-grade NAT"),
    ("224.0.0.1", "multicast"),
    ("239.255.255.250", "multicast"),
    ("ff02::1", "multicast"),
    ("0.0.0.0", "unspecified"),
    ("::", "unspecified"),
    ("240.0.0.1", "reserved"),
    ("255.255.255.255", "broadcast"),
    ("fec0::1", "site-local"),
    ("192.0.2.10", "not globally routable"),
    ("198.18.0.1", "not globally routable"),
    ("::ffff:127.0.0.1", "loopback (as the IPv4 address 127.0.0.1 inside IPv6)"),
    ("::ffff:10.0.0.1", "private (RFC 1918) (as the IPv4 address 10.0.0.1"),
    ("::ffff:169.254.169.254", "cloud metadata"),
    ("::ffff:100.64.0.1", "carrier-grade NAT"),
    ("::10.0.0.1", "private (RFC 1918) (as the IPv4 address"),
    ("64:ff9b::a00:1", "private (RFC 1918) (as the IPv4 address 10.0.0.1"),
    ("2002:a9fe:a9fe::1", "cloud metadata"),
]


@pytest.mark.parametrize(("address", "reason"), DENIED)
async def test_resolve_refuses_every_special_purpose_range(address: str, reason: str) -> None:
    with pytest.raises(TargetRefusedError) as info:
        await TargetPolicy().resolve(address, 443)
    error = info.value
    assert reason in error.reason
    assert error.address == ipaddress.ip_address(address).compressed
    assert error.field == "target"
    assert "ORCHESTRION_TOOL_ALLOW_TARGETS" in error.message
    assert error.details["address"] == error.address


async def test_refusal_message_names_address_reason_and_setting() -> None:
    with pytest.raises(TargetRefusedError) as info:
        await TargetPolicy().resolve("127.0.0.1", 80)
    assert info.value.message == "127.0.0.1 is loopback; allow it with ORCHESTRION_TOOL_ALLOW_TARGETS"


@pytest.mark.parametrize("address", ["93.184.216.34", "8.8.8.8", "2606:4700:4700::1111", "1.1.1.1"])
async def test_resolve_passes_public_addresses(address: str) -> None:
    assert await TargetPolicy().resolve(address, 443) == [ipaddress.ip_address(address)]


def test_deny_reason_is_none_for_public_addresses_inside_ipv6() -> None:
    assert deny_reason(ipaddress.ip_address("::ffff:8.8.8.8")) is None
    assert deny_reason(ipaddress.ip_address("64:ff9b::808:808")) is None


# -- the allowlist -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("allow", "address"),
    [
        ("10.0.0.0/8", "10.2.3.4"),
        ("127.0.0.1", "127.0.0.1"),
        ("127.0.0.1/32", "127.0.0.1"),
        ("::1", "::1"),
        ("[::1]", "::1"),
        ("fd00::/8", "fd12::1"),
        ("10.0.0.0/8", "::ffff:10.0.0.1"),
        ("169.254.169.254/32", "169.254.169.254"),
    ],
)
async def test_allowlist_by_cidr_or_address(allow: str, address: str) -> None:
    policy = TargetPolicy(allow=(allow,))
    assert await policy.resolve(address, 80) == [ipaddress.ip_address(address)]


async def test_cidr_allow_covers_only_its_range() -> None:
    policy = TargetPolicy(allow=("10.0.0.0/8",))
    with pytest.raises(TargetRefusedError, match=r"192.168.1.1 is private"):
        await policy.resolve("192.168.1.1", 80)


async def test_allowlist_by_host_name(make_policy: PolicyFactory) -> None:
    with pytest.raises(TargetRefusedError) as info:
        await make_policy().resolve("private.test", 80)
    assert info.value.message == (
        "private.test resolves to 10.0.0.1, which is private (RFC 1918); "
        "allow it with ORCHESTRION_TOOL_ALLOW_TARGETS"
    )
    assert info.value.host == "private.test"
    allowed = make_policy("Private.Test")
    assert await allowed.resolve("private.test", 80) == [ipaddress.ip_address("10.0.0.1")]


async def test_wildcard_allow_covers_names_below_not_the_apex(make_policy: PolicyFactory) -> None:
    policy = make_policy("*.app.test")
    assert await policy.resolve("www.app.test", 80) == [ipaddress.ip_address("127.0.0.1")]
    with pytest.raises(TargetRefusedError, match=r"app.test resolves to 127.0.0.1"):
        await policy.resolve("app.test", 80)


async def test_host_name_allow_never_opens_a_metadata_endpoint(make_policy: PolicyFactory) -> None:
    with pytest.raises(TargetRefusedError) as info:
        await make_policy("metadata.test").resolve("metadata.test", 80)
    assert "cloud metadata" in info.value.reason
    assert "by address" in info.value.message
    by_address = make_policy("169.254.169.254/32")
    assert await by_address.resolve("metadata.test", 80) == [ipaddress.ip_address("169.254.169.254")]


def test_host_name_allow_does_not_open_metadata_inside_ipv6() -> None:
    policy = TargetPolicy(allow=("meta.test",))
    policy.check_address("meta.test", ipaddress.ip_address("10.0.0.1"))
    for address in ("::ffff:169.254.169.254", "2002:a9fe:a9fe::1", "64:ff9b::a9fe:a9fe"):
        with pytest.raises(TargetRefusedError, match=r"cloud metadata"):
            policy.check_address("meta.test", ipaddress.ip_address(address))


async def test_every_resolved_address_is_checked(make_policy: PolicyFactory) -> None:
    # multi.test has 127.0.0.1 (allowed) and 10.0.0.1 (not): the whole name is refused.
    with pytest.raises(TargetRefusedError) as info:
        await make_policy("127.0.0.1/32").resolve("multi.test", 80)
    assert info.value.address == "10.0.0.1"


async def test_ipv4_mapped_answer_from_dns_is_refused(make_policy: PolicyFactory) -> None:
    with pytest.raises(
        TargetRefusedError, match=r"::ffff:a00:1, which is private \(RFC 1918\) \(as the IPv4"
    ):
        await make_policy().resolve("mapped.test", 80)


async def test_resolve_returns_both_families(make_policy: PolicyFactory) -> None:
    addresses = await make_policy("127.0.0.1/32", "::1").resolve("example.test", 80)
    assert set(addresses) == {ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("::1")}


async def test_resolve_asks_dns_once_per_family(
    make_policy: PolicyFactory, dns_server: LocalDNSServer
) -> None:
    await make_policy("127.0.0.1/32").resolve("app.test", 80)
    assert dns_server.count("app.test", "A") == 1
    assert dns_server.count("app.test", "AAAA") == 1


async def test_unknown_name_is_a_tool_error(make_policy: PolicyFactory) -> None:
    with pytest.raises(ToolError, match=r"cannot resolve missing.test: no such domain"):
        await make_policy().resolve("missing.test", 80)


async def test_unanswering_nameserver_times_out_quickly() -> None:
    # A UDP port nobody listens on: dnspython keeps retrying until the policy's connect timeout.
    policy = TargetPolicy(nameservers=("127.0.0.1:9",), connect_timeout=0.3)
    with pytest.raises(ToolError, match=r"(timed out|cannot resolve)"):
        await policy.resolve("example.test", 80)


async def test_system_resolver_is_used_without_nameservers() -> None:
    addresses = await TargetPolicy(allow=("localhost",)).resolve("localhost", 80)
    assert addresses and all(address.is_loopback for address in addresses)
    with pytest.raises(TargetRefusedError, match=r"localhost resolves to .* which is loopback"):
        await TargetPolicy().resolve("localhost", 80)


@pytest.mark.parametrize("entry", ["not a host", "http://x", "-bad-"])
def test_invalid_allow_entry_is_a_configuration_error(entry: str) -> None:
    with pytest.raises(ConfigurationError, match=r"ORCHESTRION_TOOL_ALLOW_TARGETS"):
        TargetPolicy(allow=(entry,))


@pytest.mark.parametrize("entry", ["dns.example", "127.0.0.1:99999", "[::1]:x"])
def test_invalid_nameserver_is_a_configuration_error(entry: str) -> None:
    with pytest.raises(ConfigurationError, match=r"nameserver"):
        TargetPolicy(nameservers=(entry,))


def test_policy_from_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("ORCHESTRION_TOOL_ALLOW_TARGETS", "10.0.0.0/8, intranet.test")
    monkeypatch.setenv("ORCHESTRION_TOOL_ALLOW_ACTIVE_SCANNING", "true")
    monkeypatch.setenv("ORCHESTRION_TOOL_READ_TIMEOUT_SECONDS", "3")
    policy = TargetPolicy.from_settings(Settings(home=tmp_path))
    assert policy.allow == ("10.0.0.0/8", "intranet.test")
    assert policy.allow_active_scanning is True
    assert (policy.connect_timeout, policy.read_timeout) == (5.0, 3.0)
    assert policy.max_response_bytes == 2 * 1024 * 1024
    assert policy.max_redirects == 5


def test_settings_default_to_no_active_scanning(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path)
    assert settings.tool_allow_active_scanning is False
    assert TargetPolicy.from_settings(settings).allow_active_scanning is False


# -- active scanning -----------------------------------------------------------------------------


def test_active_tools_need_both_the_task_and_the_operator() -> None:
    TargetPolicy(allow_active_scanning=True).require_active(True, "port_check")


@pytest.mark.parametrize(
    ("operator", "task", "mentions", "omits"),
    [
        (False, True, ["ORCHESTRION_TOOL_ALLOW_ACTIVE_SCANNING=true"], ["the task does not ask"]),
        (True, False, ["the task does not ask for it (allow_active_scanning: true)"], ["operator"]),
        (False, False, ["ORCHESTRION_TOOL_ALLOW_ACTIVE_SCANNING", "the task does not ask"], []),
    ],
)
def test_active_scanning_refusal_says_which_permission_is_missing(
    operator: bool, task: bool, mentions: list[str], omits: list[str]
) -> None:
    with pytest.raises(TargetRefusedError) as info:
        TargetPolicy(allow_active_scanning=operator).require_active(task, "port_check")
    error = info.value
    assert error.message.startswith("port_check is an active scan and is not permitted: ")
    assert error.field == "allow_active_scanning"
    for text in mentions:
        assert text in error.message
    for text in omits:
        assert text not in error.message
