"""The one way tools open network connections: resolve, check, then connect to the checked address.

Tools import `fetch`, `open_tcp`, `tls_probe` and `probe_tls_versions` from here (the last two live in
`tlsprobe` and are re-exported).

Every function here resolves the host through `TargetPolicy.resolve` (which refuses the whole target
if ANY address is denied) and then connects to one of those addresses by number. The name is never
looked up a second time, so a DNS answer that changes between the check and the connection (DNS
rebinding) cannot steer a tool somewhere the policy did not see. HTTPS still verifies the name: the
request goes to ``https://<checked ip>/`` with ``Host: <name>``, and the TLS handshake sends the name as
SNI and checks the certificate against it (httpcore's ``sni_hostname`` extension becomes the
``server_hostname`` of the handshake, which is what OpenSSL matches).

`fetch` follows redirects itself so that every hop goes through the same resolve-and-check, reads
at most `max_bytes` (decompressing gzip/deflate with the same bound, so a compression bomb stops at the
cap), and never uses proxies from the environment (a proxy would resolve the name itself).

Failures: `TargetRefusedError` for anything the policy refuses (including a redirect's target),
`ValidationError` for a malformed URL, `ToolError` for network failures (timeouts, refused
connections, certificate verification when `verify` is on). `open_tcp` is the exception: it lets
`OSError` and `TimeoutError` through, because port checks report exactly those.
"""

from __future__ import annotations

import asyncio
import ssl
import time
import zlib
from dataclasses import dataclass, replace
from urllib.parse import urljoin

import httpx

from orchestrion.exceptions import TargetRefusedError, ToolError, ValidationError
from orchestrion.tools.certinfo import TLSInfo, describe_connection
from orchestrion.tools.connect import connect_checked, tls_context, verify_chain
from orchestrion.tools.targets import NETWORK_TOOL, IPAddress, Target, TargetPolicy
from orchestrion.tools.tlsprobe import ProtocolSupport, probe_tls_versions, tls_probe

__all__ = [
    "FetchResult",
    "ProtocolSupport",
    "TLSInfo",
    "fetch",
    "open_tcp",
    "probe_tls_versions",
    "tls_probe",
]

_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_USER_AGENT = "Orchestrion/0.1 (security audit; +https://github.com/orchestrion)"
# Credentials the caller set for one origin must not follow a redirect to another.
_ORIGIN_BOUND_HEADERS = frozenset({"authorization", "cookie", "proxy-authorization"})


@dataclass(frozen=True, kw_only=True)
class FetchResult:
    """The final response of a `fetch`.

    Attributes:
        url: The URL of the final response (after redirects).
        status: Its HTTP status.
        headers: Its headers in order, names lower-cased (repeated headers such as Set-Cookie kept).
        body: The body, at most `max_bytes` long: decoded from gzip/deflate, other encodings as sent
            (requests ask for ``identity`` unless the caller's headers say otherwise).
        elapsed: Seconds for the whole fetch, redirects included.
        redirects: Each URL redirected to, in order (empty without redirects).
        address: The IP address the final response came from.
        truncated: Whether the body was cut at `max_bytes`.
        tls: The final connection's TLS facts (https only).
    """

    url: str
    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes
    elapsed: float
    redirects: list[str]
    address: str
    truncated: bool
    tls: TLSInfo | None

    def header(self, name: str) -> str | None:
        """The first value of header `name` (case-insensitive), or None."""
        values = self.header_values(name)
        return values[0] if values else None

    def header_values(self, name: str) -> list[str]:
        """Every value of header `name` (case-insensitive), in order."""
        wanted = name.lower()
        return [value for key, value in self.headers if key == wanted]


async def open_tcp(
    policy: TargetPolicy,
    host: str,
    port: int,
    # A per-address connect timeout, which an `asyncio.timeout` around the call cannot express.
    *,
    timeout: float | None = None,  # noqa: ASYNC109
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, str]:
    """Open a TCP connection to a checked address of `host` (banner grabs, port checks).

    Args:
        policy: The target policy.
        host: Host name or IP literal.
        port: TCP port.
        timeout: Seconds to connect to each address; the policy's connect timeout by default.

    Returns:
        Reader, writer and the IP address connected to. The caller closes the writer.

    Raises:
        TargetRefusedError: The policy refuses an address of `host`.
        ToolError: `host` does not resolve.
        TimeoutError: No address accepted the connection in time.
        OSError: The connection was refused or failed (the last address's error).
    """
    addresses = await policy.resolve(host, port)
    return await connect_checked(addresses, port, connect_timeout=timeout or policy.connect_timeout)


async def fetch(
    policy: TargetPolicy,
    url: str,
    *,
    method: str = "GET",
    headers: dict[str, str] | None = None,
    follow_redirects: bool = True,
    max_bytes: int | None = None,
    verify: bool = True,
) -> FetchResult:
    """Make one HTTP(S) request through the policy, following redirects through it too.

    Args:
        policy: The target policy.
        url: ``http(s)://host[:port]/path`` (a bare host means https).
        method: HTTP method; no request body is sent.
        headers: Extra request headers. ``Host`` is always the target's.
        follow_redirects: Follow 301/302/303/307/308 up to `policy.max_redirects`, each hop checked.
        max_bytes: Body cap, at most the policy's `max_response_bytes` (the default).
        verify: Verify the certificate chain and host name. With False the request is made anyway and
            `tls` still reports what verification would have said (chain and host name).

    Returns:
        The final response.

    Raises:
        TargetRefusedError: The target, or a redirect's target, is refused by the policy.
        ValidationError: `url` is malformed or not http(s).
        ToolError: Resolution, connection, TLS verification or reading failed or timed out, or there
            were too many redirects.
    """
    limit = policy.max_response_bytes if max_bytes is None else min(max_bytes, policy.max_response_bytes)
    started = time.perf_counter()
    target = policy.parse_target(url)
    method = method.upper()
    request_headers = {"user-agent": _USER_AGENT, "accept-encoding": "identity"}
    request_headers.update({key.lower(): value for key, value in (headers or {}).items()})
    request_headers.pop("host", None)
    redirects: list[str] = []
    while True:
        hop = await _request(policy, target, method, request_headers, limit=limit, verify=verify)
        location = hop.header("location")
        if not (follow_redirects and hop.status in _REDIRECTS and location):
            return FetchResult(
                url=target.url,
                status=hop.status,
                headers=hop.headers,
                body=hop.body,
                elapsed=time.perf_counter() - started,
                redirects=redirects,
                address=hop.address,
                truncated=hop.truncated,
                tls=hop.tls,
            )
        if len(redirects) >= policy.max_redirects:
            raise ToolError(
                f"too many redirects (more than {policy.max_redirects}): {' -> '.join([url, *redirects])}",
                tool=NETWORK_TOOL,
            )
        next_target = _redirect_target(policy, target, location)
        redirects.append(next_target.url)
        if (next_target.effective_scheme, next_target.host, next_target.effective_port) != (
            target.effective_scheme,
            target.host,
            target.effective_port,
        ):
            for name in _ORIGIN_BOUND_HEADERS:
                request_headers.pop(name, None)
        if hop.status == 303 or (hop.status in (301, 302) and method == "POST"):
            method = "GET" if method != "HEAD" else method
        target = next_target


@dataclass(frozen=True, kw_only=True)
class _Hop:
    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes
    truncated: bool
    address: str
    tls: TLSInfo | None

    def header(self, name: str) -> str | None:
        return next((value for key, value in self.headers if key == name), None)


class _ConnectFailedError(Exception):
    """This address did not take the connection; the next checked address may."""


def _redirect_target(policy: TargetPolicy, current: Target, location: str) -> Target:
    absolute = urljoin(current.url, location)
    try:
        return policy.parse_target(absolute)
    except ValidationError as exc:
        raise TargetRefusedError(
            f"redirect from {current.url} to {absolute!r} refused: {exc.message}",
            reason="redirect to a target that is not accepted",
            host=current.host,
        ) from exc


async def _request(
    policy: TargetPolicy,
    target: Target,
    method: str,
    headers: dict[str, str],
    *,
    limit: int,
    verify: bool,
) -> _Hop:
    port = target.effective_port
    addresses = await policy.resolve(target.host, port)
    failures: list[str] = []
    for address in addresses:
        try:
            return await _request_address(
                policy, target, address, method, headers, limit=limit, verify=verify
            )
        except _ConnectFailedError as exc:
            failures.append(f"{address.compressed}: {exc}")
    raise ToolError(f"cannot connect to {target.netloc}: {'; '.join(failures)}", tool=NETWORK_TOOL)


async def _request_address(
    policy: TargetPolicy,
    target: Target,
    address: IPAddress,
    method: str,
    headers: dict[str, str],
    *,
    limit: int,
    verify: bool,
) -> _Hop:
    https = target.effective_scheme == "https"
    port = target.effective_port
    context = await asyncio.to_thread(
        tls_context, verify=verify, check_hostname=verify, ca_pem=policy.ca_pem, purpose="http"
    )
    shown_ip = f"[{address.compressed}]" if address.version == 6 else address.compressed
    bare_host = f"[{target.host}]" if ":" in target.host else target.host
    host_header = bare_host if target.port in (None, 443 if https else 80) else target.netloc
    timeout = httpx.Timeout(
        connect=policy.connect_timeout, read=policy.read_timeout, write=policy.read_timeout, pool=None
    )
    # A client per hop and per address: httpx pools connections by (scheme, IP, port), and a pooled
    # TLS connection made for one SNI name must never carry a request for another.
    transport = httpx.AsyncHTTPTransport(verify=context, retries=0)
    async with httpx.AsyncClient(
        transport=transport, trust_env=False, follow_redirects=False, timeout=timeout
    ) as client:
        request = client.build_request(
            method,
            f"{target.effective_scheme}://{shown_ip}:{port}{target.path or '/'}",
            headers={**headers, "host": host_header},
            extensions={"sni_hostname": target.host} if https else {},
        )
        try:
            response = await client.send(request, stream=True)
        except httpx.ConnectTimeout as exc:
            raise _ConnectFailedError(f"connect timed out after {policy.connect_timeout}s") from exc
        except httpx.ConnectError as exc:
            verification = _verification_error(exc)
            if verification is not None:
                raise ToolError(
                    f"TLS certificate verification failed for {target.host}: {verification}",
                    tool=NETWORK_TOOL,
                ) from exc
            raise _ConnectFailedError(str(exc) or type(exc).__name__) from exc
        except httpx.TimeoutException as exc:
            raise ToolError(
                f"{target.url} did not answer within {policy.read_timeout}s", tool=NETWORK_TOOL
            ) from exc
        except httpx.HTTPError as exc:
            raise ToolError(f"request to {target.url} failed: {exc}", tool=NETWORK_TOOL) from exc
        try:
            ssl_object = response.extensions["network_stream"].get_extra_info("ssl_object") if https else None
            tls = None
            if ssl_object is not None:
                tls = describe_connection(
                    ssl_object,
                    address=address.compressed,
                    port=port,
                    server_name=target.host,
                    chain_verified=True if verify else None,
                    chain_error=None,
                )
            body, truncated = await _read_capped(response, limit, target, read_timeout=policy.read_timeout)
        finally:
            await response.aclose()
    if tls is not None and not verify:
        verified, error = await verify_chain(policy, address.compressed, port, server_name=target.host)
        tls = replace(tls, chain_verified=verified, chain_error=error)
    return _Hop(
        status=response.status_code,
        headers=tuple(
            (key.decode("latin-1").lower(), value.decode("latin-1")) for key, value in response.headers.raw
        ),
        body=body,
        truncated=truncated,
        address=address.compressed,
        tls=tls,
    )


async def _read_capped(
    response: httpx.Response, limit: int, target: Target, *, read_timeout: float
) -> tuple[bytes, bool]:
    """Read at most `limit` decoded bytes, then stop (the connection is closed, not drained)."""
    encoding = response.headers.get("content-encoding", "").strip().lower()
    # wbits 47 = 32 + 15: accept both gzip and zlib framing, which is what "deflate" usually means.
    decoder = zlib.decompressobj(wbits=47) if encoding in ("gzip", "x-gzip", "deflate") else None
    body = bytearray()
    try:
        async for chunk in response.aiter_raw():
            if decoder is not None:
                # Ask for one byte more than still fits: getting it proves the body is longer than the cap.
                chunk = decoder.decompress(chunk, limit - len(body) + 1)
            body += chunk
            if len(body) > limit:
                return bytes(body[:limit]), True
    except httpx.TimeoutException as exc:
        raise ToolError(
            f"reading {target.url} stalled for more than {read_timeout}s", tool=NETWORK_TOOL
        ) from exc
    except httpx.HTTPError as exc:
        raise ToolError(f"reading {target.url} failed: {exc}", tool=NETWORK_TOOL) from exc
    except zlib.error as exc:
        raise ToolError(
            f"{target.url} sent a body that is not valid {encoding}: {exc}", tool=NETWORK_TOOL
        ) from exc
    return bytes(body), False


def _verification_error(exc: BaseException) -> str | None:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLCertVerificationError):
            return seen.verify_message or str(seen)
        seen = seen.__cause__ or seen.__context__
    return None
