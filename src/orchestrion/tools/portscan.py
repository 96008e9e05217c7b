"""`port_check`: TCP connect checks of a short list of ports, with a banner from each open one.

An active tool: it runs only when both the task (``allow_active_scanning``) and the operator
(``ORCHESTRION_TOOL_ALLOW_ACTIVE_SCANNING``) allow it (`TargetPolicy.require_active`). Every connection
goes through `netclient.open_tcp` (and `fetch` for HTTPS), so the target policy checks each one.

A port is ``open`` (the connection was accepted), ``closed`` (refused: something answered with a
reset), ``filtered`` (no answer within the connect timeout, or an ICMP rejection: a firewall) or
``error``. An open port is first given `banner_timeout` seconds to speak; a silent one gets one
harmless probe (see `banners`): ``PING`` on Redis ports, an ``SSLRequest`` on PostgreSQL ports, ``HEAD``
over TLS on HTTPS ports and a plain ``HEAD /`` elsewhere. A service that answers ``HEAD`` in Redis's
protocol gets a ``PING`` on a second connection; one that answers in TLS (or hangs up) gets the
``HEAD`` again over TLS. Nothing else is ever sent: no logins, no commands that read data.
"""

from __future__ import annotations

import asyncio
import errno
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Annotated, ClassVar, Literal

from pydantic import Field

from orchestrion.domain.findings import Severity
from orchestrion.exceptions import OrchestrionError
from orchestrion.tools.banners import (
    PORT_NAMES,
    UNKNOWN,
    ServiceInfo,
    classify_greeting,
    classify_http,
    classify_postgres_reply,
    classify_redis_reply,
    classify_reply,
)
from orchestrion.tools.base import Observation, ProposedFinding, Tool, ToolArgs, ToolContext, ToolOutput
from orchestrion.tools.netclient import fetch, open_tcp
from orchestrion.tools.nettarget import expect_args, require_policy, require_target, url_host
from orchestrion.tools.targets import TargetPolicy

__all__ = ["DEFAULT_PORTS", "MAX_PORTS", "PortCheckArgs", "PortCheckTool", "PortResult"]

DEFAULT_PORTS: tuple[int, ...] = (
    21, 22, 23, 25, 53, 80, 110, 143, 443, 445, 3306, 3389, 5432, 6379, 8080, 8443, 9200, 27017,
)  # fmt: skip
MAX_PORTS = 100
_REDIS_PORTS = frozenset({6379, 6380})
_POSTGRES_PORTS = frozenset({5432})
_HTTPS_PORTS = frozenset({443, 8443})
_SSL_REQUEST = b"\x00\x00\x00\x08\x04\xd2\x16\x2f"
_READ_LIMIT = 4096
_CLOSE_GRACE_SECONDS = 1.0
_FILTERED_ERRNOS = frozenset({errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EACCES, errno.EPERM})
_DATABASES = {
    "redis": "Redis",
    "mongodb": "MongoDB",
    "elasticsearch": "Elasticsearch",
    "mysql": "MySQL",
    "postgresql": "PostgreSQL",
    "mssql": "SQL Server",
    "memcached": "Memcached",
}
_CLEARTEXT = {"telnet": "Telnet", "ftp": "FTP"}

# The peer closed the connection after a plain HEAD without a byte: what TLS servers do.
_HUNG_UP = replace(UNKNOWN, notes=("closed the connection without answering",))
PortState = Literal["open", "closed", "filtered", "error"]


class PortCheckArgs(ToolArgs):
    """Arguments of `PortCheckTool`."""

    ports: tuple[Annotated[int, Field(ge=1, le=65535)], ...] = Field(
        default=DEFAULT_PORTS,
        min_length=1,
        max_length=MAX_PORTS,
        description="TCP ports to check (at most 100); a port written in the target is checked too.",
    )
    concurrency: int = Field(default=10, ge=1, le=20, description="Connections open at the same time.")
    banner_timeout: float = Field(
        default=2.0,
        ge=0.1,
        le=10.0,
        description="Seconds to wait for an open port to speak first, and for its answer to a probe.",
    )


@dataclass(frozen=True, kw_only=True)
class PortResult:
    """One port's outcome.

    Attributes:
        port: The TCP port.
        state: ``open``, ``closed`` (refused), ``filtered`` (no answer, or rejected by ICMP) or ``error``.
        address: The address that accepted the connection (open ports).
        detail: Why a port is not open.
        service: What an open port turned out to be.
    """

    port: int
    state: PortState
    address: str | None = None
    detail: str | None = None
    service: ServiceInfo = UNKNOWN

    @property
    def service_name(self) -> str | None:
        """The identified service, else what the port number usually carries, else None."""
        if self.service.service not in ("unknown", "tls"):
            return self.service.service
        return PORT_NAMES.get(self.port)


class PortCheckTool(Tool):
    """TCP connect checks with banners, service names and exposed-service findings (active)."""

    name: ClassVar[str] = "port_check"
    description: ClassVar[str] = (
        "ACTIVE scan (needs the task's allow_active_scanning and the operator's permission): TCP connect "
        "to a bounded list of ports of the target, telling open, closed (refused) and filtered (no "
        "answer) apart; read each open port's banner (HTTP HEAD, Redis PING, PostgreSQL SSLRequest for "
        "silent ones) and name the service (SSH, SMTP, FTP, MySQL, Redis, HTTP server...). Flags "
        "databases and caches reachable from the scanner (high when they answer without "
        "authentication) and Telnet/FTP."
    )
    args_model: ClassVar[type[ToolArgs]] = PortCheckArgs
    timeout_seconds: ClassVar[float] = 300.0

    async def execute(self, args: ToolArgs, ctx: ToolContext) -> ToolOutput:
        """Check the ports of the task's target."""
        options = expect_args(args, PortCheckArgs, self.name)
        require_policy(ctx, self.name).require_active(ctx.allow_active_scanning, self.name)
        policy, target = require_target(ctx, self.name)
        ports = list(dict.fromkeys((*((target.port,) if target.port else ()), *options.ports)))[:MAX_PORTS]
        # Resolving once up front refuses a denied target before any port is touched.
        addresses = [a.compressed for a in await policy.resolve(target.host, ports[0])]
        limiter = asyncio.Semaphore(options.concurrency)

        async def check(port: int) -> PortResult:
            async with limiter:
                return await check_port(policy, target.host, port, banner_timeout=options.banner_timeout)

        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(check(port)) for port in ports]
        results = [task.result() for task in tasks]
        return report_ports(target.host, addresses, results, connect_timeout=policy.connect_timeout)


async def check_port(policy: TargetPolicy, host: str, port: int, *, banner_timeout: float) -> PortResult:
    """Connect to one port and, when it is open, find out what listens there."""
    try:
        reader, writer, address = await open_tcp(policy, host, port, timeout=policy.connect_timeout)
    except TimeoutError:
        return PortResult(port=port, state="filtered", detail=f"no answer within {policy.connect_timeout:g}s")
    except ConnectionRefusedError:
        return PortResult(port=port, state="closed", detail="connection refused")
    except OSError as exc:
        state: PortState = "filtered" if exc.errno in _FILTERED_ERRNOS else "error"
        return PortResult(port=port, state=state, detail=exc.strerror or str(exc) or type(exc).__name__)
    except OrchestrionError as exc:
        # The name no longer resolves, or now resolves somewhere the policy refuses: this port is not
        # checked, and the others' results still stand.
        return PortResult(port=port, state="error", detail=exc.message)
    # A service that keeps every probe waiting must not hold up the scan: identification has a budget.
    budget = policy.connect_timeout + 3 * banner_timeout
    try:
        async with asyncio.timeout(budget):
            service = await _identify_and_follow_up(policy, host, port, reader, writer, banner_timeout)
    except TimeoutError:
        service = UNKNOWN.with_note(f"identification took longer than {budget:g}s")
    return PortResult(port=port, state="open", address=address, service=service)


async def _identify_and_follow_up(
    policy: TargetPolicy,
    host: str,
    port: int,
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    banner_timeout: float,
) -> ServiceInfo:
    try:
        service = await _identify(host, port, reader, writer, banner_timeout=banner_timeout)
    finally:
        await _close(writer)
    if service.service == "redis" and service.auth == "unknown" and port not in _REDIS_PORTS:
        return await _redis_ping(policy, host, port, banner_timeout=banner_timeout, fallback=service)
    if service.service == "tls" or service is _HUNG_UP:
        return await _https_head(policy, host, port, fallback=service)
    return service


async def _identify(
    host: str, port: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, banner_timeout: float
) -> ServiceInfo:
    greeting, eof = await _read(reader, banner_timeout)
    if greeting:
        return classify_greeting(port, greeting)
    if eof:
        return replace(UNKNOWN, notes=("closed the connection without a word",))
    if port in _HTTPS_PORTS:
        return ServiceInfo(service="tls", how="none")
    if port in _REDIS_PORTS:
        return (
            UNKNOWN if not await _send(writer, b"PING\r\n") else await _redis_answer(reader, banner_timeout)
        )
    if port in _POSTGRES_PORTS:
        if not await _send(writer, _SSL_REQUEST):
            return UNKNOWN
        reply, _eof = await _read(reader, banner_timeout)
        return classify_postgres_reply(reply)
    request = (
        f"HEAD / HTTP/1.0\r\nHost: {url_host(host)}:{port}\r\nUser-Agent: Orchestrion/0.1 port check\r\n"
        "Accept: */*\r\nConnection: close\r\n\r\n"
    )
    if not await _send(writer, request.encode("ascii")):
        return _HUNG_UP
    reply, eof = await _read(reader, banner_timeout, until=b"\r\n\r\n")
    if not reply and eof:
        return _HUNG_UP
    return classify_reply(port, reply)


async def _redis_answer(reader: asyncio.StreamReader, banner_timeout: float) -> ServiceInfo:
    reply, _eof = await _read(reader, banner_timeout, until=b"\r\n")
    return classify_redis_reply(reply) if reply else UNKNOWN


async def _redis_ping(
    policy: TargetPolicy, host: str, port: int, *, banner_timeout: float, fallback: ServiceInfo
) -> ServiceInfo:
    """PING on a fresh connection: the only command sent to Redis, and it reads nothing."""
    try:
        reader, writer, _address = await open_tcp(policy, host, port, timeout=policy.connect_timeout)
    except (OSError, OrchestrionError):
        return fallback.with_note("a second connection for PING failed")
    try:
        if not await _send(writer, b"PING\r\n"):
            return fallback
        answer = await _redis_answer(reader, banner_timeout)
    finally:
        await _close(writer)
    return answer if answer.service == "redis" else fallback.with_note("PING got no Redis answer")


async def _https_head(policy: TargetPolicy, host: str, port: int, *, fallback: ServiceInfo) -> ServiceInfo:
    """``HEAD /`` over TLS, certificate not verified (the point is the Server header, not the chain)."""
    try:
        result = await fetch(
            policy,
            f"https://{url_host(host)}:{port}/",
            method="HEAD",
            follow_redirects=False,
            max_bytes=0,
            verify=False,
        )
    except (OrchestrionError, OSError):
        return fallback if fallback.service != "tls" else fallback.with_note("HEAD over TLS got no answer")
    return classify_http(port, result.status, list(result.headers), tls=True)


async def _read(
    reader: asyncio.StreamReader, wait: float, *, until: bytes | None = None
) -> tuple[bytes, bool]:
    """Read what arrives within `wait` seconds: one chunk, or up to `until`. Returns (bytes, eof)."""
    data = bytearray()
    try:
        async with asyncio.timeout(wait):
            while len(data) < _READ_LIMIT:
                chunk = await reader.read(_READ_LIMIT - len(data))
                if not chunk:
                    return bytes(data), True
                data += chunk
                if until is None or until in data:
                    break
    except TimeoutError:
        pass
    except OSError:
        return bytes(data), True
    return bytes(data), False


async def _send(writer: asyncio.StreamWriter, data: bytes) -> bool:
    try:
        writer.write(data)
        await writer.drain()
    except OSError:
        return False
    return True


async def _close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    try:
        async with asyncio.timeout(_CLOSE_GRACE_SECONDS):
            await writer.wait_closed()
    except (OSError, TimeoutError):
        writer.transport.abort()


def report_ports(
    host: str, addresses: Sequence[str], results: Sequence[PortResult], *, connect_timeout: float
) -> ToolOutput:
    """Turn port results into observations and findings (pure)."""
    by_state: dict[str, list[PortResult]] = {"open": [], "closed": [], "filtered": [], "error": []}
    for result in results:
        by_state[result.state].append(result)
    counts = {state: len(items) for state, items in by_state.items()}
    observations = [
        Observation(
            summary=(
                f"Port check of {host} ({', '.join(addresses)}): {counts['open']} open, {counts['closed']} "
                f"closed, {counts['filtered']} filtered of {len(results)} ports"
                + (f", {counts['error']} errors" if counts["error"] else "")
            ),
            data={
                "host": host,
                "addresses": list(addresses),
                **{state: [r.port for r in items] for state, items in by_state.items()},
            },
            location=host,
        )
    ]
    findings: list[ProposedFinding] = []
    for result in by_state["open"]:
        observations.append(_open_observation(host, result))
        finding = _exposure_finding(host, result, len(observations) - 1)
        if finding is not None:
            findings.append(finding)
    groups = (
        ("closed", "closed (connection refused: reachable, nothing listening)"),
        ("filtered", f"filtered (no answer within {connect_timeout:g}s, or rejected by a firewall)"),
        ("error", "not checked (connection error)"),
    )
    for state, label in groups:
        items = by_state[state]
        if items:
            listed = ", ".join(f"{r.port} ({r.detail})" if state == "error" else str(r.port) for r in items)
            noun = "port" if len(items) == 1 else "ports"
            observations.append(
                Observation(
                    summary=f"{len(items)} {noun} of {host} {label}: {listed}",
                    data={"state": state, "ports": {str(r.port): r.detail for r in items}},
                    location=host,
                )
            )
    data = {
        "host": host,
        "addresses": list(addresses),
        "counts": counts,
        "open": [_port_data(r) for r in by_state["open"]],
        "closed": [r.port for r in by_state["closed"]],
        "filtered": [r.port for r in by_state["filtered"]],
    }
    return ToolOutput(observations=tuple(observations), findings=tuple(findings), data=data)


def _port_data(result: PortResult) -> dict[str, object]:
    service = result.service
    return {
        "port": result.port,
        "address": result.address,
        "service": result.service_name,
        "identified_by": service.how if service.service not in ("unknown", "tls") else "port number",
        "product": service.product,
        "banner": service.banner,
        "auth": service.auth,
        "tls": service.tls,
        "http_status": service.status,
        "notes": list(service.notes),
    }


def _open_observation(host: str, result: PortResult) -> Observation:
    service = result.service
    name = result.service_name
    if service.service not in ("unknown", "tls"):
        what = f"{name}" + (f" ({service.product})" if service.product else "")
    elif name:
        what = f"unidentified, usually {name} (by port number)"
    else:
        what = "unidentified service"
    summary = f"{host}:{result.port} open: {what}"
    if service.banner:
        summary += f"; banner {service.banner!r}"
    if service.auth != "unknown":
        summary += f"; authentication: {service.auth}"
    return Observation(summary=summary, data=_port_data(result), location=f"{host}:{result.port}")


def _exposure_finding(host: str, result: PortResult, index: int) -> ProposedFinding | None:
    name = result.service_name
    service = result.service
    where = f"{host}:{result.port}"
    by_port = service.service in ("unknown", "tls")
    how = " (named by its port number only: it did not identify itself)" if by_port else ""
    if name in _DATABASES:
        label = _DATABASES[name]
        if service.auth == "none":
            return ProposedFinding(
                title=f"{label} on {where} answers without authentication",
                severity=Severity.HIGH,
                description=(
                    f"{label} accepted a connection from the scanner and served a harmless request "
                    f"without credentials ({service.banner or 'no banner'}): anyone who can reach the port "
                    "can read and change its data."
                ),
                recommendation=(
                    f"Require authentication on {label}, bind it to localhost or a private interface, and "
                    "firewall the port to the application hosts that need it."
                ),
                observation_indexes=(index,),
            )
        if service.auth == "refused":
            return None
        return ProposedFinding(
            title=f"{label} port {result.port} reachable on {host}",
            severity=Severity.MEDIUM,
            description=(
                f"A {label} service{how} accepts connections from where the scan ran. "
                + (
                    "It asks for credentials, so it is exposed to password guessing and to its own "
                    "vulnerabilities."
                    if service.auth == "required"
                    else "Whether it requires authentication was not tested."
                )
            ),
            recommendation=(
                f"Expose {label} only to the hosts that need it (firewall, private network, bind address) "
                "and keep authentication and TLS on."
            ),
            observation_indexes=(index,),
        )
    if name in _CLEARTEXT:
        label = _CLEARTEXT[name]
        return ProposedFinding(
            title=f"{label} open on {where}",
            severity=Severity.MEDIUM,
            description=(
                f"{label}{how} sends credentials and data in clear text; anyone on the path can read them."
            ),
            recommendation=(
                "Turn it off, or replace it with SSH (for Telnet) or SFTP/FTPS (for FTP), and firewall the "
                "port meanwhile."
            ),
            observation_indexes=(index,),
        )
    return None
