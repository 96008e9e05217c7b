"""Verdicts on the transport requirements of ASVS chapter V9: HTTPS everywhere, ciphers, versions and
the certificate. The HTTP-level requirements are in `asvs_verdicts`.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from orchestrion.domain.findings import Severity
from orchestrion.tools.asvs_checks import Status, Verdict, WebEvidence, make_verdict

_WEAK_CIPHER = re.compile(r"RC4|3DES|DES-CBC|(^|[-_])DES([-_]|$)|NULL|EXPORT|EXP-|ANON|ADH|AECDH|MD5", re.I)
_LEGACY_TLS = ("TLSv1", "TLSv1.1")


def weak_cipher(name: str | None, bits: int | None) -> bool:
    """Whether a cipher suite is weak by name or key size."""
    return bool(name and _WEAK_CIPHER.search(name)) or (bits is not None and bits < 128)


def _tls_sources(evidence: WebEvidence) -> tuple[str, ...]:
    return ("tls",) if evidence.tls is not None or evidence.tls_error else ()


def check_tls_everywhere(evidence: WebEvidence) -> Verdict:
    """V9.1.1: the final URL is https, and plain HTTP does not serve content."""
    rule = "V9.1.1"
    if evidence.responses:
        final = evidence.responses[0].url
        if urlsplit(final).scheme != "https":
            return make_verdict(
                rule,
                Status.FAIL,
                f"{evidence.target_url} is served over plain HTTP ({final}) without a redirect to HTTPS",
                severity=Severity.HIGH,
                sources=("response:0",),
                final_url=final,
            )
    elif not evidence.https_expected or evidence.tls is None:
        return make_verdict(rule, Status.NOT_TESTED, "the target answered neither HTTP nor a TLS handshake")
    plain = evidence.plain
    if plain is not None and plain.outcome == "serves_plain_http":
        return make_verdict(
            rule,
            Status.FAIL,
            f"{plain.url} answers over plain HTTP (status {plain.status}) instead of redirecting to HTTPS",
            severity=Severity.MEDIUM,
            sources=("plain", *(("response:0",) if evidence.responses else ())),
            plain_url=plain.url,
            plain_status=plain.status,
            location=plain.location,
        )
    if plain is not None:
        how = "redirects to HTTPS" if plain.outcome == "redirects_to_https" else "does not answer"
        note = f"; {plain.url} {how}"
    else:
        note = f"; plain HTTP not probed ({evidence.plain_skipped or 'not requested'})"
    sources = ("response:0",) if evidence.responses else ("tls",)
    return make_verdict(
        rule,
        Status.PASS,
        f"content is served over HTTPS{note}",
        sources=(*sources, *(("plain",) if plain is not None else ())),
    )


def check_ciphers(evidence: WebEvidence) -> Verdict:
    """V9.1.2: no weak suite negotiated, by default or with legacy versions."""
    rule = "V9.1.2"
    if not evidence.https_expected:
        return make_verdict(rule, Status.NOT_APPLICABLE, "no TLS endpoint (see V9.1.1)")
    if evidence.tls is None:
        return make_verdict(
            rule, Status.NOT_TESTED, f"no TLS handshake: {evidence.tls_error}", sources=_tls_sources(evidence)
        )
    suites = [(evidence.tls.version or "?", evidence.tls.cipher, evidence.tls.cipher_bits)]
    suites += [(v.version, v.cipher, None) for v in evidence.versions if v.status == "accepted" and v.cipher]
    weak = sorted({f"{cipher} ({version})" for version, cipher, bits in suites if weak_cipher(cipher, bits)})
    sources = ("tls", *(("versions",) if evidence.versions else ()))
    if weak:
        return make_verdict(
            rule,
            Status.FAIL,
            f"weak cipher suites negotiated: {', '.join(weak)}",
            severity=Severity.MEDIUM,
            sources=sources,
            weak=weak,
        )
    return make_verdict(
        rule,
        Status.PASS,
        f"negotiated {evidence.tls.cipher} ({evidence.tls.cipher_bits} bits) over {evidence.tls.version}; "
        "only negotiated suites were seen",
        sources=sources,
    )


def check_versions(evidence: WebEvidence) -> Verdict:
    """V9.1.3: TLS 1.0/1.1 refused, TLS 1.2 or 1.3 accepted."""
    rule = "V9.1.3"
    if not evidence.https_expected:
        return make_verdict(rule, Status.NOT_APPLICABLE, "no TLS endpoint (see V9.1.1)")
    status = {support.version: support.status for support in evidence.versions}
    if not status or all(value == "error" for value in status.values()):
        return make_verdict(
            rule, Status.NOT_TESTED, "the TLS versions could not be probed", sources=_tls_sources(evidence)
        )
    accepted = [version for version, value in status.items() if value == "accepted"]
    legacy = [version for version in _LEGACY_TLS if status.get(version) == "accepted"]
    if legacy:
        return make_verdict(
            rule,
            Status.FAIL,
            f"obsolete TLS versions accepted: {', '.join(legacy)}",
            severity=Severity.MEDIUM,
            sources=("versions",),
            accepted=accepted,
        )
    if not any(version in accepted for version in ("TLSv1.2", "TLSv1.3")):
        return make_verdict(
            rule,
            Status.FAIL,
            "neither TLS 1.2 nor TLS 1.3 is accepted",
            severity=Severity.HIGH,
            sources=("versions",),
            accepted=accepted,
        )
    untested = [
        version for version in _LEGACY_TLS if status.get(version) in ("not_testable_locally", "error")
    ]
    if untested:
        return make_verdict(
            rule,
            Status.NOT_TESTED,
            f"accepts {', '.join(accepted)}, but {', '.join(untested)} could not be tested from this machine",
            sources=("versions",),
            accepted=accepted,
        )
    note = "" if "TLSv1.3" in accepted else " (TLS 1.3, the preferred version, is not offered)"
    return make_verdict(
        rule,
        Status.PASS,
        f"accepts only {', '.join(accepted)}{note}",
        sources=("versions",),
        accepted=accepted,
    )


def check_certificate(evidence: WebEvidence) -> Verdict:
    """V9.2.1: the chain verifies and the certificate covers the host name."""
    rule = "V9.2.1"
    if not evidence.https_expected:
        return make_verdict(rule, Status.NOT_APPLICABLE, "no TLS endpoint (see V9.1.1)")
    tls = evidence.tls
    if tls is None:
        return make_verdict(
            rule, Status.NOT_TESTED, f"no TLS handshake: {evidence.tls_error}", sources=_tls_sources(evidence)
        )
    problems = []
    if tls.chain_verified is False:
        problems.append(f"the chain does not verify ({tls.chain_error})")
    if not tls.hostname_matches:
        problems.append(f"the certificate does not cover {tls.server_name}")
    if problems:
        return make_verdict(rule, Status.FAIL, "; ".join(problems), severity=Severity.HIGH, sources=("tls",))
    if tls.chain_verified is None:
        return make_verdict(rule, Status.NOT_TESTED, "the chain could not be verified", sources=("tls",))
    days = tls.days_to_expiry
    return make_verdict(
        rule,
        Status.PASS,
        f"trusted certificate for {tls.server_name}"
        + (f", {days} days to expiry" if days is not None else ""),
        sources=("tls",),
    )
