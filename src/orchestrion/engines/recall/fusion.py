"""Reciprocal rank fusion: one ranking from several, by rank alone (Cormack et al., SIGIR 2009)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

RRF_K = 60
"""The constant of reciprocal rank fusion: a document's score is the sum of 1 / (RRF_K + rank)."""


@dataclass(frozen=True, kw_only=True)
class Fused:
    """One fused result.

    Attributes:
        key: The document's key.
        score: Its fused score, the sum of 1 / (k + rank) over the rankings that hold it.
        ranks: Its 1-based rank in each ranking that holds it, by ranking name.
    """

    key: str
    score: float
    ranks: Mapping[str, int] = field(default_factory=dict)


def reciprocal_rank_fusion(rankings: Mapping[str, Sequence[str]], *, k: int = RRF_K) -> list[Fused]:
    """Fuse named rankings (best first, keys distinct within each) into one, best first.

    Scores from different backends (BM25, cosine similarity) are not comparable, so only ranks
    count. Ties go to the document with the best single rank, then to the earliest ranking.
    """
    scores: dict[str, float] = {}
    ranks: dict[str, dict[str, int]] = {}
    order: dict[str, tuple[int, int]] = {}
    for position, (name, ranking) in enumerate(rankings.items()):
        for rank, key in enumerate(ranking, start=1):
            if name in ranks.get(key, {}):
                continue  # a repeated key keeps its first (best) rank
            scores[key] = scores.get(key, 0.0) + 1.0 / (k + rank)
            ranks.setdefault(key, {})[name] = rank
            order[key] = min(order.get(key, (rank, position)), (rank, position))
    keys = sorted(scores, key=lambda key: (-scores[key], order[key]))
    return [Fused(key=key, score=scores[key], ranks=ranks[key]) for key in keys]
