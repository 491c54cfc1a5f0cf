"""The deterministic router: greetings and questions, genesis requests, overrides ("no, use the
refactoring pipeline"), picks from a previous clarifying question, and the BM25-ranked run or
clarifying question (``route_offline``); the LLM router falls back to it."""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from elexirion_app.agent.catalogue import PipelineEntry
from elexirion_app.agent.decision import (
    CONFIDENCE_THRESHOLD,
    MAX_MESSAGE_CHARS,
    TIE_RATIO,
    RouteDecision,
)
from elexirion_app.agent.message_inputs import (
    _clean_path,
    _map_paths,
    _paths_of,
    extract_inputs,
    extract_paths,
)
from elexirion_app.agent.scoring import confidence_of, score_pipelines

log = logging.getLogger(__name__)

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
# A request to do something (analyse, fix, run …): without one, a message that only mentions
# code ("here is `code`: …") is talked about, not routed to a question "which pipeline?".
_ASK_VERBS = re.compile(
    r"\b(?:analy[sz]e|analysis|review|check|audit|scan|inspect|assess|evaluate|refactor|"
    r"clean|improve|optimi[sz]e|fix|debug|test|document|explain|summari[sz]e|run|start|"
    r"execute|generate|write|create|build|make|find|look|rate|grade|lint|list|process|"
    r"handle|help)\w*|\b(?:do|go|work)\b",
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
    if confidence < threshold and not _ASK_VERBS.search(text):
        return RouteDecision(
            kind="answer",
            confidence=confidence,
            reason=f"nothing asked to be done (closest: {top.entry.name}, {confidence:.2f})",
            candidates=(top.entry.name,),
        )
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
