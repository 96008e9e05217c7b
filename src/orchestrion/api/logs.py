"""Keep credentials out of the server's logs.

uvicorn logs each WebSocket handshake with its path and query string ("WebSocket /ws?token=..."), so
a client authenticating with `?token=` would leave its key in the log. The filter rewrites such
records before any handler sees them.
"""

from __future__ import annotations

import logging
import re

_SECRET_PARAMS = re.compile(r"((?:token|api_key|access_token)=)[^&\s\"']+", re.IGNORECASE)
_LOGGERS = ("uvicorn.error", "uvicorn.access", "uvicorn")


def redact(text: str) -> str:
    """`text` with the values of credential query parameters replaced."""
    return _SECRET_PARAMS.sub(r"\1[redacted]", text)


class RedactCredentials(logging.Filter):
    """Redacts credential query parameters in a record's message and arguments."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        elif isinstance(record.args, dict):
            record.args = {k: redact(v) if isinstance(v, str) else v for k, v in record.args.items()}
        return True


def install_redaction() -> None:
    """Attach the filter to uvicorn's loggers (idempotent; call after uvicorn configured logging)."""
    for name in _LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactCredentials) for f in logger.filters):
            logger.addFilter(RedactCredentials())
