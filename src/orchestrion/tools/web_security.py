"""Web security tools: what they share.

The security expert's web tools live in four modules: `tls_audit.TLSAuditTool` (certificate and
protocol versions), `web_audit.HeadersAuditTool` (security headers, CORS and cookies),
`exposed_files.ExposedFilesTool` (version-control metadata, environment files and backups left in the
web root) and `advisories.BannerAdvisoryTool` (version banners against a bundled advisory table).

They share this module: `require_target` (re-exported from `nettarget`, which every network tool
uses), `SiteClient` (every request through `netclient.fetch`, certificates verified wherever they verify),
`Report` (observations numbered as they are made, so each finding cites the ones that prove it) and
`safe_excerpt` / `has_credentials` (what evidence may quote of a file that holds secrets).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urljoin

from orchestrion.domain.findings import Severity
from orchestrion.exceptions import ToolError, ValidationError
from orchestrion.tools.base import Observation, ProposedFinding, ToolOutput
from orchestrion.tools.netclient import FetchResult, fetch
from orchestrion.tools.nettarget import require_target
from orchestrion.tools.secrets import redact_secrets
from orchestrion.tools.targets import Target, TargetPolicy

__all__ = [
    "Chain",
    "Report",
    "SiteClient",
    "has_credentials",
    "require_target",
    "safe_excerpt",
    "site_url",
    "unknown_path",
]

REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_URL_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s@]+@")
_ASSIGNMENT = re.compile(r"^(\s*(?:export\s+)?[A-Za-z_][\w.-]*\s*[=:]\s*)(\S.*)$")
_PHP_DEFINE = re.compile(r"""(define\(\s*(['"])\w+\2\s*,\s*)(['"])(.*?)\3""")
_SECRET_NAME = re.compile(
    r"(?i)pass(?!enger)|pwd|secret|token|api_?key|access_?key|private|credential|auth(?!or)|salt|dsn"
    r"|(?:^|[_.'\"-])key\b"
)


def site_url(target: Target, path: str) -> str:
    """``scheme://host[:port]`` of `target` followed by `path` (which starts with ``/``)."""
    return f"{target.effective_scheme}://{target.netloc}{path}"


def unknown_path() -> str:
    """A path no site has (to learn how a site answers for missing pages)."""
    return f"/orchestrion-missing-{uuid.uuid4().hex[:16]}"


@dataclass(frozen=True, kw_only=True)
class Chain:
    """The responses of a request and the redirects after it.

    Attributes:
        hops: Each response, the first request's first.
        stopped: Why a redirect was not followed (refused by the policy, unreachable...), if one was not.
    """

    hops: tuple[FetchResult, ...]
    stopped: str | None

    @property
    def final(self) -> FetchResult:
        """The last response obtained."""
        return self.hops[-1]


class SiteClient:
    """Requests to a target through the policy, verifying certificates wherever they verify.

    The first request to an HTTPS origin does not verify (an audit still wants the headers of a site
    whose certificate is expired or self-signed; the TLS audit reports the certificate) and records
    whether chain and host name verify; later requests to that origin verify when they did.
    """

    def __init__(self, policy: TargetPolicy) -> None:
        self.policy = policy
        self._verifies: dict[tuple[str, str, int], bool] = {}

    async def get(
        self,
        url: str,
        *,
        max_bytes: int = 256 * 1024,
        headers: dict[str, str] | None = None,
        method: str = "GET",
    ) -> FetchResult:
        """One request, redirects not followed.

        Raises:
            TargetRefusedError: The policy refuses the URL's host.
            ValidationError: The URL is malformed.
            ToolError: The request failed.
        """
        target = self.policy.parse_target(url)
        origin = (target.effective_scheme, target.host, target.effective_port)
        verify = origin[0] == "http" or self._verifies.get(origin, False)
        result = await fetch(
            self.policy,
            url,
            method=method,
            headers=headers,
            follow_redirects=False,
            max_bytes=max_bytes,
            verify=verify,
        )
        if origin not in self._verifies and result.tls is not None:
            self._verifies[origin] = result.tls.chain_verified is True and result.tls.hostname_matches
        return result

    async def follow(
        self,
        url: str,
        *,
        max_hops: int = 5,
        max_bytes: int = 256 * 1024,
        headers: dict[str, str] | None = None,
    ) -> Chain:
        """Request `url` and follow its redirects, each hop checked by the policy.

        Errors of the first request propagate; a redirect that cannot be followed ends the chain and
        is named in `Chain.stopped`.
        """
        hops = [await self.get(url, max_bytes=max_bytes, headers=headers)]
        stopped: str | None = None
        while hops[-1].status in REDIRECT_STATUSES and (location := hops[-1].header("location")):
            next_url = urljoin(hops[-1].url, location)
            if len(hops) > max_hops:
                stopped = f"more than {max_hops} redirects; stopped before {next_url}"
                break
            try:
                hops.append(await self.get(next_url, max_bytes=max_bytes, headers=headers))
            except (ValidationError, ToolError) as exc:
                stopped = f"redirect to {next_url} not followed: {exc.message}"
                break
        return Chain(hops=tuple(hops), stopped=stopped)


class Report:
    """Observations numbered as they are made, and findings citing them by number."""

    def __init__(self) -> None:
        self.observations: list[Observation] = []
        self.findings: list[ProposedFinding] = []

    def observe(self, summary: str, data: dict[str, Any] | None = None, location: str | None = None) -> int:
        """Record an observation and return its index."""
        self.observations.append(Observation(summary=summary, data=data or {}, location=location))
        return len(self.observations) - 1

    def find(
        self,
        title: str,
        severity: Severity,
        *,
        description: str,
        recommendation: str,
        cite: Iterable[int],
    ) -> None:
        """Record a finding proved by the observations `cite` names."""
        self.findings.append(
            ProposedFinding(
                title=title,
                severity=severity,
                description=description,
                recommendation=recommendation,
                observation_indexes=tuple(sorted(set(cite))),
            )
        )

    def output(self, data: dict[str, Any]) -> ToolOutput:
        """The tool's output, worst findings first."""
        findings = sorted(self.findings, key=lambda f: f.severity.rank)
        return ToolOutput(observations=tuple(self.observations), findings=tuple(findings), data=data)


QuoteMode = Literal["plain", "values", "none"]


def safe_excerpt(text: str, mode: QuoteMode, *, max_lines: int = 3, max_chars: int = 160) -> str:
    """A short quote that is safe to keep as evidence.

    ``plain`` keeps the text but strips credentials from URLs, hides the values of secret-named
    assignments (``DB_PASSWORD=...``, ``define('AUTH_KEY', ...)``) and redacts what the secret scanner
    recognises; ``values`` hides the value of every ``NAME=value`` / ``name: value`` line and PHP
    ``define()`` as well; ``none`` quotes nothing.
    """
    if mode == "none":
        return ""
    lines = [line.strip() for line in text.splitlines() if line.strip()][:max_lines]
    shown: list[str] = []
    for line in lines:
        line = _URL_USERINFO.sub(r"\1…@", line)
        line = _PHP_DEFINE.sub(
            lambda m: (
                f"{m.group(1)}'…({len(m.group(4))} chars)'"
                if mode == "values" or _SECRET_NAME.search(m.group(1))
                else m.group(0)
            ),
            line,
        )
        assignment = _ASSIGNMENT.match(line)
        if (
            assignment
            and "define(" not in line
            and (mode == "values" or _SECRET_NAME.search(assignment.group(1)))
        ):
            line = f"{assignment.group(1)}…({len(assignment.group(2))} chars)"
        shown.append(redact_secrets(line)[:max_chars])
    return "\n".join(shown)


def has_credentials(text: str) -> bool:
    """Whether `text` holds a credential: a secret the scanner knows, a URL with a password, or a
    secret-named assignment (``DB_PASSWORD=...``, ``define('AUTH_KEY', '...')``) with a value."""
    if redact_secrets(text) != text or _URL_USERINFO.search(text):
        return True
    for line in text.splitlines():
        define = _PHP_DEFINE.search(line)
        if define and _SECRET_NAME.search(define.group(0).split(",")[0]) and define.group(4):
            return True
        assignment = _ASSIGNMENT.match(line)
        if assignment and _SECRET_NAME.search(assignment.group(1)) and assignment.group(2).strip("'\" "):
            return True
    return False
