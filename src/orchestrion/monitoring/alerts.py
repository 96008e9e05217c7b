"""Alerts: the rules evaluated after every system sample; transitions persisted, broadcast, notified.

The fire and resolve semantics (hysteresis, `for`, dedupe, guards) are `alert_evaluator`'s. Here:

- Fire and resolve are written to the `alerts` table, published as `alert.fired` / `alert.resolved`
  notices on the `alerts` channel (notice id: the alert id), counted in
  `orchestrion_alerts_fired_total{rule,severity}` and `orchestrion_alerts_firing{severity}`, and
  queued for the webhook when one is configured.
- On start the firing alerts are loaded from the store: a restart neither fires them again nor
  forgets them (they resolve as usual). Firing alerts whose rule is no longer configured resolve.

Evaluation state lives in this process: run one evaluating server per database.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter as Tally
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge

from orchestrion.bus.base import EventBus
from orchestrion.domain.events import Channel, EventType, Notice
from orchestrion.domain.tasks import utcnow
from orchestrion.monitoring.alert_evaluator import (
    AlertEvaluator,
    Breach,
    Labels,
    Transition,
    format_labels,
    read_series,
)
from orchestrion.monitoring.alert_rules import SEVERITIES, AlertRule, check_rule_metrics
from orchestrion.monitoring.webhook import AlertWebhook
from orchestrion.store import alerts as alert_store
from orchestrion.store.alerts import AlertRecord
from orchestrion.store.database import Database, WriteTx

logger = logging.getLogger(__name__)

Clock = Callable[[], datetime]


def alert_json(alert: AlertRecord, rule: AlertRule | None = None) -> dict[str, Any]:
    """An alert as notices and webhooks carry it."""
    return {
        "id": alert.id,
        "rule": alert.rule,
        "metric": alert.metric,
        "labels": dict(alert.labels),
        "severity": alert.severity,
        "state": alert.state,
        "value": alert.value,
        "threshold": alert.threshold,
        "clear": rule.clear if rule is not None else None,
        "description": rule.description if rule is not None else "",
        "message": alert.message,
        "fired_at": alert.fired_at.isoformat(),
        "resolved_at": alert.resolved_at.isoformat() if alert.resolved_at else None,
        "resolved_value": alert.resolved_value,
    }


class AlertManager:
    """Evaluates the rules against the registry, and persists, broadcasts and notifies transitions.

    Args:
        rules: The rules.
        source: Where they came from (for messages).
        db: Where alerts are stored.
        bus: Where `alert.*` notices are published.
        registry: The metrics evaluated (the alert metrics are registered here too).
        webhook: Notified of every transition, when configured.
        clock: The time of evaluations (UTC).
    """

    def __init__(
        self,
        rules: Sequence[AlertRule],
        *,
        source: str,
        db: Database,
        bus: EventBus,
        registry: CollectorRegistry,
        webhook: AlertWebhook | None = None,
        clock: Clock = utcnow,
    ) -> None:
        self.source = source
        self.evaluator = AlertEvaluator(rules)
        self._db = db
        self._bus = bus
        self._registry = registry
        self._webhook = webhook
        self._clock = clock
        self._lock = asyncio.Lock()
        self._started = False
        self.fired_total = Counter(
            "orchestrion_alerts_fired_total", "Alerts fired.", ["rule", "severity"], registry=registry
        )
        self.firing_gauge = Gauge(
            "orchestrion_alerts_firing", "Alerts firing now.", ["severity"], registry=registry
        )
        for severity in SEVERITIES:
            self.firing_gauge.labels(severity).set(0)
        if webhook is not None:
            webhook.on_delivery = self._record_delivery

    @property
    def rules(self) -> list[AlertRule]:
        """The rules evaluated."""
        return self.evaluator.rules

    def check_metrics(self) -> None:
        """Refuse rules naming metrics the registry lacks (call once every metric is registered).

        Raises:
            ConfigurationError: Naming the rule, the metric and the closest known names.
        """
        check_rule_metrics(self.rules, self._registry, source=self.source)

    async def start(self) -> None:
        """Resume the firing alerts from the store and start the webhook."""
        if self._started:
            return
        self._started = True
        if self._webhook is not None:
            self._webhook.start()
        firing = await self._db.read(alert_store.read_firing_alerts)
        orphans = []
        for alert in firing:
            labels = tuple(sorted(alert.labels.items()))
            if not self.evaluator.restore(alert.rule, labels, alert.id):
                orphans.append(alert)
        self._export_firing()
        for alert in orphans:
            logger.info("alert %d resolves: its rule %s is no longer configured", alert.id, alert.rule)
            await self._resolve(alert.id, rule=None, value=None)

    async def stop(self) -> None:
        """Stop the webhook."""
        if self._webhook is not None:
            await self._webhook.stop()
        self._started = False

    async def evaluate(self) -> list[AlertRecord]:
        """Evaluate every rule now; returns the alerts that fired or resolved."""
        async with self._lock:
            now = self._clock()
            transitions = self.evaluator.step(read_series(self._registry), now)
            changed: list[AlertRecord] = []
            for transition in transitions:
                try:
                    record = await self._apply(transition, now)
                except Exception:
                    logger.exception(
                        "could not store the %s of alert rule %s", transition.kind, transition.rule.name
                    )
                    if transition.kind == "fire":
                        self.evaluator.unfire(transition.rule.name, transition.labels)
                    elif transition.alert_id is not None:
                        self.evaluator.restore(transition.rule.name, transition.labels, transition.alert_id)
                    continue
                if record is not None:
                    changed.append(record)
            if transitions:
                self._export_firing()
            return changed

    def breaches(self) -> list[Breach]:
        """The rule conditions holding now (ignoring `for`), from the registry's current values."""
        return self.evaluator.breaches(read_series(self._registry))

    def firing_counts(self) -> dict[str, int]:
        """Firing alerts per severity (every severity present)."""
        counts = Tally(rule.severity for rule, _, _ in self.evaluator.firing())
        return {severity: counts.get(severity, 0) for severity in SEVERITIES}

    def firing(self) -> list[tuple[AlertRule, Labels, int | None]]:
        """The firing instances: rule, labels and alert id."""
        return self.evaluator.firing()

    async def _apply(self, transition: Transition, now: datetime) -> AlertRecord | None:
        rule = transition.rule
        if transition.kind == "resolve":
            if transition.alert_id is None:
                return None
            return await self._resolve(transition.alert_id, rule=rule, value=transition.value)
        # A fire is always decided by a present series, so it has a value.
        assert transition.value is not None
        value = transition.value
        labels = dict(transition.labels)
        message = _fire_message(rule, transition.labels, value)

        def insert(tx: WriteTx) -> AlertRecord:
            return alert_store.insert_alert(
                tx,
                rule=rule.name,
                metric=rule.metric,
                labels=labels,
                severity=rule.severity,
                value=value,
                threshold=rule.threshold,
                message=message,
                fired_at=now,
            )

        record = await self._db.write(insert)
        self.evaluator.bind(rule.name, transition.labels, record.id)
        self.fired_total.labels(rule.name, rule.severity).inc()
        log = logger.warning if rule.severity != "info" else logger.info
        log("alert %d fired (%s): %s", record.id, rule.severity, message, extra={"alert_id": record.id})
        await self._announce(EventType.ALERT_FIRED, record, rule)
        return record

    async def _resolve(
        self, alert_id: int, *, rule: AlertRule | None, value: float | None
    ) -> AlertRecord | None:
        now = self._clock()
        record = await self._db.write(
            lambda tx: alert_store.resolve_alert(tx, alert_id, value=value, resolved_at=now)
        )
        if record is None:
            return None
        logger.info(
            "alert %d resolved (%s): %s",
            record.id,
            record.rule,
            record.message,
            extra={"alert_id": record.id},
        )
        await self._announce(EventType.ALERT_RESOLVED, record, rule)
        return record

    async def _announce(self, event: EventType, record: AlertRecord, rule: AlertRule | None) -> None:
        payload = alert_json(record, rule)
        notice = Notice(
            channel=Channel.ALERTS.value,
            type=event.value,
            data=payload,
            created_at=self._clock(),
            id=record.id,
        )
        await self._bus.publish_notice(notice)
        if self._webhook is not None:
            self._webhook.submit(
                event=event.value, alert_id=record.id, payload={"event": event.value, "alert": payload}
            )

    async def _record_delivery(self, alert_id: int, delivered: bool, attempts: int) -> None:
        await self._db.write(
            lambda tx: alert_store.record_notification(tx, alert_id, delivered=delivered, attempts=attempts)
        )

    def _export_firing(self) -> None:
        for severity, count in self.firing_counts().items():
            self.firing_gauge.labels(severity).set(count)


def _fire_message(rule: AlertRule, labels: Labels, value: float) -> str:
    lead = rule.description or rule.name
    held = f" for {rule.for_seconds:g}s" if rule.for_seconds else ""
    return (
        f"{lead}: {rule.metric}{format_labels(labels)} is {value:.4g}, "
        f"{rule.comparison} {rule.threshold:g}{held}"
    )
