"""Build a provider from a deployment string (``provider:model``) and the settings.

Called from `runtime.py`, the composition root; nothing else constructs providers.
"""

from __future__ import annotations

from orchestrion.exceptions import ConfigurationError
from orchestrion.providers.base import Provider
from orchestrion.settings import Settings

PROVIDER_KINDS = ("llama_cpp", "openai_compat")


def build_provider(deployment: str, settings: Settings) -> Provider | None:
    """Construct the provider a deployment string names.

    Args:
        deployment: ``none``, ``llama_cpp:<label>`` or ``openai_compat:<model>``.
        settings: Where paths, URLs, keys and timeouts come from.

    Returns:
        The provider, or None for ``none`` (LLM analysis disabled).

    Raises:
        ConfigurationError: On an unknown provider kind, a missing model name, or a missing model file.
    """
    text = deployment.strip()
    if text.lower() == "none":
        return None
    kind, sep, model = text.partition(":")
    kind, model = kind.strip(), model.strip()
    if kind not in PROVIDER_KINDS:
        raise ConfigurationError(
            f"unknown LLM provider {kind!r} in {deployment!r}; valid kinds: "
            f"{', '.join(PROVIDER_KINDS)} (as `kind:model`), or `none`",
            details={"deployment": deployment, "choices": [*PROVIDER_KINDS, "none"]},
        )
    if not sep or not model:
        raise ConfigurationError(
            f"LLM deployment {deployment!r} names no model; expected `{kind}:<model>`",
            details={"deployment": deployment},
        )
    if kind == "llama_cpp":
        from orchestrion.providers.llama_cpp import LlamaCppProvider

        return LlamaCppProvider(model, model_path=settings.llama_model_path, n_threads=settings.llama_threads)
    from orchestrion.providers.openai_compat import OpenAICompatProvider

    api_key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else None
    return OpenAICompatProvider(
        base_url=settings.openai_base_url,
        model=model,
        api_key=api_key or None,
        timeout=settings.llm_timeout_seconds,
    )
