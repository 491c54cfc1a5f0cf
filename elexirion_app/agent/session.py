"""Multi-turn memory of a conversation: what the next model call sees of earlier turns and runs.

CONTRACT:
- ``build_context(messages, run_summaries=(), budget_tokens=DEFAULT_BUDGET) -> list[ChatMessage]``
  ``messages`` is the conversation oldest first; its last message is the current user turn and
  is always kept, last (truncated in the middle with a marker only if it alone exceeds the
  budget). Run summaries (newest kept first, at most a third of the budget) and a note about
  omitted older turns form one context block, merged into the first kept user message (so
  roles keep alternating; with no earlier turn kept, that is the current message); then the
  newest earlier turns that fit, whole. The result starts with a user message and its
  estimated size (``estimate_tokens``, ~4 characters a token) never exceeds ``budget_tokens``.
- ``RunSummary`` / ``summarise_run(outcome)``: a short text of one run (pipeline, status, key
  outputs, cost) for that block; ``to_dict``/``from_dict`` to keep it with a chat message.
- ``session_text(messages, last_n=None) -> str``: "User: ...\\nAssistant: ..." lines.
- ``make_session_store(load_messages, budget_tokens=...)``: the executor's ``session_store``
  hook (``Callable[[str], str | Awaitable[str]]``, see ``pipelines.executor.SessionStore``):
  session id -> the newest turns of that conversation as text (``""`` when unknown).
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from elexirion_app.core.errors import ElexirionError
from elexirion_app.core.types import ChatMessage
from elexirion_app.providers.mock import estimate_tokens

log = logging.getLogger(__name__)

DEFAULT_BUDGET = 6000
SUMMARY_SHARE = 3  # run summaries get at most budget // SUMMARY_SHARE
OUTPUT_CHARS = 240  # characters of one step output in a run summary
OUTPUT_STEPS = 3  # step outputs shown per run summary (the last ones)
CUT_MARKER = "\n[… {n} characters cut to fit the context …]\n"
STORE_BUDGET = 2000

# ``load_messages`` may be sync or async.
MessageLoader = Callable[[str], "Sequence[ChatMessage] | Awaitable[Sequence[ChatMessage]]"]


@dataclass(frozen=True)
class RunSummary:
    """One pipeline run, as the agent remembers it."""

    pipeline: str
    status: str
    outputs: Mapping[str, str] = field(default_factory=dict)
    cost: Decimal = Decimal("0")
    run_id: str = ""
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "pipeline": self.pipeline,
            "status": self.status,
            "outputs": dict(self.outputs),
            "cost": str(self.cost),
            "run_id": self.run_id,
            "error": self.error,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunSummary:
        outputs = data.get("outputs")
        try:
            cost = Decimal(str(data.get("cost") or "0"))
        except ArithmeticError:
            cost = Decimal("0")
        return cls(
            pipeline=str(data.get("pipeline") or "?"),
            status=str(data.get("status") or "?"),
            outputs={str(k): str(v) for k, v in outputs.items()}
            if isinstance(outputs, Mapping)
            else {},
            cost=cost,
            run_id=str(data.get("run_id") or ""),
            error=str(data["error"]) if data.get("error") else None,
        )

    def text(self) -> str:
        head = f"Run of pipeline '{self.pipeline}': {self.status}, cost ${self.cost:.4f}"
        if self.run_id:
            head += f" (run {self.run_id[:8]})"
        lines = [head]
        if self.error:
            lines.append(f"  error: {_short(self.error, OUTPUT_CHARS)}")
        for name, value in self.outputs.items():
            lines.append(f"  {name}: {_short(value, OUTPUT_CHARS)}")
        return "\n".join(lines)


def _short(text: str, limit: int) -> str:
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _output_text(result: Any) -> str:
    if isinstance(result, Mapping):
        for key in ("text", "content", "combined_results"):
            if isinstance(result.get(key), str):
                return str(result[key])
        if result.get("skipped"):
            return "(skipped)"
    return str(result)


def summarise_run(outcome: Any) -> RunSummary:
    """A ``RunSummary`` of an ``executor.RunOutcome`` (the last steps' outputs, shortened)."""
    steps = dict(getattr(outcome, "steps", {}) or {})
    shown = list(steps.items())[-OUTPUT_STEPS:]
    return RunSummary(
        pipeline=str(getattr(outcome, "pipeline", "") or "?"),
        status=str(getattr(outcome, "status", "") or "?"),
        outputs={name: _short(_output_text(result), OUTPUT_CHARS) for name, result in shown},
        cost=Decimal(str(getattr(outcome, "cost", 0) or 0)),
        run_id=str(getattr(outcome, "run_id", "") or ""),
        error=getattr(outcome, "error", None),
    )


def _tokens(message: ChatMessage) -> int:
    return estimate_tokens(message.content)


def _truncate(text: str, budget_tokens: int) -> str:
    """``text`` cut in the middle (head and tail kept, a marker between) to fit the budget."""
    if estimate_tokens(text) <= budget_tokens:
        return text
    max_chars = max(0, budget_tokens * 4)  # estimate_tokens(t) <= b  <=>  len(t) <= 4b
    room = max_chars - len(CUT_MARKER.format(n=len(text)))
    if room <= 0:
        return text[:max_chars]
    head = room * 2 // 3
    tail = room - head
    cut = len(text) - head - tail
    return text[:head] + CUT_MARKER.format(n=cut) + text[len(text) - tail :]


def _summary_text(item: RunSummary | str) -> str:
    return item.text() if isinstance(item, RunSummary) else str(item)


def _omitted_note(dropped: Sequence[ChatMessage], *, brief: bool = False) -> str:
    """The note standing for dropped turns: how many, and (unless ``brief``) the newest
    questions among them."""
    if not dropped:
        return ""
    asks = [m.content for m in dropped if m.role == "user"]
    note = f"({len(dropped)} earlier message(s) omitted"
    if asks and not brief:
        quoted = "; ".join(f"'{_short(a, 60)}'" for a in asks[-3:])
        note += f"; earlier you asked: {quoted}"
    return note + ")"


def build_context(
    messages: Sequence[ChatMessage],
    run_summaries: Sequence[RunSummary | str] = (),
    budget_tokens: int = DEFAULT_BUDGET,
) -> list[ChatMessage]:
    """The messages for the next model call (see the module docstring)."""
    if not messages:
        return []
    budget = max(1, int(budget_tokens))
    last = messages[-1]
    current = ChatMessage(last.role, _truncate(last.content, budget))
    base = _tokens(current)

    # Run summaries: newest first, within their share of the budget.
    summaries: list[str] = []
    for item in reversed(run_summaries):
        trial = [_summary_text(item), *summaries]
        size = _total(_assemble(trial, "", [], current))
        if size - base > budget // SUMMARY_SHARE or size > budget:
            break
        summaries = trial

    # Earlier turns: newest first, whole messages, contiguous; a note names what was dropped.
    earlier = list(messages[:-1])
    kept: list[ChatMessage] = []
    index = len(earlier)
    while index > 0:
        trial_kept = [earlier[index - 1], *kept]
        note = _omitted_note(earlier[: index - 1], brief=True)
        if _total(_assemble(summaries, note, trial_kept, current)) > budget:
            break
        kept = trial_kept
        index -= 1
    dropped = earlier[:index]
    for note in (_omitted_note(dropped), _omitted_note(dropped, brief=True), ""):
        result = _assemble(summaries, note, kept, current)
        if _total(result) <= budget:
            return result
    return _assemble(summaries, "", kept, current)  # pragma: no cover - the loop checked it


def _total(messages: Sequence[ChatMessage]) -> int:
    return sum(_tokens(m) for m in messages)


def _assemble(
    summaries: Sequence[str], note: str, kept: Sequence[ChatMessage], current: ChatMessage
) -> list[ChatMessage]:
    """Context block + turns + current message, starting with a user message.

    The block (run summaries and the omitted-turns note) is merged into the first user message
    so roles keep alternating; an assistant turn at the start with no block is left out.
    """
    lines: list[str] = []
    if summaries:
        lines += ["Results of pipeline runs:", *summaries]
    if note:
        lines.append(note)
    turns = [*kept, current]
    if not lines:
        while len(turns) > 1 and turns[0].role != "user":
            turns.pop(0)
        return turns
    block = "Context from earlier in this conversation:\n" + "\n".join(lines)
    first = turns[0]
    if first.role == "user":
        return [ChatMessage("user", f"{block}\n\n{first.content}"), *turns[1:]]
    return [ChatMessage("user", block), *turns]


# --- the executor's session store -------------------------------------------------------------


def session_text(messages: Sequence[ChatMessage], last_n: int | None = None) -> str:
    """The conversation as "User: ..." / "Assistant: ..." paragraphs (newest ``last_n``)."""
    chosen = list(messages)
    if last_n is not None:
        chosen = chosen[-last_n:] if last_n > 0 else []
    return "\n\n".join(
        f"{'User' if m.role == 'user' else 'Assistant'}: {m.content}" for m in chosen
    )


def _newest_within(messages: Sequence[ChatMessage], budget_tokens: int) -> list[ChatMessage]:
    kept: list[ChatMessage] = []
    used = 0
    for message in reversed(messages):
        cost = _tokens(message) + 3  # the "User: " prefix and the blank line
        if used + cost > budget_tokens:
            break
        kept.insert(0, message)
        used += cost
    return kept


def make_session_store(
    load_messages: MessageLoader, *, budget_tokens: int = STORE_BUDGET
) -> Callable[[str], str | Awaitable[str]]:
    """A ``session_store`` for ``run_pipeline``: session id -> that conversation's newest turns
    (within ``budget_tokens``) as ``session_text``. Unknown sessions give ``""``."""

    def _text(messages: Sequence[ChatMessage] | None) -> str:
        return session_text(_newest_within(list(messages or ()), budget_tokens))

    async def _later(pending: Awaitable[Sequence[ChatMessage]], session_id: str) -> str:
        try:
            return _text(await pending)
        except ElexirionError as exc:
            log.info("session %r not available: %s", session_id, exc.message)
            return ""

    def store(session_id: str) -> str | Awaitable[str]:
        try:
            loaded = load_messages(session_id)
        except ElexirionError as exc:
            log.info("session %r not available: %s", session_id, exc.message)
            return ""
        if inspect.isawaitable(loaded):
            return _later(loaded, session_id)
        return _text(loaded)

    return store


__all__ = [
    "DEFAULT_BUDGET",
    "RunSummary",
    "build_context",
    "make_session_store",
    "session_text",
    "summarise_run",
]
