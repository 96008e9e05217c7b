"""Parsing of the mail-authentication records the DNS tool reads: SPF (RFC 7208) and DMARC (RFC 7489).

Pure functions over record text; the DNS queries (following SPF ``include:`` chains, finding the
DMARC record) live in `orchestrion.tools.dns_records`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = [
    "SPF_LOOKUP_LIMIT",
    "DmarcRecord",
    "SpfRecord",
    "SpfTerm",
    "is_dmarc",
    "is_spf",
    "parse_dmarc",
    "parse_spf",
]

SPF_LOOKUP_LIMIT = 10
"""RFC 7208 section 4.6.4: more DNS-querying terms than this make SPF evaluation a permerror."""

_MECHANISMS = frozenset({"all", "include", "a", "mx", "ptr", "ip4", "ip6", "exists"})
# The mechanisms whose evaluation costs a DNS query, and so count against the limit of ten (with the
# redirect= modifier).
_LOOKUP_MECHANISMS = frozenset({"include", "a", "mx", "ptr", "exists"})
_QUALIFIERS = "+-~?"
_MODIFIER = re.compile(r"^([A-Za-z][A-Za-z0-9_.-]*)=(.*)$")


@dataclass(frozen=True, kw_only=True)
class SpfTerm:
    """One term of an SPF record.

    Attributes:
        qualifier: ``+``, ``-``, ``~`` or ``?`` for mechanisms (``+`` when none is written); ``""`` for
            modifiers.
        name: The mechanism (``all``, ``include``, ``ip4``...) or modifier (``redirect``, ``exp``) name,
            lower-cased.
        value: What follows ``:``, ``/`` or ``=`` (None when nothing does).
        modifier: Whether the term is a ``name=value`` modifier.
        known: Whether RFC 7208 defines the mechanism (unknown mechanisms are a permerror).
    """

    qualifier: str
    name: str
    value: str | None
    modifier: bool
    known: bool

    @property
    def costs_lookup(self) -> bool:
        """Whether evaluating the term costs a DNS query (counted against `SPF_LOOKUP_LIMIT`)."""
        return self.name == "redirect" if self.modifier else self.name in _LOOKUP_MECHANISMS

    @property
    def text(self) -> str:
        """The term as written (normalised)."""
        if self.modifier:
            return f"{self.name}={self.value or ''}"
        shown = "" if self.qualifier == "+" else self.qualifier
        if self.value is None:
            return f"{shown}{self.name}"
        separator = "" if self.value.startswith("/") else ":"
        return f"{shown}{self.name}{separator}{self.value}"


@dataclass(frozen=True, kw_only=True)
class SpfRecord:
    """A parsed SPF record.

    Attributes:
        text: The record as published.
        terms: Its terms, in order.
    """

    text: str
    terms: tuple[SpfTerm, ...]

    @property
    def all_qualifier(self) -> str | None:
        """The qualifier of the ``all`` mechanism, or None without one."""
        return next((t.qualifier for t in self.terms if t.name == "all" and not t.modifier), None)

    @property
    def redirect(self) -> str | None:
        """The ``redirect=`` domain, if any."""
        return next((t.value for t in self.terms if t.modifier and t.name == "redirect"), None)

    @property
    def includes(self) -> tuple[str, ...]:
        """The domains of ``include:`` mechanisms, in order."""
        return tuple(t.value for t in self.terms if t.name == "include" and not t.modifier and t.value)

    @property
    def lookup_terms(self) -> int:
        """How many of this record's own terms cost a DNS lookup (not counting nested records)."""
        return sum(1 for t in self.terms if t.costs_lookup)

    @property
    def unknown(self) -> tuple[str, ...]:
        """Terms that are neither known mechanisms nor modifiers."""
        return tuple(t.text for t in self.terms if not t.known)

    def as_dict(self) -> dict[str, object]:
        """A JSON-ready form for observations."""
        return {
            "record": self.text,
            "terms": [t.text for t in self.terms],
            "all": self.all_qualifier,
            "redirect": self.redirect,
            "includes": list(self.includes),
            "lookup_terms": self.lookup_terms,
            "unknown_terms": list(self.unknown),
        }


@dataclass(frozen=True, kw_only=True)
class DmarcRecord:
    """A parsed DMARC record.

    Attributes:
        text: The record as published.
        tags: Every ``tag=value`` pair, tags lower-cased, in order (a repeated tag keeps the first).
    """

    text: str
    tags: tuple[tuple[str, str], ...]

    def tag(self, name: str) -> str | None:
        """The value of tag `name`, or None."""
        return next((value for key, value in self.tags if key == name), None)

    @property
    def policy(self) -> str | None:
        """The ``p=`` policy, lower-cased (``none``, ``quarantine``, ``reject``), or None without one."""
        value = self.tag("p")
        return value.lower() if value else None

    @property
    def subdomain_policy(self) -> str | None:
        """The ``sp=`` policy, lower-cased, or None."""
        value = self.tag("sp")
        return value.lower() if value else None

    @property
    def rua(self) -> tuple[str, ...]:
        """Aggregate report addresses."""
        return _uris(self.tag("rua"))

    @property
    def ruf(self) -> tuple[str, ...]:
        """Forensic (failure) report addresses."""
        return _uris(self.tag("ruf"))

    @property
    def pct(self) -> int | None:
        """The ``pct=`` percentage, or None when absent or not a number."""
        value = self.tag("pct")
        return int(value) if value and value.isdigit() else None

    def as_dict(self) -> dict[str, object]:
        """A JSON-ready form for observations."""
        return {
            "record": self.text,
            "policy": self.policy,
            "subdomain_policy": self.subdomain_policy,
            "pct": self.pct,
            "rua": list(self.rua),
            "ruf": list(self.ruf),
            "tags": dict(self.tags),
        }


def is_spf(text: str) -> bool:
    """Whether a TXT string is an SPF record (``v=spf1`` followed by nothing or a space)."""
    lowered = text.strip().lower()
    return lowered == "v=spf1" or lowered.startswith("v=spf1 ")


def parse_spf(text: str) -> SpfRecord:
    """Parse an SPF record (the caller checked `is_spf`)."""
    terms: list[SpfTerm] = []
    for raw in text.split()[1:]:
        modifier = _MODIFIER.match(raw)
        if modifier is not None:
            terms.append(
                SpfTerm(
                    qualifier="",
                    name=modifier.group(1).lower(),
                    value=modifier.group(2),
                    modifier=True,
                    known=True,
                )
            )
            continue
        qualifier = raw[0] if raw[0] in _QUALIFIERS else "+"
        body = raw[1:] if raw[0] in _QUALIFIERS else raw
        name, value = _split_mechanism(body)
        terms.append(
            SpfTerm(qualifier=qualifier, name=name, value=value, modifier=False, known=name in _MECHANISMS)
        )
    return SpfRecord(text=text.strip(), terms=tuple(terms))


def is_dmarc(text: str) -> bool:
    """Whether a TXT string is a DMARC record (its first tag is ``v=DMARC1``)."""
    first = text.strip().split(";", 1)[0].replace(" ", "")
    return first.lower() == "v=dmarc1"


def parse_dmarc(text: str) -> DmarcRecord:
    """Parse a DMARC record (the caller checked `is_dmarc`)."""
    tags: dict[str, str] = {}
    for part in text.split(";"):
        key, sep, value = part.partition("=")
        key = key.strip().lower()
        if sep and key and key not in tags:
            tags[key] = value.strip()
    return DmarcRecord(text=text.strip(), tags=tuple(tags.items()))


def _split_mechanism(body: str) -> tuple[str, str | None]:
    # "ip4:192.0.2.0/24", "a/24", "mx:example.com/24", "all": the name ends at the first ":" or "/".
    for index, char in enumerate(body):
        if char == ":":
            return body[:index].lower(), body[index + 1 :]
        if char == "/":
            return body[:index].lower(), body[index:]
    return body.lower(), None


def _uris(value: str | None) -> tuple[str, ...]:
    if not value:
        return ()
    return tuple(uri.strip() for uri in value.split(",") if uri.strip())
