"""Run a pipeline for a logged-in user: their workspace, per-run output folder, run records,
and a live progress feed for the page (steps started/finished, tokens, cost)."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from elexirion_app.agent.session import make_session_store
from elexirion_app.config import get_settings
from elexirion_app.core.errors import ElexirionError, NotFound
from elexirion_app.core.events import (
    LLMCallFinished,
    RunEvent,
    RunFinished,
    RunStarted,
    StepFinished,
    StepStarted,
)
from elexirion_app.core.money import usd
from elexirion_app.core.threads import in_cpu_thread
from elexirion_app.core.types import ChatMessage, Usage
from elexirion_app.db.engine import in_file_thread, session_scope
from elexirion_app.pipelines.executor import RunOutcome, run_pipeline
from elexirion_app.pipelines.loader import PipelineDocument, load_file
from elexirion_app.providers.registry import get_provider
from elexirion_app.services import workspace
from elexirion_app.services.chat import chat
from elexirion_app.services.runs.run_records import run_recorded

log = logging.getLogger(__name__)


@dataclass
class StepProgress:
    name: str
    status: str = "queued"
    model: str = ""
    tokens: int = 0
    cost: Decimal = Decimal("0")
    preview: str = ""


@dataclass
class RunProgress:
    """What the page shows while a run goes on (updated by ``ProgressObserver``)."""

    run_id: str = ""
    pipeline: str = ""
    status: str = "queued"
    steps: list[StepProgress] = field(default_factory=list)
    usage: Usage = Usage()
    cost: Decimal = Decimal("0")
    error: str | None = None

    def step(self, name: str) -> StepProgress:
        for s in self.steps:
            if s.name == name:
                return s
        s = StepProgress(name)
        self.steps.append(s)
        return s


ProgressCallback = Callable[[RunProgress], Awaitable[None]]


def _preview(result: Any) -> str:
    if isinstance(result, dict):
        for key in ("text", "content"):
            if isinstance(result.get(key), str):
                return str(result[key])[:100]
    return ""


@dataclass
class ProgressObserver:
    """Turns engine events into ``RunProgress`` and hands it to ``callback``."""

    callback: ProgressCallback
    progress: RunProgress = field(default_factory=RunProgress)

    async def __call__(self, event: RunEvent) -> None:
        p = self.progress
        if isinstance(event, RunStarted):
            p.run_id, p.pipeline, p.status = event.run_id, event.pipeline, "running"
            p.steps = [StepProgress(n) for n in event.step_names]
        elif isinstance(event, StepStarted):
            s = p.step(event.step)
            s.status, s.model = "running", event.model or ""
        elif isinstance(event, LLMCallFinished):
            p.usage = p.usage + event.usage
            p.cost += event.cost
        elif isinstance(event, StepFinished):
            s = p.step(event.step)
            s.status, s.tokens, s.cost = event.status, event.usage.total, event.cost
            s.preview = event.error or _preview(event.result)
        elif isinstance(event, RunFinished):
            p.status, p.error = event.status, event.error
            p.usage, p.cost = event.usage, event.cost
        else:
            return
        await self.callback(p)


def output_path_for(user_id: int, run_id: str) -> Path:
    """Where a run's files go (not created: see ``output_dir_for``)."""
    return get_settings().data_dir / "outputs" / str(user_id) / run_id


def output_dir_for(user_id: int, run_id: str) -> Path:
    path = output_path_for(user_id, run_id)
    path.mkdir(parents=True, exist_ok=True)
    return path


@dataclass(frozen=True)
class Prepared:
    """A start whose parsing and file work are already done (the HTTP API's jobs): ``doc`` is
    the document as ``load_file`` gives it, already validated (``refusal``: the validation's
    error, the run is then refused and recorded so), ``yaml`` its text, ``workspace`` the
    user's current one, ``output_dir`` the run's folder (created)."""

    doc: PipelineDocument
    yaml: str
    workspace: Path
    output_dir: Path
    refusal: ElexirionError | None = None


async def run_for_user(
    user_id: int,
    pipeline_path: Path,
    inputs: dict[str, Any],
    on_progress: ProgressCallback | None = None,
    *,
    run_id: str | None = None,
    conversation_id: int | None = None,
    pipeline_version: tuple[int, int] | None = None,
    address: str = "",
    prepared: Prepared | None = None,
    watchers: Sequence[Any] = (),
) -> RunOutcome:
    """Validate and run ``pipeline_path`` as ``user_id`` with run records written ahead.

    Files come from the user's current workspace; ``session_context``/``claude_continue``
    prompt parts read the user's conversations (``conversation_id`` is the one the run was
    started from, also reachable as session id ``current``). The start is audited
    (``pipeline_run`` from ``address``, with the run id and version) in the transaction that
    marks the run running. Nothing here blocks the event loop: the file is read and parsed,
    and validated, on the CPU pool; the workspace and output folder are found on the file pool.
    With ``prepared`` (the file already parsed, validated and placed) none of that is redone.
    ``watchers`` are observers that see each engine event before the run recorder writes it.
    """
    run_id = run_id or str(uuid.uuid4())
    if prepared is None:
        doc = await in_cpu_thread(user_id, load_file, pipeline_path)
        pipeline_yaml = await in_file_thread(pipeline_path.read_text, encoding="utf-8")
        folder = await in_file_thread(workspace.current_workspace, user_id)
        output_dir = await in_file_thread(output_dir_for, user_id, run_id)
        validate, refusal = True, None
    else:
        doc, pipeline_yaml = prepared.doc, prepared.yaml
        folder, output_dir = prepared.workspace, prepared.output_dir
        validate, refusal = False, prepared.refusal
    observers: list[Any] = []
    if on_progress is not None:
        observers.append(ProgressObserver(on_progress))
    target = pipeline_path.stem if pipeline_version else str(doc.workflow.get("name") or "")
    return await run_recorded(
        doc,
        pipeline_yaml=pipeline_yaml,
        pipeline_path=str(pipeline_path),
        user_id=user_id,
        observers=observers,
        watchers=watchers,
        pipeline_version=pipeline_version,
        audit_address=address,
        audit_target=target[:200],
        inputs=inputs,
        run_id=run_id,
        workspace=folder,
        session_store=make_session_store(_conversation_loader(user_id, conversation_id)),
        output_dir=output_dir,
        validate=validate,
        refusal=refusal,
        # The offline model is paced like the chat so a demo run's steps are watchable.
        provider_for=lambda kind: get_provider(
            kind, token_delay_s=get_settings().chat_token_delay_s
        ),
    )


def _conversation_loader(user_id: int, current: int | None) -> Callable[[str], list[ChatMessage]]:
    """Session id → that conversation's shown branch, for this user only."""

    def load(session_id: str) -> list[ChatMessage]:
        key = str(session_id or "").strip()
        if key in ("", "current", "chat") and current is not None:
            cid = current
        elif key.isdigit():
            cid = int(key)
        else:
            return []
        with session_scope() as session:
            try:
                shown = chat.thread(session, user_id, cid, limit=200).messages
            except NotFound:
                return []
        return [
            ChatMessage("user" if m.role == "user" else "assistant", m.content)
            for m in shown
            if m.content and m.status != "streaming"
        ]

    return load


async def run_draft_offline(user_id: int, path: Path) -> str:
    """Try a freshly generated pipeline on the offline model; a sentence saying how it went."""
    from elexirion_app.pipelines.validate import ensure_valid
    from elexirion_app.providers.mock import MockProvider

    offline = MockProvider()
    try:
        doc = await in_cpu_thread(user_id, load_file, path)
        await in_cpu_thread(user_id, ensure_valid, doc)
        outcome = await run_pipeline(
            doc,
            provider_for=lambda _kind: offline,
            workspace=await in_file_thread(workspace.workspace_dir, user_id),
            output_dir=await in_file_thread(output_dir_for, user_id, "drafts"),
            inputs={},
            validate=False,
        )
    except ElexirionError as exc:
        return f"could not start: {exc.user_message}"
    if outcome.succeeded:
        return f"succeeded ({len(outcome.steps)} steps)"
    return f"failed: {outcome.error}"


def report_markdown(outcome: RunOutcome, progress: RunProgress | None) -> str:
    """A readable report of a finished run for the chat."""
    title = outcome.pipeline or (progress.pipeline if progress else "pipeline")
    lines = [f"### {title} — {outcome.status}"]
    if outcome.error:
        lines.append(f"\n**Error:** {outcome.error}")
    final = _final_text(outcome)
    if final:
        lines += ["", final]
    lines += ["", "| step | status | tokens | cost |", "| --- | --- | ---: | ---: |"]
    for s in progress.steps if progress else []:
        lines.append(f"| {s.name} | {s.status} | {s.tokens:,} | {usd(s.cost)} |")
    u = outcome.usage
    lines += [
        "",
        f"**Total:** {u.input:,} input + {u.output:,} output tokens"
        + (f" (+{u.cache_read:,} cache read)" if u.cache_read else "")
        + f", {usd(outcome.cost)}.",
    ]
    return "\n".join(lines)


def _final_text(outcome: RunOutcome) -> str:
    for result in reversed(list(outcome.steps.values())):
        text = _preview_full(result)
        if text:
            return text
    return ""


def _preview_full(result: Any) -> str:
    if isinstance(result, dict) and not result.get("skipped"):
        for key in ("text", "content", "combined_results"):
            if isinstance(result.get(key), str) and result[key].strip():
                return str(result[key])
    return ""
