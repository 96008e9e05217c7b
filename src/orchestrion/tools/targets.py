"""The network target policy: which hosts tools may reach, and how a target is named.

Every network tool reaches its target through `orchestrion.tools.netclient`, which asks this policy
twice: `parse_target` turns what the user wrote into a `Target` (refusing user-info, other schemes and
garbage), and `resolve` turns a host into the addresses that may be connected to. `resolve` checks
EVERY address a name resolves to, so a name with one public and one private address is refused, and
the client then connects to one of exactly those addresses: the name is never looked up again, which
is what defeats DNS rebinding between the check and the connection.

Resolution uses the system resolver (``getaddrinfo``, which honours ``/etc/hosts``) unless the policy
names `nameservers`; then it queries them with dnspython, the same library the DNS tools use. Tests
point `nameservers` at a local DNS server, which the system resolver cannot be made to use.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import dns.asyncresolver
import dns.exception
import dns.nameserver
import dns.resolver

from orchestrion.exceptions import ConfigurationError, TargetRefusedError, ToolError, ValidationError
from orchestrion.tools.addresses import (
    CLOUD_METADATA_ADDRESSES,
    IPAddress,
    IPNetwork,
    deny_reason,
    embedded_ipv4,
)

if TYPE_CHECKING:
    from orchestrion.settings import Settings

__all__ = ["IPAddress", "Target", "TargetPolicy"]

ALLOW_VARIABLE = "ORCHESTRION_TOOL_ALLOW_TARGETS"
ACTIVE_VARIABLE = "ORCHESTRION_TOOL_ALLOW_ACTIVE_SCANNING"
NETWORK_TOOL = "network"

_FIELD = "target"
_ACCEPTED = (
    "accepted: https://host[:port][/path], http://host[:port][/path], host, host:port, "
    "an IPv4 address, or an IPv6 address ([::1] or [::1]:8443)"
)
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*):")
_LABEL = re.compile(r"^(?!-)[a-z0-9_-]{1,63}(?<!-)$")
# A last label that is all digits or hex ("127.1", "0x7f.1", "2130706433") is read as an IPv4 address
# by inet_aton-style resolvers: refusing it keeps "what we checked" and "what a library dials" equal.
_NUMERIC_LABEL = re.compile(r"^(0x[0-9a-f]*|[0-9]+)$")
_MAX_TARGET_CHARS = 2048


@dataclass(frozen=True, kw_only=True)
class Target:
    """A parsed network target.

    Attributes:
        scheme: ``"http"`` or ``"https"`` when the caller wrote a URL, else None.
        host: Lower-case ASCII host name (IDNA-encoded), or an IP address without brackets.
        port: The port the caller wrote, or None.
        path: Path and query of a URL (``""`` when none was given).
        original: What the caller wrote.
    """

    scheme: str | None
    host: str
    port: int | None
    path: str
    original: str

    @property
    def is_ip(self) -> bool:
        """Whether `host` is an IP literal."""
        return _ip_literal(self.host) is not None

    @property
    def netloc(self) -> str:
        """``host[:port]`` with IPv6 literals in brackets."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port is None else f"{host}:{self.port}"

    def port_or(self, default: int) -> int:
        """The explicit port, or `default`."""
        return self.port if self.port is not None else default

    @property
    def effective_scheme(self) -> str:
        """The scheme, guessing ``https`` (``http`` for port 80) when none was written."""
        if self.scheme is not None:
            return self.scheme
        return "http" if self.port == 80 else "https"

    @property
    def effective_port(self) -> int:
        """The explicit port, else the scheme's default."""
        return self.port_or(443 if self.effective_scheme == "https" else 80)

    @property
    def url(self) -> str:
        """The target as a URL (``https://`` when no scheme was written)."""
        return f"{self.effective_scheme}://{self.netloc}{self.path or '/'}"


@dataclass(frozen=True, kw_only=True)
class TargetPolicy:
    """What network tools may reach, and how much they may read.

    Attributes:
        allow: CIDRs (``10.0.0.0/8``), addresses and host names (``intranet.example``, or
            ``*.example.com`` for every name below it) exempt from the address checks. A host name
            allow covers whatever the name resolves to, except cloud metadata endpoints, which only
            an address or CIDR allow can open.
        allow_active_scanning: The operator's permission for active tools such as port checks.
        max_response_bytes: Response bodies are cut at this many (decoded) bytes.
        connect_timeout: Seconds to resolve and connect (and finish a TLS handshake).
        read_timeout: Seconds to wait for each read.
        max_redirects: Redirects `fetch` follows before giving up.
        nameservers: DNS servers (``ip`` or ``ip:port``, ``[v6]:port``) to resolve with; empty means
            the system resolver.
        ca_pem: PEM CA certificates to trust instead of the system store (a private CA; tests).
    """

    allow: tuple[str, ...] = ()
    allow_active_scanning: bool = False
    max_response_bytes: int = 2 * 1024 * 1024
    connect_timeout: float = 5.0
    read_timeout: float = 10.0
    max_redirects: int = 5
    nameservers: tuple[str, ...] = ()
    ca_pem: str | None = field(default=None, repr=False)
    _networks: tuple[IPNetwork, ...] = field(init=False, repr=False, compare=False)
    _names: frozenset[str] = field(init=False, repr=False, compare=False)
    _suffixes: tuple[str, ...] = field(init=False, repr=False, compare=False)
    _dns_servers: tuple[dns.nameserver.Do53Nameserver, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        networks: list[IPNetwork] = []
        names: set[str] = set()
        suffixes: list[str] = []
        for entry in self.allow:
            text = entry.strip().lower()
            try:
                networks.append(ipaddress.ip_network(text.strip("[]"), strict=False))
                continue
            except ValueError:
                pass
            wildcard = text.startswith("*.")
            try:
                name = _normalize_name(text[2:] if wildcard else text)
            except ValidationError as exc:
                raise ConfigurationError(
                    f"{ALLOW_VARIABLE}: {entry!r} is neither a CIDR, an address nor a host name"
                ) from exc
            if wildcard:
                suffixes.append("." + name)
            else:
                names.add(name)
        servers = tuple(_parse_nameserver(spec) for spec in self.nameservers)
        object.__setattr__(self, "_networks", tuple(networks))
        object.__setattr__(self, "_names", frozenset(names))
        object.__setattr__(self, "_suffixes", tuple(suffixes))
        object.__setattr__(self, "_dns_servers", servers)

    @classmethod
    def from_settings(cls, settings: Settings) -> TargetPolicy:
        """Build the policy from the ``tool_*`` settings."""
        return cls(
            allow=tuple(settings.tool_allow_targets),
            allow_active_scanning=settings.tool_allow_active_scanning,
            max_response_bytes=settings.tool_max_response_bytes,
            connect_timeout=settings.tool_connect_timeout_seconds,
            read_timeout=settings.tool_read_timeout_seconds,
            nameservers=tuple(settings.tool_nameservers),
            ca_pem=settings.tool_ca_file.read_text() if settings.tool_ca_file else None,
        )

    def parse_target(self, text: str) -> Target:
        """Parse a target as a user wrote it.

        Args:
            text: ``https://host[:port]/path``, ``http://...``, ``host``, ``host:port`` or an IP literal.

        Returns:
            The parsed target. Nothing is resolved yet.

        Raises:
            ValidationError: (``field="target"``) empty or malformed text, user-info in a URL, a scheme
                other than http(s), or an ambiguous numeric host; the message lists what is accepted.
        """
        raw = text.strip() if isinstance(text, str) else ""
        if not raw:
            raise ValidationError(f"the target is empty; {_ACCEPTED}", field=_FIELD)
        if len(raw) > _MAX_TARGET_CHARS or any(ch.isspace() or ord(ch) < 0x20 or ch == "\x7f" for ch in raw):
            raise ValidationError(
                f"the target has whitespace or control characters, or is too long; {_ACCEPTED}", field=_FIELD
            )
        literal = _ip_literal(raw)
        if literal is not None:
            return Target(scheme=None, host=literal.compressed, port=None, path="", original=text)
        scheme_match = _SCHEME.match(raw)
        scheme: str | None = None
        if scheme_match and raw[scheme_match.end() :].startswith("//"):
            scheme = scheme_match.group(1).lower()
        elif scheme_match and not raw[scheme_match.end() :][:1].isdigit():
            # "mailto:x", "file:/etc/passwd", "javascript:..." (but "host:8080" is a host and a port).
            scheme = scheme_match.group(1).lower()
        if scheme is not None and scheme not in ("http", "https"):
            raise ValidationError(f"the scheme {scheme!r} is not accepted; {_ACCEPTED}", field=_FIELD)
        try:
            parts = urlsplit(raw if scheme else "//" + raw)
            hostname, port = parts.hostname, parts.port
        except ValueError as exc:
            raise ValidationError(
                f"{raw!r} is not a valid target ({exc}); {_ACCEPTED}", field=_FIELD
            ) from exc
        if "@" in parts.netloc:
            raise ValidationError(
                f"user info (user@host) is not accepted in a target; {_ACCEPTED}", field=_FIELD
            )
        if not hostname:
            raise ValidationError(f"{raw!r} names no host; {_ACCEPTED}", field=_FIELD)
        if port == 0:
            raise ValidationError(f"port 0 is not a valid port in {raw!r}", field=_FIELD)
        bracketed = parts.netloc.startswith("[")
        literal = _ip_literal(hostname)
        if bracketed and (literal is None or literal.version != 6):
            raise ValidationError(f"{raw!r}: only IPv6 addresses go in brackets; {_ACCEPTED}", field=_FIELD)
        host = literal.compressed if literal is not None else _normalize_name(hostname)
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        return Target(scheme=scheme, host=host, port=port, path=path, original=text)

    async def resolve(self, host: str, port: int) -> list[IPAddress]:
        """Resolve `host` once and check every address it resolves to.

        Args:
            host: A host name or IP literal (as in `Target.host`).
            port: The port that will be connected to (passed to the system resolver).

        Returns:
            The addresses, in resolver order, without duplicates. Connect only to these.

        Raises:
            TargetRefusedError: Any address is in a denied range and not allowed.
            ValidationError: `host` is not a valid host name.
            ToolError: The name does not resolve, or resolution timed out.
        """
        literal = _ip_literal(host)
        if literal is not None:
            addresses = [literal]
            host = literal.compressed
        else:
            name = _normalize_name(host)
            found = await (self._resolve_dns(name) if self._dns_servers else self._resolve_system(name, port))
            addresses = list(dict.fromkeys(found))
            host = name
        if not addresses:
            raise ToolError(f"{host} resolves to no address", tool=NETWORK_TOOL)
        for address in addresses:
            self.check_address(host, address)
        return addresses

    def check_address(self, host: str, address: IPAddress) -> None:
        """Refuse `address` (which `host` resolved to) unless it is public or allowed.

        Raises:
            TargetRefusedError: Naming the host, the address and why.
        """
        reason = deny_reason(address)
        if reason is None or any(address in net for net in self._networks if net.version == address.version):
            return
        carried = address.ipv4_mapped if isinstance(address, ipaddress.IPv6Address) else None
        if carried is not None and any(carried in net for net in self._networks if net.version == 4):
            return
        embedded = embedded_ipv4(address) if isinstance(address, ipaddress.IPv6Address) else None
        metadata = address in CLOUD_METADATA_ADDRESSES or embedded in CLOUD_METADATA_ADDRESSES
        if not metadata and self.allows_name(host):
            return
        how = f"allow it with {ALLOW_VARIABLE}"
        if metadata:
            how += " (by address: allowing a host name never opens a metadata endpoint)"
        shown = address.compressed
        subject = shown if host == shown else f"{host} resolves to {shown}, which"
        raise TargetRefusedError(f"{subject} is {reason}; {how}", reason=reason, host=host, address=shown)

    def allows_name(self, host: str) -> bool:
        """Whether the host name is on the allowlist (exactly, or below a ``*.`` entry)."""
        name = host.lower().rstrip(".")
        return name in self._names or any(name.endswith(suffix) for suffix in self._suffixes)

    def require_active(self, task_allows: bool, tool: str) -> None:
        """Refuse an active tool (port check...) unless both the task and the operator allow it.

        Args:
            task_allows: The task's ``allow_active_scanning``.
            tool: The tool's name, for the message.

        Raises:
            TargetRefusedError: (``field="allow_active_scanning"``) saying which permission is missing.
        """
        operator_hint = f"the operator has not enabled it ({ACTIVE_VARIABLE}=true)"
        task_hint = "the task does not ask for it (allow_active_scanning: true)"
        checks = ((self.allow_active_scanning, operator_hint), (task_allows, task_hint))
        missing = [hint for ok, hint in checks if not ok]
        if missing:
            raise TargetRefusedError(
                f"{tool} is an active scan and is not permitted: {' and '.join(missing)}",
                reason="active scanning not permitted",
                field="allow_active_scanning",
            )

    async def _resolve_system(self, name: str, port: int) -> list[IPAddress]:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self.connect_timeout):
                infos = await loop.getaddrinfo(name, port, type=socket.SOCK_STREAM)
        except TimeoutError as exc:
            raise ToolError(f"resolving {name} timed out", tool=NETWORK_TOOL) from exc
        except OSError as exc:
            raise ToolError(f"cannot resolve {name}: {exc}", tool=NETWORK_TOOL) from exc
        found: list[IPAddress] = []
        for family, _type, _proto, _canon, sockaddr in infos:
            if family in (socket.AF_INET, socket.AF_INET6):
                found.append(ipaddress.ip_address(str(sockaddr[0]).split("%")[0]))
        return found

    async def _resolve_dns(self, name: str) -> list[IPAddress]:
        resolver = dns.asyncresolver.Resolver(configure=False)
        resolver.nameservers = list(self._dns_servers)
        resolver.lifetime = self.connect_timeout
        try:
            answer = await resolver.resolve_name(name, family=socket.AF_UNSPEC)
        except dns.resolver.NXDOMAIN as exc:
            raise ToolError(f"cannot resolve {name}: no such domain", tool=NETWORK_TOOL) from exc
        except dns.exception.Timeout as exc:
            raise ToolError(f"resolving {name} timed out", tool=NETWORK_TOOL) from exc
        except dns.exception.DNSException as exc:
            raise ToolError(f"cannot resolve {name}: {exc}", tool=NETWORK_TOOL) from exc
        return [ipaddress.ip_address(text) for text in answer.addresses()]


def _ip_literal(text: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(text.strip("[]") if text.startswith("[") else text)
    except ValueError:
        return None


def _normalize_name(text: str) -> str:
    """Lower-case, IDNA-encode and validate a host name (not an IP literal)."""
    name = text.lower().rstrip(".")
    try:
        name = name.encode("idna").decode("ascii") if not name.isascii() else name
    except UnicodeError as exc:
        raise ValidationError(f"{text!r} is not a valid host name; {_ACCEPTED}", field=_FIELD) from exc
    labels = name.split(".")
    if not name or len(name) > 253 or not all(_LABEL.match(label) for label in labels):
        raise ValidationError(f"{text!r} is not a valid host name; {_ACCEPTED}", field=_FIELD)
    if _NUMERIC_LABEL.match(labels[-1]):
        raise ValidationError(
            f"{text!r} is an ambiguous numeric host; write the IP address in dotted form; {_ACCEPTED}",
            field=_FIELD,
        )
    return name


def _parse_nameserver(spec: str) -> dns.nameserver.Do53Nameserver:
    text = spec.strip()
    host, port = text, 53
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        if rest:
            port = int(rest[1:]) if rest.startswith(":") and rest[1:].isdigit() else -1
    elif text.count(":") == 1:
        host, _, port_text = text.partition(":")
        port = int(port_text) if port_text.isdigit() else -1
    if _ip_literal(host) is None or not 0 < port < 65536:
        raise ConfigurationError(f"nameserver {spec!r} must be an IP address, optionally with :port")
    return dns.nameserver.Do53Nameserver(host, port)
