"""docs/metrics.md lists every metric family the server exposes."""

from __future__ import annotations

import re
from pathlib import Path

from tests.api.test_tasks_api import task_body, wait_status
from tests.conftest import LiveServer

DOC = Path(__file__).resolve().parent.parent / "docs" / "metrics.md"


async def test_every_exposed_orchestrion_metric_is_documented(live_server: LiveServer) -> None:
    async with live_server.client() as client:
        created = (await client.post("/api/v1/tasks", json=task_body())).json()
        await wait_status(client, created["id"])
        await client.get("/api/v1/agents")
        exposition = (await client.get("/metrics")).text
    helped = re.findall(r"^# HELP (orchestrion_\w+) ", exposition, flags=re.MULTILINE)
    # prometheus_client adds a `<name>_created` timestamp family beside each counter and histogram.
    families = {name for name in helped if not name.endswith("_created")}
    documented = set(re.findall(r"`(orchestrion_\w+)`", DOC.read_text()))
    assert len(families) > 40
    assert sorted(families - documented) == []
