"""Accounting: every attempt at every deployment is priced, counted in metrics and written to the ledger.

`AccountingProvider` is the innermost wrapper but one (only the total-time limit is inside it), so
each retry and each fallback is its own record, and the latency measured is the vendor's, not the
time spent queueing for a rate-limit slot. It prices the reply from the deployment's `Price`,
stamps the response with the cost and the deployment's name, and adds it to the step's meter.

`CallLedger` receives the records. Metrics are updated at once; the ledger rows (and, for calls
made for a task, an `llm.called` event each) are written in batches by a background flusher, so a
call does not wait for a database commit. `flush()` writes everything recorded so far: the engine
calls it before checkpointing a step, so a step's call events always precede its completion.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from dataclasses import replace
from datetime import datetime
from typing import Any

from orchestrion.domain.events import EventType
from orchestrion.domain.llm import CallOutcome, LLMCall
from orchestrion.domain.tasks import utcnow
from orchestrion.exceptions import ProviderError
from orchestrion.monitoring.metrics import Metrics
from orchestrion.providers.base import ChatRequest, ChatResponse, Provider
from orchestrion.providers.context import CallContext, current_call
from orchestrion.providers.options import Price
from orchestrion.providers.wrapper import WrapperProvider
from orchestrion.store.database import Database, WriteTx
from orchestrion.store.events import append_events
from orchestrion.store.llm_calls import insert_llm_calls

logger = logging.getLogger(__name__)

_ERROR_CHARS = 300


class CallLedger:
    """Collects call records: metrics now, database rows and events in batches.

    Args:
        db: Where rows and events go (None: metrics only, e.g. a CLI without a store).
        metrics: The runtime's metrics.
        flush_interval: Seconds between background flushes.
    """

    def __init__(self, db: Database | None, metrics: Metrics, *, flush_interval: float = 0.25) -> None:
        self._db = db
        self._metrics = metrics
        self._interval = flush_interval
        self._pending: list[LLMCall] = []
        self._write_lock = asyncio.Lock()
        self._flusher: asyncio.Task[None] | None = None
        self._closing = False
        self._series: dict[tuple[str, str], _Series] = {}

    def record(self, call: LLMCall) -> None:
        """Count a call in the metrics and queue it for the ledger."""
        series = self._series.get((call.provider, call.model))
        if series is None:
            series = self._series[(call.provider, call.model)] = _Series(self._metrics, call)
        outcome = call.outcome if call.outcome != "error" else (call.error_kind or "error")
        series.calls(outcome).inc()
        if call.outcome == "ok":
            series.duration.observe(call.latency_seconds)
        if call.input_tokens:
            series.tokens_in.inc(call.input_tokens)
        if call.output_tokens:
            series.tokens_out.inc(call.output_tokens)
        if call.cost_usd:
            series.cost.inc(call.cost_usd)
        if self._db is None:
            return
        self._pending.append(call)
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.get_running_loop().create_task(self._flush_loop(), name="llm-ledger")

    async def _flush_loop(self) -> None:
        """Flush every `flush_interval` while records are waiting; ends when none are left."""
        while self._pending and not self._closing:
            await asyncio.sleep(self._interval)
            try:
                await self.flush()
            except Exception:
                # The batch is back in `_pending` (see `flush`); nobody awaits this task, so log
                # here, and try again after the next interval.
                logger.exception("writing the LLM call ledger failed; will retry")

    async def flush(self) -> None:
        """Write every record received so far (rows and task events) in one transaction.

        A failed or cancelled write puts its batch back, ahead of newer records: the ledger does
        not lose spending.
        """
        if self._db is None:
            return
        async with self._write_lock:
            batch, self._pending = self._pending, []
            if not batch:
                return
            try:
                await self._db.write(lambda tx: _write_batch(tx, batch))
            except BaseException:
                self._pending[:0] = batch
                raise

    async def aclose(self) -> None:
        """Stop the background flusher (letting a write in progress finish) and write what is left."""
        self._closing = True
        flusher, self._flusher = self._flusher, None
        if flusher is not None and not flusher.done():
            if self._write_lock.locked():
                await asyncio.gather(flusher, return_exceptions=True)
            else:
                flusher.cancel()
                await asyncio.gather(flusher, return_exceptions=True)
        await self.flush()


class _Series:
    """One provider and model's metric children, looked up once (`labels()` takes a lock each time)."""

    def __init__(self, metrics: Metrics, call: LLMCall) -> None:
        provider, model = call.provider, call.model
        self._metrics = metrics
        self._key = (provider, model)
        self._outcomes: dict[str, Any] = {}
        self.duration = metrics.llm_call_duration.labels(provider, model)
        self.tokens_in = metrics.llm_tokens_total.labels(provider, model, "input")
        self.tokens_out = metrics.llm_tokens_total.labels(provider, model, "output")
        self.cost = metrics.llm_cost_usd_total.labels(provider, model)

    def calls(self, outcome: str) -> Any:
        child = self._outcomes.get(outcome)
        if child is None:
            child = self._outcomes[outcome] = self._metrics.llm_calls_total.labels(*self._key, outcome)
        return child


def _write_batch(tx: WriteTx, batch: list[LLMCall]) -> None:
    insert_llm_calls(tx, batch)
    by_task: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    for call in batch:
        if call.task_id is not None:
            by_task.setdefault(call.task_id, []).append((EventType.LLM_CALLED, call_event(call)))
    for task_id, items in by_task.items():
        append_events(tx, task_id, items)


def call_event(call: LLMCall) -> dict[str, Any]:
    """The `llm.called` event payload of a call."""
    return {
        "step_id": call.step_id,
        "route": call.route,
        "deployment": call.deployment,
        "provider": call.provider,
        "model": call.model,
        "position": call.position,
        "fallback": call.position > 0,
        "attempt": call.attempt,
        "outcome": call.outcome,
        "error_kind": call.error_kind,
        "latency_seconds": round(call.latency_seconds, 4),
        "tokens_in": call.input_tokens,
        "tokens_out": call.output_tokens,
        "cost_usd": round(call.cost_usd, 8),
    }


class AccountingProvider(WrapperProvider):
    """Records each call made through it.

    Args:
        inner: The adapter (possibly under a total-time limit).
        deployment: The deployment's configured name.
        price: Its price, or None when unknown (cost 0).
        ledger: Where records go.
    """

    def __init__(self, inner: Provider, *, deployment: str, price: Price | None, ledger: CallLedger) -> None:
        super().__init__(inner)
        self._deployment = deployment
        self._price = price
        self._ledger = ledger

    @property
    def deployment(self) -> str:
        """The configured deployment name."""
        return self._deployment

    async def complete(self, request: ChatRequest) -> ChatResponse:
        """Call and record the outcome."""
        context = current_call()
        created_at = utcnow()
        started = time.perf_counter()
        try:
            response = await self.inner.complete(request)
        except ProviderError as exc:
            self._record(context, created_at, started, "error", error=exc)
            raise
        except asyncio.CancelledError:
            self._record(context, created_at, started, "cancelled")
            raise
        except Exception as exc:
            # A bug, not an outage: recorded, then raised as it is so nothing falls back over it.
            bug = ProviderError(f"{type(exc).__name__}: {exc}", provider=self.name, kind="error")
            self._record(context, created_at, started, "error", error=bug)
            raise
        usage = response.usage
        cost = self._price.cost(usage.input_tokens, usage.output_tokens) if self._price else 0.0
        latency = self._record(
            context,
            created_at,
            started,
            "ok",
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            cost_usd=cost,
        )
        if context.meter is not None:
            context.meter.add(
                input_tokens=usage.input_tokens,
                output_tokens=usage.output_tokens,
                cost_usd=cost,
                fallback=context.position > 0,
            )
        return replace(response, cost_usd=cost, deployment=self._deployment, latency_seconds=latency)

    def _record(
        self,
        context: CallContext,
        created_at: datetime,
        started: float,
        outcome: CallOutcome,
        *,
        error: ProviderError | None = None,
        input_tokens: int = 0,
        output_tokens: int = 0,
        cost_usd: float = 0.0,
    ) -> float:
        latency = time.perf_counter() - started
        self._ledger.record(
            LLMCall(
                id=uuid.uuid4().hex,
                created_at=created_at,
                task_id=context.task_id,
                step_id=context.step_id,
                route=context.route,
                deployment=self._deployment,
                provider=self.name,
                model=self.model,
                position=context.position,
                attempt=context.attempt,
                latency_seconds=latency,
                input_tokens=input_tokens,
                output_tokens=output_tokens,
                cost_usd=cost_usd,
                outcome=outcome,
                error_kind=error.kind if error else None,
                status_code=error.status_code if error else None,
                error=error.message[:_ERROR_CHARS] if error else None,
            )
        )
        return latency
