"""Pipelines and their runs: the library and versions, starting runs, run records, run views."""
