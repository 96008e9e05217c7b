"""The target-facing agents end to end through the API, against servers on 127.0.0.1."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.api.test_tasks_api import wait_status
from tests.conftest import LiveServer, serve
from tests.fixtures.dns import LocalDNSServer
from tests.fixtures.net import LocalHTTPServer
from tests.fixtures.osint import add_mail_zones, intel_site_routes, valid_security_txt


async def _run(server: LiveServer, body: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any], list[Any]]:
    async with server.client() as client:
        created = await client.post("/api/v1/tasks", json=body)
        assert created.status_code == 201, created.text
        task = await wait_status(client, created.json()["id"], timeout=60)
        result = (await client.get(f"/api/v1/tasks/{task['id']}/result")).json()
        events = (await client.get(f"/api/v1/tasks/{task['id']}/events")).json()["data"]
    return task, result, [e["data"] for e in events if e["type"] == "tool.called"]


def _network_settings(dns_server: LocalDNSServer | None = None, **extra: Any) -> dict[str, Any]:
    settings: dict[str, Any] = {"tool_allow_targets": ["127.0.0.1/32"]}
    if dns_server is not None:
        settings["tool_nameservers"] = [dns_server.nameserver]
    return settings | extra


async def test_osint_specialist_reports_a_permissive_spf_record(
    tmp_path: Path, dns_server: LocalDNSServer, http_server: LocalHTTPServer
) -> None:
    add_mail_zones(dns_server)
    http_server.routes = intel_site_routes(
        http_server.url("", host="plusall.test"), security=valid_security_txt()
    )
    with serve(tmp_path, **_network_settings(dns_server)) as server:
        body = {
            "title": "acme",
            "task_type": "domain_analysis",
            "target": http_server.url("/", host="plusall.test"),
        }
        task, result, calls = await _run(server, body)
    assert task["status"] == "succeeded", task["error"]
    assert [c["tool"] for c in calls] == ["dns_records", "web_intel"] and not any(c["error"] for c in calls)
    spf = [f for f in result["findings"] if f["grounded"] and "spf" in f["title"].lower()]
    assert spf and spf[0]["severity"] == "high"


async def test_network_analyzer_checks_ports_only_with_both_permissions(
    tmp_path: Path, http_server: LocalHTTPServer
) -> None:
    target = f"127.0.0.1:{http_server.port}"
    with serve(tmp_path, **_network_settings(tool_allow_active_scanning=True)) as server:
        body = {"title": "host", "task_type": "network_analysis", "target": target}
        allowed, _, allowed_calls = await _run(server, body | {"allow_active_scanning": True})
        refused, _, refused_calls = await _run(server, body)
    assert allowed["status"] == "succeeded", allowed["error"]
    port_check = next(c for c in allowed_calls if c["tool"] == "port_check")
    assert port_check["error"] is None and port_check["evidence"] > 0
    refusal = next(c for c in refused_calls if c["tool"] == "port_check")
    assert refusal["error"] and "allow_active_scanning" in refusal["error"]
    assert refused["status"] == "succeeded"  # the other tools still ran; the refusal is on record


async def test_a_private_target_is_refused_unless_allowlisted(
    tmp_path: Path, http_server: LocalHTTPServer
) -> None:
    with serve(tmp_path) as server:
        body = {"title": "perf", "task_type": "performance_analysis", "target": http_server.url("/")}
        task, _, calls = await _run(server, body)
    timed = next(c for c in calls if c["tool"] == "timed_requests")
    assert timed["error"] and "127.0.0.1 is loopback" in timed["error"]
    assert task["status"] in ("failed", "succeeded", "partial")


async def test_performance_monitor_times_requests_to_an_allowed_target(
    tmp_path: Path, http_server: LocalHTTPServer
) -> None:
    with serve(tmp_path, **_network_settings()) as server:
        body = {"title": "perf", "task_type": "performance_analysis", "target": http_server.url("/")}
        task, result, calls = await _run(server, body)
    assert task["status"] == "succeeded", task["error"]
    timed = next(c for c in calls if c["tool"] == "timed_requests")
    assert timed["error"] is None and timed["evidence"] > 0
    assert any(e["tool"] == "timed_requests" for e in result["evidence"]) or result["findings"]


async def test_compliance_auditor_flags_an_agpl_dependency_and_a_debug_config(
    tmp_path: Path, http_server: LocalHTTPServer
) -> None:
    files = [
        {
            "name": "pyproject.toml",
            "content": '[project]\nname = "shop"\nlicense = "MIT"\ndependencies = []\n',
        },
        {
            "name": "package-lock.json",
            "content": (
                '{"name": "shop", "lockfileVersion": 3, "packages": {"": {"name": "shop"}, '
                '"node_modules/ghostlib": {"version": "1.0.0", "license": "AGPL-3.0-only"}}}'
            ),
        },
        {"name": "settings.env", "content": "DEBUG=true\nALLOWED_HOSTS=*\n"},
    ]
    with serve(tmp_path, **_network_settings()) as server:
        body = {
            "title": "audit",
            "task_type": "compliance_audit",
            "target": http_server.url("/"),
            "inputs": {"files": files},
        }
        task, result, calls = await _run(server, body)
    assert task["status"] == "succeeded", task["error"]
    assert [c["tool"] for c in calls] == ["licence_audit", "config_secrets", "asvs_web_check"]
    assert not any(c["error"] for c in calls)
    grounded = [f for f in result["findings"] if f["grounded"]]
    assert any(
        "agpl" in (f["title"] + f["description"]).lower() and f["severity"] == "high" for f in grounded
    )
    assert any("debug" in (f["title"] + f["description"]).lower() for f in grounded)


async def test_security_expert_finds_exposed_files_and_missing_headers(
    tmp_path: Path, http_server: LocalHTTPServer
) -> None:
    with serve(tmp_path, **_network_settings()) as server:
        body = {"title": "web", "task_type": "security_scan", "target": http_server.url("/")}
        task, result, calls = await _run(server, body)
    assert task["status"] == "succeeded", task["error"]
    tools = [c["tool"] for c in calls]
    assert tools[:4] == ["tls_audit", "http_headers_audit", "exposed_files", "banner_advisories"]
    assert not any(c["error"] for c in calls[:4])
    grounded = [f for f in result["findings"] if f["grounded"] and f["agent_id"] == "security_expert"]
    text = " ".join(f["title"] + " " + f["description"] for f in grounded).lower()
    assert ".env" in text or ".git" in text
    assert any(f["severity"] in ("high", "critical") for f in grounded)
    assert "hunter2" not in str(result)  # exposed values are redacted
