"""Each HTTP adapter against the local multi-vendor test server, over a real socket."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from orchestrion.exceptions import ProviderError
from orchestrion.providers.anthropic import AnthropicProvider
from orchestrion.providers.base import ChatRequest, Message, ToolSpec
from orchestrion.providers.gemini import GeminiProvider
from orchestrion.providers.http import HTTPProvider
from orchestrion.providers.openai_compat import OpenAICompatProvider
from orchestrion.providers.options import Timeouts
from orchestrion.testing import Fault, VendorTestServer

VENDORS = ("openai", "anthropic", "gemini")
KEY = "test-key-0123456789"
SCHEMA = {
    "type": "object",
    "properties": {"summary": {"type": "string"}, "count": {"type": "integer"}},
    "required": ["summary", "count"],
}
GREP = ToolSpec(
    name="grep",
    description="Search files.",
    parameters={"type": "object", "properties": {"pattern": {"type": "string"}}, "required": ["pattern"]},
)


@pytest.fixture(scope="module")
def server() -> Iterator[VendorTestServer]:
    with VendorTestServer(model="test-model") as running:
        yield running


@pytest.fixture
def vendor_server(server: VendorTestServer) -> Iterator[VendorTestServer]:
    server.clear_faults()
    yield server
    server.clear_faults()


def _adapter(
    vendor: str, server: VendorTestServer, *, stream: bool = False, read: float = 5.0
) -> HTTPProvider:
    timeouts = Timeouts(connect=5.0, read=read)
    if vendor == "anthropic":
        return AnthropicProvider(
            base_url=server.anthropic_base_url,
            model="test-model",
            api_key=KEY,
            timeouts=timeouts,
            stream=stream,
        )
    if vendor == "gemini":
        return GeminiProvider(
            base_url=server.gemini_base_url, model="test-model", api_key=KEY, timeouts=timeouts, stream=stream
        )
    return OpenAICompatProvider(
        base_url=server.base_url, model="test-model", api_key=KEY, timeouts=timeouts, stream=stream
    )


@pytest.fixture
async def adapters(vendor_server: VendorTestServer) -> AsyncIterator[list[HTTPProvider]]:
    made: list[HTTPProvider] = []
    yield made
    for adapter in made:
        await adapter.aclose()


def _request(**kwargs: object) -> ChatRequest:
    return ChatRequest(messages=(Message(role="user", content="hello there"),), **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("vendor", VENDORS)
@pytest.mark.parametrize("stream", [False, True], ids=["plain", "streamed"])
async def test_round_trip_text_structured_output_and_a_tool_call(
    vendor_server: VendorTestServer, adapters: list[HTTPProvider], vendor: str, stream: bool
) -> None:
    adapter = _adapter(vendor, vendor_server, stream=stream)
    adapters.append(adapter)
    calls_before = vendor_server.count(vendor)

    text = await adapter.complete(_request())
    structured = await adapter.complete(_request(json_schema=SCHEMA))
    called = await adapter.complete(_request(tools=(GREP,), tool_choice="grep"))
    (use,) = called.tool_uses
    answered = await adapter.complete(
        ChatRequest(
            messages=(
                Message(role="user", content="find todos"),
                Message(role="assistant", content="", tool_uses=(use,)),
                Message(role="tool", content='["a.py:3"]', tool_use_id=use.id, name=use.name),
            ),
            tools=(GREP,),
        )
    )

    assert text.content == "ok: hello there"
    assert text.usage.input_tokens > 0
    assert text.deployment == f"{adapter.name}:test-model"
    assert structured.json() == {"summary": "ok", "count": 0}
    assert structured.tool_uses == ()
    assert (use.name, use.arguments) == ("grep", {"pattern": "ok"})
    assert answered.tool_uses == ()
    assert vendor_server.count(vendor) - calls_before == 4


FAULTS = [
    (Fault.status(429, retry_after=2), "rate_limited"),
    (Fault.html(502), "server_error"),
    (Fault.malformed(), "bad_response"),
    (Fault.empty_choices(), "bad_response"),
    (Fault.cut_stream(), "bad_response"),
    (Fault.disconnect(), "transport"),
    (Fault.reset(), "transport"),
]


@pytest.mark.parametrize("vendor", VENDORS)
@pytest.mark.parametrize("stream", [False, True], ids=["plain", "streamed"])
@pytest.mark.parametrize(("fault", "kind"), FAULTS, ids=[f.kind for f, _ in FAULTS])
async def test_injected_faults_become_retryable_errors_of_their_kind(
    vendor_server: VendorTestServer,
    adapters: list[HTTPProvider],
    vendor: str,
    stream: bool,
    fault: Fault,
    kind: str,
) -> None:
    adapter = _adapter(vendor, vendor_server, stream=stream)
    adapters.append(adapter)
    vendor_server.inject(fault, api=vendor)

    with pytest.raises(ProviderError) as caught:
        await adapter.complete(_request())
    recovered = await adapter.complete(_request())

    assert (caught.value.retryable, caught.value.kind) == (True, kind)
    assert caught.value.message.startswith(f"{adapter.deployment}: ")
    if fault.kind == "status":
        assert caught.value.retry_after == 2.0
    assert recovered.content == "ok: hello there"


@pytest.mark.parametrize("vendor", VENDORS)
async def test_a_slow_answer_past_the_read_limit_is_a_timeout(
    vendor_server: VendorTestServer, adapters: list[HTTPProvider], vendor: str
) -> None:
    adapter = _adapter(vendor, vendor_server, read=0.2)
    adapters.append(adapter)
    vendor_server.inject(Fault.slow(1.0), api=vendor)

    with pytest.raises(ProviderError) as caught:
        await adapter.complete(_request())

    assert (caught.value.retryable, caught.value.kind) == (True, "timeout")
