"""The built-in price table: USD per million input and output tokens, keyed ``provider:model``.

Figures are each vendor's public list price for standard (not batch, not cached, not priority)
usage, as published on the vendors' pricing pages and last reviewed for this table in November 2025:
openai.com/api/pricing, claude.com/pricing, ai.google.dev/gemini-api/docs/pricing,
groq.com/pricing, api-docs.deepseek.com/quick_start/pricing, mistral.ai/pricing,
together.ai/pricing, fireworks.ai/pricing, cerebras.ai/pricing, docs.x.ai/docs/models and
docs.perplexity.ai/getting-started/pricing. OpenRouter resells at the upstream vendor's price;
Azure's global-standard deployments are listed at OpenAI's prices (Azure model names are your
deployment names, so these only match deployments named after their model). NVIDIA's hosted NIM
catalogue is credit-based, so it has no entries. Long-context surcharges (Gemini 2.5 Pro over 200k
prompt tokens) and Perplexity's per-request search fees are not modelled.

Prices change and models come and go: every figure is overridable, per model in the routes file's
``prices:`` mapping and per deployment with ``price:``. Local presets (llama_cpp, Ollama, vLLM,
LM Studio) cost 0. A model found nowhere prices as None: the caller warns and accounts cost 0 but
still counts its tokens.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from orchestrion.providers.options import DeploymentConfig, Price
from orchestrion.providers.presets import PRESETS


def _p(input_per_mtok: float, output_per_mtok: float) -> Price:
    return Price(input_per_mtok=input_per_mtok, output_per_mtok=output_per_mtok)


_OPENAI: dict[str, Price] = {
    "gpt-4.1": _p(2.00, 8.00),
    "gpt-4.1-mini": _p(0.40, 1.60),
    "gpt-4.1-nano": _p(0.10, 0.40),
    "gpt-4o": _p(2.50, 10.00),
    "gpt-4o-2024-05-13": _p(5.00, 15.00),
    "gpt-4o-mini": _p(0.15, 0.60),
    "gpt-5": _p(1.25, 10.00),
    "gpt-5-mini": _p(0.25, 2.00),
    "gpt-5-nano": _p(0.05, 0.40),
    "o3": _p(2.00, 8.00),
    "o3-mini": _p(1.10, 4.40),
    "o4-mini": _p(1.10, 4.40),
    "gpt-4-turbo": _p(10.00, 30.00),
    "gpt-3.5-turbo": _p(0.50, 1.50),
}

BUILTIN_PRICES: dict[str, Price] = {
    **{f"openai:{model}": price for model, price in _OPENAI.items()},
    **{f"azure:{model}": price for model, price in _OPENAI.items()},
    "anthropic:claude-opus-4-5": _p(5.00, 25.00),
    "anthropic:claude-opus-4-1": _p(15.00, 75.00),
    "anthropic:claude-opus-4-0": _p(15.00, 75.00),
    "anthropic:claude-sonnet-4-5": _p(3.00, 15.00),
    "anthropic:claude-sonnet-4-0": _p(3.00, 15.00),
    "anthropic:claude-3-7-sonnet-latest": _p(3.00, 15.00),
    "anthropic:claude-haiku-4-5": _p(1.00, 5.00),
    "anthropic:claude-3-5-haiku-latest": _p(0.80, 4.00),
    "anthropic:claude-3-haiku-20240307": _p(0.25, 1.25),
    "gemini:gemini-2.5-pro": _p(1.25, 10.00),
    "gemini:gemini-2.5-flash": _p(0.30, 2.50),
    "gemini:gemini-2.5-flash-lite": _p(0.10, 0.40),
    "gemini:gemini-2.0-flash": _p(0.10, 0.40),
    "gemini:gemini-2.0-flash-lite": _p(0.075, 0.30),
    "groq:llama-3.3-70b-versatile": _p(0.59, 0.79),
    "groq:llama-3.1-8b-instant": _p(0.05, 0.08),
    "groq:openai/gpt-oss-120b": _p(0.15, 0.60),
    "groq:openai/gpt-oss-20b": _p(0.075, 0.30),
    "deepseek:deepseek-chat": _p(0.28, 0.42),
    "deepseek:deepseek-reasoner": _p(0.28, 0.42),
    "mistral:mistral-large-latest": _p(2.00, 6.00),
    "mistral:mistral-medium-latest": _p(0.40, 2.00),
    "mistral:mistral-small-latest": _p(0.10, 0.30),
    "mistral:ministral-8b-latest": _p(0.10, 0.10),
    "mistral:ministral-3b-latest": _p(0.04, 0.04),
    "mistral:codestral-latest": _p(0.30, 0.90),
    "mistral:open-mistral-nemo": _p(0.15, 0.15),
    "together:meta-llama/Llama-3.3-70B-Instruct-Turbo": _p(0.88, 0.88),
    "together:meta-llama/Meta-Llama-3.1-8B-Instruct-Turbo": _p(0.18, 0.18),
    "together:deepseek-ai/DeepSeek-V3": _p(1.25, 1.25),
    "together:Qwen/Qwen2.5-72B-Instruct-Turbo": _p(1.20, 1.20),
    "together:openai/gpt-oss-120b": _p(0.15, 0.60),
    "openrouter:openai/gpt-4.1-mini": _p(0.40, 1.60),
    "openrouter:openai/gpt-4o-mini": _p(0.15, 0.60),
    "openrouter:google/gemini-2.5-flash-lite": _p(0.10, 0.40),
    "openrouter:google/gemini-2.5-flash": _p(0.30, 2.50),
    "openrouter:anthropic/claude-sonnet-4.5": _p(3.00, 15.00),
    "openrouter:anthropic/claude-haiku-4.5": _p(1.00, 5.00),
    "openrouter:meta-llama/llama-3.3-70b-instruct": _p(0.13, 0.40),
    "fireworks:accounts/fireworks/models/llama-v3p3-70b-instruct": _p(0.90, 0.90),
    "fireworks:accounts/fireworks/models/llama-v3p1-8b-instruct": _p(0.20, 0.20),
    "fireworks:accounts/fireworks/models/gpt-oss-120b": _p(0.15, 0.60),
    "fireworks:accounts/fireworks/models/deepseek-v3": _p(0.90, 0.90),
    "cerebras:gpt-oss-120b": _p(0.25, 0.69),
    "cerebras:llama3.1-8b": _p(0.10, 0.10),
    "cerebras:llama-3.3-70b": _p(0.85, 1.20),
    "xai:grok-4": _p(3.00, 15.00),
    "xai:grok-4-fast-non-reasoning": _p(0.20, 0.50),
    "xai:grok-4-fast-reasoning": _p(0.20, 0.50),
    "xai:grok-3": _p(3.00, 15.00),
    "xai:grok-3-mini": _p(0.30, 0.50),
    "xai:grok-code-fast-1": _p(0.20, 1.50),
    "perplexity:sonar": _p(1.00, 1.00),
    "perplexity:sonar-pro": _p(3.00, 15.00),
    "perplexity:sonar-reasoning-pro": _p(2.00, 8.00),
}

FREE = Price(input_per_mtok=0.0, output_per_mtok=0.0)

# A trailing snapshot date or moving alias: -2024-08-06 (OpenAI), -20250929 (Anthropic), -2411 or
# -0125 (Mistral, older OpenAI), -05-20 (Gemini previews), -latest.
_DATE_SUFFIX = re.compile(r"-(?:latest|\d{4}-\d{2}-\d{2}|\d{8}|\d{4}|\d{2}-\d{2})$")


def undated(model: str) -> str:
    """`model` without a trailing date or ``-latest`` (``gpt-4o-2024-08-06`` -> ``gpt-4o``)."""
    return _DATE_SUFFIX.sub("", model)


def _undated_index(prices: Mapping[str, Price]) -> dict[str, Price]:
    index: dict[str, Price] = {}
    # Undated keys first, so that `gpt-4o` keeps its own price rather than an older snapshot's.
    for key, price in prices.items():
        provider, _, model = key.partition(":")
        if undated(model) == model:
            index[key] = price
    for key, price in prices.items():
        provider, _, model = key.partition(":")
        index.setdefault(f"{provider}:{undated(model)}", price)
    return index


class PriceTable:
    """Looks up a deployment's price: overrides, then local presets (free), then built-in figures.

    Args:
        overrides: ``provider:model`` -> price, from the routes file's ``prices:`` mapping. They win
            over the built-in table, including for local presets.
        builtin: The built-in table (tests may replace it).
    """

    def __init__(
        self, overrides: Mapping[str, Price] | None = None, *, builtin: Mapping[str, Price] = BUILTIN_PRICES
    ) -> None:
        self._overrides = dict(overrides or {})
        self._builtin = dict(builtin)
        self._overrides_undated = _undated_index(self._overrides)
        self._builtin_undated = _undated_index(self._builtin)

    @property
    def overrides(self) -> dict[str, Price]:
        """The overrides this table was given."""
        return dict(self._overrides)

    def price_for(self, provider: str, model: str) -> Price | None:
        """The price of `model` at `provider`.

        An exact ``provider:model`` match wins; then a match ignoring a date suffix or ``-latest``
        on either side (``gpt-4o-2024-08-06`` finds ``gpt-4o``, ``mistral-large-2411`` finds
        ``mistral-large-latest``). Overrides are searched before the built-in table.

        Args:
            provider: A preset name.
            model: The vendor's model id.

        Returns:
            The price, `FREE` for a local preset with no override, or None when unknown.
        """
        key = f"{provider}:{model}"
        loose = f"{provider}:{undated(model)}"
        found = self._overrides.get(key) or self._overrides_undated.get(loose)
        if found is not None:
            return found
        preset = PRESETS.get(provider)
        if preset is not None and preset.local:
            return FREE
        return self._builtin.get(key) or self._builtin_undated.get(loose)

    def price_for_deployment(self, deployment: DeploymentConfig) -> Price | None:
        """The deployment's own ``price:`` if it has one, else `price_for` its provider and model."""
        if deployment.price is not None:
            return deployment.price
        return self.price_for(deployment.provider, deployment.model)
