"""The HTTP API: ``create_app()`` builds the FastAPI app that ``voicecall api`` serves.

Routes: ``/v1/calls...`` (:mod:`producer.calls_api`, bearer auth), listing, export and
campaigns (:mod:`producer.search_api`, bearer auth), the eSMS callback route
(:mod:`producer.callback_api`, signed URLs), and the unauthenticated operations routes here:
``/healthz`` (the process answers), ``/readyz`` (Redis answers; else 503) and ``/metrics``
(this process's metrics, or every API process's in multiprocess mode, plus the Redis gauges
of :mod:`producer.exporter`; behind ``METRICS_TOKEN`` when that is set). Error bodies:
:mod:`producer.errors`. The operator console (:mod:`producer.console`) at ``/console``;
``/docs`` and ``/redoc`` with local assets (:mod:`producer.docs`).
"""

from __future__ import annotations

import gc
import os
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from starlette.concurrency import run_in_threadpool

from producer import console, docs, errors, openapi
from producer.auth import require_metrics_token
from producer.bulk_api import router as bulk_router
from producer.callback_api import router as callback_router
from producer.calls_api import router as calls_router
from producer.client import VoiceCallClient
from producer.exporter import RedisExporter
from producer.intake import Intake
from producer.middleware import RequestMiddleware
from producer.search import cursors
from producer.search_api import router as search_router
from voicecall import __version__
from voicecall.config.settings import Settings, load_settings
from voicecall.store.job_store import AsyncJobStore, JobStore
from voicecall.telemetry import tracing
from voicecall.telemetry.logs import configure_logging, get_logger, scrub
from voicecall.telemetry.metrics import mark_build

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
DESCRIPTION = """Enqueue outbound voice calls through eSMS.vn and follow them to their result.

Authenticate with `Authorization: Bearer <token>` (one of `API_TOKENS`). Each token is an API
client with a name (`API_TOKENS` entries are `name=token`): every job records the client that
made it (`client`), and idempotency keys, cursors and `API_TOKEN_QUOTA` are each client's own;
reading and cancelling are open to every client. Every response carries
`X-Request-ID` (yours if you sent a sane one; it becomes the job's `trace_id`) and
`X-Content-Type-Options: nosniff`. Send an
`idempotency_key` (or the `Idempotency-Key` header) to make retries safe: a repeat from the
same client with the same body answers 202 with the same job, `replay: true` and
`Idempotent-Replayed: true`; with another body, 409. Bodies are `application/json` (else 415). Errors are JSON:
`{"error": code, "message": ..., "request_id": ..., "errors": [{"field", "message"}]}`.
"""

log = get_logger("voicecall.api")
ops = APIRouter(tags=["operations"])


def log_secrets(settings: Settings) -> list[str]:
    """Values the log redactor must never let through."""
    return [
        settings.esms_api_key,
        settings.esms_secret_key,
        settings.callback_secret,
        settings.webhook_secret,
        settings.metrics_token,
        *(entry.token for entry in settings.api_tokens),
    ]


@ops.get("/healthz", summary="The process is alive")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@ops.get(
    "/readyz",
    summary="Redis is reachable (503 otherwise)",
    response_model=openapi.ReadyAnswer,
    responses={503: {"model": openapi.ReadyAnswer, "description": "Redis unreachable."}},
)
async def readyz(request: Request) -> JSONResponse:
    store: JobStore = request.app.state.store
    try:
        await run_in_threadpool(store.ping)
    except errors.REDIS_UNAVAILABLE as exc:
        log.warning("not_ready", error=repr(exc))
        return JSONResponse(
            {"status": "unavailable", "redis": "unreachable"},
            status_code=503,
            headers={"Retry-After": str(errors.RETRY_AFTER_S)},
        )
    return JSONResponse({"status": "ready", "redis": "ok"})


@ops.get(
    "/metrics",
    summary="Prometheus metrics (bearer METRICS_TOKEN when it is set)",
    response_class=Response,
    dependencies=[Depends(require_metrics_token)],
    # Open unless METRICS_TOKEN is set: {} ("no credentials") joins the MetricsToken scheme
    # FastAPI lists from the dependency.
    openapi_extra={"security": [{}]},
    responses={
        200: {"content": {CONTENT_TYPE_LATEST.split(";")[0]: {"schema": {"type": "string"}}}},
        401: {"model": openapi.ErrorBody, "description": "METRICS_TOKEN is set; not sent."},
    },
)
def metrics(request: Request) -> Response:
    exporter_registry: CollectorRegistry = request.app.state.exporter_registry
    if os.environ.get(MULTIPROC_ENV):
        registry = CollectorRegistry()
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    else:
        registry = REGISTRY
    payload = generate_latest(registry) + generate_latest(exporter_registry)
    return Response(payload, media_type=CONTENT_TYPE_LATEST)


def _lifespan(
    store: JobStore, async_store: AsyncJobStore
) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        mark_build()
        # Everything built so far (FastAPI, pydantic schemas, the app) lives as long as the
        # process: out of the collector's sight, so a full collection no longer walks it
        # and stalls every request in flight for tens of ms (p99 of figure 6).
        gc.collect()
        gc.freeze()
        log.info("api_started", pid=os.getpid())
        yield
        store.close()
        await async_store.close()
        if os.environ.get(MULTIPROC_ENV):
            mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]

    return lifespan


API_RIDE_OUT_S = 3.0  # a Sentinel failover with down-after-milliseconds 1000 fits in it


def create_app(settings: Settings | None = None) -> FastAPI:
    """The app for ``settings`` (default: read from the environment, role ``api``)."""
    settings = (settings or load_settings()).require("api")
    configure_logging(
        level=settings.log_level, fmt=settings.log_format, secrets=log_secrets(settings)
    )
    tracing.setup("api")
    # With sentinels a request rides out a failover for API_RIDE_OUT_S at most, then answers
    # 503 with Retry-After: the client's retry with its Idempotency-Key is safe.
    store = JobStore.from_settings(settings, ride_out_s=API_RIDE_OUT_S)
    async_store = AsyncJobStore.from_settings(settings, ride_out_s=API_RIDE_OUT_S)
    exporter_registry = CollectorRegistry(auto_describe=False)
    exporter_registry.register(RedisExporter(store, settings.worker_liveness_s))

    app = FastAPI(
        title="voicecall",
        version=__version__,
        description=DESCRIPTION,
        lifespan=_lifespan(store, async_store),
        generate_unique_id_function=openapi.operation_id,
        docs_url=None,  # producer.docs serves them with local assets
        redoc_url=None,
    )
    state: dict[str, Any] = {
        "settings": settings,
        "store": store,
        "client": VoiceCallClient(settings, store),
        "intake": Intake(settings, store, async_store),
        # Aligned lists: the bearer tokens (producer.auth, the console) and their clients' names.
        "api_tokens": [entry.token.encode() for entry in settings.api_tokens],
        "api_client_names": [entry.name for entry in settings.api_tokens],
        "cursor_key": cursors.cursor_key(settings.callback_secret),  # signs search cursors
        "async_store": async_store,
        "metrics_token": settings.metrics_token.encode() or None,
        "exporter_registry": exporter_registry,
    }
    for name, value in state.items():
        setattr(app.state, name, value)
    errors.install(app)
    # Routes are matched in order: the API's busiest first (POST /v1/calls was checked
    # against every console and docs route before its own).
    app.include_router(search_router)  # before /v1/calls/{job_id}, which would take "export"
    app.include_router(calls_router)
    app.include_router(callback_router)
    app.include_router(bulk_router)
    app.include_router(ops)
    openapi.install(app)
    docs.install(app)
    console.install(app)
    app.add_middleware(RequestMiddleware, max_body_bytes=settings.api_max_body_bytes)
    tracing.instrument_app(app, scrub)  # outermost: its span covers every answer, 413 and 5xx too
    return app
