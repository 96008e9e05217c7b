"""The learned outcome model: success, duration quantiles and cost from submission features.

- Success: gradient boosting (scikit-learn) with sigmoid-calibrated probabilities (isotonic from 1,000
  samples), calibrated on shuffled 3-fold out-of-fold predictions and served as one model (`ensemble=False`).
- Duration: two gradient-boosting quantile regressions (0.5 and 0.9) on log1p(seconds); quantiles
  survive the monotone transform, and the log tames long tails.
- Cost: gradient boosting with absolute error (a conditional median), or a constant when every
  training task cost the same (all local models).
- Risk factors: each numeric feature set to its training median, the target kind to the usual one,
  each team member removed, then predicted again in one batch; the features whose real value lowers
  the success estimate by at least a point are the risk factors, largest first.

Artefacts are pickles checked against a SHA-256 and the scikit-learn version before loading; they
come only from this server's own registry table.
"""

from __future__ import annotations

import hashlib
import math
import pickle
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import sklearn
from sklearn.calibration import CalibratedClassifierCV
from sklearn.ensemble import GradientBoostingClassifier, GradientBoostingRegressor
from sklearn.model_selection import StratifiedKFold

from orchestrion.domain.intelligence import RiskFactor
from orchestrion.intelligence.features import NUMERIC_LABELS

LIBRARY_VERSION = f"scikit-learn {sklearn.__version__}"
MIN_IMPACT = 0.01
_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


class ArtefactError(Exception):
    """A stored model that cannot be loaded: missing, altered or from another library version."""


@dataclass(kw_only=True)
class OutcomeModel:
    """A trained model bundle (pickled as a whole into the registry)."""

    feature_names: list[str]
    typical: np.ndarray[Any, Any]
    classifier: Any | None
    constant_success: float
    q50: Any
    q90: Any
    cost: Any | None
    constant_cost: float
    type_counts: dict[str, int]
    trained_until: datetime
    sample_count: int

    def matrix(self, rows: Sequence[Mapping[str, float]]) -> np.ndarray[Any, Any]:
        """Rows of features as a matrix in this model's column order (unknown names are dropped)."""
        index = {name: i for i, name in enumerate(self.feature_names)}
        out = np.zeros((len(rows), len(self.feature_names)))
        for r, features in enumerate(rows):
            for name, value in features.items():
                column = index.get(name)
                if column is not None:
                    out[r, column] = value
        return out

    def success(self, x: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
        """Success probabilities of the rows of `x`."""
        if self.classifier is None:
            return np.full(x.shape[0], self.constant_success)
        return np.asarray(self.classifier.predict_proba(x)[:, 1])

    def predict(self, features: Mapping[str, float]) -> tuple[float, float, float, float]:
        """(success probability, duration p50 s, duration p90 s, cost USD) of one submission."""
        x = self.matrix([features])
        return self._predict(x)[0]

    def predict_many(self, rows: Sequence[Mapping[str, float]]) -> list[tuple[float, float, float, float]]:
        """`predict` for many submissions at once."""
        return self._predict(self.matrix(rows)) if rows else []

    def _predict(
        self, x: np.ndarray[Any, Any], success: np.ndarray[Any, Any] | None = None
    ) -> list[tuple[float, float, float, float]]:
        with sklearn.config_context(assume_finite=True, skip_parameter_validation=True):
            p = self.success(x) if success is None else success
            d50 = np.expm1(np.maximum(self.q50.predict(x), 0.0))
            d90 = np.maximum(np.expm1(np.maximum(self.q90.predict(x), 0.0)), d50)
            cost = (
                np.maximum(self.cost.predict(x), 0.0)
                if self.cost is not None
                else np.full(len(p), self.constant_cost)
            )
        return [
            (float(a), float(b), float(c), float(d)) for a, b, c, d in zip(p, d50, d90, cost, strict=True)
        ]

    def predict_explained(
        self, features: Mapping[str, float], *, top: int = 5
    ) -> tuple[tuple[float, float, float, float], list[RiskFactor]]:
        """`predict` and the risk factors (see the module docstring), with one success batch for both."""
        x = self.matrix([features])[0]
        index = {name: i for i, name in enumerate(self.feature_names)}
        variants: list[tuple[str, float, np.ndarray[Any, Any]]] = []
        for name in NUMERIC_LABELS:
            column = index.get(name)
            if column is not None and x[column] != self.typical[column]:
                row = x.copy()
                row[column] = self.typical[column]
                variants.append((name, float(x[column]), row))
        target_columns = [i for n, i in index.items() if n.startswith("target=")]
        if target_columns and any(x[i] != self.typical[i] for i in target_columns):
            row = x.copy()
            row[target_columns] = self.typical[target_columns]
            kind = next(
                (n for n, i in index.items() if n.startswith("target=") and x[i] == 1.0), "target=new"
            )
            variants.append((kind, 1.0, row))
        for name, column in index.items():
            if name.startswith("agent=") and x[column] == 1.0:
                row = x.copy()
                row[column] = 0.0
                variants.append((name, 1.0, row))
        with sklearn.config_context(assume_finite=True, skip_parameter_validation=True):
            probabilities = self.success(np.vstack([x, *[v[2] for v in variants]]))
        prediction = self._predict(x.reshape(1, -1), probabilities[:1])[0]
        actual = float(probabilities[0])
        factors = []
        for (name, value, _), other in zip(variants, probabilities[1:], strict=True):
            impact = actual - float(other)
            if impact <= -MIN_IMPACT:
                typical = float(self.typical[index[name]]) if name in NUMERIC_LABELS else None
                factors.append(
                    RiskFactor(
                        feature=name,
                        value=round(value, 4),
                        impact=round(impact, 4),
                        message=describe(name, value, typical, impact),
                    )
                )
        factors.sort(key=lambda f: f.impact)
        return prediction, factors[:top]

    def explain(self, features: Mapping[str, float], *, top: int = 5) -> list[RiskFactor]:
        """The risk factors of a submission."""
        return self.predict_explained(features, top=top)[1]

    def to_bytes(self) -> tuple[bytes, str]:
        """The pickled artefact and its SHA-256."""
        data = pickle.dumps(self, protocol=pickle.HIGHEST_PROTOCOL)
        return data, hashlib.sha256(data).hexdigest()

    @staticmethod
    def from_bytes(data: bytes | None, *, sha256: str | None, library_version: str) -> OutcomeModel:
        """Load an artefact saved by `to_bytes`.

        Raises:
            ArtefactError: Missing bytes, a digest mismatch, another scikit-learn version, or a pickle
                that is not an `OutcomeModel`.
        """
        if not data:
            raise ArtefactError("the artefact is missing")
        if library_version != LIBRARY_VERSION:
            raise ArtefactError(f"the artefact was saved by {library_version}; this is {LIBRARY_VERSION}")
        if sha256 is None or hashlib.sha256(data).hexdigest() != sha256:
            raise ArtefactError("the artefact does not match its SHA-256")
        try:
            # Our own registry table, digest checked above.
            model = pickle.loads(data)
        except Exception as exc:
            raise ArtefactError(f"the artefact does not unpickle: {type(exc).__name__}") from exc
        if not isinstance(model, OutcomeModel):
            raise ArtefactError(f"the artefact holds a {type(model).__name__}, not an OutcomeModel")
        return model


def describe(name: str, value: float, typical: float | None, impact: float) -> str:
    """A risk factor in words."""
    points = f"{impact * 100:+.0f} points of success"
    if name.startswith("agent="):
        return f"having agent {name[6:]} on the team: {points}"
    if name.startswith("target="):
        return f"a target of kind {name[7:]}: {points}"
    label = NUMERIC_LABELS.get(name, name)
    shown = _format(name, value)
    usual = f" (typically {_format(name, typical)})" if typical is not None else ""
    return f"{label} is {shown}{usual}: {points}"


def _format(name: str, value: float) -> str:
    if name == "input_bytes_log":
        size = math.expm1(value)
        for unit in ("B", "kB", "MB", "GB"):
            if size < 1000 or unit == "GB":
                return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
            size /= 1000
    if name == "hour":
        return f"{int(value):02d}:00"
    if name == "weekday":
        return _WEEKDAYS[int(value) % 7]
    if name == "team_duration_log":
        return f"{math.expm1(value):.1f} s"
    if "rate" in name or "success" in name or "quality" in name:
        return f"{value:.0%}"
    return f"{value:g}"


def fit_outcome_model(
    features: Sequence[Mapping[str, float]],
    *,
    succeeded: Sequence[bool],
    durations: Sequence[float],
    costs: Sequence[float],
    task_types: Sequence[str],
    trained_until: datetime,
    seed: int = 0,
) -> OutcomeModel:
    """Fit the three heads on aligned training rows (CPU-bound: call it off the event loop)."""
    names = sorted({name for row in features for name in row})
    index = {name: i for i, name in enumerate(names)}
    x = np.zeros((len(features), len(names)))
    for r, row in enumerate(features):
        for name, value in row.items():
            x[r, index[name]] = value
    y = np.asarray(succeeded, dtype=int)
    booster = {
        "max_depth": 3,
        "learning_rate": 0.05,
        "subsample": 0.8,
        "max_features": 0.5,
        "random_state": seed,
    }
    n_estimators = 60 if len(y) < 300 else 100

    classifier: Any | None = None
    minority = int(min(y.sum(), len(y) - y.sum()))
    if minority >= 3:
        classifier = CalibratedClassifierCV(
            GradientBoostingClassifier(n_estimators=n_estimators, **booster),
            method="isotonic" if len(y) >= 1000 else "sigmoid",
            # Shuffled folds: the rows are in time order, and unshuffled folds would calibrate each
            # fold on a different period (measured: a worse Brier score than no calibration).
            cv=StratifiedKFold(n_splits=3, shuffle=True, random_state=seed),
            ensemble=False,
        ).fit(x, y)
    log_durations = np.log1p(np.maximum(np.asarray(durations, dtype=float), 0.0))
    q50 = GradientBoostingRegressor(loss="quantile", alpha=0.5, n_estimators=n_estimators, **booster)
    q90 = GradientBoostingRegressor(loss="quantile", alpha=0.9, n_estimators=n_estimators, **booster)
    q50.fit(x, log_durations)
    q90.fit(x, log_durations)
    cost_values = np.asarray(costs, dtype=float)
    cost_model: Any | None = None
    if np.ptp(cost_values) > 0:
        cost_model = GradientBoostingRegressor(loss="absolute_error", n_estimators=n_estimators, **booster)
        cost_model.fit(x, cost_values)
    counts: dict[str, int] = {}
    for task_type in task_types:
        counts[task_type] = counts.get(task_type, 0) + 1
    return OutcomeModel(
        feature_names=names,
        typical=np.median(x, axis=0),
        classifier=classifier,
        constant_success=float(y.mean()) if len(y) else 0.5,
        q50=q50,
        q90=q90,
        cost=cost_model,
        constant_cost=float(np.median(cost_values)) if len(cost_values) else 0.0,
        type_counts=counts,
        trained_until=trained_until,
        sample_count=len(y),
    )
