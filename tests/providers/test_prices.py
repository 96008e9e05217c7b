from __future__ import annotations

import pytest

from orchestrion.providers.options import DeploymentConfig, Price
from orchestrion.providers.presets import AUTO_ORDER, get_preset
from orchestrion.providers.prices import BUILTIN_PRICES, FREE, PriceTable, undated


def _price(input_per_mtok: float, output_per_mtok: float) -> Price:
    return Price(input_per_mtok=input_per_mtok, output_per_mtok=output_per_mtok)


def test_exact_match_returns_the_listed_price() -> None:
    assert PriceTable().price_for("openai", "gpt-4o-mini") == _price(0.15, 0.60)
    assert PriceTable().price_for("groq", "llama-3.3-70b-versatile") == _price(0.59, 0.79)


@pytest.mark.parametrize(
    ("provider", "model", "listed_as"),
    [
        ("openai", "gpt-4o-2024-08-06", "gpt-4o"),
        ("openai", "gpt-4.1-mini-2025-04-14", "gpt-4.1-mini"),
        ("anthropic", "claude-sonnet-4-5-20250929", "claude-sonnet-4-5"),
        ("anthropic", "claude-3-5-haiku-20241022", "claude-3-5-haiku-latest"),
        ("mistral", "mistral-large-2411", "mistral-large-latest"),
        ("mistral", "mistral-small", "mistral-small-latest"),
        ("xai", "grok-4-0709", "grok-4"),
    ],
)
def test_date_suffixes_and_latest_aliases_match_the_listed_model(
    provider: str, model: str, listed_as: str
) -> None:
    assert PriceTable().price_for(provider, model) == BUILTIN_PRICES[f"{provider}:{listed_as}"]


def test_a_dated_snapshot_with_its_own_price_keeps_it() -> None:
    table = PriceTable()

    assert table.price_for("openai", "gpt-4o-2024-05-13") == _price(5.00, 15.00)
    assert table.price_for("openai", "gpt-4o") == _price(2.50, 10.00)


@pytest.mark.parametrize(
    ("provider", "model"),
    [("openai", "gpt-imaginary"), ("groq", "llama-3.3-70b"), ("nosuchvendor", "gpt-4o"), ("nvidia", "x")],
)
def test_unknown_models_have_no_price(provider: str, model: str) -> None:
    assert PriceTable().price_for(provider, model) is None


@pytest.mark.parametrize("provider", ["llama_cpp", "ollama", "vllm", "lmstudio"])
def test_local_presets_are_free_whatever_the_model(provider: str) -> None:
    assert PriceTable().price_for(provider, "anything:7b") == FREE


def test_overrides_win_over_the_built_in_table() -> None:
    table = PriceTable({"openai:gpt-4o": _price(1.0, 2.0)})

    assert table.price_for("openai", "gpt-4o") == _price(1.0, 2.0)
    assert table.price_for("openai", "gpt-4o-2024-08-06") == _price(1.0, 2.0)
    assert table.price_for("openai", "gpt-4o-mini") == _price(0.15, 0.60)


def test_overrides_can_price_unknown_and_local_models() -> None:
    table = PriceTable({"openai_compat:house-model": _price(0.5, 0.5), "ollama:llama3.2": _price(0.01, 0.01)})

    assert table.price_for("openai_compat", "house-model") == _price(0.5, 0.5)
    assert table.price_for("ollama", "llama3.2") == _price(0.01, 0.01)
    assert table.price_for("ollama", "qwen2.5") == FREE
    assert table.overrides == {
        "openai_compat:house-model": _price(0.5, 0.5),
        "ollama:llama3.2": _price(0.01, 0.01),
    }


def test_a_deployment_price_wins_over_every_table() -> None:
    own = _price(9.0, 9.0)
    table = PriceTable({"groq:llama-3.3-70b-versatile": _price(1.0, 1.0)})
    priced = DeploymentConfig(name="p", provider="groq", model="llama-3.3-70b-versatile", price=own)
    unpriced = DeploymentConfig(name="u", provider="groq", model="llama-3.3-70b-versatile")

    assert table.price_for_deployment(priced) == own
    assert table.price_for_deployment(unpriced) == _price(1.0, 1.0)


def test_builtin_table_can_be_replaced() -> None:
    table = PriceTable(builtin={"openai:x": _price(1, 1)})

    assert table.price_for("openai", "x") == _price(1, 1)
    assert table.price_for("openai", "gpt-4o") is None


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        ("gpt-4o-2024-08-06", "gpt-4o"),
        ("claude-opus-4-1-20250805", "claude-opus-4-1"),
        ("mistral-large-latest", "mistral-large"),
        ("gemini-2.5-flash-preview-05-20", "gemini-2.5-flash-preview"),
        ("gpt-4.1", "gpt-4.1"),
        ("llama-3.1-8b-instant", "llama-3.1-8b-instant"),
        ("claude-sonnet-4-5", "claude-sonnet-4-5"),
    ],
)
def test_undated_strips_only_a_trailing_date_or_latest(model: str, expected: str) -> None:
    assert undated(model) == expected


@pytest.mark.parametrize("name", [n for n in AUTO_ORDER if n != "nvidia"])
def test_every_auto_tier_model_has_a_built_in_price(name: str) -> None:
    tiers = get_preset(name).tiers
    assert tiers is not None
    for route in ("default", "fast", "smart"):
        assert PriceTable().price_for(name, tiers.for_route(route)) is not None, (name, route)


def test_built_in_prices_are_non_negative_and_keyed_by_known_presets() -> None:
    for key, price in BUILTIN_PRICES.items():
        provider, _, model = key.partition(":")
        assert get_preset(provider).name == provider
        assert model
        assert price.input_per_mtok >= 0
        assert price.output_per_mtok >= 0
