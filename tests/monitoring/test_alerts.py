"""Alert rules: the state machine with an injected clock, the store, restarts, the webhook, the server."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import os
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, Gauge

from orchestrion.bus.local import LocalEventBus
from orchestrion.exceptions import ConfigurationError
from orchestrion.monitoring.alert_evaluator import AlertEvaluator, Labels
from orchestrion.monitoring.alert_rules import (
    AlertRule,
    RuleGuard,
    check_rule_metrics,
    load_alert_rules,
    parse_alert_rules,
)
from orchestrion.monitoring.alerts import AlertManager
from orchestrion.monitoring.webhook import AlertWebhook, sign
from orchestrion.store import alerts as alert_store
from orchestrion.store.database import Database
from tests.conftest import serve

T0 = datetime(2026, 1, 1, tzinfo=UTC)
NO_LABELS: Labels = ()


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def rule(**overrides: Any) -> AlertRule:
    values: dict[str, Any] = {
        "name": "cpu_high",
        "metric": "cpu",
        "comparison": ">",
        "threshold": 90.0,
        "clear": 90.0,
        "for_seconds": 0.0,
        "severity": "warning",
    }
    values.update(overrides)
    return AlertRule(**values)


def kinds(evaluator: AlertEvaluator, value: float | None, seconds: float) -> list[str]:
    series = {"cpu": {NO_LABELS: value}} if value is not None else {}
    return [t.kind for t in evaluator.step(series, at(seconds))]


# -- the state machine -----------------------------------------------------------------------------


def test_rule_fires_only_after_breaching_at_every_evaluation_for_its_duration() -> None:
    evaluator = AlertEvaluator([rule(for_seconds=60)])
    assert kinds(evaluator, 95, 0) == []
    assert kinds(evaluator, 95, 59) == []
    assert kinds(evaluator, 95, 60) == ["fire"]


def test_an_interrupted_breach_restarts_the_duration() -> None:
    evaluator = AlertEvaluator([rule(for_seconds=60)])
    assert kinds(evaluator, 95, 0) == []
    assert kinds(evaluator, 50, 30) == []
    assert kinds(evaluator, 95, 40) == []
    assert kinds(evaluator, 95, 99) == []
    assert kinds(evaluator, 95, 100) == ["fire"]


def test_hysteresis_keeps_the_alert_firing_until_the_value_is_past_clear_for_the_duration() -> None:
    evaluator = AlertEvaluator([rule(threshold=90, clear=80, for_seconds=60)])
    kinds(evaluator, 95, 0)
    assert kinds(evaluator, 95, 60) == ["fire"]
    assert kinds(evaluator, 85, 70) == []  # under the threshold, not past clear: still firing
    assert kinds(evaluator, 85, 500) == []
    assert kinds(evaluator, 75, 510) == []  # past clear: the resolve timer starts
    assert kinds(evaluator, 85, 540) == []  # back in the band: the timer stops
    assert kinds(evaluator, 75, 550) == []
    assert kinds(evaluator, 75, 609) == []
    assert kinds(evaluator, 75, 610) == ["resolve"]
    assert evaluator.firing() == []


def test_a_firing_alert_does_not_fire_again_and_resolves_once() -> None:
    evaluator = AlertEvaluator([rule()])
    assert kinds(evaluator, 95, 0) == ["fire"]
    assert [kinds(evaluator, 99, s) for s in (1, 2, 3)] == [[], [], []]
    assert kinds(evaluator, 10, 4) == ["resolve"]
    assert kinds(evaluator, 10, 5) == []
    assert kinds(evaluator, 95, 6) == ["fire"]  # a new breach is a new alert


def test_less_than_rules_clear_above_their_clear_value() -> None:
    evaluator = AlertEvaluator([rule(comparison="<", threshold=0.5, clear=0.6)])
    assert kinds(evaluator, 0.4, 0) == ["fire"]
    assert kinds(evaluator, 0.55, 1) == []
    assert kinds(evaluator, 0.65, 2) == ["resolve"]


def test_each_label_set_is_its_own_alert_and_matchers_filter_series() -> None:
    watched = rule(name="slow", metric="p95", labels={"route": "default"})
    evaluator = AlertEvaluator([watched])
    a = (("agent", "a"), ("route", "default"))
    b = (("agent", "b"), ("route", "default"))
    other = (("agent", "c"), ("route", "fast"))
    fired = evaluator.step({"p95": {a: 100, b: 1, other: 100}}, at(0))
    assert [(t.kind, t.labels) for t in fired] == [("fire", a)]
    fired = evaluator.step({"p95": {a: 100, b: 100, other: 100}}, at(1))
    assert [(t.kind, t.labels) for t in fired] == [("fire", b)]
    assert sorted(labels for _, labels, _ in evaluator.firing()) == [a, b]


def test_a_guard_must_hold_for_the_series_with_the_same_labels() -> None:
    guarded = rule(
        name="low_success",
        metric="success",
        comparison="<",
        threshold=0.5,
        clear=0.5,
        only_if=RuleGuard(metric="runs", comparison=">=", threshold=5),
    )
    evaluator = AlertEvaluator([guarded])
    x = (("agent", "x"),)
    assert evaluator.step({"success": {x: 0.0}, "runs": {x: 2}}, at(0)) == []
    assert evaluator.step({"success": {x: 0.0}}, at(1)) == []
    assert [t.kind for t in evaluator.step({"success": {x: 0.0}, "runs": {x: 5}}, at(2))] == ["fire"]


def test_a_vanished_series_counts_as_clear() -> None:
    evaluator = AlertEvaluator([rule(for_seconds=10)])
    kinds(evaluator, 95, 0)
    assert kinds(evaluator, 95, 10) == ["fire"]
    assert kinds(evaluator, None, 11) == []
    assert kinds(evaluator, None, 21) == ["resolve"]


def test_breaches_report_conditions_holding_now_whatever_the_duration() -> None:
    evaluator = AlertEvaluator([rule(for_seconds=600), rule(name="cpu_critical", threshold=99, clear=99)])
    breaches = evaluator.breaches({"cpu": {NO_LABELS: 95}})
    assert [(b.rule.name, b.value) for b in breaches] == [("cpu_high", 95)]


# -- rules files ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("rules: [{name: a, metric: m, comparison: '=>', threshold: 1}]", "rules[0].comparison"),
        ("rules: [{name: a, metric: m, comparison: '>', threshold: 1, severity: huge}]", "rules[0].severity"),
        ("rules: [{name: a, metric: m, comparison: '>', threshold: x}]", "rules[0].threshold"),
        ("rules: [{name: a, metric: m, comparison: '>', threshold: 1, clear: 2}]", "rules[0].clear"),
        ("rules: [{name: a, metric: m, comparison: '>', threshold: 1, fro: 2}]", "rules[0].fro"),
        ("rules: [{name: a, metric: m, comparison: '>', threshold: 1, for: -1}]", "rules[0].for"),
        (
            "rules: [{name: a, metric: m, comparison: '>', threshold: 1,"
            " only_if: {metric: n, comparison: '~'}}]",
            "rules[0].only_if.comparison",
        ),
        ("rules:\n  - name: a\n  metric: [", "invalid YAML at line"),
        ("alerts: []", "alerts: unknown key"),
    ],
)
def test_bad_rules_name_the_key_path_and_the_valid_choices(text: str, expected: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        parse_alert_rules(text, source="rules.yml")
    assert caught.value.message.startswith("rules.yml: ")
    assert expected in caught.value.message
    if "comparison" in expected:
        assert ">, >=, <, <=" in caught.value.message
    if "severity" in expected:
        assert "info, warning, critical" in caught.value.message


def test_duplicate_rule_names_are_refused() -> None:
    one = "{name: a, metric: m, comparison: '>', threshold: 1}"
    text = f"rules: [{one}, {one}]"
    with pytest.raises(ConfigurationError, match=r"rules\[1\]\.name: duplicate"):
        parse_alert_rules(text, source="rules.yml")


def test_a_rule_on_an_unknown_metric_lists_close_matches() -> None:
    registry = CollectorRegistry()
    Gauge("orchestrion_queue_backlog", "backlog", registry=registry)
    (known,) = parse_alert_rules(
        "rules: [{name: b, metric: orchestrion_queue_backlog, comparison: '>', threshold: 1}]", source="f"
    )
    check_rule_metrics([known], registry, source="f")
    (typo,) = parse_alert_rules(
        "rules: [{name: b, metric: orchestrion_queue_backlogg, comparison: '>', threshold: 1}]", source="f"
    )
    with pytest.raises(ConfigurationError) as caught:
        check_rule_metrics([typo], registry, source="f")
    assert "rules.b.metric: unknown metric 'orchestrion_queue_backlogg'" in caught.value.message
    assert "did you mean orchestrion_queue_backlog?" in caught.value.message


async def test_default_rules_cover_the_issue_and_fit_the_runtime_registry(tmp_path: Path) -> None:
    from orchestrion.runtime import Runtime
    from tests.conftest import make_settings

    rules, source = load_alert_rules(None)
    assert "built-in" in source
    metrics = {r.metric for r in rules}
    assert {
        "orchestrion_system_cpu_percent",
        "orchestrion_system_memory_percent",
        "orchestrion_system_disk_percent",
        "orchestrion_tasks_recent_failure_ratio",
        "orchestrion_tasks_recent_duration_p95_seconds",
        "orchestrion_llm_circuits_open",
        "orchestrion_queue_backlog",
        "orchestrion_agent_success_ratio",
        "orchestrion_agent_response_p95_seconds",
    } <= metrics
    runtime = Runtime.create(make_settings(tmp_path), routes={})  # checks every rule's metric
    assert runtime.alerts is not None and len(runtime.alerts.rules) == len(rules)
    await runtime.stop()


# -- the manager: store, notices, restarts ----------------------------------------------------------


@dataclass
class FakeClock:
    now: datetime = T0

    def __call__(self) -> datetime:
        return self.now


def backlog_rules() -> list[AlertRule]:
    return [rule(name="backlog", metric="orchestrion_queue_backlog", threshold=1, clear=1, for_seconds=30)]


async def test_manager_persists_broadcasts_and_survives_a_restart(database: Database) -> None:
    registry = CollectorRegistry()
    backlog = Gauge("orchestrion_queue_backlog", "backlog", registry=registry)
    bus, clock = LocalEventBus(), FakeClock()
    notices = bus.subscribe_channel("alerts")
    manager = AlertManager(backlog_rules(), source="t", db=database, bus=bus, registry=registry, clock=clock)
    manager.check_metrics()
    await manager.start()
    backlog.set(5)
    assert await manager.evaluate() == []
    clock.now = at(30)
    (fired,) = await manager.evaluate()
    assert fired.state == "firing" and fired.value == 5 and fired.threshold == 1
    assert "orchestrion_queue_backlog is 5, > 1 for 30s" in fired.message
    notice = await notices.get()
    assert notice is not None and notice.type == "alert.fired" and notice.id == fired.id
    assert notice.data["rule"] == "backlog" and notice.data["state"] == "firing"
    clock.now = at(60)
    assert await manager.evaluate() == []  # still breaching: no second alert
    assert manager.firing_counts()["warning"] == 1
    await manager.stop()

    # A new process (its own registry): the firing alert is resumed, neither fired again nor forgotten.
    registry = CollectorRegistry()
    backlog = Gauge("orchestrion_queue_backlog", "backlog", registry=registry)
    backlog.set(5)
    restarted = AlertManager(
        backlog_rules(), source="t", db=database, bus=bus, registry=registry, clock=clock
    )
    await restarted.start()
    assert [alert_id for _, _, alert_id in restarted.firing()] == [fired.id]
    clock.now = at(90)
    assert await restarted.evaluate() == []
    backlog.set(0)
    clock.now = at(100)
    assert await restarted.evaluate() == []
    clock.now = at(130)
    (resolved,) = await restarted.evaluate()
    assert resolved.id == fired.id and resolved.state == "resolved" and resolved.resolved_value == 0
    assert resolved.resolved_at == at(130)
    notice = await notices.get()
    assert notice is not None and notice.type == "alert.resolved" and notice.id == fired.id
    stored = await database.read(lambda conn: alert_store.list_alerts(conn))
    assert [(a.id, a.state) for a in stored] == [(fired.id, "resolved")]
    assert await database.read(alert_store.read_firing_alerts) == []
    samples = {s.name: s.value for f in registry.collect() for s in f.samples if s.labels.get("severity")}
    assert samples["orchestrion_alerts_firing"] == 0
    await restarted.stop()


async def test_firing_alerts_of_removed_rules_resolve_on_start(database: Database) -> None:
    registry = CollectorRegistry()
    Gauge("orchestrion_queue_backlog", "backlog", registry=registry).set(5)
    bus = LocalEventBus()
    instant = [rule(name="backlog", metric="orchestrion_queue_backlog", threshold=1, clear=1)]
    manager = AlertManager(instant, source="t", db=database, bus=bus, registry=registry)
    await manager.start()
    (fired,) = await manager.evaluate()
    await manager.stop()
    without_rule = AlertManager([], source="t", db=database, bus=bus, registry=CollectorRegistry())
    await without_rule.start()
    alert = await database.read(lambda conn: alert_store.read_alert(conn, fired.id))
    assert alert is not None and alert.state == "resolved" and alert.resolved_value is None
    assert without_rule.firing() == []
    await without_rule.stop()


# -- the webhook -----------------------------------------------------------------------------------


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes


@dataclass
class WebhookReceiver:
    """An HTTP/1.1 endpoint on 127.0.0.1 answering POSTs with the given statuses, then 200."""

    statuses: list[int] = field(default_factory=list)
    received: list[Received] = field(default_factory=list)
    port: int = 0
    _server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = int(self._server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
            headers = {}
            for line in head.split("\r\n")[1:]:
                if ":" in line:
                    name, value = line.split(":", 1)
                    headers[name.strip().lower()] = value.strip()
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            self.received.append(Received(headers=headers, body=body))
            status = self.statuses.pop(0) if self.statuses else 200
            writer.write(f"HTTP/1.1 {status} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".encode())
            await writer.drain()
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    async def wait_for(self, count: int, *, timeout: float = 15.0) -> None:
        async with asyncio.timeout(timeout):
            while len(self.received) < count:
                await asyncio.sleep(0.02)


@pytest.fixture
async def receiver() -> AsyncIterator[WebhookReceiver]:
    server = WebhookReceiver()
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


def verify(received: Received, secret: str) -> dict[str, Any]:
    timestamp = received.headers["x-orchestrion-timestamp"]
    expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + received.body, hashlib.sha256)
    assert received.headers["x-orchestrion-signature"] == f"sha256={expected.hexdigest()}"
    assert sign(secret.encode(), timestamp, received.body) == received.headers["x-orchestrion-signature"]
    payload: dict[str, Any] = json.loads(received.body)
    return payload


async def test_webhook_retries_server_errors_with_one_delivery_id_and_gives_up_on_4xx(
    receiver: WebhookReceiver,
) -> None:
    receiver.statuses = [503, 500, 200, 400]
    outcomes: list[tuple[int, bool, int]] = []
    webhook = AlertWebhook(
        receiver.url, secret="s3cret", max_attempts=4, registry=CollectorRegistry(), backoff=0.01
    )

    async def record(alert_id: int, delivered: bool, attempts: int) -> None:
        outcomes.append((alert_id, delivered, attempts))

    webhook.on_delivery = record
    webhook.start()
    webhook.submit(event="alert.fired", alert_id=7, payload={"event": "alert.fired", "alert": {"id": 7}})
    webhook.submit(
        event="alert.resolved", alert_id=7, payload={"event": "alert.resolved", "alert": {"id": 7}}
    )
    await receiver.wait_for(4)
    async with asyncio.timeout(5):
        while len(outcomes) < 2:
            await asyncio.sleep(0.01)
    await webhook.stop()
    assert outcomes == [(7, True, 3), (7, False, 1)]
    first, _, third, fourth = receiver.received
    assert first.headers["x-orchestrion-delivery"] == third.headers["x-orchestrion-delivery"]
    assert fourth.headers["x-orchestrion-delivery"] != first.headers["x-orchestrion-delivery"]
    assert verify(third, "s3cret") == {"event": "alert.fired", "alert": {"id": 7}}
    assert fourth.headers["x-orchestrion-event"] == "alert.resolved"


def test_webhook_url_must_be_http() -> None:
    with pytest.raises(ConfigurationError, match="http:// or https://"):
        AlertWebhook("ftp://example.test/x", secret=None, max_attempts=1, registry=CollectorRegistry())


# -- the real server -------------------------------------------------------------------------------

BACKLOG_RULES = """
rules:
  - name: backlog
    metric: orchestrion_queue_backlog
    comparison: ">"
    threshold: 1
    for: 0
    severity: critical
    description: Tasks are waiting for a worker
"""
TASK = {
    "title": "audit",
    "task_type": "code_analysis",
    "inputs": {"files": [{"name": "a.py", "content": "x = 1\n"}]},
}


async def test_backlog_alert_fires_notifies_and_resolves_on_a_real_server(
    tmp_path: Path, receiver: WebhookReceiver
) -> None:
    rules_file = tmp_path / "rules.yml"
    rules_file.write_text(BACKLOG_RULES)
    receiver.statuses = [500]  # the first delivery fails once, then is retried
    with serve(
        tmp_path / "home",
        embedded_worker=False,  # nothing takes queued tasks: the backlog grows
        system_sample_seconds=0.1,
        alert_rules_file=rules_file,
        alert_webhook_url=receiver.url,
        alert_webhook_secret="hook-secret",
    ) as server:
        async with server.client() as client:
            ids = []
            for _ in range(2):
                created = await client.post("/api/v1/tasks", json=TASK)
                assert created.status_code == 201, created.text
                ids.append(created.json()["id"])
            firing = await poll(client, "firing")
            (alert,) = firing["data"]
            assert alert["rule"] == "backlog" and alert["severity"] == "critical"
            assert alert["value"] == 2 and alert["threshold"] == 1 and alert["labels"] == {}
            assert firing["firing"]["critical"] == 1
            await receiver.wait_for(2)
            assert [r.headers["x-orchestrion-event"] for r in receiver.received] == ["alert.fired"] * 2
            payload = verify(receiver.received[1], "hook-secret")
            assert payload["event"] == "alert.fired" and payload["alert"]["id"] == alert["id"]
            notified = await poll(client, "firing", lambda a: a["notified"])
            assert notified["data"][0]["notify_attempts"] == 2

            for task_id in ids:
                assert (await client.post(f"/api/v1/tasks/{task_id}/cancel")).status_code == 200
            resolved = await poll(client, "resolved")
            assert [a["id"] for a in resolved["data"]] == [alert["id"]]
            assert resolved["data"][0]["resolved_value"] == 0
            assert (await client.get("/api/v1/alerts", params={"state": "firing"})).json()["data"] == []
            await receiver.wait_for(3)
            assert verify(receiver.received[2], "hook-secret")["alert"]["state"] == "resolved"

            bad = await client.get("/api/v1/alerts", params={"state": "burning"})
            assert bad.status_code == 422
            assert bad.json()["error"]["details"]["choices"] == ["firing", "resolved"]


async def poll(client: Any, state: str, accept: Any = None, *, timeout: float = 15.0) -> dict[str, Any]:
    async with asyncio.timeout(timeout):
        while True:
            body: dict[str, Any] = (await client.get("/api/v1/alerts", params={"state": state})).json()
            if body["data"] and (accept is None or all(accept(a) for a in body["data"])):
                return body
            await asyncio.sleep(0.05)


def start_serve(home: Path, rules: str) -> subprocess.Popen[str]:
    home.mkdir()
    (home / "rules.yml").write_text(textwrap.dedent(rules))
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORCHESTRION_")}
    env.update(
        ORCHESTRION_HOME=str(home / "data"),
        ORCHESTRION_LLM="none",
        ORCHESTRION_PORT="0",
        ORCHESTRION_ALERT_RULES_FILE=str(home / "rules.yml"),
    )
    return subprocess.Popen(
        [sys.executable, "-m", "orchestrion", "serve"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_serve_exits_2_with_one_line_on_bad_alert_rules(tmp_path: Path) -> None:
    process = start_serve(tmp_path / "a", "rules: [{name: a, metric: m, comparison: '=>', threshold: 1}]")
    try:
        _, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 2, stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: invalid configuration:"), stderr
    assert "rules[0].comparison" in stderr and ">, >=, <, <=" in stderr
    assert not (tmp_path / "a" / "data" / "orchestrion.db").exists()  # refused before anything was written


def test_a_rule_on_an_unknown_metric_stops_the_app_factory(tmp_path: Path) -> None:
    from orchestrion.api.app import create_app
    from tests.conftest import make_settings

    rules = tmp_path / "rules.yml"
    rules.write_text(
        "rules: [{name: cpu, metric: orchestrion_system_cpu_percnt, comparison: '>', threshold: 1}]"
    )
    with pytest.raises(ConfigurationError) as caught:
        create_app(make_settings(tmp_path, alert_rules_file=rules))
    assert f"{rules}: rules.cpu.metric: unknown metric" in caught.value.message
    assert "did you mean orchestrion_system_cpu_percent" in caught.value.message
