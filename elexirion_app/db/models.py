"""SQLModel tables. Plain SQLModel (``rx.Model`` is deprecated); no reflex import here."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, Column, Index, Numeric, Text, UniqueConstraint
from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    return datetime.now(UTC)


class AppUser(SQLModel, table=True):
    __tablename__ = "app_user"

    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(index=True, unique=True, max_length=320)
    password_hash: str = Field(default="", repr=False)
    display_name: str = Field(default="", max_length=200)
    is_admin: bool = False
    is_active: bool = True
    # An admin-allowed folder the user chose as workspace (None: their uploaded files).
    workspace_folder: str | None = None
    # Per-user rate limits set by an admin ("30/minute;500/day"); None: the server's default.
    chat_limit: str | None = Field(default=None, max_length=100)
    api_limit: str | None = Field(default=None, max_length=100)
    created_at: datetime = Field(default_factory=utcnow)
    # When the email was proven: an identity provider verified it (OIDC sign-up or link) or an
    # operator created the account. None for a self-registered account: an OIDC login does not
    # link into it by email (pre-account hijack); its owner connects a provider in Settings.
    email_verified_at: datetime | None = None


class AuthSession(SQLModel, table=True):
    """A server-side login session; only the SHA-256 of the token is stored."""

    __tablename__ = "auth_session"

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="app_user.id", index=True)
    token_hash: str = Field(index=True, unique=True, max_length=64)
    created_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime
    revoked_at: datetime | None = None


class Conversation(SQLModel, table=True):
    __tablename__ = "conversation"

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="app_user.id", index=True)
    title: str = Field(default="New chat", max_length=200)
    # The message whose ancestors form the branch shown (regenerate/edit create siblings).
    current_leaf_id: int | None = None
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow, index=True)


class Message(SQLModel, table=True):
    __tablename__ = "message"

    id: int | None = Field(default=None, primary_key=True)
    conversation_id: int = Field(foreign_key="conversation.id", index=True)
    user_id: int = Field(foreign_key="app_user.id", index=True)
    role: str = Field(max_length=16)  # "user" | "assistant"
    content: str = Field(default="", sa_column=Column(Text, nullable=False))
    status: str = Field(default="complete", max_length=16)  # streaming|complete|stopped|error
    model: str | None = Field(default=None, max_length=100)
    parent_id: int | None = Field(default=None, foreign_key="message.id")
    run_id: str | None = Field(default=None, max_length=36)
    # Structured extras: the router's decision, a run's summary (shown as cards in the chat).
    meta: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON))
    created_at: datetime = Field(default_factory=utcnow, index=True)


class Run(SQLModel, table=True):
    """A pipeline run, written ahead: queued → running → succeeded/failed/interrupted."""

    __tablename__ = "run"
    # The dashboard's costliest-runs lists (issue 10): per user / everyone over a range.
    __table_args__ = (
        Index("ix_run_user_created", "user_id", "created_at"),
        Index("ix_run_created_cost", "created_at", "cost_usd"),
    )

    id: str = Field(primary_key=True, max_length=36)
    user_id: int | None = Field(default=None, foreign_key="app_user.id", index=True)
    pipeline_name: str = Field(default="", max_length=200)
    pipeline_path: str | None = None
    # Where the run read/wrote files, so a resume continues in the same place.
    workspace: str | None = None
    output_dir: str | None = None
    pipeline_yaml: str = Field(default="", sa_column=Column(Text, nullable=False))
    inputs: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON))
    status: str = Field(default="queued", max_length=16, index=True)
    error: str | None = Field(default=None, sa_column=Column(Text))
    cost_usd: Decimal = Field(default=Decimal("0"), sa_column=Column(Numeric(14, 8)))
    tokens: dict[str, int] = Field(default_factory=dict, sa_column=Column(JSON))
    created_at: datetime = Field(default_factory=utcnow, index=True)
    started_at: datetime | None = None
    finished_at: datetime | None = None
    heartbeat_at: datetime | None = None
    # The library pipeline and the version of it that ran (None: a file or an inline YAML).
    pipeline_id: int | None = Field(default=None, index=True)
    pipeline_version: int | None = None


class StepRun(SQLModel, table=True):
    __tablename__ = "step_run"

    id: int | None = Field(default=None, primary_key=True)
    run_id: str = Field(foreign_key="run.id", index=True, max_length=36)
    name: str = Field(max_length=200)
    step_type: str = Field(default="", max_length=40)
    position: int = 0
    status: str = Field(default="queued", max_length=16)
    model: str | None = Field(default=None, max_length=100)
    result: Any = Field(default=None, sa_column=Column(JSON))
    error: str | None = Field(default=None, sa_column=Column(Text))
    cost_usd: Decimal = Field(default=Decimal("0"), sa_column=Column(Numeric(14, 8)))
    tokens: dict[str, int] = Field(default_factory=dict, sa_column=Column(JSON))
    latency_ms: float = 0.0
    started_at: datetime | None = None
    finished_at: datetime | None = None


class LLMCall(SQLModel, table=True):
    """One provider attempt (failed ones too), with tokens by type, cost and latency."""

    __tablename__ = "llm_call"
    # Covering index of the dashboard's costliest conversations (SUM per conversation).
    __table_args__ = (
        Index(
            "ix_llm_call_user_created_conv", "user_id", "created_at", "conversation_id", "cost_usd"
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    user_id: int | None = Field(default=None, foreign_key="app_user.id", index=True)
    run_id: str | None = Field(default=None, foreign_key="run.id", index=True, max_length=36)
    step_name: str | None = Field(default=None, max_length=200)
    conversation_id: int | None = Field(default=None, foreign_key="conversation.id")
    provider: str = Field(default="", max_length=40)
    model: str = Field(default="", max_length=100, index=True)
    attempt: int = 1
    status: str = Field(default="ok", max_length=16)
    error: str | None = Field(default=None, sa_column=Column(Text))
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    thinking_tokens: int = 0
    cost_usd: Decimal = Field(default=Decimal("0"), sa_column=Column(Numeric(14, 8)))
    latency_ms: float = 0.0
    created_at: datetime = Field(default_factory=utcnow, index=True)
    # Issue 10 (ledger): who called, 1-hour cache writes, time to first token, the offline demo
    # model (cost always 0; ``live_estimate_usd`` is what it would cost live, never summed) and
    # the price table's date. Written only by ``services/billing/ledger``; append-only.
    caller: str = Field(default="", max_length=16, index=True)
    pipeline: str = Field(default="", max_length=200)
    cache_write_1h_tokens: int = 0
    ttft_ms: float | None = None
    offline: bool = False
    live_estimate_usd: Decimal | None = Field(default=None, sa_column=Column(Numeric(14, 8)))
    price_date: str = Field(default="", max_length=20)


class PipelineDoc(SQLModel, table=True):
    """A pipeline in a user's library; its content lives in ``PipelineVersion`` rows.

    ``draft_yaml`` is the working copy the editor autosaves between versions; ``layout`` keeps
    node positions the user dragged (not part of the YAML, so the file stays theirs).
    """

    __tablename__ = "pipeline_doc"
    __table_args__ = (UniqueConstraint("user_id", "name", name="uq_pipeline_doc_user_name"),)

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="app_user.id", index=True)
    name: str = Field(max_length=100)  # the library key: a slug, also the draft file's name
    # From the current version's YAML (``workflow.name``, ``description``, step count).
    title: str = Field(default="", max_length=200)
    description: str = Field(default="", max_length=500)
    step_count: int = 0
    errors: int = 0
    source: str = Field(default="blank", max_length=100)  # blank|template:X|copy:X|import|genesis
    current_version: int = 0
    draft_yaml: str = Field(default="", sa_column=Column(Text, nullable=False))
    layout: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON))
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow, index=True)


class PipelineVersion(SQLModel, table=True):
    """One saved version (append-only; a rollback is a new version equal to an old one)."""

    __tablename__ = "pipeline_version"
    __table_args__ = (UniqueConstraint("pipeline_id", "number", name="uq_pipeline_version_number"),)

    id: int | None = Field(default=None, primary_key=True)
    pipeline_id: int = Field(foreign_key="pipeline_doc.id", index=True)
    number: int
    yaml: str = Field(default="", sa_column=Column(Text, nullable=False))
    label: str = Field(default="", max_length=100)
    message: str = Field(default="", max_length=500)
    errors: int = 0  # validation errors when saved (a draft with errors can be saved, not run)
    created_by: int | None = Field(default=None, foreign_key="app_user.id")
    created_at: datetime = Field(default_factory=utcnow)


class ApiKey(SQLModel, table=True):
    """A user's API key; only an HMAC-SHA256 of it (keyed by the server secret) is stored.

    ``prefix`` is the key's first characters, shown so a user can tell keys apart; it does not
    identify a key on its own (lookups go through ``lookup_hash``)."""

    __tablename__ = "api_key"

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="app_user.id", index=True)
    name: str = Field(max_length=100)
    prefix: str = Field(max_length=16)
    lookup_hash: str = Field(index=True, unique=True, max_length=64, repr=False)
    created_at: datetime = Field(default_factory=utcnow)
    last_used_at: datetime | None = None
    revoked_at: datetime | None = None


class OidcIdentity(SQLModel, table=True):
    """An account at an OpenID Connect provider linked to one of our users.

    The pair (issuer, subject) is the identity (OIDC Core 5.7: ``sub`` is unique per issuer,
    an email is not); ``email`` is what the provider asserted, verified, when the link was made."""

    __tablename__ = "oidc_identity"
    __table_args__ = (UniqueConstraint("issuer", "subject"),)

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="app_user.id", index=True)
    provider: str = Field(max_length=40)
    issuer: str = Field(max_length=500)
    subject: str = Field(max_length=255)
    email: str = Field(default="", max_length=320)
    created_at: datetime = Field(default_factory=utcnow)
    last_login_at: datetime | None = None


class AuditEvent(SQLModel, table=True):
    """One security-relevant event: who (``actor_id``), what (``action``, ``outcome``), when,
    from which address, about what (``target``: an email tried, a pipeline, a key) and whom
    (``subject_id``: the account acted on, e.g. by an admin). Append-only."""

    __tablename__ = "audit_event"

    id: int | None = Field(default=None, primary_key=True)
    created_at: datetime = Field(default_factory=utcnow, index=True)
    actor_id: int | None = Field(default=None, foreign_key="app_user.id", index=True)
    subject_id: int | None = Field(default=None, foreign_key="app_user.id")
    action: str = Field(max_length=40, index=True)
    outcome: str = Field(default="ok", max_length=16)
    address: str = Field(default="", max_length=64)
    target: str = Field(default="", max_length=320)
    detail: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON))


class OidcPending(SQLModel, table=True):
    """An OIDC login between its start and its callback: ``state``, ``nonce`` and the PKCE
    verifier, kept server-side under the SHA-256 of a random key that only the browser that
    started the login holds (a short-lived HttpOnly cookie). Deleted when consumed."""

    __tablename__ = "oidc_pending"

    id: int | None = Field(default=None, primary_key=True)
    key_hash: str = Field(index=True, unique=True, max_length=64)
    provider: str = Field(max_length=40)
    state: str = Field(max_length=128)
    nonce: str = Field(max_length=128)
    code_verifier: str = Field(max_length=128)
    redirect_uri: str = Field(max_length=500)
    created_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime = Field(index=True)


# The ledger's rollups and the budgets (issue 10) live in a module of their own; re-exported.
from elexirion_app.db.billing_models import Budget as Budget  # noqa: E402
from elexirion_app.db.billing_models import BudgetReservation as BudgetReservation  # noqa: E402
from elexirion_app.db.billing_models import RunRollup as RunRollup  # noqa: E402
from elexirion_app.db.billing_models import UsageRollup as UsageRollup  # noqa: E402
