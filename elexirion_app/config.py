"""Settings read from the environment, once, on first use. No I/O at import time."""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from urllib.parse import urlsplit

from elexirion_app.core.errors import ConfigError

PROJECT_ROOT = Path(__file__).resolve().parent.parent


# --- single sign-on (OpenID Connect) ------------------------------------------------------
# ID token signatures we accept: asymmetric only ("none" and HS* with a public key never).
OIDC_ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA")
OIDC_DEFAULT_ALGORITHMS = ("RS256", "ES256")
_OIDC_NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
_LOOPBACK = {"localhost", "127.0.0.1", "::1"}


@dataclass(frozen=True)
class OidcProvider:
    """One identity provider: ``ELEXIRION_OIDC_<NAME>_*``."""

    name: str
    issuer: str  # discovery at issuer + /.well-known/openid-configuration
    client_id: str
    client_secret: str
    display_name: str
    algorithms: tuple[str, ...] = OIDC_DEFAULT_ALGORITHMS

    @property
    def discovery_url(self) -> str:
        return self.issuer + "/.well-known/openid-configuration"


def _env_bool(env: Mapping[str, str], key: str, default: bool) -> bool:
    text = (env.get(key) or "").strip().lower()
    if not text:
        return default
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{key}={text!r}: write true or false")


def _env_seconds(env: Mapping[str, str], key: str, default: float) -> float:
    text = (env.get(key) or "").strip()
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not (math.isfinite(value) and value > 0):
        raise ConfigError(f"{key}={text!r}: write a number of seconds above 0")
    return value


def _oidc_provider(env: Mapping[str, str], name: str) -> OidcProvider:
    prefix = f"ELEXIRION_OIDC_{name.upper()}_"

    def need(field: str) -> str:
        value = (env.get(prefix + field) or "").strip()
        if not value:
            raise ConfigError(f"{prefix}{field} is required for the OIDC provider {name!r}")
        return value

    issuer = need("ISSUER").rstrip("/")
    parts = urlsplit(issuer)
    secure = parts.scheme == "https" or (parts.scheme == "http" and parts.hostname in _LOOPBACK)
    if not parts.hostname or not secure or parts.query or parts.fragment:
        raise ConfigError(
            f"{prefix}ISSUER={issuer!r} must be an https:// URL without query "
            "(http:// only for localhost)"
        )
    algorithms = (
        tuple(a.strip() for a in (env.get(prefix + "ALGORITHMS") or "").split(",") if a.strip())
        or OIDC_DEFAULT_ALGORITHMS
    )
    bad = [a for a in algorithms if a not in OIDC_ALGORITHMS]
    if bad:
        raise ConfigError(
            f"{prefix}ALGORITHMS: {', '.join(bad)} not accepted (use some of "
            f"{', '.join(OIDC_ALGORITHMS)})"
        )
    display = (env.get(prefix + "DISPLAY_NAME") or "").strip() or name.capitalize()
    return OidcProvider(
        name=name,
        issuer=issuer,
        client_id=need("CLIENT_ID"),
        client_secret=need("CLIENT_SECRET"),
        display_name=display[:60],
        algorithms=algorithms,
    )


def oidc_providers(env: Mapping[str, str]) -> tuple[OidcProvider, ...]:
    """The providers named in ``ELEXIRION_OIDC_PROVIDERS`` (comma separated), in that order."""
    names = [n.strip().lower() for n in (env.get("ELEXIRION_OIDC_PROVIDERS") or "").split(",")]
    names = [n for n in names if n]
    for name in names:
        if not _OIDC_NAME.match(name):
            raise ConfigError(
                f"ELEXIRION_OIDC_PROVIDERS: {name!r} is not a provider name "
                "(a letter, then letters, digits or _; at most 40)"
            )
    if len(set(names)) != len(names):
        raise ConfigError("ELEXIRION_OIDC_PROVIDERS names a provider twice")
    return tuple(_oidc_provider(env, name) for name in names)


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
    oidc_providers: tuple[OidcProvider, ...] = ()
    # A first OIDC login with a verified email and no account creates a member account.
    oidc_signup: bool = True
    # Seconds between two ledger shard compactions (services/billing/compaction).
    compact_every_s: float = 600.0
    # What a chat reply's model call sees of the conversation, in estimated tokens
    # (agent/session.build_context: the newest turns that fit, older ones named in a note).
    chat_context_tokens: int = 32_000

    @property
    def chat_context_budget(self) -> int:
        """``chat_context_tokens``, but never less than a message of the longest accepted
        length needs (~4 characters a token) plus room for a reply's worth of history: a
        message the box takes is never cut to fit."""
        return max(self.chat_context_tokens, self.max_message_chars // 4 + 2_000)

    def oidc_provider(self, name: str) -> OidcProvider | None:
        return next((p for p in self.oidc_providers if p.name == name), None)

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
        oidc_providers=oidc_providers(env),
        oidc_signup=_env_bool(env, "ELEXIRION_OIDC_SIGNUP", True),
        compact_every_s=_env_seconds(env, "ELEXIRION_COMPACT_EVERY_S", 600.0),
        chat_context_tokens=max(1, int(env.get("ELEXIRION_CHAT_CONTEXT_TOKENS", "32000"))),
    )
