from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from orchestrion.exceptions import ConfigurationError, ProviderError
from orchestrion.providers.base import ChatRequest, Message
from orchestrion.providers.llama_cpp import LlamaCppProvider, default_model_path, fit_messages

SCHEMA = {
    "type": "object",
    "properties": {
        # maxLength bounds the string in the grammar, so the object always closes within max_tokens.
        "summary": {"type": "string", "maxLength": 80},
        "severity": {"type": "string", "enum": ["low", "medium", "high"]},
    },
    "required": ["summary", "severity"],
}


def _words(text: str) -> int:
    return len(text.split())


def _keep_words(text: str, keep: int) -> str:
    return " ".join(text.split()[:keep])


def test_default_model_path_finds_the_packaged_gguf() -> None:
    path = default_model_path()

    assert path.suffix == ".gguf"
    assert path.is_file()
    assert path.stat().st_size > 10_000_000


def test_missing_model_file_is_a_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="not found"):
        LlamaCppProvider(model_path=tmp_path / "nope.gguf")


def test_fit_messages_leaves_a_fitting_prompt_alone() -> None:
    messages = (Message(role="system", content="a b"), Message(role="user", content="c d e"))

    assert fit_messages(messages, budget=100, count=_words, shorten=_keep_words) == messages


def test_fit_messages_shortens_the_earliest_non_system_message_first() -> None:
    messages = (
        Message(role="system", content="keep the system prompt"),
        Message(role="user", content=" ".join(["evidence"] * 100)),
        Message(role="user", content="final question here"),
    )

    fitted = fit_messages(messages, budget=60, count=_words, shorten=_keep_words)

    assert fitted[0] == messages[0]
    assert fitted[2] == messages[2]
    assert sum(_words(m.content) + 8 for m in fitted) <= 60
    assert fitted[1].content.startswith("evidence")


def test_fit_messages_moves_on_when_the_earliest_message_is_not_enough() -> None:
    messages = (
        Message(role="system", content="sys"),
        Message(role="user", content="w " * 20),
        Message(role="assistant", content="x " * 50),
    )

    fitted = fit_messages(messages, budget=40, count=_words, shorten=_keep_words)

    assert fitted[1].content == ""
    assert 0 < _words(fitted[2].content) < 50
    assert fitted[0].content == "sys"
    assert sum(_words(m.content) + 8 for m in fitted) <= 40


@pytest.mark.llm
@pytest.mark.slow
async def test_real_model_returns_json_matching_the_schema() -> None:
    provider = LlamaCppProvider(n_threads=None)
    request = ChatRequest(
        messages=(
            Message(role="system", content="You triage incidents. Reply with JSON only."),
            Message(
                role="user",
                content="The database server ran out of disk space and stopped accepting "
                "writes. Summarise the incident in one short sentence and rate its severity.",
            ),
        ),
        json_schema=SCHEMA,
        max_tokens=64,
        temperature=0.0,
        seed=42,
    )
    try:
        first, second = await asyncio.gather(provider.complete(request), provider.complete(request))
    finally:
        await provider.aclose()

    result = first.json()
    assert set(result) >= {"summary", "severity"}
    assert isinstance(result["summary"], str)
    assert result["severity"] in {"low", "medium", "high"}
    assert first.usage.input_tokens > 0
    assert 0 < first.usage.output_tokens <= 64
    assert first.provider == "llama_cpp"
    # Serialised calls on one model with the same seed are reproducible.
    assert second.content == first.content
    assert not provider.loaded


@pytest.mark.llm
@pytest.mark.slow
async def test_real_model_truncates_an_overlong_prompt_instead_of_crashing() -> None:
    provider = LlamaCppProvider(n_ctx=512)
    evidence = " ".join(f"line {i}: disk usage at {i % 100} percent on volume data." for i in range(400))
    request = ChatRequest(
        messages=(
            Message(role="system", content="You are terse."),
            Message(role="user", content=evidence),
            Message(role="user", content="Say OK."),
        ),
        max_tokens=16,
        temperature=0.0,
        seed=1,
    )
    try:
        response = await provider.complete(request)
    finally:
        await provider.aclose()

    assert 0 < response.usage.input_tokens <= 512 - 16
    assert response.usage.output_tokens <= 16


async def test_unloadable_model_file_is_a_non_retryable_provider_error(tmp_path: Path) -> None:
    bogus = tmp_path / "bogus.gguf"
    bogus.write_bytes(b"not a gguf file")
    provider = LlamaCppProvider(model_path=bogus)
    request = ChatRequest(messages=(Message(role="user", content="hi"),), max_tokens=4)

    with pytest.raises(ProviderError, match="cannot load") as caught:
        await provider.complete(request)

    assert caught.value.retryable is False
    assert not provider.loaded
