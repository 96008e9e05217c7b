"""Reading what the vendor test server sends back."""

from __future__ import annotations

import json
import re
from typing import Any

ANTHROPIC_HEADERS = {"x-api-key": "test-key", "anthropic-version": "2023-06-01"}
GEMINI_HEADERS = {"x-goog-api-key": "test-key"}


def parse_sse(text: str) -> list[tuple[str | None, str]]:
    """(event name, data) per server-sent event; blank lines separate events, LF or CRLF."""
    events: list[tuple[str | None, str]] = []
    for block in re.split(r"\r?\n\r?\n", text):
        if not block.strip():
            continue
        name: str | None = None
        data: list[str] = []
        for line in block.splitlines():
            if line.startswith("event:"):
                name = line[len("event:") :].strip()
            elif line.startswith("data:"):
                data.append(line[len("data:") :].strip())
        events.append((name, "\n".join(data)))
    return events


def sse_json(text: str) -> list[Any]:
    """The JSON data of every event, skipping OpenAI's ``[DONE]``."""
    return [json.loads(data) for _, data in parse_sse(text) if data != "[DONE]"]
