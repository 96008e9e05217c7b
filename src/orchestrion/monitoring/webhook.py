"""Alert notifications POSTed to the operator's webhook, with retries, off the evaluation loop.

`AlertWebhook.submit` only queues; one background task delivers in order (a resolve never overtakes
its fire). A delivery is retried on transport errors, timeouts, 408, 429 and 5xx answers, with
exponential backoff (`backoff` seconds doubling up to `max_backoff`), at most `max_attempts` times;
any other answer ends it. The outcome is reported to `on_delivery` (the alert manager records it on
the alert) and counted in `orchestrion_alert_webhook_deliveries_total{outcome}`.

With a secret, each attempt carries ``X-Orchestrion-Timestamp`` (Unix seconds) and
``X-Orchestrion-Signature: sha256=<hex>``, the HMAC-SHA256 of ``<timestamp>.<body>`` under the
secret. Neither the secret nor the URL (which may embed a token) is logged; only the URL's host is.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
from prometheus_client import CollectorRegistry, Counter

from orchestrion import __version__
from orchestrion.exceptions import ConfigurationError

logger = logging.getLogger(__name__)

DeliveryHook = Callable[[int, bool, int], Awaitable[None]]
"""Called with the alert id, whether the notification was delivered, and the attempts made."""

_RETRY_STATUSES = frozenset({408, 425, 429})


def check_webhook_url(url: str) -> str:
    """The URL if it is an absolute http(s) URL with a host.

    Raises:
        ConfigurationError: Otherwise (the message shows the scheme, never the whole URL).
    """
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigurationError(
            f"ORCHESTRION_ALERT_WEBHOOK_URL: expected an http:// or https:// URL with a host "
            f"(scheme {parts.scheme or 'missing'!r})",
            details={"key": "alert_webhook_url", "choices": ["http", "https"]},
        )
    return url.strip()


def sign(secret: bytes, timestamp: str, body: bytes) -> str:
    """The signature header value: ``sha256=`` and the HMAC-SHA256 of ``<timestamp>.<body>``."""
    digest = hmac.new(secret, timestamp.encode("ascii") + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


@dataclass(frozen=True, kw_only=True)
class _Delivery:
    alert_id: int
    event: str
    body: bytes
    delivery_id: str


class AlertWebhook:
    """Delivers alert notifications to one URL.

    Args:
        url: The webhook (http or https).
        secret: Signs each attempt when given.
        max_attempts: Attempts per notification, the first included.
        registry: Where the delivery counter is registered.
        timeout: Seconds per attempt.
        backoff: Seconds before the first retry; doubles for each next one.
        max_backoff: The longest wait between attempts.
        client: The HTTP client (default: one owned and closed by this object).
        queue_size: Notifications waiting beyond this are dropped (and counted), never waited for.
    """

    def __init__(
        self,
        url: str,
        *,
        secret: str | None,
        max_attempts: int,
        registry: CollectorRegistry,
        timeout: float = 10.0,
        backoff: float = 1.0,
        max_backoff: float = 60.0,
        client: httpx.AsyncClient | None = None,
        queue_size: int = 1000,
    ) -> None:
        self._url = check_webhook_url(url)
        self.host = urlsplit(self._url).hostname or ""
        self._secret = secret.encode("utf-8") if secret else None
        self._max_attempts = max_attempts
        self._backoff = backoff
        self._max_backoff = max_backoff
        self._owns_client = client is None
        self._client = client if client is not None else httpx.AsyncClient(timeout=timeout)
        self._queue: asyncio.Queue[_Delivery] = asyncio.Queue(maxsize=queue_size)
        self._task: asyncio.Task[None] | None = None
        self.on_delivery: DeliveryHook | None = None
        self.deliveries_total = Counter(
            "orchestrion_alert_webhook_deliveries_total",
            "Alert notifications by outcome: delivered, failed (attempts exhausted or refused), dropped.",
            ["outcome"],
            registry=registry,
        )

    def submit(self, *, event: str, alert_id: int, payload: dict[str, Any]) -> None:
        """Queue a notification without waiting; dropped (logged, counted) when the queue is full."""
        body = json.dumps(payload, separators=(",", ":"), sort_keys=True).encode("utf-8")
        delivery = _Delivery(alert_id=alert_id, event=event, body=body, delivery_id=uuid.uuid4().hex)
        try:
            self._queue.put_nowait(delivery)
        except asyncio.QueueFull:
            self.deliveries_total.labels("dropped").inc()
            logger.warning("alert webhook queue full: dropped %s of alert %d", event, alert_id)

    def start(self) -> None:
        """Start the delivery task."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="alert-webhook")

    async def stop(self) -> None:
        """Stop delivering (queued notifications are abandoned: their alerts stay `notified: false`)."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        if self._owns_client:
            await self._client.aclose()

    async def _run(self) -> None:
        while True:
            delivery = await self._queue.get()
            delivered, attempts = await self._deliver(delivery)
            self.deliveries_total.labels("delivered" if delivered else "failed").inc()
            if self.on_delivery is not None:
                try:
                    await self.on_delivery(delivery.alert_id, delivered, attempts)
                except Exception:
                    logger.exception("could not record the webhook outcome of alert %d", delivery.alert_id)

    async def _deliver(self, delivery: _Delivery) -> tuple[bool, int]:
        attempt = 0
        while True:
            attempt += 1
            retry, problem = await self._attempt(delivery)
            if not problem:
                return True, attempt
            if not retry or attempt >= self._max_attempts:
                logger.warning(
                    "alert webhook to %s gave up on %s of alert %d after %d attempt(s): %s",
                    self.host,
                    delivery.event,
                    delivery.alert_id,
                    attempt,
                    problem,
                )
                return False, attempt
            await asyncio.sleep(min(self._max_backoff, self._backoff * 2 ** (attempt - 1)))

    async def _attempt(self, delivery: _Delivery) -> tuple[bool, str]:
        """One POST: whether to retry and what went wrong ("" when delivered)."""
        headers = {
            "Content-Type": "application/json",
            "User-Agent": f"orchestrion/{__version__}",
            "X-Orchestrion-Event": delivery.event,
            "X-Orchestrion-Delivery": delivery.delivery_id,
        }
        if self._secret is not None:
            timestamp = str(int(time.time()))
            headers["X-Orchestrion-Timestamp"] = timestamp
            headers["X-Orchestrion-Signature"] = sign(self._secret, timestamp, delivery.body)
        try:
            response = await self._client.post(self._url, content=delivery.body, headers=headers)
        except httpx.TransportError as exc:
            return True, type(exc).__name__
        with contextlib.suppress(httpx.HTTPError):
            await response.aclose()
        if response.is_success:
            return False, ""
        status = response.status_code
        return status >= 500 or status in _RETRY_STATUSES, f"HTTP {status}"
