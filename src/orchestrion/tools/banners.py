"""Naming a TCP service from what it says: its greeting, or its answer to one harmless probe.

Pure functions over bytes, used by `portscan`. Server-speaks-first protocols identify themselves
unprompted (SSH, SMTP, FTP, POP3, IMAP, MySQL, telnet option negotiation, VNC). Silent services get one
probe chosen by `portscan`: an HTTP ``HEAD``, a Redis ``PING`` or a PostgreSQL ``SSLRequest``; an HTTP
request also unmasks services that answer it in their own protocol (Redis's ``-ERR unknown command``,
MongoDB's "trying to access MongoDB over HTTP", a TLS alert).

Banners are peer-controlled text: they are shown printable-only, cut short, and passed through
`redact_secrets` before they become evidence.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Literal

from orchestrion.tools.secrets import redact_secrets

AuthState = Literal["none", "required", "refused", "unknown"]

# What a port usually carries, to name an open port that said nothing recognisable.
PORT_NAMES: dict[int, str] = {
    21: "ftp",
    22: "ssh",
    23: "telnet",
    25: "smtp",
    53: "dns",
    80: "http",
    110: "pop3",
    143: "imap",
    443: "https",
    445: "smb",
    465: "smtp",
    587: "smtp",
    993: "imap",
    995: "pop3",
    1433: "mssql",
    3306: "mysql",
    3389: "rdp",
    5432: "postgresql",
    5900: "vnc",
    6379: "redis",
    8080: "http",
    8443: "https",
    9200: "elasticsearch",
    11211: "memcached",
    27017: "mongodb",
}

MAX_BANNER_CHARS = 200
_MYSQL_CLIENT_SSL = 0x0800
_SMTP_WORDS = ("smtp", "esmtp", "postfix", "exim", "sendmail", "mail")
_PRODUCT = re.compile(
    r"(vsFTPd [\d.]+|ProFTPD(?: [\d.]+\w*)?|Pure-FTPd|FileZilla Server(?: [\d.]+)?|Postfix|Exim [\d.]+"
    r"|Sendmail [\w./-]+|OpenSMTPD|Microsoft ESMTP MAIL Service|Microsoft FTP Service|Dovecot|Cyrus"
    r"|Courier)",
    re.IGNORECASE,
)
_RESP_PREFIXES = (b"-ERR", b"-NOAUTH", b"-DENIED", b"-WRONGPASS", b"+PONG", b"+OK\r\n")
_TELNET_COMMANDS = frozenset({0xFB, 0xFC, 0xFD, 0xFE})


@dataclass(frozen=True, kw_only=True)
class ServiceInfo:
    """What an open port turned out to be.

    Attributes:
        service: ``ssh``, ``smtp``, ``ftp``, ``pop3``, ``imap``, ``telnet``, ``vnc``, ``mysql``,
            ``postgresql``, ``redis``, ``mongodb``, ``elasticsearch``, ``http``, ``https``, ``tls`` (a
            TLS service not yet identified further) or ``unknown``.
        how: ``greeting`` (the service spoke first), ``probe`` (its answer to a probe) or ``none``.
        product: Software and version when the service names them (``OpenSSH_9.6p1``, ``nginx/1.25``).
        banner: The first line(s) it sent, printable, redacted and cut to `MAX_BANNER_CHARS`.
        auth: ``none`` when it served the probe without credentials, ``required`` when it asked for
            them, ``refused`` when it refused this client outright, ``unknown`` when not tested.
        tls: Whether it offers TLS on the same port (MySQL capability flag, PostgreSQL SSLRequest).
        status: The HTTP status of the probe, for HTTP services.
        notes: Anything else worth saying.
    """

    service: str
    how: Literal["greeting", "probe", "none"]
    product: str | None = None
    banner: str | None = None
    auth: AuthState = "unknown"
    tls: bool | None = None
    status: int | None = None
    notes: tuple[str, ...] = ()

    def with_note(self, note: str) -> ServiceInfo:
        """A copy with `note` added."""
        return replace(self, notes=(*self.notes, note))


UNKNOWN = ServiceInfo(service="unknown", how="none")


def printable(data: bytes, limit: int = MAX_BANNER_CHARS) -> str:
    """Peer bytes as one line of redacted, printable text (other bytes as ``\\xNN``), at most `limit`."""
    shown = redact_secrets("".join(_visible(ch) for ch in data.decode("latin-1")).rstrip("⏎"))
    return shown if len(shown) <= limit else shown[: limit - 1] + "…"


def _visible(ch: str) -> str:
    if ch.isprintable() and ord(ch) < 0x7F:
        return ch
    if ch == "\n":
        return "⏎"
    # A peer's control bytes must not reach a terminal or a report as themselves.
    return "" if ch == "\r" else f"\\x{ord(ch):02x}"


def classify_greeting(port: int, data: bytes) -> ServiceInfo:
    """Name a service from the bytes it sent before being asked anything."""
    first_line = data.split(b"\n", 1)[0].rstrip(b"\r")
    banner = printable(first_line if first_line else data)
    if data.startswith(b"SSH-"):
        parts = first_line.decode("latin-1").split("-", 2)
        return ServiceInfo(
            service="ssh", how="greeting", banner=banner, product=parts[2] if len(parts) == 3 else None
        )
    if len(data) >= 2 and data[0] == 0xFF and data[1] in _TELNET_COMMANDS:
        return ServiceInfo(service="telnet", how="greeting", banner=printable(data[:24]))
    mysql = _classify_mysql(data)
    if mysql is not None:
        return mysql
    if data.startswith(b"RFB "):
        return ServiceInfo(service="vnc", how="greeting", banner=banner, product=banner)
    if data.startswith(_RESP_PREFIXES):
        return classify_redis_reply(data, how="greeting")
    text = first_line.decode("latin-1")
    product_match = _PRODUCT.search(text)
    product = product_match.group(1) if product_match else None
    if text.startswith("220"):
        lowered = text.lower()
        if "ftp" in lowered:
            service = "ftp"
        elif any(word in lowered for word in _SMTP_WORDS):
            service = "smtp"
        else:
            service = "ftp" if port in (21, 990) else "smtp"
        return ServiceInfo(service=service, how="greeting", banner=banner, product=product)
    if text.startswith("+OK"):
        return ServiceInfo(service="pop3", how="greeting", banner=banner, product=product)
    if text.startswith("* OK") or text.startswith("* PREAUTH"):
        return ServiceInfo(service="imap", how="greeting", banner=banner, product=product)
    return ServiceInfo(service="unknown", how="greeting", banner=banner)


def classify_reply(port: int, data: bytes) -> ServiceInfo:
    """Name a silent service from its answer to an HTTP ``HEAD`` request (raw bytes, maybe empty)."""
    if b"MongoDB" in data and b"HTTP" in data:
        return ServiceInfo(
            service="mongodb",
            how="probe",
            banner=printable(data.split(b"\r\n\r\n", 1)[-1].split(b"\n", 1)[0]),
            notes=("answered an HTTP request with MongoDB's native-port message",),
        )
    if data.startswith(b"HTTP/"):
        head = data.split(b"\r\n\r\n", 1)[0].decode("latin-1")
        lines = head.split("\r\n")
        status_parts = lines[0].split(" ", 2)
        status = int(status_parts[1]) if len(status_parts) > 1 and status_parts[1].isdigit() else None
        headers = [tuple(part.strip() for part in line.split(":", 1)) for line in lines[1:] if ":" in line]
        return classify_http(port, status, [(name.lower(), value) for name, value in headers], tls=False)
    if data.startswith(_RESP_PREFIXES):
        # Redis reads "HEAD / HTTP/1.0" as an unknown command: the reply names the protocol, not the
        # authentication state (a PING on a new connection tells that).
        return ServiceInfo(service="redis", how="probe", banner=printable(data.split(b"\r\n", 1)[0]))
    if data[:2] in (b"\x15\x03", b"\x16\x03"):
        return ServiceInfo(service="tls", how="probe", notes=("answered plain HTTP with a TLS record",))
    if data:
        return ServiceInfo(service="unknown", how="probe", banner=printable(data.split(b"\n", 1)[0]))
    return UNKNOWN


def classify_http(port: int, status: int | None, headers: list[tuple[str, str]], *, tls: bool) -> ServiceInfo:
    """Name an HTTP(S) service from the status and lower-cased headers of its answer to ``HEAD /``."""
    values = dict(headers)
    server = values.get("server")
    banner = printable(f"HTTP {status} Server: {server or '-'}".encode("latin-1", "replace"))
    product = printable(server.encode("latin-1", "replace")) if server else None
    elastic = "elasticsearch" in values.get("x-elastic-product", "").lower() or (
        port == 9200 and "elasticsearch" in (server or "").lower()
    )
    if elastic:
        auth: AuthState = "unknown"
        if status is not None and 200 <= status < 300:
            auth = "none"
        elif status in (401, 403):
            auth = "required"
        return ServiceInfo(
            service="elasticsearch",
            how="probe",
            banner=banner,
            product=product,
            auth=auth,
            status=status,
            tls=tls,
        )
    return ServiceInfo(
        service="https" if tls else "http",
        how="probe",
        banner=banner,
        product=product,
        status=status,
        tls=tls,
    )


def classify_redis_reply(data: bytes, *, how: Literal["greeting", "probe"] = "probe") -> ServiceInfo:
    """Name a Redis server's authentication state from its answer to ``PING``."""
    line = data.split(b"\r\n", 1)[0]
    banner = printable(line)
    if line.startswith(b"+PONG"):
        return ServiceInfo(
            service="redis", how=how, banner=banner, auth="none", notes=("PING answered +PONG",)
        )
    if line.startswith((b"-NOAUTH", b"-WRONGPASS")):
        return ServiceInfo(service="redis", how=how, banner=banner, auth="required")
    if line.startswith(b"-DENIED"):
        return ServiceInfo(
            service="redis",
            how=how,
            banner=banner,
            auth="refused",
            notes=("protected mode: refuses clients from other hosts",),
        )
    return ServiceInfo(service="redis", how=how, banner=banner)


def classify_postgres_reply(data: bytes) -> ServiceInfo:
    """Name a PostgreSQL server from its one-byte answer to an ``SSLRequest``."""
    if data[:1] in (b"S", b"N"):
        offers = data[:1] == b"S"
        return ServiceInfo(
            service="postgresql",
            how="probe",
            banner=f"SSLRequest answered {data[:1].decode()}",
            tls=offers,
            notes=(("offers" if offers else "does not offer") + " TLS",),
        )
    if data[:1] == b"E":
        return ServiceInfo(service="postgresql", how="probe", banner=printable(data[:80]))
    return classify_reply(5432, data) if data else UNKNOWN


def _classify_mysql(data: bytes) -> ServiceInfo | None:
    """A MySQL/MariaDB initial handshake packet (protocol 10), or its pre-handshake error packet."""
    if len(data) < 6 or data[3] != 0:
        return None
    length = int.from_bytes(data[:3], "little")
    body = data[4 : 4 + length]
    if body[:1] == b"\x0a":
        version, _, rest = body[1:].partition(b"\0")
        if not version or not all(0x20 <= b < 0x7F for b in version):
            return None
        # Thread id (4), auth data (8) and a filler byte come before the lower capability flags.
        capabilities = int.from_bytes(rest[13:15], "little") if len(rest) >= 15 else None
        tls = bool(capabilities & _MYSQL_CLIENT_SSL) if capabilities is not None else None
        product = version.decode("ascii")
        name = "MariaDB" if "mariadb" in product.lower() else "MySQL"
        return ServiceInfo(
            service="mysql", how="greeting", product=f"{name} {product}", banner=product, tls=tls
        )
    if body[:1] == b"\xff" and len(body) >= 3:
        code = int.from_bytes(body[1:3], "little")
        message = printable(body[3:].lstrip(b"#"))
        return ServiceInfo(
            service="mysql",
            how="greeting",
            banner=f"error {code}: {message}",
            auth="refused",
            notes=(f"refused this client before the handshake (error {code})",),
        )
    return None
