"""Structured logs: one JSON object per line (or plain text), configured in one place.

``configure()`` is called once at start: by the served app (``api.http.app.build`` when the
reflex CLI runs it) and by the command line. ``ELEXIRION_LOG_FORMAT=json|text`` chooses the
format (JSON by default when Reflex runs in prod mode, text otherwise),
``ELEXIRION_LOG_LEVEL`` the level (INFO; the command line WARNING).

Every record gets the ids known where it was logged — ``run_id``, ``step``, ``user_id``,
``conversation_id`` — from ``bind(...)`` (a context variable: it follows asyncio tasks) and
from the sources registered with ``add_context_source`` (the metered provider's call
context). Fields that could carry a prompt, message text or a secret (``prompt``, ``text``,
``content``, ``messages``, ``api_key``, ``password``, ``authorization``, ...) are dropped from
every record whatever its level: only their length is kept. Key events are logged with an
``event`` field (``run_started``, ``llm_call``, ``budget_refused``, ``login_failed``, ...).
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, TextIO

from pythonjsonlogger.json import JsonEncoder
from pythonjsonlogger.orjson import OrjsonFormatter

from elexirion_app.core.errors import ConfigError

FORMATS = ("json", "text")
ID_FIELDS = ("run_id", "step", "user_id", "conversation_id")
# Never written out: a prompt, a reply, a message, a key, a password.
SECRET_FIELDS = frozenset(
    {
        "prompt",
        "prompts",
        "system",
        "text",
        "content",
        "message_text",
        "messages",
        "reply",
        "body",
        "api_key",
        "key",
        "password",
        "secret",
        "token",
        "authorization",
        "cookie",
    }
)
_HANDLER_MARK = "_elexirion_handler"

_IDS: ContextVar[Mapping[str, Any] | None] = ContextVar("elx_log_ids", default=None)
_SOURCES: list[Callable[[], Mapping[str, Any]]] = []


@contextmanager
def bind(**ids: Any) -> Iterator[None]:
    """Records logged inside carry these ids (``None`` values are left out)."""
    merged = {**(_IDS.get() or {}), **{k: v for k, v in ids.items() if v is not None}}
    token = _IDS.set(merged)
    try:
        yield
    finally:
        _IDS.reset(token)


def add_context_source(source: Callable[[], Mapping[str, Any]]) -> None:
    """``source()`` is asked for ids on every record (e.g. the metered call context)."""
    if source not in _SOURCES:
        _SOURCES.append(source)


def current_ids() -> dict[str, Any]:
    ids: dict[str, Any] = {}
    for source in _SOURCES:
        ids.update({k: v for k, v in source().items() if v is not None and v != ""})
    ids.update(_IDS.get() or {})
    return {k: ids[k] for k in ID_FIELDS if k in ids}


class ContextFilter(logging.Filter):
    """Adds the ids in context to a record and drops its secret-carrying fields."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name, value in current_ids().items():
            if getattr(record, name, None) is None:
                setattr(record, name, value)
        for name in SECRET_FIELDS.intersection(record.__dict__):
            value = record.__dict__.pop(name)
            record.__dict__[f"{name}_chars"] = len(str(value)) if value is not None else 0
        return True


class _Json(OrjsonFormatter):
    """python-json-logger on orjson (a run logs ~10 lines: its start and end, each step,
    each provider attempt, the audit row): a step_finished line 33 -> 24 µs of CPU."""

    def jsonify_log_record(self, log_data: Any) -> str:
        try:
            text = super().jsonify_log_record(log_data)
        except TypeError:  # orjson.JSONEncodeError: an int beyond 64 bits, a lone surrogate
            # (a non-UTF-8 file name), a datetime.time with a zone, deep nesting: the standard
            # encoder writes them, so the line is not lost.
            return json.dumps(log_data, cls=JsonEncoder)
        if text.isascii():
            return text
        # orjson writes UTF-8; escaped like json.dumps, a line stays valid JSON on a stream
        # that cannot encode it (an ASCII stderr would backslash-replace the characters).
        return json.dumps(json.loads(text))

    def add_fields(
        self,
        log_data: dict[str, Any],
        record: logging.LogRecord,
        message_dict: dict[str, Any],
    ) -> None:
        super().add_fields(log_data, record, message_dict)
        log_data.setdefault("level", record.levelname.lower())
        log_data.setdefault("logger", record.name)
        for name in SECRET_FIELDS.intersection(log_data):
            log_data.pop(name)
        for name in [k for k, v in log_data.items() if v is None]:  # unknown ids: left out
            log_data.pop(name)


class _Text(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        ids = " ".join(
            f"{k}={getattr(record, k)}" for k in ID_FIELDS if getattr(record, k, None) is not None
        )
        return f"{line} [{ids}]" if ids else line


def chosen_format(env: Mapping[str, str], default: str | None = None) -> str:
    text = (env.get("ELEXIRION_LOG_FORMAT") or "").strip().lower()
    if not text:
        return default or ("json" if env.get("REFLEX_ENV_MODE") == "prod" else "text")
    if text not in FORMATS:
        raise ConfigError(f"ELEXIRION_LOG_FORMAT={text!r}: write json or text")
    return text


def chosen_level(env: Mapping[str, str], default: int = logging.INFO) -> int:
    text = (env.get("ELEXIRION_LOG_LEVEL") or "").strip().upper()
    if not text:
        return default
    level = logging.getLevelName(text)
    if not isinstance(level, int):
        raise ConfigError(f"ELEXIRION_LOG_LEVEL={text!r}: write DEBUG, INFO, WARNING or ERROR")
    return level


def formatter(fmt: str) -> logging.Formatter:
    if fmt == "json":
        return _Json(
            "%(message)s",
            rename_fields={"levelname": "level", "name": "logger"},
            timestamp="time",
        )
    return _Text("%(asctime)s %(levelname)s %(name)s: %(message)s")


def configure(
    *,
    logger: str = "elexirion_app",
    default_format: str | None = None,
    default_level: int = logging.INFO,
    stream: TextIO | None = None,
    env: Mapping[str, str] | None = None,
) -> logging.Handler | None:
    """Install the one handler on ``logger`` (``""``: the root), replacing an earlier one.

    The app configures ``elexirion_app`` (Reflex's own loggers keep their sinks) and stops
    its records from reaching the root; the command line configures the root, unless
    something else already did (like ``logging.basicConfig``: e.g. pytest's capture), and
    then returns None.
    """
    env = os.environ if env is None else env
    fmt = chosen_format(env, default_format)
    target = logging.getLogger(logger or None)
    if not logger and any(not getattr(h, _HANDLER_MARK, False) for h in target.handlers):
        return None
    for old in [h for h in target.handlers if getattr(h, _HANDLER_MARK, False)]:
        target.removeHandler(old)
    handler = logging.StreamHandler(stream or sys.stderr)
    setattr(handler, _HANDLER_MARK, True)
    handler.setFormatter(formatter(fmt))
    handler.addFilter(ContextFilter())
    target.addHandler(handler)
    target.setLevel(chosen_level(env, default_level))
    if logger:
        target.propagate = False
    return handler


def unconfigure(logger: str = "elexirion_app") -> None:
    """Remove the handler ``configure`` installed (tests)."""
    target = logging.getLogger(logger or None)
    for old in [h for h in target.handlers if getattr(h, _HANDLER_MARK, False)]:
        target.removeHandler(old)
    if logger:
        target.propagate = True
        target.setLevel(logging.NOTSET)


_RUN_LOG = logging.getLogger("elexirion_app.runs")


def run_event(event: Any) -> None:
    """The log line of a run's lifecycle event (``core.events``): run started, step finished,
    run finished — ids, status, tokens, cost and duration; never inputs, results or errors'
    text (they may quote a prompt)."""
    kind = type(event).__name__
    if kind == "RunStarted":
        _RUN_LOG.info(
            "run started: %s",
            event.pipeline,
            extra={
                "event": "run_started",
                "run_id": event.run_id,
                "pipeline": event.pipeline,
                "steps": len(event.step_names),
            },
        )
    elif kind == "StepFinished":
        _RUN_LOG.info(
            "step finished: %s %s",
            event.step,
            event.status,
            extra={
                "event": "step_finished",
                "run_id": event.run_id,
                "step": event.step,
                "status": event.status,
                "tokens": event.usage.to_dict(),
                "cost_usd": str(event.cost),
                "latency_ms": event.latency_ms,
            },
        )
    elif kind == "RunFinished":
        _RUN_LOG.log(
            logging.INFO if event.status == "succeeded" else logging.WARNING,
            "run finished: %s",
            event.status,
            extra={
                "event": "run_finished",
                "run_id": event.run_id,
                "status": event.status,
                "tokens": event.usage.to_dict(),
                "cost_usd": str(event.cost),
            },
        )
