"""TLS facts about a target: the certificate it presents, whether it verifies, which versions it takes.

`tls_probe` makes two handshakes with the same checked address. The first has verification OFF, so it
completes whatever the certificate is (expired, self-signed, wrong host) and shows the protocol,
cipher and certificates. The second verifies the chain against the trust store with host name checking
off, so OpenSSL's verdict ("certificate has expired", "unable to get local issuer certificate") is
about the chain alone; the host name match is computed in code from the leaf (`certinfo`). Two
independent answers tell "expired" from "wrong host", which one verifying handshake could not: OpenSSL
stops at the first error.

`probe_tls_versions` tries one handshake per protocol version. Many builds of OpenSSL (Debian's among
them) refuse to negotiate TLS 1.0/1.1 at their default security level, or lack them entirely, so a
failed handshake there would say nothing about the server. Each version is therefore first tried
against an in-memory server in this process; a version this machine cannot speak to itself is reported
``not_testable_locally`` rather than ``refused``.
"""

from __future__ import annotations

import asyncio
import functools
import ssl
import tempfile
import warnings
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from orchestrion.exceptions import ToolError
from orchestrion.tools.certinfo import TLSInfo, describe_connection
from orchestrion.tools.connect import close_writer, connect_checked, tls_context, verify_chain
from orchestrion.tools.targets import NETWORK_TOOL, IPAddress, TargetPolicy

TLS_VERSIONS: tuple[str, ...] = ("TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3")
_TLS_VERSION_ENUMS: dict[str, ssl.TLSVersion] = {
    "TLSv1": ssl.TLSVersion.TLSv1,
    "TLSv1.1": ssl.TLSVersion.TLSv1_1,
    "TLSv1.2": ssl.TLSVersion.TLSv1_2,
    "TLSv1.3": ssl.TLSVersion.TLSv1_3,
}
# TLS 1.0/1.1 only work below OpenSSL 3's default security level (they sign with SHA-1).
_LEGACY_CIPHERS = "ALL:@SECLEVEL=0"
_SELF_TEST_ROUNDS = 20

SupportStatus = Literal["accepted", "refused", "not_testable_locally", "error"]


@dataclass(frozen=True, kw_only=True)
class ProtocolSupport:
    """Whether a target accepted one TLS protocol version.

    Attributes:
        version: ``TLSv1``, ``TLSv1.1``, ``TLSv1.2`` or ``TLSv1.3``.
        status: ``accepted`` (handshake completed), ``refused`` (the handshake failed although this
            machine can speak the version), ``not_testable_locally`` (this machine's OpenSSL cannot
            negotiate it, so nothing is known) or ``error`` (no connection, or a timeout).
        detail: The failure reason, or why the version is not testable.
        cipher: The cipher negotiated when accepted.
    """

    version: str
    status: SupportStatus
    detail: str | None = None
    cipher: str | None = None


async def tls_probe(policy: TargetPolicy, host: str, port: int, *, server_name: str | None = None) -> TLSInfo:
    """Handshake with `host` and report protocol, cipher, certificates, chain validity and name match.

    Args:
        policy: The target policy (resolves and checks `host`; supplies timeouts and the trust store).
        host: Host name or IP literal.
        port: TCP port.
        server_name: Name to send as SNI and to match the certificate against; `host` by default.

    Returns:
        The handshake's facts; `chain_verified` and `hostname_matches` are independent verdicts.

    Raises:
        TargetRefusedError: The policy refuses an address of `host`.
        ToolError: No connection, or the TLS handshake failed or timed out even without verification
            (a refused handshake is retried once with TLS 1.0+ and OpenSSL security level 0).
    """
    addresses = await policy.resolve(host, port)
    name = _server_name(server_name or host)
    context = await asyncio.to_thread(
        tls_context, verify=False, check_hostname=False, ca_pem=None, purpose="probe"
    )
    try:
        writer, address = await _handshake(policy, addresses, port, context, name)
    except _HandshakeRefusedError:
        # The default context speaks TLS 1.2+ at OpenSSL's security level; a server that only takes
        # older protocols or weak keys still deserves a report of what it presents.
        legacy = await asyncio.to_thread(_legacy_probe_context)
        writer, address = await _handshake(policy, addresses, port, legacy, name)
    try:
        ssl_object = writer.get_extra_info("ssl_object")
        info = describe_connection(
            ssl_object, address=address, port=port, server_name=name, chain_verified=None, chain_error=None
        )
    finally:
        await close_writer(writer)
    verified, error = await verify_chain(policy, address, port, server_name=name)
    return replace(info, chain_verified=verified, chain_error=error)


async def probe_tls_versions(
    policy: TargetPolicy,
    host: str,
    port: int,
    *,
    server_name: str | None = None,
    versions: tuple[str, ...] = TLS_VERSIONS,
) -> tuple[ProtocolSupport, ...]:
    """Which TLS protocol versions `host` accepts, one handshake per version.

    Args:
        policy: The target policy.
        host: Host name or IP literal.
        port: TCP port.
        server_name: SNI to send; `host` by default.
        versions: Versions to try, among `TLS_VERSIONS`.

    Returns:
        One `ProtocolSupport` per version, in the order given.

    Raises:
        TargetRefusedError: The policy refuses an address of `host`.
        ValueError: An unknown version name.
    """
    unknown = [version for version in versions if version not in _TLS_VERSION_ENUMS]
    if unknown:
        raise ValueError(f"unknown TLS versions {unknown}; known: {', '.join(TLS_VERSIONS)}")
    addresses = await policy.resolve(host, port)
    name = _server_name(server_name or host)
    results: list[ProtocolSupport] = []
    for version in versions:
        if not await asyncio.to_thread(locally_testable, version):
            results.append(
                ProtocolSupport(
                    version=version,
                    status="not_testable_locally",
                    detail=f"this machine's OpenSSL ({ssl.OPENSSL_VERSION}) cannot negotiate {version}",
                )
            )
            continue
        results.append(await _try_version(policy, addresses, port, name, version))
    return tuple(results)


@functools.cache
def locally_testable(version: str) -> bool:
    """Whether this process's OpenSSL completes a `version` handshake with itself (cached; blocking)."""
    try:
        client = _version_context(version, server=False)
        server = _version_context(version, server=True)
    except (ValueError, ssl.SSLError):
        return False
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "orchestrion-self-test")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(hours=1))
        .not_valid_after(now + timedelta(hours=1))
        .sign(key, hashes.SHA256())
    )
    pem = cert.public_bytes(serialization.Encoding.PEM) + key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    with tempfile.TemporaryDirectory(prefix="orchestrion-tls-") as directory:
        path = Path(directory) / "self-test.pem"
        path.write_bytes(pem)
        try:
            server.load_cert_chain(path)
        except ssl.SSLError:
            return False
    return _memory_handshake(client, server)


def _memory_handshake(client_context: ssl.SSLContext, server_context: ssl.SSLContext) -> bool:
    """Run a client and a server handshake against each other through memory buffers."""
    client_in, client_out, server_in, server_out = (ssl.MemoryBIO() for _ in range(4))
    client = client_context.wrap_bio(client_in, client_out)
    server = server_context.wrap_bio(server_in, server_out, server_side=True)
    done = {"client": False, "server": False}
    try:
        for _ in range(_SELF_TEST_ROUNDS):
            for role, side, outgoing, incoming in (
                ("client", client, client_out, server_in),
                ("server", server, server_out, client_in),
            ):
                if not done[role]:
                    try:
                        side.do_handshake()
                        done[role] = True
                    except ssl.SSLWantReadError:
                        pass
                data = outgoing.read()
                if data:
                    incoming.write(data)
            if all(done.values()):
                return True
    except ssl.SSLError:
        return False
    return False


def _version_context(version: str, *, server: bool) -> ssl.SSLContext:
    enum = _TLS_VERSION_ENUMS[version]
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER if server else ssl.PROTOCOL_TLS_CLIENT)
    if not server:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    # Asking for TLS 1.0/1.1 on purpose is the point of an audit; the deprecation is not news here.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        context.minimum_version = enum
        context.maximum_version = enum
    if enum < ssl.TLSVersion.TLSv1_2:
        context.set_ciphers(_LEGACY_CIPHERS)
    return context


async def _try_version(
    policy: TargetPolicy, addresses: list[IPAddress], port: int, name: str, version: str
) -> ProtocolSupport:
    context = await asyncio.to_thread(_version_context, version, server=False)
    try:
        _reader, writer, _address = await connect_checked(
            addresses, port, connect_timeout=policy.connect_timeout
        )
    except (OSError, TimeoutError) as exc:
        return ProtocolSupport(version=version, status="error", detail=f"cannot connect: {_describe(exc)}")
    try:
        async with asyncio.timeout(policy.connect_timeout):
            await writer.start_tls(context, server_hostname=name)
        cipher = writer.get_extra_info("ssl_object").cipher()
        return ProtocolSupport(version=version, status="accepted", cipher=cipher[0] if cipher else None)
    except TimeoutError:
        return ProtocolSupport(version=version, status="error", detail="the handshake timed out")
    except OSError as exc:
        # An alert, a reset or a closed connection in answer to a ClientHello this machine can send
        # all mean the server does not take this version.
        return ProtocolSupport(version=version, status="refused", detail=_describe(exc))
    finally:
        await close_writer(writer)


async def _handshake(
    policy: TargetPolicy, addresses: list[IPAddress], port: int, context: ssl.SSLContext, name: str
) -> tuple[asyncio.StreamWriter, str]:
    try:
        _reader, writer, address = await connect_checked(
            addresses, port, connect_timeout=policy.connect_timeout
        )
    except (OSError, TimeoutError) as exc:
        raise ToolError(f"cannot connect to {name} port {port}: {_describe(exc)}", tool=NETWORK_TOOL) from exc
    try:
        async with asyncio.timeout(policy.connect_timeout):
            await writer.start_tls(context, server_hostname=name)
    except (OSError, TimeoutError) as exc:
        # No TLS session to close politely: drop the connection at once.
        writer.transport.abort()
        # An alert, a reset or a closed connection: the peer refused this ClientHello (a timeout is not
        # a refusal, and a second try would only wait as long again).
        kind = ToolError if isinstance(exc, TimeoutError) else _HandshakeRefusedError
        raise kind(
            f"TLS handshake with {name} ({address} port {port}) failed: {_describe(exc)}", tool=NETWORK_TOOL
        ) from exc
    return writer, address


class _HandshakeRefusedError(ToolError):
    """The peer answered, but not with a handshake this context accepts (worth a legacy retry)."""


@functools.cache
def _legacy_probe_context() -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        context.minimum_version = ssl.TLSVersion.TLSv1
    context.set_ciphers(_LEGACY_CIPHERS)
    return context


def _server_name(text: str) -> str:
    """The SNI / certificate name for a host as written (``[::1]`` -> ``::1``, ``Example.COM.``)."""
    name = text.strip().lower().rstrip(".")
    return name[1:-1] if name.startswith("[") and name.endswith("]") else name


def _describe(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, ssl.SSLError) and exc.reason:
        return f"{exc.reason} ({exc.strerror or exc})"
    return str(exc) or type(exc).__name__
