from __future__ import annotations

import os
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr

from orchestrion.exceptions import ConfigurationError
from orchestrion.providers.config import (
    EMBEDDED_DEPLOYMENT,
    ProvidersConfig,
    load_providers_config,
    read_api_key,
    resolve_base_url,
)
from orchestrion.providers.options import (
    BreakerConfig,
    DeploymentConfig,
    LimitsConfig,
    Price,
    RetryConfig,
    Timeouts,
)
from orchestrion.providers.presets import get_preset, preset_names
from orchestrion.settings import Settings

SECRET = "sk-SECRET-do-not-print-0123456789"
KEY_VARIABLES = (
    "OPENAI_API_KEY",
    "ANTHROPIC_API_KEY",
    "GEMINI_API_KEY",
    "GROQ_API_KEY",
    "MY_GROQ_KEY",
    "AZURE_OPENAI_API_KEY",
)
ALL_KEYS = dict.fromkeys(KEY_VARIABLES, SECRET)
ROUTE_P = "\nroutes: {default: [p]}"


@pytest.fixture(autouse=True)
def _no_orchestrion_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    # Settings read ORCHESTRION_* variables; the developer's own must not leak into these tests.
    for name in list(os.environ):
        if name.startswith("ORCHESTRION_"):
            monkeypatch.delenv(name)
    yield


def _settings(**overrides: object) -> Settings:
    return Settings(_env_file=None, **overrides)  # type: ignore[arg-type]


def _file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "routes.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def _load_file(tmp_path: Path, text: str, environ: dict[str, str] | None = None) -> ProvidersConfig:
    path = _file(tmp_path, text)
    return load_providers_config(_settings(llm_routes_file=path), environ=environ or {})


def _refused(tmp_path: Path, text: str, environ: dict[str, str] | None = None) -> ConfigurationError:
    with pytest.raises(ConfigurationError) as caught:
        _load_file(tmp_path, text, environ)
    return caught.value


FULL_EXAMPLE = """
deployments:
  primary:
    provider: groq
    model: llama-3.3-70b-versatile
    api_key_env: MY_GROQ_KEY
    base_url: https://groq.example/openai/v1/
    stream: true
    timeouts: {connect: 5, read: 60, total: 120}
    retry: {max_attempts: 3, base_delay: 0.5, max_delay: 20, max_retry_after: 30}
    breaker: {consecutive_failures: 5, failure_rate: 0.5, window: 20, min_calls: 10, cooldown_seconds: 30}
    limits: {max_concurrent: 8, requests_per_minute: 30, tokens_per_minute: 60000}
    price: {input: 0.59, output: 0.79}
  spare:
    provider: anthropic
    model: claude-haiku-4-5
routes:
  default: [primary, "openai:gpt-4o-mini", "llama_cpp:smollm2-135m-instruct"]
  smart: [spare, primary]
prices:
  "openai:gpt-4o": {input: 2, output: 8}
"""


# -- the routes file --------------------------------------------------------------------------------


def test_routes_file_builds_every_option_of_a_named_deployment(tmp_path: Path) -> None:
    config = load_providers_config(_settings(llm_routes_file=_file(tmp_path, FULL_EXAMPLE)), environ=ALL_KEYS)

    assert config.deployments["primary"] == DeploymentConfig(
        name="primary",
        provider="groq",
        model="llama-3.3-70b-versatile",
        api_key_env="MY_GROQ_KEY",
        base_url="https://groq.example/openai/v1",
        stream=True,
        timeouts=Timeouts(connect=5, read=60, total=120),
        retry=RetryConfig(max_attempts=3, base_delay=0.5, max_delay=20, max_retry_after=30),
        breaker=BreakerConfig(
            consecutive_failures=5, failure_rate=0.5, window=20, min_calls=10, cooldown_seconds=30
        ),
        limits=LimitsConfig(max_concurrent=8, requests_per_minute=30, tokens_per_minute=60000),
        price=Price(input_per_mtok=0.59, output_per_mtok=0.79),
    )
    assert config.routes == {
        "default": ("primary", "openai:gpt-4o-mini", EMBEDDED_DEPLOYMENT),
        "smart": ("spare", "primary"),
    }
    assert str(tmp_path) in config.source


def test_inline_route_entries_get_default_options(tmp_path: Path) -> None:
    config = load_providers_config(
        _settings(llm_routes_file=_file(tmp_path, FULL_EXAMPLE), llm_timeout_seconds=45, llama_threads=2),
        environ=ALL_KEYS,
    )

    inline = config.deployments["openai:gpt-4o-mini"]
    assert (inline.provider, inline.model, inline.stream, inline.price) == (
        "openai",
        "gpt-4o-mini",
        False,
        None,
    )
    assert inline.timeouts.read == 45
    assert inline.retry == RetryConfig()
    embedded = config.deployments[EMBEDDED_DEPLOYMENT]
    assert (embedded.provider, embedded.model, embedded.threads) == ("llama_cpp", "smollm2-135m-instruct", 2)


def test_routes_file_price_overrides_reach_the_price_table(tmp_path: Path) -> None:
    config = load_providers_config(_settings(llm_routes_file=_file(tmp_path, FULL_EXAMPLE)), environ=ALL_KEYS)

    assert config.prices.price_for("openai", "gpt-4o-2024-08-06") == Price(
        input_per_mtok=2, output_per_mtok=8
    )
    assert config.prices.price_for_deployment(config.deployments["primary"]) == Price(
        input_per_mtok=0.59, output_per_mtok=0.79
    )


def test_a_partial_section_keeps_the_other_defaults(tmp_path: Path) -> None:
    path = _file(
        tmp_path,
        """
        deployments:
          local: {provider: ollama, model: "qwen2.5:7b", timeouts: {connect: 2, total: null}}
        routes: {default: [local]}
        """,
    )

    config = load_providers_config(_settings(llm_routes_file=path, llm_timeout_seconds=30), environ={})

    assert config.deployments["local"].timeouts == Timeouts(connect=2, read=30, total=None)


def test_unused_deployments_need_no_key(tmp_path: Path) -> None:
    config = _load_file(
        tmp_path,
        """
        deployments:
          unused: {provider: openai, model: gpt-4o}
        routes: {default: ["llama_cpp:smollm2-135m-instruct"]}
        """,
    )

    assert config.routed_deployments() == [EMBEDDED_DEPLOYMENT]


def test_a_route_may_be_a_single_string(tmp_path: Path) -> None:
    config = _load_file(tmp_path, "routes: {default: 'ollama:llama3.2'}")

    assert config.routes == {"default": ("ollama:llama3.2",)}


INVALID_FILES = [
    pytest.param(
        "extras: {}\nroutes: {default: ['ollama:x']}",
        "extras",
        "valid keys: deployments, routes, prices",
        id="top-key",
    ),
    pytest.param("- a\n- b", "", "must be a mapping", id="root-list"),
    pytest.param(
        "deployments: [a]\nroutes: {default: ['ollama:x']}",
        "deployments",
        "must be a mapping",
        id="deployments-list",
    ),
    pytest.param(
        "deployments: {p: groq}\nroutes: {default: [p]}",
        "deployments.p",
        "must be a mapping",
        id="deployment-string",
    ),
    pytest.param(
        "deployments: {p: {provider: groq, modle: x}}" + ROUTE_P,
        "deployments.p.modle",
        "unknown key; valid keys: provider, model",
        id="deployment-key",
    ),
    pytest.param(
        "deployments: {p: {model: x}}" + ROUTE_P,
        "deployments.p.provider",
        "names no provider",
        id="no-provider",
    ),
    pytest.param(
        "deployments: {p: {provider: groq}}" + ROUTE_P,
        "deployments.p.model",
        "is missing",
        id="no-model",
    ),
    pytest.param(
        "deployments: {p: {provider: groq, model: ''}}" + ROUTE_P,
        "deployments.p.model",
        "non-empty string",
        id="empty-model",
    ),
    pytest.param(
        "routes: {default: [secondary]}",
        "routes.default[0]",
        "'secondary' is neither a deployment",
        id="undefined-deployment",
    ),
    pytest.param(
        "routes: {default: ['ollama:x', 'openai:']}",
        "routes.default[1]",
        "names no model",
        id="inline-no-model",
    ),
    pytest.param(
        "routes: {default: [42]}", "routes.default[0]", "must be a deployment name", id="entry-not-string"
    ),
    pytest.param("routes: {default: []}", "routes.default", "is empty", id="empty-route"),
    pytest.param(
        "routes: {default: ['ollama:x', 'ollama:x']}", "routes.default[1]", "twice", id="duplicate-entry"
    ),
    pytest.param(
        "routes: {'bad route': ['ollama:x'], default: ['ollama:x']}",
        "routes.bad route",
        "route names",
        id="route-name",
    ),
    pytest.param(
        "routes: {fast: ['ollama:x']}",
        "routes.default",
        "no `default` route (defined: fast)",
        id="no-default",
    ),
    pytest.param(
        "deployments: {p: {provider: ollama, model: x}}", "routes", "no routes defined", id="no-routes"
    ),
    pytest.param(
        "deployments: {p: {provider: ollama, model: x, timeouts: {read: -1}}}" + ROUTE_P,
        "deployments.p.timeouts.read",
        "must be > 0, got -1",
        id="negative-timeout",
    ),
    pytest.param(
        "deployments: {p: {provider: ollama, model: x, timeouts: {conect: 1}}}" + ROUTE_P,
        "deployments.p.timeouts.conect",
        "valid keys: connect, read, total",
        id="timeouts-key",
    ),
    pytest.param(
        "deployments: {p: {provider: ollama, model: x, timeouts: {connect: '5'}}}" + ROUTE_P,
        "deployments.p.timeouts.connect",
        "must be a number, got str",
        id="string-number",
    ),
    pytest.param(
        "deployments: {p: {provider: ollama, model: x, retry: {max_attempts: 0}}}" + ROUTE_P,
        "deployments.p.retry.max_attempts",
        "must be >= 1, got 0",
        id="zero-attempts",
    ),
    pytest.param(
        "deployments: {p: {provider: ollama, model: x, retry: {max_attempts: 2.5}}}" + ROUTE_P,
        "deployments.p.retry.max_attempts",
        "must be an integer",
        id="fractional-attempts",
    ),
    pytest.param(
        "deployments: {p: {provider: ollama, model: x, retry: {base_delay: null}}}" + ROUTE_P,
        "deployments.p.retry.base_delay",
        "not null",
        id="null-delay",
    ),
    pytest.param(
        "deployments: {p: {provider: ollama, model: x, breaker: {failure_rate: 1.5}}}" + ROUTE_P,
        "deployments.p.breaker.failure_rate",
        "must be <= 1",
        id="rate-above-one",
    ),
    pytest.param(
        "deployments: {p: {provider: ollama, model: x, breaker: {window: 5, min_calls: 10}}}" + ROUTE_P,
        "deployments.p.breaker.min_calls",
        "exceeds breaker.window",
        id="min-calls-over-window",
    ),
    pytest.param(
        "deployments: {p: {provider: ollama, model: x, limits: {max_concurrent: true}}}" + ROUTE_P,
        "deployments.p.limits.max_concurrent",
        "must be an integer, got bool",
        id="bool-limit",
    ),
    pytest.param(
        "deployments: {p: {provider: ollama, model: x, price: {input: 1}}}" + ROUTE_P,
        "deployments.p.price.output",
        "is missing",
        id="price-no-output",
    ),
    pytest.param(
        "deployments: {p: {provider: ollama, model: x, price: {input: -1, output: 1}}}" + ROUTE_P,
        "deployments.p.price.input",
        "must be >= 0",
        id="negative-price",
    ),
    pytest.param(
        "deployments: {p: {provider: ollama, model: x, stream: 'yes'}}" + ROUTE_P,
        "deployments.p.stream",
        "must be true or false",
        id="stream-not-bool",
    ),
    pytest.param(
        "deployments: {p: {provider: llama_cpp, model: x, stream: true}}" + ROUTE_P,
        "deployments.p.stream",
        "llama_cpp does not stream",
        id="stream-llama",
    ),
    pytest.param(
        "deployments: {p: {provider: ollama, model: x, threads: 4}}" + ROUTE_P,
        "deployments.p.threads",
        "llama_cpp deployments only",
        id="threads-on-ollama",
    ),
    pytest.param(
        "deployments: {p: {provider: llama_cpp, model: x, threads: 0}}" + ROUTE_P,
        "deployments.p.threads",
        "must be >= 1",
        id="zero-threads",
    ),
    pytest.param(
        "deployments: {p: {provider: llama_cpp, model: x, base_url: 'http://x'}}" + ROUTE_P,
        "deployments.p.base_url",
        "does not apply to llama_cpp",
        id="base-url-on-llama",
    ),
    pytest.param(
        "deployments: {p: {provider: ollama, model: x, base_url: 'gpu:11434'}}" + ROUTE_P,
        "deployments.p.base_url",
        "must start with http:// or https://",
        id="base-url-scheme",
    ),
    pytest.param(
        "prices: {'openai:gpt-4o': {input: 1, output: 1, cached: 0.5}}\nroutes: {default: ['ollama:x']}",
        "prices.openai:gpt-4o.cached",
        "valid keys: input, output",
        id="price-key",
    ),
    pytest.param(
        "prices: {'openai': {input: 1, output: 1}}\nroutes: {default: ['ollama:x']}",
        "prices.openai",
        "price keys are `provider:model`",
        id="price-without-model",
    ),
]


@pytest.mark.parametrize(("text", "key", "problem"), INVALID_FILES)
def test_invalid_routes_file_names_the_file_the_key_path_and_the_problem(
    tmp_path: Path, text: str, key: str, problem: str
) -> None:
    error = _refused(tmp_path, text, ALL_KEYS)

    path = str(tmp_path / "routes.yaml")
    assert error.message.startswith(f"{path}: {key}" if key else path)
    assert problem in error.message
    assert error.details["source"] == path
    assert error.details["key"] == key


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("deployments: {p: {provider: grok, model: x}}" + ROUTE_P, "deployments.p.provider"),
        ("routes: {default: ['opnai:gpt-4o']}", "routes.default[0]"),
        (
            "prices: {'opnai:gpt-4o': {input: 1, output: 1}}\nroutes: {default: ['ollama:x']}",
            "prices.opnai:gpt-4o",
        ),
    ],
)
def test_unknown_preset_names_the_entry_and_lists_every_valid_preset(
    tmp_path: Path, text: str, key: str
) -> None:
    error = _refused(tmp_path, text)

    assert f": {key}: unknown LLM provider" in error.message
    for name in preset_names():
        assert name in error.message
    assert error.details["choices"] == preset_names()


def test_a_route_naming_an_undefined_deployment_lists_the_defined_ones(tmp_path: Path) -> None:
    error = _refused(
        tmp_path,
        "deployments: {primary: {provider: ollama, model: x}, backup: {provider: vllm, model: y}}\n"
        "routes: {default: [primray]}",
    )

    assert "(backup, primary)" in error.message
    assert error.details["choices"] == ["backup", "primary"]


def test_invalid_yaml_names_the_file_and_line(tmp_path: Path) -> None:
    error = _refused(tmp_path, "routes:\n  default: [a\n  fast: b: c\n")

    assert error.message.startswith(str(tmp_path / "routes.yaml"))
    assert "invalid YAML at line" in error.message


def test_missing_routes_file_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"

    with pytest.raises(ConfigurationError, match="cannot read the LLM routes file") as caught:
        load_providers_config(_settings(llm_routes_file=missing), environ={})

    assert str(missing) in caught.value.message


# -- keys -------------------------------------------------------------------------------------------


def test_a_routed_deployment_without_its_key_names_the_variable(tmp_path: Path) -> None:
    error = _refused(
        tmp_path,
        "deployments: {primary: {provider: groq, model: llama-3.3-70b-versatile}}\n"
        "routes: {default: [primary]}",
    )

    assert "deployments.primary" in error.message
    assert "GROQ_API_KEY" in error.message
    assert error.details["env"] == "GROQ_API_KEY"


def test_a_custom_key_variable_is_the_one_named(tmp_path: Path) -> None:
    error = _refused(
        tmp_path,
        "deployments: {primary: {provider: groq, model: m, api_key_env: MY_GROQ_KEY}}\n"
        "routes: {default: [primary]}",
        {"GROQ_API_KEY": SECRET},
    )

    assert "MY_GROQ_KEY" in error.message


def test_an_inline_deployment_without_its_key_is_refused(tmp_path: Path) -> None:
    error = _refused(tmp_path, "routes: {default: ['ollama:x'], smart: ['anthropic:claude-opus-4-5']}")

    assert "anthropic:claude-opus-4-5" in error.message
    assert "ANTHROPIC_API_KEY" in error.message


def test_an_empty_key_variable_counts_as_missing(tmp_path: Path) -> None:
    error = _refused(tmp_path, "routes: {default: ['openai:gpt-4o']}", {"OPENAI_API_KEY": "  "})

    assert "OPENAI_API_KEY" in error.message


def test_azure_without_an_endpoint_names_the_variable(tmp_path: Path) -> None:
    error = _refused(tmp_path, "routes: {default: ['azure:my-gpt4o']}", ALL_KEYS)

    assert "AZURE_OPENAI_ENDPOINT" in error.message


def test_azure_with_a_base_url_needs_no_endpoint_variable(tmp_path: Path) -> None:
    config = _load_file(
        tmp_path,
        "deployments: {az: {provider: azure, model: my-gpt4o, base_url: 'https://r.openai.azure.com/openai/v1'}}\n"
        "routes: {default: [az]}",
        ALL_KEYS,
    )

    assert config.routes == {"default": ("az",)}


def test_api_key_env_holding_a_key_is_refused_without_echoing_it(tmp_path: Path) -> None:
    error = _refused(
        tmp_path,
        f"deployments: {{p: {{provider: groq, model: m, api_key_env: '{SECRET}'}}}}" + ROUTE_P,
    )

    assert "deployments.p.api_key_env" in error.message
    assert "not the key itself" in error.message
    assert SECRET not in error.message
    assert SECRET not in repr(error.details)


@pytest.mark.parametrize("text", [param.values[0] for param in INVALID_FILES])
def test_no_error_ever_contains_a_key_value(tmp_path: Path, text: object) -> None:
    error = _refused(tmp_path, str(text), ALL_KEYS)

    assert SECRET not in error.message
    assert SECRET not in repr(error.details)


# -- the compact routes setting ---------------------------------------------------------------------


def test_llm_routes_setting_defines_routes_of_inline_deployments() -> None:
    settings = _settings(
        llm_routes=(
            "default=openai:gpt-4o-mini, llama_cpp:smollm2-135m-instruct ; fast=groq:llama-3.1-8b-instant;"
        )
    )

    config = load_providers_config(settings, environ=ALL_KEYS)

    assert config.routes == {
        "default": ("openai:gpt-4o-mini", EMBEDDED_DEPLOYMENT),
        "fast": ("groq:llama-3.1-8b-instant",),
    }
    assert set(config.deployments) == {"openai:gpt-4o-mini", EMBEDDED_DEPLOYMENT, "groq:llama-3.1-8b-instant"}
    assert config.source == "ORCHESTRION_LLM_ROUTES"


def test_a_deployment_on_several_routes_is_one_deployment() -> None:
    config = load_providers_config(
        _settings(llm_routes="default=ollama:a,ollama:b;fast=ollama:b"), environ={}
    )

    assert config.routed_deployments() == ["ollama:a", "ollama:b"]


@pytest.mark.parametrize(
    ("value", "key", "problem"),
    [
        ("fast=ollama:a", "default", "no `default` route (defined: fast)"),
        ("default=", "default", "is empty"),
        ("default", "default", "expected `route=provider:model"),
        ("default=ollama:a;default=ollama:b", "default", "is defined twice"),
        ("default=primary", "default", "'primary' is not a `provider:model` string"),
        ("default=ollama:a,groq", "default", "'groq' is not a `provider:model` string"),
        ("default=openai:", "default[0]", "names no model"),
        (";", "", "defines no routes"),
    ],
)
def test_invalid_llm_routes_setting_names_the_route(value: str, key: str, problem: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        load_providers_config(_settings(llm_routes=value), environ=ALL_KEYS)

    prefix = f"ORCHESTRION_LLM_ROUTES: {key}" if key else "ORCHESTRION_LLM_ROUTES"
    assert caught.value.message.startswith(prefix)
    assert problem in caught.value.message


def test_llm_routes_setting_with_an_unknown_preset_lists_the_valid_ones() -> None:
    with pytest.raises(ConfigurationError) as caught:
        load_providers_config(_settings(llm_routes="default=opnai:gpt-4o"), environ={})

    assert all(name in caught.value.message for name in preset_names())


def test_llm_routes_setting_refuses_a_missing_key() -> None:
    with pytest.raises(ConfigurationError, match="XAI_API_KEY"):
        load_providers_config(_settings(llm_routes="default=xai:grok-4"), environ={})


# -- precedence -------------------------------------------------------------------------------------


def test_routes_file_wins_over_the_routes_setting_and_llm(tmp_path: Path) -> None:
    path = _file(tmp_path, "routes: {default: ['ollama:from-file']}")
    settings = _settings(llm_routes_file=path, llm_routes="default=ollama:from-env", llm="vllm:from-llm")

    assert load_providers_config(settings, environ={}).routes == {"default": ("ollama:from-file",)}


def test_routes_setting_wins_over_llm() -> None:
    settings = _settings(llm_routes="default=ollama:from-env", llm="vllm:from-llm")

    assert load_providers_config(settings, environ={}).routes == {"default": ("ollama:from-env",)}


def test_blank_routes_settings_count_as_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORCHESTRION_LLM_ROUTES_FILE", "")
    monkeypatch.setenv("ORCHESTRION_LLM_ROUTES", "  ")
    settings = _settings(llm="vllm:from-llm")

    assert settings.llm_routes_file is None
    assert settings.llm_routes is None
    assert load_providers_config(settings, environ={}).routes["default"] == ("vllm:from-llm",)


def test_routes_settings_are_read_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    path = _file(tmp_path, "routes: {default: ['ollama:x']}")
    monkeypatch.setenv("ORCHESTRION_LLM_ROUTES_FILE", str(path))
    monkeypatch.setenv("ORCHESTRION_LLM_ROUTES", "default=ollama:y")

    settings = _settings()

    assert settings.llm_routes_file == path
    assert settings.llm_routes == "default=ollama:y"


# -- the llm setting --------------------------------------------------------------------------------


def test_llm_defaults_to_auto() -> None:
    assert _settings().llm == "auto"


def test_auto_without_any_key_routes_everything_to_the_embedded_model() -> None:
    config = load_providers_config(_settings(), environ={"OPENAI_API_KEY": "", "UNRELATED": "x"})

    assert config.routes == dict.fromkeys(("default", "fast", "smart"), (EMBEDDED_DEPLOYMENT,))
    assert list(config.deployments) == [EMBEDDED_DEPLOYMENT]
    assert "embedded" in config.source


def test_auto_uses_the_tiers_of_the_vendor_whose_key_is_set_then_the_embedded_model() -> None:
    config = load_providers_config(_settings(), environ={"OPENAI_API_KEY": SECRET})

    assert config.routes == {
        "default": ("openai:gpt-4.1-mini", EMBEDDED_DEPLOYMENT),
        "fast": ("openai:gpt-4.1-nano", EMBEDDED_DEPLOYMENT),
        "smart": ("openai:gpt-4.1", EMBEDDED_DEPLOYMENT),
    }
    assert "OPENAI_API_KEY" in config.source
    assert SECRET not in config.source


@pytest.mark.parametrize(
    ("keys", "chosen"),
    [
        (("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GEMINI_API_KEY"), "anthropic"),
        (("GEMINI_API_KEY", "OPENAI_API_KEY"), "openai"),
        (("GROQ_API_KEY", "GEMINI_API_KEY"), "gemini"),
        (("PERPLEXITY_API_KEY", "MISTRAL_API_KEY"), "mistral"),
    ],
)
def test_auto_follows_the_documented_preference_order(keys: tuple[str, ...], chosen: str) -> None:
    config = load_providers_config(_settings(), environ=dict.fromkeys(keys, SECRET))

    assert {config.deployments[chain[0]].provider for chain in config.routes.values()} == {chosen}


def test_auto_never_picks_azure_whose_model_names_are_deployment_names() -> None:
    environ = {"AZURE_OPENAI_API_KEY": SECRET, "AZURE_OPENAI_ENDPOINT": "https://r.openai.azure.com"}

    config = load_providers_config(_settings(), environ=environ)

    assert config.routed_deployments() == [EMBEDDED_DEPLOYMENT]


def test_auto_passes_llama_settings_to_the_embedded_model(tmp_path: Path) -> None:
    model = tmp_path / "m.gguf"
    config = load_providers_config(_settings(llama_model_path=model, llama_threads=3), environ={})

    embedded = config.deployments[EMBEDDED_DEPLOYMENT]
    assert (embedded.model_path, embedded.threads) == (str(model), 3)


def test_llm_none_disables_llm_analysis() -> None:
    config = load_providers_config(_settings(llm="None"), environ=ALL_KEYS)

    assert config.routes == {}
    assert config.deployments == {}


def test_one_deployment_string_serves_every_route() -> None:
    config = load_providers_config(
        _settings(llm="groq:llama-3.3-70b-versatile"), environ={"GROQ_API_KEY": SECRET}
    )

    assert config.routes == dict.fromkeys(("default", "fast", "smart"), ("groq:llama-3.3-70b-versatile",))


def test_a_model_may_contain_colons() -> None:
    config = load_providers_config(_settings(llm="ollama:qwen2.5:7b"), environ={})

    assert config.deployments["ollama:qwen2.5:7b"].model == "qwen2.5:7b"


def test_a_deployment_string_gets_the_read_timeout_from_the_settings() -> None:
    config = load_providers_config(_settings(llm="ollama:x", llm_timeout_seconds=7), environ={})

    assert config.deployments["ollama:x"].timeouts == Timeouts(read=7)


def test_a_deployment_string_for_a_keyed_vendor_without_its_key_is_refused() -> None:
    with pytest.raises(ConfigurationError) as caught:
        load_providers_config(_settings(llm="openai:gpt-4o"), environ={"GROQ_API_KEY": SECRET})

    assert caught.value.message.startswith("ORCHESTRION_LLM")
    assert "OPENAI_API_KEY" in caught.value.message
    assert SECRET not in caught.value.message


@pytest.mark.parametrize("value", ["anthropics:claude", "gpt-4o"])
def test_unknown_provider_in_llm_lists_the_presets(value: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        load_providers_config(_settings(llm=value), environ={})

    assert caught.value.message.startswith("ORCHESTRION_LLM: unknown LLM provider")
    assert all(name in caught.value.message for name in preset_names())


@pytest.mark.parametrize(
    ("value", "example"), [("groq:", "groq:llama-3.3-70b-versatile"), ("vllm", "vllm:<model>")]
)
def test_llm_without_a_model_is_refused_with_an_example(value: str, example: str) -> None:
    with pytest.raises(ConfigurationError, match="names no model") as caught:
        load_providers_config(_settings(llm=value), environ={})

    assert example in caught.value.message


def test_an_empty_llm_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="ORCHESTRION_LLM: is empty"):
        load_providers_config(_settings(llm=" "), environ={})


def test_openai_compat_keeps_working_with_the_legacy_settings() -> None:
    settings = _settings(llm="openai_compat:my-model", openai_base_url="http://127.0.0.1:1/v1/")

    config = load_providers_config(settings, environ={})

    deployment = config.deployments["openai_compat:my-model"]
    preset = get_preset("openai_compat")
    assert resolve_base_url(deployment, preset, environ={}, settings=settings) == "http://127.0.0.1:1/v1"


# -- keys and base URLs -----------------------------------------------------------------------------


def _deployment(provider: str, **options: object) -> DeploymentConfig:
    return DeploymentConfig(name="d", provider=provider, model="m", **options)  # type: ignore[arg-type]


def test_read_api_key_uses_the_preset_variable() -> None:
    assert read_api_key(_deployment("groq"), get_preset("groq"), environ={"GROQ_API_KEY": " k "}) == "k"
    assert read_api_key(_deployment("groq"), get_preset("groq"), environ={}) is None


def test_an_explicit_key_variable_never_falls_back_to_the_preset_one() -> None:
    deployment = _deployment("groq", api_key_env="MY_GROQ_KEY")

    assert read_api_key(deployment, get_preset("groq"), environ={"GROQ_API_KEY": "other"}) is None
    assert read_api_key(deployment, get_preset("groq"), environ={"MY_GROQ_KEY": "mine"}) == "mine"


def test_openai_compat_falls_back_to_the_openai_api_key_setting() -> None:
    settings = _settings(openai_api_key=SecretStr("legacy"))
    preset = get_preset("openai_compat")

    assert read_api_key(_deployment("openai_compat"), preset, environ={}, settings=settings) == "legacy"
    assert read_api_key(_deployment("openai_compat"), preset, environ={}) is None
    explicit = _deployment("openai_compat", api_key_env="VLLM_KEY")
    assert read_api_key(explicit, preset, environ={}, settings=settings) is None


def test_local_servers_send_no_key() -> None:
    assert read_api_key(_deployment("ollama"), get_preset("ollama"), environ=ALL_KEYS) is None


@pytest.mark.parametrize(
    ("provider", "environ", "expected"),
    [
        ("groq", {}, "https://api.groq.com/openai/v1"),
        ("openai", {"OPENAI_BASE_URL": "https://gateway.example/v1/"}, "https://gateway.example/v1"),
        (
            "azure",
            {"AZURE_OPENAI_ENDPOINT": "https://res.openai.azure.com/"},
            "https://res.openai.azure.com/openai/v1",
        ),
        (
            "azure",
            {"AZURE_OPENAI_ENDPOINT": "res.openai.azure.com"},
            "https://res.openai.azure.com/openai/v1",
        ),
        ("azure", {}, None),
        ("ollama", {}, "http://127.0.0.1:11434/v1"),
        ("ollama", {"OLLAMA_HOST": "http://gpu-box:11434"}, "http://gpu-box:11434/v1"),
        ("ollama", {"OLLAMA_HOST": "gpu-box"}, "http://gpu-box:11434/v1"),
        ("ollama", {"OLLAMA_HOST": "10.0.0.5:9999"}, "http://10.0.0.5:9999/v1"),
    ],
)
def test_resolve_base_url_prefers_the_preset_variable_over_its_default(
    provider: str, environ: dict[str, str], expected: str | None
) -> None:
    assert resolve_base_url(_deployment(provider), get_preset(provider), environ=environ) == expected


def test_a_deployment_base_url_wins_over_everything() -> None:
    deployment = _deployment("ollama", base_url="http://elsewhere:1/v1/")

    resolved = resolve_base_url(deployment, get_preset("ollama"), environ={"OLLAMA_HOST": "x"})

    assert resolved == "http://elsewhere:1/v1"
