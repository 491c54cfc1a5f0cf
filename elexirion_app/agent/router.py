"""The router: a chat message becomes a direct answer, a pipeline run, a question back, or a
request to generate a new pipeline (genesis).

CONTRACT:
- ``await route(message, catalogue, *, provider=None, history=(), previous=None)`` ->
  ``RouteDecision``. With a live provider (``provider.offline`` false) one LLM call with
  structured output (``LLMRequest.response_schema = ROUTE_SCHEMA``) over the catalogue decides;
  its JSON is validated and anything unusable (bad JSON, unknown pipeline, a provider error
  such as a 429 or a timeout) falls back to the deterministic router, with the reason saying so.
  Without a live provider the deterministic router decides (``route_offline``, sync).
- ``detect_override(message, catalogue, previous_decision)`` recognises "no, use the
  refactoring pipeline", "use code_analysis instead", "run refactoring" and returns the forced
  decision (``source="override"``), else ``None``. ``route`` checks it first.
- ``kind``: ``answer`` (reply in chat, run nothing), ``run`` (run ``pipeline`` with ``inputs``),
  ``clarify`` (show ``question``; never a guess: below ``CONFIDENCE_THRESHOLD``, when two
  pipelines tie, or when a required input is missing), ``genesis`` (call
  ``agent.genesis.generate_pipeline(inputs["request"], provider)``).

Deterministic scoring is BM25 over each pipeline's name (weight 3), keywords (2), description
(1) and inputs (0.5), with light stemming and synonym concepts ("quality", "lint", "smell",
"review" all count as *analysis*; "clean up", "simplify", "tidy" as *refactor*). Confidence is
the strength of the best score times its margin over the runner-up. Inputs come from the
message (paths such as ``src/app.py``, ``in folder lib/``, globs, "focus on ...") mapped onto
the pipeline's path-like inputs, then the declared defaults.
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from elexirion_app.agent.catalogue import PipelineEntry
from elexirion_app.core.errors import ElexirionError, ProviderError, ProviderTimeout, RateLimited
from elexirion_app.core.types import ChatMessage, LLMRequest
from elexirion_app.providers.base import Provider, complete
from elexirion_app.providers.registry import bound_provider

log = logging.getLogger(__name__)

Kind = Literal["answer", "run", "clarify", "genesis"]
KINDS: tuple[str, ...] = ("answer", "run", "clarify", "genesis")
CONFIDENCE_THRESHOLD = 0.5
TIE_RATIO = 0.8  # a runner-up scoring at least this share of the best one is a tie
MAX_MESSAGE_CHARS = 4000  # what the router reads of a message
HISTORY_TOKENS = 1500  # conversation context sent to the routing model

# --- the decision ---------------------------------------------------------------------------


@dataclass(frozen=True)
class RouteDecision:
    """What to do with a chat message.

    ``candidates`` lists the pipelines considered (best first; for ``clarify`` the ones the
    question offers); ``missing_inputs`` the required inputs nobody gave; ``paths`` the paths
    found in the message as ``kind:path`` (kept so an override can re-map them); ``source`` is
    ``rules``, ``llm`` or ``override``; ``message`` is the routed message (an override of a
    ``genesis`` decision reuses it).
    """

    kind: Kind
    pipeline: str | None = None
    inputs: dict[str, Any] = field(default_factory=dict)
    confidence: float = 0.0
    reason: str = ""
    question: str | None = None
    candidates: tuple[str, ...] = ()
    missing_inputs: tuple[str, ...] = ()
    paths: tuple[str, ...] = ()
    source: str = "rules"
    message: str = ""

    def display(self) -> str:
        """One line of markdown for the chat: what the agent is about to do or asks."""
        if self.kind == "run":
            given = ", ".join(f"{k}=`{v}`" for k, v in self.inputs.items() if _short_value(v))
            return f"Running **{self.pipeline}**" + (f" with {given}" if given else "") + "."
        if self.kind == "genesis":
            return "Writing a new pipeline for: " + str(self.inputs.get("request", ""))[:200]
        if self.kind == "clarify":
            return self.question or "Could you say a bit more about what you want?"
        return ""

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form (for web state; ``from_dict`` restores it)."""
        return {
            "kind": self.kind,
            "pipeline": self.pipeline,
            "inputs": dict(self.inputs),
            "confidence": self.confidence,
            "reason": self.reason,
            "question": self.question,
            "candidates": list(self.candidates),
            "missing_inputs": list(self.missing_inputs),
            "paths": list(self.paths),
            "source": self.source,
            "message": self.message,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RouteDecision:
        kind = str(data.get("kind", "answer"))
        inputs = data.get("inputs")
        return cls(
            kind=kind if kind in KINDS else "answer",  # type: ignore[arg-type]
            pipeline=str(data["pipeline"]) if data.get("pipeline") else None,
            inputs=dict(inputs) if isinstance(inputs, Mapping) else {},
            confidence=float(data.get("confidence") or 0.0),
            reason=str(data.get("reason") or ""),
            question=str(data["question"]) if data.get("question") else None,
            candidates=tuple(str(c) for c in data.get("candidates") or ()),
            missing_inputs=tuple(str(c) for c in data.get("missing_inputs") or ()),
            paths=tuple(str(c) for c in data.get("paths") or ()),
            source=str(data.get("source") or "rules"),
            message=str(data.get("message") or ""),
        )


def _short_value(value: Any) -> bool:
    return isinstance(value, str | int | float | bool) and len(str(value)) <= 80


# --- text analysis --------------------------------------------------------------------------


def _wordset(text: str) -> frozenset[str]:
    return frozenset(text.split())


STOPWORDS = _wordset(
    """a an the and or but if then of to in on at by for with from into onto about as is are
    was were be been being am i me my mine we our us you your yours it its this that these those
    there here please pls could would can will shall should may might must do does did done
    doing just some something anything thing things stuff some any all so very really also too
    up out over under again hi hello hey thanks thank ok okay yes no not how what why who when
    where which whose while let lets want wanna need needs like get got have has had give make
    sure them they their he she his her one ones now today new use using run running"""
)

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


# --- inputs from the message ------------------------------------------------------------------

_EXTENSIONS = _wordset(
    """py pyi js mjs cjs ts tsx jsx ex exs erl heex rb go rs java kt kts c h cc cpp hpp cs php
    swift m mm scala clj hs ml lua r dart vue svelte sh bash zsh ps1 sql md rst txt json yaml
    yml toml ini cfg conf env html htm css scss less xml csv tsv ipynb lock gradle tf"""
)
_TRIM = "\"'`()[]{}<>,;:!?"
_DIR_PHRASE = re.compile(
    r"\b(?:(?:in|under|inside|within|of|on)\s+)?(?:the\s+|my\s+)?"
    r"(?:folder|directory|dir|package)\s+[\"'`]?([\w./-]+)"
    r"|\b(?:the\s+|my\s+)?[\"'`]?([\w./-]+?)[\"'`]?\s+(?:folder|directory|dir)\b",
    re.IGNORECASE,
)
_NOT_DIRS = frozenset({"structure", "layout", "names", "tree", "content", "contents", "size"})
_FOCUS = re.compile(
    r"\b(?:focus(?:ing)?\s+on|concentrat\w*\s+on|looking\s+for|goal\s*:)\s+(.+?)(?:[.!?]\s|[.!?]?$)",
    re.IGNORECASE,
)
_FOCUS_INPUTS = ("focus", "goal", "topic", "aspect", "aspects")


def _clean_path(raw: str) -> str:
    text = raw.strip(_TRIM)
    while text.endswith(".") and text not in (".", ".."):
        text = text[:-1]
    return text


def _is_file_like(text: str) -> bool:
    name = text.rsplit("/", 1)[-1]
    if "." not in name.strip("."):
        return False
    ext = name.rsplit(".", 1)[-1].lower()
    return ext in _EXTENSIONS or ("/" in text and ext.isalnum() and len(ext) <= 6)


def extract_paths(message: str) -> list[tuple[str, str]]:
    """``(kind, path)`` pairs found in ``message``: kind is ``file``, ``dir`` or ``glob``."""
    found: list[tuple[str, str]] = []
    for match in _DIR_PHRASE.finditer(message):
        raw = match.group(1) or match.group(2) or ""
        path = _clean_path(raw)
        word = path.lower()
        if path and word not in STOPWORDS and word not in _NOT_DIRS and not _is_file_like(path):
            found.append(("dir", path.rstrip("/") or "/"))
    for raw in message.split():
        if "://" in raw or raw.startswith(("http:", "https:", "mailto:", "@")):
            continue
        path = _clean_path(raw)
        if not path or path.startswith("--"):
            continue
        if "*" in path:
            found.append(("glob", path))
        elif _is_file_like(path):
            found.append(("file", path))
        elif "/" in path and re.fullmatch(r"[\w./~-]+", path):
            found.append(("dir", path.rstrip("/") or "/"))
        elif path in (".", "./"):
            found.append(("dir", "."))
    unique: dict[tuple[str, str], None] = {}
    for item in found:
        unique.setdefault(item, None)
    return list(unique)


def _strip_paths(message: str) -> str:
    return " ".join(w for w in message.split() if not ("/" in w or _is_file_like(_clean_path(w))))


def _map_paths(entry: PipelineEntry, paths: Sequence[tuple[str, str]]) -> dict[str, str]:
    """Put found paths into the pipeline's path-like inputs (file, folder, glob)."""
    values: dict[str, str] = {}
    file_in, dir_in, glob_in = (entry.path_input(k) for k in ("file", "dir", "glob"))
    for kind, path in paths:
        if kind == "file":
            if file_in and file_in.name not in values:
                values[file_in.name] = path
            elif dir_in and glob_in and dir_in.name not in values:
                folder, _, name = path.rpartition("/")
                values[dir_in.name] = folder or "."
                values.setdefault(glob_in.name, name)
            elif dir_in and dir_in.name not in values:
                values[dir_in.name] = path
        elif kind == "dir":  # never a file input: "refactor src/" asks which file
            if dir_in and dir_in.name not in values:
                values[dir_in.name] = path
        elif kind == "glob" and glob_in and glob_in.name not in values:
            values[glob_in.name] = path
    return values


def _paths_of(decision: RouteDecision | None) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for item in decision.paths if decision is not None else ():
        kind, _, path = item.partition(":")
        if kind in ("file", "dir", "glob") and path:
            out.append((kind, path))
    return out


def extract_inputs(
    message: str,
    entry: PipelineEntry,
    *,
    carried: Sequence[tuple[str, str]] = (),
) -> tuple[dict[str, Any], tuple[str, ...]]:
    """Inputs for ``entry`` from the message (then ``carried`` paths, then the declared
    defaults) and the required inputs still missing."""
    values: dict[str, Any] = dict(entry.defaults())
    given = _map_paths(entry, carried)
    given.update(_map_paths(entry, extract_paths(message)))
    focus = _FOCUS.search(message)
    if focus:
        target = next((s for s in entry.inputs if s.name.lower() in _FOCUS_INPUTS), None)
        if target is not None:
            given[target.name] = focus.group(1).strip()
    values.update(given)
    missing = tuple(n for n in entry.required_inputs if values.get(n) in (None, ""))
    return values, missing


# --- rules ------------------------------------------------------------------------------------

GENESIS_PIPELINE = "genesis"  # reached by the genesis rule or "run genesis", never by scoring
_GENESIS = re.compile(
    r"\b(?:create|generate|make|build|write|design|draft|compose|set\s+up|give)\s+"
    r"(?:me\s+)?(?:a|an|new|another|one|some)\s+"
    r"(?:(?!(?:on|about|of|in|for|with|from|to)\b)[\w-]+\s+){0,3}(?:pipelines?|workflows?)\b"
    r"|\bnew\s+(?:pipeline|workflow)\b",
    re.IGNORECASE,
)
_QUESTION = re.compile(
    r"^\s*(?:what|why|how|who|when|where|which|is|are|was|were|does|do\s+you|did|explain|"
    r"tell\s+me\s+about|describe)\b",
    re.IGNORECASE,
)
_REQUEST = re.compile(
    r"^\s*(?:(?:can|could|would|will)\s+you|please|pls|kindly|i\s+(?:want|need|would\s+like))\b"
    r"|\bplease\b",
    re.IGNORECASE,
)
_TASK_WORDS = re.compile(
    r"\b(?:code|codebase|project|repo|repository|file|files|folder|module|function|class|"
    r"workspace|script)\b",
    re.IGNORECASE,
)
_ORDINALS = {
    "first": 0,
    "1st": 0,
    "second": 1,
    "2nd": 1,
    "two": 1,
    "third": 2,
    "3rd": 2,
    "three": 2,
    "last": -1,
}


_GREETING = re.compile(
    r"^\s*(?:(?:hi|hello|hey|hiya|thanks|thank\s+you|good\s+(?:morning|afternoon|evening))"
    r"(?:\s+there)?[\s,.!:;-]*)+",
    re.IGNORECASE,
)
_YES = re.compile(
    r"^\s*(?:yes|yeah|yep|yup|sure|ok|okay|please\s+do|do\s+it|go\s+ahead|run\s+it|"
    r"start\s+it|go\s+for\s+it|sounds\s+good)\b[\s\w,.!]{0,20}$",
    re.IGNORECASE,
)


def _is_question(message: str) -> bool:
    """A question (not a polite request such as "can you ..."), after any greeting."""
    text = _GREETING.sub("", message)
    return bool(_QUESTION.search(text)) and not _REQUEST.search(text)


def _names_a_pipeline(message: str, catalogue: Sequence[PipelineEntry]) -> bool:
    return any(
        re.search(rf"\b{_name_pattern(e.name)}\b", message, re.IGNORECASE) for e in catalogue
    )


def _genesis(message: str, reason: str, source: str = "rules") -> RouteDecision:
    return RouteDecision(
        kind="genesis",
        inputs={"request": message.strip()},
        confidence=0.9,
        reason=reason,
        source=source,
    )


def _describe(entry: PipelineEntry) -> str:
    text = entry.description
    first = re.split(r"(?<=[.!?:])\s", text, maxsplit=1)[0].rstrip(".:") if text else ""
    if len(first) > 100:
        first = first[:100].rsplit(" ", 1)[0].rstrip(",;") + "…"
    return f"{entry.name} ({first})" if first else entry.name


def clarify_question(candidates: Sequence[PipelineEntry]) -> str:
    """The clarifying question offering ``candidates`` (one: "run X?"; several: a list)."""
    if not candidates:
        return "I am not sure what to do. Could you say which task you want, or ask me anything?"
    if len(candidates) == 1:
        return (
            f"Do you want me to run {_describe(candidates[0])}? "
            f"Say 'run {candidates[0].name}' to start it."
        )
    listed = "; ".join(f"{i + 1}. {_describe(e)}" for i, e in enumerate(candidates))
    return f"Which pipeline do you mean? {listed}. Say 'run <name>' (or 'the first one')."


def _missing_question(entry: PipelineEntry, missing: Sequence[str]) -> str:
    parts = []
    for name in missing:
        spec = entry.input(name)
        desc = f" ({spec.description})" if spec is not None and spec.description else ""
        parts.append(f"{name}{desc}")
    return f"To run {entry.name} I need: {'; '.join(parts)}. What should I use?"


def _run_or_ask(
    entry: PipelineEntry,
    message: str,
    *,
    confidence: float,
    reason: str,
    source: str,
    carried: Sequence[tuple[str, str]] = (),
    candidates: Sequence[str] = (),
    preset: Mapping[str, Any] | None = None,
) -> RouteDecision:
    """A run of ``entry``, or a clarify naming it when a required input is missing."""
    inputs, _ = extract_inputs(message, entry, carried=carried)
    if preset:
        inputs.update(preset)
    missing = tuple(n for n in entry.required_inputs if inputs.get(n) in (None, ""))
    found = tuple(f"{k}:{p}" for k, p in [*carried, *extract_paths(message)])
    found = tuple(dict.fromkeys(found))
    if missing:
        return RouteDecision(
            kind="clarify",
            pipeline=entry.name,
            inputs=inputs,
            confidence=confidence,
            reason=f"{reason}; missing required input(s): {', '.join(missing)}",
            question=_missing_question(entry, missing),
            candidates=tuple(candidates) or (entry.name,),
            missing_inputs=missing,
            paths=found,
            source=source,
        )
    return RouteDecision(
        kind="run",
        pipeline=entry.name,
        inputs=inputs,
        confidence=confidence,
        reason=reason,
        candidates=tuple(candidates) or (entry.name,),
        paths=found,
        source=source,
    )


def _name_pattern(name: str) -> str:
    parts = [re.escape(p) for p in re.split(r"[\s_-]+", name) if p]
    return r"[\s_-]?".join(parts)


_OVERRIDE_VERB = (
    r"(?:use|run|try|switch\s+to|go\s+with|pick|choose|start|execute|launch|meant|want|"
    r"rather|do)"
)
_NEGATION = re.compile(r"\b(?:don'?t|do\s+not|never|not|no\s+need\s+to)\s*$", re.IGNORECASE)


def detect_override(
    message: str,
    catalogue: Sequence[PipelineEntry],
    previous_decision: RouteDecision | None = None,
) -> RouteDecision | None:
    """The decision forced by "use X instead" / "no, use the X pipeline" / "run X", if any.

    Paths of the previous decision carry over (re-mapped onto X's inputs) unless the message
    names new ones; a negated mention ("don't run X") forces nothing.
    """
    text = message[:MAX_MESSAGE_CHARS]
    best: tuple[int, PipelineEntry] | None = None
    for entry in catalogue:
        name = _name_pattern(entry.name)
        tail = r"(?:\s+(?:pipeline|workflow|one))?"
        patterns = (
            rf"\b{_OVERRIDE_VERB}\s+(?:the\s+|a\s+|my\s+|with\s+)?(?P<n>{name}){tail}\b",
            rf"\b(?P<n>{name}){tail}\s+instead\b",
            rf"^\s*(?:no|nope)[,.!]?\s+(?:the\s+)?(?P<n>{name}){tail}\b",
        )
        for pattern in patterns:
            for match in re.finditer(pattern, text, re.IGNORECASE):
                if _NEGATION.search(text[: match.start()]):
                    continue
                pos = match.start("n")
                if best is None or pos < best[0]:
                    best = (pos, entry)
    if best is None:
        return None
    entry = best[1]
    if entry.name == GENESIS_PIPELINE:
        # "use genesis instead": the earlier message was the description of the new pipeline.
        earlier = previous_decision.message if previous_decision is not None else ""
        request = earlier if earlier and len(text.split()) <= 8 else text
        decision = _genesis(request, "you asked for a new pipeline", source="override")
        return replace(decision, confidence=1.0, message=text)
    if previous_decision is not None and previous_decision.pipeline == entry.name:
        reason = f"you asked for {entry.name}"
    elif previous_decision is not None and previous_decision.pipeline:
        reason = f"you asked for {entry.name} instead of {previous_decision.pipeline}"
    else:
        reason = f"you asked for {entry.name}"
    decision = _run_or_ask(
        entry,
        text,
        confidence=1.0,
        reason=reason,
        source="override",
        carried=_paths_of(previous_decision),
    )
    return replace(decision, message=text)


def _pick_from_previous(
    message: str, catalogue: Sequence[PipelineEntry], previous: RouteDecision
) -> RouteDecision | None:
    """An answer to our own clarifying question: a candidate by name or position ("the
    second one"), or the missing input of the pipeline we asked about."""
    by_name = {e.name: e for e in catalogue}
    text = message.strip()
    candidates = [by_name[c] for c in previous.candidates if c in by_name]
    carried = _paths_of(previous)
    chosen: PipelineEntry | None = None
    if len(candidates) == 1 and not previous.missing_inputs and _YES.search(text):
        chosen = candidates[0]
    if len(candidates) > 1:
        for entry in candidates:
            if re.search(rf"\b{_name_pattern(entry.name)}\b", text, re.IGNORECASE):
                chosen = entry
                break
        words = re.findall(r"[a-z0-9]+", text.lower())
        if chosen is None and len(words) <= 5:
            for word in words:
                index = _ORDINALS.get(word)
                if index is not None and index < len(candidates):
                    chosen = candidates[index]
                    break
    if chosen is not None:
        return _run_or_ask(
            chosen,
            text,
            confidence=1.0,
            reason=f"you chose {chosen.name}",
            source="override",
            carried=carried,
        )
    asked = by_name.get(previous.pipeline or "")
    if asked is None or not previous.missing_inputs:
        return None
    found = extract_paths(text)
    preset: dict[str, Any] = {}
    if not found and len(text.split()) <= 30:
        # A short reply without a path is the value of the (first) missing input.
        spec = asked.input(previous.missing_inputs[0])
        if spec is not None and spec.path_kind == "":
            preset[spec.name] = text
        elif spec is not None and len(text.split()) == 1:
            preset[spec.name] = _clean_path(text)
    if not found and not preset:
        return None
    merged = {**previous.inputs, **preset, **_map_paths(asked, found)}
    return _run_or_ask(
        asked,
        text,
        confidence=1.0,
        reason=f"you gave the input(s) for {asked.name}",
        source="override",
        carried=carried,
        preset=merged,
    )


def route_offline(
    message: str,
    catalogue: Sequence[PipelineEntry],
    *,
    previous: RouteDecision | None = None,
    threshold: float = CONFIDENCE_THRESHOLD,
) -> RouteDecision:
    """The deterministic router (no model call); see the module docstring."""
    text = message[:MAX_MESSAGE_CHARS].strip()
    return replace(_route_rules(text, catalogue, previous, threshold), message=text)


def _route_rules(
    text: str,
    catalogue: Sequence[PipelineEntry],
    previous: RouteDecision | None,
    threshold: float,
) -> RouteDecision:
    if not text:
        return RouteDecision(kind="answer", reason="empty message")
    forced = detect_override(text, catalogue, previous)
    if forced is not None:
        return forced
    if previous is not None and previous.kind == "clarify":
        picked = _pick_from_previous(text, catalogue, previous)
        if picked is not None:
            return picked
    if _GENESIS.search(text) and not _is_question(text):
        return _genesis(text, "you asked for a new pipeline")
    scored = score_pipelines(text, [e for e in catalogue if e.name != GENESIS_PIPELINE])
    confidence = confidence_of(scored)
    top = scored[0] if scored and scored[0].score > 0 else None
    if top is None:
        everything = [s.entry for s in scored][:5]
        if _TASK_WORDS.search(text) and not _is_question(text) and everything:
            return RouteDecision(
                kind="clarify",
                confidence=0.0,
                reason="a task about your code, but no pipeline matches it",
                question=clarify_question(everything),
                candidates=tuple(e.name for e in everything),
                paths=tuple(f"{k}:{p}" for k, p in extract_paths(text)),
            )
        return RouteDecision(kind="answer", confidence=1.0, reason="no pipeline matches")
    if _is_question(text):
        if _names_a_pipeline(text, catalogue) or confidence < threshold:
            return RouteDecision(
                kind="answer",
                confidence=confidence,
                reason=f"a question, not a request to run something (closest: {top.entry.name})",
                candidates=(top.entry.name,),
            )
        return RouteDecision(
            kind="clarify",
            confidence=confidence,
            reason=f"a question that {top.entry.name} could answer; asking before running it",
            question=clarify_question([top.entry]),
            candidates=(top.entry.name,),
            paths=tuple(f"{k}:{p}" for k, p in extract_paths(text)),
        )
    matched = ", ".join(dict.fromkeys(t.lstrip("@") for t in top.matched))
    contenders = [s for s in scored if s.score >= TIE_RATIO * top.score]
    if len(contenders) > 1 or confidence < threshold:
        offered = contenders if len(contenders) > 1 else [s for s in scored if s.score > 0][:3]
        entries = [s.entry for s in offered]
        why = (
            f"{len(contenders)} pipelines match equally well"
            if len(contenders) > 1
            else f"low confidence ({confidence:.2f} < {threshold:.2f})"
        )
        return RouteDecision(
            kind="clarify",
            confidence=confidence,
            reason=why,
            question=clarify_question(entries),
            candidates=tuple(e.name for e in entries),
            paths=tuple(f"{k}:{p}" for k, p in extract_paths(text)),
        )
    return _run_or_ask(
        top.entry,
        text,
        confidence=confidence,
        reason=f"matched {top.entry.name} on: {matched}",
        source="rules",
        candidates=tuple(s.entry.name for s in scored if s.score > 0),
    )


# --- the LLM router ---------------------------------------------------------------------------

ROUTE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "kind": {"type": "string", "enum": list(KINDS)},
        "pipeline": {"type": ["string", "null"]},
        "inputs": {"type": "object", "additionalProperties": {"type": "string"}},
        "confidence": {"type": "number", "minimum": 0, "maximum": 1},
        "reason": {"type": "string"},
        "question": {"type": ["string", "null"]},
    },
    "required": ["kind", "pipeline", "inputs", "confidence", "reason", "question"],
    "additionalProperties": False,
}

ROUTER_SYSTEM = """You route the messages of a user of ElexirionDSP, a platform that runs \
YAML pipelines of LLM steps over the user's workspace. Decide what to do with the LAST user \
message and answer with one JSON object matching the schema, nothing else.

kind:
- "run": the user asks for a task one of the pipelines below does. Set "pipeline" to its \
exact name and "inputs" to values taken from the message (paths relative to the workspace); \
leave out inputs the user did not give (their defaults apply).
- "genesis": the user asks to create/generate a NEW pipeline. pipeline null.
- "clarify": the request is ambiguous, two pipelines fit, or a required input is missing. \
Put a short question in "question" naming the candidate pipelines. Never guess.
- "answer": small talk or a question you can answer in chat; nothing to run.
"confidence" is your probability (0..1) that the decision is what the user wants; \
"reason" is one short sentence.

Pipelines (JSON):
"""


class _Unusable(Exception):
    """The model's routing answer cannot be used (the message says why)."""


def _parse_json(text: str) -> Any:
    body = text.strip()
    fenced = re.search(r"```(?:json)?\s*\n(.*?)```", body, re.DOTALL)
    if fenced:
        body = fenced.group(1).strip()
    try:
        return json.loads(body)
    except ValueError:
        start, end = body.find("{"), body.rfind("}")
        if 0 <= start < end:
            try:
                return json.loads(body[start : end + 1])
            except ValueError:
                pass
    raise _Unusable("the model's answer is not JSON")


def _scalar(value: Any) -> Any:
    if isinstance(value, str | int | float | bool):
        return value
    raise _Unusable("an input value is not a string or number")


def _from_model(
    data: Any,
    message: str,
    catalogue: Sequence[PipelineEntry],
    threshold: float,
) -> RouteDecision:
    """Validate the model's JSON and turn it into a decision (``_Unusable`` if it can't)."""
    if not isinstance(data, Mapping):
        raise _Unusable("the model's answer is not a JSON object")
    kind = data.get("kind")
    if kind not in KINDS:
        raise _Unusable(f"unknown kind {kind!r}")
    try:
        confidence = float(data.get("confidence", 0.0))
    except (TypeError, ValueError):
        raise _Unusable("confidence is not a number") from None
    if math.isnan(confidence):
        raise _Unusable("confidence is not a number")
    confidence = max(0.0, min(1.0, confidence))
    reason = str(data.get("reason") or "").strip()[:300] or "decided by the model"
    question = data.get("question")
    question = str(question).strip()[:500] if question else None
    by_name = {e.name: e for e in catalogue}
    name = data.get("pipeline")
    entry = by_name.get(str(name)) if name else None
    if name and entry is None:
        raise _Unusable(f"unknown pipeline {name!r}")
    raw_inputs = data.get("inputs") or {}
    if not isinstance(raw_inputs, Mapping):
        raise _Unusable("inputs is not a JSON object")
    if kind == "genesis" or (entry is not None and entry.name == GENESIS_PIPELINE):
        return _genesis(message, reason, source="llm")
    if kind == "answer":
        return RouteDecision(kind="answer", confidence=confidence, reason=reason, source="llm")
    if kind == "clarify" or entry is None or confidence < threshold:
        if kind == "run" and entry is None:
            raise _Unusable("kind 'run' without a pipeline")
        runnable = [e for e in catalogue if e.name != GENESIS_PIPELINE]
        ranked = [s.entry for s in score_pipelines(message, runnable) if s.score > 0][:3]
        offered = ([entry] if entry is not None else []) + [e for e in ranked if e is not entry]
        offered = offered[:3]
        if kind == "run":
            reason = f"{reason} (low confidence {confidence:.2f} < {threshold:.2f})"
        return RouteDecision(
            kind="clarify",
            pipeline=entry.name if entry is not None and len(offered) == 1 else None,
            confidence=confidence,
            reason=reason,
            question=question or clarify_question(offered),
            candidates=tuple(e.name for e in offered),
            paths=tuple(f"{k}:{p}" for k, p in extract_paths(message)),
            source="llm",
        )
    declared = {s.name for s in entry.inputs}
    preset: dict[str, Any] = {}
    for key, value in raw_inputs.items():
        if declared and key not in declared:
            log.info("router: the model gave unknown input %r for %s; dropped", key, entry.name)
            continue
        if value in (None, ""):
            continue
        preset[str(key)] = _scalar(value)
    return _run_or_ask(
        entry, message, confidence=confidence, reason=reason, source="llm", preset=preset
    )


def _fallback_reason(exc: BaseException) -> str:
    if isinstance(exc, RateLimited):
        return "the model is rate limiting us (429)"
    if isinstance(exc, ProviderTimeout):
        return "the model did not answer in time"
    if isinstance(exc, ProviderError):
        return f"the model failed ({type(exc).__name__})"
    if isinstance(exc, _Unusable):
        return f"the model's routing answer was unusable: {exc}"
    return f"the model could not route ({type(exc).__name__})"


def router_request(
    message: str, catalogue: Sequence[PipelineEntry], history: Sequence[ChatMessage] = ()
) -> LLMRequest:
    """The structured-output request the LLM router sends."""
    from elexirion_app.agent.session import build_context

    listing = json.dumps([e.to_dict() for e in catalogue], ensure_ascii=False, default=str)
    context = build_context([*history, ChatMessage("user", message)], (), HISTORY_TOKENS)
    return LLMRequest(
        messages=tuple(context),
        system=ROUTER_SYSTEM + listing,
        max_tokens=512,
        temperature=0.0,
        response_schema=ROUTE_SCHEMA,
        kind="chat",
    )


async def route(
    message: str,
    catalogue: Sequence[PipelineEntry],
    *,
    provider: Provider | None = None,
    history: Sequence[ChatMessage] = (),
    previous: RouteDecision | None = None,
    threshold: float = CONFIDENCE_THRESHOLD,
) -> RouteDecision:
    """Decide what to do with ``message`` (see the module docstring); never raises for a
    provider failure or a bad model answer. ``history`` is the conversation before
    ``message`` (oldest first); ``previous`` the decision of the previous turn, if any."""
    text = message[:MAX_MESSAGE_CHARS].strip()
    if provider is None or provider.offline or not text:
        return route_offline(text, catalogue, previous=previous, threshold=threshold)
    forced = detect_override(text, catalogue, previous)
    if forced is not None:
        return forced
    if previous is not None and previous.kind == "clarify":
        picked = _pick_from_previous(text, catalogue, previous)
        if picked is not None:
            return replace(picked, message=text)
    try:
        # Metered as the router's call: reserved against budgets, every attempt in the ledger.
        metered = bound_provider(provider, caller="router")
        response = await complete(metered, router_request(text, catalogue, history))
        data = response.structured if isinstance(response.structured, Mapping) else None
        if data is None:
            data = _parse_json(response.text)
        return replace(_from_model(data, text, catalogue, threshold), message=text)
    except (_Unusable, ElexirionError) as exc:
        why = _fallback_reason(exc)
        log.warning("router: %s; routing by keywords", why)
    except Exception as exc:  # a provider bug must not break the chat: log it, use the rules
        log.exception("router: the LLM call crashed")
        why = _fallback_reason(exc)
    decision = route_offline(text, catalogue, previous=previous, threshold=threshold)
    return replace(decision, reason=f"{why}; routed by keywords: {decision.reason}")


__all__ = [
    "CONFIDENCE_THRESHOLD",
    "ROUTE_SCHEMA",
    "RouteDecision",
    "Scored",
    "clarify_question",
    "confidence_of",
    "detect_override",
    "extract_inputs",
    "extract_paths",
    "route",
    "route_offline",
    "router_request",
    "score_pipelines",
    "tokens",
]
