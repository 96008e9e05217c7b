"""DNS queries for the OSINT tools, through the resolver the target policy resolves with.

`TargetPolicy.resolve` queries the policy's `nameservers` with dnspython when it names some, and the
system resolver otherwise; `make_resolver` builds the same configuration, so a test DNS server (or an
operator's internal resolver) answers the record queries too. Queries go to that resolver, never to
the target itself, which is why they need no address check.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import dns.asyncresolver
import dns.exception
import dns.name
import dns.rdata
import dns.rdtypes.ANY.CAA
import dns.rdtypes.ANY.MX
import dns.rdtypes.ANY.TXT
import dns.resolver

from orchestrion.exceptions import ToolError
from orchestrion.tools.secrets import redact_secrets
from orchestrion.tools.targets import TargetPolicy

__all__ = ["ANSWER", "ERROR", "NO_RECORDS", "NXDOMAIN", "DnsAnswer", "make_resolver", "query"]

# Statuses of a `DnsAnswer`.
ANSWER = "answer"
NO_RECORDS = "no_records"
NXDOMAIN = "nxdomain"
ERROR = "error"


@dataclass(frozen=True, kw_only=True)
class DnsAnswer:
    """The answer to one question.

    Attributes:
        name: The name asked about (no trailing dot).
        rtype: The record type (``"MX"``...).
        status: ``answer`` (records came back), ``no_records`` (the name exists, no records of that
            type), ``nxdomain`` (no such name) or ``error`` (timeout, SERVFAIL...: nothing is known).
        records: Each record in presentation form (TXT strings joined and secrets redacted).
        txt: TXT strings joined, as published (for parsing SPF and DMARC; TXT only).
        mx: ``(preference, exchange)`` pairs, exchange without the trailing dot (MX only).
        caa: ``(flags, tag, value)`` triples (CAA only).
        error: What went wrong, for ``error``.
    """

    name: str
    rtype: str
    status: str
    records: tuple[str, ...] = ()
    txt: tuple[str, ...] = ()
    mx: tuple[tuple[int, str], ...] = ()
    caa: tuple[tuple[int, str, str], ...] = ()
    error: str | None = None

    @property
    def conclusive(self) -> bool:
        """Whether the answer can be trusted to say what exists (anything but ``error``)."""
        return self.status != ERROR

    @property
    def found(self) -> bool:
        """Whether records came back."""
        return self.status == ANSWER

    @property
    def summary(self) -> str:
        """One line for an observation."""
        head = f"{self.name} {self.rtype}"
        if self.status == ANSWER:
            return f"{head}: {', '.join(self.records)}"
        if self.status == NO_RECORDS:
            return f"{head}: no records"
        if self.status == NXDOMAIN:
            return f"{head}: no such domain (NXDOMAIN)"
        return f"{head}: query failed ({self.error})"

    def as_dict(self) -> dict[str, object]:
        """A JSON-ready form for observations."""
        data: dict[str, object] = {
            "name": self.name,
            "type": self.rtype,
            "status": self.status,
            "records": list(self.records),
        }
        if self.error is not None:
            data["error"] = self.error
        return data


async def make_resolver(policy: TargetPolicy) -> dns.asyncresolver.Resolver:
    """A resolver configured as `policy` resolves: its nameservers, else the system's.

    Raises:
        ToolError: No nameservers are configured and the system has no resolver configuration.
    """
    if policy.nameservers:
        resolver = dns.asyncresolver.Resolver(configure=False)
        # The policy's own parsed servers, so the DNS tools and `TargetPolicy.resolve` ask the same
        # servers in the same way (the policy has already validated the `ip:port` specs).
        resolver.nameservers = list(policy._dns_servers)
    else:
        try:
            # Reading /etc/resolv.conf is blocking file I/O.
            resolver = await asyncio.to_thread(dns.asyncresolver.Resolver)
        except dns.exception.DNSException as exc:
            raise ToolError(f"no DNS resolver is configured: {exc}", tool="dns") from exc
    resolver.lifetime = policy.connect_timeout
    return resolver


async def query(resolver: dns.asyncresolver.Resolver, name: str, rtype: str) -> DnsAnswer:
    """Ask `resolver` for `rtype` records of `name`; failures become an ``error`` answer, never raise."""
    try:
        answer = await resolver.resolve(
            dns.name.from_text(name), rtype, raise_on_no_answer=False, search=False
        )
    except dns.resolver.NXDOMAIN:
        return DnsAnswer(name=name, rtype=rtype, status=NXDOMAIN)
    except dns.exception.Timeout:
        return DnsAnswer(name=name, rtype=rtype, status=ERROR, error="timed out")
    except dns.resolver.NoNameservers:
        return DnsAnswer(
            name=name, rtype=rtype, status=ERROR, error="no nameserver answered (SERVFAIL or REFUSED)"
        )
    except (dns.exception.DNSException, OSError) as exc:
        return DnsAnswer(name=name, rtype=rtype, status=ERROR, error=str(exc) or type(exc).__name__)
    rdatas: list[dns.rdata.Rdata] = list(answer.rrset) if answer.rrset is not None else []
    if not rdatas:
        return DnsAnswer(name=name, rtype=rtype, status=NO_RECORDS)
    txt = tuple(
        b"".join(r.strings).decode("utf-8", "replace")
        for r in rdatas
        if isinstance(r, dns.rdtypes.ANY.TXT.TXT)
    )
    mx = tuple(
        (int(r.preference), r.exchange.to_text(omit_final_dot=True))
        for r in rdatas
        if isinstance(r, dns.rdtypes.ANY.MX.MX)
    )
    caa = tuple(
        (int(r.flags), r.tag.decode("ascii", "replace").lower(), r.value.decode("utf-8", "replace"))
        for r in rdatas
        if isinstance(r, dns.rdtypes.ANY.CAA.CAA)
    )
    if txt:
        records = tuple(redact_secrets(text) for text in txt)
    elif mx:
        records = tuple(f"{preference} {exchange}" for preference, exchange in sorted(mx))
    else:
        records = tuple(r.to_text() for r in rdatas)
    return DnsAnswer(name=name, rtype=rtype, status=ANSWER, records=records, txt=txt, mx=mx, caa=caa)
