"""A Server-Sent Events parser for streamed vendor responses.

OpenAI-compatible servers, Anthropic and Gemini all stream completions as ``text/event-stream``.
`SSEDecoder` is the pure part: it is fed text in chunks of any size and returns each complete
event. `aiter_sse` drives it from an `httpx.Response` opened with ``client.stream(...)``.

The parser follows the WHATWG rules that matter to these vendors: lines end with LF, CRLF or CR;
``data:`` lines of one event are joined with newlines; ``event:`` names the event; comments (lines
starting with ``:``), ``id:``, ``retry:`` and unknown fields are ignored; one space after the colon
is dropped. It departs from the standard in one place: when the stream ends, an event whose lines
all arrived but whose terminating blank line did not is still delivered, because some servers
close the connection straight after the last ``data:`` line. A final line that was cut off mid-way
is never delivered; the vendor adapters then notice the missing end marker.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import AsyncGenerator, AsyncIterable
from dataclasses import dataclass

import httpx

_LINE_END = re.compile(r"\r\n|\r|\n")
_BOM = "\ufeff"


@dataclass(frozen=True, kw_only=True)
class SSEMessage:
    """One event of a stream.

    Attributes:
        event: The ``event:`` field, or None when the event named none.
        data: The ``data:`` lines joined with newlines.
    """

    event: str | None
    data: str


class SSEDecoder:
    """An incremental Server-Sent Events decoder: feed it text, collect the events."""

    def __init__(self) -> None:
        self._buffer = ""
        self._started = False
        self._event: str | None = None
        self._data: list[str] = []

    def feed(self, text: str) -> list[SSEMessage]:
        """Add received text and return the events it completed.

        Args:
            text: The next piece of the stream; it may end anywhere, even inside a CRLF pair.

        Returns:
            The events whose terminating blank line arrived, in order.
        """
        if not self._started and text:
            self._started = True
            text = text.removeprefix(_BOM)
        buffer = self._buffer + text
        messages: list[SSEMessage] = []
        start = 0
        while (match := _LINE_END.search(buffer, start)) is not None:
            # A CR at the very end may be the first half of a CRLF whose LF is in the next chunk.
            if match.group() == "\r" and match.end() == len(buffer):
                break
            message = self._line(buffer[start : match.start()])
            start = match.end()
            if message is not None:
                messages.append(message)
        self._buffer = buffer[start:]
        return messages

    def close(self) -> SSEMessage | None:
        """End the stream and return the last event when its lines were complete.

        Returns:
            The pending event built from complete lines, or None when there is none. A trailing
            partial line (the connection dropped inside it) is discarded.
        """
        # A CR left at the end terminated its line: no LF can follow any more.
        completed = self._line(self._buffer[:-1]) if self._buffer.endswith("\r") else None
        self._buffer = ""
        return completed or self._dispatch()

    def _line(self, line: str) -> SSEMessage | None:
        if not line:
            return self._dispatch()
        if line.startswith(":"):
            return None
        field, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if field == "data":
            self._data.append(value)
        elif field == "event":
            self._event = value or None
        return None

    def _dispatch(self) -> SSEMessage | None:
        # An event with no data lines is not delivered (WHATWG); its name is forgotten all the same.
        event, data = self._event, self._data
        self._event, self._data = None, []
        if not data:
            return None
        return SSEMessage(event=event, data="\n".join(data))


async def iter_sse(chunks: AsyncIterable[bytes]) -> AsyncGenerator[SSEMessage, None]:
    """Decode a stream of raw byte chunks (UTF-8, as the SSE standard requires) into events.

    Args:
        chunks: The body as it arrives.

    Yields:
        Each event, as soon as it is complete.
    """
    decoder = SSEDecoder()
    text = codecs.getincrementaldecoder("utf-8")(errors="replace")
    async for chunk in chunks:
        for message in decoder.feed(text.decode(chunk)):
            yield message
    for message in decoder.feed(text.decode(b"", final=True)):
        yield message
    last = decoder.close()
    if last is not None:
        yield last


def aiter_sse(response: httpx.Response) -> AsyncGenerator[SSEMessage, None]:
    """Decode the events of a streamed `httpx.Response`.

    It reads `aiter_bytes` rather than `aiter_lines`, because `aiter_lines` hands over a final
    line cut off mid-way as if it were complete.

    Args:
        response: A response opened with ``client.stream(...)`` and not read yet.

    Returns:
        An async generator of the events, each yielded as soon as it is complete. Transport errors
        (`httpx.HTTPError`) propagate from it.
    """
    return iter_sse(response.aiter_bytes())
