"""Training and the promotion decision, as pure CPU work over resolved predictions.

Rows are in submission order. The newest `holdout_fraction` of them (at least `min_holdout`) are the
holdout; the candidate trains on the rest. Three predictors are scored on the holdout:

- the prior, using the predictions it actually made at submission (stored with each task);
- the candidate;
- the promoted model, if any. Where at least `min_holdout` holdout rows came after its training
  cutoff, it and the candidate are compared on those only, so it is not judged on data it saw.

Scores: Brier score and log loss (success), MAE of the p50 and coverage of the p90 (duration), MAE
(cost). The candidate is promoted when:

- its Brier score beats the prior's by more than noise: the paired per-task improvement has a z
  statistic of at least 1.645 (one-sided 95%), so a model without skill does not replace the prior
  on a lucky holdout;
- its Brier score is lower than the promoted model's (a point estimate: successive models are
  alike, and demanding significance there would freeze the first one);
- its duration and cost MAE are no more than 2% worse than the reference's (the promoted model,
  else the prior). Every trained candidate goes into the registry with its scores and the
decision, promoted or not.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from orchestrion.intelligence.model import OutcomeModel, fit_outcome_model
from orchestrion.store.predictions import TrainingRow

TOLERANCE = 1.02
MIN_GAIN_Z = 1.645
_EPS = 1e-6


@dataclass(frozen=True, kw_only=True)
class Scores:
    """How a predictor did on a set of rows."""

    n: int
    brier: float
    log_loss: float
    duration_mae: float
    duration_p90_coverage: float
    cost_mae: float

    def as_dict(self) -> dict[str, float]:
        """Rounded, JSON-ready."""
        return {k: round(float(v), 6) for k, v in self.__dict__.items()}


@dataclass(frozen=True, kw_only=True)
class TrainingReport:
    """A trained candidate, its scores and the decision."""

    model: OutcomeModel
    promote: bool
    decision: str
    sample_count: int
    holdout_count: int
    metrics: dict[str, Any]
    seconds: float


Prediction4 = tuple[float, float, float, float]


def score(predictions: Sequence[Prediction4], rows: Sequence[TrainingRow]) -> Scores:
    """Score (success, p50, p90, cost) predictions against the rows' outcomes."""
    n = len(rows)
    brier = log_loss = dur = covered = cost = 0.0
    for (p, p50, p90, c), row in zip(predictions, rows, strict=True):
        y = 1.0 if row.succeeded else 0.0
        brier += (p - y) ** 2
        clipped = min(1 - _EPS, max(_EPS, p))
        log_loss -= y * math.log(clipped) + (1 - y) * math.log(1 - clipped)
        dur += abs(p50 - row.duration_seconds)
        covered += 1.0 if row.duration_seconds <= p90 else 0.0
        cost += abs(c - row.cost_usd)
    n_safe = max(1, n)
    return Scores(
        n=n,
        brier=brier / n_safe,
        log_loss=log_loss / n_safe,
        duration_mae=dur / n_safe,
        duration_p90_coverage=covered / n_safe,
        cost_mae=cost / n_safe,
    )


def prior_predictions(rows: Sequence[TrainingRow]) -> list[Prediction4]:
    """What the prior predicted for each row at submission."""
    return [
        (
            r.prior.success_probability,
            r.prior.duration_p50_seconds,
            r.prior.duration_p90_seconds,
            r.prior.cost_usd,
        )
        for r in rows
    ]


def paired_brier_gain(
    reference: Sequence[Prediction4], candidate: Sequence[Prediction4], rows: Sequence[TrainingRow]
) -> tuple[float, float]:
    """Mean per-task Brier improvement of `candidate` over `reference`, and its z statistic.

    The z statistic is the mean difference of squared errors over its standard error (paired, so
    the noise shared by both predictors on a task cancels out); 0 when there is no variation.
    """
    diffs = []
    for ref, cand, row in zip(reference, candidate, rows, strict=True):
        y = 1.0 if row.succeeded else 0.0
        diffs.append((ref[0] - y) ** 2 - (cand[0] - y) ** 2)
    n = len(diffs)
    if n < 2:
        return 0.0, 0.0
    mean = sum(diffs) / n
    variance = sum((d - mean) ** 2 for d in diffs) / (n - 1)
    if variance <= 0:
        return mean, 0.0
    return mean, mean / math.sqrt(variance / n)


def split(rows: Sequence[TrainingRow], *, holdout_fraction: float, min_holdout: int) -> tuple[int, int]:
    """Sizes of the training part and the holdout (the newest rows)."""
    holdout = max(min_holdout, round(len(rows) * holdout_fraction))
    return len(rows) - holdout, holdout


def train(
    rows: Sequence[TrainingRow],
    *,
    current: OutcomeModel | None,
    holdout_fraction: float,
    min_holdout: int,
    seed: int = 0,
) -> TrainingReport:
    """Fit a candidate on the older rows, score it on the newest, decide on promotion."""
    started = time.perf_counter()
    n_train, _ = split(rows, holdout_fraction=holdout_fraction, min_holdout=min_holdout)
    training, holdout = rows[:n_train], rows[n_train:]
    candidate = fit_outcome_model(
        [r.features for r in training],
        succeeded=[r.succeeded for r in training],
        durations=[r.duration_seconds for r in training],
        costs=[r.cost_usd for r in training],
        task_types=[r.task_type for r in training],
        trained_until=training[-1].created_at,
        seed=seed,
    )
    candidate_predictions = candidate.predict_many([r.features for r in holdout])
    candidate_scores = score(candidate_predictions, holdout)
    prior_scores = score(prior_predictions(holdout), holdout)
    gain, z = paired_brier_gain(prior_predictions(holdout), candidate_predictions, holdout)
    metrics: dict[str, Any] = {
        "candidate": candidate_scores.as_dict(),
        "prior": prior_scores.as_dict(),
        "brier_gain_over_prior": round(gain, 6),
        "brier_gain_z": round(z, 3),
    }

    reasons: list[str] = []
    if candidate_scores.brier >= prior_scores.brier:
        reasons.append(
            f"Brier score {candidate_scores.brier:.4f} does not beat the prior's {prior_scores.brier:.4f}"
        )
    elif z < MIN_GAIN_Z:
        reasons.append(
            f"its Brier gain over the prior ({gain:.4f}) is within noise on {len(holdout)} tasks "
            f"(z = {z:.2f} < {MIN_GAIN_Z})"
        )
    reference, reference_name = prior_scores, "the prior"
    ours = candidate_scores
    if current is not None:
        after = [r for r in holdout if r.created_at > current.trained_until]
        compared = after if len(after) >= min_holdout else list(holdout)
        metrics["current_compared_on"] = "after_its_cutoff" if compared is after else "whole_holdout"
        reference = score(current.predict_many([r.features for r in compared]), compared)
        reference_name = "the promoted model"
        ours = score(candidate.predict_many([r.features for r in compared]), compared)
        metrics["current"] = reference.as_dict()
        metrics["candidate_vs_current"] = ours.as_dict()
        if ours.brier >= reference.brier:
            reasons.append(
                f"Brier score {ours.brier:.4f} does not beat the promoted model's {reference.brier:.4f}"
            )
    if ours.duration_mae > reference.duration_mae * TOLERANCE + _EPS:
        reasons.append(
            f"duration MAE {ours.duration_mae:.3f}s is worse than "
            f"{reference_name}'s {reference.duration_mae:.3f}s"
        )
    if ours.cost_mae > reference.cost_mae * TOLERANCE + _EPS:
        reasons.append(
            f"cost MAE {ours.cost_mae:.6f} is worse than {reference_name}'s {reference.cost_mae:.6f}"
        )
    promote = not reasons
    decision = (
        f"promoted: Brier {candidate_scores.brier:.4f} vs prior {prior_scores.brier:.4f}, "
        f"duration MAE {candidate_scores.duration_mae:.3f}s vs {prior_scores.duration_mae:.3f}s"
        if promote
        else "refused: " + "; ".join(reasons)
    )
    return TrainingReport(
        model=candidate,
        promote=promote,
        decision=decision,
        sample_count=len(training),
        holdout_count=len(holdout),
        metrics=metrics,
        seconds=time.perf_counter() - started,
    )
