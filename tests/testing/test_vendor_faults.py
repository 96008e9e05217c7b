"""Faults the vendor test server injects, seen by a plain httpx client on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
import time
from collections.abc import Callable

import httpx
import pytest

from orchestrion.testing import Fault, VendorTestServer
from tests.testing.helpers import ANTHROPIC_HEADERS, GEMINI_HEADERS, parse_sse, sse_json

USER = [{"role": "user", "content": "hello there"}]
GEMINI_BODY = {"contents": [{"role": "user", "parts": [{"text": "hello there"}]}]}

Call = Callable[[httpx.Client, bool], httpx.Response]


def _openai(client: httpx.Client, stream: bool = False) -> httpx.Response:
    return client.post("/v1/chat/completions", json={"messages": USER, "stream": stream})


def _anthropic(client: httpx.Client, stream: bool = False) -> httpx.Response:
    body = {"model": "claude-x", "max_tokens": 50, "messages": USER, "stream": stream}
    return client.post("/anthropic/v1/messages", json=body, headers=ANTHROPIC_HEADERS)


def _gemini(client: httpx.Client, stream: bool = False) -> httpx.Response:
    method = "streamGenerateContent" if stream else "generateContent"
    params = {"alt": "sse"} if stream else {}
    return client.post(
        f"/gemini/v1beta/models/gemini-x:{method}", json=GEMINI_BODY, params=params, headers=GEMINI_HEADERS
    )


CALLS: dict[str, Call] = {"openai": _openai, "anthropic": _anthropic, "gemini": _gemini}
APIS = list(CALLS)


def _error_type(api: str, body: dict[str, object]) -> object:
    """The vendor-specific error marker: OpenAI's error.type, Anthropic's type, Gemini's error.status."""
    if api == "anthropic":
        return body["type"]
    error = body["error"]
    assert isinstance(error, dict)
    return error["status"] if api == "gemini" else error["type"]


@pytest.mark.parametrize(
    ("api", "expected"), [("openai", "requests"), ("anthropic", "error"), ("gemini", "RESOURCE_EXHAUSTED")]
)
def test_status_fault_uses_the_vendor_error_shape_and_retry_after(
    client: httpx.Client, server: VendorTestServer, api: str, expected: str
) -> None:
    server.inject(Fault.status(429, retry_after=2), api=api)

    failed = CALLS[api](client, False)
    recovered = CALLS[api](client, False)

    assert failed.status_code == 429
    assert failed.headers["retry-after"] == "2"
    assert _error_type(api, failed.json()) == expected
    assert recovered.status_code == 200


def test_status_fault_without_retry_after_sends_no_header(
    client: httpx.Client, server: VendorTestServer
) -> None:
    server.inject(Fault.status(500), api="anthropic")

    response = _anthropic(client)

    assert response.status_code == 500
    assert "retry-after" not in response.headers
    assert response.json()["error"]["type"] == "api_error"


def test_fail_next_still_fails_the_next_requests(client: httpx.Client, server: VendorTestServer) -> None:
    server.fail_next(503, count=2, retry_after=1.5)

    statuses = [_openai(client).status_code for _ in range(3)]

    assert statuses == [503, 503, 200]


def test_fail_next_applies_to_any_vendor(client: httpx.Client, server: VendorTestServer) -> None:
    server.fail_next(503)

    assert _gemini(client).status_code == 503
    assert _openai(client).status_code == 200


def test_faults_for_one_api_wait_for_that_api_in_fifo_order(
    client: httpx.Client, server: VendorTestServer
) -> None:
    server.inject(Fault.status(500), api="gemini")
    server.inject(Fault.status(429), api="gemini")

    untouched = _openai(client).status_code
    first, second, third = (_gemini(client).status_code for _ in range(3))

    assert (untouched, first, second, third) == (200, 500, 429, 200)


def test_slow_fault_makes_a_shorter_client_timeout_fire(
    client: httpx.Client, server: VendorTestServer
) -> None:
    server.inject(Fault.slow(3.0))

    started = time.monotonic()
    with pytest.raises(httpx.ReadTimeout):
        client.post("/v1/chat/completions", json={"messages": USER}, timeout=0.3)

    assert time.monotonic() - started < 2.0
    assert _openai(client).status_code == 200


def test_slow_fault_within_the_timeout_answers_normally(
    client: httpx.Client, server: VendorTestServer
) -> None:
    server.inject(Fault.slow(0.2), api="anthropic")

    started = time.monotonic()
    response = _anthropic(client)

    assert time.monotonic() - started >= 0.2
    assert response.json()["content"][0]["text"] == "ok: hello there"


@pytest.mark.parametrize("api", APIS)
def test_malformed_fault_is_a_200_that_is_not_json(
    client: httpx.Client, server: VendorTestServer, api: str
) -> None:
    server.inject(Fault.malformed(), count=2, api=api)

    plain = CALLS[api](client, False)
    streamed = CALLS[api](client, True)

    assert plain.status_code == 200
    assert plain.headers["content-type"] == "application/json"
    with pytest.raises(json.JSONDecodeError):
        plain.json()
    assert streamed.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        json.loads(parse_sse(streamed.text)[0][1])


@pytest.mark.parametrize(
    ("api", "field"), [("openai", "choices"), ("anthropic", "content"), ("gemini", "candidates")]
)
def test_empty_fault_is_valid_json_with_nothing_in_it(
    client: httpx.Client, server: VendorTestServer, api: str, field: str
) -> None:
    server.inject(Fault.empty_choices(), count=2, api=api)

    plain = CALLS[api](client, False).json()
    streamed = sse_json(CALLS[api](client, True).text)

    assert plain[field] == []
    if api == "anthropic":
        assert [event["type"] for event in streamed] == ["message_start", "message_delta", "message_stop"]
    else:
        assert [event[field] for event in streamed] == [[]]


def test_html_fault_looks_like_a_proxy_error_page(client: httpx.Client, server: VendorTestServer) -> None:
    server.inject(Fault.html(502))

    response = _anthropic(client)

    assert response.status_code == 502
    assert response.headers["content-type"].startswith("text/html")
    assert "<title>502 Bad Gateway</title>" in response.text


@pytest.mark.parametrize("api", APIS)
def test_cut_stream_ends_without_the_end_marker(
    client: httpx.Client, server: VendorTestServer, api: str
) -> None:
    server.inject(Fault.cut_stream(), api=api)

    response = CALLS[api](client, True)

    events = parse_sse(response.text)
    payloads = [json.loads(data) for _, data in events]
    assert response.status_code == 200
    assert 1 <= len(events) <= 2
    if api == "openai":
        assert all(p["choices"][0]["finish_reason"] is None for p in payloads)
    elif api == "anthropic":
        assert [name for name, _ in events] == ["message_start", "content_block_start"]
    else:
        assert all("finishReason" not in p["candidates"][0] for p in payloads)


@pytest.mark.parametrize("api", APIS)
def test_cut_fault_truncates_a_non_streamed_body(
    client: httpx.Client, server: VendorTestServer, api: str
) -> None:
    server.inject(Fault.cut_stream(), api=api)

    response = CALLS[api](client, False)

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.text.startswith("{")
    with pytest.raises(json.JSONDecodeError):
        response.json()


def test_reset_fault_is_a_connection_reset_for_httpx(client: httpx.Client, server: VendorTestServer) -> None:
    server.inject(Fault.reset(), api="gemini")

    with pytest.raises(httpx.ReadError, match="reset"):
        _gemini(client)
    assert _gemini(client).status_code == 200


def test_disconnect_fault_is_a_remote_protocol_error_for_httpx(
    client: httpx.Client, server: VendorTestServer
) -> None:
    server.inject(Fault.disconnect())

    with pytest.raises(httpx.RemoteProtocolError, match="without sending a response"):
        _openai(client, True)
    assert _openai(client).status_code == 200


def _statuses(client: httpx.Client, count: int) -> list[int]:
    return [_openai(client).status_code for _ in range(count)]


def test_failure_rate_is_deterministic_for_a_seed(client: httpx.Client, server: VendorTestServer) -> None:
    faults = [Fault.status(429), Fault.status(500)]
    server.set_failure_rate(0.5, faults, seed=7)
    first = _statuses(client, 30)
    server.set_failure_rate(0.5, faults, seed=7)
    again = _statuses(client, 30)
    server.set_failure_rate(0.5, faults, seed=8)
    other = _statuses(client, 30)
    server.set_failure_rate(0, [])
    off = _statuses(client, 5)

    assert first == again
    assert first != other
    assert {429, 500, 200} == set(first)
    assert off == [200] * 5


def test_scripted_faults_take_precedence_over_the_rate(
    client: httpx.Client, server: VendorTestServer
) -> None:
    server.set_failure_rate(1.0, [Fault.status(500)], api="openai")
    server.inject(Fault.status(418))

    statuses = _statuses(client, 2)
    other_api = _anthropic(client).status_code

    assert statuses == [418, 500]
    assert other_api == 200


def test_fault_arguments_are_checked(server: VendorTestServer) -> None:
    with pytest.raises(ValueError, match="between 0 and 1"):
        server.set_failure_rate(1.5, [Fault.malformed()])
    with pytest.raises(ValueError, match="at least one fault"):
        server.set_failure_rate(0.5, [])
    with pytest.raises(ValueError, match="api must be"):
        server.inject(Fault.reset(), api="mistral")
    with pytest.raises(ValueError, match="4xx or 5xx"):
        Fault.status(200)
    with pytest.raises(ValueError, match="unknown fault"):
        Fault.parse("explode")


def test_fault_names_parse_for_the_command_line() -> None:
    assert Fault.parse("429", retry_after=1) == Fault.status(429, retry_after=1)
    assert Fault.parse(" timeout ", slow_seconds=4) == Fault.slow(4)
    assert [
        Fault.parse(name).kind for name in ("malformed", "empty", "html", "cut", "reset", "disconnect")
    ] == [
        "malformed",
        "empty",
        "html",
        "cut",
        "reset",
        "disconnect",
    ]


async def test_concurrent_requests_take_each_scripted_fault_once(server: VendorTestServer) -> None:
    server.inject(Fault.status(503), count=5)
    async with httpx.AsyncClient(base_url=server.url, trust_env=False) as client:
        responses = await asyncio.gather(
            *(client.post("/v1/chat/completions", json={"messages": USER}) for _ in range(20))
        )

    assert sorted(r.status_code for r in responses) == [200] * 15 + [503] * 5


def test_command_line_server_draws_faults_at_the_given_rate() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [
        sys.executable,
        "-m",
        "orchestrion.testing.vendor_server",
        "--port",
        str(port),
        "--failure-rate",
        "1",
        "--faults",
        "503",
        "--retry-after",
        "3",
        "--seed",
        "1",
    ]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", trust_env=False, timeout=5) as client:
            deadline = time.monotonic() + 20
            while True:
                try:
                    client.get("/v1/models")
                    break
                except httpx.TransportError:
                    assert process.poll() is None and time.monotonic() < deadline
                    time.sleep(0.05)
            response = _openai(client)
    finally:
        process.terminate()
        _, stderr = process.communicate(timeout=10)

    assert response.status_code == 503
    assert response.headers["retry-after"] == "3"
    assert b"Warning" not in stderr
