"""Tests talk to 127.0.0.1 only: connections and name lookups anywhere else are refused.

Installed by `conftest.py` before any test runs. Every TCP/UDP connect (blocking or asyncio, since
asyncio connects through `socket.socket.connect`) and every name resolution goes through a check
that allows loopback addresses and Unix sockets and raises `ConnectionRefusedError` for the rest,
so a misconfigured test cannot reach a real LLM vendor, spend money or leak a key. The vendors' key
variables are also removed from the environment, so auto-configuration finds no key.
"""

from __future__ import annotations

import ipaddress
import os
import socket
from typing import Any

_LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1", "ip6-localhost"})
_original_connect = socket.socket.connect
_original_connect_ex = socket.socket.connect_ex
_original_getaddrinfo = socket.getaddrinfo


class OutboundTrafficRefused(ConnectionRefusedError):
    """A test tried to reach a host other than 127.0.0.1."""


def _is_loopback(host: Any) -> bool:
    if isinstance(host, bytes):
        host = host.decode()
    if not isinstance(host, str):
        return False
    if host in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False


def _check(sock: socket.socket, address: Any) -> None:
    if sock.family not in (socket.AF_INET, socket.AF_INET6):
        return
    host = address[0] if isinstance(address, tuple) else address
    if not _is_loopback(host):
        raise OutboundTrafficRefused(f"tests may only connect to 127.0.0.1, not {host!r}")


def _connect(self: socket.socket, address: Any) -> None:
    _check(self, address)
    _original_connect(self, address)


def _connect_ex(self: socket.socket, address: Any) -> int:
    _check(self, address)
    return _original_connect_ex(self, address)


def _getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
    if host is not None and not _is_loopback(host):
        raise OutboundTrafficRefused(f"tests may only resolve localhost, not {host!r}")
    return _original_getaddrinfo(host, *args, **kwargs)


def install(vendor_key_variables: list[str]) -> None:
    """Refuse non-loopback traffic for the rest of the process and drop vendor keys."""
    socket.socket.connect = _connect  # type: ignore[method-assign]
    socket.socket.connect_ex = _connect_ex  # type: ignore[method-assign]
    socket.getaddrinfo = _getaddrinfo
    for name in vendor_key_variables:
        os.environ.pop(name, None)
