"""Network analysis tools: open ports and banners, TLS versions on offer, and the HTTP redirect chain.

`PortCheckTool` (active, in `portscan`) is exported from here with the two passive tools. All of them
reach the target only through `netclient`, so the target policy checks every connection, redirects
included.

Limitations: the network client reports neither the ALPN protocol a TLS server picks nor the HTTP version
of a response (it speaks HTTP/1.1 only), so `tls_offer` reports ALPN as not measured and `http_chain`
says which HTTP version was used rather than which the server would prefer.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal
from urllib.parse import urljoin, urlsplit

from pydantic import Field

from orchestrion.domain.findings import Severity
from orchestrion.exceptions import ToolError, ValidationError
from orchestrion.tools.base import Observation, ProposedFinding, Tool, ToolArgs, ToolContext, ToolOutput
from orchestrion.tools.netclient import FetchResult, ProtocolSupport, fetch, probe_tls_versions, tls_probe
from orchestrion.tools.nettarget import expect_args, require_target, url_host
from orchestrion.tools.portscan import PortCheckArgs, PortCheckTool

__all__ = ["HttpChainArgs", "HttpChainTool", "PortCheckArgs", "PortCheckTool", "TLSOfferArgs", "TLSOfferTool"]

_LEGACY_VERSIONS = ("TLSv1", "TLSv1.1")
_WEAK_CIPHER = re.compile(r"RC4|3DES|DES-CBC|NULL|EXPORT|anon|MD5", re.IGNORECASE)
_ALPN_NOT_MEASURED = (
    "ALPN not measured: the network client does not report the protocol a TLS server selects, so whether "
    "h2 or http/1.1 is offered is unknown"
)
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_HSTS_MIN_SECONDS = 15_552_000  # 180 days: below this, a returning visitor is soon unprotected again.
_MAX_AGE = re.compile(r"max-age\s*=\s*\"?(\d+)\"?", re.IGNORECASE)
_SECOND_LEVEL = frozenset({"co", "com", "net", "org", "ac", "gov", "edu", "ne", "or"})
_HTTP_VERSION = "HTTP/1.1 (the client speaks HTTP/1.1 only; whether the server offers h2 is not measured)"


class TLSOfferArgs(ToolArgs):
    """Arguments of `TLSOfferTool`."""

    port: int | None = Field(
        default=None, ge=1, le=65535, description="Port to probe; the target's own port, else 443."
    )


class TLSOfferTool(Tool):
    """Which TLS versions a server accepts, the cipher it picks for each, and its default handshake."""

    name: ClassVar[str] = "tls_offer"
    description: ClassVar[str] = (
        "Probe the target's TLS service (its port, else 443) with one handshake per protocol version "
        "(TLS 1.0, 1.1, 1.2, 1.3): accepted or refused, the cipher negotiated for each, and the default "
        "handshake a modern client gets. Flags TLS 1.0/1.1 accepted, weak ciphers and TLS 1.2 without "
        "1.3. ALPN is reported as not measured."
    )
    args_model: ClassVar[type[ToolArgs]] = TLSOfferArgs

    async def execute(self, args: ToolArgs, ctx: ToolContext) -> ToolOutput:
        """Probe the task's target."""
        options = expect_args(args, TLSOfferArgs, self.name)
        policy, target = require_target(ctx, self.name)
        port = options.port or target.port or 443
        where = f"{url_host(target.host)}:{port}"
        versions = await probe_tls_versions(policy, target.host, port)
        if all(v.status == "error" for v in versions):
            raise ToolError(f"no TLS handshake with {where}: {versions[0].detail}", tool=self.name)
        observations = [_version_observation(where, v) for v in versions]
        default: dict[str, Any] | None = None
        if any(v.status == "accepted" for v in versions):
            try:
                info = await tls_probe(policy, target.host, port)
            except ToolError as exc:
                observations.append(
                    Observation(summary=f"Default handshake with {where} failed: {exc.message}")
                )
            else:
                default = {"version": info.version, "cipher": info.cipher, "bits": info.cipher_bits}
                observations.append(
                    Observation(
                        summary=(
                            f"Default handshake with {where} (a TLS 1.2+ client): {info.version}, "
                            f"{info.cipher} ({info.cipher_bits} bits)"
                        ),
                        data=default,
                        location=where,
                    )
                )
        observations.append(
            Observation(summary=f"{where}: {_ALPN_NOT_MEASURED}", data={"alpn": None, "measured": False})
        )
        findings = _tls_findings(where, versions)
        data = {
            "host": target.host,
            "port": port,
            "versions": {
                v.version: {"status": v.status, "cipher": v.cipher, "detail": v.detail} for v in versions
            },
            "default": default,
            "alpn": None,
        }
        return ToolOutput(observations=tuple(observations), findings=tuple(findings), data=data)


def _version_observation(where: str, support: ProtocolSupport) -> Observation:
    if support.status == "accepted":
        summary = f"{where} accepts {support.version} (cipher {support.cipher})"
    elif support.status == "refused":
        summary = f"{where} refuses {support.version}: {support.detail}"
    elif support.status == "not_testable_locally":
        summary = f"{support.version} not tested on {where}: {support.detail}"
    else:
        summary = f"{support.version} on {where} could not be tested: {support.detail}"
    return Observation(
        summary=summary,
        data={
            "version": support.version,
            "status": support.status,
            "cipher": support.cipher,
            "detail": support.detail,
        },
        location=where,
    )


def _tls_findings(where: str, versions: Sequence[ProtocolSupport]) -> list[ProposedFinding]:
    index = {v.version: i for i, v in enumerate(versions)}
    status = {v.version: v.status for v in versions}
    findings: list[ProposedFinding] = []
    legacy = [v for v in _LEGACY_VERSIONS if status.get(v) == "accepted"]
    if legacy:
        names = " and ".join(v.replace("TLSv", "TLS ") for v in legacy)
        findings.append(
            ProposedFinding(
                title=f"{names} accepted on {where}",
                severity=Severity.MEDIUM,
                description=(
                    f"The server completes handshakes with {names}, deprecated by RFC 8996: they rely on "
                    "SHA-1 and CBC constructions with known attacks, and no current browser needs them."
                ),
                recommendation="Set the minimum protocol version to TLS 1.2 (and enable TLS 1.3).",
                observation_indexes=tuple(index[v] for v in legacy),
            )
        )
    weak = [v for v in versions if v.status == "accepted" and v.cipher and _WEAK_CIPHER.search(v.cipher)]
    if weak:
        findings.append(
            ProposedFinding(
                title=f"Weak cipher negotiated on {where}",
                severity=Severity.MEDIUM,
                description="The server chose "
                + ", ".join(f"{v.cipher} for {v.version}" for v in weak)
                + ".",
                recommendation="Remove RC4, DES/3DES, NULL, EXPORT and anonymous suites from the ciphers.",
                observation_indexes=tuple(index[v.version] for v in weak),
            )
        )
    if status.get("TLSv1.2") == "accepted" and status.get("TLSv1.3") == "refused":
        findings.append(
            ProposedFinding(
                title=f"TLS 1.3 not offered on {where}",
                severity=Severity.INFO,
                description="The server accepts TLS 1.2 but refuses TLS 1.3 handshakes.",
                recommendation="Enable TLS 1.3: a faster handshake and only modern cipher suites.",
                observation_indexes=(index["TLSv1.2"], index["TLSv1.3"]),
            )
        )
    return findings


class HttpChainArgs(ToolArgs):
    """Arguments of `HttpChainTool`."""

    method: Literal["GET", "HEAD"] = Field(default="GET", description="Method of every request.")
    verify: bool = Field(
        default=True,
        description=(
            "Verify certificates (a failing one stops the chain); false follows the chain anyway and "
            "reports whether each HTTPS hop's certificate verifies."
        ),
    )


@dataclass(frozen=True, kw_only=True)
class _Hop:
    url: str
    result: FetchResult
    next_url: str | None

    @property
    def scheme(self) -> str:
        return urlsplit(self.url).scheme

    @property
    def host(self) -> str:
        return urlsplit(self.url).hostname or ""


class HttpChainTool(Tool):
    """The redirect chain of the target, hop by hop, and HSTS on its final response."""

    name: ClassVar[str] = "http_chain"
    description: ClassVar[str] = (
        "Follow the target URL's redirects one request at a time: each hop's status, Location, address "
        "and TLS version, http->https upgrades, HTTPS->HTTP downgrades, cross-domain hops, loops, the "
        "final status, the HTTP version used and Strict-Transport-Security on the final response. Every "
        "hop is checked by the target policy."
    )
    args_model: ClassVar[type[ToolArgs]] = HttpChainArgs

    async def execute(self, args: ToolArgs, ctx: ToolContext) -> ToolOutput:
        """Follow the chain from the task's target."""
        options = expect_args(args, HttpChainArgs, self.name)
        policy, target = require_target(ctx, self.name)
        url = target.url
        hops: list[_Hop] = []
        seen = {url}
        stop: str | None = None
        while True:
            try:
                result = await fetch(
                    policy,
                    url,
                    method=options.method,
                    follow_redirects=False,
                    max_bytes=1024,
                    verify=options.verify,
                )
            except (ValidationError, ToolError) as exc:
                if not hops:
                    raise
                verb = "refused" if isinstance(exc, ValidationError) else "failed"
                stop = f"the request to {url} was {verb}: {exc.message}"
                break
            location = result.header("location")
            next_url = urljoin(url, location) if result.status in _REDIRECTS and location else None
            hops.append(_Hop(url=url, result=result, next_url=next_url))
            if next_url is None:
                break
            if next_url in seen:
                stop = f"redirect loop: {next_url} was already visited"
                break
            if len(hops) > policy.max_redirects:
                stop = f"more than {policy.max_redirects} redirects"
                break
            seen.add(next_url)
            url = next_url
        return report_chain(hops, stop)


def report_chain(hops: Sequence[_Hop], stop: str | None) -> ToolOutput:
    """Observations and findings for a followed chain (pure)."""
    observations: list[Observation] = []
    transitions: list[dict[str, Any]] = []
    for number, hop in enumerate(hops, start=1):
        result = hop.result
        summary = f"Hop {number}: {hop.url} -> {result.status}"
        if hop.next_url:
            summary += f", Location {result.header('location')}"
        notes = _transition(hop, hops[number]) if number < len(hops) else []
        if notes:
            summary += f" ({'; '.join(notes)})"
            transitions.append({"hop": number, "notes": notes})
        data: dict[str, Any] = {
            "hop": number,
            "url": hop.url,
            "status": result.status,
            "location": result.header("location"),
            "next": hop.next_url,
            "address": result.address,
            "elapsed_ms": round(result.elapsed * 1000, 1),
            "transition": notes,
        }
        if result.tls is not None:
            data["tls"] = {"version": result.tls.version, "chain_verified": result.tls.chain_verified}
        observations.append(Observation(summary=summary, data=data, location=hop.url))
    final = hops[-1]
    hsts = final.result.header("strict-transport-security")
    max_age = _hsts_max_age(hsts)
    final_summary = (
        f"Final response: {final.result.status} from {final.url} after {len(hops) - 1} "
        f"redirect{'' if len(hops) == 2 else 's'}; "
        f"{_HTTP_VERSION}; HSTS: {hsts or 'none'}"
    )
    if stop:
        final_summary += f"; chain stopped: {stop}"
    observations.append(
        Observation(
            summary=final_summary,
            data={
                "final_url": final.url,
                "final_status": final.result.status,
                "redirects": len(hops) - 1,
                "http_version": "HTTP/1.1",
                "hsts": hsts,
                "hsts_max_age": max_age,
                "stopped": stop,
            },
            location=final.url,
        )
    )
    final_index = len(observations) - 1
    findings = _chain_findings(hops, hsts, max_age, stop, final_index)
    data = {
        "hops": [{"url": h.url, "status": h.result.status, "next": h.next_url} for h in hops],
        "final_url": final.url,
        "final_status": final.result.status,
        "transitions": transitions,
        "hsts": hsts,
        "stopped": stop,
    }
    return ToolOutput(observations=tuple(observations), findings=tuple(findings), data=data)


def _transition(hop: _Hop, following: _Hop) -> list[str]:
    notes: list[str] = []
    if (hop.scheme, following.scheme) == ("http", "https"):
        notes.append("upgrade http->https")
    elif (hop.scheme, following.scheme) == ("https", "http"):
        notes.append("downgrade https->http")
    if _site(hop.host) != _site(following.host):
        notes.append(f"cross-domain {hop.host}->{following.host}")
    elif hop.host != following.host:
        notes.append(f"host change {hop.host}->{following.host}")
    return notes


def _chain_findings(
    hops: Sequence[_Hop], hsts: str | None, max_age: int | None, stop: str | None, final_index: int
) -> list[ProposedFinding]:
    findings: list[ProposedFinding] = []
    final = hops[-1]
    all_hops = tuple(range(len(hops)))
    downgrades = [
        i for i in range(len(hops) - 1) if (hops[i].scheme, hops[i + 1].scheme) == ("https", "http")
    ]
    if downgrades:
        findings.append(
            ProposedFinding(
                title="Redirect from HTTPS to HTTP",
                severity=Severity.MEDIUM,
                description=(
                    "A hop of the chain sends an HTTPS visitor to a plain HTTP URL, where the request and "
                    "any cookies without Secure travel unencrypted."
                ),
                recommendation="Redirect only to HTTPS URLs.",
                observation_indexes=tuple(downgrades),
            )
        )
    elif hops[0].scheme == "http" and final.scheme == "http" and final.result.status < 400:
        findings.append(
            ProposedFinding(
                title=f"{final.host} serves plain HTTP without redirecting to HTTPS",
                severity=Severity.MEDIUM,
                description=(
                    f"{hops[0].url} ends at {final.url} ({final.result.status}) without ever moving to HTTPS."
                ),
                recommendation="Answer plain HTTP requests with a 301 to the HTTPS URL, and send HSTS there.",
                observation_indexes=(*all_hops, final_index),
            )
        )
    if final.scheme == "https" and final.result.status < 400:
        if hsts is None:
            findings.append(
                ProposedFinding(
                    title=f"No Strict-Transport-Security on {final.url}",
                    severity=Severity.LOW,
                    description="The final HTTPS response has no HSTS header: browsers may try HTTP first.",
                    recommendation="Send Strict-Transport-Security: max-age=31536000; includeSubDomains.",
                    observation_indexes=(final_index,),
                )
            )
        elif max_age is not None and max_age < _HSTS_MIN_SECONDS:
            findings.append(
                ProposedFinding(
                    title=f"Short HSTS max-age on {final.url}",
                    severity=Severity.LOW if max_age == 0 else Severity.INFO,
                    description=(
                        f"HSTS max-age is {max_age} seconds"
                        + (", which tells browsers to forget the policy." if max_age == 0 else ".")
                    ),
                    recommendation="Use a max-age of at least 31536000 seconds (one year).",
                    observation_indexes=(final_index,),
                )
            )
    if stop and ("loop" in stop or "more than" in stop):
        findings.append(
            ProposedFinding(
                title="Redirect loop" if "loop" in stop else "Too many redirects",
                severity=Severity.LOW,
                description=f"Following the redirects of {hops[0].url} did not end: {stop}.",
                recommendation="Make every URL reach a final response in at most one or two redirects.",
                observation_indexes=(*all_hops, final_index),
            )
        )
    return findings


def _hsts_max_age(value: str | None) -> int | None:
    match = _MAX_AGE.search(value or "")
    return int(match.group(1)) if match else None


def _site(host: str) -> str:
    """A rough registrable domain: the last two labels (three under ``co.uk``-style suffixes)."""
    labels = host.lower().rstrip(".").split(".")
    if len(labels) <= 2 or ":" in host or labels[-1].isdigit():
        return host.lower()
    keep = 3 if len(labels[-1]) == 2 and labels[-2] in _SECOND_LEVEL else 2
    return ".".join(labels[-keep:])
