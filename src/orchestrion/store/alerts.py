"""Alerts (one row per firing of a rule for a label set) and the task statistics alert rules watch."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, cast

from sqlalchemy import Connection, Table, insert, select, update

from orchestrion.store.database import WriteTx
from orchestrion.store.models import AlertRow, TaskRow

ALERTS = cast(Table, AlertRow.__table__)
TASKS = cast(Table, TaskRow.__table__)

AlertState = Literal["firing", "resolved"]
ALERT_STATES: tuple[AlertState, ...] = ("firing", "resolved")

# Cancelled tasks say nothing about whether tasks succeed, so they stay out of failure ratios.


@dataclass(frozen=True, kw_only=True)
class AlertRecord:
    """A stored alert.

    Attributes:
        id: Its id (also the id of its `alert.fired` and `alert.resolved` notices).
        rule: The rule's name.
        metric: The metric the rule watches.
        labels: The labels of the series that breached (empty for an unlabelled metric).
        severity: ``info``, ``warning`` or ``critical``.
        state: ``firing`` or ``resolved``.
        value: The value when it fired.
        threshold: The rule's threshold.
        message: One sentence for people, written when it fired.
        fired_at: When it fired (UTC).
        resolved_at: When it resolved (None while firing).
        resolved_value: The value when it resolved (None while firing, or when the series vanished).
        notified: Whether the latest webhook notification about it was delivered.
        notify_attempts: Attempts that notification took.
    """

    id: int
    rule: str
    metric: str
    labels: dict[str, str]
    severity: str
    state: str
    value: float
    threshold: float
    message: str
    fired_at: datetime
    resolved_at: datetime | None
    resolved_value: float | None
    notified: bool
    notify_attempts: int


def _record(row: Any) -> AlertRecord:
    return AlertRecord(
        id=int(row.id),
        rule=row.rule,
        metric=row.metric,
        labels={str(k): str(v) for k, v in (row.labels or {}).items()},
        severity=row.severity,
        state=row.state,
        value=float(row.value),
        threshold=float(row.threshold),
        message=row.message,
        fired_at=row.fired_at,
        resolved_at=row.resolved_at,
        resolved_value=float(row.resolved_value) if row.resolved_value is not None else None,
        notified=bool(row.notified),
        notify_attempts=int(row.notify_attempts),
    )


def insert_alert(
    tx: WriteTx,
    *,
    rule: str,
    metric: str,
    labels: Mapping[str, str],
    severity: str,
    value: float,
    threshold: float,
    message: str,
    fired_at: datetime,
) -> AlertRecord:
    """Store a newly firing alert; returns it with its id."""
    key = tx.conn.execute(
        insert(ALERTS).values(
            rule=rule,
            metric=metric,
            labels=dict(labels),
            severity=severity,
            state="firing",
            value=value,
            threshold=threshold,
            message=message,
            fired_at=fired_at,
            notified=False,
            notify_attempts=0,
        )
    ).inserted_primary_key
    assert key is not None
    return AlertRecord(
        id=int(key[0]),
        rule=rule,
        metric=metric,
        labels=dict(labels),
        severity=severity,
        state="firing",
        value=value,
        threshold=threshold,
        message=message,
        fired_at=fired_at,
        resolved_at=None,
        resolved_value=None,
        notified=False,
        notify_attempts=0,
    )


def resolve_alert(
    tx: WriteTx, alert_id: int, *, value: float | None, resolved_at: datetime
) -> AlertRecord | None:
    """Mark a firing alert resolved; None when it is not firing (it resolves once)."""
    moved = tx.conn.execute(
        update(ALERTS)
        .where(ALERTS.c.id == alert_id, ALERTS.c.state == "firing")
        .values(state="resolved", resolved_at=resolved_at, resolved_value=value, notified=False)
    ).rowcount
    if not moved:
        return None
    return _record(tx.conn.execute(select(ALERTS).where(ALERTS.c.id == alert_id)).one())


def record_notification(tx: WriteTx, alert_id: int, *, delivered: bool, attempts: int) -> None:
    """Record how the latest webhook notification about an alert went."""
    tx.conn.execute(
        update(ALERTS).where(ALERTS.c.id == alert_id).values(notified=delivered, notify_attempts=attempts)
    )


def read_alert(conn: Connection, alert_id: int) -> AlertRecord | None:
    """One alert."""
    row = conn.execute(select(ALERTS).where(ALERTS.c.id == alert_id)).first()
    return _record(row) if row is not None else None


def read_firing_alerts(conn: Connection) -> list[AlertRecord]:
    """Every firing alert, oldest first (what an evaluator resumes from after a restart)."""
    query = select(ALERTS).where(ALERTS.c.state == "firing").order_by(ALERTS.c.fired_at, ALERTS.c.id)
    return [_record(row) for row in conn.execute(query)]


def list_alerts(conn: Connection, *, state: AlertState | None = None, limit: int = 100) -> list[AlertRecord]:
    """Alerts, newest first, optionally only those in one state."""
    query = select(ALERTS).order_by(ALERTS.c.fired_at.desc(), ALERTS.c.id.desc()).limit(limit)
    if state is not None:
        query = query.where(ALERTS.c.state == state)
    return [_record(row) for row in conn.execute(query)]
