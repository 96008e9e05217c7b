"""Fixtures for tool tests: the local network servers of `tests.fixtures.net`."""

from __future__ import annotations

from tests.fixtures.net import (  # noqa: F401  (pytest finds fixtures by name in this module)
    certs,
    dns_server,
    http_server,
    https_server,
    make_policy,
    server_factory,
    silent_server,
)
