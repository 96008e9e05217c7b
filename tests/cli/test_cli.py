"""The `orchestrion` command as a user runs it: a subprocess talking to a real server."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import LiveServer


def cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("ORCHESTRION_")}
    base["ORCHESTRION_CLIENT_CONFIG"] = "/nonexistent/client.yaml"
    base["COLUMNS"] = "200"
    return subprocess.run(
        [sys.executable, "-m", "orchestrion", *args],
        env={**base, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_run_submits_follows_and_prints_report(live_server: LiveServer, tmp_path: Path) -> None:
    source = tmp_path / "app.py"
    source.write_text("import subprocess\n\ndef run(cmd):\n    return subprocess.call(cmd, shell=True)\n")
    done = cli(
        "run",
        "--type",
        "code_analysis",
        "--file",
        str(source),
        "--url",
        live_server.base_url,
        "--api-key",
        live_server.admin_key,
    )
    assert done.returncode == 0, done.stderr
    assert "report" in done.stdout and "shell" in done.stdout.lower()
    assert "LLM: " in done.stdout and "call(s)" in done.stdout
    assert "succeeded" in done.stdout
    assert "predicted (prior): success 80%" in done.stdout  # a fresh server: the cold-start prior


def test_providers_lists_routes_and_deployment_usage(live_server: LiveServer, tmp_path: Path) -> None:
    source = tmp_path / "app.py"
    source.write_text("def f(x):\n    return eval(x)\n")
    env = {"ORCHESTRION_URL": live_server.base_url, "ORCHESTRION_API_KEY": live_server.admin_key}
    assert cli("run", "-t", "code_analysis", "-f", str(source), env=env).returncode == 0
    done = cli("providers", env=env)
    assert done.returncode == 0, done.stderr
    assert "default" in done.stdout and "closed" in done.stdout
    routes = live_server.runtime.router.routes() if live_server.runtime.router else {}
    for name in routes["default"]:
        assert name in done.stdout
    unauthorised = cli("providers", env={**env, "ORCHESTRION_API_KEY": "orc_wrong"})
    assert unauthorised.returncode == 2 and unauthorised.stderr.startswith("error:")


def test_models_shows_the_serving_model_and_retrain_says_what_is_missing(live_server: LiveServer) -> None:
    env = {"ORCHESTRION_URL": live_server.base_url, "ORCHESTRION_API_KEY": live_server.admin_key}
    listed = cli("models", env=env)
    assert listed.returncode == 0, listed.stderr
    assert "serving: prior" in listed.stdout and "training needs 50" in listed.stdout
    retrain = cli("models", "--retrain", env=env)
    assert retrain.returncode == 2
    assert (
        retrain.stderr.startswith("error: training needs 50 finished tasks")
        and retrain.stderr.count("\n") == 1
    )


def test_run_reads_url_and_key_from_environment(live_server: LiveServer, tmp_path: Path) -> None:
    data = tmp_path / "d.csv"
    data.write_text("a,b\n1,2\n2,4\n3,6\n,8\n")
    done = cli(
        "run",
        "-t",
        "data_analysis",
        "-f",
        str(data),
        env={"ORCHESTRION_URL": live_server.base_url, "ORCHESTRION_API_KEY": live_server.admin_key},
    )
    assert done.returncode == 0, done.stderr


def test_bad_input_exits_2_with_one_line(live_server: LiveServer, tmp_path: Path) -> None:
    source = tmp_path / "app.py"
    source.write_text("x = 1\n")
    common = ["--url", live_server.base_url, "--api-key", live_server.admin_key]
    cases = [
        cli("run", "--type", "astrology", "--file", str(source), *common),
        cli("run", "--type", "code_analysis", "--file", str(tmp_path / "missing.py"), *common),
        cli("run", "--type", "code_analysis", "--file", str(source), "--url", live_server.base_url),
        cli("run", "--type", "code_analysis", "--bogus-option"),
        cli("tasks", "show", "no-such-task", *common),
    ]
    for done in cases:
        assert done.returncode == 2, (done.args, done.stdout, done.stderr)
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("error:"), done.stderr
    assert "code_analysis" in cases[0].stderr  # names the valid choices


def test_tasks_list_show_and_agents(live_server: LiveServer, tmp_path: Path) -> None:
    common = ["--url", live_server.base_url, "--api-key", live_server.admin_key]
    source = tmp_path / "m.py"
    source.write_text("def f():\n    return 1\n")
    assert cli("run", "-t", "code_analysis", "-f", str(source), *common).returncode == 0
    listed = cli("tasks", "list", *common)
    assert listed.returncode == 0 and "code_analysis" in listed.stdout
    agents = cli("agents", *common)
    assert agents.returncode == 0 and "code_analyzer" in agents.stdout and "data_analysis" in agents.stdout


def test_users_create_prints_a_working_key(live_server: LiveServer) -> None:
    env = {"ORCHESTRION_HOME": str(live_server.settings.home)}
    created = cli("users", "create", "carol", "--role", "viewer", env=env)
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip()
    assert key.startswith("orc_")
    listed = cli("tasks", "list", "--url", live_server.base_url, "--api-key", key)
    assert listed.returncode == 0, listed.stderr
    again = cli("users", "create", "carol", env=env)
    bad_role = cli("users", "create", "dave", "--role", "emperor", env=env)
    assert again.returncode == 2 and "already exists" in again.stderr
    assert bad_role.returncode == 2 and "operator" in bad_role.stderr


def test_db_upgrade_creates_the_schema_and_is_idempotent(tmp_path: Path) -> None:
    env = {"ORCHESTRION_HOME": str(tmp_path / "home")}
    first, again = cli("db", "upgrade", env=env), cli("db", "upgrade", env=env)
    assert first.returncode == 0 and again.returncode == 0, first.stderr
    import sqlite3

    with sqlite3.connect(tmp_path / "home" / "orchestrion.db") as conn:
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        version = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    assert {"tasks", "steps", "events", "agent_runs", "results", "users", "api_keys", "llm_calls"} <= tables
    assert {"task_predictions", "outcome_models"} <= tables
    assert version == ("0007",)
    bad = cli("db", "upgrade", env={**env, "ORCHESTRION_PORT": "not-a-port"})
    assert bad.returncode == 2 and bad.stderr.startswith("error: invalid setting port")


def test_status_prints_health_agents_and_firing_alerts(live_server: LiveServer) -> None:
    env = {"ORCHESTRION_URL": live_server.base_url, "ORCHESTRION_API_KEY": live_server.admin_key}
    done = cli("status", env=env)
    assert done.returncode == 0, done.stderr
    first = done.stdout.splitlines()[0]
    assert first.split(": ")[1] in ("healthy", "degraded", "stressed")
    assert f"agents: {len(live_server.runtime.registry.agents)} (" in done.stdout
    assert "alerts firing" in done.stdout or "severity" in done.stdout
