"""The intelligence layer's face: assess submissions, learn from outcomes, retrain in the background.

`assess` picks the team (selector), builds the features and predicts with the promoted model, or
with the prior while there is none; the prior's own prediction is kept alongside as the baseline.
`record` stores both with the task (in its transaction). `observe` resolves a finished task's
prediction against what happened, exports the errors, updates the history and, every
`retrain_every` outcomes, trains a candidate in a worker thread (never on the request path).

The history is loaded once and then updated in place; `refresh_seconds` reloads it (and checks for a
model promoted by another process). Agent loads and each route's LLM error rate over the
`error_window_seconds` before the submission are read per submission, cached for `live_ttl_seconds`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from orchestrion.agents.registry import AgentRegistry
from orchestrion.domain.intelligence import ModelRecord, Selection
from orchestrion.domain.tasks import Prediction, TaskStatus, utcnow
from orchestrion.exceptions import InsufficientDataError
from orchestrion.intelligence.advice import suggest
from orchestrion.intelligence.features import Submission, build_features
from orchestrion.intelligence.history import History
from orchestrion.intelligence.model import LIBRARY_VERSION, ArtefactError, OutcomeModel
from orchestrion.intelligence.prior import predict_prior
from orchestrion.intelligence.selector import ThompsonSelector
from orchestrion.intelligence.trainer import TrainingReport, train
from orchestrion.monitoring.metrics import Metrics
from orchestrion.store import predictions as store
from orchestrion.store.database import Database, WriteTx

logger = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class Assessment:
    """What the intelligence layer decided for a submission."""

    selection: Selection
    features: dict[str, float]
    prediction: Prediction
    prior: Prediction


class Intelligence:
    """Selection, prediction and learning; built by `runtime.py`."""

    def __init__(
        self,
        *,
        db: Database,
        registry: AgentRegistry,
        metrics: Metrics,
        rng: random.Random | None = None,
        retrain_every: int = 20,
        min_train_samples: int = 50,
        holdout_fraction: float = 0.25,
        min_holdout: int = 15,
        max_training_rows: int = 5000,
        history_limit: int = 2000,
        refresh_seconds: float = 30.0,
        live_ttl_seconds: float = 1.0,
        error_window_seconds: float = 900.0,
        load_penalty: float = 0.1,
        seed: int = 0,
    ) -> None:
        self._db = db
        self._registry = registry
        self._metrics = metrics
        self._selector = ThompsonSelector(registry, rng=rng, load_penalty=load_penalty)
        self._retrain_every = retrain_every
        self._min_train = min_train_samples
        self._holdout_fraction = holdout_fraction
        self._min_holdout = min_holdout
        self._max_rows = max_training_rows
        self._history_limit = history_limit
        self._refresh_seconds = refresh_seconds
        self._live_ttl = live_ttl_seconds
        self._error_window = timedelta(seconds=error_window_seconds)
        self._seed = seed
        self.history = History()
        self._loaded = False
        self._model: OutcomeModel | None = None
        # The version serving predictions, and the one the registry marks promoted: they differ when
        # the promoted artefact cannot be loaded (the prior serves, and a new candidate may replace it).
        self._version: int | None = None
        self._registry_version: int | None = None
        self._since_training = 0
        self._live: tuple[float, dict[str, int], dict[str, float]] | None = None
        self._lock = asyncio.Lock()
        self._training: asyncio.Task[ModelRecord | None] | None = None
        self._refresher: asyncio.Task[None] | None = None

    @property
    def model_version(self) -> int | None:
        """Version of the model serving predictions (None: the prior)."""
        return self._version

    @property
    def training(self) -> bool:
        """Whether a background training is running."""
        return self._training is not None and not self._training.done()

    @property
    def outcomes_since_training(self) -> int:
        """Outcomes observed by this process since it last trained."""
        return self._since_training

    async def start(self) -> None:
        """Load history and the promoted model, then keep them fresh."""
        await self.reload()
        if self._refresh_seconds > 0 and self._refresher is None:
            self._refresher = asyncio.create_task(self._refresh_loop(), name="intelligence-refresh")

    async def stop(self) -> None:
        """Stop refreshing; wait for a running training to finish (it cannot be interrupted)."""
        if self._refresher is not None:
            self._refresher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._refresher
            self._refresher = None
        if self._training is not None:
            with contextlib.suppress(Exception):
                await self._training
            self._training = None

    async def reload(self) -> None:
        """Rebuild the history from the store and load the promoted model if it changed."""
        outcomes = await self._db.read(lambda conn: store.read_history(conn, limit=self._history_limit))
        now = utcnow()
        rates = await self._db.read(
            lambda conn: store.read_route_error_rates(conn, since=now - self._error_window, until=now)
        )
        self.history = History(outcomes, route_errors=rates)
        self._loaded = True
        version = await self._db.read(store.read_promoted_version)
        if version != self._registry_version:
            await self._load_promoted()

    async def _load_promoted(self) -> None:
        found = await self._db.read(store.read_promoted)
        if found is None:
            self._model, self._version, self._registry_version = None, None, None
            return
        record, data, digest, library = found
        self._registry_version = record.version
        try:
            model = await asyncio.to_thread(
                OutcomeModel.from_bytes, data, sha256=digest, library_version=library
            )
        except ArtefactError as exc:
            logger.error(
                "outcome model v%s cannot be loaded (%s); predicting with the prior", record.version, exc
            )
            self._model, self._version = None, None
            return
        self._model, self._version = model, record.version
        self._metrics.outcome_model_version.set(record.version)
        logger.info("outcome model v%s loaded (%s samples)", record.version, record.sample_count)

    async def _refresh_loop(self) -> None:
        while True:
            await asyncio.sleep(self._refresh_seconds)
            try:
                await self.reload()
            except Exception:
                logger.exception("refreshing the intelligence history failed; keeping the old one")

    # -- submission -------------------------------------------------------------------------------

    async def assess(self, submission: Submission) -> Assessment:
        """Choose the team and predict the outcome of a submission.

        Raises:
            ValidationError: Requested agents or required capabilities that do not fit the type.
        """
        if not self._loaded:
            await self.reload()
        loads, route_errors = await self._live_state(submission.submitted_at)
        self.history.route_errors = route_errors
        selection = self._selector.select(
            submission.task_type,
            requested=submission.agents,
            required_capabilities=submission.required_capabilities,
            history=self.history,
            loads=loads,
        )
        return self.predict(submission, selection)

    def predict(self, submission: Submission, selection: Selection) -> Assessment:
        """Features and prediction for a submission whose team is chosen (CPU only, no I/O)."""
        team = selection.team
        routes = {a: self._registry.agent(a).route for a in team}
        features = build_features(submission, team=team, routes=routes, history=self.history)
        prior = predict_prior(self.history, submission.task_type, team=team, steps=len(team) + 1)
        prediction = prior
        model = self._model
        if model is not None:
            (p, d50, d90, cost), risks = model.predict_explained(features)
            n = model.type_counts.get(submission.task_type, 0)
            prediction = Prediction(
                success_probability=round(p, 4),
                duration_p50_seconds=round(d50, 3),
                duration_p90_seconds=round(d90, 3),
                cost_usd=round(cost, 6),
                confidence=round(n / (n + 10), 4),
                sample_size=n,
                model="learned",
                model_version=self._version,
                risk_factors=tuple(risks),
            )
        advice = suggest(
            prediction.risk_factors,
            task_type=submission.task_type,
            team=team,
            candidates=self._registry.specialists_for(submission.task_type),
            history=self.history,
        )
        return Assessment(
            selection=selection,
            features=features,
            prediction=replace(prediction, suggestions=tuple(advice)),
            prior=prior,
        )

    def record(self, tx: WriteTx, *, task_id: str, submission: Submission, assessment: Assessment) -> None:
        """Persist the prediction, its features and the prior's, in the task's transaction."""
        store.insert_prediction(
            tx,
            task_id=task_id,
            task_type=submission.task_type,
            created_at=submission.submitted_at,
            team=assessment.selection.team,
            features=assessment.features,
            served=assessment.prediction,
            prior=assessment.prior,
        )

    async def _live_state(self, at: datetime) -> tuple[dict[str, int], dict[str, float]]:
        now = time.monotonic()
        if self._live is None or now - self._live[0] >= self._live_ttl:
            since = at - self._error_window

            def read(conn: Any) -> tuple[dict[str, int], dict[str, float]]:
                return store.read_agent_loads(conn), store.read_route_error_rates(conn, since=since, until=at)

            loads, rates = await self._db.read(read)
            self._live = (now, loads, rates)
        return self._live[1], self._live[2]

    # -- learning ---------------------------------------------------------------------------------

    async def observe(self, task_id: str) -> None:
        """Learn from a task that reached a final status (never raises: learning is best effort)."""
        try:
            await self._observe(task_id)
        except Exception:
            logger.exception("learning from task %s failed", task_id)

    async def _observe(self, task_id: str) -> None:
        outcome = await self._db.read(lambda conn: store.read_outcome(conn, task_id))
        if outcome is None:
            return
        resolved = await self._db.write(lambda tx: store.resolve_prediction(tx, outcome, at=utcnow()))
        if outcome.status == TaskStatus.CANCELLED.value:
            return
        if resolved is None:
            # Already resolved (the outcome of a resumed task is counted once) or never predicted.
            return
        success, duration, cost, model = resolved
        self._metrics.observe_prediction_error(
            model,
            squared_error=(success - (1.0 if outcome.succeeded else 0.0)) ** 2,
            duration_error=abs(duration - outcome.duration_seconds)
            if outcome.duration_seconds is not None
            else None,
            cost_error=abs(cost - outcome.cost_usd),
        )
        self.history.apply(outcome)
        self._since_training += 1
        if self._retrain_every > 0 and self._since_training >= self._retrain_every and not self.training:
            self._training = asyncio.create_task(self._train_quietly(), name="intelligence-train")

    async def _train_quietly(self) -> ModelRecord | None:
        try:
            return await self.retrain()
        except InsufficientDataError as exc:
            logger.debug("not training yet: %s", exc.message)
        except Exception:
            logger.exception("training an outcome model failed")
            self._metrics.outcome_model_trainings_total.labels("error").inc()
        return None

    async def wait_for_training(self) -> ModelRecord | None:
        """Wait for the background training in progress, if any (tests, benchmarks)."""
        task = self._training
        return await task if task is not None else None

    async def retrain(self) -> ModelRecord:
        """Train a candidate now and promote it if it wins.

        Raises:
            InsufficientDataError: Fewer resolved predictions than `min_train_samples`.
        """
        async with self._lock:
            self._since_training = 0
            rows = await self._db.read(lambda conn: store.read_training_rows(conn, limit=self._max_rows))
            if len(rows) < self._min_train:
                raise InsufficientDataError(needed=self._min_train, have=len(rows))
            current, current_version = self._model, self._registry_version
            report: TrainingReport = await asyncio.to_thread(
                train,
                rows,
                current=current,
                holdout_fraction=self._holdout_fraction,
                min_holdout=self._min_holdout,
                seed=self._seed,
            )
            data, digest = await asyncio.to_thread(report.model.to_bytes) if report.promote else (None, None)
            record = ModelRecord(
                version=0,
                trained_at=utcnow(),
                sample_count=report.sample_count,
                holdout_count=report.holdout_count,
                metrics=report.metrics,
                decision=report.decision,
                training_seconds=round(report.seconds, 3),
            )

            def persist(tx: WriteTx) -> tuple[ModelRecord, bool]:
                promote = report.promote and store.read_promoted_version(tx.conn) == current_version
                final = record
                if report.promote and not promote:
                    final = replace(record, decision="refused: another process promoted a model meanwhile")
                version = store.insert_model(
                    tx,
                    final,
                    artefact=data if promote else None,
                    sha256=digest if promote else None,
                    library_version=LIBRARY_VERSION,
                )
                if promote:
                    store.promote_model(tx, version, expected_current=current_version)
                return replace(final, version=version, promoted=promote), promote

            record, promoted = await self._db.write(persist)
            version = record.version
            self._metrics.outcome_model_training_seconds.observe(report.seconds)
            self._metrics.outcome_model_trainings_total.labels("promoted" if promoted else "refused").inc()
            if promoted:
                self._model, self._version, self._registry_version = report.model, version, version
                self._metrics.outcome_model_version.set(version)
            logger.info("outcome model v%s trained on %s rows: %s", version, len(rows), report.decision)
            return record

    async def read_models(self, *, limit: int = 100) -> list[ModelRecord]:
        """The model registry, newest first."""
        return await self._db.read(lambda conn: store.read_models(conn, limit=limit))

    async def count_training_rows(self) -> int:
        """Resolved predictions available for training."""
        return await self._db.read(store.count_training_rows)
