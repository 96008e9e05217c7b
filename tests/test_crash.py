"""Crash recovery: SIGKILL a real server mid-task, restart it, and the task finishes exactly once."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from orchestrion.testing import OpenAITestServer
from tests.conftest import free_port

pytestmark = pytest.mark.slow

SOURCE = "import subprocess\n\ndef run(cmd):\n    return subprocess.call(cmd, shell=True)\n"


class ServerProcess:
    def __init__(self, home: Path, port: int, env: dict[str, str]) -> None:
        self.home, self.port, self.env = home, port, env
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        log = open(self.home / "server.log", "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "orchestrion", "serve", "--port", str(self.port)],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, (self.home / "server.log").read_text()
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/health", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise AssertionError("server did not come up")

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


@pytest.fixture
def llm() -> Iterator[OpenAITestServer]:
    with OpenAITestServer(latency_seconds=1.5) as server:
        yield server


def start_server(tmp_path: Path, llm_base_url: str) -> tuple[ServerProcess, httpx.Client]:
    """A server process on SQLite in `tmp_path` with short leases, its LLM at `llm_base_url`, and an
    admin client for it."""
    key = "orc_crash_" + secrets.token_urlsafe(24)
    port = free_port()
    env = {
        **os.environ,
        "ORCHESTRION_HOME": str(tmp_path),
        "ORCHESTRION_ADMIN_API_KEY": key,
        "ORCHESTRION_LLM": "openai_compat:test-model",
        "ORCHESTRION_OPENAI_BASE_URL": llm_base_url,
        "ORCHESTRION_LEASE_SECONDS": "1.5",
        "ORCHESTRION_SWEEP_INTERVAL_SECONDS": "0.2",
    }
    env.pop("ORCHESTRION_DATABASE_URL", None)
    server = ServerProcess(tmp_path, port, env)
    server.start()
    client = httpx.Client(
        base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Bearer {key}"}, timeout=10
    )
    return server, client


def _events(client: httpx.Client, task_id: str) -> list[dict[str, Any]]:
    return list(client.get(f"/api/v1/tasks/{task_id}/events").json()["data"])


def test_task_survives_sigkill_and_completes_each_step_once(tmp_path: Path, llm: OpenAITestServer) -> None:
    server, client = start_server(tmp_path, llm.base_url)
    try:
        created = client.post(
            "/api/v1/tasks",
            json={
                "title": "crash",
                "task_type": "code_analysis",
                "inputs": {"files": [{"name": "a.py", "content": SOURCE}]},
            },
        )
        assert created.status_code == 201, created.text
        task_id = created.json()["id"]

        deadline = time.monotonic() + 30
        seen_before: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            seen_before = _events(client, task_id)
            if any(e["type"] == "step.completed" for e in seen_before):
                break
            time.sleep(0.02)
        assert any(e["type"] == "step.completed" for e in seen_before), seen_before
        server.kill()
        assert not any(e["type"] == "task.completed" for e in seen_before)

        server.start()
        deadline = time.monotonic() + 60
        status = ""
        while time.monotonic() < deadline:
            status = client.get(f"/api/v1/tasks/{task_id}").json()["status"]
            if status in ("succeeded", "failed", "partial", "cancelled"):
                break
            time.sleep(0.1)
        assert status == "succeeded", (tmp_path / "server.log").read_text()[-3000:]

        events = _events(client, task_id)
        assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
        assert events[: len(seen_before)] == seen_before  # nothing seen before the crash was lost
        completed = Counter(e["data"]["step_id"] for e in events if e["type"] == "step.completed")
        assert completed == {"code_analyzer": 1, "reporter": 1}
        tools = Counter(e["data"]["tool"] for e in events if e["type"] == "tool.called")
        assert tools == {"python_metrics": 1, "bandit_scan": 1, "secret_scan": 1}
        starts = [e["data"] for e in events if e["type"] == "task.started"]
        assert [s["resumed"] for s in starts] == [False, True]
        signatures = [(e["type"], repr(sorted(e["data"].items()))) for e in events]
        assert len(signatures) == len(set(signatures)), "an event was duplicated"
        analysis_calls = [r for r in llm.requests if "findings" in str(r.get("response_format", ""))]
        assert len(analysis_calls) == 1  # the checkpointed specialist was not run again
        result = client.get(f"/api/v1/tasks/{task_id}/result")
        assert result.status_code == 200 and result.json()["findings"]
    finally:
        client.close()
        server.stop()
