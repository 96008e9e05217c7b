"""The `dns_records` tool: a domain's public DNS records and what they say about its mail security.

It asks the policy's resolver (`dns_lookup.make_resolver`) for A, AAAA, MX, TXT, NS, CAA and SOA of the
target's host name and for ``_dmarc.<domain>`` TXT, then reads them: SPF (`mailauth`; ``include:`` and
``redirect=`` chains followed to count DNS lookups), DMARC, CAA, and whether each mail exchanger
resolves. Every question asked becomes an observation, so each finding cites the answers (or the
missing answers) that prove it. A failed query proves nothing: no finding is drawn from it.

DMARC and CAA records may live above the host (``www.example.com`` is covered by ``example.com``'s),
so when the host has none the tool climbs to its parents, stopping at two labels: without the public
suffix list it cannot tell ``example.co.uk`` from ``co.uk``, and it never asks about a bare TLD.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import dns.asyncresolver

from orchestrion.domain.findings import Severity
from orchestrion.exceptions import ToolError, ValidationError
from orchestrion.tools.base import Observation, ProposedFinding, Tool, ToolArgs, ToolContext, ToolOutput
from orchestrion.tools.dns_lookup import NXDOMAIN, DnsAnswer, make_resolver, query
from orchestrion.tools.mailauth import (
    SPF_LOOKUP_LIMIT,
    DmarcRecord,
    SpfRecord,
    is_dmarc,
    is_spf,
    parse_dmarc,
    parse_spf,
)
from orchestrion.tools.nettarget import require_target
from orchestrion.tools.targets import TargetPolicy

__all__ = ["DnsRecordsTool"]

RECORD_TYPES = ("A", "AAAA", "MX", "TXT", "NS", "CAA", "SOA")
_MAX_MX_HOSTS = 10
# Following SPF includes asks one TXT question per domain; past this many the count is a lower bound.
_MAX_SPF_QUERIES = 20
_SPF_FIX = (
    "Publish one SPF record that lists the servers allowed to send mail for the domain and ends with "
    "-all (or ~all while rolling out)."
)


class DnsRecordsTool(Tool):
    """Public DNS records of the target domain, with SPF, DMARC, CAA and MX checks."""

    name: ClassVar[str] = "dns_records"
    description: ClassVar[str] = (
        "Look up the target domain's A, AAAA, MX, TXT, NS, CAA and SOA records and its _dmarc TXT record "
        "through the configured resolver, and check SPF (all qualifier, DNS lookup count), DMARC "
        "policy and reporting, CAA, and whether mail exchangers resolve."
    )
    args_model: ClassVar[type[ToolArgs]] = ToolArgs
    # Several rounds of questions (records, MX hosts, SPF includes, parent domains), each bounded by
    # the policy's connect timeout.
    timeout_seconds: ClassVar[float] = 90.0

    async def execute(self, args: ToolArgs, ctx: ToolContext) -> ToolOutput:
        """Query the records and read them."""
        policy, domain = _domain_of(ctx, self.name)
        resolver = await make_resolver(policy)
        answers = await asyncio.gather(
            *(query(resolver, domain, rtype) for rtype in RECORD_TYPES),
            query(resolver, f"_dmarc.{domain}", "TXT"),
        )
        if not any(answer.conclusive for answer in answers):
            raise ToolError(
                f"the DNS resolver did not answer for {domain}: {answers[0].error}", tool=self.name
            )
        report = _Report()
        by_type = {answer.rtype: answer for answer in answers[: len(RECORD_TYPES)]}
        cited = {rtype: report.answer(answer) for rtype, answer in by_type.items()}
        dmarc_answer, dmarc_index = answers[-1], report.answer(answers[-1])
        data: dict[str, Any] = {
            "domain": domain,
            # Which kind of resolver answered, not its address: that is the operator's business.
            "resolver": "configured nameservers" if policy.nameservers else "system resolver",
            "records": {rtype: len(answer.records) for rtype, answer in by_type.items()},
        }
        if all(answer.status == NXDOMAIN for answer in by_type.values()):
            report.observe(f"{domain} does not exist (NXDOMAIN)", {"domain": domain, "exists": False}, domain)
            return report.output({**data, "exists": False})
        mail = await _check_mx(report, resolver, by_type["MX"], cited["MX"])
        data["spf_all"] = await _check_spf(
            report, resolver, domain, by_type["TXT"], cited["TXT"], mail, cited["MX"]
        )
        data["dmarc_policy"] = await _check_dmarc(report, resolver, domain, dmarc_answer, dmarc_index)
        data["caa"] = await _check_caa(report, resolver, domain, by_type["CAA"], cited["CAA"])
        return report.output({**data, "exists": True})


@dataclass
class _Report:
    observations: list[Observation] = field(default_factory=list)
    findings: list[ProposedFinding] = field(default_factory=list)

    def observe(self, summary: str, data: dict[str, Any], location: str) -> int:
        self.observations.append(Observation(summary=summary, data=data, location=location))
        return len(self.observations) - 1

    def answer(self, answer: DnsAnswer) -> int:
        return self.observe(answer.summary, answer.as_dict(), f"dns:{answer.name}/{answer.rtype}")

    def find(
        self, title: str, severity: Severity, description: str, recommendation: str, cites: list[int]
    ) -> None:
        self.findings.append(
            ProposedFinding(
                title=title,
                severity=severity,
                description=description,
                recommendation=recommendation,
                observation_indexes=tuple(dict.fromkeys(cites)),
            )
        )

    def output(self, data: dict[str, Any]) -> ToolOutput:
        return ToolOutput(observations=tuple(self.observations), findings=tuple(self.findings), data=data)


def _domain_of(ctx: ToolContext, tool: str) -> tuple[TargetPolicy, str]:
    policy, target = require_target(ctx, tool)
    if target.is_ip:
        raise ValidationError(
            f"{tool} looks up a domain name's records; {target.host} is an IP address", field="target"
        )
    return policy, target.host


async def _check_mx(report: _Report, resolver: dns.asyncresolver.Resolver, mx: DnsAnswer, index: int) -> bool:
    """Check each mail exchanger resolves; return whether the domain receives mail."""
    if not mx.found:
        return False
    if [exchange for _, exchange in mx.mx] == ["."]:
        # RFC 7505 "null MX": the domain says it accepts no mail at all.
        report.observe(
            f"{mx.name} publishes a null MX: it accepts no mail",
            {"domain": mx.name, "null_mx": True},
            mx.name,
        )
        return False
    hosts = list(dict.fromkeys(exchange for _, exchange in sorted(mx.mx) if exchange != "."))[:_MAX_MX_HOSTS]
    lookups = await asyncio.gather(
        *(asyncio.gather(query(resolver, host, "A"), query(resolver, host, "AAAA")) for host in hosts)
    )
    dead: list[str] = []
    cites = [index]
    for host, (a, aaaa) in zip(hosts, lookups, strict=True):
        addresses = [*a.records, *aaaa.records]
        data = {"exchange": host, "addresses": addresses, "a": a.status, "aaaa": aaaa.status}
        if addresses:
            summary = f"MX host {host} resolves to {', '.join(addresses)}"
        elif a.conclusive and aaaa.conclusive:
            summary = f"MX host {host} does not resolve (A: {a.status}, AAAA: {aaaa.status})"
            dead.append(host)
        else:
            summary = f"MX host {host} could not be checked: {a.error or aaaa.error}"
        observed = report.observe(summary, data, f"dns:{host}/A")
        if host in dead:
            cites.append(observed)
    if dead:
        report.find(
            f"MX records of {mx.name} point to names that do not resolve",
            Severity.LOW,
            f"{mx.name} names {', '.join(dead)} as mail exchanger(s), but no A or AAAA record exists for "
            "them: mail sent to those exchangers cannot be delivered, and a lapsed name could be "
            "registered by someone else to receive it.",
            "Remove the stale MX records or point them at mail servers that exist.",
            cites,
        )
    return True


@dataclass
class _SpfChain:
    lookups: int
    records: dict[str, SpfRecord]
    without_spf: list[str] = field(default_factory=list)
    lower_bound: bool = False
    asked: set[str] = field(default_factory=set)


async def _follow_spf(resolver: dns.asyncresolver.Resolver, domain: str, record: SpfRecord) -> _SpfChain:
    """Count the DNS lookups evaluating `record` costs, following include and redirect targets.

    One level of nesting at a time, its TXT questions asked together, until the count passes the
    limit (the exact excess does not matter), nothing is left, or `_MAX_SPF_QUERIES` were asked.
    """
    chain = _SpfChain(lookups=record.lookup_terms, records={domain: record}, asked={domain})
    level = _spf_targets(record, chain)
    # The domain's own record was asked for by the caller, and does not count.
    while level and chain.lookups <= SPF_LOOKUP_LIMIT and len(chain.asked) <= _MAX_SPF_QUERIES:
        names = level[: _MAX_SPF_QUERIES + 1 - len(chain.asked)]
        chain.asked.update(names)
        answers = await asyncio.gather(*(query(resolver, name, "TXT") for name in names))
        level = level[len(names) :]
        for name, answer in zip(names, answers, strict=True):
            spf = [text for text in answer.txt if is_spf(text)]
            if not answer.conclusive:
                chain.lower_bound = True
            elif not spf:
                chain.without_spf.append(name)
            else:
                nested = parse_spf(spf[0])
                chain.records[name] = nested
                chain.lookups += nested.lookup_terms
                level += [target for target in _spf_targets(nested, chain) if target not in level]
    chain.lower_bound = chain.lower_bound or bool(level)
    return chain


def _spf_targets(record: SpfRecord, chain: _SpfChain) -> list[str]:
    """The include and redirect domains of `record` not followed yet."""
    targets: list[str] = []
    for raw in [*record.includes, *([record.redirect] if record.redirect else [])]:
        name = raw.lower().rstrip(".")
        if "%" in name:
            # A macro names a domain that depends on the sender: it cannot be followed from here.
            chain.lower_bound = True
        elif name not in chain.asked and name not in targets:
            targets.append(name)
    return targets


def _effective_all(record: SpfRecord, chain: _SpfChain) -> str | None:
    """The ``all`` qualifier that decides, following ``redirect=`` when the record has no ``all``."""
    seen: set[str] = set()
    current: SpfRecord | None = record
    while current is not None and current.all_qualifier is None and current.redirect:
        target = current.redirect.lower().rstrip(".")
        if target in seen:
            break
        seen.add(target)
        current = chain.records.get(target)
    return current.all_qualifier if current is not None else None


async def _check_spf(
    report: _Report,
    resolver: dns.asyncresolver.Resolver,
    domain: str,
    txt: DnsAnswer,
    txt_index: int,
    receives_mail: bool,
    mx_index: int,
) -> str | None:
    """Read the SPF record; return its deciding ``all`` qualifier."""
    if not txt.conclusive:
        return None
    spf = [text for text in txt.txt if is_spf(text)]
    if not spf:
        observed = report.observe(
            f"{domain} publishes no SPF record",
            {"domain": domain, "spf": None, "receives_mail": receives_mail},
            domain,
        )
        if receives_mail:
            report.find(
                f"No SPF record for {domain}, which receives mail",
                Severity.MEDIUM,
                f"{domain} has MX records but no TXT record starting with v=spf1, so receivers cannot "
                "tell its real mail servers from forgers sending in its name.",
                _SPF_FIX,
                [txt_index, mx_index, observed],
            )
        return None
    record = parse_spf(spf[0])
    chain = await _follow_spf(resolver, domain, record)
    qualifier = _effective_all(record, chain)
    data: dict[str, Any] = {
        "domain": domain,
        **record.as_dict(),
        "effective_all": qualifier,
        "dns_lookups": chain.lookups,
        "dns_lookups_lower_bound": chain.lower_bound,
        "lookups_by_domain": {name: r.lookup_terms for name, r in chain.records.items()},
        "targets_without_spf": chain.without_spf,
        "spf_records": len(spf),
    }
    at_least = "at least " if chain.lower_bound else ""
    observed = report.observe(
        f"SPF of {domain}: {record.text} (all: {qualifier or 'none'}; {at_least}{chain.lookups} DNS lookups)",
        data,
        domain,
    )
    cites = [txt_index, observed]
    if len(spf) > 1:
        report.find(
            f"{domain} publishes {len(spf)} SPF records",
            Severity.MEDIUM,
            "RFC 7208 allows one SPF record per domain; with several, receivers return a permanent error "
            "and SPF protects nothing.",
            "Merge the SPF records into one.",
            cites,
        )
    if qualifier == "+":
        report.find(
            f"SPF of {domain} allows every server on the Internet to send its mail (+all)",
            Severity.HIGH,
            f"The SPF record of {domain} ends with +all, which tells receivers that any host is an "
            "authorised sender: anyone can send mail that passes SPF as this domain.",
            _SPF_FIX,
            cites,
        )
    elif qualifier in ("?", None):
        how = "ends with ?all" if qualifier == "?" else "has no all mechanism"
        report.find(
            f"SPF of {domain} is neutral about unlisted senders ({'?all' if qualifier else 'no all'})",
            Severity.MEDIUM,
            f"The SPF record of {domain} {how}, so mail from servers it does not list gets a neutral "
            "result and is treated like mail without SPF: the record does not stop spoofing.",
            _SPF_FIX,
            cites,
        )
    if chain.lookups > SPF_LOOKUP_LIMIT:
        report.find(
            f"SPF of {domain} needs more than {SPF_LOOKUP_LIMIT} DNS lookups",
            Severity.LOW,
            f"Evaluating the SPF record of {domain} costs {at_least}{chain.lookups} DNS-querying terms "
            f"(include, a, mx, ptr, exists, redirect, counted through nested includes); past "
            f"{SPF_LOOKUP_LIMIT}, receivers return a permanent error and legitimate mail may fail SPF.",
            "Flatten the record: replace nested includes with ip4:/ip6: ranges or drop unused senders.",
            cites,
        )
    return qualifier


async def _climb(
    report: _Report,
    resolver: dns.asyncresolver.Resolver,
    domain: str,
    rtype: str,
    *,
    prefix: str = "",
    done: Callable[[DnsAnswer], bool],
) -> list[tuple[DnsAnswer, int]]:
    """Ask about each parent of `domain` (down to two labels) until an answer is `done` or fails."""
    labels = domain.split(".")
    asked: list[tuple[DnsAnswer, int]] = []
    for start in range(1, len(labels) - 1):
        answer = await query(resolver, prefix + ".".join(labels[start:]), rtype)
        asked.append((answer, report.answer(answer)))
        if done(answer) or not answer.conclusive:
            break
    return asked


def _has_dmarc(answer: DnsAnswer) -> bool:
    return any(is_dmarc(text) for text in answer.txt)


async def _check_dmarc(
    report: _Report, resolver: dns.asyncresolver.Resolver, domain: str, answer: DnsAnswer, index: int
) -> str | None:
    """Find and read the DMARC record; return the policy that applies to `domain`."""
    asked = [(answer, index)]
    if answer.conclusive and not _has_dmarc(answer):
        asked += await _climb(report, resolver, domain, "TXT", prefix="_dmarc.", done=_has_dmarc)
    cites = [i for _, i in asked]
    if not all(a.conclusive for a, _ in asked):
        return None
    found = next(((a, [t for t in a.txt if is_dmarc(t)]) for a, _ in asked if _has_dmarc(a)), None)
    if found is None or len(found[1]) > 1:
        report.find(
            f"No usable DMARC record for {domain}",
            Severity.MEDIUM,
            (
                f"{found[0].name} publishes several DMARC records, which RFC 7489 treats as none"
                if found is not None
                else f"No _dmarc TXT record starting with v=DMARC1 covers {domain}"
            )
            + ": receivers apply no policy to mail that fails SPF and DKIM alignment, and the owner "
            "gets no reports of spoofing.",
            "Publish one record at _dmarc.<domain>, starting with v=DMARC1; p=none; rua=mailto:<address> "
            "to collect reports, then move to p=quarantine or p=reject.",
            # Several records: the answer that holds them proves it (climbing stopped there).
            cites[-1:] if found is not None else cites,
        )
        return None
    source, texts = found
    record = parse_dmarc(texts[0])
    inherited = source.name != f"_dmarc.{domain}"
    policy = _applied_policy(record, inherited)
    observed = report.observe(
        f"DMARC for {domain} (from {source.name}): policy {policy or 'missing'}; "
        f"rua: {', '.join(record.rua) or 'none'}; ruf: {', '.join(record.ruf) or 'none'}",
        {
            "domain": domain,
            "source": source.name,
            "inherited": inherited,
            "applied_policy": policy,
            **record.as_dict(),
        },
        source.name,
    )
    if policy not in ("quarantine", "reject"):
        report.find(
            f"DMARC policy of {domain} does not act on spoofed mail (p={policy or 'missing'})",
            Severity.LOW,
            f"The DMARC record covering {domain} ({source.name}) asks receivers to take no action on "
            "mail that fails authentication; it only monitors.",
            "Once the reports show legitimate mail passes, move to p=quarantine and then p=reject.",
            [cites[-1], observed],
        )
    return policy


def _applied_policy(record: DmarcRecord, inherited: bool) -> str | None:
    # A record found at a parent (organizational) domain applies its sp= to subdomains when present.
    policy = (record.subdomain_policy or record.policy) if inherited else record.policy
    return policy if policy in ("none", "quarantine", "reject") else None


async def _check_caa(
    report: _Report, resolver: dns.asyncresolver.Resolver, domain: str, answer: DnsAnswer, index: int
) -> bool | None:
    """Find the CAA record set that applies (RFC 8659 climbs to parents); return whether one exists."""
    asked = [(answer, index)]
    if answer.conclusive and not answer.found:
        asked += await _climb(report, resolver, domain, "CAA", done=lambda a: a.found)
    if not all(a.conclusive for a, _ in asked):
        return None
    source = next((a for a, _ in asked if a.found), None)
    if source is None:
        report.find(
            f"No CAA record restricts which CAs may issue certificates for {domain}",
            Severity.INFO,
            f"Neither {domain} nor its parents publish CAA records, so any certificate authority may "
            "issue certificates for it.",
            'Publish CAA records naming the CAs you use (e.g. 0 issue "letsencrypt.org") and an iodef '
            "contact.",
            [i for _, i in asked],
        )
        return False
    by_tag: dict[str, list[str]] = {}
    for _flags, tag, value in source.caa:
        by_tag.setdefault(tag, []).append(value)
    report.observe(
        f"CAA for {domain} (from {source.name}): "
        + "; ".join(f"{tag} {', '.join(values)}" for tag, values in sorted(by_tag.items())),
        {"domain": domain, "source": source.name, "tags": by_tag},
        source.name,
    )
    return True
