"""Prometheus metrics of the WebSocket endpoint, registered in the runtime's registry."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge

DROP_REASONS = ("slow_consumer", "heartbeat_timeout", "unauthorized")


class WsMetrics:
    """`orchestrion_ws_*`: open connections, messages sent, clients the server disconnected and why."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.connections = Gauge(
            "orchestrion_ws_connections",
            "Authenticated WebSocket connections open now.",
            registry=registry,
        )
        self.messages_sent_total = Counter(
            "orchestrion_ws_messages_sent_total",
            "Messages written to WebSocket clients (events and control messages).",
            registry=registry,
        )
        self.dropped_clients_total = Counter(
            "orchestrion_ws_dropped_clients_total",
            "WebSocket clients the server disconnected: slow_consumer (send queue full), "
            "heartbeat_timeout (silent for two ping intervals), unauthorized (authentication failed).",
            ["reason"],
            registry=registry,
        )
        # Children looked up once: the label set is closed.
        self._dropped = {reason: self.dropped_clients_total.labels(reason) for reason in DROP_REASONS}

    def count_drop(self, reason: str) -> None:
        """Count a client the server disconnected (`reason` is one of `DROP_REASONS`)."""
        self._dropped[reason].inc()
