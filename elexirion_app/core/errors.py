"""The one error hierarchy of ElexirionDSP.

Every error carries a ``user_message`` that is safe to show in the UI (no traceback, no
secrets). Code that catches ``ElexirionError`` at a border (web handler, API route, CLI)
shows ``user_message``; anything else is logged and shown as a generic failure.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal


class ElexirionError(Exception):
    """Base of every error we raise on purpose."""

    default_message = "Something went wrong."

    def __init__(self, message: str | None = None, *, user_message: str | None = None) -> None:
        self.message = message or self.default_message
        self.user_message = user_message or self.message
        super().__init__(self.message)


# --- configuration / input -------------------------------------------------------------


class ConfigError(ElexirionError):
    default_message = "The server is misconfigured."


class InputError(ElexirionError):
    """Bad input from a user or client (form, handler payload, CLI argument)."""

    default_message = "The input is not valid."


# --- auth ------------------------------------------------------------------------------


class AuthError(ElexirionError):
    default_message = "You are not logged in."


class InvalidCredentials(AuthError):
    default_message = "Wrong email or password."


class PermissionDenied(AuthError):
    default_message = "You do not have access to this."


class NotFound(ElexirionError):
    default_message = "Not found."


class Conflict(ElexirionError):
    default_message = "This already exists."


# --- pipelines -------------------------------------------------------------------------


@dataclass(frozen=True)
class Problem:
    """One validation finding: ``FILE:LINE: path.to.field: message (hint)``."""

    message: str
    path: str = ""
    file: str = ""
    line: int | None = None
    hint: str = ""
    severity: str = "error"  # "error" | "warning"

    def format(self) -> str:
        where = self.file or "<pipeline>"
        if self.line is not None:
            where = f"{where}:{self.line}"
        text = f"{where}: {self.path + ': ' if self.path else ''}{self.message}"
        if self.hint:
            text += f" ({self.hint})"
        if self.severity == "warning":
            text = f"{text} [warning]"
        return text


class PipelineError(ElexirionError):
    default_message = "The pipeline failed."


class PipelineValidationError(PipelineError):
    """A pipeline file has one or more errors; ``problems`` holds all of them."""

    def __init__(self, problems: list[Problem], message: str | None = None) -> None:
        self.problems = list(problems)
        errors = [p for p in self.problems if p.severity == "error"]
        summary = message or (
            f"{len(errors)} problem(s) in the pipeline: "
            + "; ".join(p.format() for p in errors[:3])
        )
        super().__init__(summary)


class TemplateError(PipelineError):
    default_message = "A template could not be rendered."


class ConditionError(PipelineError):
    default_message = "A condition could not be evaluated."


class StepError(PipelineError):
    """A step failed at run time."""

    def __init__(self, step: str, message: str) -> None:
        self.step = step
        super().__init__(f"step {step!r}: {message}")


class ObserverError(PipelineError):
    """A run observer (e.g. the run recorder) failed: the run cannot go on and fails loudly."""

    def __init__(self, observer: str, event: str, detail: str) -> None:
        self.observer = observer
        self.event = event
        super().__init__(f"observer {observer} failed on {event}: {detail}")


class WorkspaceError(PipelineError):
    """A path points outside the run's workspace (``..``, absolute, symlink out)."""

    default_message = "That path is outside the workspace."


class BudgetExceeded(ElexirionError):
    """A provider call refused before it was made: it could cross a spend cap.

    ``scope`` is ``"monthly"`` (the user's monthly cap), ``"run"`` (the per-run cap) or
    ``"global"`` (everyone's monthly cap); ``cap``, ``spent`` (booked so far in that scope),
    ``reserved`` (held by calls in flight) and ``estimate`` (this call's worst case) are USD.
    """

    default_message = "The budget is exhausted."

    def __init__(
        self,
        *,
        scope: str,
        cap: Decimal,
        spent: Decimal,
        reserved: Decimal,
        estimate: Decimal,
    ) -> None:
        self.scope, self.cap, self.spent = scope, cap, spent
        self.reserved, self.estimate = reserved, estimate
        what = {"monthly": "your monthly", "run": "this run's", "global": "the global monthly"}
        left = max(cap - spent - reserved, Decimal("0"))
        super().__init__(
            f"Budget exceeded: {what.get(scope, scope)} cap is ${cap:.4f}; ${spent:.4f} spent, "
            f"${reserved:.4f} reserved by calls in flight, ${left:.4f} left, and this call "
            f"may cost up to ${estimate:.4f}. Ask an admin to raise the cap."
        )

    def numbers(self) -> dict[str, str | float]:
        """The figures as JSON-ready values (HTTP 402 body, CLI)."""
        return {
            "scope": self.scope,
            "cap_usd": float(self.cap),
            "spent_usd": float(self.spent),
            "reserved_usd": float(self.reserved),
            "estimate_usd": float(self.estimate),
        }


# --- providers -------------------------------------------------------------------------


@dataclass
class ProviderErrorInfo:
    provider: str = ""
    status: int | None = None
    retry_after_s: float | None = None
    attempts: int = 1
    extra: dict[str, str] = field(default_factory=dict)


class ProviderError(ElexirionError):
    """A model provider failed after its retry policy was exhausted."""

    default_message = "The model provider failed."

    def __init__(
        self,
        message: str | None = None,
        *,
        provider: str = "",
        status: int | None = None,
        retry_after_s: float | None = None,
        attempts: int = 1,
    ) -> None:
        self.provider = provider
        self.status = status
        self.retry_after_s = retry_after_s
        self.attempts = attempts
        super().__init__(message)


class RateLimited(ProviderError):
    default_message = "The model provider is rate limiting us (429). Try again shortly."


class ProviderOverloaded(ProviderError):
    default_message = "The model provider is overloaded. Try again shortly."


class ProviderTimeout(ProviderError):
    default_message = "The model provider did not answer in time."


class ProviderConnectionError(ProviderError):
    default_message = "Could not reach the model provider."


class ProviderResponseError(ProviderError):
    """Malformed, truncated or error-terminated response (incl. mid-stream error events)."""

    default_message = "The model provider sent an incomplete or invalid answer."


class ProviderAuthError(ProviderError):
    default_message = "The model provider rejected the API key."
