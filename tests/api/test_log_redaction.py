"""Credentials in query strings never reach the log."""

from __future__ import annotations

import logging

import pytest
import websockets

from orchestrion.api.logs import RedactCredentials, redact
from tests.conftest import LiveServer


def test_credential_parameters_are_redacted_and_the_rest_kept() -> None:
    text = '127.0.0.1:5 - "WebSocket /ws?channel=tasks&token=orc_abc.def&api_key=k1" [accepted]'
    assert redact(text) == (
        '127.0.0.1:5 - "WebSocket /ws?channel=tasks&token=[redacted]&api_key=[redacted]" [accepted]'
    )
    record = logging.LogRecord(
        "uvicorn.error", logging.INFO, "x", 1, '%s - "WebSocket %s"', ("c", "/ws?token=s3cret"), None
    )
    assert RedactCredentials().filter(record) and "s3cret" not in record.getMessage()


async def test_a_websocket_token_in_the_query_is_not_logged(
    live_server: LiveServer, caplog: pytest.LogCaptureFixture
) -> None:
    # The test server logs at WARNING and uvicorn's loggers do not propagate: listen at INFO directly.
    uvicorn_log = logging.getLogger("uvicorn.error")
    caplog.set_level(logging.INFO, logger="uvicorn.error")
    uvicorn_log.addHandler(caplog.handler)
    key = live_server.admin_key
    url = live_server.base_url.replace("http://", "ws://") + f"/ws?token={key}"
    async with websockets.connect(url) as ws:
        await ws.send('{"type": "ping"}')
        await ws.recv()
    uvicorn_log.removeHandler(caplog.handler)
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "WebSocket /ws?token=[redacted]" in logged  # uvicorn did log the handshake
    assert key not in logged
