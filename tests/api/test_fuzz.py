"""Property test: no input makes the API answer 500; every error uses the JSON envelope."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import LiveServer, serve

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)
FIELDS = [
    "title",
    "task_type",
    "target",
    "inputs",
    "priority",
    "agents",
    "auto_execute",
    "budget",
    "deadline_seconds",
]
task_like = st.dictionaries(
    st.sampled_from(FIELDS), json_values, max_size=len(FIELDS)
) | st.fixed_dictionaries(
    {
        "title": st.text(max_size=300),
        "task_type": st.sampled_from(["code_analysis", "data_analysis", "x", ""]),
    },
    optional={
        "inputs": st.fixed_dictionaries(
            {},
            optional={
                "files": st.lists(
                    st.fixed_dictionaries({"name": st.text(max_size=20), "content": st.text(max_size=50)}),
                    max_size=3,
                ),
                "paths": st.lists(st.text(max_size=30), max_size=2),
            },
        ),
        "priority": st.integers(-5, 20),
        "agents": st.lists(
            st.sampled_from(["code_analyzer", "data_analyst", "reporter", "ghost"]), max_size=3
        ),
        "auto_execute": st.just(False),
        "deadline_seconds": st.floats(allow_nan=False, allow_infinity=False) | st.integers(),
        "budget": st.dictionaries(
            st.sampled_from(["max_tokens", "max_cost_usd", "other"]), json_values, max_size=2
        ),
    },
)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with serve(tmp_path_factory.mktemp("fuzz"), workers=1) as live:
        yield live


@pytest.fixture(scope="module")
def client(server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=server.base_url, headers={"Authorization": f"Bearer {server.admin_key}"}, timeout=30
    ) as http:
        yield http


def _check(response: httpx.Response) -> None:
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        error = response.json()["error"]
        assert isinstance(error["code"], str) and isinstance(error["message"], str)


_settings = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@_settings
@given(body=json_values | task_like)
def test_task_submission_never_500(client: httpx.Client, body: Any) -> None:
    if isinstance(body, dict) and body.get("auto_execute") is not True:
        body = {**body, "auto_execute": False}
    _check(client.post("/api/v1/tasks", json=body))


@_settings
@given(raw=st.binary(max_size=200))
def test_malformed_json_never_500(client: httpx.Client, raw: bytes) -> None:
    _check(client.post("/api/v1/tasks", content=raw, headers={"content-type": "application/json"}))


@_settings
@given(
    task_id=st.text(
        alphabet=st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="/?#%"),
        min_size=1,
        max_size=40,
    ),
    suffix=st.sampled_from(["", "/progress", "/result", "/events", "/cancel", "/retry", "/execute"]),
    params=st.dictionaries(
        st.sampled_from(["after", "limit", "status", "task_type", "cursor"]), st.text(max_size=12), max_size=3
    ),
    last_event_id=st.none() | st.from_regex(r"\A[!-~]([ -~]{0,8}[!-~])?\Z"),
)
def test_task_routes_never_500(
    client: httpx.Client, task_id: str, suffix: str, params: dict[str, str], last_event_id: str | None
) -> None:
    method = "POST" if suffix in ("/cancel", "/retry", "/execute") else "GET"
    headers = {"Last-Event-ID": last_event_id} if last_event_id is not None else {}
    if suffix == "/events":
        headers["Accept"] = "text/event-stream"
    _check(client.request(method, f"/api/v1/tasks/{task_id}{suffix}", params=params, headers=headers))
    _check(client.get("/api/v1/tasks", params=params))


def test_fuzz_examples_include_a_valid_submission(client: httpx.Client) -> None:
    body = {
        "title": "t",
        "task_type": "code_analysis",
        "auto_execute": False,
        "inputs": {"files": [{"name": "a.py", "content": "x = 1\n"}]},
    }
    response = client.post(
        "/api/v1/tasks", content=json.dumps(body), headers={"content-type": "application/json"}
    )
    assert response.status_code == 201
