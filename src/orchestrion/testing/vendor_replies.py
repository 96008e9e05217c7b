"""How the vendor test server answers a parsed chat request: normally, or with an injected fault."""

from __future__ import annotations

from orchestrion.testing.asgi_io import (
    HTML_TYPE,
    JSON_TYPE,
    Receive,
    Send,
    drop_connection,
    html_page,
    pause,
    send_body,
    send_stream,
)
from orchestrion.testing.faults import Fault
from orchestrion.testing.vendor_wire import Conversation, WireFormat, answer_conversation, dump_json


async def send_answer(wire: WireFormat, conversation: Conversation, send: Send) -> None:
    """Answer normally, streamed or not as the client asked."""
    answer = answer_conversation(conversation)
    if conversation.stream:
        await send_stream(send, wire.stream_content_type, wire.stream_events(conversation, answer))
    else:
        await send_body(send, 200, JSON_TYPE, dump_json(wire.reply(conversation, answer)))


async def send_fault(
    fault: Fault, wire: WireFormat, conversation: Conversation, receive: Receive, send: Send
) -> None:
    """Answer with `fault` instead (see the `Fault` constructors for what each kind does)."""
    kind, stream = fault.kind, conversation.stream
    if kind == "status":
        extra = [] if fault.retry_after is None else [(b"retry-after", f"{fault.retry_after:g}".encode())]
        error = wire.error_body(fault.status_code, f"injected fault: HTTP {fault.status_code}")
        await send_body(send, fault.status_code, JSON_TYPE, dump_json(error), extra)
    elif kind == "slow":
        if await pause(receive, fault.seconds):
            await send_answer(wire, conversation, send)
    elif kind == "malformed":
        if stream:
            await send_stream(send, wire.stream_content_type, wire.malformed_events())
        else:
            await send_body(send, 200, JSON_TYPE, wire.malformed_body())
    elif kind == "empty":
        if stream:
            await send_stream(send, wire.stream_content_type, wire.empty_events(conversation))
        else:
            await send_body(send, 200, JSON_TYPE, dump_json(wire.empty_reply(conversation)))
    elif kind == "html":
        await send_body(send, fault.status_code, HTML_TYPE, html_page(fault.status_code))
    elif kind == "cut":
        answer = answer_conversation(conversation)
        if stream:
            await send_stream(send, wire.stream_content_type, wire.cut_events(conversation, answer))
        else:
            # A body cut in half, with a content length that matches what is sent.
            full = dump_json(wire.reply(conversation, answer))
            await send_body(send, 200, JSON_TYPE, full[: len(full) // 2])
    else:
        await drop_connection(send, receive, reset=kind == "reset")
