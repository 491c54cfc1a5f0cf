"""``test_echo``: pipeline_ex's test-only step type (its fixtures use it); echoes ``value``.

Validation reports it as a warning. The result is ``{success, result: <rendered value>}`` so
pipeline_ex's ``{{steps.NAME.result}}`` references work.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from elexirion_app.pipelines.scope import Scope

if TYPE_CHECKING:
    from elexirion_app.pipelines.run_context import RunContext


async def run_test_echo(ctx: RunContext, step: dict[str, Any], scope: Scope, name: str) -> Any:
    return {"success": True, "result": step.get("value")}
