"""The circuit breaker: a deployment that keeps failing is not called until it has cooled down.

States: ``closed`` (calls flow; outcomes are counted), ``open`` (calls are refused with
`CircuitOpenError` until `cooldown_seconds` pass), ``half_open`` (one probe call is let through;
success closes the circuit and clears the window, failure opens it again for another cooldown;
other calls are refused while the probe is in flight).

The circuit opens after `consecutive_failures` failures in a row, or when failures reach
`failure_rate` of the last `window` calls once `min_calls` are in the window. Only failures that
say something about the deployment's health count: rate limits, timeouts, transport errors, 5xx,
malformed bodies, auth and unknown-model errors. A bad request or a schema violation is the
caller's problem, and a cancelled call says nothing either way.
"""

from __future__ import annotations

import enum
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from orchestrion.domain.events import Channel, EventType, Notice
from orchestrion.domain.tasks import utcnow
from orchestrion.exceptions import CircuitOpenError, ProviderError
from orchestrion.providers.base import ChatRequest, ChatResponse, Provider
from orchestrion.providers.options import BreakerConfig
from orchestrion.providers.wrapper import WrapperProvider

logger = logging.getLogger(__name__)

COUNTED_KINDS = frozenset(
    {"rate_limited", "timeout", "transport", "server_error", "bad_response", "auth", "not_found", "error"}
)

Clock = Callable[[], float]


class CircuitState(enum.StrEnum):
    """A breaker's state; the gauge value is the member's position (0 closed, 1 half-open, 2 open)."""

    CLOSED = "closed"
    HALF_OPEN = "half_open"
    OPEN = "open"

    @property
    def gauge(self) -> int:
        """The value exported as `orchestrion_llm_circuit_state`."""
        return {"closed": 0, "half_open": 1, "open": 2}[self.value]


class Permit(enum.Enum):
    """What `CircuitBreaker.acquire` granted: an ordinary call, or the half-open probe."""

    CALL = "call"
    PROBE = "probe"


@dataclass(frozen=True, kw_only=True)
class BreakerStatus:
    """A breaker's state for the API."""

    state: CircuitState
    consecutive_failures: int
    window_calls: int
    window_failures: int
    opened_count: int
    retry_in_seconds: float | None


StateHook = Callable[[str, CircuitState], None]
"""Called with the deployment name and the new state on every transition."""


@dataclass(frozen=True, kw_only=True)
class CircuitChange:
    """One transition of a breaker, for listeners (the `provider.circuit` notice).

    Attributes:
        deployment: The deployment's name.
        previous: The state it left.
        state: The state it entered.
        reason: Why: `consecutive_failures`, `failure_rate`, `probe_failed`, `cooldown_elapsed` or
            `probe_succeeded`.
    """

    deployment: str
    previous: CircuitState
    state: CircuitState
    reason: str

    def notice(self) -> Notice:
        """The `provider.circuit` notice WebSocket clients receive on the `providers` channel."""
        return Notice(
            channel=Channel.PROVIDERS.value,
            type=EventType.PROVIDER_CIRCUIT.value,
            data={
                "deployment": self.deployment,
                "from": self.previous.value,
                "to": self.state.value,
                "reason": self.reason,
            },
            created_at=utcnow(),
        )


CircuitListener = Callable[[CircuitChange], None]
"""Called synchronously, inside the provider call, on every transition; it must not block."""


class CircuitBreaker:
    """The state machine, separate from the wrapper so the API and metrics can read it."""

    def __init__(
        self,
        deployment: str,
        config: BreakerConfig,
        *,
        clock: Clock = time.monotonic,
        on_change: StateHook | None = None,
    ) -> None:
        self.deployment = deployment
        self._config = config
        self._clock = clock
        self._on_change = on_change
        self._state = CircuitState.CLOSED
        self._window: deque[bool] = deque(maxlen=config.window)
        self._consecutive = 0
        self._opened_at = 0.0
        self._probe_in_flight = False
        self._opened_count = 0
        self._listeners: list[CircuitListener] = []

    def add_listener(self, listener: CircuitListener) -> None:
        """Call `listener` on every transition from now on (after the `on_change` hook)."""
        self._listeners.append(listener)

    @property
    def state(self) -> CircuitState:
        """The state now (an open circuit whose cooldown has passed reads as half-open)."""
        if self._state is CircuitState.OPEN and self._cooled_down():
            return CircuitState.HALF_OPEN
        return self._state

    def _cooled_down(self) -> bool:
        return self._clock() - self._opened_at >= self._config.cooldown_seconds

    def _set(self, state: CircuitState, reason: str) -> None:
        if state is self._state:
            return
        previous, self._state = self._state, state
        logger.warning("circuit of %s is %s (%s)", self.deployment, state.value, reason)
        if self._on_change is not None:
            self._on_change(self.deployment, state)
        change = CircuitChange(deployment=self.deployment, previous=previous, state=state, reason=reason)
        for listener in self._listeners:
            try:
                listener(change)
            except Exception:
                # A listener is a side channel (notices): it must never fail the call it observes.
                logger.exception("circuit listener failed for %s", self.deployment)

    def acquire(self) -> Permit | None:
        """Permission for one call now, or None; a permit in half-open state makes its call the probe."""
        if self._state is CircuitState.CLOSED:
            return Permit.CALL
        if self._state is CircuitState.OPEN:
            if not self._cooled_down():
                return None
            self._set(CircuitState.HALF_OPEN, "cooldown_elapsed")
        if self._probe_in_flight:
            return None
        self._probe_in_flight = True
        return Permit.PROBE

    def retry_in(self) -> float | None:
        """Seconds until an open circuit lets a probe through (None unless open)."""
        if self._state is not CircuitState.OPEN:
            return None
        return max(0.0, self._config.cooldown_seconds - (self._clock() - self._opened_at))

    def record_success(self, permit: Permit) -> None:
        """Count a success; the probe's success closes the circuit."""
        if permit is Permit.PROBE:
            self._probe_in_flight = False
            self._window.clear()
            self._consecutive = 0
            self._set(CircuitState.CLOSED, "probe_succeeded")
        elif self._state is not CircuitState.CLOSED:
            return  # a call admitted before the circuit opened: its outcome decides nothing now
        self._consecutive = 0
        self._window.append(True)

    def record_failure(self, permit: Permit) -> None:
        """Count a failure; may open the circuit (the probe's failure reopens it)."""
        if permit is Permit.PROBE:
            self._probe_in_flight = False
            self._open("probe_failed")
            return
        if self._state is not CircuitState.CLOSED:
            return
        self._consecutive += 1
        self._window.append(False)
        reason = self._open_reason()
        if reason is not None:
            self._open(reason)

    def record_neutral(self, permit: Permit) -> None:
        """A call that says nothing about health ended; the probe's slot is freed for another."""
        if permit is Permit.PROBE:
            self._probe_in_flight = False

    def _open_reason(self) -> str | None:
        if self._consecutive >= self._config.consecutive_failures:
            return "consecutive_failures"
        calls = len(self._window)
        if calls < self._config.min_calls:
            return None
        failures = calls - sum(self._window)
        return "failure_rate" if failures / calls >= self._config.failure_rate else None

    def _open(self, reason: str) -> None:
        self._opened_at = self._clock()
        self._opened_count += 1
        self._consecutive = 0
        self._set(CircuitState.OPEN, reason)

    def status(self) -> BreakerStatus:
        """A snapshot for the API."""
        calls = len(self._window)
        return BreakerStatus(
            state=self.state,
            consecutive_failures=self._consecutive,
            window_calls=calls,
            window_failures=calls - sum(self._window),
            opened_count=self._opened_count,
            retry_in_seconds=self.retry_in(),
        )


class BreakerProvider(WrapperProvider):
    """Refuses calls while the breaker is open and feeds it every outcome."""

    def __init__(
        self, inner: Provider, breaker: CircuitBreaker, *, on_reject: Callable[[str], None] | None = None
    ) -> None:
        super().__init__(inner)
        self.breaker = breaker
        self._on_reject = on_reject

    async def complete(self, request: ChatRequest) -> ChatResponse:
        """Call through the breaker."""
        permit = self.breaker.acquire()
        if permit is None:
            if self._on_reject is not None:
                self._on_reject(self.breaker.deployment)
            raise CircuitOpenError(
                f"{self.breaker.deployment}: circuit open after repeated failures; not called",
                provider=self.name,
                retry_after=self.breaker.retry_in(),
            )
        try:
            response = await self.inner.complete(request)
        except ProviderError as exc:
            if exc.kind in COUNTED_KINDS:
                self.breaker.record_failure(permit)
            else:
                self.breaker.record_neutral(permit)
            raise
        except BaseException:
            self.breaker.record_neutral(permit)
            raise
        self.breaker.record_success(permit)
        return response
