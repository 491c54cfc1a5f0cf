"""How well a chat message matches each pipeline of the catalogue (the deterministic router's
ranking): BM25 over each pipeline's name (weight 3), keywords (2), description (1) and inputs
(0.5), with light stemming and synonym concepts; confidence is the best score's strength times
its margin over the runner-up. No I/O, no reflex."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from elexirion_app.agent.catalogue import PipelineEntry
from elexirion_app.agent.message_inputs import _strip_paths
from elexirion_app.agent.words import STOPWORDS

# Surface word (after stemming) -> concept tag shared by query and pipeline texts.
CONCEPTS: dict[str, str] = {}
for _concept, _words in {
    "analysis": """analy analyz analys audit inspect examin review quality lint linter smell
        smells smelly bug bugs buggy assess evaluat check critiqu scan""",
    "refactor": """refactor restructur simplif simplify clean cleanup tidy rewrit renam
        reorganiz reorganis modulariz dedup deduplicat""",
    "security": "secur vulnerab vuln cve injection",
    "document": "doc docs document documentation readme docstring",
    "test": "test tests testing unittest pytest coverage",
    "summary": "summar summari summary summariz recap digest tldr",
    "pipeline": "pipeline pipelines workflow workflows",
}.items():
    for _w in _words.split():
        CONCEPTS[_w] = _concept

_WORD_RE = re.compile(r"[a-z][a-z0-9]*")
_SUFFIXES = ("ations", "ation", "ings", "ing", "ers", "er", "ies", "ied", "es", "ed", "s", "ly")


def stem(word: str) -> str:
    """A crude, deterministic stem (enough to match analyse/analyze/analysis, refactored ...)."""
    if word.startswith("analy"):
        return "analy"
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 4:
            word = word[: -len(suffix)]
            break
    if word.endswith(("is", "iz")) and len(word) > 5:
        word = word[:-2] + "iz"
    return word


def tokens(text: str) -> list[str]:
    """Stemmed content words of ``text`` plus ``@concept`` tags for synonyms."""
    out: list[str] = []
    for word in _WORD_RE.findall(text.lower().replace("_", " ").replace("-", " ")):
        if word in STOPWORDS:
            continue
        base = stem(word)
        out.append(base)
        concept = CONCEPTS.get(word) or CONCEPTS.get(base)
        if concept is None:
            concept = next(
                (c for w, c in CONCEPTS.items() if len(w) >= 5 and base.startswith(w)), None
            )
        if concept is not None:
            out.append("@" + concept)
    return out


# Virtual documents matching nothing: keeps idf (and so confidence) comparable between a
# catalogue of two pipelines and one of fifty.
BACKGROUND_DOCS = 5
SCORE_SCALE = 3.0  # a best score of SCORE_SCALE gives a strength of 1 - 1/e
WEAK_CAP = 0.4  # confidence cap when nothing matched the name or keywords of the best pipeline


@dataclass(frozen=True)
class _Doc:
    entry: PipelineEntry
    tf: Mapping[str, float]
    length: float
    strong: frozenset[str]  # terms of the name and keywords


def _doc(entry: PipelineEntry) -> _Doc:
    tf: dict[str, float] = {}
    fields: list[tuple[str, float]] = [
        (entry.name, 3.0),
        (" ".join(entry.keywords), 2.0),
        (entry.description, 1.0),
        (" ".join(f"{s.name} {s.description}" for s in entry.inputs), 0.5),
    ]
    for text, weight in fields:
        for tok in tokens(text):
            tf[tok] = tf.get(tok, 0.0) + weight
    strong = frozenset(tokens(f"{entry.name} {' '.join(entry.keywords)}"))
    return _Doc(entry, tf, sum(tf.values()) or 1.0, strong)


@dataclass(frozen=True)
class Scored:
    entry: PipelineEntry
    score: float
    matched: tuple[str, ...]
    strong: bool = False  # a matched term is in the pipeline's name or keywords


def score_pipelines(message: str, catalogue: Sequence[PipelineEntry]) -> list[Scored]:
    """BM25 scores of every pipeline for ``message``, best first (ties by catalogue order)."""
    if not catalogue:
        return []
    docs = [_doc(e) for e in catalogue]
    query = list(dict.fromkeys(tokens(_strip_paths(message))))
    n = len(docs)
    avg = sum(d.length for d in docs) / n
    k1, b = 1.2, 0.75
    scored: list[Scored] = []
    for doc in docs:
        total = 0.0
        matched: list[str] = []
        for term in query:
            tf = doc.tf.get(term, 0.0)
            if not tf:
                continue
            df = sum(1 for d in docs if term in d.tf)
            idf = math.log(1 + (n + BACKGROUND_DOCS - df + 0.5) / (df + 0.5))
            total += idf * tf * (k1 + 1) / (tf + k1 * (1 - b + b * doc.length / avg))
            matched.append(term)
        strong = any(t in doc.strong for t in matched)
        scored.append(Scored(doc.entry, total, tuple(matched), strong))
    order = {id(e): i for i, e in enumerate(catalogue)}
    scored.sort(key=lambda s: (-s.score, order[id(s.entry)]))
    return scored


def confidence_of(scored: Sequence[Scored]) -> float:
    """Strength of the best score times its margin over the runner-up, in [0, 1]; at most
    ``WEAK_CAP`` when only descriptions matched (no name or keyword)."""
    if not scored or scored[0].score <= 0:
        return 0.0
    top = scored[0].score
    second = scored[1].score if len(scored) > 1 else 0.0
    strength = 1 - math.exp(-top / SCORE_SCALE)
    margin = (top - second) / top
    confidence = strength * (0.4 + 0.6 * margin)
    if not scored[0].strong:
        confidence = min(confidence, WEAK_CAP)
    return round(confidence, 3)
