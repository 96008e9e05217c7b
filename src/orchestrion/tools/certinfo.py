"""What a TLS connection showed: protocol, cipher and certificates, as plain values.

Certificates are parsed from DER with `cryptography` (the standard library only decodes certificates
it has verified). Host name matching is done here, in code, so it can be reported separately from
chain validity: it follows RFC 6125 as browsers do (subjectAltName only, a ``*`` only as the whole
left-most label, IP targets against IP SANs), and never falls back to the subject common name.
"""

from __future__ import annotations

import hashlib
import ipaddress
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa
from cryptography.x509.oid import NameOID

_SECONDS_PER_DAY = 86400
# `_ssl.ENCODING_DER`: the private module's chain entries take it, and `ssl` does not re-export it.
_ENCODING_DER = 2


@dataclass(frozen=True, kw_only=True)
class CertificateInfo:
    """One certificate, decoded.

    Attributes:
        subject: Subject distinguished name (RFC 4514).
        issuer: Issuer distinguished name (RFC 4514).
        common_name: The subject's CN, if any (informational: never used for matching).
        san_dns: subjectAltName DNS names.
        san_ip: subjectAltName IP addresses.
        not_before: Start of validity (UTC).
        not_after: End of validity (UTC).
        serial: Serial number in hex.
        sha256: SHA-256 fingerprint of the DER, hex.
        self_signed: Whether subject and issuer are the same name.
        key_type: ``RSA``, ``EC``, ``Ed25519``, ``Ed448``, ``DSA`` or ``other``.
        key_bits: Key size in bits, when the key type has one.
        signature_hash: Hash of the signature algorithm (``sha256``...), when there is one.
    """

    subject: str
    issuer: str
    common_name: str | None
    san_dns: tuple[str, ...]
    san_ip: tuple[str, ...]
    not_before: datetime
    not_after: datetime
    serial: str
    sha256: str
    self_signed: bool
    key_type: str
    key_bits: int | None
    signature_hash: str | None

    def days_to_expiry(self, now: datetime | None = None) -> int:
        """Whole days until `not_after` (negative once expired)."""
        remaining = self.not_after - (now or datetime.now(UTC))
        return int(remaining.total_seconds() // _SECONDS_PER_DAY)

    def is_expired(self, now: datetime | None = None) -> bool:
        """Whether `now` is past `not_after`."""
        return (now or datetime.now(UTC)) > self.not_after

    def is_not_yet_valid(self, now: datetime | None = None) -> bool:
        """Whether `now` is before `not_before`."""
        return (now or datetime.now(UTC)) < self.not_before


@dataclass(frozen=True, kw_only=True)
class TLSInfo:
    """What a TLS handshake with a target showed.

    Attributes:
        address: The IP address connected to.
        port: The port connected to.
        server_name: The name sent as SNI and matched against the certificate (an IP for IP targets).
        version: Negotiated protocol (``TLSv1.3``...).
        cipher: Negotiated cipher suite name.
        cipher_bits: Secret bits of the cipher.
        certificate: The leaf certificate (None if the peer sent none, or one that cannot be parsed).
        chain: Certificates as the server sent them, leaf first (only the leaf where the Python
            runtime does not expose the chain).
        chain_verified: Whether the chain verifies against the trust store; None if that could not
            be tested (the verifying handshake did not complete for reasons other than the certificate).
        chain_error: Why verification failed (OpenSSL's message, e.g. "certificate has expired").
        hostname_matches: Whether the leaf certificate covers `server_name`.
    """

    address: str
    port: int
    server_name: str
    version: str | None
    cipher: str | None
    cipher_bits: int | None
    certificate: CertificateInfo | None
    chain: tuple[CertificateInfo, ...]
    chain_verified: bool | None
    chain_error: str | None
    hostname_matches: bool

    @property
    def days_to_expiry(self) -> int | None:
        """Whole days until the leaf expires (negative once expired), if there is a leaf."""
        return self.certificate.days_to_expiry() if self.certificate else None


def describe_certificate(der: bytes) -> CertificateInfo:
    """Decode one DER certificate.

    Args:
        der: The certificate in DER form.

    Returns:
        The decoded fields.
    """
    cert = x509.load_der_x509_certificate(der)
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        dns_names = tuple(san.get_values_for_type(x509.DNSName))
        ips = tuple(str(ip) for ip in san.get_values_for_type(x509.IPAddress))
    except x509.ExtensionNotFound:
        dns_names, ips = (), ()
    common_names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    key = cert.public_key()
    key_type, key_bits = _key_kind(key)
    try:
        hash_algorithm = cert.signature_hash_algorithm
    except Exception:  # an algorithm cryptography does not know is still a certificate to report
        hash_algorithm = None
    return CertificateInfo(
        subject=cert.subject.rfc4514_string(),
        issuer=cert.issuer.rfc4514_string(),
        common_name=str(common_names[0].value) if common_names else None,
        san_dns=dns_names,
        san_ip=ips,
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
        serial=format(cert.serial_number, "x"),
        sha256=hashlib.sha256(der).hexdigest(),
        self_signed=cert.subject == cert.issuer,
        key_type=key_type,
        key_bits=key_bits,
        signature_hash=hash_algorithm.name if hash_algorithm is not None else None,
    )


def hostname_matches(certificate: CertificateInfo, name: str) -> bool:
    """Whether `certificate` is valid for `name` (a host name or an IP address).

    Args:
        certificate: The leaf certificate.
        name: What the client meant to reach (ASCII / IDNA form for host names).

    Returns:
        True when a SAN entry covers `name`.
    """
    try:
        address = ipaddress.ip_address(name.strip("[]"))
    except ValueError:
        address = None
    if address is not None:
        return any(ipaddress.ip_address(ip) == address for ip in certificate.san_ip)
    host = name.lower().rstrip(".")
    return any(_dns_name_matches(pattern.lower().rstrip("."), host) for pattern in certificate.san_dns)


def describe_connection(
    ssl_object: ssl.SSLObject | ssl.SSLSocket,
    *,
    address: str,
    port: int,
    server_name: str,
    chain_verified: bool | None,
    chain_error: str | None,
) -> TLSInfo:
    """Build a `TLSInfo` from a completed handshake.

    Args:
        ssl_object: The connection's SSL object (verification on or off).
        address: The IP address connected to.
        port: The port connected to.
        server_name: The name the certificate should cover.
        chain_verified: The verdict on the chain, established by the caller.
        chain_error: Why the chain did not verify, if it did not.

    Returns:
        The handshake's facts, with the host name match computed from the leaf.
    """
    cipher = ssl_object.cipher()
    der = ssl_object.getpeercert(binary_form=True)
    leaf = _describe_or_none(der) if der else None
    sent = (_describe_or_none(item) for item in peer_chain_der(ssl_object))
    chain = tuple(item for item in sent if item is not None) or ((leaf,) if leaf else ())
    return TLSInfo(
        address=address,
        port=port,
        server_name=server_name,
        version=ssl_object.version(),
        cipher=cipher[0] if cipher else None,
        cipher_bits=cipher[2] if cipher else None,
        certificate=leaf,
        chain=chain,
        chain_verified=chain_verified,
        chain_error=chain_error,
        hostname_matches=hostname_matches(leaf, server_name) if leaf else False,
    )


def peer_chain_der(ssl_object: ssl.SSLObject | ssl.SSLSocket) -> list[bytes]:
    """The certificates the peer sent, leaf first, in DER; empty where the runtime cannot say.

    Python 3.13 made ``get_unverified_chain`` public; on 3.11 and 3.12 the same method exists only on
    the private ``_sslobj``, so it is used when present and skipped (leaf only) when not.
    """
    method = getattr(ssl_object, "get_unverified_chain", None)
    if method is None:
        method = getattr(getattr(ssl_object, "_sslobj", None), "get_unverified_chain", None)
    if method is None:
        return []
    try:
        items: Sequence[object] = method() or []
    except (ssl.SSLError, ValueError):
        return []
    der_items: list[bytes] = []
    for item in items:
        if isinstance(item, bytes):
            der_items.append(item)
        else:
            public_bytes = getattr(item, "public_bytes", None)
            if public_bytes is not None:
                der_items.append(public_bytes(_ENCODING_DER))
    return der_items


def _describe_or_none(der: bytes) -> CertificateInfo | None:
    # A certificate `cryptography` cannot parse (malformed DER, duplicate extensions) is reported as
    # missing rather than failing the whole probe: the peer controls these bytes.
    try:
        return describe_certificate(der)
    except ValueError:
        return None


def _dns_name_matches(pattern: str, host: str) -> bool:
    if not pattern.startswith("*."):
        return pattern == host
    suffix = pattern[1:]
    # "*.example.com" covers exactly one more label: not "example.com", not "a.b.example.com".
    return host.endswith(suffix) and "." not in host[: -len(suffix)] and len(host) > len(suffix)


def _key_kind(key: object) -> tuple[str, int | None]:
    if isinstance(key, rsa.RSAPublicKey):
        return "RSA", key.key_size
    if isinstance(key, ec.EllipticCurvePublicKey):
        return "EC", key.curve.key_size
    if isinstance(key, ed25519.Ed25519PublicKey):
        return "Ed25519", 256
    if isinstance(key, ed448.Ed448PublicKey):
        return "Ed448", 456
    if isinstance(key, dsa.DSAPublicKey):
        return "DSA", key.key_size
    return "other", None
