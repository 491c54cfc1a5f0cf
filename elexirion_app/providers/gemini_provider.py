"""Gemini through ``google.genai`` (``client.aio.models.generate_content_stream``).

Retries and attempt records
---------------------------
genai's own retry (``HttpRetryOptions``, tenacity) neither honours ``Retry-After`` nor exposes
a per-attempt hook, and it cannot retry failures after the response headers. So the SDK is
configured with ``retry_options=HttpRetryOptions(attempts=1)`` (no SDK retry, and no hidden
implicit aiohttp retry either) and this provider owns the policy, the same one the Anthropic
SDK applies (``providers.retry.RetryPolicy``): 408/409/429/5xx, connection errors, timeouts and
mid-stream failures are retried up to ``max_retries`` times, honouring ``retry-after`` (and
Google's ``RetryInfo.retryDelay``), else exponential backoff with jitter, capped. Every HTTP
attempt yields one ``attempt`` event; a failed attempt that had already streamed text carries
``discard_partial=True`` (drop the deltas since the previous ``attempt`` event).

``HttpOptions.timeout`` (milliseconds) bounds each attempt; an idle timeout between chunks
(``idle_timeout_s``, default the timeout) catches stalled streams. A stream that ends without a
``finishReason`` is truncated (``ProviderResponseError``, retried).

Usage: the last ``usage_metadata`` wins (each chunk carries running totals): ``input`` =
prompt - cached, ``cache_read`` = cached, ``output`` = candidates, ``thinking`` = thoughts.

Functions (``request.functions``) are declared with their JSON schemas, automatic function
calling is disabled, and calls come back as ``LLMResponse.function_calls``. A
``request.response_schema`` asks for JSON (``response_mime_type=application/json`` +
``response_json_schema``) and the parsed answer is ``LLMResponse.structured``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from elexirion_app.core import pricing
from elexirion_app.core.errors import (
    ProviderAuthError,
    ProviderConnectionError,
    ProviderError,
    ProviderOverloaded,
    ProviderResponseError,
    ProviderTimeout,
    RateLimited,
)
from elexirion_app.core.models import resolve_model
from elexirion_app.core.types import FunctionCall, LLMRequest, LLMResponse, StreamEvent, Usage
from elexirion_app.providers.retry import (
    RETRYABLE_STATUS,
    RetryPolicy,
    attempt_event,
    parse_retry_after,
)

log = logging.getLogger(__name__)

PROVIDER = "gemini"
API_VERSION = "v1beta"  # the Gemini API version the SDK uses by default
_DELAY_RE = re.compile(r"^\s*([0-9.]+)\s*s\s*$")


@dataclass
class _Attempt:
    text: list[str] = field(default_factory=list)
    calls: list[FunctionCall] = field(default_factory=list)
    usage: Usage = Usage()
    finish_reason: str | None = None
    model_version: str | None = None
    emitted: bool = False


class _Failed(Exception):
    """An attempt failed; ``retryable`` says whether the policy may try again."""

    def __init__(self, error: ProviderError, retryable: bool, mid_stream: bool) -> None:
        super().__init__(error.message)
        self.error = error
        self.retryable = retryable
        self.mid_stream = mid_stream


class GeminiProvider:
    """Live Gemini. ``stream(request)`` yields deltas, usage, attempts and ``done``."""

    name = "gemini"
    offline = False

    def __init__(
        self,
        api_key: str,
        base_url: str | None = None,
        timeout_s: float = 120.0,
        max_retries: int = 2,
        *,
        idle_timeout_s: float | None = None,
        retry_base_delay_s: float = 0.5,
        retry_max_delay_s: float = 8.0,
    ) -> None:
        from google import genai
        from google.genai import types

        self._genai = genai
        self._types = types
        self.timeout_s = timeout_s
        self.max_retries = max_retries
        self.idle_timeout_s = idle_timeout_s
        self.policy = RetryPolicy(max_retries, retry_base_delay_s, retry_max_delay_s)
        self.client = genai.Client(
            api_key=api_key,
            http_options=types.HttpOptions(
                base_url=base_url,
                api_version=API_VERSION,
                timeout=int(timeout_s * 1000),
                retry_options=types.HttpRetryOptions(attempts=1),
            ),
        )

    # --- request building ----------------------------------------------------------------

    def _config(self, request: LLMRequest, timeout_s: float) -> Any:
        t = self._types
        cfg: dict[str, Any] = {
            "max_output_tokens": request.max_tokens,
            "http_options": t.HttpOptions(
                api_version=API_VERSION,
                timeout=int(timeout_s * 1000),
                retry_options=t.HttpRetryOptions(attempts=1),
            ),
        }
        if request.temperature is not None:
            cfg["temperature"] = request.temperature
        if request.top_p is not None:
            cfg["top_p"] = request.top_p
        if request.top_k is not None:
            cfg["top_k"] = float(request.top_k)
        if request.system:
            cfg["system_instruction"] = request.system
        if request.functions:
            cfg["tools"] = [
                t.Tool(
                    function_declarations=[
                        t.FunctionDeclaration(
                            name=f.name,
                            description=f.description or None,
                            parameters_json_schema=dict(f.parameters) if f.parameters else None,
                        )
                        for f in request.functions
                    ]
                )
            ]
            cfg["automatic_function_calling"] = t.AutomaticFunctionCallingConfig(disable=True)
        if request.response_schema is not None:
            cfg["response_mime_type"] = "application/json"
            cfg["response_json_schema"] = dict(request.response_schema)
        return t.GenerateContentConfig(**cfg)

    def _contents(self, request: LLMRequest) -> list[Any]:
        t = self._types
        return [
            t.Content(
                role="model" if m.role == "assistant" else "user",
                parts=[t.Part(text=m.content)],
            )
            for m in request.messages
        ]

    # --- the public stream -------------------------------------------------------------

    async def stream(self, request: LLMRequest) -> AsyncIterator[StreamEvent]:
        started = time.perf_counter()
        model = resolve_model(request.model, "gemini").model_id
        max_retries = self.max_retries if request.max_retries is None else request.max_retries
        timeout_s = request.timeout_s or self.timeout_s
        idle_s = self.idle_timeout_s or timeout_s
        config = self._config(request, timeout_s)
        contents = self._contents(request)
        result: _Attempt | None = None
        attempt = 0
        while True:
            attempt += 1
            state = _Attempt()
            attempt_started = time.perf_counter()
            try:
                async for event in self._attempt(model, contents, config, idle_s, state):
                    yield event
            except _Failed as failed:
                err = failed.error
                yield attempt_event(
                    attempt=attempt,
                    status=err.status if not failed.mid_stream else 200,
                    error=f"{type(err).__name__}: {err.message}",
                    usage=state.usage,
                    latency_ms=(time.perf_counter() - attempt_started) * 1000,
                    model=model,
                    discard_partial=state.emitted,
                    retry_after_s=err.retry_after_s,
                )
                if not failed.retryable or attempt > max_retries:
                    err.attempts = attempt
                    raise err from failed
                delay = self.policy.delay(attempt - 1, err.retry_after_s)
                log.info("gemini attempt %d failed (%s); retrying in %.2fs", attempt, err, delay)
                await asyncio.sleep(delay)
                continue
            yield attempt_event(
                attempt=attempt,
                status=200,
                error=None,
                usage=state.usage,
                latency_ms=(time.perf_counter() - attempt_started) * 1000,
                model=model,
            )
            result = state
            break

        text = "".join(result.text)
        structured: Any = None
        if request.response_schema is not None:
            try:
                structured = json.loads(text) if text.strip() else None
            except ValueError as exc:
                raise ProviderResponseError(
                    "Gemini's structured answer is not valid JSON", provider=PROVIDER
                ) from exc
        response = LLMResponse(
            text=text,
            model=model,
            usage=result.usage,
            cost=pricing.cost(model, result.usage),
            latency_ms=(time.perf_counter() - started) * 1000,
            stop_reason=(result.finish_reason or "").lower() or None,
            function_calls=tuple(result.calls),
            structured=structured,
        )
        yield StreamEvent("done", response=response)

    async def _attempt(
        self, model: str, contents: list[Any], config: Any, idle_s: float, state: _Attempt
    ) -> AsyncIterator[StreamEvent]:
        try:
            chunks = await asyncio.wait_for(
                self.client.aio.models.generate_content_stream(
                    model=model, contents=contents, config=config
                ),
                idle_s,
            )
        except Exception as exc:
            raise self._failure(exc, mid_stream=False) from exc
        iterator = chunks.__aiter__()
        mid = False
        try:
            while True:
                try:
                    chunk = await asyncio.wait_for(iterator.__anext__(), idle_s)
                except StopAsyncIteration:
                    break
                mid = True
                if chunk.usage_metadata is not None:
                    state.usage = _usage(chunk.usage_metadata)
                    yield StreamEvent("usage", usage=state.usage)
                if chunk.model_version:
                    state.model_version = chunk.model_version
                for cand in (chunk.candidates or [])[:1]:
                    if cand.finish_reason is not None:
                        state.finish_reason = _enum_name(cand.finish_reason)
                    parts = cand.content.parts if cand.content and cand.content.parts else []
                    for part in parts:
                        if part.thought:
                            continue
                        if part.text:
                            state.text.append(part.text)
                            state.emitted = True
                            yield StreamEvent("delta", text=part.text)
                        if part.function_call is not None and part.function_call.name:
                            call = FunctionCall(
                                part.function_call.name, dict(part.function_call.args or {})
                            )
                            state.calls.append(call)
                            yield StreamEvent(
                                "tool_call",
                                data={"name": call.name, "input": dict(call.arguments)},
                            )
        except _Failed:
            raise
        except Exception as exc:
            raise self._failure(exc, mid_stream=mid) from exc
        finally:
            aclose = getattr(iterator, "aclose", None)
            if aclose is not None:
                try:
                    await aclose()
                except Exception:
                    log.debug("closing the gemini stream failed", exc_info=True)
        if state.finish_reason is None:
            raise _Failed(
                ProviderResponseError(
                    "Gemini's stream ended without a finish reason (truncated)",
                    provider=PROVIDER,
                ),
                retryable=True,
                mid_stream=True,
            )

    # --- error mapping -------------------------------------------------------------------

    def _failure(self, exc: BaseException, *, mid_stream: bool) -> _Failed:
        """SDK / transport exception → typed error + whether to retry."""
        errors = self._genai.errors
        if isinstance(exc, errors.APIError):
            code = int(exc.code or 0)
            retry_after = _retry_after(exc)
            status = (exc.status or "").upper()
            msg = f"Gemini answered {code} {status}".strip()
            error: ProviderError
            if code == 429:
                error = RateLimited(msg, provider=PROVIDER, status=code, retry_after_s=retry_after)
            elif code == 503 or status == "UNAVAILABLE":
                error = ProviderOverloaded(
                    msg, provider=PROVIDER, status=code, retry_after_s=retry_after
                )
            elif code in (401, 403):
                error = ProviderAuthError(msg, provider=PROVIDER, status=code)
            elif code in (408, 504):
                error = ProviderTimeout(msg, provider=PROVIDER, status=code)
            else:
                error = ProviderResponseError(
                    msg, provider=PROVIDER, status=code, retry_after_s=retry_after
                )
            return _Failed(error, code in RETRYABLE_STATUS or mid_stream, mid_stream)
        if isinstance(exc, TimeoutError):
            return _Failed(ProviderTimeout(provider=PROVIDER), True, mid_stream)
        if _is_connection_error(exc):
            return _Failed(ProviderConnectionError(provider=PROVIDER), True, mid_stream)
        log.warning("unexpected error from the gemini stream", exc_info=exc)
        return _Failed(
            ProviderResponseError(
                f"Gemini sent an invalid answer ({type(exc).__name__})", provider=PROVIDER
            ),
            mid_stream,
            mid_stream,
        )


def _is_connection_error(exc: BaseException) -> bool:
    try:
        import aiohttp

        if isinstance(exc, aiohttp.ClientError):
            return True
    except ImportError:  # pragma: no cover - aiohttp is installed with genai here
        pass
    try:
        import httpx

        if isinstance(exc, httpx.TransportError):
            return True
    except ImportError:  # pragma: no cover
        pass
    return isinstance(exc, ConnectionError | OSError)


def _usage(meta: Any) -> Usage:
    prompt = int(meta.prompt_token_count or 0)
    cached = int(meta.cached_content_token_count or 0)
    return Usage(
        input=max(0, prompt - cached),
        output=int(meta.candidates_token_count or 0),
        cache_read=cached,
        thinking=int(meta.thoughts_token_count or 0),
    )


def _enum_name(value: Any) -> str:
    return str(getattr(value, "name", None) or getattr(value, "value", None) or value)


def _retry_after(exc: Any) -> float | None:
    """``retry-after`` header, else ``google.rpc.RetryInfo.retryDelay`` ("13s") in the body."""
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None)
    found = parse_retry_after(headers) if headers is not None else None
    if found is not None:
        return found
    details = getattr(exc, "details", None)
    error = details.get("error", details) if isinstance(details, Mapping) else None
    items = error.get("details") if isinstance(error, Mapping) else None
    for item in items or []:
        if isinstance(item, Mapping) and isinstance(item.get("retryDelay"), str):
            m = _DELAY_RE.match(item["retryDelay"])
            if m:
                return float(m.group(1))
    return None
