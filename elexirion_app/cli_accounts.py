"""Operators' commands: ``users create`` and ``apikey create|list|revoke``.

They use the app's database (``DATABASE_URL`` / ``ELEXIRION_DATA_DIR``, read by
``config.get_settings``) and its server secret, so a key made here works against the served
API. stdout carries only the result a script wants (a generated password, a key, the list);
messages go to stderr. Expected errors print one ``error: ...`` line and exit 1.
"""

from __future__ import annotations

import argparse
import getpass
import json
import secrets
import sys
from datetime import datetime
from typing import Any

from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session, select

from elexirion_app.core.errors import Conflict, ElexirionError, InputError, NotFound
from elexirion_app.db.engine import get_engine, session_scope
from elexirion_app.db.models import AppUser, utcnow
from elexirion_app.services.accounts import api_keys, audit, auth

COMMANDS = ("users", "apikey")
GENERATED_PASSWORD_BYTES = 18  # 24 characters of urlsafe base64


def add_parsers(sub: Any) -> None:
    """Register ``users`` and ``apikey`` on the main parser's subparsers."""
    users = sub.add_parser("users", help="manage accounts").add_subparsers(
        dest="action", required=True
    )
    uc = users.add_parser("create", help="create an account (prints a generated password)")
    uc.add_argument("--email", required=True)
    uc.add_argument("--admin", action="store_true", help="make this account an admin")
    uc.add_argument(
        "--password-stdin", action="store_true", help="read the password from stdin instead"
    )
    keys = sub.add_parser("apikey", help="manage a user's API keys").add_subparsers(
        dest="action", required=True
    )
    kc = keys.add_parser("create", help="create a key (printed once, on stdout)")
    kc.add_argument("--email", required=True)
    kc.add_argument("--name", required=True)
    kl = keys.add_parser("list", help="list a user's keys (never the keys themselves)")
    kl.add_argument("--email", required=True)
    kl.add_argument("--json", action="store_true", help="print one JSON array")
    kr = keys.add_parser("revoke", help="revoke a key by its id")
    kr.add_argument("--email", required=True)
    kr.add_argument("--id", required=True, type=int, dest="key_id")


def run(args: argparse.Namespace) -> int:
    """Run one account command; 0 on success, 1 with one ``error:`` line otherwise."""
    handlers = {
        ("users", "create"): _users_create,
        ("apikey", "create"): _key_create,
        ("apikey", "list"): _key_list,
        ("apikey", "revoke"): _key_revoke,
    }
    try:
        handlers[(args.command, args.action)](args)
        return 0
    except ElexirionError as exc:
        _error(exc.user_message)
    except SQLAlchemyError as exc:
        _error(_database_message(exc))
    except OSError as exc:  # the data folder or the secret file cannot be written or read
        _error(f"{exc.strerror or exc}: {exc.filename or ''}")
    return 1


def _error(message: str) -> None:
    print(f"error: {' '.join(message.split())}", file=sys.stderr)


def _database_message(exc: SQLAlchemyError) -> str:
    url = get_engine().url.render_as_string(hide_password=True)
    orig = getattr(exc, "orig", None)
    lines = str(orig or exc).strip().splitlines()
    detail = lines[0] if lines else type(exc).__name__
    missing_table = "no such table" in detail or type(orig).__name__ == "UndefinedTable"
    hint = " (the schema is missing or old: run `alembic upgrade head`)" if missing_table else ""
    return f"the database {url} failed: {detail}{hint}"


def _user_id(session: Session, email: str) -> int:
    address = auth.normalize_email(email)
    user = session.exec(select(AppUser).where(AppUser.email == address)).first()
    if user is None or user.id is None:
        raise NotFound(f"no account with the email {address}")
    return user.id


def _read_password() -> str:
    if sys.stdin.isatty():
        return getpass.getpass("Password: ")
    text = sys.stdin.read(auth.MAX_PASSWORD + 3)
    if text.endswith("\n"):
        text = text[:-1]
    if text.endswith("\r"):
        text = text[:-1]
    if "\n" in text:
        raise InputError("--password-stdin reads one line: the password")
    return text


def _users_create(args: argparse.Namespace) -> None:
    generated = not args.password_stdin
    password = secrets.token_urlsafe(GENERATED_PASSWORD_BYTES) if generated else _read_password()
    with session_scope(get_engine()) as session:
        try:
            info = auth.register(session, args.email, password)
        except Conflict:
            address = auth.normalize_email(args.email)
            raise Conflict(f"an account with the email {address} already exists") from None
        user = session.get(AppUser, info.id)
        assert user is not None
        user.email_verified_at = utcnow()  # the operator vouches for it: OIDC may link by email
        if args.admin and not info.is_admin:
            user.is_admin = True
        session.add(user)
        role = "admin" if args.admin or info.is_admin else "member"
        audit.record(
            session,
            "user_created",
            subject_id=info.id,
            target=info.email,
            detail={"role": role, "via": "cli"},
        )
    print(f"created user {info.id} {info.email} ({role})", file=sys.stderr)
    if generated:
        print(password)


def _key_create(args: argparse.Namespace) -> None:
    with session_scope(get_engine()) as session:
        view, plain = api_keys.create_key(session, _user_id(session, args.email), args.name)
    print(
        f"created API key {view.id} {view.name!r} ({view.display}); "
        "it is shown only now: store it safely",
        file=sys.stderr,
    )
    print(plain)


def _stamp(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value else "-"


def _key_list(args: argparse.Namespace) -> None:
    with session_scope(get_engine()) as session:
        views = api_keys.list_keys(session, _user_id(session, args.email))
    if args.json:
        rows = [
            {
                "id": v.id,
                "name": v.name,
                "prefix": v.prefix,
                "created_at": v.created_at.isoformat(),
                "last_used_at": v.last_used_at.isoformat() if v.last_used_at else None,
                "revoked_at": v.revoked_at.isoformat() if v.revoked_at else None,
            }
            for v in views
        ]
        print(json.dumps(rows, ensure_ascii=False))
        return
    if not views:
        print("no API keys", file=sys.stderr)
        return
    print(f"{'ID':>5}  {'PREFIX':<14} {'CREATED':<20} {'LAST USED':<20} {'STATUS':<8} NAME")
    for v in views:
        status = "live" if v.live else "revoked"
        print(
            f"{v.id:>5}  {v.display:<14} {_stamp(v.created_at):<20} "
            f"{_stamp(v.last_used_at):<20} {status:<8} {v.name}"
        )


def _key_revoke(args: argparse.Namespace) -> None:
    with session_scope(get_engine()) as session:
        api_keys.revoke_key(session, _user_id(session, args.email), args.key_id)
    print(f"revoked API key {args.key_id}", file=sys.stderr)
