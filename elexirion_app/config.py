"""Settings read from the environment, once, on first use. No I/O at import time."""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Settings:
    database_url: str
    redis_url: str | None
    data_dir: Path
    anthropic_api_key: str | None
    gemini_api_key: str | None
    anthropic_base_url: str | None
    gemini_base_url: str | None
    chat_token_delay_s: float
    session_days: int
    max_message_chars: int
    public_url: str = "http://localhost:3000"
    trusted_proxies: int = 0

    @property
    def secure_cookies(self) -> bool:
        return self.public_url.startswith("https://")

    @property
    def offline(self) -> bool:
        return not (self.anthropic_api_key or self.gemini_api_key)


def _default_db_url(data_dir: Path) -> str:
    return f"sqlite:///{data_dir / 'elexirion.db'}"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    env = os.environ
    data_dir = Path(env.get("ELEXIRION_DATA_DIR") or PROJECT_ROOT / "data").resolve()
    db_url = env.get("DATABASE_URL") or env.get("REFLEX_DB_URL") or _default_db_url(data_dir)
    if db_url.startswith("postgres://"):
        db_url = "postgresql://" + db_url[len("postgres://") :]
    return Settings(
        database_url=db_url,
        redis_url=env.get("REDIS_URL") or env.get("REFLEX_REDIS_URL") or None,
        data_dir=data_dir,
        anthropic_api_key=env.get("ANTHROPIC_API_KEY") or None,
        gemini_api_key=env.get("GEMINI_API_KEY") or env.get("GOOGLE_API_KEY") or None,
        anthropic_base_url=env.get("ANTHROPIC_BASE_URL") or None,
        gemini_base_url=env.get("GEMINI_BASE_URL") or None,
        chat_token_delay_s=float(env.get("ELEXIRION_CHAT_TOKEN_DELAY_S", "0.02")),
        session_days=int(env.get("ELEXIRION_SESSION_DAYS", "14")),
        max_message_chars=int(env.get("ELEXIRION_MAX_MESSAGE_CHARS", "32000")),
        public_url=env.get("ELEXIRION_PUBLIC_URL")
        or f"http://localhost:{env.get('ELEXIRION_PORT', '3000')}",
        trusted_proxies=max(0, int(env.get("ELEXIRION_TRUSTED_PROXIES", "0") or 0)),
    )
