"""The `/ws` protocol: close codes, channels, client messages parsed, server messages formatted.

Pure functions and values, no I/O; `docs/websocket.md` and `docs/websocket.schema.json` describe the
same protocol for clients, and a test holds the server's messages to that schema.
"""

from __future__ import annotations

import enum
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from orchestrion.domain.events import Channel, Event, Notice
from orchestrion.exceptions import UnknownChoiceError, ValidationError
from orchestrion.security import ROLES

PROTOCOL_VERSION = 1
MAX_CLIENT_MESSAGE_BYTES = 64 * 1024
AUTH_TIMEOUT_SECONDS = 10.0
CLOSE_TIMEOUT_SECONDS = 5.0
SILENT_INTERVALS = 2  # a client silent for this many ping intervals is closed


class CloseCode(enum.IntEnum):
    """Close codes the server uses (4000-4999 are the application's)."""

    NORMAL = 1000
    GOING_AWAY = 1001  # the server is shutting down
    INTERNAL_ERROR = 1011
    UNAUTHORIZED = 4401  # no, invalid or expired credentials, or no `auth` message in time
    HEARTBEAT_TIMEOUT = 4408  # nothing received for two ping intervals
    SLOW_CONSUMER = 4429  # the send queue filled up: reconnect and resume


TASKS_CHANNEL = "tasks"
TASK_CHANNEL_PREFIX = "task:"
NOTICE_CHANNELS = tuple(c.value for c in Channel)
CHANNEL_PATTERNS = (f"{TASK_CHANNEL_PREFIX}{{id}}", TASKS_CHANNEL, *NOTICE_CHANNELS)
# Notices describe the server (agents, engines, provider circuits, alerts, host metrics), not anyone's
# tasks: like `GET /providers` and `/metrics`, every role may read them. One table, to change in one place.
NOTICE_CHANNEL_ROLES: dict[str, tuple[str, ...]] = dict.fromkeys(NOTICE_CHANNELS, ROLES)
CLIENT_MESSAGE_TYPES = ("auth", "subscribe", "unsubscribe", "ping", "pong")
_TASK_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


@dataclass(frozen=True, kw_only=True)
class ChannelRef:
    """A parsed channel name: `task:{id}` (task_id set), `tasks`, or a notice channel."""

    name: str
    task_id: str | None = None

    @property
    def is_task_stream(self) -> bool:
        """True for the channels of task events (`task:{id}` and `tasks`)."""
        return self.task_id is not None or self.name == TASKS_CHANNEL


@dataclass(frozen=True, kw_only=True)
class ClientMessage:
    """A validated client message; fields that do not apply to its type are None."""

    type: str
    id: str | int | None = None
    token: str | None = None
    channel: ChannelRef | None = None
    last_event_id: int | None = None
    last_seq: int | None = None


def parse_channel(value: Any) -> ChannelRef:
    """The channel named by `value`.

    Raises:
        UnknownChoiceError: Not a channel; `choices` lists the valid patterns.
    """
    if isinstance(value, str):
        if value.startswith(TASK_CHANNEL_PREFIX):
            task_id = value[len(TASK_CHANNEL_PREFIX) :]
            if _TASK_ID.fullmatch(task_id):
                return ChannelRef(name=value, task_id=task_id)
        elif value == TASKS_CHANNEL or value in NOTICE_CHANNELS:
            return ChannelRef(name=value)
    raise UnknownChoiceError(field="channel", value=str(value)[:80], choices=CHANNEL_PATTERNS)


def parse_client_message(text: str) -> ClientMessage:
    """Validate one text frame from a client.

    Raises:
        ValidationError: Too large, not JSON, not an object, or a field of the wrong type; `field`
            names it (`message` for the frame as a whole) and `choices` lists valid values when the
            set is closed.
    """
    if len(text) > MAX_CLIENT_MESSAGE_BYTES or len(text.encode()) > MAX_CLIENT_MESSAGE_BYTES:
        raise ValidationError(
            f"message over {MAX_CLIENT_MESSAGE_BYTES} bytes",
            field="message",
            details={"max_bytes": MAX_CLIENT_MESSAGE_BYTES},
        )
    try:
        raw = json.loads(text)
    except ValueError as exc:
        raise ValidationError(f"message is not JSON: {exc}", field="message") from None
    if not isinstance(raw, dict):
        raise ValidationError("message must be a JSON object", field="message")
    request_id = raw.get("id")
    if request_id is not None and not (
        (isinstance(request_id, str) and len(request_id) <= 64)
        or (isinstance(request_id, int) and not isinstance(request_id, bool))
    ):
        raise ValidationError("id must be a string of at most 64 characters or an integer", field="id")
    kind = raw.get("type")
    if kind not in CLIENT_MESSAGE_TYPES:
        raise UnknownChoiceError(field="type", value=str(kind)[:40], choices=CLIENT_MESSAGE_TYPES)
    if kind == "auth":
        token = raw.get("token")
        if not isinstance(token, str) or not token.strip():
            raise ValidationError("auth needs a non-empty `token`", field="token")
        return ClientMessage(type=kind, id=request_id, token=token.strip())
    if kind in ("subscribe", "unsubscribe"):
        channel = parse_channel(raw.get("channel"))
        if kind == "unsubscribe":
            return ClientMessage(type=kind, id=request_id, channel=channel)
        last_event_id = _cursor(raw, "last_event_id")
        last_seq = _cursor(raw, "last_seq")
        if last_seq is not None and channel.task_id is None:
            raise ValidationError("last_seq applies to task:{id} channels only", field="last_seq")
        if last_seq is not None and last_event_id is not None:
            raise ValidationError("give last_event_id or last_seq, not both", field="last_seq")
        return ClientMessage(
            type=kind, id=request_id, channel=channel, last_event_id=last_event_id, last_seq=last_seq
        )
    return ClientMessage(type=kind, id=request_id)


def _cursor(raw: dict[str, Any], field: str) -> int | None:
    value = raw.get(field)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValidationError(f"{field} must be an integer >= 0", field=field)
    return value


# -- server messages -----------------------------------------------------------------------------


def encode(message: dict[str, Any]) -> str:
    """One server message as compact JSON text."""
    return json.dumps(message, separators=(",", ":"))


def _iso(moment: datetime) -> str:
    return (moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)).isoformat()


def task_event_message(event: Event, channel: str) -> str:
    """A task event as delivered on `channel` (`task:{id}` or `tasks`)."""
    return encode(
        {
            "type": event.type,
            "channel": channel,
            "event_id": event.id,
            "task_id": event.task_id,
            "seq": event.seq,
            "data": event.data,
            "created_at": _iso(event.created_at),
        }
    )


def notice_message(notice: Notice, *, resumable: bool) -> str:
    """A notice as delivered on its channel.

    `event_id` is the notice's id only on a resumable channel (one with a `NoticeLog`), where it is the
    cursor to resume from; elsewhere it is null (an alert's id, for one, names the alert, not the notice).
    """
    return encode(
        {
            "type": notice.type,
            "channel": notice.channel,
            "event_id": notice.id if resumable else None,
            "data": notice.data,
            "created_at": _iso(notice.created_at),
        }
    )


def with_id(message: dict[str, Any], request_id: str | int | None) -> dict[str, Any]:
    """`message` echoing the client's request id, when it gave one."""
    if request_id is not None:
        message["id"] = request_id
    return message


def error_message(
    code: str, message: str, *, details: dict[str, Any] | None = None, request_id: str | int | None = None
) -> str:
    """An `error` message (the REST error envelope's fields, flattened)."""
    return encode(
        with_id({"type": "error", "code": code, "message": message, "details": details or {}}, request_id)
    )


PING_MESSAGE = encode({"type": "ping"})
