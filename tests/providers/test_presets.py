from __future__ import annotations

import pytest

from orchestrion.exceptions import ConfigurationError
from orchestrion.providers.presets import AUTO_ORDER, EMBEDDED_MODEL, PRESETS, get_preset, preset_names

HOSTED_KEYS = {
    "openai": "OPENAI_API_KEY",
    "azure": "AZURE_OPENAI_API_KEY",
    "groq": "GROQ_API_KEY",
    "deepseek": "DEEPSEEK_API_KEY",
    "mistral": "MISTRAL_API_KEY",
    "together": "TOGETHER_API_KEY",
    "openrouter": "OPENROUTER_API_KEY",
    "fireworks": "FIREWORKS_API_KEY",
    "cerebras": "CEREBRAS_API_KEY",
    "xai": "XAI_API_KEY",
    "perplexity": "PERPLEXITY_API_KEY",
    "nvidia": "NVIDIA_API_KEY",
    "anthropic": "ANTHROPIC_API_KEY",
    "gemini": "GEMINI_API_KEY",
}
LOCAL_URLS = {
    "ollama": "http://127.0.0.1:11434/v1",
    "vllm": "http://127.0.0.1:8000/v1",
    "lmstudio": "http://127.0.0.1:1234/v1",
}


def test_every_required_preset_exists() -> None:
    required = {*HOSTED_KEYS, *LOCAL_URLS, "llama_cpp", "openai_compat"}

    assert required <= set(preset_names())


def test_preset_names_are_sorted_and_match_the_registry() -> None:
    names = preset_names()

    assert names == sorted(names)
    assert set(names) == set(PRESETS)


def test_unknown_preset_names_the_bad_name_and_every_valid_one() -> None:
    with pytest.raises(ConfigurationError) as caught:
        get_preset("opnai")

    message = caught.value.message
    assert "'opnai'" in message
    for name in preset_names():
        assert name in message
    assert caught.value.details == {"provider": "opnai", "choices": preset_names()}


@pytest.mark.parametrize(("name", "env"), sorted(HOSTED_KEYS.items()))
def test_hosted_presets_use_the_conventional_key_variable_and_require_it(name: str, env: str) -> None:
    preset = get_preset(name)

    assert preset.api_key_env == env
    assert preset.key_required
    assert not preset.local
    assert preset.base_url is None or preset.base_url.startswith("https://")


@pytest.mark.parametrize(("name", "url"), sorted(LOCAL_URLS.items()))
def test_local_servers_are_free_keyless_and_use_the_vendor_default_port(name: str, url: str) -> None:
    preset = get_preset(name)

    assert preset.base_url == url
    assert preset.local
    assert not preset.key_required
    assert preset.api_key_env is None
    assert preset.kind == "openai_compat"


def test_vendor_base_urls_are_their_public_api_roots() -> None:
    expected = {
        "openai": "https://api.openai.com/v1",
        "groq": "https://api.groq.com/openai/v1",
        "deepseek": "https://api.deepseek.com",
        "mistral": "https://api.mistral.ai/v1",
        "together": "https://api.together.xyz/v1",
        "openrouter": "https://openrouter.ai/api/v1",
        "fireworks": "https://api.fireworks.ai/inference/v1",
        "cerebras": "https://api.cerebras.ai/v1",
        "xai": "https://api.x.ai/v1",
        "perplexity": "https://api.perplexity.ai",
        "nvidia": "https://integrate.api.nvidia.com/v1",
        "anthropic": "https://api.anthropic.com",
    }

    assert {name: get_preset(name).base_url for name in expected} == expected


def test_azure_uses_the_v1_api_under_the_resource_endpoint_with_the_api_key_header() -> None:
    azure = get_preset("azure")

    assert azure.base_url is None
    assert azure.base_url_env == "AZURE_OPENAI_ENDPOINT"
    assert azure.base_url_env_suffix == "/openai/v1"
    assert azure.auth == "api-key"
    assert "deployment" in azure.model_note


def test_generic_openai_compat_needs_no_key_and_has_no_fixed_url() -> None:
    generic = get_preset("openai_compat")

    assert generic.base_url is None
    assert generic.api_key_env is None
    assert not generic.key_required
    assert generic.tiers is None


def test_embedded_llama_cpp_is_free_and_every_tier_is_the_embedded_model() -> None:
    embedded = get_preset("llama_cpp")

    assert embedded.kind == "llama_cpp"
    assert embedded.local
    assert not embedded.key_required
    assert embedded.tiers is not None
    assert {embedded.tiers.for_route(r) for r in ("default", "fast", "smart")} == {EMBEDDED_MODEL}


def test_auto_order_prefers_anthropic_then_openai_then_gemini() -> None:
    assert AUTO_ORDER[:3] == ("anthropic", "openai", "gemini")
    assert len(set(AUTO_ORDER)) == len(AUTO_ORDER)


@pytest.mark.parametrize("name", AUTO_ORDER)
def test_auto_candidates_have_a_key_variable_and_three_tiers(name: str) -> None:
    preset = get_preset(name)

    assert preset.api_key_env is not None
    assert preset.tiers is not None
    assert all(preset.tiers.for_route(r) for r in ("default", "fast", "smart"))


@pytest.mark.parametrize("name", ["azure", "openai_compat", "ollama", "vllm", "lmstudio"])
def test_presets_whose_models_are_yours_are_never_auto_selected(name: str) -> None:
    assert name not in AUTO_ORDER
    assert get_preset(name).tiers is None


def test_every_preset_documents_its_model_naming_and_api() -> None:
    for preset in PRESETS.values():
        assert preset.model_note, preset.name
        assert preset.docs_url.startswith("https://"), preset.name


def test_openrouter_model_note_explains_vendor_prefixed_ids() -> None:
    assert "vendor/model" in get_preset("openrouter").model_note
