"""core.logs: one JSON object per line with the ids in context; a prompt, a reply or a key
never reaches a line, even logged right beside it; the engine's run events and a booked LLM
call are logged with their figures (issue 10, item 3)."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from elexirion_app.core import logs, metrics
from elexirion_app.core.errors import BudgetExceeded, ConfigError
from elexirion_app.core.types import LLMRequest
from elexirion_app.pipelines.executor import run_pipeline
from elexirion_app.providers.metered import MeteredProvider, call_context
from tests.unit.core.test_metrics import ATTEMPT, FakeProvider, StubMeter, drain
from tests.unit.pipelines.engine_fakes import CountingProvider, doc

SECRET = "TOP-SECRET-PROMPT-4242 the user's confidential text"
KEY = "elx_abcdefghijklmnopqrstuvwxyz0123456789ABCD"


@pytest.fixture
def stream() -> Iterator[io.StringIO]:
    out = io.StringIO()
    logs.configure(stream=out, env={"ELEXIRION_LOG_FORMAT": "json"})
    metrics.reset()
    yield out
    logs.unconfigure()
    metrics.reset()


def lines(out: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.getvalue().splitlines()]


async def test_a_booked_call_is_one_json_line_with_figures_and_ids_and_no_prompt(
    stream: io.StringIO,
) -> None:
    log = logging.getLogger("elexirion_app.tests")
    provider = MeteredProvider(FakeProvider([ATTEMPT]), StubMeter("0.0123"))
    with call_context(caller="chat", user_id=7, conversation_id=12):
        log.info("about to call", extra={"prompt": SECRET, "text": SECRET, "api_key": KEY})
        await drain(provider, LLMRequest.from_prompt(SECRET, model="claude-test-1"))
        log.info("called", extra={"messages": [SECRET], "content": SECRET, "password": SECRET})
    raw = stream.getvalue()
    assert SECRET not in raw and "TOP-SECRET" not in raw and KEY not in raw
    records = lines(stream)  # every line parses
    assert records[0]["message"] == "about to call"
    assert records[0]["prompt_chars"] == len(SECRET)
    assert records[0]["user_id"] == 7 and records[0]["conversation_id"] == 12
    call = next(r for r in records if r.get("event") == "llm_call")
    assert call["level"] == "info" and call["logger"] == "elexirion_app.providers.metered"
    assert call["model"] == "claude-test-1" and call["provider"] == "claude"
    assert call["caller"] == "chat" and call["status"] == "ok"
    assert call["tokens"]["input"] == 100 and call["tokens"]["thinking"] == 7
    assert call["cost_usd"] == "0.0123" and call["latency_ms"] == 1500.0
    assert call["ttft_ms"] == 300.0 and call["user_id"] == 7
    assert "time" in call


async def test_run_started_step_finished_and_run_finished_are_logged(
    stream: io.StringIO, tmp_path: Path
) -> None:
    yaml_text = f"""
workflow:
  name: logged
  steps:
    - name: first
      type: claude
      prompt:
        - type: static
          content: "{SECRET}"
"""
    outcome = await run_pipeline(
        doc(yaml_text, base_dir=tmp_path),
        provider_for=CountingProvider(),
        inputs={},
        workspace=tmp_path / "ws",
        output_dir=tmp_path / "out",
    )
    assert outcome.status == "succeeded"
    assert "TOP-SECRET" not in stream.getvalue()
    events = [(r.get("event"), r.get("run_id"), r.get("step")) for r in lines(stream)]
    run_id = outcome.run_id
    assert ("run_started", run_id, None) in events
    assert ("step_finished", run_id, "first") in events
    assert events[-1] == ("run_finished", run_id, None)
    finished = lines(stream)[-1]
    assert finished["status"] == "succeeded" and "cost_usd" in finished


async def test_a_budget_refusal_is_logged_with_its_numbers(stream: io.StringIO) -> None:
    refusal = BudgetExceeded(
        scope="run",
        cap=Decimal("0.5"),
        spent=Decimal("0.4"),
        reserved=Decimal("0.05"),
        estimate=Decimal("0.1"),
    )
    provider = MeteredProvider(FakeProvider([ATTEMPT]), StubMeter(refuse=refusal))
    with call_context(caller="step", run_id="r-9", step="s1"), pytest.raises(BudgetExceeded):
        await drain(provider, LLMRequest.from_prompt(SECRET, model="claude-test-1"))
    assert "TOP-SECRET" not in stream.getvalue()
    (line,) = [r for r in lines(stream) if r.get("event") == "budget_refused"]
    assert line["scope"] == "run" and line["cap_usd"] == 0.5 and line["estimate_usd"] == 0.1
    assert line["run_id"] == "r-9" and line["step"] == "s1" and line["caller"] == "step"
    assert "user_id" not in line  # unknown ids are left out, not null


def test_json_lines_are_ascii_and_keep_every_value(stream: io.StringIO) -> None:
    """orjson writes UTF-8; a line is escaped to ASCII (valid JSON on any stream) and a
    datetime, a Decimal and a non-string key come out as before."""
    from datetime import UTC, datetime

    when = datetime(2026, 12, 3, 9, 0, 1, 250000, tzinfo=UTC)
    log = logging.getLogger("elexirion_app.x")
    log.info(
        "pipeline %s",
        "análisis 🚀",
        extra={"event": "e", "at": when, "cost_usd": Decimal("0.0012"), "by": {1: "a"}},
    )
    log.info("plain", extra={"event": "plain"})
    # What orjson refuses is written by the standard encoder (the line is not lost).
    odd_name = b"caf\xe9.yaml".decode(errors="surrogateescape")  # as os.scandir returns it
    log.info("file %s", odd_name, extra={"event": "odd", "big": 2**64, "small": -(2**63) - 1})
    raw = stream.getvalue().splitlines()
    assert len(raw) == 3 and all(line.isascii() for line in raw)
    first, second, third = lines(stream)
    assert third["message"] == f"file {odd_name}" and third["event"] == "odd"
    assert third["big"] == 2**64 and third["small"] == -(2**63) - 1
    assert first["message"] == "pipeline análisis 🚀"
    assert first["at"] == "2026-12-03T09:00:01.250000+00:00"
    assert first["cost_usd"] == "0.0012" and first["by"] == {"1": "a"}
    assert first["level"] == "info" and first["logger"] == "elexirion_app.x"
    assert second["message"] == "plain" and "time" in second


def test_text_format_carries_the_ids() -> None:
    out = io.StringIO()
    logs.configure(stream=out, env={"ELEXIRION_LOG_FORMAT": "text"})
    try:
        with logs.bind(run_id="r-1", step="s"):
            logging.getLogger("elexirion_app.x").info("hello %s", "there")
    finally:
        logs.unconfigure()
    line = out.getvalue().strip()
    assert "INFO elexirion_app.x: hello there" in line and line.endswith("[run_id=r-1 step=s]")


def test_the_format_follows_the_environment() -> None:
    assert logs.chosen_format({"REFLEX_ENV_MODE": "prod"}) == "json"
    assert logs.chosen_format({"REFLEX_ENV_MODE": "dev"}) == "text"
    assert logs.chosen_format({"REFLEX_ENV_MODE": "prod", "ELEXIRION_LOG_FORMAT": "text"}) == "text"
    with pytest.raises(ConfigError):
        logs.chosen_format({"ELEXIRION_LOG_FORMAT": "xml"})
    with pytest.raises(ConfigError):
        logs.chosen_level({"ELEXIRION_LOG_LEVEL": "LOUD"})
    assert logs.chosen_level({"ELEXIRION_LOG_LEVEL": "debug"}) == logging.DEBUG


def test_the_command_line_leaves_a_configured_root_alone() -> None:
    root = logging.getLogger()
    # pytest's capture handlers are on the root: like logging.basicConfig, nothing is added
    assert root.handlers
    assert logs.configure(logger="", default_format="text") is None
    assert not any(getattr(h, "_elexirion_handler", False) for h in root.handlers)
