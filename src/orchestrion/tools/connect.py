"""Low-level connection steps shared by `netclient` and `tlsprobe`, for addresses already checked.

Nothing here resolves a name or consults the policy's allowlist: every function takes addresses that
`TargetPolicy.resolve` returned. Tools use `netclient` (`fetch`, `open_tcp`, `tls_probe`) instead.
"""

from __future__ import annotations

import asyncio
import functools
import ssl

from orchestrion.tools.targets import IPAddress, TargetPolicy

_CLOSE_GRACE_SECONDS = 1.0


async def connect_checked(
    addresses: list[IPAddress], port: int, *, connect_timeout: float
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, str]:
    """Connect to the first of `addresses` (already checked by the policy) that answers.

    Only for addresses returned by `TargetPolicy.resolve`; tools call `open_tcp` instead.
    """
    last: BaseException | None = None
    for address in addresses:
        try:
            async with asyncio.timeout(connect_timeout):
                reader, writer = await asyncio.open_connection(address.compressed, port)
        except (OSError, TimeoutError) as exc:
            last = exc
            continue
        return reader, writer, address.compressed
    assert last is not None  # `addresses` is never empty: resolve() refuses empty answers
    raise last


async def close_writer(writer: asyncio.StreamWriter) -> None:
    """Close a stream, giving a TLS peer a moment for close_notify and then dropping it."""
    writer.close()
    try:
        async with asyncio.timeout(_CLOSE_GRACE_SECONDS):
            await writer.wait_closed()
    except (OSError, TimeoutError, ssl.SSLError):
        writer.transport.abort()


@functools.lru_cache(maxsize=16)
def tls_context(*, verify: bool, check_hostname: bool, ca_pem: str | None, purpose: str) -> ssl.SSLContext:
    """A client TLS context, cached (loading the trust store costs milliseconds).

    Args:
        verify: Verify the chain against `ca_pem`, or the system trust store.
        check_hostname: Also require the certificate to match the server name (needs `verify`).
        ca_pem: PEM CA certificates to trust instead of the system store.
        purpose: Separates contexts that callers configure differently (httpcore sets ALPN on the
            context it is given), so one use never changes another's.
    """
    if not verify:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    context = ssl.create_default_context(cadata=ca_pem) if ca_pem else ssl.create_default_context()
    context.check_hostname = check_hostname
    return context


async def verify_chain(
    policy: TargetPolicy, address: str, port: int, *, server_name: str
) -> tuple[bool | None, str | None]:
    """Do a verifying handshake with a checked address: does its chain verify against the trust store?

    The host name is deliberately not checked here (see `certinfo.hostname_matches`), so that an
    expired certificate and a wrong-host certificate are told apart.

    Returns:
        (True, None) when it verifies, (False, reason) when the certificate is refused, and
        (None, reason) when the handshake failed for another reason, so nothing is known.
    """
    context = await asyncio.to_thread(
        tls_context, verify=True, check_hostname=False, ca_pem=policy.ca_pem, purpose="probe"
    )
    try:
        async with asyncio.timeout(policy.connect_timeout):
            _reader, writer = await asyncio.open_connection(
                address, port, ssl=context, server_hostname=server_name
            )
    except ssl.SSLCertVerificationError as exc:
        return False, exc.verify_message or str(exc)
    except (OSError, TimeoutError) as exc:
        return None, f"the verifying handshake did not complete: {exc or type(exc).__name__}"
    await close_writer(writer)
    return True, None
