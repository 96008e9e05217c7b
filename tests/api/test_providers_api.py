"""The provider router end to end: a real server, a routes file, a fault-injecting vendor on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrion.testing import Fault, VendorTestServer
from tests.api.test_tasks_api import task_body, wait_status
from tests.cli.test_cli import cli
from tests.conftest import serve

PRIMARY_KEY = "ORCHESTRION_TEST_PRIMARY_KEY"
SECONDARY_KEY = "ORCHESTRION_TEST_SECONDARY_KEY"


@pytest.fixture
def vendor() -> Iterator[VendorTestServer]:
    with VendorTestServer() as server:
        yield server


def routes_file(tmp_path: Path, vendor: VendorTestServer) -> Path:
    """Primary: an OpenAI deployment; fallback: an Anthropic one, priced; both on the test vendor."""
    path = tmp_path / "routes.yaml"
    path.write_text(
        f"""
deployments:
  primary:
    provider: openai
    model: gpt-4.1-mini
    base_url: {vendor.base_url}
    api_key_env: {PRIMARY_KEY}
    retry: {{max_attempts: 2, base_delay: 0.01, max_delay: 0.02}}
    breaker: {{consecutive_failures: 3, cooldown_seconds: 600}}
  secondary:
    provider: anthropic
    model: claude-haiku-4-5
    base_url: {vendor.anthropic_base_url}
    api_key_env: {SECONDARY_KEY}
    price: {{input: 1.0, output: 5.0}}
routes:
  default: [primary, secondary]
"""
    )
    return path


@pytest.fixture
def keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PRIMARY_KEY, "test-primary-key")
    monkeypatch.setenv(SECONDARY_KEY, "test-secondary-key")


async def test_task_completes_through_the_fallback_with_it_visible_in_events_and_cost(
    tmp_path: Path, vendor: VendorTestServer, keys: None
) -> None:
    vendor.set_failure_rate(1.0, [Fault.status(500)], api="openai")
    with serve(
        tmp_path / "home", configured_llm=True, llm_routes_file=routes_file(tmp_path, vendor)
    ) as server:
        async with server.client() as client:
            created = (await client.post("/api/v1/tasks", json=task_body())).json()
            task = await wait_status(client, created["id"])
            assert task["status"] == "succeeded", task["error"]

            events = (await client.get(f"/api/v1/tasks/{task['id']}/events")).json()["data"]
            calls = [e["data"] for e in events if e["type"] == "llm.called"]
            failed = [c for c in calls if c["deployment"] == "primary"]
            served = [c for c in calls if c["deployment"] == "secondary"]
            assert failed and all(
                c["outcome"] == "error" and c["error_kind"] == "server_error" for c in failed
            )
            assert served and all(
                c["outcome"] == "ok" and c["fallback"] and c["position"] == 1 for c in served
            )
            assert all(c["cost_usd"] > 0 and c["tokens_in"] > 0 for c in served)
            # Every step's calls are written before the step's own outcome.
            completed_at = {e["data"]["step_id"]: e["seq"] for e in events if e["type"] == "step.completed"}
            for event in events:
                if event["type"] == "llm.called":
                    assert event["seq"] < completed_at[event["data"]["step_id"]]

            result = (await client.get(f"/api/v1/tasks/{task['id']}/result")).json()
            usage = result["usage"]
            assert usage["total"]["fallback_calls"] == len(served)
            assert usage["total"]["failed_calls"] == len(failed)
            expected_cost = sum(c["cost_usd"] for c in served)
            assert usage["total"]["cost_usd"] == pytest.approx(expected_cost, rel=1e-6)
            assert result["stats"]["cost_usd"] == pytest.approx(expected_cost, rel=1e-6)
            assert all(step["deployments"] == ["secondary"] for step in usage["steps"])

            detail = (await client.get(f"/api/v1/tasks/{task['id']}/usage")).json()
            assert len(detail["calls"]) == len(calls)

            providers = (await client.get("/api/v1/providers")).json()
            assert providers["routes"] == {"default": ["primary", "secondary"]}
            by_name = {d["name"]: d for d in providers["deployments"]}
            primary, secondary = by_name["primary"], by_name["secondary"]
            assert primary["usage"]["errors"] == primary["usage"]["calls"] == len(failed)
            assert primary["usage"]["error_rate"] == 1.0
            assert primary["circuit"]["state"] == "open"
            assert secondary["usage"]["errors"] == 0
            assert secondary["usage"]["cost_usd"] == pytest.approx(expected_cost, rel=1e-6)
            assert secondary["usage"]["latency_p50_seconds"] > 0
            assert secondary["price"] == {"input_per_mtok": 1.0, "output_per_mtok": 5.0}
            assert primary["price"] is not None  # gpt-4.1-mini is in the price table

            # The next task of the type is predicted to cost what this one did (the ledger's median).
            second = (await client.post("/api/v1/tasks", json=task_body(auto_execute=False))).json()
            assert second["prediction"]["cost_usd"] == pytest.approx(expected_cost, rel=1e-3)

            metrics = (await client.get("/metrics")).text
            assert 'orchestrion_llm_fallbacks_total{deployment="primary",route="default"}' in metrics
            assert 'orchestrion_llm_circuit_state{deployment="primary"} 2.0' in metrics
            assert 'outcome="server_error",provider="openai"' in metrics
    # The breaker opened after three failures: later calls never reached the primary.
    assert vendor.count("openai") == 3


async def test_a_task_over_its_token_budget_fails_without_calling_the_vendor(
    tmp_path: Path, vendor: VendorTestServer, keys: None
) -> None:
    with serve(
        tmp_path / "home", configured_llm=True, llm_routes_file=routes_file(tmp_path, vendor)
    ) as server:
        async with server.client() as client:
            body = task_body(budget={"max_tokens": 50})
            created = (await client.post("/api/v1/tasks", json=body)).json()
            task = await wait_status(client, created["id"])
            assert task["status"] == "failed"
            assert task["error"].startswith("budget exceeded: max_tokens is 50")
            events = (await client.get(f"/api/v1/tasks/{task['id']}/events")).json()["data"]
            assert not [e for e in events if e["type"] == "llm.called"]
            assert not [e for e in events if e["type"] == "step.retrying"]
    assert vendor.request_count == 0


async def test_a_cost_budget_refuses_a_fallback_to_a_pricier_vendor(
    tmp_path: Path, vendor: VendorTestServer, keys: None
) -> None:
    # The primary's worst case (gpt-4.1-mini, $0.40/$1.60 per million) fits $0.002; the fallback's
    # ($1/$5 per million, 512 output tokens) does not, so the route stops instead of overspending.
    vendor.set_failure_rate(1.0, [Fault.status(500)], api="openai")
    with serve(
        tmp_path / "home", configured_llm=True, llm_routes_file=routes_file(tmp_path, vendor)
    ) as server:
        async with server.client() as client:
            body = task_body(budget={"max_cost_usd": 0.002})
            created = (await client.post("/api/v1/tasks", json=body)).json()
            task = await wait_status(client, created["id"])
            usage = (await client.get(f"/api/v1/tasks/{task['id']}/usage")).json()
    assert task["status"] == "failed"
    assert task["error"].startswith("budget exceeded: max_cost_usd is 0.002")
    assert vendor.count("openai") > 0 and vendor.count("anthropic") == 0
    assert usage["total"]["cost_usd"] == 0


@pytest.mark.parametrize(
    ("yaml_text", "expected"),
    [
        (
            "deployments:\n  p: {provider: opneai, model: m}\nroutes:\n  default: [p]\n",
            ["deployments.p.provider", "opneai", "openai", "anthropic", "groq"],
        ),
        ("routes:\n  default: [missing]\n", ["routes.default", "missing"]),
    ],
)
def test_server_refuses_to_start_on_a_bad_routes_file(
    tmp_path: Path, yaml_text: str, expected: list[str]
) -> None:
    path = tmp_path / "routes.yaml"
    path.write_text(yaml_text)
    env = {"ORCHESTRION_HOME": str(tmp_path / "home"), "ORCHESTRION_LLM_ROUTES_FILE": str(path)}
    done = cli("serve", "--port", "1", env=env)
    assert done.returncode == 2, done.stderr
    line = done.stderr.strip()
    assert line.startswith("error: invalid configuration:") and "\n" not in line
    for text in expected:
        assert text in line
    assert not (tmp_path / "home" / "orchestrion.db").exists()
