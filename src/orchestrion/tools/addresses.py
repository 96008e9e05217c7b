"""Which IP addresses a tool may not reach unless the operator allows them, and why.

`deny_reason` names the first special-purpose range an address falls in, or returns None for a
globally routable address. Addresses that carry an IPv4 address inside an IPv6 one (IPv4-mapped
``::ffff:a.b.c.d``, IPv4-compatible ``::a.b.c.d``, NAT64 ``64:ff9b::/96``, 6to4 ``2002::/16``) are
judged by the IPv4 address they carry, since that is where the packets may end up.
"""

from __future__ import annotations

import ipaddress
from typing import TypeAlias

IPAddress: TypeAlias = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork: TypeAlias = ipaddress.IPv4Network | ipaddress.IPv6Network

CLOUD_METADATA_ADDRESSES: frozenset[IPAddress] = frozenset(
    {
        # AWS, GCP, Azure, OpenStack, DigitalOcean, Oracle: the link-local metadata endpoint.
        ipaddress.IPv4Address("169.254.169.254"),
        # AWS over IPv6 (Nitro instances).
        ipaddress.IPv6Address("fd00:ec2::254"),
        # Alibaba Cloud.
        ipaddress.IPv4Address("100.100.100.200"),
    }
)

# Checked in order, so the most specific and most useful reason wins (a metadata address is also
# link-local or CGNAT, but "cloud metadata endpoint" is what the operator needs to read).
_DENIED: tuple[tuple[IPNetwork, str], ...] = tuple(
    (ipaddress.ip_network(cidr), reason)
    for cidr, reason in (
        ("0.0.0.0/8", "unspecified ('this network', 0.0.0.0/8)"),
        ("127.0.0.0/8", "loopback"),
        ("10.0.0.0/8", "private (RFC 1918)"),
        ("172.16.0.0/12", "private (RFC 1918)"),
        ("192.168.0.0/16", "private (RFC 1918)"),
        ("169.254.0.0/16", "link-local"),
        ("100.64.0.0/10", "carrier-grade NAT shared space (RFC 6598)"),
        ("224.0.0.0/4", "multicast"),
        ("255.255.255.255/32", "broadcast"),
        ("240.0.0.0/4", "reserved"),
        ("::/128", "unspecified"),
        ("::1/128", "loopback"),
        ("fc00::/7", "private (unique local, fc00::/7)"),
        ("fe80::/10", "link-local"),
        ("fec0::/10", "site-local (deprecated, fec0::/10)"),
        ("ff00::/8", "multicast"),
    )
)

_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")


def embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """Return the IPv4 address an IPv6 address stands for, if it is one of the embedding forms.

    Args:
        address: Any IPv6 address.

    Returns:
        The carried IPv4 address for IPv4-mapped, IPv4-compatible, NAT64 and 6to4 addresses, else None.
    """
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _NAT64 or (address in _IPV4_COMPATIBLE and int(address) > 1):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def deny_reason(address: IPAddress) -> str | None:
    """Why `address` must not be reached without an explicit allow, or None if it is public.

    Args:
        address: A resolved address.

    Returns:
        A short human reason ("loopback", "cloud metadata endpoint"...), or None.
    """
    if address in CLOUD_METADATA_ADDRESSES:
        return "a cloud metadata endpoint"
    if isinstance(address, ipaddress.IPv6Address):
        carried = embedded_ipv4(address)
        if carried is not None:
            inner = deny_reason(carried)
            return f"{inner} (as the IPv4 address {carried} inside IPv6)" if inner else None
        # Zone ids ("fe80::1%eth0") do not change which range an address is in.
        address = ipaddress.IPv6Address(address.compressed.split("%")[0])
    for network, reason in _DENIED:
        if address.version == network.version and address in network:
            return reason
    if not address.is_global:
        # Documentation, benchmarking and protocol-assignment ranges: nothing a tool should audit.
        return "not globally routable"
    return None
