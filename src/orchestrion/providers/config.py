"""Load the LLM configuration: which deployments exist, which routes try them in which order, prices.

The first of these that is set wins:

1. ``ORCHESTRION_LLM_ROUTES_FILE``: a YAML file with ``deployments:``, ``routes:`` and ``prices:``::

       deployments:
         primary:                  # options: see `options.DeploymentConfig`
           provider: groq
           model: llama-3.3-70b-versatile
           timeouts: {connect: 5, read: 60, total: 120}
           price: {input: 0.59, output: 0.79}
       routes:
         default: [primary, "openai:gpt-4.1-mini", "llama_cpp:smollm2-135m-instruct"]
       prices:
         "openai:gpt-4o": {input: 2.5, output: 10}

   Route entries are deployment names defined in the file or inline ``provider:model`` strings,
   which get default options.
2. ``ORCHESTRION_LLM_ROUTES``: routes in one line,
   ``default=openai:gpt-4.1-mini,llama_cpp:smollm2-135m-instruct;fast=groq:llama-3.1-8b-instant``.
3. ``ORCHESTRION_LLM``: ``auto`` (the default), ``none``, or one ``provider:model`` for every route.
   ``auto`` takes the first vendor in `presets.AUTO_ORDER` whose key variable is set and routes
   ``default``, ``fast`` and ``smart`` to its tier models, each followed by the embedded model; with
   no key set, every route is the embedded model alone, so the product works offline.

Everything is validated before anything is built: a mistake fails start-up with a
`ConfigurationError` naming the file or variable, the key path (``deployments.primary.provider``)
and, for an unknown value, the valid ones. Key values never appear in messages; only the names of
the variables that should hold them.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from orchestrion.exceptions import ConfigurationError
from orchestrion.providers.options import (
    DeploymentConfig,
    Price,
    Timeouts,
)
from orchestrion.providers.presets import AUTO_ORDER, EMBEDDED_MODEL, PRESETS, Preset, get_preset
from orchestrion.providers.prices import PriceTable
from orchestrion.settings import Settings

TIER_ROUTES = ("default", "fast", "smart")
EMBEDDED_DEPLOYMENT = f"llama_cpp:{EMBEDDED_MODEL}"

_TOP_KEYS = ("deployments", "routes", "prices")
_DEPLOYMENT_KEYS = (
    "provider",
    "model",
    "base_url",
    "api_key_env",
    "model_path",
    "threads",
    "stream",
    "price",
    "timeouts",
    "retry",
    "breaker",
    "limits",
)
_ROUTE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True, kw_only=True)
class ProvidersConfig:
    """The validated LLM configuration, before any adapter is built.

    Attributes:
        deployments: Deployment name -> its options (every deployment a route uses is here).
        routes: Route name -> deployment names, in fallback order. Empty: LLM analysis is off.
        prices: The price table, with the configured overrides.
        source: Where this came from, for the start-up log line.
    """

    deployments: dict[str, DeploymentConfig]
    routes: dict[str, tuple[str, ...]]
    prices: PriceTable = field(default_factory=PriceTable)
    source: str = ""

    def routed_deployments(self) -> list[str]:
        """The names of the deployments some route uses, each once, in first-use order."""
        return list(dict.fromkeys(name for chain in self.routes.values() for name in chain))


@dataclass(frozen=True)
class _Num:
    """How a numeric option is checked: its type, lower bound and whether null is allowed."""

    kind: type[int] | type[float]
    minimum: float
    exclusive: bool = False
    maximum: float | None = None
    nullable: bool = False


_POSITIVE = _Num(float, 0, exclusive=True)
_NON_NEGATIVE = _Num(float, 0)
_COUNT = _Num(int, 1)
_LIMIT = _Num(int, 1, nullable=True)
# The option sections of a deployment and the bounds of their fields (see `options.py`).
_SECTIONS: dict[str, dict[str, _Num]] = {
    "timeouts": {
        "connect": _POSITIVE,
        "read": _POSITIVE,
        "total": _Num(float, 0, exclusive=True, nullable=True),
    },
    "retry": {
        "max_attempts": _COUNT,
        "base_delay": _NON_NEGATIVE,
        "max_delay": _NON_NEGATIVE,
        "max_retry_after": _NON_NEGATIVE,
    },
    "breaker": {
        "consecutive_failures": _COUNT,
        "failure_rate": _Num(float, 0, exclusive=True, maximum=1),
        "window": _COUNT,
        "min_calls": _COUNT,
        "cooldown_seconds": _NON_NEGATIVE,
    },
    "limits": {"max_concurrent": _LIMIT, "requests_per_minute": _LIMIT, "tokens_per_minute": _LIMIT},
}


def _error(source: str, key: str, problem: str, **details: Any) -> ConfigurationError:
    where = f"{source}: {key}" if key else source
    return ConfigurationError(f"{where}: {problem}", details={"source": source, "key": key, **details})


def _preset(name: Any, source: str, key: str) -> Preset:
    if not isinstance(name, str) or not name.strip():
        raise _error(source, key, "names no provider", choices=sorted(PRESETS))
    try:
        return get_preset(name.strip())
    except ConfigurationError as exc:
        raise _error(source, key, exc.message, **exc.details) from None


def _number(value: Any, spec: _Num, source: str, key: str) -> float | int | None:
    if value is None:
        if spec.nullable:
            return None
        raise _error(source, key, "must be a number, not null")
    # bool is an int subclass: `true` is not a count.
    if isinstance(value, bool) or not isinstance(value, int | float):
        kind = "an integer" if spec.kind is int else "a number"
        # The type, not the value: a misplaced string could be anything, a key included.
        raise _error(source, key, f"must be {kind}, got {type(value).__name__}")
    if spec.kind is int and not isinstance(value, int):
        raise _error(source, key, f"must be an integer, got {value!r}")
    too_low = value <= spec.minimum if spec.exclusive else value < spec.minimum
    if too_low:
        bound = f"> {spec.minimum:g}" if spec.exclusive else f">= {spec.minimum:g}"
        raise _error(source, key, f"must be {bound}, got {value!r}")
    if spec.maximum is not None and value > spec.maximum:
        raise _error(source, key, f"must be <= {spec.maximum:g}, got {value!r}")
    return spec.kind(value)


def _mapping(value: Any, source: str, key: str) -> dict[Any, Any]:
    if not isinstance(value, dict):
        raise _error(source, key, f"must be a mapping, got {type(value).__name__}")
    return value


def _check_keys(raw: dict[Any, Any], valid: tuple[str, ...], source: str, key: str) -> None:
    for name in raw:
        if name not in valid:
            path = f"{key}.{name}" if key else str(name)
            raise _error(source, path, f"unknown key; valid keys: {', '.join(valid)}", choices=list(valid))


def _section(raw: Any, base: Any, name: str, source: str, key: str) -> Any:
    specs = _SECTIONS[name]
    values = _mapping(raw, source, key)
    _check_keys(values, tuple(specs), source, key)
    parsed = {k: _number(v, specs[k], source, f"{key}.{k}") for k, v in values.items()}
    return replace(base, **parsed)


def _price(raw: Any, source: str, key: str) -> Price:
    values = _mapping(raw, source, key)
    _check_keys(values, ("input", "output"), source, key)
    for needed in ("input", "output"):
        if needed not in values:
            raise _error(source, f"{key}.{needed}", "is missing (USD per million tokens)")
    amounts = [_number(values[k], _NON_NEGATIVE, source, f"{key}.{k}") for k in ("input", "output")]
    return Price(input_per_mtok=float(amounts[0] or 0), output_per_mtok=float(amounts[1] or 0))


def _text(raw: dict[Any, Any], name: str, source: str, key: str) -> str:
    value = raw.get(name)
    if not isinstance(value, str) or not value.strip():
        raise _error(source, f"{key}.{name}", "is missing" if value is None else "must be a non-empty string")
    return value.strip()


def default_deployment(name: str, preset: Preset, model: str, settings: Settings) -> DeploymentConfig:
    """A deployment of `model` at `preset` with the options the settings give every deployment.

    The read timeout is ``llm_timeout_seconds``; llama_cpp deployments take ``llama_model_path``
    and ``llama_threads``.
    """
    read = settings.llm_timeout_seconds
    total = Timeouts().total
    timeouts = Timeouts(read=read, total=None if total is None else max(total, read))
    if preset.kind != "llama_cpp":
        return DeploymentConfig(name=name, provider=preset.name, model=model, timeouts=timeouts)
    path = settings.llama_model_path
    return DeploymentConfig(
        name=name,
        provider=preset.name,
        model=model,
        model_path=str(path) if path is not None else None,
        threads=settings.llama_threads,
        timeouts=timeouts,
    )


def parse_deployment_string(text: str, *, settings: Settings, source: str, key: str = "") -> DeploymentConfig:
    """Parse ``provider:model`` (split at the first colon: ``ollama:qwen2.5:7b`` is Ollama's tag).

    Raises:
        ConfigurationError: On an unknown provider (naming the valid presets) or a missing model.
    """
    provider, sep, model = text.strip().partition(":")
    preset = _preset(provider, source, key)
    model = model.strip()
    if not sep or not model:
        example = f"{preset.name}:{preset.tiers.default}" if preset.tiers else f"{preset.name}:<model>"
        raise _error(
            source, key, f"{text.strip()!r} names no model; expected `provider:model`, e.g. {example}"
        )
    return default_deployment(f"{preset.name}:{model}", preset, model, settings)


def _file_deployment(name: str, raw: Any, settings: Settings, source: str) -> DeploymentConfig:
    key = f"deployments.{name}"
    values = _mapping(raw, source, key)
    _check_keys(values, _DEPLOYMENT_KEYS, source, key)
    preset = _preset(values.get("provider"), source, f"{key}.provider")
    model = _text(values, "model", source, key)
    config = default_deployment(name, preset, model, settings)
    changes: dict[str, Any] = {}
    if "base_url" in values:
        base_url = _text(values, "base_url", source, key)
        if preset.kind == "llama_cpp":
            raise _error(source, f"{key}.base_url", "does not apply to llama_cpp (an embedded model)")
        if not base_url.startswith(("http://", "https://")):
            raise _error(source, f"{key}.base_url", "must start with http:// or https://")
        changes["base_url"] = base_url.rstrip("/")
    env = values.get("api_key_env")
    if env is not None:
        # Never echo this value: someone may have pasted the key itself here.
        if not isinstance(env, str) or not _ENV_NAME.match(env):
            raise _error(
                source,
                f"{key}.api_key_env",
                "must be the name of an environment variable (letters, digits, underscores), "
                "not the key itself",
            )
        changes["api_key_env"] = env
    for local_only in ("model_path", "threads"):
        if local_only in values and preset.kind != "llama_cpp":
            raise _error(
                source, f"{key}.{local_only}", f"applies to llama_cpp deployments only, not {preset.name}"
            )
    if "model_path" in values:
        changes["model_path"] = _text(values, "model_path", source, key)
    if "threads" in values:
        changes["threads"] = _number(values["threads"], _COUNT, source, f"{key}.threads")
    if "stream" in values:
        if not isinstance(values["stream"], bool):
            raise _error(
                source, f"{key}.stream", f"must be true or false, got {type(values['stream']).__name__}"
            )
        if values["stream"] and not preset.streaming:
            raise _error(source, f"{key}.stream", f"{preset.name} does not stream")
        changes["stream"] = values["stream"]
    if "price" in values:
        changes["price"] = _price(values["price"], source, f"{key}.price")
    for section in _SECTIONS:
        if section in values:
            changes[section] = _section(
                values[section], getattr(config, section), section, source, f"{key}.{section}"
            )
    config = replace(config, **changes)
    if config.breaker.min_calls > config.breaker.window:
        raise _error(
            source,
            f"{key}.breaker.min_calls",
            f"({config.breaker.min_calls}) exceeds breaker.window ({config.breaker.window}): "
            "the failure rate would never count",
        )
    return config


def _route_chain(
    route: str,
    entries: Any,
    deployments: dict[str, DeploymentConfig],
    defined: set[str],
    settings: Settings,
    source: str,
    key: str,
) -> tuple[str, ...]:
    if not isinstance(route, str) or not _ROUTE_NAME.match(route):
        raise _error(source, key, "route names are letters, digits, '_', '.' and '-'")
    if isinstance(entries, str):
        entries = [entries]
    if not isinstance(entries, list) or not entries:
        raise _error(source, key, "is empty; list at least one deployment")
    chain: list[str] = []
    for index, entry in enumerate(entries):
        where = f"{key}[{index}]"
        if not isinstance(entry, str) or not entry.strip():
            raise _error(source, where, "must be a deployment name or a `provider:model` string")
        entry = entry.strip()
        if entry in defined:
            name = entry
        elif ":" in entry:
            inline = parse_deployment_string(entry, settings=settings, source=source, key=where)
            name = inline.name
            deployments.setdefault(name, inline)
        else:
            known = sorted(defined)
            raise _error(
                source,
                where,
                f"{entry!r} is neither a deployment defined under `deployments` "
                f"({', '.join(known) or 'none defined'}) nor a `provider:model` string",
                choices=known,
            )
        if name in chain:
            raise _error(source, where, f"lists {name!r} twice")
        chain.append(name)
    return tuple(chain)


def _require_default(routes: dict[str, tuple[str, ...]], source: str, key: str) -> None:
    if routes and "default" not in routes:
        raise _error(
            source,
            key,
            f"no `default` route (defined: {', '.join(routes)}); agents without a route of their own use it",
        )


def load_routes_file(
    path: Path, *, settings: Settings, environ: Mapping[str, str] = os.environ
) -> ProvidersConfig:
    """Load and validate a routes file (see the module docstring), including its keys' presence.

    Raises:
        ConfigurationError: On an unreadable file, bad YAML or any invalid entry, naming it.
    """
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise _error(source, "", f"cannot read the LLM routes file: {exc.strerror or exc}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise _error(source, "", f"invalid YAML{at}") from None
    data = _mapping(data if data is not None else {}, source, "")
    _check_keys(data, _TOP_KEYS, source, "")
    raw_deployments = _mapping(data.get("deployments") or {}, source, "deployments")
    deployments: dict[str, DeploymentConfig] = {}
    for name, raw in raw_deployments.items():
        if not isinstance(name, str) or not name.strip():
            raise _error(source, f"deployments.{name}", "deployment names must be non-empty strings")
        deployments[name] = _file_deployment(name, raw, settings, source)
    raw_routes = _mapping(data.get("routes") or {}, source, "routes")
    if not raw_routes:
        raise _error(source, "routes", "no routes defined; expected e.g. `routes: {default: [primary]}`")
    defined = set(deployments)
    routes = {
        route: _route_chain(route, entries, deployments, defined, settings, source, f"routes.{route}")
        for route, entries in raw_routes.items()
    }
    _require_default(routes, source, "routes.default")
    overrides: dict[str, Price] = {}
    for key, raw in _mapping(data.get("prices") or {}, source, "prices").items():
        where = f"prices.{key}"
        provider, sep, model = str(key).partition(":")
        preset = _preset(provider, source, where)
        if not sep or not model.strip():
            raise _error(source, where, "price keys are `provider:model`")
        overrides[f"{preset.name}:{model.strip()}"] = _price(raw, source, where)
    config = ProvidersConfig(
        deployments=deployments, routes=routes, prices=PriceTable(overrides), source=f"routes file {source}"
    )
    check_credentials(config, settings=settings, environ=environ, source=source, defined=defined)
    return config


def parse_routes_setting(
    text: str, *, settings: Settings, environ: Mapping[str, str] = os.environ
) -> ProvidersConfig:
    """Parse ``ORCHESTRION_LLM_ROUTES`` (``route=provider:model,...;route=...``)."""
    source = "ORCHESTRION_LLM_ROUTES"
    deployments: dict[str, DeploymentConfig] = {}
    routes: dict[str, tuple[str, ...]] = {}
    for part in (p.strip() for p in text.split(";")):
        if not part:
            continue
        route, sep, entries = part.partition("=")
        route = route.strip()
        if not sep or not route:
            raise _error(source, part, "expected `route=provider:model[,provider:model...]`")
        if route in routes:
            raise _error(source, route, "is defined twice")
        chain = [e.strip() for e in entries.split(",") if e.strip()]
        for entry in chain:
            if ":" not in entry:
                raise _error(source, route, f"{entry!r} is not a `provider:model` string")
        routes[route] = _route_chain(route, chain, deployments, set(), settings, source, route)
    if not routes:
        raise _error(source, "", "defines no routes; expected e.g. `default=openai:gpt-4.1-mini`")
    _require_default(routes, source, "default")
    config = ProvidersConfig(deployments=deployments, routes=routes, source=source)
    check_credentials(config, settings=settings, environ=environ, source=source)
    return config


def auto_config(settings: Settings, *, environ: Mapping[str, str] = os.environ) -> ProvidersConfig:
    """``ORCHESTRION_LLM=auto``: the first keyed vendor's tiers, each route ending with the embedded model."""
    embedded = default_deployment(EMBEDDED_DEPLOYMENT, PRESETS["llama_cpp"], EMBEDDED_MODEL, settings)
    for name in AUTO_ORDER:
        preset = PRESETS[name]
        if preset.tiers is None or not preset.api_key_env or not environ.get(preset.api_key_env, "").strip():
            continue
        deployments: dict[str, DeploymentConfig] = {}
        routes: dict[str, tuple[str, ...]] = {}
        for route in TIER_ROUTES:
            model = preset.tiers.for_route(route)
            deployment = default_deployment(f"{name}:{model}", preset, model, settings)
            deployments.setdefault(deployment.name, deployment)
            routes[route] = (deployment.name, embedded.name)
        deployments[embedded.name] = embedded
        return ProvidersConfig(
            deployments=deployments, routes=routes, source=f"auto: {name} (from {preset.api_key_env})"
        )
    return ProvidersConfig(
        deployments={embedded.name: embedded},
        routes=dict.fromkeys(TIER_ROUTES, (embedded.name,)),
        source="auto: no vendor key set, embedded model only",
    )


def load_providers_config(settings: Settings, *, environ: Mapping[str, str] = os.environ) -> ProvidersConfig:
    """The LLM configuration in force: the routes file, else ``llm_routes``, else ``llm``.

    Args:
        settings: The settings.
        environ: Where key (and base URL) variables are read; tests inject their own.

    Returns:
        The validated configuration; `routes` is empty when LLM analysis is off (``llm=none``).

    Raises:
        ConfigurationError: On any invalid entry, or a missing key for a vendor a route uses.
    """
    if settings.llm_routes_file is not None:
        return load_routes_file(settings.llm_routes_file, settings=settings, environ=environ)
    if settings.llm_routes is not None and settings.llm_routes.strip():
        return parse_routes_setting(settings.llm_routes, settings=settings, environ=environ)
    value = settings.llm.strip()
    if value.lower() == "auto":
        return auto_config(settings, environ=environ)
    if value.lower() == "none":
        return ProvidersConfig(deployments={}, routes={}, source="ORCHESTRION_LLM=none")
    source = "ORCHESTRION_LLM"
    if not value:
        raise _error(source, "", "is empty; use auto, none or provider:model")
    deployment = parse_deployment_string(value, settings=settings, source=source)
    config = ProvidersConfig(
        deployments={deployment.name: deployment},
        routes=dict.fromkeys(TIER_ROUTES, (deployment.name,)),
        source=f"{source}={deployment.name}",
    )
    check_credentials(config, settings=settings, environ=environ, source=source)
    return config


def read_api_key(
    deployment: DeploymentConfig,
    preset: Preset,
    *,
    environ: Mapping[str, str] = os.environ,
    settings: Settings | None = None,
) -> str | None:
    """The deployment's API key, or None when none is configured.

    An explicit ``api_key_env`` is the only place looked at (so a key meant for one server is never
    sent to another); else the preset's variable; the generic ``openai_compat`` preset falls back
    to ``ORCHESTRION_OPENAI_API_KEY``.
    """
    variable = deployment.api_key_env or preset.api_key_env
    if variable is not None:
        return environ.get(variable, "").strip() or None
    if preset.name == "openai_compat" and settings is not None and settings.openai_api_key is not None:
        return settings.openai_api_key.get_secret_value().strip() or None
    return None


def resolve_base_url(
    deployment: DeploymentConfig,
    preset: Preset,
    *,
    environ: Mapping[str, str] = os.environ,
    settings: Settings | None = None,
) -> str | None:
    """The API root: the deployment's ``base_url``, else the preset's variable, else its default.

    Returns None when nothing gives one (Azure without ``AZURE_OPENAI_ENDPOINT``).
    """
    if deployment.base_url:
        return deployment.base_url.rstrip("/")
    value = environ.get(preset.base_url_env, "").strip() if preset.base_url_env else ""
    if value:
        if "://" not in value:
            # OLLAMA_HOST is often a bare host[:port]; the ollama CLI assumes http and port 11434.
            value = ("http://" if preset.local else "https://") + value
            default_port = urlsplit(preset.base_url or "").port
            parts = urlsplit(value)
            if parts.port is None and default_port is not None:
                value = f"{parts.scheme}://{parts.netloc}:{default_port}{parts.path}"
        return value.rstrip("/") + preset.base_url_env_suffix
    if preset.name == "openai_compat" and settings is not None:
        return settings.openai_base_url.rstrip("/")
    return preset.base_url


def check_credentials(
    config: ProvidersConfig,
    *,
    settings: Settings,
    environ: Mapping[str, str] = os.environ,
    source: str,
    defined: set[str] | None = None,
) -> None:
    """Refuse a routed deployment whose key or API root is missing, naming the variable to set."""
    for name in config.routed_deployments():
        deployment = config.deployments[name]
        preset = get_preset(deployment.provider)
        key = f"deployments.{name}" if defined and name in defined else f"deployment {name}"
        if (
            preset.kind != "llama_cpp"
            and resolve_base_url(deployment, preset, environ=environ, settings=settings) is None
        ):
            raise _error(
                source,
                key,
                f"{preset.name} needs its API root: set {preset.base_url_env} or give `base_url`",
                env=preset.base_url_env,
            )
        if (
            preset.key_required
            and read_api_key(deployment, preset, environ=environ, settings=settings) is None
        ):
            variable = deployment.api_key_env or preset.api_key_env
            raise _error(
                source,
                key,
                f"{preset.name} needs an API key: the environment variable {variable} is not set",
                env=variable,
            )
