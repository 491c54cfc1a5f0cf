"""What the router decided to do with a chat message (``RouteDecision``), shared by the
deterministic rules, the LLM router and the chat turn."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

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


# text analysis: agent/scoring.py; inputs from the message: agent/message_inputs.py
