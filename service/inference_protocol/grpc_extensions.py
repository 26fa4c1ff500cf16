"""Triton's extensions over gRPC: `ModelConfig`, `ModelStatistics`, `RepositoryIndex`,
`RepositoryModelLoad` and `RepositoryModelUnload` of `inference.GRPCInferenceService`.

The messages are the vendored subset of Triton's (`proto/open_inference_grpc.proto`), filled from
the same JSON documents the REST routes answer (`extensions.py`), so both transports say the same.
Load and unload read the admin token from the call's `authorization` metadata
(`Authorization: Bearer <token>`, as tritonclient's `headers=` sends it).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import grpc
from google.protobuf import json_format
from grpc import aio

from service.inference_protocol.extensions import TritonExtensions, bearer_token
from service.inference_protocol.proto import open_inference_grpc_pb2 as pb

if TYPE_CHECKING:
    from service.inference_protocol.grpc_server import GrpcInferenceServer

Handle = Callable[[Any, aio.ServicerContext[Any, Any]], Awaitable[Any]]


def extension_handlers(server: GrpcInferenceServer, extensions: TritonExtensions) -> dict[str, grpc.RpcMethodHandler]:
    """The extensions' method handlers, answered through the server's error mapping and request counter."""

    def unary(method: str, handle: Handle, request_type: Any) -> grpc.RpcMethodHandler:
        async def call(request: Any, context: aio.ServicerContext[Any, Any]) -> Any:
            async def bound(message: Any) -> Any:
                return await handle(message, context)

            return await server._answer(method, bound, request, context)  # the one error mapping of the service

        return grpc.unary_unary_rpc_method_handler(
            call, request_deserializer=request_type.FromString, response_serializer=lambda m: m.SerializeToString()
        )

    async def model_config(request: pb.ModelConfigRequest, _: Any) -> pb.ModelConfigResponse:
        config = extensions.model_config(request.name, (request.version or None))
        return pb.ModelConfigResponse(config=json_format.ParseDict(config, pb.ModelConfig()))

    async def model_statistics(request: pb.ModelStatisticsRequest, _: Any) -> pb.ModelStatisticsResponse:
        report = extensions.model_statistics(request.name or None, (request.version or None))
        message = pb.ModelStatisticsResponse()
        json_format.ParseDict(report, message, ignore_unknown_fields=True)  # batch_stats: not in the subset
        return message

    async def repository_index(request: pb.RepositoryIndexRequest, _: Any) -> pb.RepositoryIndexResponse:
        index = extensions.repository_index(request.ready)
        return pb.RepositoryIndexResponse(models=[pb.RepositoryIndexResponse.ModelIndex(**entry) for entry in index])

    async def load(request: pb.RepositoryModelLoadRequest,
                   context: aio.ServicerContext[Any, Any]) -> pb.RepositoryModelLoadResponse:
        await extensions.load(request.model_name, _token(context))
        return pb.RepositoryModelLoadResponse()

    async def unload(request: pb.RepositoryModelUnloadRequest,
                     context: aio.ServicerContext[Any, Any]) -> pb.RepositoryModelUnloadResponse:
        await extensions.unload(request.model_name, _token(context))
        return pb.RepositoryModelUnloadResponse()

    return {
        "ModelConfig": unary("ModelConfig", model_config, pb.ModelConfigRequest),
        "ModelStatistics": unary("ModelStatistics", model_statistics, pb.ModelStatisticsRequest),
        "RepositoryIndex": unary("RepositoryIndex", repository_index, pb.RepositoryIndexRequest),
        "RepositoryModelLoad": unary("RepositoryModelLoad", load, pb.RepositoryModelLoadRequest),
        "RepositoryModelUnload": unary("RepositoryModelUnload", unload, pb.RepositoryModelUnloadRequest),
    }


def _token(context: aio.ServicerContext[Any, Any]) -> str | None:
    for key, value in context.invocation_metadata() or ():
        if key == "authorization" and isinstance(value, str):
            return bearer_token(value)
    return None
