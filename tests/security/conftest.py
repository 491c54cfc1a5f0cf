"""The served app (``reflex run --env prod``) on its own port, attacked as two users and
anonymously over real HTTP and websocket clients."""

from __future__ import annotations

import os
import sqlite3
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

# Reflex keeps its registry of states in a ContextVar, created when the first state class is
# defined. Defined first inside an async test's task (``connect`` imports reflex), the
# registry stays in that task's context and a later test importing the app fails
# (LookupError): define it here, at collection.
import reflex.state  # noqa: F401

from tests.support import appserver
from tests.support.reflex_client import ReflexClient

PORT = int(os.environ.get("ELEXIRION_SECURITY_PORT", "3151"))
PASSWORD = "password-123"


# One single sign-on provider, never reached: the OIDC routes' refusals of forged callbacks
# come before any request to it (tests/security/test_matrix.py, HTTP routes).
OIDC_ENV = {
    "ELEXIRION_OIDC_PROVIDERS": "corp",
    "ELEXIRION_OIDC_CORP_ISSUER": "https://idp.invalid",
    "ELEXIRION_OIDC_CORP_CLIENT_ID": "matrix",
    "ELEXIRION_OIDC_CORP_CLIENT_SECRET": "matrix-secret",
}


@dataclass(frozen=True)
class Served:
    url: str
    data: Path
    log: Path
    pid: int

    def db(self) -> sqlite3.Connection:
        return sqlite3.connect(self.data / "app.db")

    def count(self, sql: str, *args: object) -> int:
        with self.db() as conn:
            return int(conn.execute(sql, args).fetchone()[0])


@dataclass(frozen=True)
class Account:
    email: str
    cookie: str  # the Cookie header value: "elx_session=<token>"
    token: str
    user_id: int


@pytest.fixture(scope="session")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    data = tmp_path_factory.mktemp("security")
    limits = {"ELEXIRION_LIMIT_REGISTER_CLIENT": "12/minute"}
    limits.update(OIDC_ENV)
    with appserver.serving(data, PORT, ELEXIRION_CHAT_TOKEN_DELAY_S="0", **limits) as proc:
        yield Served(f"http://localhost:{PORT}", data, data / "reflex.log", proc.pid)


def register(served: Served, email: str | None = None) -> Account:
    email = email or f"u{uuid.uuid4().hex[:10]}@example.com"
    resp = httpx.post(
        f"{served.url}/auth/register",
        data={"email": email, "password": PASSWORD},
        headers={"Accept": "application/json"},
        timeout=30,
    )
    assert resp.status_code == 200, resp.text
    token = resp.cookies["elx_session"]
    return Account(email, f"elx_session={token}", token, int(resp.json()["user"]["id"]))


# The editor attack battery (test_editor_attacks.py, test_editor_freezes.py) has an app of its
# own: its floods and accounts must not spend the shared app's registration allowance (which
# test_zz_bruteforce checks), and its slow work must not slow the other tests' server.
EDITOR_ATTACK_PORT = int(os.environ.get("ELEXIRION_EDITOR_ATTACK_PORT", "3187"))


@pytest.fixture(scope="session")
def editor_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    data = tmp_path_factory.mktemp("editor-attacks")
    env = {"ELEXIRION_CHAT_TOKEN_DELAY_S": "0", "ELEXIRION_LIMIT_REGISTER_CLIENT": "500/minute"}
    with appserver.serving(data, EDITOR_ATTACK_PORT, **env) as proc:
        yield Served(f"http://localhost:{EDITOR_ATTACK_PORT}", data, data / "reflex.log", proc.pid)


@pytest.fixture(scope="session")
def owner(editor_app: Served) -> Account:
    """The victim of the editor battery: pipelines, versions and runs of their own."""
    return register(editor_app)


@pytest.fixture(scope="session")
def other(editor_app: Served) -> Account:
    """A second user of the editor battery's app, holding the owner's names and ids."""
    return register(editor_app)


@pytest.fixture(scope="session")
def mallory(editor_app: Served) -> Account:
    """The attacker of the editor battery: floods, bombs and forged payloads."""
    return register(editor_app)


@pytest.fixture(scope="session")
def alice(served: Served) -> Account:
    return register(served)


@pytest.fixture(scope="session")
def bob(served: Served) -> Account:
    return register(served)


def state_names() -> dict[str, str]:
    from elexirion_app.web.state.auth import AuthState
    from elexirion_app.web.state.chat import ChatState
    from elexirion_app.web.state.runs import RunsState
    from elexirion_app.web.state.workspace import WorkspaceState

    return {
        "auth": AuthState.get_full_name(),
        "chat": ChatState.get_full_name(),
        "runs": RunsState.get_full_name(),
        "workspace": WorkspaceState.get_full_name(),
    }


async def connect(
    served: Served, account: Account | None, token: str | None = None
) -> ReflexClient:
    """A tab: websocket with ``account``'s cookie (none: anonymous), hydrated like a browser."""
    import reflex as rx

    client = ReflexClient(served.url, token, cookie=account.cookie if account else None)
    await client.connect()
    await client.emit(f"{rx.State.get_full_name()}.hydrate", {}, "/chat")
    return client
