"""Search queries as terms, and snippets that show where a passage matches them."""

from __future__ import annotations

import re
from collections.abc import Sequence

MAX_TERMS = 24
"""Terms of a query beyond this many are ignored."""

SNIPPET_CHARS = 240

_WORD = re.compile(r"[^\W_]+")

# Words that carry no topic: dropped from keyword queries unless the query has nothing else.
STOPWORDS = frozenset(
    """a about above after again against all am an and any are as at be because been before being below
    between both but by can could did do does doing down during each few for from further had has have
    having he her here hers herself him himself his how i if in into is it its itself just me more most
    my myself no nor not now of off on once only or other our ours ourselves out over own same she
    should so some such than that the their theirs them themselves then there these they this those
    through to too under until up very was we were what when where which while who whom why will with
    would you your yours yourself yourselves""".split()
)


def query_terms(text: str, *, limit: int = MAX_TERMS) -> list[str]:
    """The distinct lower-case words of `text` that carry meaning, in order (at most `limit`).

    Words are runs of letters and digits; stopwords are dropped unless nothing else is left.
    """
    words = list(dict.fromkeys(_WORD.findall(text.lower())))
    meaningful = [w for w in words if w not in STOPWORDS]
    return (meaningful or words)[:limit]


def _stem_prefix(term: str) -> str:
    """The prefix a word must start with to count as this term (stemming-tolerant)."""
    return term if len(term) <= 4 else term[: max(4, len(term) - 3)]


def snippet(body: str, terms: Sequence[str], *, width: int = SNIPPET_CHARS) -> str:
    """About `width` characters of `body` around its densest run of query terms, on word boundaries.

    Without a match (a hit found by meaning only) it is the passage's opening.
    """
    text = " ".join(body.split())
    if len(text) <= width:
        return text
    prefixes = tuple(_stem_prefix(t) for t in terms)
    positions = [
        m.start() for m in _WORD.finditer(text) if prefixes and m.group().lower().startswith(prefixes)
    ]
    start = 0
    if positions:
        best = 0
        right = 0
        for left, position in enumerate(positions):
            while right < len(positions) and positions[right] < position + width * 2 // 3:
                right += 1
            if right - left > best:
                best, start = right - left, position
        start = max(0, start - width // 6)
    start = min(start, len(text) - width)
    if start > 0:
        space = text.find(" ", start)
        start = space + 1 if 0 <= space < start + 20 else start
    end = min(len(text), start + width)
    if end < len(text):
        space = text.rfind(" ", start, end)
        end = space if space > start + width // 2 else end
    return ("…" if start > 0 else "") + text[start:end].strip() + ("…" if end < len(text) else "")
