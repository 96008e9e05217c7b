"""How different texts are from each other: word n-gram Jaccard distance and embedding cosine distance.

Both are distances in 0..1 for the cases that matter (identical texts: 0; texts sharing no content
word: 1 on n-grams). Texts are compared on their *content words*: lower-cased words and numbers,
stop words removed, a plural ``-s`` stripped, so that "the cats" and "a cat" share their term.

- **n-gram Jaccard distance**: ``1 - shared / all`` over the sets of word 1-grams and 2-grams of
  the two texts' content words. Two texts with no content words are identical (0); one empty and
  one not are disjoint (1).
- **embedding cosine distance**: ``1 - cos(u, v)`` of two embedding vectors, clipped to 0..1 (a
  negative similarity is as far as it gets).

A set of texts is summarised by the mean and the minimum of its pairwise distances; the minimum
shows the closest pair (a near-duplicate pulls it to 0 even when the mean looks healthy).
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Sequence
from typing import Any

NGRAM_METHOD = "word 1-2-gram Jaccard distance over content words"
EMBEDDING_METHOD = "embedding cosine distance (1 - cosine similarity, clipped to 0..1)"

_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")

STOP_WORDS = frozenset(
    """
    a about above after again against all am an and any are as at be because been before being below
    between both but by can could did do does doing down during each few for from further had has have
    having he her here hers herself him himself his how i if in into is it its itself just me more most
    my myself no nor not now of off on once only or other our ours ourselves out over own same she
    should so some such than that the their theirs them themselves then there these they this those
    through to too under until up very was we were what when where which while who whom why will with
    would you your yours yourself yourselves let lets it's i'm you're we're they're that's there's
    """.split()
)
"""Common English function words: they carry no content, so overlap on them is not similarity."""


def words(text: str) -> list[str]:
    """Every lower-cased word or number of `text`, in order."""
    return _WORD.findall(text.lower())


def normalise(word: str) -> str:
    """A word's comparable form: a plural ``-s`` stripped (``ies`` -> ``y``; ``ss`` is kept)."""
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def content_words(text: str) -> list[str]:
    """The normalised words of `text` that are not stop words, in order."""
    return [normalise(w) for w in words(text) if w not in STOP_WORDS]


def shingles(text: str) -> frozenset[str]:
    """The set of word 1-grams and 2-grams of `text`'s content words."""
    terms = content_words(text)
    grams = set(terms)
    grams.update(f"{a} {b}" for a, b in itertools.pairwise(terms))
    return frozenset(grams)


def jaccard_distance(a: frozenset[str], b: frozenset[str]) -> float:
    """``1 - len(a & b) / len(a | b)``; two empty sets are identical (0.0)."""
    union = a | b
    if not union:
        return 0.0
    return 1.0 - len(a & b) / len(union)


def ngram_distance(a: str, b: str) -> float:
    """The n-gram Jaccard distance of two texts."""
    return jaccard_distance(shingles(a), shingles(b))


def cosine_distance(u: Sequence[float], v: Sequence[float]) -> float:
    """``1 - cos(u, v)`` clipped to 0..1; a zero vector is at distance 1 from everything."""
    if len(u) != len(v):
        raise ValueError(f"vectors of different dimensions: {len(u)} and {len(v)}")
    dot = sum(x * y for x, y in zip(u, v, strict=True))
    norm = math.sqrt(sum(x * x for x in u)) * math.sqrt(sum(y * y for y in v))
    if norm == 0.0:
        return 1.0
    return min(1.0, max(0.0, 1.0 - dot / norm))


def ngram_matrix(texts: Sequence[str]) -> list[list[float]]:
    """Pairwise n-gram distances (a symmetric matrix with a zero diagonal)."""
    sets = [shingles(t) for t in texts]
    return [[jaccard_distance(a, b) for b in sets] for a in sets]


def embedding_matrix(vectors: Sequence[Sequence[float]]) -> list[list[float]]:
    """Pairwise cosine distances of embedding vectors (a zero diagonal)."""
    return [
        [0.0 if i == j else cosine_distance(u, v) for j, v in enumerate(vectors)]
        for i, u in enumerate(vectors)
    ]


def nearest_distances(matrix: Sequence[Sequence[float]]) -> list[float]:
    """Each row's distance to its nearest other row; 1.0 for a lone row (nothing to be close to)."""
    size = len(matrix)
    if size < 2:
        return [1.0] * size
    return [min(row[j] for j in range(size) if j != i) for i, row in enumerate(matrix)]


def summarise(matrix: Sequence[Sequence[float]], *, method: str) -> dict[str, Any]:
    """Mean and minimum pairwise distance of a distance matrix, naming the method.

    With fewer than two texts there is no pair: mean and min are None and `pairs` is 0.
    """
    size = len(matrix)
    pairs = [matrix[i][j] for i in range(size) for j in range(i + 1, size)]
    if not pairs:
        return {"method": method, "pairs": 0, "mean": None, "min": None}
    return {
        "method": method,
        "pairs": len(pairs),
        "mean": round(sum(pairs) / len(pairs), 4),
        "min": round(min(pairs), 4),
    }
