"""The server secret: the key of the HMACs that identify API keys in the database.

From ``ELEXIRION_SECRET_KEY`` when set (at least 32 characters), else from
``<data_dir>/secret.key``: 32 random bytes written once, mode 0600, atomically (a temporary
file hard-linked into place, so two processes starting together agree on one secret). Every
worker and the CLI must see the same secret: changing or losing it turns every API key down.

No I/O at import time; the caller passes the data folder and the environment's value.
"""

from __future__ import annotations

import logging
import os
import stat
import uuid
from functools import lru_cache
from pathlib import Path

from elexirion_app.core.errors import ConfigError

log = logging.getLogger(__name__)

SECRET_ENV = "ELEXIRION_SECRET_KEY"
SECRET_FILE = "secret.key"
SECRET_BYTES = 32
MIN_ENV_CHARS = 32


def server_secret(data_dir: Path, env_value: str | None) -> bytes:
    """The secret (cached per process for a given folder and environment value)."""
    return _cached(_resolved(str(data_dir)), env_value or None)


@lru_cache(maxsize=8)
def _resolved(data_dir: str) -> Path:
    """The folder's real path, looked up once per folder name (every API request's key
    check needs the secret; ``resolve`` is an ``lstat`` per path component)."""
    return Path(data_dir).resolve()


@lru_cache(maxsize=4)
def _cached(data_dir: Path, env_value: str | None) -> bytes:
    if env_value is not None:
        if len(env_value) < MIN_ENV_CHARS:
            raise ConfigError(
                f"{SECRET_ENV} must have at least {MIN_ENV_CHARS} characters "
                "(for example the output of "
                "`python -c 'import secrets; print(secrets.token_urlsafe(32))'`)."
            )
        return env_value.encode("utf-8")
    return read_or_create(data_dir / SECRET_FILE)


def read_or_create(path: Path) -> bytes:
    """The secret in ``path``, creating it (32 random bytes, mode 0600) when absent."""
    try:
        return _read(path)
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as out:
            os.fchmod(out.fileno(), 0o600)
            out.write(os.urandom(SECRET_BYTES))
            out.flush()
            os.fsync(out.fileno())
        try:
            os.link(tmp, path)  # fails when another process put its secret there first
            log.warning("created a new server secret in %s (keep it with the database)", path)
        except FileExistsError:
            pass
    finally:
        tmp.unlink(missing_ok=True)
    return _read(path)


def _read(path: Path) -> bytes:
    with path.open("rb") as src:
        mode = os.fstat(src.fileno()).st_mode
        data = src.read(SECRET_BYTES + 1)
    if len(data) != SECRET_BYTES:
        raise ConfigError(
            f"{path} is not a {SECRET_BYTES}-byte secret: restore it from a backup, or set "
            f"{SECRET_ENV} (existing API keys only work with the secret they were made with)."
        )
    if stat.S_IMODE(mode) & 0o077:
        log.warning("%s is readable by other users (mode %o): chmod 600 it", path, mode & 0o777)
    return data
