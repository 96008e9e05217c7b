"""Indicators of compromise in text: network indicators, paths, registry keys, blobs and commands.

`find_indicators` and `find_commands` scan one text (the strings of a file joined by newlines; no
pattern crosses a newline) and return every match with its character offset. Values are returned
raw: callers redact them (`artifacts.quote`) before they reach an observation.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import ipaddress
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from orchestrion.domain.findings import Severity

__all__ = [
    "COMMAND_RULES",
    "INDICATOR_KINDS",
    "CommandHit",
    "CommandRule",
    "Indicator",
    "decode_powershell",
    "find_commands",
    "find_indicators",
    "ip_scope",
    "is_benign_url",
]

INDICATOR_KINDS = (
    "url",
    "ipv4",
    "ipv6",
    "domain",
    "email",
    "path",
    "registry_key",
    "base64",
    "wallet",
)
# Top-level domains common enough in real indicators. Ones that are also file extensions (sh, py, pl,
# rs, md, so, cc, in...) are left out: in binaries "install.sh" is far likelier than a Saint Helena host.
_TLDS = (
    "com net org info biz io co us uk de fr nl eu ru su cn jp kr br ir kp ua ca au gov edu mil int "
    "top xyz online site club app dev me tv ws onion pw tk ml ga cf gq link live icu shop store cloud "
    "tech space website fun ly to gg local internal lan"
).split()
_URL = re.compile(r"(?i)\b(?:https?|ftps?|hxxps?|wss?)://[^\s\"'<>`{}|\\^]{2,2048}")
_IPV4 = re.compile(
    r"(?<![\d.])(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?!\d|\.\d)"
)
# An address written from its first group ("::1"-style shorthands are left out: "Foo::Bar" is C++).
_IPV6 = re.compile(r"(?<![\w:.])[0-9A-Fa-f]{1,4}:(?:[0-9A-Fa-f]{0,4}:){1,6}[0-9A-Fa-f]{0,4}(?![\w:.])")
_DOMAIN = re.compile(
    r"(?<![\w.@-])(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.){1,10}(?:"
    + "|".join(sorted(_TLDS, key=len, reverse=True))
    + r")(?![\w-]|\.[\w-])"
)
_EMAIL = re.compile(r"(?<![\w.%+-])[A-Za-z0-9._%+-]{1,64}@(?:[A-Za-z0-9-]{1,63}\.)+[A-Za-z]{2,24}\b")
_PATH = re.compile(
    r"(?i)(?:\b[a-z]:\\|\\\\[a-z0-9.$_-]+\\|%[a-z_]+%\\)[^\s\"'<>|*?]{1,260}"
    r"|(?<![\w.:/~-])/(?:etc|bin|sbin|usr|tmp|var|home|root|dev|proc|opt|lib|lib64|boot|srv|mnt|run|sys"
    r"|Library|Users|Applications|System|private)(?:/[^\s\"'<>|;&()`]*)?"
)
_REGISTRY = re.compile(
    r"(?i)\b(?:(?:HKEY_(?:LOCAL_MACHINE|CURRENT_USER|CLASSES_ROOT|USERS|CURRENT_CONFIG)|HKLM|HKCU|HKCR|HKU|HKCC)"
    r":?\\|(?:Software|SYSTEM)\\(?=(?:Microsoft|Wow6432Node|Classes|Policies|CurrentControlSet)\\))"
    r"[^\s\"'<>|]{1,260}"
)
_PERSISTENCE = re.compile(
    r"(?i)\\(?:Run|RunOnce|RunServices|RunServicesOnce)(?:\\|$)|\\Winlogon\b|Image File Execution Options"
    r"|\\CurrentControlSet\\Services\\|AppInit_DLLs|\\Explorer\\Shell Folders|\\Policies\\Explorer\\Run"
)
_BASE64 = re.compile(r"(?<![A-Za-z0-9+/=])[A-Za-z0-9+/]{40,}={0,2}(?![A-Za-z0-9+/=])")
_BITCOIN = re.compile(r"(?<![A-Za-z0-9])[13][1-9A-HJ-NP-Za-km-z]{25,34}(?![A-Za-z0-9])")
_BECH32 = re.compile(r"(?<![A-Za-z0-9])(?:bc1|tb1)[ac-hj-np-z02-9]{25,87}(?![A-Za-z0-9])")
_ETHEREUM = re.compile(r"(?<![A-Za-z0-9])0x[a-fA-F0-9]{40}(?![A-Za-z0-9])")
_MONERO = re.compile(r"(?<![A-Za-z0-9])[48][0-9AB][1-9A-HJ-NP-Za-km-z]{93}(?![A-Za-z0-9])")
_BASE58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
# Hosts every signed or manifest-carrying binary names; they say nothing about what the code does.
_BENIGN_HOSTS = re.compile(
    r"(?i)^(?:schemas\.microsoft\.com|(?:www\.)?w3\.org|schemas\.openxmlformats\.org|purl\.org"
    r"|ns\.adobe\.com|schemas\.xmlsoap\.org|(?:www\.)?xml\.org|(?:crl|ocsp|cacerts|crl3|crl4)\.[\w.-]+"
    r"|(?:www\.)?(?:digicert|verisign|symantec|thawte|globalsign|sectigo|usertrust|comodoca|entrust)\.[\w.]+"
    r"|www\.microsoft\.com|(?:www\.)?apache\.org)$"
)
_SHELLS = r"(?:sudo\s+)?(?:/usr)?(?:/bin/)?(?:(?:ba|da|z|k)?sh|python[0-9.]*|perl|ruby|php|node)\b"


@dataclass(frozen=True, kw_only=True)
class Indicator:
    """One indicator value found at character `offset` of the scanned text."""

    kind: str
    value: str
    offset: int
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class CommandRule:
    """A pattern of a suspicious command line; `family` groups rules into one finding."""

    id: str
    family: str
    label: str
    severity: Severity
    pattern: re.Pattern[str]


@dataclass(frozen=True, kw_only=True)
class CommandHit:
    """A command rule's match at character `offset`; `decoded` holds an encoded command's text."""

    rule: CommandRule
    text: str
    offset: int
    decoded: str | None = None


def _rule(id: str, family: str, label: str, severity: Severity, pattern: str) -> CommandRule:
    return CommandRule(id=id, family=family, label=label, severity=severity, pattern=re.compile(pattern))


_H, _M, _L = Severity.HIGH, Severity.MEDIUM, Severity.LOW
_DOWNLOAD = "download_execute"
COMMAND_RULES = (
    _rule(
        "curl_pipe_shell",
        _DOWNLOAD,
        "download piped to a shell",
        _H,
        # The lookahead and the possessive quantifiers keep lines with many URLs and no pipe linear.
        rf"(?i)\b(?:curl|wget)\b(?=[^|\n]{{0,600}}\|)[^|\n]{{0,300}}?(?:https?|ftp)://[^\s|]++[^|\n]{{0,200}}+"
        rf"\|\s*{_SHELLS}",
    ),
    _rule(
        "download_chmod",
        _DOWNLOAD,
        "download made executable",
        _H,
        r"(?i)\b(?:curl|wget)\b(?=[^\n]{0,700}chmod)[^\n]{0,300}?(?:https?|ftp)://[^\n]{0,300}?(?:;|&&)\s*"
        r"chmod\s+(?:[ugoa]*\+x|[0-7]{3,4})\b",
    ),
    _rule(
        "powershell_download_iex",
        _DOWNLOAD,
        "PowerShell download and Invoke-Expression",
        _H,
        r"(?i)\b(?:iex|invoke-expression)\b[^\n]{0,200}?(?:downloadstring|downloaddata|invoke-webrequest|\biwr\b"
        r"|invoke-restmethod|\birm\b)|(?:downloadstring|invoke-webrequest|\biwr\b|invoke-restmethod|\birm\b)"
        r"[^\n]{0,300}?\|\s*(?:iex|invoke-expression)\b",
    ),
    _rule(
        "certutil_download",
        _DOWNLOAD,
        "certutil download",
        _H,
        r"(?i)\bcertutil(?:\.exe)?\b[^\n]{0,100}?[-/]urlcache\b[^\n]{0,100}?(?:https?|ftp)://",
    ),
    _rule(
        "bitsadmin_download",
        _DOWNLOAD,
        "bitsadmin download",
        _H,
        r"(?i)\bbitsadmin(?:\.exe)?\b[^\n]{0,100}?/transfer\b[^\n]{0,200}?https?://",
    ),
    _rule(
        "mshta_remote",
        _DOWNLOAD,
        "mshta running remote or inline script",
        _H,
        r"(?i)\bmshta(?:\.exe)?\s+['\"]?(?:https?://|javascript:|vbscript:)",
    ),
    _rule(
        "regsvr32_remote",
        _DOWNLOAD,
        "regsvr32 loading a remote scriptlet",
        _H,
        r"(?i)\bregsvr32(?:\.exe)?\b[^\n]{0,100}?/i:\s*['\"]?https?://",
    ),
    _rule(
        "encoded_powershell",
        "encoded_powershell",
        "encoded PowerShell command",
        _H,
        r"(?i)\b(?:powershell|pwsh)(?:\.exe)?\b[^\n]{0,200}?\s[-/](?:e|ec|en|enc|enco|encod|encode|encoded"
        r"|encodedc[a-z]*)\s+['\"]?(?P<blob>[A-Za-z0-9+/]{8,}={0,2})",
    ),
    _rule(
        "powershell_evasion",
        "powershell_evasion",
        "hidden or policy-bypassing PowerShell",
        _M,
        r"(?i)\b(?:powershell|pwsh)(?:\.exe)?\b[^\n]{0,200}?\s[-/](?:w(?:indowstyle)?\s+h(?:idden)?\b"
        r"|nop(?:rofile)?\b|ep\s+bypass\b|exec(?:utionpolicy)?\s+bypass\b)[^\n]{0,200}",
    ),
    _rule(
        "cmd_exec",
        "shell_command",
        "cmd.exe /c command",
        _L,
        r"(?i)\bcmd(?:\.exe)?['\"]?\s+/[ck]\s+\S[^\n]{0,200}",
    ),
    _rule(
        "sh_exec",
        "shell_command",
        "shell -c command",
        _L,
        r"(?<![\w-])(?:/usr)?(?:/bin/)?(?:ba|da|z|k)?sh\s+-c\s+\S[^\n]{0,200}",
    ),
)


def find_indicators(text: str) -> Iterator[Indicator]:
    """Every indicator in `text`, kind by kind, each with its offset and kind-specific extras."""
    for match in _URL.finditer(text):
        url = match.group(0).rstrip(".,;:)]}'\"")
        yield Indicator(kind="url", value=url, offset=match.start(), extra={"benign": is_benign_url(url)})
    for match in _IPV4.finditer(text):
        value = match.group(0)
        yield Indicator(kind="ipv4", value=value, offset=match.start(), extra={"scope": ip_scope(value)})
    for match in _IPV6.finditer(text):
        value = match.group(0)
        if _valid_ipv6(value):
            yield Indicator(kind="ipv6", value=value, offset=match.start(), extra={"scope": ip_scope(value)})
    urls = [match.span() for match in _URL.finditer(text)]
    for pattern, kind in ((_DOMAIN, "domain"), (_EMAIL, "email"), (_PATH, "path")):
        for match in pattern.finditer(text):
            # The user info of a URL ("user:pass@host") is not an e-mail address.
            if kind == "email" and any(start <= match.start() < end for start, end in urls):
                continue
            yield Indicator(kind=kind, value=match.group(0), offset=match.start())
    for match in _REGISTRY.finditer(text):
        value = match.group(0)
        extra: dict[str, Any] = {"persistence": bool(_PERSISTENCE.search(value))}
        yield Indicator(kind="registry_key", value=value, offset=match.start(), extra=extra)
    for match in _BASE64.finditer(text):
        blob = match.group(0)
        if len(blob) % 4 == 0 and len(set(blob)) >= 16:
            decoded = _decode_text(blob)
            extra = {"length": len(blob), "decoded_preview": decoded[:120] if decoded else None}
            yield Indicator(kind="base64", value=blob, offset=match.start(), extra=extra)
    yield from _wallets(text)


def find_commands(text: str) -> Iterator[CommandHit]:
    """Every suspicious command in `text`; encoded PowerShell is decoded and its text scanned too."""
    for rule in COMMAND_RULES:
        for match in rule.pattern.finditer(text):
            decoded = None
            if rule.id == "encoded_powershell":
                decoded = decode_powershell(match.group("blob"))
                if decoded is None:
                    continue
            yield CommandHit(rule=rule, text=match.group(0), offset=match.start(), decoded=decoded)


def decode_powershell(blob: str) -> str | None:
    """The script of a ``-EncodedCommand`` blob (base64 of UTF-16LE), or None if it is not one."""
    try:
        raw = base64.b64decode(blob + "=" * (-len(blob) % 4), validate=True)
        script = raw.decode("utf-16-le")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    if not script or sum(c.isprintable() or c in "\r\n\t" for c in script) / len(script) < 0.9:
        return None
    return script


def ip_scope(value: str) -> str:
    """Where an address routes: unspecified, loopback, link_local, multicast, reserved, private, global."""
    address = ipaddress.ip_address(value)
    for scope in ("unspecified", "loopback", "link_local", "multicast", "reserved", "global", "private"):
        if getattr(address, f"is_{scope}"):
            return scope
    return "other"


def is_benign_url(url: str) -> bool:
    """Whether `url` names a schema, certificate or licence host that binaries carry as a matter of course."""
    try:
        host = urlsplit(url).hostname or ""
    except ValueError:
        return False
    return bool(_BENIGN_HOSTS.match(host))


def _valid_ipv6(value: str) -> bool:
    if sum(c in "0123456789abcdefABCDEF" for c in value) < 2:
        return False
    try:
        address = ipaddress.IPv6Address(value)
    except ValueError:
        return False
    return not address.is_unspecified


def _decode_text(blob: str) -> str | None:
    """Decoded base64 as text when it is printable ASCII or UTF-16LE, else None."""
    try:
        raw = base64.b64decode(blob, validate=True)
    except (binascii.Error, ValueError):
        return None
    for encoding in ("utf-16-le", "ascii"):
        if encoding == "utf-16-le" and (len(raw) % 2 or raw[1::2].strip(b"\x00")):
            continue
        try:
            text = raw.decode(encoding)
        except UnicodeDecodeError:
            continue
        if text and sum(c.isprintable() or c in "\r\n\t" for c in text) / len(text) >= 0.95:
            return text
    return None


def _wallets(text: str) -> Iterator[Indicator]:
    for match in _BITCOIN.finditer(text):
        if _base58check(match.group(0)):
            yield Indicator(
                kind="wallet", value=match.group(0), offset=match.start(), extra={"chain": "bitcoin"}
            )
    for pattern, chain in ((_BECH32, "bitcoin (bech32)"), (_ETHEREUM, "ethereum"), (_MONERO, "monero")):
        for match in pattern.finditer(text):
            yield Indicator(kind="wallet", value=match.group(0), offset=match.start(), extra={"chain": chain})


def _base58check(value: str) -> bool:
    """Whether `value` decodes as Base58Check with a valid checksum (as Bitcoin addresses do)."""
    number = 0
    for char in value:
        number = number * 58 + _BASE58.index(char)
    leading = len(value) - len(value.lstrip("1"))
    raw = b"\x00" * leading + number.to_bytes((number.bit_length() + 7) // 8, "big")
    if len(raw) != 25:
        return False
    payload, checksum = raw[:-4], raw[-4:]
    return hashlib.sha256(hashlib.sha256(payload).digest()).digest()[:4] == checksum
