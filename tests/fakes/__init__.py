"""Fake model servers on 127.0.0.1 that speak the real wire protocols (for the real SDKs).

- ``fake_anthropic.FakeAnthropic``: Messages API SSE (``POST /v1/messages``).
- ``fake_gemini.FakeGemini``: ``:streamGenerateContent?alt=sse`` JSON chunks.

Both are scriptable per test with a queue of replies (normal answers, tool turns, error
statuses with headers, resets, stalls, truncated streams, mid-stream error events) and record
every request received. Use them inside a running event loop (``await srv.start()``) or from
sync code in a background thread (``srv.start_in_thread()``).
"""

from tests.fakes.base import FakeServer, Fault, Hang, Reset, Status

__all__ = ["FakeServer", "Fault", "Hang", "Reset", "Status"]
