"""Schemathesis against the served OpenAPI schema, with two users' keys: generated valid and
invalid requests on every operation; no response is a server error, and every response
matches the schema (status code, content type, body) — issue 9."""

from __future__ import annotations

import subprocess
import sys
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


@pytest.mark.parametrize("who", ["alice", "bob"])
def test_generated_requests_get_no_500_and_match_the_schema(
    served: Served, who: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    account: Account = request.getfixturevalue(who)
    key = key_for(served, account, f"schemathesis-{who}")
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
    assert "passed" in done.stdout.lower() or "no issues found" in done.stdout.lower(), tail
