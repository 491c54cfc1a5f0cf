"""Security headers on every HTTP response (pages, static files, ``/_upload``, ``/auth``).

The Content-Security-Policy is as strict as the built frontend allows: scripts only from our
origin plus the exact inline scripts the build emitted (their SHA-256 hashes, read from the
built HTML, again whenever the build changes), no plugins, no framing, forms only to ourselves.
Styles need ``'unsafe-inline'``: Radix and Emotion inject style attributes at run time.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import re
import time
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path
from typing import Any

from elexirion_app.config import PROJECT_ROOT

log = logging.getLogger(__name__)

BUILD_DIR = PROJECT_ROOT / ".web" / "build" / "client"
_INLINE_SCRIPT = re.compile(rb"<script(?![^>]*\bsrc=)[^>]*>(.*?)</script>", re.S | re.I)

STATIC_HEADERS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "strict-origin-when-cross-origin",
    "cross-origin-opener-policy": "same-origin",
    "permissions-policy": "camera=(), microphone=(), geolocation=(), payment=()",
}


def inline_script_hashes(html_files: Iterable[Path]) -> list[str]:
    """``'sha256-…'`` sources for every inline ``<script>`` in the given HTML files."""
    hashes: set[str] = set()
    for path in html_files:
        try:
            data = path.read_bytes()
        except OSError as exc:
            log.warning("cannot read %s for CSP hashes: %s", path, exc)
            continue
        for match in _INLINE_SCRIPT.finditer(data):
            digest = base64.b64encode(hashlib.sha256(match.group(1)).digest()).decode()
            hashes.add(f"'sha256-{digest}'")
    return sorted(hashes)


def _websocket_sources() -> str:
    """The app's own websocket origin (the frontend connects to the public URL): ws: and
    wss: to any host would be an exfiltration channel for injected script."""
    from urllib.parse import urlsplit

    from elexirion_app.config import get_settings

    netloc = urlsplit(get_settings().public_url).netloc
    return f"ws://{netloc} wss://{netloc}" if netloc else ""


def _build_stamp(build_dir: Path) -> tuple[int, int]:
    """Changes whenever the frontend is rebuilt: (the newest mtime of the top-level HTML pages,
    their count), one ``scandir`` per response. A rebuild under a running server (another app
    built in the same tree, a deploy) then gets a policy with the new inline-script hashes
    instead of a stale one that blocks them (the build bakes the port into the pages)."""
    newest = count = 0
    try:
        with os.scandir(build_dir) as entries:
            for entry in entries:
                if entry.name.endswith(".html"):
                    newest = max(newest, entry.stat().st_mtime_ns)
                    count += 1
    except OSError:
        return 0, 0
    return newest, count


def content_security_policy(build_dir: Path = BUILD_DIR) -> str:
    return _policy_for(build_dir, _build_stamp(build_dir))


@lru_cache(maxsize=2)
def _policy_for(build_dir: Path, stamp: tuple[int, int]) -> str:
    hashes = inline_script_hashes(build_dir.rglob("*.html")) if build_dir.is_dir() else []
    directives = [
        "default-src 'self'",
        "script-src 'self' " + " ".join(hashes) if hashes else "script-src 'self'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data: blob:",
        "font-src 'self' data:",
        f"connect-src 'self' {_websocket_sources()}",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
    return "; ".join(d.strip() for d in directives)


STAMP_EVERY_S = 1.0
_looked: dict[Path, tuple[float, str]] = {}  # build folder: when last looked at, its policy


def current_policy(build_dir: Path = BUILD_DIR) -> str:
    """``content_security_policy`` looking at the build at most once a second: a rebuild under
    a running server is followed within a second, and a response no longer pays a
    ``scandir`` and a ``stat`` per page (they were ~13 % of the server's samples on a 401)."""
    now = time.monotonic()
    looked = _looked.get(build_dir)
    if looked is None or now - looked[0] >= STAMP_EVERY_S:
        looked = _looked[build_dir] = (now, content_security_policy(build_dir))
    return looked[1]


def security_headers(app: Any) -> Any:
    """ASGI middleware adding the headers above to every HTTP response that lacks them."""

    async def wrapped(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope.get("type") != "http":
            await app(scope, receive, send)
            return
        csp = current_policy()

        async def send_with_headers(message: dict[str, Any]) -> None:
            if message.get("type") == "http.response.start":
                headers = list(message.get("headers") or [])
                present = {name.lower() for name, _ in headers}
                extra = {**STATIC_HEADERS, "content-security-policy": csp}
                for name, value in extra.items():
                    if name.encode() not in present:
                        headers.append((name.encode(), value.encode()))
                message = {**message, "headers": headers}
            await send(message)

        await app(scope, receive, send_with_headers)

    return wrapped
