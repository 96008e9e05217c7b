from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr

from orchestrion.exceptions import ConfigurationError
from orchestrion.providers.factory import build_provider
from orchestrion.providers.llama_cpp import LlamaCppProvider
from orchestrion.providers.openai_compat import OpenAICompatProvider
from orchestrion.settings import Settings


def _settings(**overrides: object) -> Settings:
    return Settings(_env_file=None, **overrides)  # type: ignore[arg-type]


def test_none_disables_the_llm() -> None:
    assert build_provider("none", _settings()) is None


async def test_openai_compat_deployment_uses_settings_url_key_and_timeout() -> None:
    settings = _settings(
        openai_base_url="http://127.0.0.1:1/v1", openai_api_key=SecretStr("sk-x"), llm_timeout_seconds=3
    )

    provider = build_provider("openai_compat:gpt-4o-mini", settings)

    assert isinstance(provider, OpenAICompatProvider)
    try:
        assert provider.deployment == "openai_compat:gpt-4o-mini"
        assert provider._url == "http://127.0.0.1:1/v1/chat/completions"
        assert provider._api_key == "sk-x"
        assert provider._timeout == 3
    finally:
        await provider.aclose()


def test_llama_cpp_deployment_is_built_without_loading_the_model() -> None:
    provider = build_provider("llama_cpp:smollm2-135m-instruct", _settings(llama_threads=1))

    assert isinstance(provider, LlamaCppProvider)
    assert provider.deployment == "llama_cpp:smollm2-135m-instruct"
    assert provider.n_threads == 1
    assert not provider.loaded


def test_llama_cpp_with_missing_model_file_is_a_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="not found"):
        build_provider("llama_cpp:custom", _settings(llama_model_path=tmp_path / "missing.gguf"))


@pytest.mark.parametrize("deployment", ["anthropic:claude", "gpt-4o", ""])
def test_unknown_provider_kind_names_the_valid_kinds(deployment: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        build_provider(deployment, _settings())

    assert "llama_cpp" in caught.value.message
    assert "openai_compat" in caught.value.message


def test_deployment_without_model_is_rejected() -> None:
    with pytest.raises(ConfigurationError, match="names no model"):
        build_provider("openai_compat:", _settings())
