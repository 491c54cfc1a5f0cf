"""GET /metrics over the API app (httpx's ASGI transport, a fresh database): who may read it
(the metrics token, an admin's key; not anonymous, not a member, not a short token), what
it shows (requests by route template, runs going and queued), and that it stays out of the
OpenAPI schema. The middleware's websocket counting on a tiny ASGI app."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from elexirion_app.api.http import app as http_app
from elexirion_app.api.http import metrics_routes
from elexirion_app.core import metrics
from elexirion_app.db.engine import session_scope
from elexirion_app.db.models import AppUser, Run
from elexirion_app.services.accounts import api_keys, auth, rate_limits

TOKEN = "scrape-token-0123456789abcdef"


@pytest.fixture(autouse=True)
def fresh_metrics(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv(metrics.MULTIPROC_ENV, raising=False)
    metrics.reset()
    yield
    metrics.reset()


@pytest.fixture
async def api(db_url: str, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[httpx.AsyncClient]:
    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.setenv(metrics_routes.TOKEN_ENV, TOKEN)
    rate_limits.reset()
    transport = httpx.ASGITransport(app=http_app.build())
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client
    rate_limits.reset()


def _key(email: str, admin: bool = False) -> str:
    with session_scope() as session:
        user = auth.register(session, email, "password-123")
        row = session.get(AppUser, user.id)
        assert row is not None
        row.is_admin = admin
        session.add(row)
        session.commit()
        _view, plain = api_keys.create_key(session, user.id, "test")
    return plain


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


async def test_only_the_token_or_an_admins_key_may_read_metrics(
    api: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    member, admin = _key("m@example.com"), _key("a@example.com", admin=True)
    refused = [
        ({}, 401, "unauthorized"),
        ({"Authorization": "Bearer wrong-token-0123456789"}, 401, "unauthorized"),
        ({"Authorization": f"Basic {TOKEN}"}, 401, "unauthorized"),
        ({"Authorization": f"Bearer {member}"}, 403, "forbidden"),
    ]
    for headers, status, code in refused:
        resp = await api.get("/metrics", headers=headers)
        assert resp.status_code == status, (headers, resp.text)
        assert resp.json()["error"]["code"] == code
        assert "elx_llm" not in resp.text and "# TYPE" not in resp.text
    for good in (TOKEN, admin):
        resp = await api.get("/metrics", headers={"Authorization": f"Bearer {good}"})
        assert resp.status_code == 200, resp.text
        assert resp.headers["content-type"].startswith("text/plain")
        assert "elx_db_up 1.0" in resp.text
    monkeypatch.setenv(metrics_routes.TOKEN_ENV, "short")  # under 16 characters: not accepted
    resp = await api.get("/metrics", headers={"Authorization": "Bearer short"})
    assert resp.status_code == 401


async def test_requests_are_counted_by_route_template_and_runs_by_status(
    api: httpx.AsyncClient,
) -> None:
    member = _key("m@example.com")
    with session_scope() as session:
        for i, status in enumerate(("queued", "running", "running", "succeeded")):
            session.add(Run(id=f"run-{i}", status=status))
        session.commit()
    for run_id in ("a", "b", "c"):
        resp = await api.get(f"/api/runs/{run_id}", headers={"Authorization": f"Bearer {member}"})
        assert resp.status_code == 404
    assert (await api.get("/healthz")).status_code == 200
    resp = await api.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    samples = _samples(resp.text)
    runs = (("method", "GET"), ("route", "/api/runs/{run_id}"), ("status", "404"))
    assert samples[("elx_http_requests_total", runs)] == 3
    assert (
        samples[
            (
                "elx_http_requests_total",
                (("method", "GET"), ("route", "/healthz"), ("status", "200")),
            )
        ]
        == 1
    )
    timing = (("method", "GET"), ("route", "/api/runs/{run_id}"))
    assert samples[("elx_http_request_duration_seconds_count", timing)] == 3
    assert not any("/api/runs/a" in str(labels) for _name, labels in samples)  # no raw paths
    assert samples[("elx_runs_active", ())] == 2
    assert samples[("elx_runs_queued", ())] == 1


async def test_metrics_is_not_in_the_openapi_schema(api: httpx.AsyncClient) -> None:
    schema = (await api.get("/api/openapi.json")).json()
    assert "/metrics" not in schema["paths"]


async def test_a_server_error_is_counted_as_500() -> None:
    async def broken(scope: Any, receive: Any, send: Any) -> None:
        raise RuntimeError("boom")

    app = metrics_routes.MetricsMiddleware(broken)
    scope = {"type": "http", "method": "GET", "path": "/x", "headers": []}
    with pytest.raises(RuntimeError):
        await app(scope, None, None)
    assert metrics._REGISTRY is not None
    labels = {"route": "unmatched", "method": "GET", "status": "500"}
    assert metrics._REGISTRY.get_sample_value("elx_http_requests_total", labels) == 1


async def test_websocket_sessions_are_counted_when_accepted_and_closed() -> None:
    sent: list[dict[str, Any]] = []

    async def socket_app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        if scope["path"] == "/_event":
            await send({"type": "websocket.accept"})
            assert metrics._REGISTRY is not None
            assert metrics._REGISTRY.get_sample_value("elx_websocket_sessions") == 1
        await send({"type": "websocket.close"})

    async def receive() -> dict[str, Any]:
        return {"type": "websocket.connect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    app = metrics_routes.MetricsMiddleware(socket_app)
    await app({"type": "websocket", "path": "/_event"}, receive, send)
    await app({"type": "websocket", "path": "/refused"}, receive, send)  # closed, never accepted
    reg = metrics._REGISTRY
    assert reg is not None
    assert reg.get_sample_value("elx_websocket_connects_total") == 1
    assert reg.get_sample_value("elx_websocket_disconnects_total") == 1
    assert reg.get_sample_value("elx_websocket_sessions") == 0
