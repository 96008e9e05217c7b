"""The Creative engine's rubric: what makes one candidate better than another, and how it is measured.

Every criterion is a number in 0..1; a candidate's score is the weighted sum. Two judges apply it:

======================  ======  =========  ==========================================================
criterion               LLM     heuristic  measured by
======================  ======  =========  ==========================================================
relevance               0.30    0.35       LLM: 0-10 verdict / heuristic: brief-term coverage
specificity             0.20    0.25       LLM: 0-10 verdict / heuristic: concreteness signals
novelty                 0.20    0.20       always measured: distance to the nearest other candidate
feasibility             0.15    --         LLM only: it needs world knowledge no count can supply
clarity                 0.15    0.20       LLM: 0-10 verdict / heuristic: length band and structure
======================  ======  =========  ==========================================================

Heuristic measurements (all computed on the candidate's text, `diversity.py` defines content words):

- relevance: the share of the brief's content terms the candidate uses, counting 3 as full marks
  (``min(1, shared / min(3, brief terms))``); a brief with no content terms gives 1.0. When an
  embedder is available it is the mean of that and the cosine similarity of brief and candidate.
- specificity: the mean of (a) content density, content words / words, full marks at 0.6; (b)
  concreteness markers, numbers, capitalised words inside a sentence, quoted phrases and long
  (9+ letters, not vague) words, full marks at 3; (c) 1 - 3 x the share of vague words ("thing", "various",
  "innovative", "synergy"...), floored at 0.
- novelty: the candidate's distance to its nearest other candidate (embedding cosine distance when
  an embedder is available, else n-gram Jaccard distance; a lone candidate scores 1), capped by its
  n-gram distance to the brief: restating the brief is not an idea.
- clarity: the mean of (a) the length band of the task type (1.0 inside it, ``n / low`` below,
  ``high / n`` above); (b) 1 - the share of repeated word trigrams; (c) sentence shape, the band
  1..35 words per sentence, x 0.7 when a text longer than 12 words does not end a sentence.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from orchestrion.engines.diversity import content_words, words
from orchestrion.exceptions import OutputSchemaError
from orchestrion.providers.base import ChatRequest, ChatResponse, Message

CRITERIA = ("relevance", "specificity", "novelty", "feasibility", "clarity")
"""Every criterion, in display order."""

LLM_WEIGHTS: Mapping[str, float] = {
    "relevance": 0.30,
    "specificity": 0.20,
    "novelty": 0.20,
    "feasibility": 0.15,
    "clarity": 0.15,
}
HEURISTIC_WEIGHTS: Mapping[str, float] = {
    "relevance": 0.35,
    "specificity": 0.25,
    "novelty": 0.20,
    "clarity": 0.20,
}

LLM_CRITERIA = ("relevance", "specificity", "feasibility", "clarity")
"""The criteria the LLM judge gives a verdict on (novelty is always measured)."""

LENGTH_BANDS: Mapping[str, tuple[int, int]] = {
    "creative_generation": (1, 150),
    "brainstorming": (8, 90),
    "innovation": (15, 150),
}
"""Word-count band per task type in which a candidate's length costs it nothing."""

DEFAULT_LENGTH_BAND = (5, 120)
SENTENCE_BAND = (1, 35)
RELEVANCE_FULL_MARKS = 3
DENSITY_FULL_MARKS = 0.6
MARKERS_FULL_MARKS = 3

VAGUE_WORDS = frozenset(
    """
    thing stuff something anything everything various etc innovative innovation solution synergy
    leverage optimize optimise seamless robust disruptive holistic paradigm revolutionary unique
    amazing awesome great good nice best better
    really basically generally somehow maybe perhaps kind sort lot lots many several
    """.split()
)
"""Words that sound like content and say nothing concrete."""

_SENTENCE_END = re.compile(r"[.!?]+(?:[\"')\]]+)?(?:\s+|$)")
_OPENERS = "\"'([{\u201c\u2018"
_CLOSERS = "\"')]}\u201d\u2019"
_QUOTED = re.compile(r"\"[^\"]{2,}\"|“[^”]{2,}”")


@dataclass(frozen=True, kw_only=True)
class Verdict:
    """One candidate's criteria scores (each 0..1) and, from an LLM judge, its stated reason."""

    criteria: Mapping[str, float]
    reason: str = ""

    def score(self, weights: Mapping[str, float]) -> float:
        """The weighted sum over `weights` (criteria missing from `criteria` count 0)."""
        return round(sum(w * self.criteria.get(name, 0.0) for name, w in weights.items()), 4)


def rubric_description(weights: Mapping[str, float], *, judge: str, novelty_method: str) -> dict[str, Any]:
    """The rubric as reported in a result's stats: every criterion with its weight and method."""
    llm = judge.startswith("llm:")
    methods = {
        "relevance": "LLM verdict 0-10" if llm else "brief-term coverage",
        "specificity": "LLM verdict 0-10" if llm else "concreteness signals",
        "novelty": f"distance to the nearest other candidate ({novelty_method}), capped by the "
        "n-gram distance to the brief",
        "feasibility": "LLM verdict 0-10",
        "clarity": "LLM verdict 0-10" if llm else "length band, repetition and sentence shape",
    }
    return {
        "judge": judge,
        "criteria": [{"name": n, "weight": w, "method": methods[n]} for n, w in weights.items()],
    }


# -- heuristic measurements -----------------------------------------------------------------------


def relevance(text: str, brief: str, *, similarity: float | None = None) -> float:
    """Brief-term coverage, averaged with an embedding similarity when one is given."""
    brief_terms = set(content_words(brief))
    if not brief_terms:
        lexical = 1.0
    else:
        shared = len(brief_terms & set(content_words(text)))
        lexical = min(1.0, shared / min(RELEVANCE_FULL_MARKS, len(brief_terms)))
    if similarity is None:
        return round(lexical, 4)
    return round((lexical + min(1.0, max(0.0, similarity))) / 2, 4)


def specificity(text: str) -> float:
    """Content density, concreteness markers and the absence of vague words."""
    every = words(text)
    if not every:
        return 0.0
    content = content_words(text)
    density = min(1.0, len(content) / len(every) / DENSITY_FULL_MARKS)
    numbers = sum(1 for w in every if any(c.isdigit() for c in w))
    markers = (
        numbers
        + capitalised_inside(text)
        + len(_QUOTED.findall(text))
        + sum(1 for w in content if len(w) >= 9 and w not in VAGUE_WORDS)
    )
    concreteness = min(1.0, markers / MARKERS_FULL_MARKS)
    vague_share = sum(1 for w in content if w in VAGUE_WORDS) / len(content) if content else 1.0
    precision = max(0.0, 1.0 - 3 * vague_share)
    return round((density + concreteness + precision) / 3, 4)


def capitalised_inside(text: str) -> int:
    """Capitalised words that do not start a sentence: names, products, places."""
    count = 0
    previous = ""
    for token in text.split():
        word = token.strip(_OPENERS)
        if previous and not previous.endswith((".", "!", "?", ":")) and word[:1].isupper() and len(word) > 1:
            count += 1
        previous = token.rstrip(_CLOSERS)
    return count


def band_score(value: float, low: float, high: float) -> float:
    """1.0 inside ``low..high``; ``value / low`` below it, ``high / value`` above it."""
    if value < low:
        return value / low if low > 0 else 0.0
    if value > high:
        return high / value
    return 1.0


def clarity(text: str, task_type: str) -> float:
    """Length band of the task type, freedom from repetition and sentence shape."""
    every = words(text)
    if not every:
        return 0.0
    low, high = LENGTH_BANDS.get(task_type, DEFAULT_LENGTH_BAND)
    length = band_score(len(every), low, high)
    trigrams = [tuple(every[i : i + 3]) for i in range(len(every) - 2)]
    repetition = 1.0 - (len(trigrams) - len(set(trigrams))) / len(trigrams) if trigrams else 1.0
    sentences = [s for s in _SENTENCE_END.split(text.strip()) if words(s)]
    mean_sentence = len(every) / max(1, len(sentences))
    shape = band_score(mean_sentence, *SENTENCE_BAND)
    ends_cleanly = bool(re.search(r"[.!?][\"')\]]*$", text.strip()))
    if len(every) > 12 and not ends_cleanly:
        shape *= 0.7
    return round((length + repetition + shape) / 3, 4)


def heuristic_verdict(
    text: str, *, brief: str, task_type: str, novelty: float, similarity: float | None = None
) -> Verdict:
    """Every heuristic criterion of one candidate (novelty measured by the caller across the set)."""
    return Verdict(
        criteria={
            "relevance": relevance(text, brief, similarity=similarity),
            "specificity": specificity(text),
            "novelty": round(novelty, 4),
            "clarity": clarity(text, task_type),
        }
    )


# -- the LLM judge's request and reply ------------------------------------------------------------

VERDICT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        **{name: {"type": "integer", "minimum": 0, "maximum": 10} for name in LLM_CRITERIA},
        "reason": {"type": "string", "maxLength": 160},
    },
    "required": [*LLM_CRITERIA, "reason"],
}
"""One candidate's verdict: each LLM criterion 0-10 and a one-line reason."""


def verdict_request(*, system_prompt: str, brief: str, candidate: str, max_tokens: int) -> ChatRequest:
    """Ask for one candidate's verdict, deterministically (temperature 0, fixed seed)."""
    prompt = (
        f"Brief: {brief}\n"
        f"Candidate: {candidate}\n"
        "Score the candidate from 0 (worst) to 10 (best) on: relevance (answers the brief), "
        "specificity (concrete, not generic), feasibility (could really be done or used), clarity "
        "(easy to understand). Reply with JSON with those four integers and a one-line reason."
    )
    return ChatRequest(
        messages=(Message(role="system", content=system_prompt), Message(role="user", content=prompt)),
        json_schema=VERDICT_SCHEMA,
        max_tokens=max_tokens,
        temperature=0.0,
        seed=7,
    )


def parse_verdict(response: ChatResponse, *, novelty: float) -> Verdict:
    """The verdict in an LLM reply, with the measured novelty added.

    Raises:
        OutputSchemaError: When the reply is not JSON or a criterion is missing, not a number, or
            outside 0..10.
    """
    data = response.json()
    criteria: dict[str, float] = {}
    for name in LLM_CRITERIA:
        value = data.get(name)
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 10:
            raise OutputSchemaError(
                f"{response.provider}:{response.model} gave no 0-10 score for {name} (got {value!r})",
                provider=response.provider,
            )
        criteria[name] = round(float(value) / 10, 4)
    criteria["novelty"] = round(novelty, 4)
    return Verdict(criteria=criteria, reason=str(data.get("reason") or "").strip()[:160])


def concordance(first: Sequence[float], second: Sequence[float]) -> float:
    """The share of pairs two score lists order the same way (a tie on either side counts half).

    1.0: the same ranking; 0.0: the reverse. With fewer than two items there is no pair: 1.0.
    """
    pairs = 0
    agreeing = 0.0
    for i in range(len(first)):
        for j in range(i + 1, len(first)):
            pairs += 1
            a, b = first[i] - first[j], second[i] - second[j]
            if a == 0 or b == 0:
                agreeing += 0.5
            elif (a > 0) == (b > 0):
                agreeing += 1
    return round(agreeing / pairs, 4) if pairs else 1.0
