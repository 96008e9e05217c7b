"""Build vendor adapters from validated deployment configurations.

Called from `runtime.py`, the composition root; nothing else constructs providers. Building makes no
network call: HTTP adapters only create their client, and the embedded model loads on first use.
Adapter modules are imported when first needed, so a server that never routes to llama.cpp does
not load its native library.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from orchestrion.exceptions import ConfigurationError
from orchestrion.providers.base import Provider
from orchestrion.providers.config import (
    ProvidersConfig,
    read_api_key,
    resolve_base_url,
)
from orchestrion.providers.options import DeploymentConfig
from orchestrion.providers.presets import get_preset
from orchestrion.settings import Settings


def build_adapter(
    deployment: DeploymentConfig, *, settings: Settings, environ: Mapping[str, str] = os.environ
) -> Provider:
    """Construct the adapter for one deployment.

    The base URL is the deployment's ``base_url``, else the preset's override variable (such as
    ``AZURE_OPENAI_ENDPOINT``), else the preset's default; the key comes from `read_api_key`.

    Args:
        deployment: A deployment from `load_providers_config`.
        settings: For the generic ``openai_compat`` preset's URL and key and llama.cpp's defaults.
        environ: Where key and base URL variables are read.

    Returns:
        The adapter; its provider name is the preset's name.

    Raises:
        ConfigurationError: On an unknown preset, a missing API root or required key (naming the
            variable to set), or a missing llama.cpp model file.
    """
    preset = get_preset(deployment.provider)
    if preset.kind == "llama_cpp":
        from orchestrion.providers.llama_cpp import LlamaCppProvider

        return LlamaCppProvider(
            deployment.model,
            model_path=deployment.model_path or settings.llama_model_path,
            n_threads=deployment.threads or settings.llama_threads,
        )
    base_url = resolve_base_url(deployment, preset, environ=environ, settings=settings)
    if base_url is None:
        raise ConfigurationError(
            f"deployment {deployment.name!r}: {preset.name} needs its API root: "
            f"set {preset.base_url_env} or give `base_url`",
            details={"deployment": deployment.name, "env": preset.base_url_env},
        )
    api_key = read_api_key(deployment, preset, environ=environ, settings=settings)
    if api_key is None and preset.key_required:
        variable = deployment.api_key_env or preset.api_key_env
        raise ConfigurationError(
            f"deployment {deployment.name!r}: {preset.name} needs an API key: "
            f"the environment variable {variable} is not set",
            details={"deployment": deployment.name, "env": variable},
        )
    if preset.kind == "anthropic":
        from orchestrion.providers.anthropic import AnthropicProvider

        anthropic: Provider = AnthropicProvider(
            base_url=base_url,
            model=deployment.model,
            api_key=api_key,
            timeouts=deployment.timeouts,
            name=preset.name,
            stream=deployment.stream,
            extra_headers=dict(preset.extra_headers),
        )
        return anthropic
    if preset.kind == "gemini":
        from orchestrion.providers.gemini import GeminiProvider

        gemini: Provider = GeminiProvider(
            base_url=base_url,
            model=deployment.model,
            api_key=api_key,
            timeouts=deployment.timeouts,
            name=preset.name,
            stream=deployment.stream,
            extra_headers=dict(preset.extra_headers),
        )
        return gemini
    from orchestrion.providers.openai_compat import OpenAICompatProvider

    return OpenAICompatProvider(
        base_url=base_url,
        model=deployment.model,
        api_key=api_key,
        timeouts=deployment.timeouts,
        auth="api-key" if preset.auth == "api-key" else "bearer",
        name=preset.name,
        stream=deployment.stream,
        extra_headers=dict(preset.extra_headers),
        structured="json_schema" if preset.json_schema else "json_object",
        stream_usage=preset.stream_usage,
        supports_tools=preset.tools,
    )


def build_adapters(
    config: ProvidersConfig, *, settings: Settings, environ: Mapping[str, str] = os.environ
) -> dict[str, Provider]:
    """One adapter per deployment some route uses, keyed by deployment name.

    A deployment on several routes gets one adapter, so its limits and circuit state are shared.

    Raises:
        ConfigurationError: As `build_adapter`.
    """
    return {
        name: build_adapter(config.deployments[name], settings=settings, environ=environ)
        for name in config.routed_deployments()
    }
