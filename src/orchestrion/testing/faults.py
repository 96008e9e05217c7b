"""Faults the vendor test server can inject, and the thread-safe plan that hands them out.

Faults are scripted from the test thread while uvicorn answers in its own thread, so every
read and write of the plan happens under one lock.
"""

from __future__ import annotations

import random
import threading
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

FaultKind = Literal["status", "slow", "malformed", "empty", "html", "cut", "reset", "disconnect"]
ApiName = Literal["openai", "anthropic", "gemini"]
API_NAMES: tuple[ApiName, ...] = ("openai", "anthropic", "gemini")


@dataclass(frozen=True, kw_only=True)
class Fault:
    """One way for a chat request to go wrong; build it with the class-method constructors.

    Attributes:
        kind: What happens (see the constructors).
        status_code: HTTP status for `status` and `html` faults.
        retry_after: Seconds sent in the Retry-After header of a `status` fault, if any.
        seconds: Delay of a `slow` fault.
    """

    kind: FaultKind
    status_code: int = 200
    retry_after: float | None = None
    seconds: float = 0.0

    @classmethod
    def status(cls, status_code: int, *, retry_after: float | None = None) -> Fault:
        """An HTTP error in the vendor's error JSON shape, with an optional Retry-After header."""
        if not 400 <= status_code <= 599:
            raise ValueError(f"status faults need a 4xx or 5xx code, not {status_code}")
        return cls(kind="status", status_code=status_code, retry_after=retry_after)

    @classmethod
    def slow(cls, seconds: float) -> Fault:
        """Wait `seconds`, then answer normally: a client with a shorter read timeout times out."""
        if seconds < 0:
            raise ValueError("seconds must not be negative")
        return cls(kind="slow", seconds=seconds)

    @classmethod
    def malformed(cls) -> Fault:
        """HTTP 200 whose body (or stream event) is not valid JSON."""
        return cls(kind="malformed")

    @classmethod
    def empty_choices(cls) -> Fault:
        """HTTP 200 with valid JSON but an empty `choices` / `content` / `candidates` list."""
        return cls(kind="empty")

    @classmethod
    def html(cls, status_code: int = 502) -> Fault:
        """An HTML error page (``text/html``), the way a proxy in front of the vendor answers."""
        return cls(kind="html", status_code=status_code)

    @classmethod
    def cut_stream(cls) -> Fault:
        """Streams end cleanly after a couple of events but without the end marker; bodies are truncated."""
        return cls(kind="cut")

    @classmethod
    def reset(cls) -> Fault:
        """Abort the connection with a TCP RST before any response byte (httpx: `ReadError`)."""
        return cls(kind="reset")

    @classmethod
    def disconnect(cls) -> Fault:
        """Close the connection before any response byte (httpx: `RemoteProtocolError`)."""
        return cls(kind="disconnect")

    @classmethod
    def parse(cls, spec: str, *, slow_seconds: float = 2.0, retry_after: float | None = None) -> Fault:
        """Read a fault from its command-line name.

        Args:
            spec: An HTTP status (``429``), or one of ``timeout``/``slow``, ``malformed``, ``empty``,
                ``html``, ``cut``, ``reset``, ``disconnect``.
            slow_seconds: Delay for ``timeout``/``slow``.
            retry_after: Retry-After seconds for status faults.

        Raises:
            ValueError: When `spec` names no fault.
        """
        name = spec.strip().lower()
        if name.isdigit():
            return cls.status(int(name), retry_after=retry_after)
        named = {
            "timeout": lambda: cls.slow(slow_seconds),
            "slow": lambda: cls.slow(slow_seconds),
            "malformed": cls.malformed,
            "empty": cls.empty_choices,
            "html": cls.html,
            "cut": cls.cut_stream,
            "reset": cls.reset,
            "disconnect": cls.disconnect,
        }
        if name not in named:
            raise ValueError(f"unknown fault {spec!r}")
        return named[name]()


def check_api(api: str | None) -> None:
    """Reject an api name the server does not speak (None means any)."""
    if api is not None and api not in API_NAMES:
        raise ValueError(f"api must be one of {API_NAMES} or None, not {api!r}")


class FaultPlan:
    """Scripted faults (FIFO) and a random failure rate, consulted once per chat request.

    Scripted faults take precedence; the random draw only happens when none applies, so a seeded
    run makes the same choices for the same sequence of requests.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._scripted: deque[tuple[Fault, str | None]] = deque()
        self._rate = 0.0
        self._choices: tuple[Fault, ...] = ()
        self._rate_api: str | None = None
        self._random = random.Random(0)

    def inject(self, fault: Fault, count: int = 1, *, api: str | None = None) -> None:
        """Give `fault` to the next `count` chat requests of `api` (any api when None)."""
        check_api(api)
        if count < 0:
            raise ValueError("count must not be negative")
        with self._lock:
            self._scripted.extend((fault, api) for _ in range(count))

    def set_failure_rate(
        self, rate: float, faults: Iterable[Fault], *, seed: int = 0, api: str | None = None
    ) -> None:
        """From now on, fail each request of `api` with probability `rate`, picking among `faults`."""
        check_api(api)
        choices = tuple(faults)
        if not 0.0 <= rate <= 1.0:
            raise ValueError("rate must be between 0 and 1")
        if rate > 0 and not choices:
            raise ValueError("a positive failure rate needs at least one fault")
        with self._lock:
            self._rate, self._choices, self._rate_api = rate, choices, api
            self._random = random.Random(seed)

    def clear(self) -> None:
        """Drop the scripted faults and turn the failure rate off."""
        with self._lock:
            self._scripted.clear()
            self._rate, self._choices, self._rate_api = 0.0, (), None

    def take(self, api: str) -> Fault | None:
        """The fault for the next request of `api`, or None to answer it normally."""
        with self._lock:
            for position, (fault, wanted) in enumerate(self._scripted):
                if wanted is None or wanted == api:
                    del self._scripted[position]
                    return fault
            if self._rate > 0 and self._rate_api in (None, api) and self._random.random() < self._rate:
                return self._random.choice(self._choices)
            return None
