"""`AsvsWebCheckTool`: a target's TLS, headers and cookies against a subset of OWASP ASVS 4.0.3.

The tool gathers facts through `orchestrion.tools.netclient` only (the task's `TargetPolicy` decides
what may be reached): the target page and any extra paths (`fetch` with verification off, so that a bad
certificate is reported rather than stopping the check), one `tls_probe` handshake, `probe_tls_versions`,
a request to the plain-HTTP port, and two CORS probes carrying a foreign and a ``null`` Origin. It
sends nothing else: no payloads, no credentials, no port scan.

Observations: one per fact gathered (response, handshake, versions, plain-HTTP probe, CORS probe),
then one per requirement of `asvs_checks.REQUIREMENTS` with its verdict (pass / fail / not_applicable
/ not_tested), text and how it was checked. Each failure is a finding citing its requirement's row and
the facts behind it. Cookie values are never recorded, only names and attributes.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar
from urllib.parse import urljoin, urlsplit

from pydantic import Field

from orchestrion.exceptions import ToolError
from orchestrion.tools.asvs_checks import (
    ASVS_VERSION,
    CORS_PROBE_ORIGIN,
    REQUIREMENTS,
    CorsProbe,
    PlainHTTPProbe,
    Status,
    Verdict,
    WebEvidence,
    parse_cookies,
)
from orchestrion.tools.asvs_verdicts import evaluate
from orchestrion.tools.base import Observation, ProposedFinding, Tool, ToolArgs, ToolContext, ToolOutput
from orchestrion.tools.netclient import FetchResult, ProtocolSupport, fetch, probe_tls_versions, tls_probe
from orchestrion.tools.nettarget import require_target
from orchestrion.tools.targets import Target, TargetPolicy

__all__ = ["AsvsWebCheckArgs", "AsvsWebCheckTool", "gather_evidence", "report_evidence"]

_SHOWN_HEADERS = (
    "content-type",
    "content-security-policy",
    "content-security-policy-report-only",
    "strict-transport-security",
    "x-content-type-options",
    "x-frame-options",
    "referrer-policy",
    "server",
    "x-powered-by",
    "x-aspnet-version",
    "x-aspnetmvc-version",
    "x-generator",
    "access-control-allow-origin",
    "access-control-allow-credentials",
    "location",
)

UrlPath = Annotated[str, Field(pattern=r"^/[^\s#]*$", max_length=500)]


class AsvsWebCheckArgs(ToolArgs):
    """Arguments of `AsvsWebCheckTool`."""

    paths: tuple[UrlPath, ...] = Field(
        default=(),
        max_length=10,
        description="Extra paths on the target's origin to check, e.g. /login (sets the session cookie).",
    )
    http_port: int | None = Field(
        default=None,
        ge=1,
        le=65535,
        description="Port where plain HTTP should redirect to HTTPS (default 80 for an https target on 443).",
    )
    check_plain_http: bool = Field(default=True, description="Probe the plain-HTTP port at all (V9.1.1).")


class AsvsWebCheckTool(Tool):
    """The target's TLS, security headers, cookies and CORS against OWASP ASVS 4.0.3 requirements."""

    name: ClassVar[str] = "asvs_web_check"
    description: ClassVar[str] = (
        "Check the task's web target against a documented subset of OWASP ASVS 4.0.3: TLS everywhere "
        "(V9.1.1), cipher suites (V9.1.2), TLS versions (V9.1.3), trusted certificate (V9.2.1), cookie "
        "Secure/HttpOnly/SameSite (V3.4.1-3), version disclosure (V14.3.3), Content-Type charset "
        "(V14.4.1), CSP (V14.4.3), nosniff (V14.4.4), HSTS (V14.4.5), Referrer-Policy (V14.4.6), "
        "framing (V14.4.7) and CORS allowlist (V14.5.3). Reports pass/fail/not_applicable/not_tested "
        "per requirement; failures become findings citing the requirement."
    )
    args_model: ClassVar[type[ToolArgs]] = AsvsWebCheckArgs
    timeout_seconds: ClassVar[float] = 120.0

    async def execute(self, args: ToolArgs, ctx: ToolContext) -> ToolOutput:
        """Gather the facts about `ctx.target` and judge them."""
        if not isinstance(args, AsvsWebCheckArgs):
            raise ToolError(f"{self.name} expects AsvsWebCheckArgs", tool=self.name)
        policy, target = require_target(ctx, self.name)
        evidence = await gather_evidence(
            policy,
            target.original,
            paths=args.paths,
            http_port=args.http_port,
            check_plain_http=args.check_plain_http,
        )
        return report_evidence(evidence)


async def gather_evidence(
    policy: TargetPolicy,
    target_text: str,
    *,
    paths: tuple[str, ...] = (),
    http_port: int | None = None,
    check_plain_http: bool = True,
) -> WebEvidence:
    """Fetch the target (and `paths`), handshake, probe TLS versions, plain HTTP and CORS.

    Raises:
        TargetRefusedError: The policy refuses the target.
        ToolError: Neither an HTTP response nor a TLS handshake could be had.
    """
    target = policy.parse_target(target_text)
    errors: list[tuple[str, str]] = []
    responses: list[FetchResult] = []
    main = await _try_fetch(policy, target.url, errors)
    final = policy.parse_target(main.url) if main is not None else target
    if main is not None:
        responses.append(main)
    for path in paths:
        extra = await _try_fetch(policy, f"{final.effective_scheme}://{final.netloc}{path}", errors)
        if extra is not None:
            responses.append(extra)
    tls_target = next((t for t in (final, target) if t.effective_scheme == "https"), None)
    tls, tls_error = None, None
    versions: tuple[ProtocolSupport, ...] = ()
    if tls_target is not None:
        try:
            tls = await tls_probe(policy, tls_target.host, tls_target.effective_port)
        except ToolError as exc:
            tls_error = exc.message
        versions = await probe_tls_versions(policy, tls_target.host, tls_target.effective_port)
    if not responses and tls is None:
        failures = "; ".join(message for _, message in errors) + (f"; {tls_error}" if tls_error else "")
        raise ToolError(f"cannot reach {target.url}: {failures}", tool=AsvsWebCheckTool.name)
    plain, skipped = None, None
    if target.effective_scheme != "https":
        skipped = "the target itself is plain HTTP"
    elif not check_plain_http:
        skipped = "disabled by check_plain_http"
    else:
        port = http_port or (80 if target.effective_port == 443 else None)
        if port is None:
            skipped = f"the target is on port {target.effective_port}; give http_port to probe plain HTTP"
        else:
            plain = await _probe_plain(policy, target, port)
    cors: tuple[CorsProbe, ...] = ()
    if main is not None:
        cors = (
            await _probe_cors(policy, main.url, CORS_PROBE_ORIGIN),
            await _probe_cors(policy, main.url, "null"),
        )
    return WebEvidence(
        target_url=target.url,
        responses=tuple(responses),
        fetch_errors=tuple(errors),
        https_expected=tls_target is not None,
        tls=tls,
        tls_error=tls_error,
        versions=versions,
        plain=plain,
        plain_skipped=skipped,
        cors=cors,
    )


def report_evidence(evidence: WebEvidence) -> ToolOutput:
    """Observations for the facts and the verdicts; findings for the failures."""
    observations: list[Observation] = []
    index: dict[str, int] = {}

    def add(key: str | None, observation: Observation) -> None:
        if key is not None:
            index[key] = len(observations)
        observations.append(observation)

    for i, response in enumerate(evidence.responses):
        add(f"response:{i}", _response_observation(response, i, evidence))
    for url, message in evidence.fetch_errors:
        add(
            None,
            Observation(
                summary=f"GET {url} failed: {message}", data={"url": url, "error": message}, location=url
            ),
        )
    if evidence.tls is not None or evidence.tls_error:
        add("tls", _tls_observation(evidence))
    if evidence.versions:
        shown = ", ".join(f"{v.version} {v.status}" for v in evidence.versions)
        add(
            "versions",
            Observation(
                summary=f"TLS versions: {shown}",
                data={
                    "versions": [
                        {"version": v.version, "status": v.status, "detail": v.detail, "cipher": v.cipher}
                        for v in evidence.versions
                    ]
                },
                location=evidence.target_url,
            ),
        )
    if evidence.plain is not None:
        add("plain", _plain_observation(evidence.plain))
    for i, probe in enumerate(evidence.cors):
        add(f"cors:{i}", _cors_observation(probe))
    verdicts = evaluate(evidence)
    findings: list[ProposedFinding] = []
    for verdict in verdicts:
        row = len(observations)
        add(None, _verdict_observation(verdict, evidence.target_url))
        if verdict.status is Status.FAIL and verdict.severity is not None:
            cited = (row, *dict.fromkeys(index[key] for key in verdict.sources if key in index))
            requirement = verdict.requirement
            findings.append(
                ProposedFinding(
                    title=f"ASVS {requirement.id} not met: {requirement.title}",
                    severity=verdict.severity,
                    description=(
                        f'{verdict.detail}. OWASP ASVS {ASVS_VERSION} {requirement.id}: "{requirement.text}"'
                    ),
                    recommendation=requirement.recommendation,
                    observation_indexes=cited,
                )
            )
    return ToolOutput(
        observations=tuple(observations),
        findings=tuple(findings),
        data={
            "asvs_version": ASVS_VERSION,
            "target": evidence.target_url,
            "results": {verdict.requirement.id: verdict.status.value for verdict in verdicts},
            "failed": [verdict.requirement.id for verdict in verdicts if verdict.status is Status.FAIL],
            "requirements": len(REQUIREMENTS),
        },
    )


async def _try_fetch(policy: TargetPolicy, url: str, errors: list[tuple[str, str]]) -> FetchResult | None:
    try:
        return await fetch(policy, url, verify=False)
    except ToolError as exc:
        errors.append((url, exc.message))
        return None


async def _probe_plain(policy: TargetPolicy, target: Target, port: int) -> PlainHTTPProbe:
    host = f"[{target.host}]" if ":" in target.host else target.host
    url = f"http://{host}:{port}{target.path or '/'}"
    try:
        response = await fetch(policy, url, follow_redirects=False, max_bytes=4096)
    except ToolError as exc:
        return PlainHTTPProbe(url=url, outcome="no_answer", detail=exc.message)
    location = response.header("location")
    if response.status in (301, 302, 303, 307, 308) and location:
        if urlsplit(urljoin(url, location)).scheme == "https":
            return PlainHTTPProbe(
                url=url, outcome="redirects_to_https", status=response.status, location=location
            )
    return PlainHTTPProbe(url=url, outcome="serves_plain_http", status=response.status, location=location)


async def _probe_cors(policy: TargetPolicy, url: str, origin: str) -> CorsProbe:
    try:
        response = await fetch(
            policy, url, headers={"Origin": origin}, follow_redirects=False, max_bytes=4096, verify=False
        )
    except ToolError as exc:
        return CorsProbe(origin=origin, url=url, error=exc.message)
    credentials = (response.header("access-control-allow-credentials") or "").strip().lower() == "true"
    return CorsProbe(
        origin=origin,
        url=url,
        allow_origin=response.header("access-control-allow-origin"),
        allow_credentials=credentials,
    )


def _response_observation(response: FetchResult, index: int, evidence: WebEvidence) -> Observation:
    headers = {name: response.header_values(name) for name in _SHOWN_HEADERS if response.header_values(name)}
    cookies = [
        {"name": c.name, "secure": c.secure, "httponly": c.http_only, "samesite": c.same_site}
        for c in parse_cookies((response,))
    ]
    via = f" (redirected via {' -> '.join(response.redirects)})" if response.redirects else ""
    cookie_text = f", cookies: {', '.join(str(c['name']) for c in cookies)}" if cookies else ""
    return Observation(
        summary=f"GET {response.url} -> {response.status}{via}{cookie_text}",
        data={
            "url": response.url,
            "requested": evidence.target_url if index == 0 else None,
            "status": response.status,
            "redirects": response.redirects,
            "address": response.address,
            "headers": headers,
            "cookies": cookies,
        },
        location=response.url,
    )


def _tls_observation(evidence: WebEvidence) -> Observation:
    tls = evidence.tls
    if tls is None:
        return Observation(
            summary=f"TLS handshake failed: {evidence.tls_error}",
            data={"error": evidence.tls_error},
            location=evidence.target_url,
        )
    cert = tls.certificate
    data: dict[str, Any] = {
        "server_name": tls.server_name,
        "address": tls.address,
        "port": tls.port,
        "version": tls.version,
        "cipher": tls.cipher,
        "cipher_bits": tls.cipher_bits,
        "chain_verified": tls.chain_verified,
        "chain_error": tls.chain_error,
        "hostname_matches": tls.hostname_matches,
    }
    if cert is not None:
        data.update(
            subject=cert.subject,
            issuer=cert.issuer,
            san_dns=list(cert.san_dns),
            san_ip=list(cert.san_ip),
            not_after=cert.not_after.isoformat(),
            days_to_expiry=tls.days_to_expiry,
        )
    verified = {True: "verifies", False: f"does not verify ({tls.chain_error})", None: "not verified"}[
        tls.chain_verified
    ]
    return Observation(
        summary=(
            f"TLS {tls.version} {tls.cipher} ({tls.cipher_bits} bits) with {tls.server_name}:{tls.port}; "
            f"certificate {cert.subject if cert else 'missing'} {verified}, "
            f"{'covers' if tls.hostname_matches else 'does not cover'} {tls.server_name}"
        ),
        data=data,
        location=f"{tls.server_name}:{tls.port}",
    )


def _plain_observation(plain: PlainHTTPProbe) -> Observation:
    text = {
        "redirects_to_https": f"redirects ({plain.status}) to {plain.location}",
        "serves_plain_http": f"answers {plain.status} over plain HTTP"
        + (f" (Location: {plain.location})" if plain.location else ""),
        "no_answer": f"does not answer ({plain.detail})",
    }[plain.outcome]
    return Observation(
        summary=f"Plain HTTP {plain.url} {text}",
        data={"url": plain.url, "outcome": plain.outcome, "status": plain.status, "location": plain.location},
        location=plain.url,
    )


def _cors_observation(probe: CorsProbe) -> Observation:
    if probe.error is not None:
        summary = f"CORS probe with Origin: {probe.origin} failed: {probe.error}"
    else:
        allowed = probe.allow_origin if probe.allow_origin is not None else "(no Access-Control-Allow-Origin)"
        credentials = ", Access-Control-Allow-Credentials: true" if probe.allow_credentials else ""
        summary = (
            f"CORS probe with Origin: {probe.origin} -> Access-Control-Allow-Origin: {allowed}{credentials}"
        )
    return Observation(
        summary=summary,
        data={
            "origin": probe.origin,
            "url": probe.url,
            "allow_origin": probe.allow_origin,
            "allow_credentials": probe.allow_credentials,
            "error": probe.error,
        },
        location=probe.url,
    )


def _verdict_observation(verdict: Verdict, target: str) -> Observation:
    requirement = verdict.requirement
    return Observation(
        summary=f"ASVS {requirement.id} ({requirement.title}): {verdict.status.value} — {verdict.detail}",
        data={
            "asvs_version": ASVS_VERSION,
            "requirement": requirement.id,
            "title": requirement.title,
            "text": requirement.text,
            "how_checked": requirement.how_checked,
            "status": verdict.status.value,
            "detail": verdict.detail,
            "severity": verdict.severity.value if verdict.severity else None,
            "facts": verdict.facts,
        },
        location=target,
    )
