"""Risky settings in configuration files: debug on, default credentials, TLS checks off, wildcards.

Files are read into `Setting` entries (a dotted key path, the last key, the value, the line): YAML and
JSON through PyYAML's node graph, which keeps line numbers, and ``.env``/INI/TOML/properties/conf
files line by line with ``[section]`` prefixes. Rules then look at settings, at raw lines (connection
strings such as ``postgres://user:pass@host/db?sslmode=disable``) and, for YAML, at the structure of
docker-compose services and Kubernetes pod specs (`config_containers`).

Secrets themselves are `orchestrion.tools.secrets`' business; nothing here looks for tokens or keys.
A default password is quoted (it is public knowledge, not a secret); every quoted line goes through
`redact_secrets` first.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import yaml

from orchestrion.domain.findings import Severity
from orchestrion.tools.base import InputFile
from orchestrion.tools.secrets import redact, redact_secrets

MAX_NODES = 50_000
_LINE_SUFFIXES = (".ini", ".cfg", ".conf", ".toml", ".properties")
_YAML_SUFFIXES = (".yaml", ".yml", ".json")

TRUTHY = frozenset({"true", "yes", "on", "1", "y"})
FALSY = frozenset({"false", "no", "off", "0", "n", "none", "cert_none"})
DEFAULT_PASSWORDS = frozenset(
    {
        "admin", "administrator", "password", "passw0rd", "p@ssw0rd", "changeme", "change_me", "changeit",
        "postgres", "root", "toor", "secret", "123456", "12345678", "default", "guest", "letmein", "mysql",
        "pass", "password123", "admin123", "qwerty", "foobared",
    }
)  # fmt: skip
_PASSWORD_KEY = re.compile(
    r"(password|passwd|passphrase|pwd|requirepass|secret|secret_key|(^|_)pass)$", re.IGNORECASE
)
_DEBUG_KEYS = frozenset({"debug", "debug_mode", "template_debug"})
_VERIFY_OFF_KEYS = frozenset(
    {
        "verify", "ssl_verify", "verify_ssl", "tls_verify", "verify_tls", "ssl_verify_peer", "verify_peer",
        "verify_certs", "verify_certificate", "ssl_verify_cert", "check_hostname", "ssl_check_hostname",
        "reject_unauthorized", "rejectunauthorized", "sslverify", "strict_ssl", "proxy_ssl_verify",
        "ssl_cert_reqs", "pythonhttpsverify", "node_tls_reject_unauthorized",
    }
)  # fmt: skip
_INSECURE_ON_KEYS = frozenset(
    {
        "insecure_skip_verify", "insecureskipverify", "insecure_skip_tls_verify", "skip_tls_verify",
        "tls_skip_verify", "insecure", "ssl_insecure", "tls_insecure", "git_ssl_no_verify",
    }
)  # fmt: skip
_WILDCARD_HOST_KEYS = frozenset({"allowed_hosts", "django_allowed_hosts", "trusted_hosts", "allowedhosts"})
_ALLOW_ALL_ORIGINS_KEYS = frozenset({"cors_origin_allow_all", "cors_allow_all_origins", "cors_allow_all"})
_SSLMODE_KEYS = frozenset({"sslmode", "ssl_mode", "pgsslmode"})

_SECTION = re.compile(r"^\s*\[+\s*([^\]]+?)\s*\]+\s*$")
_ASSIGN = re.compile(
    r"""^\s*(?:export\s+)?(?P<key>"[^"]+"|'[^']+'|[A-Za-z0-9_.\-]+)\s*(?:=|:(?!//))\s*(?P<value>.*?)\s*$"""
)
_SPACED = re.compile(r"^\s*(?P<key>[A-Za-z_][A-Za-z0-9_.\-]*)\s+(?P<value>[^\s{;#][^;{]*?)\s*;?\s*$")
_ENV_ITEM = re.compile(r"^(?P<key>[A-Za-z_][A-Za-z0-9_.\-]*)=(?P<value>.*)$")
_URL_CREDENTIALS = re.compile(r"[a-z][a-z0-9+.\-]*://(?P<user>[^:/@\s'\"]+):(?P<password>[^@/\s'\"]+)@", re.I)
_URL_PASSWORD = re.compile(r"(?P<before>://[^:/@\s'\"]+:)(?P<value>[^@/\s'\"]+)(?=@)")
_INLINE_PASSWORD = re.compile(
    r"(?P<before>(?:password|passwd|pwd|pass|secret|token)\s*[=:]\s*['\"]?)(?P<value>[^'\"\s;&,]+)", re.I
)
_SSLMODE_DISABLE = re.compile(r"\bsslmode\s*=\s*disable\b", re.IGNORECASE)
_CORS_HEADER_WILDCARD = re.compile(r"access-control-allow-origin['\"]?\s*[:=]?\s*['\"]?\*", re.IGNORECASE)


@dataclass(frozen=True, kw_only=True)
class Setting:
    """One key and its scalar value in a configuration file.

    Attributes:
        path: Dotted path of keys (sections and parent mappings included), as written.
        key: The last key of `path`.
    """

    file: str
    line: int
    path: str
    key: str
    value: str


@dataclass(frozen=True, kw_only=True)
class ConfigHit:
    """One risky setting: which rule, where, and what was seen (secret-free)."""

    rule: str
    label: str
    severity: Severity
    file: str
    line: int
    detail: str
    recommendation: str


@dataclass(frozen=True, kw_only=True)
class Node:
    """A YAML value with the line it starts on: a string, a mapping or a list."""

    value: str | dict[str, Node] | list[Node]
    line: int


RECOMMENDATIONS = {
    "debug_enabled": (
        "Turn debug mode off outside development: debug pages and error traces disclose code, settings "
        "and secrets, and some (Werkzeug's console) execute code."
    ),
    "default_credentials": (
        "Replace the default password with a strong random one loaded from a secret store, and change "
        "it on every deployed instance."
    ),
    "auth_disabled": "Require authentication: set a strong password instead of trusting every client.",
    "tls_verification_disabled": (
        "Keep certificate verification on; trust a private CA explicitly (a CA bundle setting) instead "
        "of disabling verification, which lets anyone on the path read and alter the traffic."
    ),
    "wildcard_hosts": "List the exact host names the application serves instead of '*'.",
    "wildcard_cors": (
        "Replace the wildcard with an explicit allowlist of trusted origins, and never combine it with "
        "credentials."
    ),
    "privileged_container": (
        "Drop privileged mode, added capabilities and host mounts such as the Docker socket: each gives "
        "the container control of the host. Grant only the specific capability a workload needs."
    ),
    "host_namespace": (
        "Do not share the host's network, PID or IPC namespace; publish ports and use service networking."
    ),
    "runs_as_root": (
        "Run as an unprivileged user: set a non-zero user (compose `user:`, Kubernetes `runAsUser`) and "
        "`runAsNonRoot: true`, and build images with a USER."
    ),
    "privilege_escalation": "Set `allowPrivilegeEscalation: false` so that setuid binaries cannot gain root.",
}


def is_config_file(name: str) -> bool:
    """Whether `name` is a configuration file this scanner reads (by its name)."""
    base = posixpath.basename(name.replace("\\", "/")).lower()
    if base == ".env" or base.startswith(".env.") or base.endswith(".env"):
        return True
    return base.endswith(_LINE_SUFFIXES + _YAML_SUFFIXES)


def read_settings(file: InputFile) -> tuple[list[Setting], list[Node]]:
    """Settings of a configuration file and, for YAML/JSON, its documents as `Node` trees."""
    base = posixpath.basename(file.name).lower()
    if base.endswith(_YAML_SUFFIXES):
        documents = yaml_documents(file.content)
        if documents is not None:
            settings: list[Setting] = []
            for document in documents:
                settings.extend(_flatten(file.name, document, []))
            return settings, documents
    return list(_settings_from_lines(file.name, file.content, spaced=base.endswith(".conf"))), []


def yaml_documents(text: str) -> list[Node] | None:
    """Every YAML document of `text` as a `Node` tree, or None if it is not YAML.

    Aliases are followed, but the walk stops after `MAX_NODES` nodes so that a "billion laughs" file
    cannot make it run forever.
    """
    try:
        roots = list(yaml.compose_all(text, Loader=yaml.SafeLoader))
    except yaml.YAMLError:
        return None
    budget = [MAX_NODES]
    return [_convert(root, budget) for root in roots if root is not None]


def check_settings(settings: list[Setting]) -> Iterator[ConfigHit]:
    """The rules that look at one setting at a time."""
    for setting in settings:
        yield from _check_setting(setting)


def check_lines(file: InputFile) -> Iterator[ConfigHit]:
    """The rules that look at raw lines: connection strings and literal CORS headers."""
    for number, line in enumerate(file.content.splitlines(), start=1):
        for match in _URL_CREDENTIALS.finditer(line):
            password = match.group("password")
            if password.lower() in DEFAULT_PASSWORDS:
                yield hit(
                    "default_credentials",
                    file.name,
                    number,
                    f"connection URL with the default password {password!r} for user {match.group('user')!r}",
                )
        if _SSLMODE_DISABLE.search(line):
            yield hit(
                "tls_verification_disabled", file.name, number, "connection string with sslmode=disable"
            )
        if _CORS_HEADER_WILDCARD.search(line):
            yield hit("wildcard_cors", file.name, number, "Access-Control-Allow-Origin set to '*'")


def excerpt(file: InputFile, line: int) -> str:
    """The line, stripped, with passwords and anything the secret scanner would report redacted.

    Passwords in connection URLs and ``password=`` pairs are redacted here (the secret scanner only
    knows quoted assignments), except the well-known defaults that the finding is about.
    """
    lines = file.content.splitlines()
    text = lines[line - 1].strip() if 0 < line <= len(lines) else ""
    text = _URL_PASSWORD.sub(_redact_group, text)
    text = _INLINE_PASSWORD.sub(_redact_group, text)
    return redact_secrets(text)[:200]


def _redact_group(match: re.Match[str]) -> str:
    value = match.group("value")
    shown = (
        value if value.lower() in DEFAULT_PASSWORDS or value.startswith(("${", "{{", "%(")) else redact(value)
    )
    return match.group("before") + shown


def truthy(value: str) -> bool:
    """Whether a configuration value means "on"."""
    return _unquote(value).lower() in TRUTHY


_LABELS = {
    "debug_enabled": ("debug mode enabled", Severity.MEDIUM),
    "default_credentials": ("default credentials", Severity.HIGH),
    "auth_disabled": ("authentication disabled", Severity.HIGH),
    "tls_verification_disabled": ("TLS certificate verification disabled", Severity.MEDIUM),
    "wildcard_hosts": ("wildcard allowed hosts", Severity.MEDIUM),
    "wildcard_cors": ("wildcard CORS origin", Severity.MEDIUM),
    "privileged_container": ("privileged container", Severity.HIGH),
    "host_namespace": ("host namespace shared with a container", Severity.MEDIUM),
    "runs_as_root": ("container runs as root", Severity.MEDIUM),
    "privilege_escalation": ("privilege escalation allowed", Severity.MEDIUM),
}


def hit(rule: str, file: str, line: int, detail: str, *, severity: Severity | None = None) -> ConfigHit:
    """A `ConfigHit` with the rule's label, default severity and recommendation."""
    label, default = _LABELS[rule]
    return ConfigHit(
        rule=rule,
        label=label,
        severity=severity or default,
        file=file,
        line=line,
        detail=detail,
        recommendation=RECOMMENDATIONS[rule],
    )


def _check_setting(setting: Setting) -> Iterator[ConfigHit]:
    key = setting.key.lower().replace("-", "_")
    path = setting.path.lower()
    value = _unquote(setting.value)
    lowered = value.lower()
    where = (setting.file, setting.line)
    if (key in _DEBUG_KEYS or key.endswith("_debug") or path.endswith(".debug")) and lowered in TRUTHY:
        yield hit("debug_enabled", *where, f"{setting.path} = {value}")
    elif (key == "flask_env" and lowered == "development") or (key == "display_errors" and lowered in TRUTHY):
        yield hit("debug_enabled", *where, f"{setting.path} = {value}")
    if _PASSWORD_KEY.search(key) and lowered in DEFAULT_PASSWORDS:
        yield hit("default_credentials", *where, f"{setting.path} is the well-known default {value!r}")
    if (key == "postgres_host_auth_method" and lowered == "trust") or (
        key in ("mysql_allow_empty_password", "allow_empty_password") and lowered in TRUTHY
    ):
        yield hit("auth_disabled", *where, f"{setting.path} = {value}")
    elif key == "protected_mode" and lowered == "no":
        yield hit("auth_disabled", *where, "Redis protected-mode is off")
    if key in _VERIFY_OFF_KEYS and lowered in FALSY:
        yield hit("tls_verification_disabled", *where, f"{setting.path} = {value}")
    elif key in _INSECURE_ON_KEYS and lowered in TRUTHY:
        yield hit("tls_verification_disabled", *where, f"{setting.path} = {value}")
    elif key in _SSLMODE_KEYS and lowered in ("disable", "disabled"):
        yield hit("tls_verification_disabled", *where, f"{setting.path} = {value}")
    if key in _WILDCARD_HOST_KEYS and "*" in _items(value):
        yield hit("wildcard_hosts", *where, f"{setting.path} allows every host ('*')")
    elif key in _ALLOW_ALL_ORIGINS_KEYS and lowered in TRUTHY:
        yield hit("wildcard_cors", *where, f"{setting.path} = {value}: every origin is allowed")
    elif ("cors" in path or "origin" in key) and "*" in _items(value) and "access-control" not in path:
        yield hit("wildcard_cors", *where, f"{setting.path} allows every origin ('*')")


def _items(value: str) -> set[str]:
    return {item.strip().strip("'\"") for item in re.split(r"[,\s\[\]]+", value) if item.strip()}


def _unquote(value: str) -> str:
    text = value.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    return text


def _settings_from_lines(name: str, text: str, *, spaced: bool) -> Iterator[Setting]:
    section: list[str] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if not stripped or stripped.startswith(("#", ";", "//")):
            continue
        heading = _SECTION.match(stripped)
        if heading:
            section = [part.strip().strip("'\"") for part in heading.group(1).split(".")]
            continue
        match = _ASSIGN.match(raw) or (_SPACED.match(raw) if spaced else None)
        if match is None:
            continue
        key = match.group("key").strip("'\"")
        value = _strip_comment(match.group("value"))
        yield Setting(
            file=name, line=number, path=".".join([*section, key]), key=key.split(".")[-1], value=value
        )


def _strip_comment(value: str) -> str:
    text = value.strip()
    if text[:1] in ("'", '"'):
        end = text.find(text[0], 1)
        return text[: end + 1] if end > 0 else text
    return re.split(r"\s+[#;]", text, maxsplit=1)[0].strip()


def _flatten(name: str, node: Node, path: list[str]) -> Iterator[Setting]:
    if isinstance(node.value, dict):
        for key, child in node.value.items():
            yield from _flatten(name, child, [*path, key])
    elif isinstance(node.value, list):
        for item in node.value:
            if isinstance(item.value, str):
                env = _ENV_ITEM.match(item.value)
                if env is not None:
                    key = env.group("key")
                    yield Setting(
                        file=name,
                        line=item.line,
                        path=".".join([*path, key]),
                        key=key,
                        value=env.group("value"),
                    )
                elif path:
                    yield Setting(
                        file=name, line=item.line, path=".".join(path), key=path[-1], value=item.value
                    )
                continue
            if isinstance(item.value, dict):
                env_name, env_value = item.value.get("name"), item.value.get("value")
                # A Kubernetes env entry ({name: DEBUG, value: "true"}) is the setting DEBUG.
                if env_name is not None and env_value is not None and isinstance(env_name.value, str):
                    if isinstance(env_value.value, str):
                        yield Setting(
                            file=name,
                            line=env_value.line,
                            path=".".join([*path, env_name.value]),
                            key=env_name.value,
                            value=env_value.value,
                        )
                        continue
            yield from _flatten(name, item, path)
    elif path:
        yield Setting(file=name, line=node.line, path=".".join(path), key=path[-1], value=node.value)


def _convert(node: yaml.Node, budget: list[int]) -> Node:
    budget[0] -= 1
    line = node.start_mark.line + 1
    if budget[0] < 0:
        return Node(value="", line=line)
    if isinstance(node, yaml.MappingNode):
        mapping: dict[str, Node] = {}
        merged: list[Node] = []
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                continue
            child = _convert(value_node, budget)
            if key_node.value == "<<":
                merged.extend(child.value if isinstance(child.value, list) else [child])
                continue
            mapping[str(key_node.value)] = child
        for source in merged:
            if isinstance(source.value, dict):
                for key, child in source.value.items():
                    mapping.setdefault(key, child)
        return Node(value=mapping, line=line)
    if isinstance(node, yaml.SequenceNode):
        return Node(value=[_convert(item, budget) for item in node.value], line=line)
    scalar: Any = node.value
    if node.tag.endswith(":null"):
        scalar = ""
    return Node(value=str(scalar), line=line)
