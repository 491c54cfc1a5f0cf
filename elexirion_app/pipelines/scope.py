"""What templates and conditions can see while a pipeline runs."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Scope:
    """Name resolution for ``{{ }}`` templates and conditions.

    - ``inputs``: run inputs (``--input k=v``, nested pipeline inputs); bare names resolve here too.
    - ``global_vars``: the workflow's ``global_vars``.
    - ``steps``: results of finished steps by name (``steps.NAME.path`` and condition paths).
    - ``variables``: ``set_variable`` state (``state.x`` and bare ``x``).
    - ``loop``: the innermost loop context ``{<iterator>, index, total, first, last, level,
      parent}`` or None.
    - ``builtins``: ``timestamp``, ``date``, ``execution_id``, ``workflow`` (``{name, ...}``).
    """

    inputs: dict[str, Any] = field(default_factory=dict)
    global_vars: dict[str, Any] = field(default_factory=dict)
    steps: dict[str, Any] = field(default_factory=dict)
    variables: dict[str, Any] = field(default_factory=dict)
    loop: dict[str, Any] | None = None
    builtins: dict[str, Any] = field(default_factory=dict)

    def child(self, **changes: Any) -> Scope:
        """A shallow copy with some fields replaced (loops, nested pipelines)."""
        data: dict[str, Any] = {
            "inputs": self.inputs,
            "global_vars": self.global_vars,
            "steps": self.steps,
            "variables": self.variables,
            "loop": self.loop,
            "builtins": self.builtins,
        }
        data.update(changes)
        return Scope(**data)
