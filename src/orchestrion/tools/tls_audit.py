"""TLS of a target: its certificate, its chain, the protocol versions it accepts. `TLSAuditTool`.

Everything comes from `netclient.tls_probe` (two handshakes: one that completes whatever the
certificate, one that verifies the chain) and `netclient.probe_tls_versions` (one handshake per
version). Findings:

- certificate expired or not yet valid: high; expiring in under 14 days: medium; under 30: low;
- chain does not verify against the trust store: high, with OpenSSL's reason (not repeated when the
  reason is only the validity period already reported);
- certificate does not cover the host name: high;
- TLS 1.0 or TLS 1.1 accepted: medium. A version this machine's OpenSSL cannot speak is recorded as
  "not testable locally", an observation and never a finding: nothing is known about it;
- RSA or DSA keys under 2048 bits, EC keys under 224 bits, SHA-1 signatures (leaf or intermediate):
  medium; MD5 signatures: high; a negotiated cipher under 128 bits or from a broken family: medium;
- a port that takes TCP connections but completes no TLS handshake: an observation and an info finding.

A plain-HTTP target (``http://...``) is observed as not using TLS; when it does not redirect to HTTPS
that is a medium finding, and when it does, the HTTPS endpoint it redirects to is audited as above.
"""

from __future__ import annotations

import contextlib
import re
from typing import Any, ClassVar
from urllib.parse import urljoin

from pydantic import Field

from orchestrion.domain.findings import Severity
from orchestrion.exceptions import ToolError, ValidationError
from orchestrion.tools.base import Tool, ToolArgs, ToolContext, ToolOutput
from orchestrion.tools.certinfo import CertificateInfo, TLSInfo
from orchestrion.tools.netclient import open_tcp, probe_tls_versions, tls_probe
from orchestrion.tools.targets import Target, TargetPolicy
from orchestrion.tools.web_security import REDIRECT_STATUSES, Report, SiteClient, require_target

__all__ = ["TLSAuditArgs", "TLSAuditTool"]

NAME = "tls_audit"
_EXPIRY_MEDIUM_DAYS = 14
_EXPIRY_LOW_DAYS = 30
_MIN_KEY_BITS = {"RSA": 2048, "DSA": 2048, "EC": 224}
_LEGACY_VERSIONS = ("TLSv1", "TLSv1.1")
_WEAK_CIPHER = re.compile(r"(?i)RC4|3DES|DES-CBC|_DES_|NULL|EXPORT|EXP-|anon|MD5$")
_TLS_RECOMMENDATION = "Serve TLS 1.2 and 1.3 only, with a certificate from a trusted CA covering every name."


class TLSAuditArgs(ToolArgs):
    """Arguments of `TLSAuditTool`."""

    port: int | None = Field(
        default=None,
        ge=1,
        le=65535,
        description="Port to audit; the target's own port (443 for https) by default.",
    )
    check_versions: bool = Field(
        default=True, description="Also try TLS 1.0, 1.1, 1.2 and 1.3, one handshake each."
    )


class TLSAuditTool(Tool):
    """Certificate validity, chain, host name, key and signature strength, and accepted TLS versions."""

    name: ClassVar[str] = NAME
    description: ClassVar[str] = (
        "Audit the target's TLS: certificate expiry (expired, under 14 or 30 days), chain verification "
        "with OpenSSL's reason, host name match, weak keys (RSA < 2048) and SHA-1 signatures, weak "
        "ciphers, and which of TLS 1.0-1.3 it accepts (1.0/1.1 are findings; versions this machine "
        "cannot test are said to be untested). For http:// targets, whether they redirect to HTTPS."
    )
    args_model: ClassVar[type[ToolArgs]] = TLSAuditArgs
    timeout_seconds: ClassVar[float] = 90.0

    async def execute(self, args: ToolArgs, ctx: ToolContext) -> ToolOutput:
        """Audit the target's TLS endpoint (or, for http:// targets, its redirect to one)."""
        if not isinstance(args, TLSAuditArgs):
            raise ToolError(f"{self.name} expects TLSAuditArgs", tool=self.name)
        policy, target = require_target(ctx, self.name)
        report = Report()
        if target.effective_scheme == "http" and args.port is None:
            data = await _audit_plain_http(policy, target, report, check_versions=args.check_versions)
        else:
            port = args.port or target.effective_port
            data = await _audit_endpoint(
                policy, target.host, port, report, check_versions=args.check_versions
            )
        return report.output(data)


async def _audit_plain_http(
    policy: TargetPolicy, target: Target, report: Report, *, check_versions: bool
) -> dict[str, Any]:
    chain = await SiteClient(policy).follow(target.url, max_bytes=4096)
    plain = report.observe(
        f"{target.url} is served over plain HTTP: no TLS protects this connection",
        {"url": target.url, "scheme": "http"},
        location=target.url,
    )
    https_hop = next((hop for hop in chain.hops if hop.url.startswith("https://")), None)
    last = chain.final
    location = last.header("location") if last.status in REDIRECT_STATUSES else None
    pending = urljoin(last.url, location) if location else None
    https_url = (
        https_hop.url if https_hop else pending if pending and pending.startswith("https://") else None
    )
    path = " -> ".join(f"{hop.url} ({hop.status})" for hop in chain.hops)
    answer = report.observe(
        f"GET {target.url}: {path}"
        + (f"; redirects to {https_url}" if https_url else "; no redirect to HTTPS"),
        {
            "hops": [
                {"url": hop.url, "status": hop.status, "location": hop.header("location")}
                for hop in chain.hops
            ],
            "https_url": https_url,
            "redirect_stopped": chain.stopped,
        },
        location=target.url,
    )
    data: dict[str, Any] = {"url": target.url, "tls": False, "redirects_to_https": https_url is not None}
    if https_url is None:
        report.find(
            "Site does not redirect HTTP to HTTPS",
            Severity.MEDIUM,
            description=f"{target.url} answers over plain HTTP without redirecting to HTTPS, so visitors "
            "who type the address or follow an http:// link stay on an unencrypted connection that "
            "anyone on the network can read and modify (ASVS V9.1.1).",
            recommendation="Redirect every HTTP request to HTTPS (301) and send HSTS on the HTTPS site.",
            cite=[plain, answer],
        )
        return data
    try:
        https_target = policy.parse_target(https_url)
        data["https"] = await _audit_endpoint(
            policy, https_target.host, https_target.effective_port, report, check_versions=check_versions
        )
    except (ValidationError, ToolError) as exc:
        report.observe(
            f"The HTTPS endpoint {https_url} could not be audited: {exc.message}", {"url": https_url}
        )
    return data


async def _audit_endpoint(
    policy: TargetPolicy, host: str, port: int, report: Report, *, check_versions: bool
) -> dict[str, Any]:
    where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    try:
        _reader, writer, _address = await open_tcp(policy, host, port)
    except (OSError, TimeoutError) as exc:
        raise ToolError(f"cannot connect to {where}: {exc or type(exc).__name__}", tool=NAME) from exc
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    try:
        info = await tls_probe(policy, host, port)
    except ToolError as exc:
        index = report.observe(
            f"{where} accepts TCP connections but completes no TLS handshake: {exc.message}",
            {"host": host, "port": port, "tls": False, "error": exc.message},
            location=where,
        )
        report.find(
            f"No TLS on {where}",
            Severity.INFO,
            description="The port answers, but not with TLS (a plain-text service, or TLS on another port).",
            recommendation="If this port carries anything sensitive, serve it over TLS.",
            cite=[index],
        )
        return {"host": host, "port": port, "tls": False}
    handshake = report.observe(_handshake_summary(info, where), _handshake_data(info), location=where)
    _report_certificates(report, info, where, handshake)
    data: dict[str, Any] = {**_handshake_data(info), "tls": True}
    if check_versions:
        data["versions"] = await _report_versions(policy, host, port, report, where)
    return data


def _handshake_summary(info: TLSInfo, where: str) -> str:
    chain = (
        "chain verifies"
        if info.chain_verified
        else f"chain does not verify ({info.chain_error})"
        if info.chain_verified is False
        else f"chain verification unknown ({info.chain_error})"
    )
    name = "covers" if info.hostname_matches else "does not cover"
    return (
        f"TLS handshake with {where} ({info.address}): {info.version}, {info.cipher} "
        f"({info.cipher_bits} bits); {chain}; certificate {name} {info.server_name}"
    )


def _handshake_data(info: TLSInfo) -> dict[str, Any]:
    return {
        "address": info.address,
        "port": info.port,
        "server_name": info.server_name,
        "version": info.version,
        "cipher": info.cipher,
        "cipher_bits": info.cipher_bits,
        "chain_verified": info.chain_verified,
        "chain_error": info.chain_error,
        "hostname_matches": info.hostname_matches,
        "days_to_expiry": info.days_to_expiry,
    }


def _certificate_data(cert: CertificateInfo) -> dict[str, Any]:
    return {
        "subject": cert.subject,
        "issuer": cert.issuer,
        "san_dns": list(cert.san_dns),
        "san_ip": list(cert.san_ip),
        "not_before": cert.not_before.isoformat(),
        "not_after": cert.not_after.isoformat(),
        "days_to_expiry": cert.days_to_expiry(),
        "key_type": cert.key_type,
        "key_bits": cert.key_bits,
        "signature_hash": cert.signature_hash,
        "self_signed": cert.self_signed,
        "sha256": cert.sha256,
    }


def _report_certificates(report: Report, info: TLSInfo, where: str, handshake: int) -> None:
    leaf = info.certificate
    chain = info.chain or ((leaf,) if leaf else ())
    indexes: list[int] = []
    for position, cert in enumerate(chain):
        role = "leaf" if position == 0 else f"chain certificate {position}"
        indexes.append(
            report.observe(
                f"{where} {role}: {cert.subject}, issued by {cert.issuer}, valid until "
                f"{cert.not_after:%Y-%m-%d} ({cert.days_to_expiry()} days), {cert.key_type} "
                f"{cert.key_bits} bits, signed with {cert.signature_hash}",
                {"role": role, **_certificate_data(cert)},
                location=where,
            )
        )
    if leaf is None:
        report.observe(f"{where} sent no certificate that could be parsed", {"host": where})
    else:
        _report_leaf(report, info, leaf, where, [handshake, indexes[0]])
    # OpenSSL names the first problem it meets; when that is the validity period, already reported
    # above, a second finding would say the same thing.
    error = info.chain_error or ""
    validity_only = leaf is not None and (
        (leaf.is_expired() and "expired" in error) or (leaf.is_not_yet_valid() and "not yet valid" in error)
    )
    if info.chain_verified is False and not validity_only:
        report.find(
            f"Certificate chain of {where} does not verify: {info.chain_error}",
            Severity.HIGH,
            description=f"Verifying the chain against the trust store failed ({info.chain_error}): "
            "browsers and clients will refuse the connection, or users learn to click through warnings "
            "an attacker can then exploit (ASVS V9.2.1).",
            recommendation="Install a certificate from a publicly trusted CA and send the full "
            "intermediate chain.",
            cite=[handshake, *indexes],
        )
    for cert, index in zip(chain, indexes, strict=True):
        _report_strength(report, cert, where, [index])
    if info.cipher and (_WEAK_CIPHER.search(info.cipher) or (info.cipher_bits or 256) < 128):
        report.find(
            f"{where} negotiated a weak cipher: {info.cipher}",
            Severity.MEDIUM,
            description=f"The server chose {info.cipher} ({info.cipher_bits} bits), a cipher that does "
            "not give adequate protection today (ASVS V9.1.2).",
            recommendation="Offer only AEAD ciphers (AES-GCM, ChaCha20-Poly1305) with forward secrecy.",
            cite=[handshake],
        )


def _report_leaf(report: Report, info: TLSInfo, leaf: CertificateInfo, where: str, cite: list[int]) -> None:
    days = leaf.days_to_expiry()
    until = f"{leaf.not_after:%Y-%m-%d %H:%M} UTC"
    renew = "Renew the certificate and automate renewal (ACME) with monitoring of expiry dates."
    if leaf.is_expired():
        report.find(
            f"Certificate of {where} expired on {until}",
            Severity.HIGH,
            description=f"The certificate expired {-days} day(s) ago; clients refuse it or show a "
            "warning users learn to ignore (ASVS V9.2.1).",
            recommendation=renew,
            cite=cite,
        )
    elif leaf.is_not_yet_valid():
        report.find(
            f"Certificate of {where} is not valid before {leaf.not_before:%Y-%m-%d %H:%M} UTC",
            Severity.HIGH,
            description="Clients refuse a certificate whose validity has not started (or the server's "
            "clock is wrong).",
            recommendation="Install a currently valid certificate and check the server's clock.",
            cite=cite,
        )
    elif days < _EXPIRY_LOW_DAYS:
        severity = Severity.MEDIUM if days < _EXPIRY_MEDIUM_DAYS else Severity.LOW
        report.find(
            f"Certificate of {where} expires in {days} day(s) ({until})",
            severity,
            description="Once it expires clients refuse the connection; renewal should happen well "
            f"before the last {_EXPIRY_LOW_DAYS} days.",
            recommendation=renew,
            cite=cite,
        )
    if not info.hostname_matches:
        names = ", ".join([*leaf.san_dns, *leaf.san_ip]) or "no subjectAltName"
        report.find(
            f"Certificate of {where} does not cover {info.server_name}",
            Severity.HIGH,
            description=f"The certificate names {names}, not {info.server_name}: clients refuse it, and "
            "a mismatch that users click through defeats server authentication (ASVS V9.2.1).",
            recommendation="Serve a certificate whose subjectAltName lists every name the service uses.",
            cite=cite,
        )


def _report_strength(report: Report, cert: CertificateInfo, where: str, cite: list[int]) -> None:
    minimum = _MIN_KEY_BITS.get(cert.key_type)
    if minimum is not None and cert.key_bits is not None and cert.key_bits < minimum:
        report.find(
            f"Weak {cert.key_type} key ({cert.key_bits} bits) in the certificate of {where}",
            Severity.MEDIUM,
            description=f"{cert.subject} has a {cert.key_bits}-bit {cert.key_type} key; at least {minimum} "
            "bits are required today (ASVS V9.1.2, NIST SP 800-57).",
            recommendation="Reissue the certificate with an RSA 2048+ or ECDSA P-256 key.",
            cite=cite,
        )
    digest = (cert.signature_hash or "").lower()
    # A self-signed certificate's own signature is never checked by clients (it is a trust anchor).
    if digest in ("sha1", "md5", "md2") and not cert.self_signed:
        report.find(
            f"Certificate of {where} is signed with {digest.upper()}",
            Severity.HIGH if digest != "sha1" else Severity.MEDIUM,
            description=f"{cert.subject} is signed with {digest.upper()}, for which collisions can be "
            "computed, so a forged certificate with the same signature is possible; browsers reject it.",
            recommendation="Reissue the certificate signed with SHA-256 or stronger.",
            cite=cite,
        )


async def _report_versions(
    policy: TargetPolicy, host: str, port: int, report: Report, where: str
) -> dict[str, str]:
    results = await probe_tls_versions(policy, host, port)
    legacy: list[int] = []
    for result in results:
        if result.status == "not_testable_locally":
            text = f"{result.version} on {where} was not tested: {result.detail}; nothing is known about it"
        elif result.status == "accepted":
            text = f"{where} accepts {result.version} (cipher {result.cipher})"
        elif result.status == "refused":
            text = f"{where} refuses {result.version}"
        else:
            text = f"{result.version} on {where} could not be tested: {result.detail}"
        index = report.observe(
            text,
            {
                "version": result.version,
                "status": result.status,
                "detail": result.detail,
                "cipher": result.cipher,
            },
            location=where,
        )
        if result.status == "accepted" and result.version in _LEGACY_VERSIONS:
            legacy.append(index)
    accepted_legacy = [r.version for r in results if r.status == "accepted" and r.version in _LEGACY_VERSIONS]
    if legacy:
        report.find(
            f"{where} accepts deprecated {' and '.join(accepted_legacy)}",
            Severity.MEDIUM,
            description="TLS 1.0 and 1.1 are deprecated (RFC 8996): they lack modern AEAD ciphers and "
            "rely on SHA-1 and MD5 in the handshake (ASVS V9.1.3: only TLS 1.2 and 1.3).",
            recommendation=_TLS_RECOMMENDATION,
            cite=legacy,
        )
    return {result.version: result.status for result in results}
