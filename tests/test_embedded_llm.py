"""The real embedded model (SmolLM2-135M via llama.cpp) end to end: no network, no keys."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.conftest import serve

pytestmark = [pytest.mark.llm, pytest.mark.slow]

SOURCE = """import subprocess

PASSWORD = "hunter2-but-longer-than-that"


def deploy(host, cmd):
    if host:
        if cmd:
            for part in cmd.split():
                if part.startswith("-"):
                    continue
    return subprocess.call("ssh " + host + " " + cmd, shell=True)
"""


async def test_code_analysis_with_the_embedded_model(tmp_path: Path) -> None:
    # `auto` with no vendor key (the test network guard removes them): every route is the embedded model.
    with serve(tmp_path, configured_llm=True, llm="auto", llm_max_tokens=256) as server:
        assert server.runtime.router is not None
        embedded = ["llama_cpp:smollm2-135m-instruct"]
        assert server.runtime.router.routes() == {"default": embedded, "fast": embedded, "smart": embedded}
        async with server.client() as client:
            created = await client.post(
                "/api/v1/tasks",
                json={
                    "title": "deploy script",
                    "task_type": "code_analysis",
                    "inputs": {"files": [{"name": "deploy.py", "content": SOURCE}]},
                },
            )
            assert created.status_code == 201, created.text
            task_id = created.json()["id"]
            async with asyncio.timeout(240):
                while (task := (await client.get(f"/api/v1/tasks/{task_id}")).json())["status"] in (
                    "queued",
                    "running",
                ):
                    await asyncio.sleep(0.2)
            assert task["status"] == "succeeded", task
            result = (await client.get(f"/api/v1/tasks/{task_id}/result")).json()
    # The tools' findings hold whatever the small model says; the model's own run is recorded.
    titles = " ".join(f["title"].lower() for f in result["findings"])
    assert "shell" in titles
    assert result["stats"]["tokens_out"] > 0
    assert all(f["grounded"] or f["agent_id"] == "code_analyzer" for f in result["findings"])
