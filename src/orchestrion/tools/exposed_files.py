"""Sensitive files left in a web root: version-control metadata, environment files, backups, dumps.

`ExposedFilesTool` requests a bundled list of paths (`EXPOSED_PATHS`) with small body caps and counts a
path as exposed only when its content has the file's signature (``ref: refs/`` in ``.git/HEAD``,
``[core]`` in ``.git/config``, KEY=VALUE lines in ``.env``, a ZIP header...). A site that answers 200 to
every path (a "soft 404") is learnt first, from a request for a random path: a page that looks like that
answer is never an exposure, and a 200 without the signature is reported as unrecognised, not exposed.
Evidence quotes at most a redacted excerpt (`web_security.safe_excerpt`): values of assignments, URL
credentials and anything the secret scanner knows are hidden.
"""

from __future__ import annotations

import asyncio
import difflib
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, ClassVar

from pydantic import Field

from orchestrion.domain.findings import Severity
from orchestrion.exceptions import ToolError, ValidationError
from orchestrion.tools.base import Tool, ToolArgs, ToolContext, ToolOutput
from orchestrion.tools.netclient import FetchResult
from orchestrion.tools.targets import Target
from orchestrion.tools.web_security import (
    QuoteMode,
    Report,
    SiteClient,
    has_credentials,
    require_target,
    safe_excerpt,
    site_url,
    unknown_path,
)

__all__ = ["EXPOSED_PATHS", "EXPOSURE_KINDS", "ExposedFilesArgs", "ExposedFilesTool", "ExposedPath"]

_CONCURRENCY = 4
_SIMILAR = 0.9
_COMPARE_BYTES = 4096

Confirm = Callable[[bytes], str | None]


class ExposedFilesArgs(ToolArgs):
    """Arguments of `ExposedFilesTool`."""

    base_path: str = Field(
        default="",
        max_length=200,
        pattern=r"^(/[^/\s?#]+)*/?$",
        description="Directory the application is served under (``/app``); the site root by default.",
    )


@dataclass(frozen=True, kw_only=True)
class ExposureKind:
    """What one kind of exposure means, for its finding."""

    title: str
    impact: str
    recommendation: str


@dataclass(frozen=True, kw_only=True)
class ExposedPath:
    """One sensitive path and how to recognise its real content.

    Attributes:
        path: Requested below the site root (or `base_path`).
        kind: Key of `EXPOSURE_KINDS`; paths of one kind share a finding.
        severity: Severity when exposed; a file holding credentials (or a dump holding rows) is critical.
        confirm: Returns a proof (a quotable line, or a description of a binary header) when the body
            really is such a file, else None.
        quote: How much of the proof evidence may quote (`web_security.safe_excerpt`).
        max_bytes: Body cap: enough for the signature, never the whole file.
    """

    path: str
    kind: str
    severity: Severity
    confirm: Confirm
    quote: QuoteMode
    max_bytes: int = 8 * 1024


def _text(body: bytes) -> str:
    return body.decode("utf-8", "replace")


def _is_html(text: str) -> bool:
    return text.lstrip()[:1] == "<"


def _regex(pattern: str, *, html_ok: bool = False, lines: int = 1) -> Confirm:
    """Confirm by a regex; the proof is the matching line and the `lines` - 1 after it."""
    compiled = re.compile(pattern, re.MULTILINE)

    def confirm(body: bytes) -> str | None:
        text = _text(body)
        match = None if _is_html(text) and not html_ok else compiled.search(text)
        if match is None:
            return None
        start = text.rfind("\n", 0, match.start()) + 1
        return "\n".join(text[start:].splitlines()[:lines])

    return confirm


def _magic(prefix: bytes, label: str, *, offset: int = 0) -> Confirm:
    def confirm(body: bytes) -> str | None:
        return label if body[offset : offset + len(prefix)] == prefix else None

    return confirm


def _first(*checks: Confirm) -> Confirm:
    def confirm(body: bytes) -> str | None:
        return next((proof for check in checks if (proof := check(body)) is not None), None)

    return confirm


_ENV_LINE = re.compile(r"^(?:export\s+)?[A-Za-z_][A-Za-z0-9_]*=")


def _env_file(body: bytes) -> str | None:
    """At least two KEY=VALUE lines, and most lines (comments and blanks aside) are such lines."""
    text = _text(body)
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    matching = [line for line in lines if _ENV_LINE.match(line)]
    if _is_html(text) or len(matching) < 2 or len(matching) < 0.6 * len(lines):
        return None
    return "\n".join(matching[:3])


_HTPASSWD_LINE = re.compile(r"^[^:\s<]+:(\$apr1\$|\$2[abxy]\$|\{SHA\}|\$[156]\$|[./0-9A-Za-z]{13}$)")
_HASH_NAMES = {
    "$apr1$": "apr1-MD5",
    "{SHA}": "SHA-1",
    "$1$": "MD5-crypt",
    "$5$": "SHA-256-crypt",
    "$6$": "SHA-512-crypt",
}


def _htpasswd(body: bytes) -> str | None:
    lines = [line.strip() for line in _text(body).splitlines() if line.strip()]
    kinds = [m.group(1) for line in lines if (m := _HTPASSWD_LINE.match(line))]
    if not kinds or len(kinds) < len(lines):
        return None
    names = sorted({_HASH_NAMES.get(k, "bcrypt" if k.startswith("$2") else "DES-crypt") for k in kinds})
    # User names and hashes stay out of the evidence: the count and the hash types are the proof.
    return f"{len(kinds)} password entries ({', '.join(names)} hashes)"


_BLOCK = "Remove it from the web root and deny the path in the server configuration"
_SQL = r"^(-- (MySQL|MariaDB) dump|-- PostgreSQL database dump|CREATE TABLE|INSERT INTO|DROP TABLE IF EXISTS)"
_SQL_ROWS = re.compile(r"^INSERT INTO", re.MULTILINE)
_PHP_SOURCE = _regex(r"^\s*(<\?php|define\(\s*['\"]DB_)", html_ok=True, lines=3)
_PHPINFO = _regex(r"<title>phpinfo\(\)</title>|PHP Version \d+\.\d+", html_ok=True)
_SERVER_STATUS = _regex(r"Apache Server Status for", html_ok=True)
_AWS = _regex(r"^\s*aws_access_key_id\s*=", lines=2)

EXPOSURE_KINDS: dict[str, ExposureKind] = {
    "git": ExposureKind(
        title="Git repository metadata is downloadable",
        impact="An exposed .git directory lets anyone rebuild the repository: source code, history and "
        "every secret ever committed (ASVS V12.5.1, V2.10.4).",
        recommendation=f"{_BLOCK} (deny `/.git` entirely); deploy build artefacts rather than working "
        "copies, and rotate any credential the history holds.",
    ),
    "svn": ExposureKind(
        title="Subversion working-copy metadata is downloadable",
        impact="Exposed .svn metadata reveals file names and, through wc.db and pristine copies, the "
        "source code (ASVS V12.5.1).",
        recommendation=f"{_BLOCK} (deny `/.svn`); deploy exports rather than working copies.",
    ),
    "env": ExposureKind(
        title="Environment file is downloadable",
        impact="Environment files hold database passwords, API keys and signing secrets (ASVS V2.10.4, "
        "V12.5.1).",
        recommendation=f"{_BLOCK}; rotate every credential it holds and load secrets from a secret store.",
    ),
    "backup": ExposureKind(
        title="Backup archive is downloadable",
        impact="Backup archives usually contain the application's source and configuration (ASVS V12.5.1: "
        "backup and archive files are not served).",
        recommendation=f"{_BLOCK}; keep backups outside the document root.",
    ),
    "sql": ExposureKind(
        title="Database dump is downloadable",
        impact="A database dump discloses the schema and, with INSERT statements, the data itself, "
        "password hashes included (ASVS V12.5.1).",
        recommendation=f"{_BLOCK}; treat the data as disclosed and rotate the credentials it holds.",
    ),
    "source_backup": ExposureKind(
        title="Backup copy of a PHP configuration file is downloadable",
        impact="Backup copies (`.bak`) are served as text, not executed, so the source and its database "
        "credentials are readable (ASVS V12.5.1).",
        recommendation=f"{_BLOCK}; rotate the credentials it contains.",
    ),
    "server_status": ExposureKind(
        title="Apache server-status page is public",
        impact="mod_status shows client addresses, requested URLs with their query strings and server "
        "internals (ASVS V14.3.2: no debug or status interfaces in production).",
        recommendation="Restrict `/server-status` to administrators (`Require local` or an admin network).",
    ),
    "phpinfo": ExposureKind(
        title="phpinfo() page is public",
        impact="phpinfo() discloses versions, paths, modules and environment variables, which often hold "
        "secrets (ASVS V14.3.2).",
        recommendation="Delete the page from production.",
    ),
    "htpasswd": ExposureKind(
        title="Password file (.htpasswd) is downloadable",
        impact="Its password hashes can be cracked offline (ASVS V12.5.1, V2.4.1).",
        recommendation=f"{_BLOCK} (keep it outside the document root) and change the passwords.",
    ),
    "cloud_credentials": ExposureKind(
        title="Cloud credentials file is downloadable",
        impact="An AWS credentials file gives whoever reads it the account's access (ASVS V2.10.4).",
        recommendation=f"{_BLOCK}; revoke the keys now and review the account's activity.",
    ),
    "private_key": ExposureKind(
        title="Private key is downloadable",
        impact="Anyone can impersonate the key's owner: SSH logins, TLS, signatures (ASVS V2.10.4).",
        recommendation=f"{_BLOCK}; revoke and replace the key.",
    ),
    "listing": ExposureKind(
        title="macOS .DS_Store file is downloadable",
        impact="A .DS_Store file lists the names of the files in its directory, hidden ones included "
        "(ASVS V12.5.1).",
        recommendation=f"{_BLOCK}; keep .DS_Store files out of deployments.",
    ),
}

_HEAD = r"\A\s*(ref: refs/\S+|[0-9a-f]{40}|[0-9a-f]{64})\s*\Z"
_SVN = r"\A\s*(\d{1,2}\s*\Z|<\?xml[^>]*>\s*<wc-entries)"
_KEY = r"^-----BEGIN (OPENSSH |RSA |EC |DSA )?PRIVATE KEY-----"
_TAR = _first(_magic(b"\x1f\x8b", "a gzip archive (1f 8b)"), _magic(b"ustar", "a tar archive", offset=257))
_HIGH, _CRITICAL = Severity.HIGH, Severity.CRITICAL
_KIB = 1024
_ROWS: tuple[tuple[str, str, Severity, Confirm, QuoteMode, int], ...] = (
    # path, kind, severity, signature, what evidence may quote, body cap
    ("/.git/HEAD", "git", _HIGH, _regex(_HEAD), "plain", 8 * _KIB),
    ("/.git/config", "git", _HIGH, _regex(r"^\s*\[core\]", lines=3), "plain", 8 * _KIB),
    ("/.git/index", "git", _HIGH, _magic(b"DIRC", "a Git index (DIRC)"), "plain", 64),
    ("/.env", "env", _HIGH, _env_file, "values", 8 * _KIB),
    ("/.env.local", "env", _HIGH, _env_file, "values", 8 * _KIB),
    ("/.svn/entries", "svn", _HIGH, _regex(_SVN), "plain", 8 * _KIB),
    ("/.svn/wc.db", "svn", _HIGH, _magic(b"SQLite format 3\x00", "an SQLite database (wc.db)"), "plain", 64),
    ("/backup.zip", "backup", _HIGH, _magic(b"PK\x03\x04", "a ZIP archive (PK header)"), "plain", 64),
    ("/backup.tar.gz", "backup", _HIGH, _TAR, "plain", 512),
    ("/db.sql", "sql", _HIGH, _regex(_SQL), "values", 8 * _KIB),
    ("/dump.sql", "sql", _HIGH, _regex(_SQL), "values", 8 * _KIB),
    ("/config.php.bak", "source_backup", _HIGH, _PHP_SOURCE, "values", 8 * _KIB),
    ("/wp-config.php.bak", "source_backup", _HIGH, _PHP_SOURCE, "values", 8 * _KIB),
    ("/server-status", "server_status", Severity.MEDIUM, _SERVER_STATUS, "plain", 16 * _KIB),
    ("/phpinfo.php", "phpinfo", Severity.MEDIUM, _PHPINFO, "plain", 64 * _KIB),
    ("/info.php", "phpinfo", Severity.MEDIUM, _PHPINFO, "plain", 64 * _KIB),
    ("/.htpasswd", "htpasswd", _HIGH, _htpasswd, "plain", 8 * _KIB),
    ("/.aws/credentials", "cloud_credentials", _CRITICAL, _AWS, "values", 8 * _KIB),
    ("/id_rsa", "private_key", _CRITICAL, _regex(_KEY), "none", 8 * _KIB),
    (
        "/.DS_Store",
        "listing",
        Severity.LOW,
        _magic(b"\x00\x00\x00\x01Bud1", "a .DS_Store (Bud1)"),
        "plain",
        64,
    ),
)
EXPOSED_PATHS: tuple[ExposedPath, ...] = tuple(
    ExposedPath(path=path, kind=kind, severity=severity, confirm=confirm, quote=quote, max_bytes=cap)
    for path, kind, severity, confirm, quote, cap in _ROWS
)
"""The bundled paths, in request order."""


@dataclass(frozen=True, kw_only=True)
class _Probe:
    """What one path answered."""

    entry: ExposedPath
    url: str
    outcome: str  # exposed, like_missing_page, unrecognised, forbidden, redirect, absent, error
    status: int | None = None
    length: int = 0
    proof: str | None = None
    detail: str | None = None
    severity: Severity = Severity.INFO
    credentials: bool = False


class ExposedFilesTool(Tool):
    """Sensitive files in the web root, confirmed by their content (not by a 200)."""

    name: ClassVar[str] = "exposed_files"
    description: ClassVar[str] = (
        "Request well-known sensitive paths (/.git/HEAD, /.git/config, /.env, /.DS_Store, backup archives, "
        "SQL dumps, .bak copies of PHP configs, /.svn/entries, /server-status, phpinfo, /.htpasswd, "
        "cloud credentials, private keys) and report those whose content matches the file's signature; "
        "soft-404 sites are detected first. Secrets are never quoted."
    )
    args_model: ClassVar[type[ToolArgs]] = ExposedFilesArgs
    timeout_seconds: ClassVar[float] = 120.0

    async def execute(self, args: ToolArgs, ctx: ToolContext) -> ToolOutput:
        """Learn the site's 404 behaviour, then request every bundled path."""
        if not isinstance(args, ExposedFilesArgs):
            raise ToolError(f"{self.name} expects ExposedFilesArgs", tool=self.name)
        policy, target = require_target(ctx, self.name)
        client = SiteClient(policy)
        base = args.base_path.rstrip("/")
        missing = base + unknown_path()
        # The first request: a refused or unreachable target fails the whole tool here.
        baseline = await client.get(site_url(target, missing), max_bytes=_COMPARE_BYTES)
        soft_404 = 200 <= baseline.status < 300
        report = Report()
        behaviour = " (a soft 404: status codes prove nothing here)" if soft_404 else ""
        baseline_index = report.observe(
            f"{baseline.url}: a random missing path answers {baseline.status}{behaviour}",
            {
                "url": baseline.url,
                "status": baseline.status,
                "length": len(baseline.body),
                "soft_404": soft_404,
            },
            location=baseline.url,
        )
        limit = asyncio.Semaphore(_CONCURRENCY)
        async with asyncio.TaskGroup() as group:
            tasks = [
                group.create_task(_probe(client, target, base, entry, baseline, missing, limit))
                for entry in EXPOSED_PATHS
            ]
        probes = [task.result() for task in tasks]
        _report_exposures(report, probes, baseline_index if soft_404 else None)
        by_outcome: dict[str, list[str]] = {}
        for probe in probes:
            by_outcome.setdefault(probe.outcome, []).append(probe.entry.path)
        data: dict[str, Any] = {
            "base_url": site_url(target, base or "/"),
            "soft_404": soft_404,
            "checked": len(probes),
            **by_outcome,
        }
        return report.output(data)


async def _probe(
    client: SiteClient,
    target: Target,
    base: str,
    entry: ExposedPath,
    baseline: FetchResult,
    missing: str,
    limit: asyncio.Semaphore,
) -> _Probe:
    url = site_url(target, base + entry.path)
    async with limit:
        try:
            result = await client.get(url, max_bytes=entry.max_bytes)
        except (ValidationError, ToolError) as exc:
            return _Probe(entry=entry, url=url, outcome="error", detail=exc.message)
    found = _Probe(entry=entry, url=url, outcome="absent", status=result.status, length=len(result.body))
    if result.status in (401, 403):
        return replace(found, outcome="forbidden")
    if 300 <= result.status < 400:
        return replace(found, outcome="redirect", detail=result.header("location"))
    if result.status not in (200, 206):
        return found
    like_missing = 200 <= baseline.status < 300 and _same_page(
        result.body, base + entry.path, baseline.body, missing, truncated=result.truncated
    )
    proof = entry.confirm(result.body)
    if proof is None or like_missing:
        return replace(found, outcome="like_missing_page" if like_missing else "unrecognised")
    text = result.body.decode("utf-8", "replace")
    credentials = entry.quote != "none" and has_credentials(text)
    rows = entry.kind == "sql" and _SQL_ROWS.search(text) is not None
    severity = Severity.CRITICAL if credentials or rows else entry.severity
    return replace(
        found,
        outcome="exposed",
        proof=safe_excerpt(proof, entry.quote),
        severity=severity,
        credentials=credentials,
    )


def _same_page(body: bytes, path: str, baseline: bytes, baseline_path: str, *, truncated: bool) -> bool:
    """Whether two answers are the same page, once each one's own path (often echoed) is removed.

    A body cut at a small cap is compared with the same length of the baseline.
    """
    first = body[:_COMPARE_BYTES].replace(path.encode(), b"")
    second = baseline[:_COMPARE_BYTES].replace(baseline_path.encode(), b"")
    if truncated:
        second = second[: len(first)]
    if first == second:
        return True
    matcher = difflib.SequenceMatcher(None, first, second, autojunk=False)
    return (
        matcher.real_quick_ratio() >= _SIMILAR
        and matcher.quick_ratio() >= _SIMILAR
        and (matcher.ratio() >= _SIMILAR)
    )


def _report_exposures(report: Report, probes: list[_Probe], soft_404_index: int | None) -> None:
    """One observation per exposed path, one finding per kind of exposure citing them."""
    cited: dict[str, list[int]] = {}
    worst: dict[str, Severity] = {}
    holders: dict[str, list[str]] = {}
    for probe in probes:
        if probe.outcome != "exposed":
            continue
        quoted = f": {probe.proof}" if probe.proof else ""
        index = report.observe(
            f"GET {probe.url} -> {probe.status}, content matches {probe.entry.path}{quoted}".replace(
                "\n", " | "
            ),
            {
                "url": probe.url,
                "path": probe.entry.path,
                "status": probe.status,
                "bytes_read": probe.length,
                "excerpt": probe.proof,
                "holds_credentials": probe.credentials,
            },
            location=probe.url,
        )
        kind = probe.entry.kind
        cited.setdefault(kind, []).append(index)
        if soft_404_index is not None:
            # On a soft-404 site the proof that this is not the catch-all page is part of the evidence.
            cited[kind].append(soft_404_index)
        if kind not in worst or probe.severity.rank < worst[kind].rank:
            worst[kind] = probe.severity
        if probe.credentials:
            holders.setdefault(kind, []).append(probe.entry.path)
    for kind, indexes in cited.items():
        exposure = EXPOSURE_KINDS[kind]
        paths = [p.entry.path for p in probes if p.outcome == "exposed" and p.entry.kind == kind]
        secrets_note = (
            f" {', '.join(holders[kind])} holds credentials (quoted only in redacted form)."
            if kind in holders
            else ""
        )
        report.find(
            f"{exposure.title}: {', '.join(paths)}",
            worst[kind],
            description=f"{exposure.impact} Confirmed by content, not by status code.{secrets_note}",
            recommendation=exposure.recommendation,
            cite=indexes,
        )
