"""Custom agents from YAML files and entry points: validated at start, usable in tasks."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

from orchestrion.agents.builtin import BUILTIN_AGENTS, BUILTIN_TASK_TYPES
from orchestrion.agents.loader import load_agent_dir, load_agent_file, load_entry_points, register_specs
from orchestrion.agents.registry import AgentRegistry
from orchestrion.agents.spec import AgentSpec
from orchestrion.exceptions import ConfigurationError
from orchestrion.store.runs import read_runs
from orchestrion.tools.registry import build_builtin_tools
from tests.api.test_tasks_api import wait_status
from tests.cli.test_cli import cli
from tests.conftest import serve

AWS_KEY_ID = "AKIA" + "Q3EGRT5ZJ7NXW2PL"

CONFIG_AUDITOR = """
agents:
  - id: config_auditor
    name: Config Auditor
    description: Finds credentials committed in configuration files.
    capabilities: [secret_detection]
    task_types: [config_audit]
    tools: [secret_scan]
    playbooks:
      config_audit:
        - tool: secret_scan
    system_prompt: You audit configuration files for committed credentials.
task_types:
  - id: config_audit
    description: Audit configuration files for committed secrets.
    default_agents: [config_auditor]
    needs_inputs: true
    input_extensions: [.env, .ini, .yaml]
"""


def _registry() -> AgentRegistry:
    registry = AgentRegistry(tool_names=build_builtin_tools())
    for agent in BUILTIN_AGENTS:
        registry.register_agent(agent)
    for task_type in BUILTIN_TASK_TYPES:
        registry.register_task_type(task_type)
    return registry


def _write(directory: Path, name: str, text: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(textwrap.dedent(text))
    return path


def test_a_yaml_file_gives_agents_and_task_types(tmp_path: Path) -> None:
    loaded = load_agent_file(_write(tmp_path, "auditor.yaml", CONFIG_AUDITOR))
    registry = _registry()
    register_specs(registry, [loaded], routes=["default"])
    agent = registry.agent("config_auditor")
    assert agent.tools == ("secret_scan",) and agent.playbook("config_audit")[0].tool == "secret_scan"
    assert registry.task_type("config_audit").default_agents == ("config_auditor",)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("agents:\n  - {id: x, name: X, description: d, task_types: [t], colour: red}\n", "agents[0].colour"),
        ("agents:\n  - {id: Bad-Id, name: X, description: d, task_types: [t]}\n", "agents[0].id"),
        ("agents:\n  - {id: x, name: X, description: d}\n", "agents[0].task_types"),
        ("agents: [\n", "not valid YAML"),
        ("- just a list\n", "(top level)"),
    ],
)
def test_a_bad_file_is_refused_naming_the_file_and_the_field(
    tmp_path: Path, text: str, expected: str
) -> None:
    path = _write(tmp_path, "bad.yaml", text)
    with pytest.raises(ConfigurationError) as caught:
        load_agent_file(path)
    assert caught.value.message.startswith(str(path)) and expected in caught.value.message


@pytest.mark.parametrize(
    ("replace", "expected"),
    [
        (("tools: [secret_scan]", "tools: [secret_scan, nmap]"), ["tools: unknown nmap", "valid tools:"]),
        (("default_agents: [config_auditor]", "default_agents: [ghost]"), ["default_agents: ghost"]),
        (("id: config_auditor", "id: code_analyzer"), ["agent code_analyzer: id already defined (built in)"]),
        (("      config_audit:\n        - tool", "      other:\n        - tool"), ["playbooks: other"]),
    ],
)
def test_a_spec_that_does_not_fit_the_server_is_refused(
    tmp_path: Path, replace: tuple[str, str], expected: list[str]
) -> None:
    text = CONFIG_AUDITOR.replace(*replace)
    assert text != CONFIG_AUDITOR
    loaded = load_agent_file(_write(tmp_path, "auditor.yaml", text))
    with pytest.raises(ConfigurationError) as caught:
        register_specs(_registry(), [loaded], routes=["default"])
    assert caught.value.message.startswith(str(tmp_path / "auditor.yaml"))
    for text_part in expected:
        assert text_part in caught.value.message


def test_an_agent_naming_an_unknown_route_is_refused(tmp_path: Path) -> None:
    text = CONFIG_AUDITOR.replace("    system_prompt:", "    route: smart\n    system_prompt:")
    loaded = load_agent_file(_write(tmp_path, "auditor.yaml", text))
    with pytest.raises(ConfigurationError) as caught:
        register_specs(_registry(), [loaded], routes=["default", "fast"])
    assert "route: 'smart' is not a configured route; valid routes: default, fast" in caught.value.message


def test_the_directory_is_read_in_name_order_and_must_exist(tmp_path: Path) -> None:
    _write(tmp_path / "agents", "b.yml", "task_types: []\n")
    _write(tmp_path / "agents", "a.yaml", CONFIG_AUDITOR)
    _write(tmp_path / "agents", "notes.txt", "ignored")
    assert [Path(s.source).name for s in load_agent_dir(tmp_path / "agents")] == ["a.yaml", "b.yml"]
    with pytest.raises(ConfigurationError, match="is not a directory"):
        load_agent_dir(tmp_path / "missing")


def test_entry_points_publish_agents(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _write(
        tmp_path,
        "orchestrion_extra.py",
        """
        from orchestrion.agents.spec import AgentSpec, PlaybookCall

        def agents():
            calls = {"code_analysis": (PlaybookCall(tool="secret_scan"),)}
            return [
                AgentSpec(id="extra_auditor", name="Extra", description="d",
                          task_types=("code_analysis",), tools=("secret_scan",), playbooks=calls)
            ]
        """,
    )
    dist = tmp_path / "orchestrion_extra-0.1.dist-info"
    _write(dist, "METADATA", "Metadata-Version: 2.1\nName: orchestrion-extra\nVersion: 0.1\n")
    _write(dist, "entry_points.txt", "[orchestrion.agents]\nextra = orchestrion_extra:agents\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        loaded = [s for s in load_entry_points() if "orchestrion_extra" in s.source]
    finally:
        sys.modules.pop("orchestrion_extra", None)
    assert len(loaded) == 1 and isinstance(loaded[0].agents[0], AgentSpec)
    registry = _registry()
    register_specs(registry, loaded, routes=["default"])
    assert "extra_auditor" in registry.specialists_for("code_analysis")


async def test_a_yaml_defined_agent_runs_a_task_through_the_api(tmp_path: Path) -> None:
    agents_dir = tmp_path / "agents"
    _write(agents_dir, "auditor.yaml", CONFIG_AUDITOR)
    with serve(tmp_path / "home", agents_dir=agents_dir) as server:
        async with server.client() as client:
            types = {t["id"] for t in (await client.get("/api/v1/task-types")).json()}
            assert "config_audit" in types
            body = {
                "title": "audit settings",
                "task_type": "config_audit",
                "inputs": {
                    "files": [{"name": "settings.env", "content": f"AWS_ACCESS_KEY_ID={AWS_KEY_ID}\n"}]
                },
            }
            created = (await client.post("/api/v1/tasks", json=body)).json()
            task = await wait_status(client, created["id"])
            assert task["status"] == "succeeded", task["error"]
            assert [s["agent_id"] for s in task["plan"]["steps"]] == ["config_auditor", "reporter"]
            result = (await client.get(f"/api/v1/tasks/{task['id']}/result")).json()
    grounded = [f for f in result["findings"] if f["grounded"] and f["agent_id"] == "config_auditor"]
    assert grounded and any("aws" in f["title"].lower() for f in grounded)
    assert AWS_KEY_ID not in str(result)


def test_the_server_refuses_to_start_on_a_bad_agent_file(tmp_path: Path) -> None:
    agents_dir = tmp_path / "agents"
    _write(agents_dir, "auditor.yaml", CONFIG_AUDITOR.replace("[secret_scan]", "[nmap]"))
    env = {"ORCHESTRION_HOME": str(tmp_path / "home"), "ORCHESTRION_AGENTS_DIR": str(agents_dir)}
    done = cli("serve", "--port", "1", env=env)
    assert done.returncode == 2, done.stderr
    assert str(agents_dir / "auditor.yaml") in done.stderr and "tools: unknown nmap" in done.stderr


async def test_a_task_type_that_needs_a_target_refuses_a_missing_or_malformed_one(tmp_path: Path) -> None:
    agents_dir = tmp_path / "agents"
    _write(agents_dir, "auditor.yaml", CONFIG_AUDITOR.replace("needs_inputs: true", "needs_target: true"))
    with serve(tmp_path / "home", agents_dir=agents_dir) as server:
        async with server.client() as client:
            body = {"title": "t", "task_type": "config_audit"}
            missing = await client.post("/api/v1/tasks", json=body)
            malformed = await client.post("/api/v1/tasks", json=body | {"target": "ftp://user@host/x"})
            fine = await client.post(
                "/api/v1/tasks", json=body | {"target": "example.org", "auto_execute": False}
            )
            types = {t["id"]: t for t in (await client.get("/api/v1/task-types")).json()}
    assert missing.status_code == 422 and missing.json()["error"]["details"]["field"] == "target"
    assert malformed.status_code == 422 and malformed.json()["error"]["details"]["field"] == "target"
    assert fine.status_code == 201, fine.text
    assert types["config_audit"]["needs_target"] is True and types["code_analysis"]["needs_target"] is False


async def test_a_yaml_agent_uses_an_mcp_tool_in_a_task(tmp_path: Path) -> None:
    server_script = Path(__file__).resolve().parents[1] / "fixtures" / "mcp_server.py"
    servers = _write(
        tmp_path,
        "mcp.yaml",
        f"servers:\n  inventory:\n    command: {sys.executable}\n    args: [{server_script}]\n",
    )
    agents_dir = tmp_path / "agents"
    _write(
        agents_dir,
        "counter.yaml",
        """
        agents:
          - id: word_counter
            name: Word Counter
            description: Counts words with an MCP tool.
            task_types: [word_count]
            tools: [mcp.inventory.word_count]
            playbooks:
              word_count:
                - tool: mcp.inventory.word_count
                  args: {text: "one two three four"}
        task_types:
          - id: word_count
            description: Count words.
            default_agents: [word_counter]
        """,
    )
    with serve(tmp_path / "home", agents_dir=agents_dir, mcp_servers_file=servers) as server:
        async with server.client() as client:
            created = (
                await client.post("/api/v1/tasks", json={"title": "count", "task_type": "word_count"})
            ).json()
            task = await wait_status(client, created["id"])
            assert task["status"] == "succeeded", task["error"]
            events = (await client.get(f"/api/v1/tasks/{task['id']}/events")).json()["data"]
        runs = await server.runtime.db.read(lambda conn: read_runs(conn, task["id"]))
    called = [e["data"] for e in events if e["type"] == "tool.called"]
    assert called and called[0]["tool"] == "mcp.inventory.word_count" and called[0]["error"] is None
    evidence = [e for r in runs for e in r.evidence if e.tool == "mcp.inventory.word_count"]
    assert evidence and "4 words" in evidence[0].summary
