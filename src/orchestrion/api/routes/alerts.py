"""/api/v1/alerts: alerts fired by the alert rules, newest first (docs/monitoring.md)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, Query

from orchestrion.api.deps import CallerDep, RuntimeDep
from orchestrion.api.schemas import AlertPublic, AlertsPublic
from orchestrion.exceptions import UnknownChoiceError
from orchestrion.store.alerts import ALERT_STATES, list_alerts

router = APIRouter(tags=["alerts"])


@router.get("/alerts", response_model=AlertsPublic)
async def read_alerts(
    _caller: CallerDep,
    runtime: RuntimeDep,
    state: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> AlertsPublic:
    """Alerts, optionally only `firing` or `resolved` ones, with the count firing now per severity."""
    chosen = None
    for choice in ALERT_STATES:
        if state == choice:
            chosen = choice
    if state is not None and chosen is None:
        raise UnknownChoiceError(field="state", value=state, choices=ALERT_STATES)
    records = await runtime.db.read(lambda conn: list_alerts(conn, state=chosen, limit=limit))
    firing = runtime.alerts.firing_counts() if runtime.alerts is not None else {}
    return AlertsPublic(data=[AlertPublic(**asdict(r)) for r in records], firing=firing)
