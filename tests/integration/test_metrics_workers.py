"""GET /metrics of an app served by two workers on Redis (multiprocess mode, issue 10 item 3):
each worker writes its own files in one ``prometheus/server-<pid>`` folder of the data dir,
and every scrape, whichever worker answers it, shows the sum of both."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis
from prometheus_client.parser import text_string_to_metric_families

from tests.support import appserver

PORT = int(os.environ.get("ELEXIRION_METRICS_WORKERS_PORT", "3153"))
REDIS_URL = "redis://127.0.0.1:6379/8"
TOKEN = "metrics-token-for-the-tests-0123456789"


def healthz_count(text: str) -> float:
    return sum(
        s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == "elx_http_requests_total"
        and s.labels.get("route") == "/healthz"
        and s.labels.get("status") == "200"
    )


@pytest.fixture(scope="module")
def workers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """The app's URL and data folder."""
    client = redis.Redis.from_url(REDIS_URL, socket_timeout=2)
    client.flushdb()
    data = tmp_path_factory.mktemp("metrics-workers")
    env = {
        "REDIS_URL": REDIS_URL,
        "GRANIAN_WORKERS": "2",
        "ELEXIRION_METRICS_TOKEN": TOKEN,
        "ELEXIRION_LIMIT_REGISTER_CLIENT": "100/minute",
    }
    try:
        with appserver.serving(data, PORT, **env):
            yield f"http://localhost:{PORT}", data
    finally:
        client.flushdb()


def test_two_workers_share_their_counters_in_every_scrape(workers: tuple[str, Path]) -> None:
    url, data = workers
    auth = {"Authorization": f"Bearer {TOKEN}"}
    n = 40
    with httpx.Client(base_url=url, timeout=30) as api:
        for _ in range(n):
            # a new connection each time, so that both workers answer some of them
            assert httpx.get(url + "/healthz", timeout=30).status_code == 200
        counts = {healthz_count(api.get("/metrics", headers=auth).text) for _ in range(6)}
    assert counts == {float(n)}, counts  # whichever worker scraped: the sum of both
    folders = list((data / "prometheus").glob("server-*"))
    assert len(folders) == 1
    pids = {name.rsplit("_", 1)[1] for name in os.listdir(folders[0]) if "counter_" in name}
    assert len(pids) >= 2, pids  # both workers wrote their own files
