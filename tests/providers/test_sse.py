from __future__ import annotations

import itertools
from collections.abc import AsyncIterator

import httpx
from hypothesis import given
from hypothesis import strategies as st

from orchestrion.providers.sse import SSEDecoder, SSEMessage, aiter_sse, iter_sse


def _decode(*chunks: str) -> list[SSEMessage]:
    decoder = SSEDecoder()
    messages = [message for chunk in chunks for message in decoder.feed(chunk)]
    last = decoder.close()
    return [*messages, last] if last is not None else messages


async def _chunks(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


def test_events_are_split_on_blank_lines_with_their_names() -> None:
    text = 'event: message_start\ndata: {"a": 1}\n\ndata: plain\n\n'

    assert _decode(text) == [
        SSEMessage(event="message_start", data='{"a": 1}'),
        SSEMessage(event=None, data="plain"),
    ]


def test_multi_line_data_is_joined_with_newlines() -> None:
    assert _decode("data: first\ndata: second\ndata:\n\n") == [SSEMessage(event=None, data="first\nsecond\n")]


def test_comments_ids_retries_and_unknown_fields_are_ignored() -> None:
    text = ": keep-alive\nid: 7\nretry: 1000\nfoo: bar\ndata: x\n\n: OPENROUTER PROCESSING\n\n"

    assert _decode(text) == [SSEMessage(event=None, data="x")]


def test_only_one_space_after_the_colon_is_dropped() -> None:
    assert _decode("data:no-space\n\ndata:  two\n\n") == [
        SSEMessage(event=None, data="no-space"),
        SSEMessage(event=None, data=" two"),
    ]


def test_a_field_without_colon_has_an_empty_value() -> None:
    assert _decode("data\n\n") == [SSEMessage(event=None, data="")]


def test_an_event_without_data_is_not_delivered_and_its_name_is_forgotten() -> None:
    assert _decode("event: ping\n\ndata: x\n\n") == [SSEMessage(event=None, data="x")]


def test_crlf_and_cr_line_endings_are_understood() -> None:
    assert _decode("event: a\r\ndata: 1\r\n\r\nevent: b\rdata: 2\r\r") == [
        SSEMessage(event="a", data="1"),
        SSEMessage(event="b", data="2"),
    ]


def test_a_crlf_split_across_chunks_is_one_line_end() -> None:
    assert _decode("data: 1\r", "\n\r", "\ndata: 2\r\n\r\n") == [
        SSEMessage(event=None, data="1"),
        SSEMessage(event=None, data="2"),
    ]


def test_a_last_event_without_blank_line_is_flushed_when_its_lines_are_complete() -> None:
    assert _decode("data: 1\n\ndata: [DONE]\n") == [
        SSEMessage(event=None, data="1"),
        SSEMessage(event=None, data="[DONE]"),
    ]


def test_a_trailing_cr_completes_the_last_line() -> None:
    assert _decode("data: last\r") == [SSEMessage(event=None, data="last")]


def test_a_line_cut_off_mid_way_is_dropped() -> None:
    assert _decode('data: 1\n\ndata: {"choi') == [SSEMessage(event=None, data="1")]


def test_complete_lines_before_a_cut_off_line_are_not_mixed_with_it() -> None:
    assert _decode("data: a\ndata: b") == [SSEMessage(event=None, data="a")]


def test_a_leading_byte_order_mark_is_ignored() -> None:
    assert _decode("\ufeffdata: x\n\n") == [SSEMessage(event=None, data="x")]


def test_feed_returns_events_as_soon_as_they_are_complete() -> None:
    decoder = SSEDecoder()

    assert decoder.feed("data: a\n") == []
    assert decoder.feed("\ndata: b") == [SSEMessage(event=None, data="a")]
    assert decoder.feed("\n\n") == [SSEMessage(event=None, data="b")]
    assert decoder.close() is None


STREAM = (
    'event: message_start\r\ndata: {"type": "message_start"}\r\n\r\n'
    ": ping\n"
    "data: line one\ndata: line two\n\n"
    "event: x\rdata: é ✓\r\r"
    "data: [DONE]\n\n"
)


@given(cuts=st.lists(st.integers(min_value=0, max_value=len(STREAM)), max_size=12))
def test_events_do_not_depend_on_where_the_chunks_are_cut(cuts: list[int]) -> None:
    bounds = [0, *sorted(cuts), len(STREAM)]
    chunks = [STREAM[start:end] for start, end in itertools.pairwise(bounds)]

    assert _decode(*chunks) == _decode(STREAM)
    assert len(_decode(STREAM)) == 4


async def test_iter_sse_decodes_utf8_split_inside_a_character() -> None:
    raw = "data: café ✓\n\n".encode()
    cut = raw.index("✓".encode()) + 1

    messages = [m async for m in iter_sse(_chunks(raw[:cut], raw[cut:]))]

    assert messages == [SSEMessage(event=None, data="café ✓")]


async def test_iter_sse_flushes_an_unterminated_last_event() -> None:
    messages = [m async for m in iter_sse(_chunks(b"data: 1\n\n", b"data: 2\n"))]

    assert [m.data for m in messages] == ["1", "2"]


async def test_aiter_sse_reads_a_streamed_httpx_response() -> None:
    body = b"event: a\ndata: 1\n\n: comment\ndata: 2\n\n"

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=body)

    async with (
        httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client,
        client.stream("GET", "https://sse.example/") as response,
    ):
        messages = [m async for m in aiter_sse(response)]

    assert messages == [SSEMessage(event="a", data="1"), SSEMessage(event=None, data="2")]
