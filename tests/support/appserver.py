"""Serve the real app for browser tests and benchmarks: a fresh database migrated with
Alembic, then ``reflex run --env prod --single-port`` in its own process group."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
# Keys and shared services of the caller's shell must not leak into a test server.
SCRUBBED = (
    "ANTHROPIC_API_KEY",
    "ANTHROPIC_BASE_URL",
    "GEMINI_API_KEY",
    "GOOGLE_API_KEY",
    "REDIS_URL",
    "REFLEX_REDIS_URL",
    "GRANIAN_WORKERS",
)


def app_env(data_dir: Path, port: int, **extra: str) -> dict[str, str]:
    """The environment of an app served on ``port`` with its data in ``data_dir``."""
    env = {k: v for k, v in os.environ.items() if k not in SCRUBBED}
    env.update(
        {
            "DATABASE_URL": f"sqlite:///{data_dir / 'app.db'}",
            "ELEXIRION_DATA_DIR": str(data_dir),
            "ELEXIRION_PORT": str(port),
            "REFLEX_CHECK_LATEST_VERSION": "false",
            "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        }
    )
    env.update(extra)
    return env


def wait_for(url: str, timeout_s: float, proc: subprocess.Popen[bytes], log: Path) -> None:
    """Until ``url`` answers 200; a clear error with the log's tail if the app dies first."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the app exited early:\n{log.read_text()[-4000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise RuntimeError(f"the app did not answer {url} in {timeout_s}s:\n{log.read_text()[-4000:]}")


def start_app(
    env: dict[str, str], port: int, log: Path, timeout_s: float = 600
) -> subprocess.Popen[bytes]:
    """Migrate the database of ``env`` and serve the app on ``port``; returns once it answers."""
    subprocess.run(
        [str(BIN / "alembic"), "upgrade", "head"],
        cwd=ROOT,
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                str(BIN / "reflex"),
                *("run", "--env", "prod", "--single-port"),
                *("--frontend-port", str(port), "--backend-port", str(port)),
            ],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_for(f"http://localhost:{port}/ping", timeout_s, proc, log)
        wait_for(f"http://localhost:{port}/login/", 120, proc, log)
    except BaseException:
        stop(proc)
        raise
    return proc


@contextlib.contextmanager
def serving(data_dir: Path, port: int, **extra: str) -> Iterator[subprocess.Popen[bytes]]:
    """The app served on ``port`` with its data (and ``reflex.log``) in ``data_dir``."""
    proc = start_app(app_env(data_dir, port, **extra), port, data_dir / "reflex.log")
    try:
        yield proc
    finally:
        stop(proc)


def stop(proc: subprocess.Popen[bytes] | None) -> None:
    """Terminate a process group we started (by its leader's PID)."""
    if proc is None or proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=5)
