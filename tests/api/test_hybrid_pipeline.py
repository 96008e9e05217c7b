"""The hybrid pipeline end to end: what a user remembered reaches the ideas of an `innovation` task
(recall -> analysis team -> creative), and another user's private memory never does."""

from __future__ import annotations

from pathlib import Path

from orchestrion.testing import ScriptedProvider
from tests.api.test_creative_api import Ideas
from tests.api.test_tasks_api import new_user, wait_status
from tests.conftest import serve


async def test_memories_flow_through_recall_and_analysis_into_the_ideas(tmp_path: Path) -> None:
    provider = ScriptedProvider(default=Ideas())
    with serve(tmp_path, routes={"default": [provider]}) as server:
        other_key = await new_user(server, "mallory")
        async with server.client() as client, server.client(other_key) as other:
            mine = await client.post(
                "/api/v1/memory",
                json={
                    "title": "signing key rotation policy",
                    "text": "Rotate the payment service signing keys every 90 days; the 2025 outage came "
                    "from a leaked signing key that was never rotated.",
                    "tags": ["policy"],
                },
            )
            assert mine.status_code == 201, mine.text
            private = await other.post(
                "/api/v1/memory",
                json={"title": "zebra signing key notes", "text": "Private: the payment signing key zebra."},
            )
            assert private.status_code == 201, private.text
            body = {
                "title": "third quarter hardening",  # not the query: options.query is what recall searches
                "task_type": "innovation",
                "inputs": {"files": [{"name": "keys.py", "content": "KEY = 'static'\nprint(KEY)\n"}]},
                "options": {
                    "brief": "Ideas to make our payment signing keys safer",
                    "candidates": 2,
                    "analysis_task_type": "code_analysis",
                    "query": "payment signing key",
                },
            }
            created = await client.post("/api/v1/tasks", json=body)
            assert created.status_code == 201, created.text
            assert created.json()["engine"] == "creative"
            task = await wait_status(client, created.json()["id"])
            assert task["status"] == "succeeded", task["error"]
            steps = [s["id"] for s in task["plan"]["steps"]]
            assert steps == ["recall", "analysis-code_analyzer", "candidate-0", "candidate-1", "judge"]
            result = (await client.get(f"/api/v1/tasks/{task['id']}/result")).json()
            assert [c["rank"] for c in result["stats"]["candidates"]] == [1, 2]
            # The finished task's report is remembered too, for its owner only.
            found = (
                await client.get("/api/v1/memory/search", params={"q": "third quarter hardening"})
            ).json()
            assert task["id"] in {hit["task_id"] for hit in found["data"]}
            theirs = (
                await other.get("/api/v1/memory/search", params={"q": "third quarter hardening"})
            ).json()
            assert task["id"] not in {hit["task_id"] for hit in theirs["data"]}
    idea_prompts = [r.messages[-1].content for r in provider.requests if r.json_schema is None]
    assert len(idea_prompts) == 2
    for prompt in idea_prompts:
        assert "Memory: Memory 'signing key rotation policy'" in prompt
        assert "zebra" not in prompt  # another user's private item is never recalled
        assert "Finding (" in prompt  # and the analysis stage's findings follow the memories
