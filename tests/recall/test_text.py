"""Chunking, query terms, snippets and reciprocal rank fusion (pure functions)."""

from __future__ import annotations

import itertools
import random

from hypothesis import given
from hypothesis import strategies as st

from orchestrion.engines.recall.chunking import split_passages
from orchestrion.engines.recall.fusion import reciprocal_rank_fusion
from orchestrion.engines.recall.query import query_terms, snippet


def test_short_texts_are_one_passage_and_long_ones_overlap() -> None:
    assert [(p.start, p.end) for p in split_passages("short text")] == [(0, 10)]
    words = random.Random(7).choices(["alpha", "beta", "gamma", "delta."], k=2000)
    text = " ".join(words)

    passages = split_passages(text, single=2000, size=1500, overlap=200)

    assert len(passages) > 5
    for before, after in itertools.pairwise(passages):
        assert 0 < before.end - after.start <= 260  # they overlap by about 200 characters
        assert after.start > before.start
        assert text[after.start - 1] == " "  # a passage opens on a word
    assert all(p.text == text[p.start : p.end] and len(p.text) <= 1500 for p in passages)
    assert passages[-1].end == len(text)


@given(st.text(min_size=0, max_size=7000))
def test_passages_rebuild_the_text_exactly(text: str) -> None:
    rebuilt = ""
    for passage in split_passages(text, single=500, size=300, overlap=60):
        assert passage.text == text[passage.start : passage.end] and passage.start <= len(rebuilt)
        rebuilt += passage.text[len(rebuilt) - passage.start :]
    assert rebuilt == text


def test_query_terms_drop_stopwords_and_punctuation() -> None:
    assert query_terms("When does the TLS certificate of mail_server expire?") == [
        "tls",
        "certificate",
        "mail",
        "server",
        "expire",
    ]
    assert query_terms("what is it") == ["what", "is", "it"]  # nothing else left: keep them
    assert query_terms("?!  ") == []
    assert query_terms("Crème brûlée 2026") == ["crème", "brûlée", "2026"]


def test_snippets_centre_on_the_densest_run_of_terms() -> None:
    body = "filler words " * 60 + "the replica was lagging behind the primary " + "more filler " * 60
    text = snippet(body, ["replica", "lagging"], width=120)
    assert "replica was lagging" in text and text.startswith("…") and text.endswith("…")
    assert len(text) <= 122
    assert snippet(body, ["absent"], width=50).startswith("filler words")
    assert snippet("short", ["x"]) == "short"
    assert "certificates" in snippet("x " * 200 + "certificates expire " + "y " * 200, ["certificate"])


def test_reciprocal_rank_fusion_sums_reciprocal_ranks() -> None:
    fused = reciprocal_rank_fusion({"keyword": ["a", "b", "c"], "vector": ["c", "a", "d"]}, k=60)

    scores = {f.key: f.score for f in fused}
    assert [f.key for f in fused] == ["a", "c", "b", "d"]
    assert scores["a"] == 1 / 61 + 1 / 62 and scores["c"] == 1 / 63 + 1 / 61
    assert fused[0].ranks == {"keyword": 1, "vector": 2} and fused[3].ranks == {"vector": 3}
    # Equal scores: the key first ranked best goes first, then the earliest ranking.
    tie = reciprocal_rank_fusion({"keyword": ["x", "y"], "vector": ["y", "x"]})
    assert [f.key for f in tie] == ["x", "y"] and tie[0].score == tie[1].score
    assert reciprocal_rank_fusion({"keyword": ["a", "a"]})[0].ranks == {"keyword": 1}
    assert reciprocal_rank_fusion({}) == []
