"""Schemathesis against the served OpenAPI schema, with two users' keys: generated valid and
invalid requests on every operation; no response is a server error, and every response
matches the schema (status code, content type, body) — issue 9."""

from __future__ import annotations

import contextlib
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.security.conftest import Account, Served
from tests.security.test_api_matrix import key_for

CHECKS = ",".join(
    (
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_schema_conformance",
    )
)


@contextlib.contextmanager
def generous_api_limit(served: Served, account: Account) -> Iterator[None]:
    """The account's own API rate limit raised while schemathesis runs (what an admin can set
    per user): at the default limit most generated requests to the later operations answered
    429, leaving the logic behind them untested. Restored afterwards."""
    db = sqlite3.connect(served.data / "app.db")
    (before,) = db.execute(
        "SELECT api_limit FROM app_user WHERE id = ?", (account.user_id,)
    ).fetchone()
    try:
        with db:
            db.execute(
                "UPDATE app_user SET api_limit = ? WHERE id = ?", ("100000/minute", account.user_id)
            )
        yield
    finally:
        with db:
            db.execute("UPDATE app_user SET api_limit = ? WHERE id = ?", (before, account.user_id))
        db.close()


@pytest.mark.parametrize("who", ["alice", "bob"])
def test_generated_requests_get_no_500_and_match_the_schema(
    served: Served, who: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    account: Account = request.getfixturevalue(who)
    key = key_for(served, account, f"schemathesis-{who}")
    with generous_api_limit(served, account):
        done = subprocess.run(
            [
                str(Path(sys.executable).parent / "schemathesis"),
                "run",
                f"{served.url}/api/openapi.json",
                *("-H", f"Authorization: Bearer {key}"),
                *("--checks", CHECKS),
                *("--max-examples", "30"),
                *("--phases", "examples,coverage,fuzzing"),
                *("--seed", "4711"),
                *("--workers", "1"),
                *("--request-timeout", "60"),
                *("--generation-database", "none"),
            ],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
    tail = (done.stdout + done.stderr)[-6000:]
    assert done.returncode == 0, tail
    assert "Rate limited" not in done.stdout, tail  # 429s would leave operations untested
    assert "passed" in done.stdout.lower() or "no issues found" in done.stdout.lower(), tail
