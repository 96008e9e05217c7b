"""/api/v1/memory on a real uvicorn server: add, search, read, delete, roles, 413 and 422."""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

import pytest

from tests.api.test_tasks_api import new_user, wait_status
from tests.conftest import LiveServer

PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff").decode()


@pytest.fixture
def live_server(server_factory: Callable[..., LiveServer]) -> LiveServer:
    """A real server whose memory search is keyword-only, so rankings are exact (vectors: test_vectors.py)."""
    return server_factory(embeddings="off")


async def test_documents_are_added_searched_read_and_deleted(live_server: LiveServer) -> None:
    async with live_server.client() as admin:
        created = await admin.post(
            "/api/v1/memory",
            json={
                "title": "Runbook: rotate the VPN certificate",
                "text": "Rotate the VPN certificate every ninety days with the renew-vpn script.",
                "files": [
                    {"name": "dns.md", "content": "Our DNS zones are served by two Knot resolvers."},
                    {
                        "name": "kafka.txt",
                        "content": base64.b64encode(b"Kafka retention is seven days.").decode(),
                        "encoding": "base64",
                    },
                ],
                "tags": ["Ops", "runbook"],
            },
        )
        assert created.status_code == 201, created.text
        items = created.json()["data"]
        assert [i["title"] for i in items] == ["Runbook: rotate the VPN certificate", "dns.md", "kafka.txt"]
        assert items[0]["tags"] == ["ops", "runbook"] and items[0]["source"] == "document"

        search = await admin.get("/api/v1/memory/search", params={"q": "VPN certificate renewal", "k": 5})
        assert search.status_code == 200, search.text
        body = search.json()
        assert body["backends"][0] == "keyword" and body["scope"] == "mine"
        hit = body["data"][0]
        assert hit["item_id"] == items[0]["id"] and hit["matched_by"][0] == "keyword"
        assert hit["ranks"]["keyword"] == 1 and "VPN certificate" in hit["snippet"]
        tagged = await admin.get("/api/v1/memory/search", params={"q": "retention", "tags": "ops,runbook"})
        assert [h["title"] for h in tagged.json()["data"]] == ["kafka.txt"]

        read = await admin.get(f"/api/v1/memory/{items[2]['id']}")
        assert read.status_code == 200 and read.json()["text"] == "Kafka retention is seven days."
        listed = await admin.get("/api/v1/memory", params={"limit": 2})
        assert len(listed.json()["data"]) == 2 and listed.json()["next_cursor"]
        rest = await admin.get("/api/v1/memory", params={"limit": 2, "cursor": listed.json()["next_cursor"]})
        assert len(rest.json()["data"]) == 1 and rest.json()["next_cursor"] is None

        deleted = await admin.delete(f"/api/v1/memory/{items[0]['id']}")
        assert deleted.status_code == 204
        assert (await admin.get(f"/api/v1/memory/{items[0]['id']}")).status_code == 404
        again = await admin.get("/api/v1/memory/search", params={"q": "VPN certificate"})
        assert again.json()["data"] == []


async def test_viewers_search_but_cannot_write_and_nobody_sees_anothers_private_items(
    live_server: LiveServer,
) -> None:
    viewer = await new_user(live_server, "vera", role="viewer")
    operator = await new_user(live_server, "otto")
    async with live_server.client(key=operator) as otto, live_server.client(key=viewer) as vera:
        private = (await otto.post("/api/v1/memory", json={"text": "Otto's private lighthouse notes"})).json()
        shared = (
            await otto.post("/api/v1/memory", json={"text": "The lighthouse wiki is shared", "shared": True})
        ).json()
        refused = await vera.post("/api/v1/memory", json={"text": "a viewer's note"})
        found = await vera.get("/api/v1/memory/search", params={"q": "lighthouse"})
        hidden = await vera.get(f"/api/v1/memory/{private['data'][0]['id']}")
        no_delete = await vera.delete(f"/api/v1/memory/{shared['data'][0]['id']}")
        everything = await vera.get("/api/v1/memory/search", params={"q": "lighthouse", "scope": "all"})
    async with live_server.client() as admin:
        all_items = await admin.get("/api/v1/memory/search", params={"q": "lighthouse", "scope": "all"})

    assert refused.status_code == 403
    assert [h["item_id"] for h in found.json()["data"]] == [shared["data"][0]["id"]]
    assert hidden.status_code == 404 and no_delete.status_code == 403
    assert everything.status_code == 403
    assert len(all_items.json()["data"]) == 2


async def test_an_item_over_the_size_limit_is_413_naming_the_field_and_limit(server_factory: Any) -> None:
    server = server_factory(memory_max_item_bytes=2048, embeddings="off")
    async with server.client() as client:
        text = await client.post("/api/v1/memory", json={"text": "x" * 2049})
        upload = await client.post(
            "/api/v1/memory",
            json={"text": "fine", "files": [{"name": "big.txt", "content": "é" * 1100}]},
        )
        listed = await client.get("/api/v1/memory")

    assert text.status_code == 413
    assert text.json()["error"]["code"] == "payload_too_large"
    assert text.json()["error"]["details"] == {"field": "text", "limit": 2048, "size": 2049}
    assert upload.status_code == 413
    assert upload.json()["error"]["details"]["field"] == "files[0].content"
    assert listed.json()["data"] == []  # all or nothing: the text of the refused request was not kept


async def test_bad_searches_and_documents_are_422_naming_the_field(live_server: LiveServer) -> None:
    async with live_server.client() as client:
        blank = await client.get("/api/v1/memory/search", params={"q": "   "})
        empty = await client.get("/api/v1/memory/search", params={"q": ""})
        missing = await client.get("/api/v1/memory/search")
        wordless = await client.get("/api/v1/memory/search", params={"q": "?!"})
        big_k = await client.get("/api/v1/memory/search", params={"q": "x", "k": 101})
        scope = await client.get("/api/v1/memory/search", params={"q": "x", "scope": "everyone"})
        binary = await client.post(
            "/api/v1/memory",
            json={"files": [{"name": "a.png", "content": PNG, "encoding": "base64"}]},
        )
        nothing = await client.post("/api/v1/memory", json={"tags": ["x"]})

    for response in (blank, empty, missing, wordless):
        assert response.status_code == 422, response.text
        assert response.json()["error"]["details"]["field"] == "q"
    assert big_k.status_code == 422 and big_k.json()["error"]["details"]["field"] == "k"
    assert scope.status_code == 422 and scope.json()["error"]["details"]["choices"] == ["mine", "all"]
    assert binary.status_code == 422 and binary.json()["error"]["details"]["field"] == "files[0].content"
    assert "binary" in binary.json()["error"]["message"]
    assert nothing.status_code == 422 and nothing.json()["error"]["details"]["field"] == "text"


async def test_a_memory_query_task_answers_from_the_submitters_memory(live_server: LiveServer) -> None:
    async with live_server.client() as client:
        await client.post(
            "/api/v1/memory",
            json={"title": "Firewall change window", "text": "Firewall changes happen on Tuesdays at 06:00."},
        )
        created = await client.post(
            "/api/v1/tasks", json={"title": "firewall change window", "task_type": "memory_query"}
        )
        assert created.status_code == 201, created.text
        task = await wait_status(client, created.json()["id"])
        result = (await client.get(f"/api/v1/tasks/{task['id']}/result")).json()

    assert task["status"] == "succeeded"
    titles = [f["title"] for f in result["findings"]]
    assert "Remembered: Firewall change window" in titles
