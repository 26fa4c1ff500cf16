"""The application factory: `create_app(settings)` builds the FastAPI app; its lifespan loads the models."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from importlib.metadata import PackageNotFoundError, version

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from starlette.concurrency import run_in_threadpool

from service.dataplane import DataPlane
from service.errors import DeviceUnavailable, ErrorBody, StoreUnavailable
from service.headers import SecurityHeadersMiddleware
from service.inference_protocol.serving import mount as mount_protocol
from service.inference_protocol.serving import serve_protocol
from service.limits import BodyLimitMiddleware, QueryLengthLimitMiddleware
from service.memory import return_large_buffers_to_os, trim_periodically
from service.metrics import MetricsMiddleware, ServiceMetrics
from service.registry import ModelRegistry
from service.reloader import StoreReloader
from service.routes import admin_router, api_router, web
from service.routes.errors import install_error_handlers
from service.sessions import SessionFactory, create_onnx_session, plan_providers
from service.settings import Settings
from service.versions import parse_policies

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
) -> FastAPI:
    """Build the service.

    Args:
        settings: configuration; read from `DIGITS_*` environment variables when omitted.
        session_factory: builds an inference session from model bytes (tests pass fakes).
        available_providers: what onnxruntime offers; `onnxruntime.get_available_providers()`
            when omitted (tests pass lists to exercise the device choice without a GPU).

    Returns:
        The app. Models load when its lifespan starts (`with TestClient(app)`, or uvicorn).
    """
    settings = settings if settings is not None else Settings()
    metrics = ServiceMetrics()
    return_large_buffers_to_os()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
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
        except (StoreUnavailable, DeviceUnavailable) as exc:
            log.critical("cannot start: %s", exc)
            raise
        metrics.observe_registry(models)
        for name in models:
            metrics.prime_model(name)
        ready = sum(m.ready for m in models.values())
        log.info("%d of %d models ready on %s; default model: %s", ready, len(models), settings.device,
                 registry.default_name())
        app.state.registry = registry
        app.state.dataplane = DataPlane(registry, settings, metrics)
        app.state.reloader = reloader = StoreReloader(registry, metrics)
        restore_signal_handler = reloader.install_signal_handler()  # SIGHUP reloads the store
        # What a burst of large or aborted requests freed goes back to the system (service.memory).
        trimmer = asyncio.create_task(trim_periodically())
        try:
            # The Open Inference Protocol's plane, and its gRPC server when DIGITS_GRPC_PORT is set.
            async with serve_protocol(app, app.state.dataplane, settings, app.version):
                yield
        finally:
            trimmer.cancel()
            restore_signal_handler()
            registry.close()

    app = FastAPI(
        title="Digit serving",
        version=_package_version(),
        description=DESCRIPTION,
        lifespan=lifespan,
        # FastAPI's own /docs and /redoc load from a CDN with an inline script; service/routes/web.py
        # serves them from vendored copies instead.
        docs_url=None,
        redoc_url=None,
        # Documents the one error body on every route, and replaces FastAPI's own 422 schema
        # (the handlers reshape validation errors into this body too).
        responses={"default": {"model": ErrorBody, "description": "Error (any other status)"}},
    )
    app.state.settings = settings
    app.state.metrics = metrics
    app.state.large_uploads = asyncio.Semaphore(settings.max_large_uploads)
    install_error_handlers(app)
    app.include_router(api_router)
    mount_protocol(app)  # /v2/...: the Open Inference Protocol (KServe V2, Triton's clients)
    app.include_router(web.router)
    web.mount_static(app)
    if settings.admin_token is not None:
        app.include_router(admin_router)  # without a token the admin routes do not exist at all
    # Added innermost first: CORS (outermost) answers preflights and decorates every response, the
    # security headers go on every answer including errors,
    # metrics see every request including 413s, 414s and 499s, and the body limits wrap the body reads.
    app.add_middleware(
        BodyLimitMiddleware,
        max_bytes=settings.max_upload_bytes,
        timeout=settings.body_timeout,
        idle_timeout=settings.body_idle_timeout,
    )
    app.add_middleware(QueryLengthLimitMiddleware)
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    app.add_middleware(SecurityHeadersMiddleware)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["Content-Type", "Authorization"],
        )
    return app


def create_app_from_env() -> FastAPI:
    """Factory for uvicorn (`service.app:create_app_from_env`): settings from the environment."""
    settings = Settings()
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s", force=False
    )
    logging.getLogger("service").setLevel(settings.log_level.upper())
    return create_app(settings)
