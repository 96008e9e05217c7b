"""Agent tests: the engine harness (an in-process runtime with custom agents on scripted routes) and
the local network servers of `tests.fixtures.net` for the target-facing agents."""

from __future__ import annotations

from tests.engines.conftest import harness_factory
from tests.fixtures.net import certs, dns_server, http_server, https_server

__all__ = ["certs", "dns_server", "harness_factory", "http_server", "https_server"]
