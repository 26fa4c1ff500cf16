"""How the app serves the protocol: `mount` adds the REST routes, `serve_protocol` runs in the lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from service.inference.dataplane import DataPlane
from service.inference_protocol import rest, rest_extensions
from service.inference_protocol.batching import Batcher
from service.inference_protocol.extensions import TritonExtensions
from service.inference_protocol.plane import InferencePlane
from service.settings import Settings


def mount(app: FastAPI) -> None:
    """Add the `/v2/...` routes (they find the plane on `app.state` once the lifespan has started)."""
    app.include_router(rest_extensions.router)  # first: `/v2/models/stats` is not a model called "stats"
    app.include_router(rest.router)


@asynccontextmanager
async def serve_protocol(app: FastAPI, dataplane: DataPlane, settings: Settings, version: str) -> AsyncIterator[None]:
    """Make the plane the routes use and, when `grpc_port` is set, run the gRPC server meanwhile."""
    plane = InferencePlane(dataplane, version)
    app.state.inference_plane = plane
    extensions = TritonExtensions(plane, app.state.reloader, settings.admin_token)
    app.state.triton_extensions = extensions
    app.state.grpc_server = None
    app.state.batcher = batcher = None
    if settings.batching:
        # One runner per work thread: as many batches in flight as there are threads to run them.
        batcher = Batcher(plane.run_model_in_thread, max_size=settings.batch_max_size,
                          max_delay=settings.batch_max_delay_ms / 1000, queue_limit=settings.batch_queue_limit,
                          runners=settings.work_threads)
        plane.batch_with(batcher.infer)
        app.state.batcher = batcher
    server = None
    try:
        if settings.grpc_port is not None:
            # Imported here: grpcio is only loaded by a server that serves gRPC.
            from service.inference_protocol.grpc_server import GrpcInferenceServer

            server = GrpcInferenceServer(plane, host=settings.host, port=settings.grpc_port,
                                         max_message_bytes=settings.max_upload_bytes, extensions=extensions)
            await server.start()
            app.state.grpc_server = server
        yield
    finally:
        if server is not None:
            await server.stop()
        if batcher is not None:
            await batcher.close()
