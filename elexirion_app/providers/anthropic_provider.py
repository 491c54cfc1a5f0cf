"""Claude through the Anthropic Messages API (streaming), with our workspace tool loop.

Retries and attempt records
---------------------------
One retry budget per API call (per turn of the tool loop): at most ``max_retries + 1`` HTTP
requests, whatever fails. HTTP-level retries are the SDK's (``AsyncAnthropic(max_retries=...)``):
it retries 408/409/429/5xx/529 and connection errors, honours ``retry-after-ms``/``retry-after``
and ``x-should-retry``, and backs off exponentially with jitter. To still write one LLM-call
record per HTTP attempt, each call runs on ``client.with_middleware(recorder)``: the SDK invokes
middleware once per attempt *inside* its retry loop, so the recorder sees (and counts) every
attempt (status, latency, retry-after) and every connection error, and we emit one ``attempt``
event for each.

The SDK cannot retry what fails after the 200 response headers: an ``event: error`` in the
stream, a stream that ends without ``message_stop``, a connection reset mid-body, or a stall
longer than the idle timeout. Those we retry ourselves, with the *rest* of the budget: the next
``messages.create`` gets ``max_retries = budget - requests already made`` for the SDK, so SDK
retries and ours never multiply (formerly each of our retries got a fresh SDK budget: 9
requests for ``max_retries=2``). Our wait honours the error's ``retry_after_s``, else the same
backoff. If text deltas of the failed attempt were already emitted, its ``attempt`` event
carries ``discard_partial=True``: consumers drop the deltas received since the previous
``attempt`` event; the next attempt streams that turn again. The final ``done`` response is
always authoritative.

When every retry is spent the typed errors of ``core.errors`` are raised: ``RateLimited``
(429, with ``retry_after_s``), ``ProviderOverloaded`` (529 / ``overloaded_error``),
``ProviderTimeout``, ``ProviderConnectionError``, ``ProviderAuthError`` (401/403) and
``ProviderResponseError`` (truncated, malformed, error event, other 4xx).

Extended thinking
-----------------
A request with a ``thinking_budget`` (``providers.base.ThinkingRequest``) sends
``thinking={"type": "enabled", "budget_tokens": N}`` (``max_tokens`` raised to ``N +
max_tokens`` when it would not exceed the budget). ``thinking`` blocks (``thinking_delta`` +
``signature_delta``) and ``redacted_thinking`` blocks are kept out of the answer text and sent
back verbatim in the tool loop, as the API requires. Thinking tokens go to ``Usage.thinking``
and out of ``Usage.output`` (see ``_split_thinking``).

Tool loop
---------
``request.allowed_tools`` minus ``disallowed_tools`` (of Read, Glob, Grep, LS, Write, Edit) are
offered when the request has a workspace. On ``stop_reason == "tool_use"`` the tools run
(``providers.tools``), their results go back as ``tool_result`` blocks (failures as
``is_error``), and the conversation continues for at most ``request.max_turns`` API calls.
Usage and cost are summed over the turns (each turn's final usage).
``temperature``/``top_p``/``top_k`` are not sent: the Messages API of anthropic 2.x has no
sampling parameters (``messages.create`` rejects them). ``LLMResponse.text`` is the
last turn's text (earlier turns' text is preamble such as "Let me look at the file").
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

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
from elexirion_app.core.types import LLMRequest, LLMResponse, StreamEvent, Usage
from elexirion_app.providers import tools
from elexirion_app.providers.base import thinking_budget
from elexirion_app.providers.mock import estimate_tokens
from elexirion_app.providers.retry import RetryPolicy, attempt_event, parse_retry_after

if TYPE_CHECKING:
    import anthropic

log = logging.getLogger(__name__)

PROVIDER = "anthropic"


class _MidStreamError(Exception):
    """A failure after the response headers (the SDK does not retry these)."""

    def __init__(self, error: ProviderError) -> None:
        super().__init__(error.message)
        self.error = error


@dataclass
class _Turn:
    """What one successful API call (turn) produced."""

    text: str = ""
    blocks: list[dict[str, Any]] = field(default_factory=list)
    tool_uses: list[dict[str, Any]] = field(default_factory=list)
    usage: Usage = Usage()
    stop_reason: str | None = None


@dataclass
class _CallState:
    attempt: int = 0  # HTTP requests of the whole call (all turns): the attempt numbers
    turn_requests: int = 0  # HTTP requests of the current turn: the retry budget spent
    pending: list[StreamEvent] = field(default_factory=list)
    pending_started: float = 0.0


class AnthropicProvider:
    """Live Claude. ``stream(request)`` yields deltas, usage, tool events, attempts, done."""

    name = "claude"
    offline = False

    def __init__(
        self,
        api_key: str,
        base_url: str | None = None,
        timeout_s: float = 600.0,
        max_retries: int = 2,
        *,
        connect_timeout_s: float = 10.0,
        idle_timeout_s: float | None = None,
        retry_base_delay_s: float = 0.5,
        retry_max_delay_s: float = 8.0,
    ) -> None:
        import anthropic

        self._anthropic = anthropic
        self.timeout_s = timeout_s
        self.max_retries = max_retries
        self.connect_timeout_s = connect_timeout_s
        self.idle_timeout_s = idle_timeout_s
        self.policy = RetryPolicy(max_retries, retry_base_delay_s, retry_max_delay_s)
        self.client = anthropic.AsyncAnthropic(
            api_key=api_key,
            base_url=base_url,
            max_retries=max_retries,
            timeout=self._timeout(timeout_s),
        )

    def _timeout(self, seconds: float) -> anthropic.Timeout:
        return self._anthropic.Timeout(seconds, connect=min(self.connect_timeout_s, seconds))

    # --- the public stream -------------------------------------------------------------

    async def stream(self, request: LLMRequest) -> AsyncIterator[StreamEvent]:
        started = time.perf_counter()
        model = resolve_model(request.model, "claude").model_id
        offered, unavailable = tools.select_tools(request.allowed_tools, request.disallowed_tools)
        if offered and request.workspace is None:
            log.warning("claude tools %s requested without a workspace: not offered", offered)
            unavailable = [*offered, *unavailable]
            offered = []
        system = _system_prompt(request.system, unavailable)
        messages: list[dict[str, Any]] = [
            {"role": m.role, "content": m.content} for m in request.messages
        ]
        state = _CallState()
        total = Usage()
        turn_result = _Turn()
        turns = 0
        max_turns = max(1, request.max_turns) if offered else 1
        stop_reason: str | None = None
        while turns < max_turns:
            turns += 1
            turn_result = _Turn()
            async for event in self._turn_with_retries(
                request, model, system, messages, offered, state, turns, turn_result
            ):
                yield event
            total = total + turn_result.usage
            stop_reason = turn_result.stop_reason
            if stop_reason != "tool_use" or not turn_result.tool_uses:
                break
            if turns >= max_turns:
                stop_reason = "max_turns"
                break
            messages.append({"role": "assistant", "content": turn_result.blocks})
            results: list[dict[str, Any]] = []
            for use in turn_result.tool_uses:
                yield StreamEvent("tool_call", data={"name": use["name"], "input": use["input"]})
                res = await tools.run_tool(use["name"], use["input"], request.workspace, offered)
                yield StreamEvent(
                    "tool_result",
                    data={"name": use["name"], "output": res.output, "is_error": res.is_error},
                )
                block: dict[str, Any] = {
                    "type": "tool_result",
                    "tool_use_id": use["id"],
                    "content": res.output,
                }
                if res.is_error:
                    block["is_error"] = True
                results.append(block)
            messages.append({"role": "user", "content": results})
        response = LLMResponse(
            text=turn_result.text,
            model=model,
            usage=total,
            cost=pricing.cost(model, total),
            latency_ms=(time.perf_counter() - started) * 1000,
            stop_reason=stop_reason,
            turns=turns,
        )
        yield StreamEvent("done", response=response)

    # --- one turn, retried on mid-stream failures ----------------------------------------

    async def _turn_with_retries(
        self,
        request: LLMRequest,
        model: str,
        system: str | None,
        messages: list[dict[str, Any]],
        offered: list[str],
        state: _CallState,
        turn: int,
        out: _Turn,
    ) -> AsyncIterator[StreamEvent]:
        max_retries = self.max_retries if request.max_retries is None else request.max_retries
        state.turn_requests = 0
        while True:
            # the SDK may retry with what is left of this turn's budget
            sdk_retries = max(0, max_retries - state.turn_requests)
            try:
                async for event in self._one_call(
                    request, model, system, messages, offered, state, turn, out, sdk_retries
                ):
                    yield event
                return
            except _MidStreamError as exc:
                for pending in state.pending:
                    yield pending
                state.pending.clear()
                if state.turn_requests > max_retries:
                    exc.error.attempts = state.attempt
                    raise exc.error from exc
                delay = self.policy.delay(state.turn_requests - 1, exc.error.retry_after_s)
                log.info("claude mid-stream failure (%s); retrying in %.2fs", exc, delay)
                await asyncio.sleep(delay)

    async def _one_call(
        self,
        request: LLMRequest,
        model: str,
        system: str | None,
        messages: list[dict[str, Any]],
        offered: list[str],
        state: _CallState,
        turn: int,
        out: _Turn,
        max_retries: int,
    ) -> AsyncIterator[StreamEvent]:
        timeout_s = request.timeout_s or self.timeout_s
        idle_s = self.idle_timeout_s or timeout_s
        client = self.client.with_options(
            max_retries=max_retries, timeout=self._timeout(timeout_s)
        ).with_middleware(self._recorder(state, model, turn))
        params: dict[str, Any] = {
            "model": model,
            "max_tokens": request.max_tokens,
            "messages": messages,
            "stream": True,
        }
        if system:
            params["system"] = system
        if (request.temperature, request.top_p, request.top_k) != (None, None, None):
            # The Messages API of this SDK (anthropic 2.x) has no sampling parameters.
            log.debug("claude: temperature/top_p/top_k are not supported; ignored")
        if offered:
            params["tools"] = tools.tool_definitions(offered)
        budget = thinking_budget(request)
        if budget is not None:
            params["thinking"] = {"type": "enabled", "budget_tokens": budget}
            if request.max_tokens <= budget:
                # budget_tokens must be below max_tokens (thinking counts toward it): keep the
                # step's max_tokens for the answer itself
                params["max_tokens"] = budget + request.max_tokens
        try:
            sdk_stream = await client.messages.create(**params)
        except Exception as exc:
            for pending in state.pending:
                yield pending
            state.pending.clear()
            error = self._map_error(exc)
            error.attempts = state.attempt
            raise error from exc
        for pending in state.pending:
            yield pending
        state.pending.clear()

        attempt_started = state.pending_started
        raw_usage = Usage()  # as the API reports it: ``output`` includes thinking
        usage = Usage()  # thinking split out of ``output``
        thinking_parts: list[str] = []
        text_parts: list[str] = []
        blocks: dict[int, dict[str, Any]] = {}
        json_parts: dict[int, list[str]] = {}
        stop_reason: str | None = None
        emitted = False
        finished = False
        iterator = sdk_stream.__aiter__()
        try:
            while True:
                try:
                    event = await asyncio.wait_for(iterator.__anext__(), idle_s)
                except StopAsyncIteration:
                    break
                etype = getattr(event, "type", "")
                if etype == "message_start":
                    raw_usage = _merge_usage(raw_usage, event.message.usage)
                    usage = _split_thinking(raw_usage, thinking_parts)
                    yield StreamEvent("usage", usage=usage)
                elif etype == "content_block_start":
                    cb = event.content_block
                    if cb.type == "text":
                        blocks[event.index] = {"type": "text", "text": cb.text or ""}
                        if cb.text:
                            text_parts.append(cb.text)
                            emitted = True
                            yield StreamEvent("delta", text=cb.text)
                    elif cb.type == "tool_use":
                        blocks[event.index] = {
                            "type": "tool_use",
                            "id": cb.id,
                            "name": cb.name,
                            "input": {},
                        }
                        json_parts[event.index] = []
                    elif cb.type == "thinking":
                        # sent back verbatim (with its signature) in the tool loop
                        blocks[event.index] = {
                            "type": "thinking",
                            "thinking": cb.thinking or "",
                            "signature": cb.signature or "",
                        }
                        if cb.thinking:
                            thinking_parts.append(cb.thinking)
                    elif cb.type == "redacted_thinking":
                        blocks[event.index] = {"type": "redacted_thinking", "data": cb.data}
                elif etype == "content_block_delta":
                    delta = event.delta
                    if delta.type == "text_delta":
                        block = blocks.setdefault(event.index, {"type": "text", "text": ""})
                        block["text"] = block.get("text", "") + delta.text
                        text_parts.append(delta.text)
                        emitted = True
                        yield StreamEvent("delta", text=delta.text)
                    elif delta.type == "input_json_delta":
                        json_parts.setdefault(event.index, []).append(delta.partial_json)
                    elif delta.type == "thinking_delta":
                        block = blocks.setdefault(
                            event.index, {"type": "thinking", "thinking": "", "signature": ""}
                        )
                        block["thinking"] = block.get("thinking", "") + delta.thinking
                        thinking_parts.append(delta.thinking)
                    elif delta.type == "signature_delta":
                        block = blocks.setdefault(
                            event.index, {"type": "thinking", "thinking": "", "signature": ""}
                        )
                        block["signature"] = block.get("signature", "") + delta.signature
                elif etype == "message_delta":
                    raw_usage = _merge_usage(raw_usage, event.usage)
                    usage = _split_thinking(raw_usage, thinking_parts)
                    stop_reason = event.delta.stop_reason or stop_reason
                    yield StreamEvent("usage", usage=usage)
                elif etype == "message_stop":
                    finished = True
        except _MidStreamError:
            raise
        except Exception as exc:
            error = self._map_error(exc, mid_stream=True)
            raise self._mid_stream(
                state, model, turn, attempt_started, usage, emitted, error
            ) from exc
        finally:
            close = getattr(sdk_stream, "close", None)
            if close is not None:
                try:
                    await close()
                except Exception:  # closing a broken stream may fail again
                    log.debug("closing the claude stream failed", exc_info=True)
        if not finished:
            error = ProviderResponseError(
                "Claude's stream ended before message_stop (truncated)", provider=PROVIDER
            )
            raise self._mid_stream(state, model, turn, attempt_started, usage, emitted, error)

        for index, block in blocks.items():
            if block["type"] == "tool_use":
                raw = "".join(json_parts.get(index, [])) or "{}"
                try:
                    block["input"] = json.loads(raw)
                except ValueError:
                    block["input"] = {"_unparsed": raw}
        ordered = [blocks[i] for i in sorted(blocks)]
        out.text = "".join(text_parts)
        out.blocks = [b for b in ordered if b["type"] != "text" or b.get("text")]
        out.tool_uses = [b for b in ordered if b["type"] == "tool_use"]
        out.usage = usage
        out.stop_reason = stop_reason
        yield attempt_event(
            attempt=state.attempt,
            status=200,
            error=None,
            usage=usage,
            latency_ms=(time.perf_counter() - attempt_started) * 1000,
            model=model,
            turn=turn,
        )

    # --- attempt recording ---------------------------------------------------------------

    def _recorder(
        self, state: _CallState, model: str, turn: int
    ) -> Callable[[Any, Callable[[Any], Awaitable[Any]]], Awaitable[Any]]:
        """SDK middleware: runs once per HTTP attempt inside the SDK's retry loop."""

        async def record(req: Any, call_next: Callable[[Any], Awaitable[Any]]) -> Any:
            state.attempt += 1
            state.turn_requests += 1
            retries_so_far = state.turn_requests - 1
            if getattr(req, "retries_taken", retries_so_far) != retries_so_far:
                # after one of our mid-stream retries the SDK counts from 0 again
                headers = {**req.headers, "x-stainless-retry-count": str(retries_so_far)}
                req = req.copy(headers=headers)
            started = time.perf_counter()
            state.pending_started = started
            try:
                response = await call_next(req)
            except Exception as exc:
                error = self._map_error(exc)
                state.pending.append(
                    attempt_event(
                        attempt=state.attempt,
                        status=error.status,
                        error=f"{type(error).__name__}: {error.message}",
                        usage=Usage(),
                        latency_ms=(time.perf_counter() - started) * 1000,
                        model=model,
                        turn=turn,
                    )
                )
                raise
            http = getattr(response, "http_response", None)
            status = int(getattr(http, "status_code", 200) or 200)
            if status >= 400:
                retry_after = parse_retry_after(getattr(http, "headers", None))
                state.pending.append(
                    attempt_event(
                        attempt=state.attempt,
                        status=status,
                        error=f"HTTP {status}",
                        usage=Usage(),
                        latency_ms=(time.perf_counter() - started) * 1000,
                        model=model,
                        turn=turn,
                        retry_after_s=retry_after,
                    )
                )
            return response

        return record

    def _mid_stream(
        self,
        state: _CallState,
        model: str,
        turn: int,
        started: float,
        usage: Usage,
        emitted: bool,
        error: ProviderError,
    ) -> _MidStreamError:
        state.pending.append(
            attempt_event(
                attempt=state.attempt,
                status=200,
                error=f"{type(error).__name__}: {error.message}",
                usage=usage,
                latency_ms=(time.perf_counter() - started) * 1000,
                model=model,
                turn=turn,
                discard_partial=emitted,
            )
        )
        return _MidStreamError(error)

    # --- error mapping ---------------------------------------------------------------------

    def _map_error(self, exc: BaseException, *, mid_stream: bool = False) -> ProviderError:
        """SDK / transport exception → our typed error (no secrets, no prompt text)."""
        import httpx2

        a = self._anthropic
        if isinstance(exc, ProviderError):
            return exc
        if isinstance(exc, a.APIStatusError):
            status = exc.status_code
            etype = _error_type(exc.body)
            retry_after = parse_retry_after(exc.response.headers)
            if mid_stream or status == 200:
                msg = f"Claude stream error event ({etype or 'unknown'})"
                if etype == "overloaded_error":
                    return ProviderOverloaded(msg, provider=PROVIDER, status=529)
                if etype == "rate_limit_error":
                    return RateLimited(msg, provider=PROVIDER, status=429)
                return ProviderResponseError(msg, provider=PROVIDER, status=status)
            if status == 429:
                return RateLimited(provider=PROVIDER, status=429, retry_after_s=retry_after)
            if status == 529 or etype == "overloaded_error":
                return ProviderOverloaded(provider=PROVIDER, status=status)
            if status in (401, 403):
                return ProviderAuthError(provider=PROVIDER, status=status)
            if status in (408, 504):
                return ProviderTimeout(provider=PROVIDER, status=status)
            return ProviderResponseError(
                f"Claude answered HTTP {status} ({etype or 'error'})",
                provider=PROVIDER,
                status=status,
                retry_after_s=retry_after,
            )
        if isinstance(exc, a.APITimeoutError | httpx2.TimeoutException | TimeoutError):
            return ProviderTimeout(provider=PROVIDER)
        if isinstance(exc, a.APIConnectionError | httpx2.TransportError | ConnectionError):
            return ProviderConnectionError(provider=PROVIDER)
        log.warning("unexpected error from the claude stream", exc_info=exc)
        return ProviderResponseError(
            f"Claude sent an invalid answer ({type(exc).__name__})", provider=PROVIDER
        )


def _merge_usage(current: Usage, raw: Any) -> Usage:
    """Assign (never add) the cumulative usage fields that are present in ``raw``.

    ``output`` stays the API's inclusive ``output_tokens``; ``thinking`` is the API's own
    ``output_tokens_details.thinking_tokens`` when it sends one (see ``_split_thinking``).
    Cache writes are split by lifetime: ``cache_creation_input_tokens`` is their total and
    ``cache_creation.ephemeral_1h_input_tokens`` (``message_start``) the 1-hour part, priced
    apart; ``cache_write`` keeps the 5-minute rest.
    """
    if raw is None:
        return current

    def pick(name: str, old: int) -> int:
        value = getattr(raw, name, None)
        return old if value is None else int(value)

    details = getattr(raw, "output_tokens_details", None)
    reported = getattr(details, "thinking_tokens", None) if details is not None else None
    split = getattr(raw, "cache_creation", None)
    one_h = getattr(split, "ephemeral_1h_input_tokens", None) if split is not None else None
    five_m = getattr(split, "ephemeral_5m_input_tokens", None) if split is not None else None
    hour = current.cache_write_1h if one_h is None else int(one_h)
    written = current.cache_write + current.cache_write_1h
    if five_m is not None or one_h is not None:
        written = int(five_m or 0) + hour
    written = pick("cache_creation_input_tokens", written)
    return Usage(
        input=pick("input_tokens", current.input),
        output=pick("output_tokens", current.output),
        cache_read=pick("cache_read_input_tokens", current.cache_read),
        cache_write=max(written - hour, 0),
        cache_write_1h=min(hour, written),
        thinking=current.thinking if reported is None else int(reported),
    )


def _split_thinking(raw: Usage, thinking_parts: list[str]) -> Usage:
    """Our ``Usage`` from the API's: thinking tokens moved out of ``output``.

    The Messages API bills thinking as output tokens (``output_tokens`` includes them). When
    it reports ``output_tokens_details.thinking_tokens`` that figure is used; otherwise the
    thinking is estimated from the thinking text streamed (~4 characters a token, the same
    estimate as the offline model), capped at ``output_tokens``. Thinking is priced at the
    output price (``core.pricing``), so the split never changes the cost.
    """
    thinking = raw.thinking or estimate_tokens("".join(thinking_parts))
    thinking = min(thinking, raw.output)
    return Usage(
        input=raw.input,
        output=raw.output - thinking,
        cache_read=raw.cache_read,
        cache_write=raw.cache_write,
        cache_write_1h=raw.cache_write_1h,
        thinking=thinking,
    )


def _error_type(body: Any) -> str | None:
    if isinstance(body, dict):
        err = body.get("error")
        if isinstance(err, dict) and isinstance(err.get("type"), str):
            return str(err["type"])
        if isinstance(body.get("type"), str) and body["type"] != "error":
            return str(body["type"])
    return None


def _system_prompt(system: str | None, unavailable: list[str]) -> str | None:
    if not unavailable:
        return system
    note = (
        "Note: these tools are not available in this environment: "
        + ", ".join(unavailable)
        + ". Work with the tools you have."
    )
    return f"{system}\n\n{note}" if system else note
