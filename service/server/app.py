"""The application factory: `create_app(settings)` builds the FastAPI app; its lifespan loads the models."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import anyio
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from starlette.concurrency import run_in_threadpool

from digit_frontend.pipeline import FRONT_END, use_front_end
from service.api.error_handlers import install_error_handlers
from service.api.routes import admin_router, api_router, web
from service.errors import DeviceUnavailable, ErrorBody, StoreUnavailable
from service.inference.dataplane import DataPlane
from service.inference_protocol.serving import mount as mount_protocol
from service.inference_protocol.serving import serve_protocol
from service.models.front_end import load_front_end
from service.models.registry import ModelRegistry
from service.models.reloader import StoreReloader
from service.models.sessions import SessionFactory, create_onnx_session, plan_providers
from service.models.versions import parse_policies
from service.observability.metrics import MetricsMiddleware, ServiceMetrics
from service.observability.saturation import SaturationMonitor
from service.observability.tracing import TracingMiddleware, configure_tracing, flush_tracing
from service.server.headers import HostAndOriginMiddleware, SecurityHeadersMiddleware
from service.server.limits import BodyBudget, BodyLimitMiddleware, CountingSemaphore, QueryLengthLimitMiddleware
from service.server.memory import return_large_buffers_to_os, trim_periodically
from service.server.probes import serve_management
from service.settings import Settings

log = logging.getLogger(__name__)

DESCRIPTION = """\
Handwritten digit classification with a zoo of models served from an ONNX model store: MLPs and
CNNs on MNIST (the seed's variants: plain, with Dropout, with Gaussian noise; and those of later
experiments) and on other datasets such as UCI's 8x8 digits. `GET /models` lists them.

Send a photo or a drawing of a digit to `POST /predict`; compare the models with
`GET /models/compare`. Every error has the body `{"error": "<message>", ...}`.
"""


def _package_version() -> str:
    try:
        return version("digit-serving")
    except PackageNotFoundError:  # run from a source tree (the container image) without installing
        return "0.1.0"


def create_app(
    settings: Settings | None = None,
    *,
    session_factory: SessionFactory = create_onnx_session,
    available_providers: Sequence[str] | None = None,
    span_exporter: Any = None,
) -> FastAPI:
    """Build the service.

    Args:
        settings: configuration; read from `DIGITS_*` environment variables when omitted.
        session_factory: builds an inference session from model bytes (tests pass fakes).
        available_providers: what onnxruntime offers; `onnxruntime.get_available_providers()`
            when omitted (tests pass lists to exercise the device choice without a GPU).
        span_exporter: with tracing on (DIGITS_OTLP_ENDPOINT), an OpenTelemetry SpanExporter that
            replaces the OTLP one (tests pass the SDK's in-memory exporter).

    Returns:
        The app. Models load when its lifespan starts (`with TestClient(app)`, or uvicorn).
    """
    settings = settings if settings is not None else Settings()
    tracing = configure_tracing(settings, version=_package_version(), exporter=span_exporter)
    metrics = ServiceMetrics()
    return_large_buffers_to_os()
    app = FastAPI(
        title="Digit serving",
        version=_package_version(),
        description=DESCRIPTION,
        lifespan=_lifespan(settings, metrics, session_factory, available_providers),
        # FastAPI's own /docs and /redoc load from a CDN with an inline script; service/api/routes/web.py
        # serves them from vendored copies instead.
        docs_url=None,
        redoc_url=None,
        # Documents the one error body on every route, and replaces FastAPI's own 422 schema
        # (the handlers reshape validation errors into this body too).
        responses={"default": {"model": ErrorBody, "description": "Error (any other status)"}},
    )
    app.state.settings = settings
    app.state.metrics = metrics
    app.state.large_uploads = CountingSemaphore(settings.max_large_uploads)
    app.state.body_budget = BodyBudget(settings.max_inflight_body_bytes)
    # Parsing large /v2 bodies off the event loop, as many at once as there are work threads.
    app.state.decode_threads = anyio.CapacityLimiter(settings.work_threads)
    _install_routes(app, settings)
    _install_middleware(app, settings, metrics, tracing=tracing)
    return app


def _lifespan(settings: Settings, metrics: ServiceMetrics, session_factory: SessionFactory,
              available_providers: Sequence[str] | None) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    """What runs while the app serves: the models and front end loaded, the background tasks, the
    protocol's and the management port's listeners; everything given back when it stops."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        disable_onnxruntime_telemetry()
        if available_providers is None:
            import onnxruntime as ort

            offered: Sequence[str] = ort.get_available_providers()
        else:
            offered = available_providers
        try:
            plan = plan_providers(settings.device, offered)
            registry = ModelRegistry(
                settings.model_store,
                plan,
                intra_op_threads=settings.intra_op_threads,
                warmup_runs=settings.warmup_runs,
                default_model=settings.default_model,
                default_upload_model=settings.default_upload_model,
                session_factory=session_factory,
                version_policies=parse_policies(settings.version_policy),
            )
            models = await run_in_threadpool(registry.load)
            # The front end is one per process (`digit_frontend.pipeline.FRONT_END`): this app's
            # while it runs, the one before it after (tests build several apps in one process).
            previous_front_end = FRONT_END.segmenter, FRONT_END.pairs
            use_front_end(*await run_in_threadpool(load_front_end, settings))
        except (StoreUnavailable, DeviceUnavailable) as exc:
            log.critical("cannot start: %s", exc)
            raise
        metrics.observe_registry(models)
        for name in models:
            metrics.prime_model(name)
        ready = sum(m.ready for m in models.values())
        log.info("%d of %d models ready on %s; default model: %s", ready, len(models), settings.device,
                 registry.default_name())
        # This frame lives as long as the app: holding the first load here kept its sessions (~36 MB)
        # alive after the first reload had replaced them.
        del models
        app.state.registry = registry
        app.state.dataplane = DataPlane(registry, settings, metrics)
        app.state.reloader = reloader = StoreReloader(registry, metrics)
        # A segmenter published after the start is taken up by a reload, as a classifier is.
        reloader.load_with_models.append(lambda: use_front_end(*load_front_end(settings)))
        restore_signal_handler = reloader.install_signal_handler()  # SIGHUP reloads the store
        # What a burst of large or aborted requests freed goes back to the system (service.server.memory),
        # the model arena's growth after large batches first.
        trimmer = asyncio.create_task(trim_periodically(first=registry.give_arena_back))
        app.state.saturation = monitor = SaturationMonitor(lambda: queued_work(app), settings.saturation_seconds)
        sampler = asyncio.create_task(monitor.watch())
        try:
            # The Open Inference Protocol's plane, and its gRPC server when DIGITS_GRPC_PORT is set.
            async with serve_protocol(app, app.state.dataplane, settings, app.version):
                share_gates(app, reloader)
                # Health, metrics and admin on their own port when DIGITS_MANAGEMENT_PORT is set.
                async with serve_management(app, settings):
                    yield
        finally:
            sampler.cancel()
            trimmer.cancel()
            restore_signal_handler()
            registry.close()
            use_front_end(*previous_front_end)
            flush_tracing()

    return lifespan


def _install_routes(app: FastAPI, settings: Settings) -> None:
    install_error_handlers(app)
    app.include_router(api_router)
    mount_protocol(app)  # /v2/...: the Open Inference Protocol (KServe V2, Triton's clients)
    app.include_router(web.router)
    web.mount_static(app)
    if settings.admin_token is not None:
        app.include_router(admin_router)  # without a token the admin routes do not exist at all


def _install_middleware(app: FastAPI, settings: Settings, metrics: ServiceMetrics, *, tracing: bool) -> None:
    # Added innermost first: CORS (outermost) answers preflights and decorates every response, the
    # security headers go on every answer including errors,
    # metrics see every request including 413s, 414s and 499s, and the body limits wrap the body reads.
    app.add_middleware(
        BodyLimitMiddleware,
        max_bytes=settings.max_upload_bytes,
        timeout=settings.body_timeout,
        idle_timeout=settings.body_idle_timeout,
        min_rate=settings.min_upload_rate,
        rate_grace=settings.upload_rate_grace,
        budget=app.state.body_budget,
    )
    app.add_middleware(QueryLengthLimitMiddleware)
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    # Before metrics: a request for another host, or a cross-site form post, is no route's request.
    app.add_middleware(HostAndOriginMiddleware, allowed_hosts=settings.allowed_hosts,
                       allowed_origins=settings.cors_origins)
    app.add_middleware(SecurityHeadersMiddleware)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["Content-Type", "Authorization"],
        )
    if tracing:
        app.add_middleware(TracingMiddleware)  # outermost: the request's span covers every layer


def disable_onnxruntime_telemetry() -> None:
    """Turn ONNX Runtime's telemetry off before any session exists.

    Left on, the serving process opened `~/.cache/Microsoft/.../onnxruntime.db` read-write, queued
    events (OS, CPU, executable path) and looked up a Microsoft telemetry host, which SECURITY.md's
    "writes nothing" does not allow. Tests that pass fake sessions may run without onnxruntime.
    """
    try:
        import onnxruntime as ort
    except ImportError:
        return
    disable = getattr(ort, "disable_telemetry_events", None)
    if disable is not None:
        disable()


def queued_work(app: FastAPI) -> int:
    """Requests waiting for a body-budget reservation, a large-upload slot or a work thread (readiness),
    read as the saturation monitor samples, never on the request path."""
    state = app.state
    waiting: int = state.body_budget.waiting + state.large_uploads.waiting
    dataplane: DataPlane | None = getattr(state, "dataplane", None)
    return waiting + (dataplane.waiting_for_threads() if dataplane is not None else 0)


def share_gates(app: FastAPI, reloader: StoreReloader) -> None:
    """Give the gRPC server the REST side's gates, and the batcher the reloads (both exist only now)."""
    server = getattr(app.state, "grpc_server", None)
    if server is not None:
        server.share_gates(app.state.body_budget, app.state.large_uploads, app.state.decode_threads)
    batcher = getattr(app.state, "batcher", None)
    if batcher is not None:
        registry = app.state.registry

        def retire_replaced() -> None:
            batcher.retire_stale([m for name in registry.models for m in registry.versions(name).values()])

        reloader.after_reload.append(retire_replaced)


def create_app_from_env() -> FastAPI:
    """Factory for uvicorn (`service.server.app:create_app_from_env`): settings from the environment."""
    settings = Settings()
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s", force=False
    )
    logging.getLogger("service").setLevel(settings.log_level.upper())
    return create_app(settings)
