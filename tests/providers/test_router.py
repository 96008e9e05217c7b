from __future__ import annotations

import pytest

from orchestrion.exceptions import ConfigurationError, ProviderError
from orchestrion.providers.base import ChatRequest, Message
from orchestrion.providers.router import ProviderRouter
from orchestrion.testing import ScriptedProvider

REQUEST = ChatRequest(messages=(Message(role="user", content="summarise this"),))


def _failure(provider: str, *, retryable: bool, message: str = "boom") -> ProviderError:
    return ProviderError(
        message, provider=provider, retryable=retryable, status_code=503 if retryable else 400
    )


async def test_falls_back_to_second_provider_when_first_fails() -> None:
    first = ScriptedProvider([_failure("first", retryable=True)], name="first")
    second = ScriptedProvider(["from second"], name="second")
    router = ProviderRouter({"default": [first, second]})

    response = await router.complete("default", REQUEST)

    assert response.content == "from second"
    assert response.provider == "second"
    assert len(first.requests) == len(second.requests) == 1


async def test_first_success_does_not_call_later_providers() -> None:
    first = ScriptedProvider(["from first"], name="first")
    second = ScriptedProvider(["from second"], name="second")
    router = ProviderRouter({"default": [first, second]})

    response = await router.complete("default", REQUEST)

    assert response.content == "from first"
    assert second.requests == []


async def test_all_failing_raises_error_listing_every_deployment() -> None:
    first = ScriptedProvider([_failure("first", retryable=False, message="bad request")], name="first")
    second = ScriptedProvider([_failure("second", retryable=True, message="overloaded")], name="second")
    router = ProviderRouter({"default": [first, second]})

    with pytest.raises(ProviderError) as caught:
        await router.complete("default", REQUEST)

    message = caught.value.message
    assert "first:scripted: bad request" in message
    assert "second:scripted: overloaded" in message
    assert caught.value.retryable is True
    assert caught.value.provider == "second"


async def test_all_failing_with_only_permanent_errors_is_not_retryable() -> None:
    only = ScriptedProvider([_failure("only", retryable=False)], name="only")

    with pytest.raises(ProviderError) as caught:
        await ProviderRouter({"default": [only]}).complete("default", REQUEST)

    assert caught.value.retryable is False
    assert caught.value.status_code == 400


async def test_non_provider_errors_propagate_without_fallback() -> None:
    first = ScriptedProvider([RuntimeError("a bug, not an outage")], name="first")
    second = ScriptedProvider(["from second"], name="second")

    with pytest.raises(RuntimeError, match="a bug"):
        await ProviderRouter({"default": [first, second]}).complete("default", REQUEST)

    assert second.requests == []


async def test_unknown_route_names_the_valid_routes() -> None:
    router = ProviderRouter({"default": [ScriptedProvider()], "fast": [ScriptedProvider()]})

    with pytest.raises(ConfigurationError) as caught:
        await router.complete("missing", REQUEST)

    assert "'missing'" in caught.value.message
    assert "default, fast" in caught.value.message
    assert caught.value.details["choices"] == ["default", "fast"]


def test_route_without_providers_is_rejected() -> None:
    with pytest.raises(ConfigurationError, match="'empty'"):
        ProviderRouter({"empty": []})


def test_routes_lists_deployments_in_fallback_order() -> None:
    router = ProviderRouter(
        {"default": [ScriptedProvider(name="a", model="m1"), ScriptedProvider(name="b", model="m2")]}
    )

    assert router.routes() == {"default": ["a:m1", "b:m2"]}
    assert router.has_route("default")
    assert not router.has_route("other")


async def test_aclose_closes_each_distinct_provider_once() -> None:
    calls: list[str] = []

    class CountingProvider(ScriptedProvider):
        async def aclose(self) -> None:
            calls.append(self.name)

    shared, other = CountingProvider(name="shared"), CountingProvider(name="other")
    router = ProviderRouter({"default": [shared, other], "fast": [shared]})

    await router.aclose()

    assert sorted(calls) == ["other", "shared"]
