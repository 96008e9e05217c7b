"""Token estimates made before a call, for budgets and tokens-per-minute limits.

Vendors count with their own tokenizers, which we do not ship. English prose and code average about
four characters per token on the common BPE vocabularies, so a character count over 3 (rounded up,
plus a per-message allowance for the chat template) is a deliberate over-estimate: a budget check
errs towards refusing a call rather than overspending, and actual usage replaces the estimate as
soon as the vendor reports it.
"""

from __future__ import annotations

import json

from orchestrion.providers.base import ChatRequest

_CHARS_PER_TOKEN = 3
_PER_MESSAGE_TOKENS = 4


def estimate_input_tokens(request: ChatRequest) -> int:
    """An upper estimate of the input tokens `request` will be billed for."""
    chars = 0
    for message in request.messages:
        chars += len(message.content)
        for use in message.tool_uses:
            chars += len(use.name) + len(json.dumps(use.arguments))
    for tool in request.tools:
        chars += len(tool.name) + len(tool.description) + len(json.dumps(tool.parameters))
    if request.json_schema is not None:
        chars += len(json.dumps(request.json_schema))
    return -(-chars // _CHARS_PER_TOKEN) + _PER_MESSAGE_TOKENS * len(request.messages)


def estimate_total_tokens(request: ChatRequest) -> int:
    """Input estimate plus the most the reply may use."""
    return estimate_input_tokens(request) + request.max_tokens
