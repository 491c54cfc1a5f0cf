"""The HTTP API (``/api/*``, ``/healthz``): FastAPI, mounted in front of Reflex's backend."""
