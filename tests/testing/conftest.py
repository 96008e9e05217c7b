"""A vendor test server started once per module, reset before each test."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from orchestrion.testing import VendorTestServer


@pytest.fixture(scope="module")
def running_server() -> Iterator[VendorTestServer]:
    with VendorTestServer(model="test-model") as server:
        yield server


@pytest.fixture
def server(running_server: VendorTestServer) -> Iterator[VendorTestServer]:
    running_server.clear_faults()
    running_server.latency_seconds = 0.0
    yield running_server
    running_server.clear_faults()


@pytest.fixture
def client(server: VendorTestServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=10, trust_env=False) as http:
        yield http
