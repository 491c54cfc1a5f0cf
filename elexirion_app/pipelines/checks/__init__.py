"""Semantic validation of a pipeline, split by concern.

``context`` (the shared ``Ctx``, ``StepInfo`` and helpers) and ``tables`` (the names and values
validation knows) are imported by every check module; ``structure``, ``prompts``,
``references``, ``llm``, ``loops``, ``data``, ``nested`` and ``types`` (values against the
spec's field types) hold the checks. The orchestrator is
``pipelines/validate.py``: it imports the checks, never the other way round (recursion goes
through ``Ctx.walk``).
"""
