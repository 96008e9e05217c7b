"""No test can reach a real LLM vendor: the guard installed by conftest refuses it."""

from __future__ import annotations

import os
import socket

import pytest

from orchestrion.exceptions import ProviderError
from orchestrion.providers.base import ChatRequest, Message
from orchestrion.providers.factory import build_adapter
from orchestrion.providers.options import DeploymentConfig
from orchestrion.providers.presets import PRESETS
from orchestrion.settings import Settings
from tests.network_guard import OutboundTrafficRefused

REQUEST = ChatRequest(messages=(Message(role="user", content="hello"),), max_tokens=8)


def test_vendor_keys_are_removed_from_the_environment() -> None:
    keyed = [p.api_key_env for p in PRESETS.values() if p.api_key_env]
    assert keyed and not [name for name in keyed if name in os.environ]


def test_connections_beyond_loopback_are_refused() -> None:
    with socket.socket() as sock, pytest.raises(OutboundTrafficRefused):
        sock.connect(("93.184.216.34", 443))
    with pytest.raises(OutboundTrafficRefused):
        socket.getaddrinfo("api.openai.com", 443)


@pytest.mark.parametrize("preset", ["openai", "anthropic", "gemini", "groq", "openrouter"])
async def test_a_real_vendor_deployment_cannot_be_reached(preset: str, tmp_path: object) -> None:
    config = DeploymentConfig(name=f"{preset}:m", provider=preset, model="m")
    variable = PRESETS[preset].api_key_env
    assert variable is not None
    adapter = build_adapter(config, settings=Settings(), environ={variable: "sk-not-a-real-key"})
    try:
        with pytest.raises(ProviderError) as caught:
            await adapter.complete(REQUEST)
    finally:
        await adapter.aclose()
    assert caught.value.kind == "transport"
    assert "sk-not-a-real-key" not in caught.value.message
