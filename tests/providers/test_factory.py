from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NoReturn

import httpx
import pytest
from pydantic import SecretStr

from orchestrion.exceptions import ConfigurationError
from orchestrion.providers.anthropic import AnthropicProvider
from orchestrion.providers.base import ChatRequest, Message
from orchestrion.providers.config import EMBEDDED_DEPLOYMENT, load_providers_config
from orchestrion.providers.factory import build_adapter, build_adapters
from orchestrion.providers.gemini import GeminiProvider
from orchestrion.providers.llama_cpp import LlamaCppProvider
from orchestrion.providers.openai_compat import OpenAICompatProvider
from orchestrion.providers.options import DeploymentConfig, Timeouts
from orchestrion.settings import Settings

KEY = "sk-test-key-0123"


@pytest.fixture(autouse=True)
def _no_network(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    # Building an adapter must not call anyone: any request fails the test.
    def refuse(*args: Any, **kwargs: Any) -> NoReturn:
        raise AssertionError("an adapter made a network call while being built")

    monkeypatch.setattr(httpx.AsyncClient, "send", refuse)
    for name in list(os.environ):
        if name.startswith("ORCHESTRION_"):
            monkeypatch.delenv(name)
    yield


def _settings(**overrides: object) -> Settings:
    return Settings(_env_file=None, **overrides)  # type: ignore[arg-type]


def _deployment(provider: str, model: str = "m", **options: object) -> DeploymentConfig:
    return DeploymentConfig(name=f"{provider}:{model}", provider=provider, model=model, **options)  # type: ignore[arg-type]


async def test_hosted_preset_builds_an_openai_compatible_adapter_with_its_url_key_and_options() -> None:
    timeouts = Timeouts(connect=2, read=9, total=30)
    deployment = _deployment("groq", "llama-3.3-70b-versatile", timeouts=timeouts, stream=True)

    provider = build_adapter(deployment, settings=_settings(), environ={"GROQ_API_KEY": KEY})

    assert isinstance(provider, OpenAICompatProvider)
    try:
        assert provider.name == "groq"
        assert provider.deployment == "groq:llama-3.3-70b-versatile"
        assert provider._url == "https://api.groq.com/openai/v1/chat/completions"
        assert provider._headers(stream=False)["Authorization"] == f"Bearer {KEY}"
        assert provider._timeouts == timeouts
        assert provider.streams
        # Groq has no portable structured outputs nor stream usage: JSON mode, no stream_options.
        body = provider._body(
            ChatRequest(messages=(Message(role="user", content="x"),), json_schema={}), stream=True
        )
        assert body["response_format"] == {"type": "json_object"} and "stream_options" not in body
    finally:
        await provider.aclose()


async def test_azure_uses_the_endpoint_variable_and_the_api_key_header() -> None:
    environ = {"AZURE_OPENAI_ENDPOINT": "https://res.openai.azure.com/", "AZURE_OPENAI_API_KEY": KEY}

    provider = build_adapter(_deployment("azure", "my-gpt4o"), settings=_settings(), environ=environ)

    assert isinstance(provider, OpenAICompatProvider)
    try:
        assert provider._url == "https://res.openai.azure.com/openai/v1/chat/completions"
        headers = provider._headers(stream=False)
        assert headers["api-key"] == KEY
        assert "Authorization" not in headers
    finally:
        await provider.aclose()


async def test_a_deployment_base_url_and_key_variable_override_the_preset() -> None:
    deployment = _deployment("openai", base_url="https://proxy.example/v1", api_key_env="PROXY_KEY")

    provider = build_adapter(deployment, settings=_settings(), environ={"PROXY_KEY": KEY})

    assert isinstance(provider, OpenAICompatProvider)
    try:
        assert provider._url == "https://proxy.example/v1/chat/completions"
        assert provider._api_key == KEY
    finally:
        await provider.aclose()


async def test_openrouter_sends_its_attribution_header() -> None:
    provider = build_adapter(
        _deployment("openrouter", "openai/gpt-4.1-mini"),
        settings=_settings(),
        environ={"OPENROUTER_API_KEY": KEY},
    )

    assert isinstance(provider, OpenAICompatProvider)
    try:
        assert provider._extra_headers == {"X-Title": "Orchestrion"}
    finally:
        await provider.aclose()


async def test_local_server_is_built_without_a_key() -> None:
    provider = build_adapter(
        _deployment("ollama", "llama3.2"), settings=_settings(), environ={"OPENAI_API_KEY": KEY}
    )

    assert isinstance(provider, OpenAICompatProvider)
    try:
        assert provider._url == "http://127.0.0.1:11434/v1/chat/completions"
        assert provider._api_key is None
    finally:
        await provider.aclose()


async def test_legacy_openai_compat_setting_keeps_working() -> None:
    settings = _settings(
        llm="openai_compat:gpt-4o-mini",
        openai_base_url="http://127.0.0.1:1/v1",
        openai_api_key=SecretStr(KEY),
        llm_timeout_seconds=3,
    )
    config = load_providers_config(settings, environ={})

    adapters = build_adapters(config, settings=settings, environ={})

    provider = adapters["openai_compat:gpt-4o-mini"]
    assert isinstance(provider, OpenAICompatProvider)
    try:
        assert provider.deployment == "openai_compat:gpt-4o-mini"
        assert provider._url == "http://127.0.0.1:1/v1/chat/completions"
        assert provider._api_key == KEY
        assert provider._timeout == 3
    finally:
        await provider.aclose()


async def test_anthropic_preset_builds_the_anthropic_adapter() -> None:
    deployment = _deployment("anthropic", "claude-haiku-4-5", timeouts=Timeouts(read=5))

    provider = build_adapter(deployment, settings=_settings(), environ={"ANTHROPIC_API_KEY": KEY})

    assert isinstance(provider, AnthropicProvider)
    try:
        assert provider.deployment == "anthropic:claude-haiku-4-5"
        assert provider._endpoint(stream=False) == "https://api.anthropic.com/v1/messages"
        assert provider._api_key == KEY
    finally:
        await provider.aclose()


async def test_gemini_preset_builds_the_gemini_adapter() -> None:
    provider = build_adapter(
        _deployment("gemini", "gemini-2.5-flash"), settings=_settings(), environ={"GEMINI_API_KEY": KEY}
    )

    assert isinstance(provider, GeminiProvider)
    try:
        assert provider.deployment == "gemini:gemini-2.5-flash"
        assert provider._endpoint(stream=False).startswith("https://generativelanguage.googleapis.com/")
        assert provider._headers(stream=False)["x-goog-api-key"] == KEY
    finally:
        await provider.aclose()


def test_llama_cpp_deployment_is_built_without_loading_the_model() -> None:
    provider = build_adapter(
        _deployment("llama_cpp", "smollm2-135m-instruct", threads=1), settings=_settings()
    )

    assert isinstance(provider, LlamaCppProvider)
    assert provider.deployment == "llama_cpp:smollm2-135m-instruct"
    assert provider.n_threads == 1
    assert not provider.loaded


def test_llama_cpp_falls_back_to_the_llama_settings() -> None:
    provider = build_adapter(
        _deployment("llama_cpp", "smollm2-135m-instruct"), settings=_settings(llama_threads=2)
    )

    assert isinstance(provider, LlamaCppProvider)
    assert provider.n_threads == 2


def test_llama_cpp_with_missing_model_file_is_a_configuration_error(tmp_path: Path) -> None:
    deployment = _deployment("llama_cpp", "custom", model_path=str(tmp_path / "missing.gguf"))

    with pytest.raises(ConfigurationError, match="not found"):
        build_adapter(deployment, settings=_settings())


def test_a_missing_required_key_names_the_variable_and_no_value() -> None:
    with pytest.raises(ConfigurationError) as caught:
        build_adapter(_deployment("mistral"), settings=_settings(), environ={"OPENAI_API_KEY": KEY})

    assert "MISTRAL_API_KEY" in caught.value.message
    assert KEY not in caught.value.message
    assert caught.value.details["env"] == "MISTRAL_API_KEY"


def test_azure_without_an_endpoint_names_the_variable() -> None:
    with pytest.raises(ConfigurationError, match="AZURE_OPENAI_ENDPOINT"):
        build_adapter(_deployment("azure"), settings=_settings(), environ={"AZURE_OPENAI_API_KEY": KEY})


def test_an_unknown_preset_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="valid presets"):
        build_adapter(_deployment("grok"), settings=_settings(), environ={})


async def test_build_adapters_builds_each_routed_deployment_once() -> None:
    environ = {"OPENAI_API_KEY": KEY}
    settings = _settings()
    config = load_providers_config(settings, environ=environ)

    adapters = build_adapters(config, settings=settings, environ=environ)

    try:
        assert list(adapters) == [
            "openai:gpt-4.1-mini",
            EMBEDDED_DEPLOYMENT,
            "openai:gpt-4.1-nano",
            "openai:gpt-4.1",
        ]
        assert isinstance(adapters[EMBEDDED_DEPLOYMENT], LlamaCppProvider)
    finally:
        for adapter in adapters.values():
            await adapter.aclose()


def test_build_adapters_of_a_disabled_configuration_is_empty() -> None:
    settings = _settings(llm="none")

    assert build_adapters(load_providers_config(settings, environ={}), settings=settings, environ={}) == {}
