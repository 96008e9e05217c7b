"""The synthetic memory corpus of `bench/recall.py` and its labelled queries (fixed seed).

Documents are operations notes: each is about one of the TOPICS below and one entity (a generated
host or service name), written from sentence templates with the topic's own words. Documents of
one topic about one entity form a cluster of about five. Owners: half the documents are alice's,
half bob's, a fifth of bob's shared; every query is asked as alice, so only her documents and
bob's shared ones count as relevant.

Three kinds of labelled queries, per topic:

- ``keyword``: two of the topic's words and an entity, as a user who remembers the note would type
  it. Relevant: the (visible) documents of that cluster.
- ``paraphrase``: the topic described in other words, none of which occurs anywhere in the corpus
  (checked when the corpus is built). Relevant: the topic's visible documents; keyword search
  cannot find them by construction.
- ``paraphrase_entity``: such a paraphrase plus an entity. Relevant: the cluster; the entity also
  occurs in clusters of other topics, so keyword search finds the entity but not the topic.
"""

from __future__ import annotations

import itertools
import random
import re
from collections.abc import Iterator
from dataclasses import dataclass, field

# (name, words documents use, paraphrases whose words no document uses)
TOPICS: tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...] = (
    (
        "tls",
        ("certificate", "expiry", "renewal", "issuer", "handshake", "cipher", "revocation", "x509"),
        ("ssl cert lapsing soon", "https trust paperwork running out", "encryption keys outdated"),
    ),
    (
        "backup",
        ("backup", "snapshot", "restore", "dump", "archive", "retention", "replica"),
        (
            "copies of our data for catastrophe recovery",
            "saving tables every night",
            "bring back vanished entries",
        ),
    ),
    (
        "bruteforce",
        ("ssh", "login", "password", "bruteforce", "attempts", "blocked", "bastion", "failed"),
        ("someone guessing passphrases repeatedly", "intruder hammering the sign-in", "attacker trying keys"),
    ),
    (
        "disk",
        ("disk", "volume", "full", "capacity", "partition", "inode", "storage", "usage"),
        ("running out of room on the drive", "no free space left", "hard drive filling up"),
    ),
    (
        "memory",
        ("memory", "leak", "heap", "allocation", "garbage", "oom", "rss", "growth"),
        (
            "ram keeps increasing until the program dies",
            "process eating more and more ram",
            "killed for lack of ram",
        ),
    ),
    (
        "latency",
        ("latency", "slow", "response", "milliseconds", "p99", "timeout", "request"),
        ("pages take forever to appear", "sluggish website performance", "delayed answers from the api"),
    ),
    (
        "dns",
        ("dns", "resolver", "record", "zone", "nameserver", "ttl", "lookup", "propagation"),
        (
            "web addresses do not map to machines",
            "hostname not turning into an ip address",
            "name server woes",
        ),
    ),
    (
        "dataquality",
        ("csv", "missing", "values", "duplicated", "rows", "column", "null", "export"),
        ("spreadsheet has gaps and repeated entries", "incomplete table data", "bad data in the sheet"),
    ),
    (
        "phishing",
        ("phishing", "email", "spoofed", "sender", "link", "mailbox", "spf", "dmarc"),
        ("fake note tricking staff", "fraudulent mail asking for sign-in details", "scam letters"),
    ),
    (
        "pods",
        ("pod", "crashloop", "container", "restart", "kubernetes", "deployment", "node"),
        ("cluster workloads keep rebooting", "dockerized app rebooting endlessly", "k8s flakiness"),
    ),
    (
        "vulnerability",
        ("dependency", "vulnerability", "cve", "package", "upgrade", "library", "advisory"),
        ("third-party code with a known weakness", "outdated module that can be exploited"),
    ),
    (
        "cpu",
        ("cpu", "load", "saturation", "cores", "throttling", "utilization"),
        ("processor maxed out", "machine busy computing all the time", "compute exhausted"),
    ),
    (
        "firewall",
        ("firewall", "rule", "port", "iptables", "allow", "deny", "ingress"),
        ("network filter stopping traffic", "packet filter setup", "closed openings to the net"),
    ),
    (
        "ratelimit",
        ("rate", "limit", "throttle", "quota", "429", "requests", "burst"),
        ("too many calls rejected", "clients exceeding permitted traffic", "api refusing busy callers"),
    ),
    (
        "cache",
        ("cache", "invalidation", "stale", "redis", "eviction", "hit", "miss"),
        ("outdated pages shown to users", "old data served after an update", "memoized answers wrong"),
    ),
    (
        "payments",
        ("payment", "transaction", "declined", "card", "checkout", "gateway", "refund"),
        ("customers unable to pay", "purchases not going through", "money not collected"),
    ),
    (
        "testing",
        ("test", "coverage", "untested", "pytest", "assertion", "suite", "fixture"),
        ("code lacks verification", "functions nobody verifies automatically", "qa gaps"),
    ),
    (
        "docs",
        ("documentation", "readme", "docstring", "install", "usage", "tutorial"),
        ("newcomers cannot figure out how to set up", "absent instructions for developers"),
    ),
    (
        "cookies",
        ("cookie", "samesite", "httponly", "secure", "session", "flag"),
        ("browser crumbs without protective markings", "web crumbs unprotected"),
    ),
    (
        "queue",
        ("queue", "backlog", "consumer", "lag", "messages", "kafka", "partition"),
        ("jobs piling up unprocessed", "jobs waiting for labourers", "tasks stuck waiting"),
    ),
    (
        "licences",
        ("license", "gpl", "copyleft", "attribution", "spdx", "compliance"),
        (
            "legal terms of open source code",
            "obligations when passing code along",
            "lawyers worried over reuse",
        ),
    ),
    (
        "secrets",
        ("secret", "token", "hardcoded", "apikey", "credential", "repository", "leaked"),
        ("passphrases committed to git", "keys exposed in source control", "passphrases visible on github"),
    ),
    (
        "headers",
        ("header", "csp", "hsts", "content-security-policy", "x-frame-options", "policy"),
        ("browser protections absent from answers", "clickjacking defence absent"),
    ),
    (
        "replication",
        ("replication", "primary", "standby", "failover", "lagging", "wal", "promotion"),
        ("the copy of the database is behind", "switching to the spare database server"),
    ),
)

TEMPLATES = (
    "The {a} on {e} showed {b} after the {c} change.",
    "{e}: {a} and {b} reported by the {c} check.",
    "We saw {n} {a} events on {e} and the {b} was escalated.",
    "Investigation of {e} found the {a} linked to {b} and {c}.",
    "Action item: review {a} and {b} for {e} before the {c} window.",
    "On {day} the {a} on {e} triggered an alert about {b}.",
    "Owner of {e} confirmed the {a} and scheduled {b} work.",
    "Metrics for {e} put {a} at {n} while {b} stayed normal.",
)
DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday")
SYLLABLES = ("ka", "ro", "mi", "te", "lu", "sa", "vo", "ne", "di", "pa", "zo", "fe", "gu", "ti", "bo")
CLUSTER_SIZE = 5
_WORD = re.compile(r"[^\W_]+")


@dataclass(frozen=True, kw_only=True)
class Doc:
    key: int
    topic: str
    entity: str
    owner: str  # "alice" or "bob"
    shared: bool
    title: str
    text: str
    tags: tuple[str, ...]

    @property
    def visible_to_alice(self) -> bool:
        return self.owner == "alice" or self.shared


@dataclass(frozen=True, kw_only=True)
class Query:
    kind: str  # keyword | paraphrase | paraphrase_entity
    text: str
    relevant: frozenset[int] = field(default_factory=frozenset)


def entity_names(count: int, rng: random.Random) -> list[str]:
    names = ["".join(p) for p in itertools.product(SYLLABLES, repeat=4)]
    rng.shuffle(names)
    return names[:count]


def build_corpus(size: int, *, seed: int = 7) -> list[Doc]:
    rng = random.Random(seed)
    per_topic = size // len(TOPICS)
    entities = entity_names(max(200, size // 25), rng)
    docs: list[Doc] = []
    for name, words, _ in TOPICS:
        clusters = max(1, per_topic // CLUSTER_SIZE)
        chosen = rng.sample(entities, min(clusters, len(entities)))
        for i in range(per_topic):
            entity = chosen[i % len(chosen)]
            docs.append(_document(len(docs), name, words, entity, rng))
    while len(docs) < size:  # the remainder, spread over the topics
        name, words, _ = TOPICS[len(docs) % len(TOPICS)]
        docs.append(_document(len(docs), name, words, rng.choice(entities), rng))
    rng.shuffle(docs)
    return docs


def _document(key: int, topic: str, words: tuple[str, ...], entity: str, rng: random.Random) -> Doc:
    long = rng.random() < 0.05  # some long documents, split into several passages
    sentences = [
        rng.choice(TEMPLATES).format(
            a=rng.choice(words),
            b=rng.choice(words),
            c=rng.choice(words),
            e=entity,
            n=rng.randint(2, 900),
            day=rng.choice(DAYS),
        )
        for _ in range(rng.randint(30, 60) if long else rng.randint(3, 6))
    ]
    owner = "alice" if rng.random() < 0.5 else "bob"
    a, b = rng.sample(words, 2)
    return Doc(
        key=key,
        topic=topic,
        entity=entity,
        owner=owner,
        shared=owner == "bob" and rng.random() < 0.2,
        title=f"{a.capitalize()} {b} on {entity}",
        text=" ".join(sentences),
        tags=(topic, "ops"),
    )


def corpus_vocabulary(docs: list[Doc]) -> set[str]:
    vocabulary: set[str] = set()
    for doc in docs:
        vocabulary.update(_WORD.findall(f"{doc.title} {doc.text}".lower()))
    return vocabulary


def check_paraphrases(docs: list[Doc]) -> None:
    """Fail when a paraphrase shares a word, or a 5-letter stem, with any document."""
    vocabulary = corpus_vocabulary(docs)
    stems = {w[:5] for w in vocabulary if len(w) >= 5}
    for _, _, paraphrases in TOPICS:
        for text in paraphrases:
            for word in _WORD.findall(text.lower()):
                if word in STOP:
                    continue
                if word in vocabulary or (len(word) >= 5 and word[:5] in stems):
                    raise ValueError(f"paraphrase {text!r} shares {word!r} with the corpus")


def build_queries(docs: list[Doc], *, per_topic: int = 4, seed: int = 11) -> list[Query]:
    rng = random.Random(seed)
    visible = [d for d in docs if d.visible_to_alice]
    by_topic: dict[str, list[Doc]] = {}
    by_cluster: dict[tuple[str, str], list[Doc]] = {}
    for doc in visible:
        by_topic.setdefault(doc.topic, []).append(doc)
        by_cluster.setdefault((doc.topic, doc.entity), []).append(doc)
    queries: list[Query] = []
    for name, words, paraphrases in TOPICS:
        clusters = sorted(e for (t, e) in by_cluster if t == name)
        for entity in rng.sample(clusters, min(per_topic, len(clusters))):
            a, b = rng.sample(words, 2)
            relevant = frozenset(d.key for d in by_cluster[(name, entity)])
            queries.append(Query(kind="keyword", text=f"{a} {b} {entity}", relevant=relevant))
        topic_docs = frozenset(d.key for d in by_topic.get(name, ()))
        for text in paraphrases:
            queries.append(Query(kind="paraphrase", text=text, relevant=topic_docs))
        for text in paraphrases[:2]:
            entity = rng.choice(clusters)
            relevant = frozenset(d.key for d in by_cluster[(name, entity)])
            queries.append(Query(kind="paraphrase_entity", text=f"{text} {entity}", relevant=relevant))
    return queries


def recall_at(ranked: list[int], relevant: frozenset[int], k: int = 10) -> float:
    """Relevant items in the top k, over the most there could be (min(k, |relevant|))."""
    if not relevant:
        return 1.0
    return len(set(ranked[:k]) & relevant) / min(k, len(relevant))


def chunks(items: list[Doc], size: int) -> Iterator[list[Doc]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


STOP = frozenset(
    "a an and the of to in on for our no more all is are be by with from at as that this it its "
    "or not can until after out up".split()
)
