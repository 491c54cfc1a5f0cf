"""What a user sees when an event handler fails in a way no handler caught.

Every handler is a public endpoint and answers bad input itself with a clear message; this
is the last line for the rest (a payload that does not even bind to the handler's
parameters, a bug): logged with its traceback, shown as one plain sentence — never Reflex's
"An error occurred." and never a traceback.
"""

from __future__ import annotations

import logging

from reflex_base.event import EventSpec

from elexirion_app.web.state.notice import NoticeState

log = logging.getLogger(__name__)

MALFORMED = "That request was not understood and was ignored."
FAILED = "Something went wrong on our side. It has been logged; please try again."


def backend_exception_handler(exception: Exception) -> EventSpec:
    if isinstance(exception, TypeError | ValueError | KeyError | OverflowError | AttributeError):
        # A forged or stale event: arguments that do not bind or parse, ``setvar`` of a var
        # that has no setter. Logged short: the payload may be a megabyte.
        log.warning("refused a malformed event: %s: %.200s", type(exception).__name__, exception)
        message = MALFORMED
    else:
        log.error("event handler failed", exc_info=exception)
        message = FAILED
    return NoticeState.show(message)  # type: ignore[operator]  # (reflex stubs: a Var-only call)
