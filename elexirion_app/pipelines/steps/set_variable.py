"""``set_variable``: values are already rendered (a whole ``{{expr}}`` keeps its type).

Scopes: ``global``/``session`` write the run's variables (visible as ``state.x`` and bare
``x``, and they persist across loop iterations — pipeline_ex loses them, a bug); ``loop``
writes the innermost loop context (``loop.x``), or the run's variables outside a loop.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from elexirion_app.core.errors import StepError
from elexirion_app.pipelines.scope import Scope

if TYPE_CHECKING:
    from elexirion_app.pipelines.run_context import RunContext

SCOPES = ("global", "session", "loop")


async def run_set_variable(ctx: RunContext, step: dict[str, Any], scope: Scope, name: str) -> Any:
    variables = step.get("variables")
    if variables is None and "variable" in step:
        variables = {str(step["variable"]): step.get("value")}
    if not isinstance(variables, Mapping):
        raise StepError(name, "set_variable needs a 'variables' map")
    where = str(step.get("scope") or "global")
    if where not in SCOPES:
        raise StepError(name, f"scope must be one of {', '.join(SCOPES)}, not {where!r}")
    target = scope.loop if where == "loop" and scope.loop is not None else scope.variables
    values = {str(k): v for k, v in variables.items()}
    target.update(values)
    return {"success": True, "variables_set": values, "scope": where, "variable_count": len(values)}
