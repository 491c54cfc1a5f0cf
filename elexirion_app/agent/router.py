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
  pipelines tie, or when a required input is missing — but a weak match in a message that
  asks nothing to be done, one that only mentions code, is answered), ``genesis`` (call
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
from dataclasses import replace
from typing import Any

from elexirion_app.agent.catalogue import PipelineEntry
from elexirion_app.agent.decision import (
    CONFIDENCE_THRESHOLD,
    HISTORY_TOKENS,
    KINDS,
    MAX_MESSAGE_CHARS,
    RouteDecision,
)
from elexirion_app.agent.message_inputs import (
    extract_inputs,
    extract_paths,
)
from elexirion_app.agent.router_rules import (
    GENESIS_PIPELINE,
    _genesis,
    _pick_from_previous,
    _run_or_ask,
    clarify_question,
    detect_override,
    route_offline,
)
from elexirion_app.agent.scoring import Scored, confidence_of, score_pipelines, tokens
from elexirion_app.core.errors import ElexirionError, ProviderError, ProviderTimeout, RateLimited
from elexirion_app.core.types import ChatMessage, LLMRequest
from elexirion_app.providers.base import Provider, complete
from elexirion_app.providers.registry import bound_provider

log = logging.getLogger(__name__)


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
