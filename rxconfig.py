"""Reflex configuration. Plain ``DATABASE_URL`` / ``REDIS_URL`` are read here (Reflex itself
only honours ``REFLEX_``-prefixed variables)."""

from __future__ import annotations

import os
from pathlib import Path

import reflex as rx

ROOT = Path(__file__).resolve().parent
PORT = int(os.environ.get("ELEXIRION_PORT", "3000"))
PUBLIC_URL = os.environ.get("ELEXIRION_PUBLIC_URL", f"http://localhost:{PORT}")
_data_dir = Path(os.environ.get("ELEXIRION_DATA_DIR") or ROOT / "data")
_db_url = os.environ.get("DATABASE_URL") or f"sqlite:///{_data_dir / 'elexirion.db'}"
_bun = ROOT / ".tools" / "node_modules" / ".bin" / "bun"
# Largest websocket message (bytes). Reflex's default (1 MB) drops the connection silently on
# a pasted 1 MB text; at 4 MB the handler answers "too long" itself. Still a cap before work.
os.environ.setdefault("REFLEX_SOCKET_MAX_HTTP_BUFFER_SIZE", str(4 * 1024 * 1024))

_kwargs: dict = {}
if _bun.exists():
    _kwargs["bun_path"] = _bun
if os.environ.get("REDIS_URL"):
    _kwargs["redis_url"] = os.environ["REDIS_URL"]

config = rx.Config(
    app_name="elexirion_app",
    db_url=_db_url,
    telemetry_enabled=False,
    frontend_port=PORT,
    backend_port=PORT,
    api_url=PUBLIC_URL,
    deploy_url=PUBLIC_URL,
    cors_allowed_origins=sorted(
        {PUBLIC_URL, f"http://localhost:{PORT}", f"http://127.0.0.1:{PORT}"}
    ),
    show_built_with_reflex=False,
    # X-Forwarded-For is honoured only behind this many trusted reverse proxies.
    trusted_proxy_hops=max(0, int(os.environ.get("ELEXIRION_TRUSTED_PROXIES", "0") or 0)),
    disable_plugins=[rx.plugins.SitemapPlugin],
    plugins=[rx.plugins.RadixThemesPlugin(theme=rx.theme(accent_color="indigo", radius="medium"))],
    **_kwargs,
)
