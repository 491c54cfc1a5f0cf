"""One agent turn in a chat: route the user's message, then answer, ask, run a pipeline or
write one (genesis), streaming what happens to the page.

The web layer consumes ``agent_reply``'s events: ``decision`` (the router's choice, shown as a
card), ``delta`` (answer text), ``progress`` (a pipeline's live steps) and finally ``final``
(the saved assistant message). Everything is checked against ``user_id`` here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlmodel import col, select

from elexirion_app.agent import genesis
from elexirion_app.agent.catalogue import PipelineEntry, load_catalogue
from elexirion_app.agent.router import RouteDecision, route
from elexirion_app.agent.session import RunSummary, build_context, summarise_run
from elexirion_app.config import get_settings
from elexirion_app.core.errors import Conflict, ElexirionError, NotFound
from elexirion_app.core.money import usd
from elexirion_app.core.paths import pipeline_file
from elexirion_app.core.types import ChatMessage, Usage
from elexirion_app.db.engine import in_db_thread, session_scope
from elexirion_app.db.models import Message
from elexirion_app.providers.base import Provider
from elexirion_app.services.billing import meter
from elexirion_app.services.chat import chat
from elexirion_app.services.runs import pipeline_runs, pipeline_store

log = logging.getLogger(__name__)

SHIPPED_PIPELINES = pipeline_store.SHIPPED_DIR


@dataclass(frozen=True)
class AgentEvent:
    kind: str  # "decision" | "delta" | "progress" | "final"
    text: str = ""
    data: dict[str, Any] = field(default_factory=dict)
    final: chat.MessageView | None = None
    reset: bool = False  # a "delta" that voids the text streamed so far (a retried attempt)


def drafts_dir(user_id: int) -> Path:
    return pipeline_store.user_dir(user_id)


def _register(user_id: int, path: Path, text: str) -> str:
    with session_scope() as session:
        return pipeline_store.register_generated(session, user_id, path, text)


@dataclass(frozen=True)
class _Turn:
    conversation_id: int
    text: str
    history: list[ChatMessage]
    previous: RouteDecision | None
    runs: list[RunSummary]


def _load_turn(user_id: int, reply_id: int) -> _Turn:
    """Load what answers the placeholder, then claim it (once: a replay gets ``Conflict``).
    The claim is the transaction's only write and comes last, so SQLite's one write lock is
    held for an instant, not for the reads."""
    with session_scope() as session:
        reply = chat.owned_message(session, user_id, reply_id)
        if reply.role != "assistant" or reply.parent_id is None:
            raise NotFound("This message does not exist.")
        if reply.status != "streaming":
            raise Conflict("This reply has already been answered.")
        asked = chat.owned_message(session, user_id, reply.parent_id)
        assert asked.id is not None
        history = chat.branch_history(session, user_id, asked.id)
        # Earlier decisions and run summaries of this branch, in one query.
        ancestors = chat.branch_ids(session, asked.conversation_id, asked.parent_id)
        metas = dict(
            session.exec(
                select(Message.id, Message.meta).where(
                    col(Message.id).in_(ancestors), Message.user_id == user_id
                )
            ).all()
        )
        chat.claim_reply(session, user_id, reply_id)
    previous, runs = None, []
    for mid in ancestors:  # oldest first
        meta = metas.get(mid) or {}
        if isinstance(meta.get("decision"), dict):
            previous = RouteDecision.from_dict(meta["decision"])
        if isinstance(meta.get("run"), dict):
            runs.append(RunSummary.from_dict(meta["run"]))
    return _Turn(reply.conversation_id, asked.content, history, previous, runs)


_catalogues: dict[tuple[tuple[str, float], ...], list[PipelineEntry]] = {}


def catalogue_for(user_id: int) -> list[PipelineEntry]:
    """Shipped pipelines first, then the user's own (drafts from genesis); re-read only when
    a file changed."""
    dirs = [SHIPPED_PIPELINES, drafts_dir(user_id)]
    files = sorted(p for d in dirs for p in d.rglob("*.y*ml"))
    key = tuple((str(p), p.stat().st_mtime) for p in files)
    if key not in _catalogues:
        if len(_catalogues) > 256:
            _catalogues.clear()
        _catalogues[key] = load_catalogue(dirs)
    return _catalogues[key]


def decision_note(decision: RouteDecision) -> str:
    """The markdown card shown above the reply: which pipeline, why, inputs, confidence."""
    if decision.kind == "answer":
        return ""
    head = {
        "run": f"Routed to **{decision.pipeline}**",
        "genesis": "Writing a **new pipeline**",
        # A known pipeline that lacks a required input is not a doubt about which one.
        "clarify": f"**{decision.pipeline}** needs more input"
        if decision.pipeline and decision.missing_inputs
        else "Not sure which pipeline you mean",
    }[decision.kind]
    parts = [f"{head} · confidence {decision.confidence:.2f} · {decision.source}"]
    if decision.reason:
        parts.append(f"Why: {decision.reason}")
    if decision.kind == "run" and decision.inputs:
        given = ", ".join(f"`{k}`=`{str(v)[:60]}`" for k, v in decision.inputs.items())
        parts.append(f"Inputs: {given}")
    if decision.kind == "run":
        parts.append('Not what you wanted? Say e.g. "no, use the refactoring pipeline".')
    return "  \n".join(parts)


async def agent_reply(user_id: int, reply_id: int, provider: Provider) -> AsyncIterator[AgentEvent]:
    """Produce the assistant reply for placeholder ``reply_id`` (see the module docstring).

    The placeholder is claimed first (a second call for the same reply is refused with
    ``Conflict`` and changes nothing). From then on every outcome is saved: an answer, a
    clear error for any failure (bugs included, logged with their traceback), ``stopped``
    when the task is cancelled."""
    # Database and file reads off the event loop: other sessions keep streaming meanwhile.
    try:
        turn = await in_db_thread(_load_turn, user_id, reply_id)
    except (Conflict, NotFound):
        raise  # not this caller's reply to answer: nothing is touched
    except Exception as exc:  # e.g. the database is locked: the claim rolled back
        if not isinstance(exc, ElexirionError):
            log.exception("loading the turn of reply %s failed", reply_id)
        text = "**Error:** the reply could not start. Please try again."
        failed = await in_db_thread(chat.fail_open_reply, user_id, reply_id, text)
        if failed is not None:
            yield AgentEvent("final", final=failed)
        return
    # Every model call of the turn (router, answer, genesis) is metered for this user and
    # conversation: reserved against their budgets, each attempt booked in the ledger.
    provider = meter.bind(provider, user_id=user_id, conversation_id=turn.conversation_id)
    try:
        async for event in _reply(user_id, reply_id, turn, provider):
            yield event
    finally:
        chat.clear_stop(reply_id)


async def _reply(
    user_id: int, reply_id: int, turn: _Turn, provider: Provider
) -> AsyncIterator[AgentEvent]:
    meta: dict[str, Any] = {}
    finished = False
    try:
        catalogue = await in_db_thread(catalogue_for, user_id)
        decision = await route(
            turn.text, catalogue, provider=provider, history=turn.history, previous=turn.previous
        )
        meta = {"decision": decision.to_dict(), "note": decision_note(decision)}
        yield AgentEvent("decision", data=meta)
        if decision.kind == "answer":
            events = _answer(user_id, reply_id, turn, provider, meta)
        elif decision.kind == "clarify":
            events = _clarify(user_id, reply_id, turn, decision, meta)
        elif decision.kind == "run":
            events = _run(user_id, reply_id, turn, decision, catalogue, meta)
        else:
            events = _genesis(user_id, reply_id, turn, decision, provider, meta)
        async for event in events:
            finished = finished or event.kind == "final"
            yield event
    except asyncio.CancelledError:
        if not finished:
            await asyncio.shield(_save(user_id, reply_id, turn, "**Stopped.**", "stopped", meta))
        raise
    except Exception as exc:
        if finished:
            raise
        if isinstance(exc, ElexirionError):
            text = f"**Error:** {exc.user_message}"
        else:
            log.exception("agent turn for reply %s failed", reply_id)
            text = "**Error:** the reply failed. Please try again."
        yield AgentEvent("final", final=await _save(user_id, reply_id, turn, text, "error", meta))


async def _clarify(
    user_id: int, reply_id: int, turn: _Turn, decision: RouteDecision, meta: dict[str, Any]
) -> AsyncIterator[AgentEvent]:
    text = decision.display()
    yield AgentEvent("delta", text=text)
    yield AgentEvent("final", final=await _save(user_id, reply_id, turn, text, "complete", meta))


async def _save(
    user_id: int,
    reply_id: int,
    turn: _Turn,
    text: str,
    status: str,
    meta: dict[str, Any],
    *,
    model: str = "agent",
    provider: str = "",
    usage: Usage | None = None,
    cost: Decimal = Decimal("0"),
    latency_ms: float = 0.0,
    error: str | None = None,
    run_id: str | None = None,
) -> chat.MessageView:
    """Save the reply off the event loop."""
    return await in_db_thread(
        chat.save_reply,
        user_id,
        reply_id,
        turn.conversation_id,
        text,
        status,
        model,
        provider,
        usage or Usage(),
        cost,
        latency_ms,
        error,
        meta,
        run_id,
    )


async def _answer(
    user_id: int, reply_id: int, turn: _Turn, provider: Provider, meta: dict[str, Any]
) -> AsyncIterator[AgentEvent]:
    context = build_context(
        [*turn.history, ChatMessage("user", turn.text)],
        turn.runs,
        get_settings().chat_context_budget,
    )
    async for chunk in chat.stream_reply(
        user_id, reply_id, provider, messages=context, meta=meta, claimed=True
    ):
        if chunk.final is not None:
            yield AgentEvent("final", final=chunk.final)
        else:
            yield AgentEvent("delta", text=chunk.text, reset=chunk.reset)


def _progress_dict(p: pipeline_runs.RunProgress) -> dict[str, Any]:
    return {
        "run_id": p.run_id,
        "pipeline": p.pipeline,
        "status": p.status,
        "tokens": p.usage.total,
        "cost": usd(p.cost),
        "steps": [
            {
                "name": s.name,
                "status": s.status,
                "model": s.model,
                "tokens": str(s.tokens),
                "cost": usd(s.cost),
                "preview": s.preview,
            }
            for s in p.steps
        ],
    }


async def _run(
    user_id: int,
    reply_id: int,
    turn: _Turn,
    decision: RouteDecision,
    catalogue: list[PipelineEntry],
    meta: dict[str, Any],
) -> AsyncIterator[AgentEvent]:
    entry = next((e for e in catalogue if e.name == decision.pipeline), None)
    if entry is None:
        text = f"The pipeline **{decision.pipeline}** is not available any more."
        yield AgentEvent("final", final=await _save(user_id, reply_id, turn, text, "error", meta))
        return
    updates: list[pipeline_runs.RunProgress] = []

    async def on_progress(p: pipeline_runs.RunProgress) -> None:
        updates.append(p)

    started = time.perf_counter()
    run_task = pipeline_runs.run_for_user(
        user_id,
        entry.path,
        dict(decision.inputs),
        on_progress,
        conversation_id=turn.conversation_id,
    )
    # Run while relaying progress: the executor awaits observers, so poll the shared list.
    task = asyncio.ensure_future(run_task)
    sent = 0
    try:
        while not task.done():
            await asyncio.sleep(0.05)
            if chat.stop_requested(reply_id):
                task.cancel()  # the run is recorded interrupted (resumable)
                with contextlib.suppress(asyncio.CancelledError):
                    await task
                run_id = updates[-1].run_id if updates else None
                text = f"**Stopped.** The run of **{entry.name}** was cancelled"
                text += f"; resume it with `resume {run_id}`." if run_id else "."
                chat.clear_stop(reply_id)
                yield AgentEvent(
                    "final",
                    final=await _save(
                        user_id, reply_id, turn, text, "stopped", meta, run_id=run_id
                    ),
                )
                return
            if len(updates) > sent:
                sent = len(updates)
                yield AgentEvent("progress", data=_progress_dict(updates[-1]))
        outcome = task.result()
    except ElexirionError as exc:
        text = f"The pipeline **{entry.name}** could not run: {exc.user_message}"
        yield AgentEvent("final", final=await _save(user_id, reply_id, turn, text, "error", meta))
        return
    finally:
        if not task.done():
            task.cancel()
    progress = updates[-1] if updates else None
    if progress is not None:
        yield AgentEvent("progress", data=_progress_dict(progress))
    report = pipeline_runs.report_markdown(outcome, progress)
    meta = {**meta, "run": summarise_run(outcome).to_dict()}
    if progress is not None:
        meta["progress"] = _progress_dict(progress)
    final = await _save(
        user_id,
        reply_id,
        turn,
        report,
        "complete" if outcome.succeeded else "error",
        meta,
        model=f"pipeline:{entry.name}",
        usage=outcome.usage,
        cost=outcome.cost,
        latency_ms=(time.perf_counter() - started) * 1000,
        run_id=outcome.run_id,
    )
    yield AgentEvent("final", final=final)


async def _genesis(
    user_id: int,
    reply_id: int,
    turn: _Turn,
    decision: RouteDecision,
    provider: Provider,
    meta: dict[str, Any],
) -> AsyncIterator[AgentEvent]:
    request = str(decision.inputs.get("request") or turn.text)
    yield AgentEvent("delta", text="Writing the pipeline…\n\n")
    job = asyncio.ensure_future(
        genesis.generate_pipeline(request, provider, base_dir=drafts_dir(user_id))
    )
    try:
        while not job.done():
            await asyncio.wait({job}, timeout=0.1)
            if chat.stop_requested(reply_id) and not job.done():
                job.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await job
                chat.clear_stop(reply_id)
                text = "**Stopped.** No pipeline was written."
                yield AgentEvent(
                    "final", final=await _save(user_id, reply_id, turn, text, "stopped", meta)
                )
                return
        result = job.result()
    except ElexirionError as exc:
        text = f"I could not write that pipeline: {exc.user_message}"
        yield AgentEvent("final", final=await _save(user_id, reply_id, turn, text, "error", meta))
        return
    lines = [f"### New pipeline: {result.name or 'draft'}"]
    status = "complete"
    if result.valid:
        # The model chose the name: one function turns it into a confined, slugged path.
        path = pipeline_file(drafts_dir(user_id), result.name, read_only=(SHIPPED_PIPELINES,))
        await in_db_thread(path.write_text, result.yaml_text, encoding="utf-8")
        name = await in_db_thread(_register, user_id, path, result.yaml_text)
        check = await pipeline_runs.run_draft_offline(user_id, path)
        lines.append(
            f"It validates (after {result.attempts} attempt(s)) and was saved to your "
            f"pipelines as `{name}`; an offline trial run {check}."
        )
        meta = {**meta, "draft": path.name, "pipeline": name}
    else:
        status = "error"
        lines.append(
            f"After {result.attempts} attempt(s) the pipeline still does not validate:\n\n"
            f"```\n{result.problem_text()}\n```"
        )
    lines += ["", "```yaml", result.yaml_text.rstrip(), "```"]
    final = await _save(
        user_id,
        reply_id,
        turn,
        "\n".join(lines),
        status,
        meta,
        model="genesis",
        usage=result.usage,
        cost=result.cost,
    )
    yield AgentEvent("final", final=final)


__all__ = ["AgentEvent", "agent_reply", "catalogue_for", "decision_note", "drafts_dir"]
