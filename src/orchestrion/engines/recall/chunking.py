"""Splitting long documents into overlapping passages, each indexed and embedded on its own."""

from __future__ import annotations

from dataclasses import dataclass

SINGLE_CHUNK_CHARS = 2000
"""Texts up to this long stay one passage."""

PASSAGE_CHARS = 1500
"""Target length of a passage of a longer text (the embedding model reads about 1,000 characters)."""

OVERLAP_CHARS = 200
"""Characters each passage repeats from the end of the previous one, so no sentence is only cut."""


@dataclass(frozen=True, kw_only=True)
class Passage:
    """A slice of a text: `text == source[start:end]`."""

    start: int
    end: int
    text: str


def split_passages(
    text: str,
    *,
    single: int = SINGLE_CHUNK_CHARS,
    size: int = PASSAGE_CHARS,
    overlap: int = OVERLAP_CHARS,
) -> list[Passage]:
    """Split `text` into passages of about `size` characters overlapping by about `overlap`.

    A text of at most `single` characters is one passage. Longer ones are cut at the last paragraph
    break, else sentence end, else space in the final third of each window, and each passage after
    the first starts at a word boundary about `overlap` characters before the previous one ended.
    Passages are exact slices of the text, so the text can be rebuilt from them and their starts.
    """
    if len(text) <= single:
        return [Passage(start=0, end=len(text), text=text)]
    if not 0 <= overlap < size // 2:
        raise ValueError("overlap must be below half the passage size")
    passages: list[Passage] = []
    start = 0
    while start < len(text):
        end = min(len(text), start + size)
        if end < len(text):
            end = _break_before(text, start + (2 * size) // 3, end)
        passages.append(Passage(start=start, end=end, text=text[start:end]))
        if end >= len(text):
            break
        start = _word_start(text, max(end - overlap, start + 1), end)
    return passages


def _break_before(text: str, low: int, high: int) -> int:
    """The best cut in `text[low:high]`: after a blank line, a sentence end, or a space; else `high`."""
    for marker in ("\n\n", ". ", "! ", "? ", "\n", " "):
        position = text.rfind(marker, low, high)
        if position != -1:
            return position + len(marker)
    return high


def _word_start(text: str, position: int, limit: int) -> int:
    """The first word start at or after `position` (before `limit`), so passages do not open mid-word."""
    if position == 0 or text[position - 1].isspace():
        return position
    space = text.find(" ", position, limit)
    return space + 1 if space != -1 and space + 1 < limit else position
