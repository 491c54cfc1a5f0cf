"""Prometheus metrics of the app (``prometheus_client``), rendered by ``GET /metrics``.

What is counted, and where it is fed from:
- HTTP requests by route template, method and status, and their latency (the API's ASGI
  middleware, ``api.http.metrics_routes``), websocket sessions (the same middleware sees
  Reflex's ``/_event`` socket: accepted, closed, open now);
- LLM calls by model, provider, caller and status, tokens by type, cost, errors, latency and
  time to first token, and budget refusals (``providers.metered.MeteredProvider``: where an
  attempt is booked and where a reservation is refused);
- runs going and queued (read from the database when scraped: ``RunsCollector``).

One process: the metrics live in this module's registry. Several workers (``reflex run`` with
Redis): ``prepare_multiprocess`` sets ``PROMETHEUS_MULTIPROC_DIR`` before the first metric is
made (each worker writes its own files there; a scrape on any worker merges them all), and a
scrape first drops the live gauges of workers that died. No reflex, no database here.
"""

from __future__ import annotations

import glob
import multiprocessing
import os
import re
import shutil
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, MutableMapping
from decimal import Decimal
from pathlib import Path
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
    values,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

from elexirion_app.core.types import TOKEN_KINDS, Usage

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
LLM_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0)
TTFT_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0)
MAX_LABEL = 100
_PID_FILE = re.compile(r"^(?P<kind>[a-z_]+)_(?P<pid>\d+)\.db$")
_SERVER_DIR = re.compile(r"^server-(?P<pid>\d+)$")


def _label(value: object) -> str:
    text = str(value) if value is not None else ""
    return text[:MAX_LABEL] or "unknown"


class _Metrics:
    """Every metric of the app, registered in ``registry`` (none in multiprocess mode)."""

    def __init__(self, registry: CollectorRegistry | None) -> None:
        reg: Any = registry
        self.http_requests = Counter(
            "elx_http_requests",
            "HTTP requests answered, by route template, method and status",
            ("route", "method", "status"),
            registry=reg,
        )
        self.http_seconds = Histogram(
            "elx_http_request_duration_seconds",
            "Time to answer an HTTP request (seconds), by route template and method",
            ("route", "method"),
            buckets=HTTP_BUCKETS,
            registry=reg,
        )
        self.ws_connects = Counter(
            "elx_websocket_connects", "Websocket sessions accepted (Reflex's /_event)", registry=reg
        )
        self.ws_disconnects = Counter(
            "elx_websocket_disconnects", "Websocket sessions closed", registry=reg
        )
        self.ws_open = Gauge(
            "elx_websocket_sessions",
            "Websocket sessions open now",
            registry=reg,
            multiprocess_mode="livesum",
        )
        llm = ("model", "provider", "caller")
        self.llm_calls = Counter(
            "elx_llm_calls",
            "LLM call attempts booked, by model, provider, caller and status (ok|error|stopped)",
            (*llm, "status"),
            registry=reg,
        )
        self.llm_errors = Counter(
            "elx_llm_errors", "LLM call attempts that failed", llm, registry=reg
        )
        self.llm_tokens = Counter(
            "elx_llm_tokens",
            "Tokens of the booked LLM attempts, by type (input, output, cache_read, "
            "cache_write, cache_write_1h, thinking)",
            (*llm, "type"),
            registry=reg,
        )
        self.llm_cost = Counter(
            "elx_llm_cost_usd", "Cost of the booked LLM attempts (USD)", llm, registry=reg
        )
        self.llm_seconds = Histogram(
            "elx_llm_latency_seconds",
            "Duration of an LLM attempt (seconds)",
            ("model", "provider"),
            buckets=LLM_BUCKETS,
            registry=reg,
        )
        self.llm_ttft = Histogram(
            "elx_llm_time_to_first_token_seconds",
            "Time from an LLM attempt's start to its first text (seconds)",
            ("model", "provider"),
            buckets=TTFT_BUCKETS,
            registry=reg,
        )
        self.budget_refusals = Counter(
            "elx_budget_refusals",
            "LLM calls refused before they were made: a spend cap would be crossed",
            ("scope", "caller"),
            registry=reg,
        )


_LOCK = threading.Lock()
_METRICS: _Metrics | None = None
_REGISTRY: CollectorRegistry | None = None


def multiprocess_dir() -> str | None:
    return os.environ.get(MULTIPROC_ENV) or None


def metrics() -> _Metrics:
    """The metrics of this process (made on first use)."""
    global _METRICS, _REGISTRY
    if _METRICS is None:
        with _LOCK:
            if _METRICS is None:
                if multiprocess_dir():
                    _REGISTRY = None
                else:
                    _REGISTRY = CollectorRegistry()
                    ProcessCollector(registry=_REGISTRY)
                    PlatformCollector(registry=_REGISTRY)
                _METRICS = _Metrics(_REGISTRY)
    return _METRICS


def reset() -> None:
    """Forget this process's metrics (tests; the next use starts from zero)."""
    global _METRICS, _REGISTRY
    with _LOCK:
        _METRICS, _REGISTRY = None, None


# --- feeding -----------------------------------------------------------------------------


def observe_http(route: str, method: str, status: int, seconds: float) -> None:
    m = metrics()
    m.http_requests.labels(_label(route), _label(method), str(status)).inc()
    m.http_seconds.labels(_label(route), _label(method)).observe(max(seconds, 0.0))


def websocket_opened() -> None:
    m = metrics()
    m.ws_connects.inc()
    m.ws_open.inc()


def websocket_closed() -> None:
    m = metrics()
    m.ws_disconnects.inc()
    m.ws_open.dec()


def llm_attempt(
    *,
    model: str,
    provider: str,
    caller: str,
    status: str,
    usage: Usage,
    cost: Decimal,
    latency_s: float,
    ttft_s: float | None,
) -> None:
    """One booked LLM attempt (one ledger row)."""
    m = metrics()
    labels = (_label(model), _label(provider), _label(caller))
    m.llm_calls.labels(*labels, _label(status)).inc()
    if status == "error":
        m.llm_errors.labels(*labels).inc()
    for kind in TOKEN_KINDS:
        amount = getattr(usage, kind)
        if amount:
            m.llm_tokens.labels(*labels, kind).inc(amount)
    m.llm_cost.labels(*labels).inc(float(cost))
    m.llm_seconds.labels(labels[0], labels[1]).observe(max(latency_s, 0.0))
    if ttft_s is not None:
        m.llm_ttft.labels(labels[0], labels[1]).observe(max(ttft_s, 0.0))


def budget_refused(*, scope: str, caller: str) -> None:
    metrics().budget_refusals.labels(_label(scope), _label(caller)).inc()


# --- scrape-time collectors --------------------------------------------------------------


class RunsCollector:
    """Runs going and queued, read by ``read()`` (``{"running": n, "queued": m}``) when
    scraped; ``read`` returning None means the database did not answer (``elx_db_up 0``)."""

    def __init__(self, read: Callable[[], Mapping[str, int] | None]) -> None:
        self.read = read

    def collect(self) -> Iterator[Metric]:
        counts = self.read()
        up = GaugeMetricFamily("elx_db_up", "Whether the database answered this scrape")
        up.add_metric([], 0 if counts is None else 1)
        yield up
        if counts is None:
            return
        active = GaugeMetricFamily("elx_runs_active", "Pipeline runs running now")
        active.add_metric([], counts.get("running", 0))
        yield active
        queued = GaugeMetricFamily("elx_runs_queued", "Pipeline runs queued (the queue depth)")
        queued.add_metric([], counts.get("queued", 0))
        yield queued


class _Union:
    def __init__(self, parts: Iterable[Any]) -> None:
        self.parts = list(parts)

    def collect(self) -> Iterator[Metric]:
        for part in self.parts:
            yield from part.collect()


def render(extra: Iterable[Any] = ()) -> tuple[bytes, str]:
    """The text exposition of every metric (merged over the workers in multiprocess mode)
    plus the ``extra`` collectors; and its content type. File I/O: call it off the loop."""
    path = multiprocess_dir()
    if path:
        drop_dead_live_gauges(path)
        base: Any = MultiProcessCollector(None, path=path)
    else:
        metrics()
        base = _REGISTRY
    return generate_latest(_Union([base, *extra])), CONTENT_TYPE_LATEST  # type: ignore[arg-type]


# --- several worker processes ------------------------------------------------------------


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _pid_files(path: str | Path) -> Iterator[tuple[Path, str, int]]:
    for name in os.listdir(path):
        match = _PID_FILE.match(name)
        if match:
            yield Path(path) / name, match["kind"], int(match["pid"])


def drop_dead_live_gauges(path: str | Path) -> list[int]:
    """``mark_process_dead`` for every worker whose live gauges are there but who is gone."""
    dead = sorted(
        {
            pid
            for _file, kind, pid in _pid_files(path)
            if kind.startswith("gauge_live") and pid != os.getpid() and not _alive(pid)
        }
    )
    for pid in dead:
        mark_process_dead(pid, str(path))
    return dead


def drop_dead_files(path: str | Path) -> int:
    """Remove every file of a process that is gone (at server start: a former run's)."""
    removed = 0
    for file, _kind, pid in list(_pid_files(path)):
        if pid != os.getpid() and not _alive(pid):
            file.unlink(missing_ok=True)
            removed += 1
    return removed


def prepare_multiprocess(
    data_dir: Path, several_workers: bool, env: MutableMapping[str, str] | None = None
) -> Path | None:
    """Multiprocess mode for a server with several workers: before any metric is made.

    ``PROMETHEUS_MULTIPROC_DIR`` set (by the operator, or inherited from the server process
    that forked this worker) is used as it is; else, with several workers, it becomes
    ``<data_dir>/prometheus/server-<pid of the server process>`` (the same for every worker of
    one server, forked or spawned), and the folders of servers that are gone are removed.
    Files of dead processes are removed from the folder. Returns the folder (None: one
    process, nothing to share).
    """
    env = os.environ if env is None else env
    path = env.get(MULTIPROC_ENV)
    if not path:
        if not several_workers:
            return None
        parent = multiprocessing.parent_process()
        server = parent.pid if parent is not None and parent.pid else os.getpid()
        base = Path(data_dir) / "prometheus"
        base.mkdir(parents=True, exist_ok=True)
        for old in base.iterdir():
            match = _SERVER_DIR.match(old.name)
            if match and int(match["pid"]) != server and not _alive(int(match["pid"])):
                shutil.rmtree(old, ignore_errors=False)
        path = str(base / f"server-{server}")
        env[MULTIPROC_ENV] = path
    Path(path).mkdir(parents=True, exist_ok=True)
    drop_dead_files(path)
    if env is os.environ and not getattr(values.ValueClass, "_multiprocess", False):
        # prometheus_client picked its value class when it was imported; from now on every
        # metric made here writes to the shared folder.
        values.ValueClass = values.MultiProcessValue()
        reset()
    return Path(path)


def files_in(path: str | Path) -> list[str]:
    return sorted(os.path.basename(f) for f in glob.glob(os.path.join(str(path), "*.db")))
