"""Guard Reflex's ``POST /_upload`` before a single body byte is read.

Reflex's upload route trusts the ``Reflex-Client-Token`` header and reads the whole multipart
body into temporary files before any handler runs. This ASGI middleware sits in front of it:

- no live session cookie (checked in the database)      → 401, the body is never read;
- the tab token is not bound to that same session        → 403 (``services/tab_bindings``);
- ``Content-Length`` above the cap                       → 413 at once;
- the streamed body passes the cap (chunked or lying)    → 413 as soon as it does: the inner
  app sees a client disconnect, reading stops, nothing is buffered here.

Before a refusal is sent, what is left of a body of at most ``LINGER_BYTES`` is read and
dropped (for at most ``LINGER_S``), as nginx's lingering close does: a server that closes a
connection with unread data in it makes the kernel answer with a reset, and a client still
sending a 2 MB file then gets a broken connection instead of our 413. A body declared larger
than that is not read at all (the client may then see the reset: it was told nothing else
would be read).

Every other path (websockets included) passes through untouched. The cap is
``ELEXIRION_MAX_UPLOAD_BYTES`` (default 60 MB), read by ``max_upload_bytes()``; a handler
named in ``HANDLER_CAPS`` (by the end of its ``Reflex-Event-Handler`` header) has a lower cap
of its own, enforced the same way: the pipeline import takes one YAML file of at most 1 MB,
so its body is refused past that while it streams, not after 60 MB were read.
"""

from __future__ import annotations

import asyncio
import logging
import os

from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from elexirion_app.db.engine import in_db_thread, session_scope
from elexirion_app.services.accounts import auth, tab_bindings

log = logging.getLogger(__name__)

UPLOAD_PATH = "/_upload"
DEFAULT_MAX_UPLOAD_BYTES = 60 * 1024 * 1024
MAX_UPLOAD_ENV = "ELEXIRION_MAX_UPLOAD_BYTES"
# Room for the multipart framing around the file (boundaries, part headers, a file name).
MULTIPART_SLACK = 16 * 1024
LINGER_BYTES = 8 * 1024 * 1024
LINGER_S = 5.0
# Drains running at once in this process; past it a refusal is sent without one (a crowd of
# clients trickling refused bodies cannot keep more than this many answers waiting).
MAX_DRAINS = 64
_draining = 0
HANDLER_CAPS = {
    # The library's import: one pipeline file (pipeline_store.MAX_YAML_BYTES = 1,000,000).
    "library____library_state.import_files": 1_000_000 + MULTIPART_SLACK,
}


def max_upload_bytes() -> int:
    """The cap on one ``/_upload`` request body (``ELEXIRION_MAX_UPLOAD_BYTES``, default 60 MB)."""
    raw = os.environ.get(MAX_UPLOAD_ENV, "").strip()
    if not raw:
        return DEFAULT_MAX_UPLOAD_BYTES
    if not raw.isdigit() or int(raw) <= 0:
        log.warning("%s=%r is not a positive integer; using the default", MAX_UPLOAD_ENV, raw)
        return DEFAULT_MAX_UPLOAD_BYTES
    return int(raw)


def cap_for(headers: Headers) -> int:
    """The body cap of this upload: its handler's own, else the global one."""
    handler = (headers.get("reflex-event-handler") or "").strip()
    caps = [cap for suffix, cap in HANDLER_CAPS.items() if handler.endswith(suffix)]
    return min([max_upload_bytes(), *caps])


def _route_path(scope: Scope) -> str:
    path = str(scope.get("path") or "")
    root = str(scope.get("root_path") or "")
    if root and path.startswith(root):
        path = path[len(root) :]
    return path.rstrip("/") or "/"


def _user_for(token: str) -> auth.UserInfo | None:
    with session_scope() as session:
        return auth.user_for_token(session, token)


def _refusal(status: int, code: str, message: str) -> JSONResponse:
    # The body is left unread: the connection must not be reused for another request.
    return JSONResponse(
        {"error": {"code": code, "message": message}},
        status_code=status,
        headers={"connection": "close"},
    )


async def drain_body(receive: Receive, headers: Headers) -> None:
    """Read and drop the rest of a refused request's body (see the module's docstring; the
    API's body cap does the same)."""
    if "100-continue" in (headers.get("expect") or "").lower():
        # The client waits to be invited before it sends the body: reading it now would make
        # the server send "100 Continue" and invite the upload we refuse. Nothing of it is
        # in flight, so the refusal cannot meet a reset.
        return
    declared = (headers.get("content-length") or "").strip()
    if (
        declared.isascii()
        and declared.isdigit()
        and len(declared) <= 20
        and int(declared) > LINGER_BYTES
    ):
        return
    global _draining
    if _draining >= MAX_DRAINS:
        return
    _draining += 1
    left = LINGER_BYTES
    try:
        async with asyncio.timeout(LINGER_S):
            while left > 0:
                message = await receive()
                if message.get("type") != "http.request":
                    return
                left -= len(message.get("body", b""))
                if not message.get("more_body", False):
                    return
    except TimeoutError:
        return
    finally:
        _draining -= 1


def _too_large(cap: int) -> JSONResponse:
    size = f"{cap // (1024 * 1024)} MB" if cap >= 1024 * 1024 else f"{cap // 1000:,} KB"
    return _refusal(413, "too_large", f"The upload is larger than {size} in all.")


async def _check(headers: Headers, cap: int) -> JSONResponse | None:
    """The refusal for these request headers, or None when the upload may proceed."""
    cookie_token = auth.token_from_cookie_header(headers.get("cookie"))
    user = await in_db_thread(_user_for, cookie_token) if cookie_token else None
    if cookie_token is None or user is None:
        return _refusal(401, "unauthenticated", "Log in to upload files.")
    tab_token = headers.get("reflex-client-token") or ""
    bound = await tab_bindings.bound_session(tab_token)
    if bound is None or bound != auth.hash_token(cookie_token):
        log.warning("upload refused: tab token not bound to the session of user %s", user.id)
        return _refusal(403, "forbidden", "This upload does not belong to your session.")
    length = headers.get("content-length")
    if length is not None:
        length = length.strip()
        if not length.isdigit() or len(length) > 20:
            return _refusal(400, "bad_request", "The Content-Length header is not valid.")
        if int(length) > cap:
            return _too_large(cap)
    return None


def guard_uploads(app: ASGIApp) -> ASGIApp:
    """Wrap an ASGI app so that ``/_upload`` needs a session, its own tab and a size cap."""

    async def guarded(scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope.get("type") != "http"
            or _route_path(scope) != UPLOAD_PATH
            or scope.get("method") == "OPTIONS"  # CORS preflight: no body, no cookie
        ):
            await app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        cap = cap_for(headers)
        refusal = await _check(headers, cap)
        if refusal is not None:
            await drain_body(receive, headers)
            await refusal(scope, receive, send)
            return

        received = 0
        overflowed = False
        inner_started = False

        async def limited_receive() -> Message:
            nonlocal received, overflowed
            if overflowed:
                return {"type": "http.disconnect"}
            message = await receive()
            if message.get("type") == "http.request":
                received += len(message.get("body", b""))
                if received > cap:
                    overflowed = True
                    log.warning("upload refused after %d bytes (cap %d)", received, cap)
                    if not inner_started:
                        await drain_body(receive, headers)
                        await _too_large(cap)(scope, receive, send)
                    # The inner app sees a disconnect and stops reading; its answer is dropped.
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal inner_started
            if overflowed:
                return
            if message.get("type") == "http.response.start":
                inner_started = True
            await send(message)

        await app(scope, limited_receive, guarded_send)

    return guarded
