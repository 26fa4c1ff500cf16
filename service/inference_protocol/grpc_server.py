"""The protocol's gRPC service, `inference.GRPCInferenceService`, on its own port.

Off unless `DIGITS_GRPC_PORT` is set. It runs in the worker's own event loop (grpc.aio), started
and stopped by the app's lifespan, and calls the same `InferencePlane` as the REST routes: one
registry, one set of limits, one metrics registry (plus a request counter of its own). With
several workers each one binds the port (gRPC sets SO_REUSEPORT), and the kernel spreads
connections over them as it does for HTTP.

Handlers are registered from the generated messages' (de)serialisers directly, so the typed
`_pb2` module is all that is generated. Errors are the protocol's: the HTTP statuses of
`errors.protocol_status`, as gRPC codes, with the same message as the REST body's `error`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

import anyio.to_thread
import grpc
import numpy as np
from grpc import aio
from prometheus_client import Counter

from digit_contract.errors import ServiceError
from service.inference_protocol.errors import InvalidInferRequest, grpc_status, protocol_status
from service.inference_protocol.extensions import TritonExtensions
from service.inference_protocol.grpc_extensions import extension_handlers
from service.inference_protocol.plane import InferencePlane
from service.inference_protocol.proto import open_inference_grpc_pb2 as pb
from service.inference_protocol.tensors import (
    CLASSIFICATION,
    InferRequest,
    InferResponse,
    InputTensor,
    Parameter,
    Parameters,
    RequestedOutput,
    check_datatype,
    check_outputs,
    check_request_id,
    check_shape,
    check_version,
    join_bytes,
    tensor_from_binary,
    tensor_from_values,
)
from service.observability.tracing import request_span

log = logging.getLogger(__name__)

SERVICE = "inference.GRPCInferenceService"

DEFAULT_MAX_CONCURRENT_RPCS = 16
"""Calls run at once when the plane's settings do not say (`Settings.grpc_max_concurrent_rpcs`)."""

STREAMS_PER_CONNECTION = 4
"""Concurrent calls one client connection may have open (HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS)."""

LARGE_MESSAGE_BYTES = 1024 * 1024
"""Messages above this wait for one of the worker's large-upload slots, as REST bodies do."""

INLINE_DECODE_BYTES = 64 * 1024
"""Messages up to this are decoded on the event loop; larger ones in a thread."""

# Which `InferTensorContents` field carries each datatype's explicit values.
_CONTENTS_FIELD = {
    "BOOL": "bool_contents", "INT8": "int_contents", "INT16": "int_contents", "INT32": "int_contents",
    "INT64": "int64_contents", "UINT8": "uint_contents", "UINT16": "uint_contents", "UINT32": "uint_contents",
    "UINT64": "uint64_contents", "FP32": "fp32_contents", "FP64": "fp64_contents", "BYTES": "bytes_contents",
}

_Request = TypeVar("_Request")
_Response = TypeVar("_Response")


class GrpcInferenceServer:
    """The gRPC server of one worker: `await start()`, `await stop()`."""

    def __init__(self, plane: InferencePlane, *, host: str, port: int, max_message_bytes: int,
                 extensions: TritonExtensions | None = None) -> None:
        self.plane = plane
        self.extensions = extensions  # Triton's configuration, statistics and repository methods
        self.address = f"{host}:{port}"
        self.port = port
        self._max_message_bytes = max_message_bytes
        self._server: aio.Server | None = None
        settings = getattr(plane.dataplane, "settings", None)
        self.max_concurrent_rpcs: int = getattr(settings, "grpc_max_concurrent_rpcs", DEFAULT_MAX_CONCURRENT_RPCS)
        # The REST side's gates (`share_gates`): without them 24 concurrent 8 MiB calls took a
        # worker to 618 MiB, 96 calls to 2.1 GiB.
        self._body_budget: Any = None
        self._large_uploads: asyncio.Semaphore | None = None
        self._decode_threads: Any = None
        self.requests = Counter(
            "digits_grpc_requests", "gRPC requests answered, by method and status code.",
            ["method", "code"], registry=plane.dataplane.metrics.registry,
        )

    async def start(self) -> None:
        options = [
            ("grpc.max_receive_message_length", self._max_message_bytes),
            ("grpc.max_send_message_length", self._max_message_bytes),
            # Streams one connection may have open: further calls wait in the client, their messages
            # unsent, instead of arriving (8 MiB each) only to be refused by the cap below. 24 calls at
            # once on one channel peaked at 872 MiB with the cap alone.
            ("grpc.max_concurrent_streams", min(STREAMS_PER_CONNECTION, self.max_concurrent_rpcs)),
        ]
        # Calls beyond the cap are refused (RESOURCE_EXHAUSTED) before their handler runs.
        server = aio.server(options=options, maximum_concurrent_rpcs=self.max_concurrent_rpcs)
        server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, self._handlers()),))
        bound = server.add_insecure_port(self.address)
        if bound == 0:
            raise OSError(f"gRPC cannot listen on {self.address}")
        self.port = bound
        await server.start()
        self._server = server
        log.info("gRPC inference service listening on %s", self.address)

    def share_gates(self, body_budget: Any, large_uploads: asyncio.Semaphore | None, decode_threads: Any) -> None:
        """Put inference messages through the REST side's gates: the worker's body-byte budget, its
        large-upload slots (messages over 1 MiB) and its decode threads."""
        self._body_budget = body_budget
        self._large_uploads = large_uploads
        self._decode_threads = decode_threads

    async def stop(self, grace: float = 5.0) -> None:
        if self._server is not None:
            await self._server.stop(grace)
            self._server = None

    def _handlers(self) -> dict[str, grpc.RpcMethodHandler]:
        def unary(method: str, handle: Callable[[Any], Awaitable[Any]], request_type: Any) -> grpc.RpcMethodHandler:
            async def call(request: Any, context: aio.ServicerContext[Any, Any]) -> Any:
                # grpc keeps an abort's traceback, with this frame, in a cycle: the frame must not
                # hold the request (see `_answer`).
                held = [request]
                del request
                # The request's span (tracing on): the caller's traceparent travels in the metadata.
                metadata = {key: value for key, value in context.invocation_metadata() or () if isinstance(value, str)}
                with request_span(f"{SERVICE}/{method}", metadata, **{"rpc.system": "grpc", "rpc.method": method}):
                    return await self._answer(method, handle, held.pop(), context)

            return grpc.unary_unary_rpc_method_handler(
                call, request_deserializer=request_type.FromString, response_serializer=lambda m: m.SerializeToString()
            )

        return {
            "ServerLive": unary("ServerLive", self._server_live, pb.ServerLiveRequest),
            "ServerReady": unary("ServerReady", self._server_ready, pb.ServerReadyRequest),
            "ModelReady": unary("ModelReady", self._model_ready, pb.ModelReadyRequest),
            "ServerMetadata": unary("ServerMetadata", self._server_metadata, pb.ServerMetadataRequest),
            "ModelMetadata": unary("ModelMetadata", self._model_metadata, pb.ModelMetadataRequest),
            "ModelInfer": unary("ModelInfer", self._model_infer, pb.ModelInferRequest),
            **(extension_handlers(self, self.extensions) if self.extensions is not None else {}),
        }

    async def _answer(self, method: str, handle: Callable[[Any], Awaitable[Any]], request: Any,
                      context: aio.ServicerContext[Any, Any]) -> Any:
        """Run a handler; a service error becomes the protocol's status, anything else INTERNAL."""
        start = time.perf_counter()
        code, message = "OK", ""
        try:
            return await handle(request)
        except ServiceError as exc:
            code, message = grpc_status(protocol_status(exc)), exc.message
        except aio.AbortError:
            raise
        except Exception:
            code, message = "INTERNAL", "internal server error"
            log.exception("unhandled error in gRPC %s", method)
        finally:
            self.requests.labels(method=method, code=code).inc()
            log.debug("gRPC %s %s in %.3f ms", method, code, (time.perf_counter() - start) * 1000)
        # Aborted outside the `except`: raised inside it, the abort would carry the service error as its
        # context, and with it the traceback's frames and their request (an 8 MiB message) in a cycle
        # that only a full collection frees: 8 MiB gRPC calls refused in a loop grew the worker by
        # ~25 MiB a second.
        del request
        await context.abort(getattr(grpc.StatusCode, code), message)

    # -- the service's methods ---------------------------------------------------------------

    async def _server_live(self, _: pb.ServerLiveRequest) -> pb.ServerLiveResponse:
        return pb.ServerLiveResponse(live=True)

    async def _server_ready(self, _: pb.ServerReadyRequest) -> pb.ServerReadyResponse:
        return pb.ServerReadyResponse(ready=self.plane.server_ready())

    async def _model_ready(self, request: pb.ModelReadyRequest) -> pb.ModelReadyResponse:
        return pb.ModelReadyResponse(ready=self.plane.model_ready(request.name, check_version(request.version)))

    async def _server_metadata(self, _: pb.ServerMetadataRequest) -> pb.ServerMetadataResponse:
        return pb.ServerMetadataResponse(**self.plane.server_metadata())

    async def _model_metadata(self, request: pb.ModelMetadataRequest) -> pb.ModelMetadataResponse:
        metadata = self.plane.model_metadata(request.name, check_version(request.version))
        tensor = pb.ModelMetadataResponse.TensorMetadata
        return pb.ModelMetadataResponse(
            name=metadata["name"], versions=metadata["versions"], platform=metadata["platform"],
            inputs=[tensor(**t) for t in metadata["inputs"]], outputs=[tensor(**t) for t in metadata["outputs"]],
            properties=metadata["properties"],
        )

    async def _model_infer(self, request: pb.ModelInferRequest) -> pb.ModelInferResponse:
        # The model first, as REST does: an unknown model is NOT_FOUND, not a complaint about its input.
        version = check_version(request.model_version)
        model = self.plane.model(request.model_name, version)
        size = request.ByteSize()
        reserved = 0
        try:
            async with contextlib.AsyncExitStack() as gates:
                # The slot first, then the bytes: the order REST takes them in (`upload_slot`, then the
                # body's reservation). Taken the other way round, REST requests holding every slot and
                # waiting for bytes, and gRPC calls holding the bytes and waiting for a slot, deadlocked
                # the worker under bench.attack (62 requests stuck in flight for good).
                if size > LARGE_MESSAGE_BYTES and self._large_uploads is not None:
                    await gates.enter_async_context(self._large_uploads)
                if self._body_budget is not None:
                    reserved = await self._body_budget.acquire(size)
                if size > INLINE_DECODE_BYTES:
                    # Splitting megabytes of tensor data is not event-loop work (8 MiB took 1.0 s).
                    parsed = await anyio.to_thread.run_sync(decode_request, request, limiter=self._decode_threads)
                else:
                    parsed = decode_request(request)
                answer = await self.plane.infer(request.model_name, version, parsed, model=model)
        finally:
            if reserved:
                self._body_budget.release(reserved)
        return encode_response(answer)


# -- messages <-> the protocol's request and response ------------------------------------------------


def decode_request(message: pb.ModelInferRequest) -> InferRequest:
    """A `ModelInferRequest` as the plane's request: raw contents or explicit contents per input.

    As in Triton, `raw_input_contents` is either empty or holds one entry per input, in order.
    """
    raw = message.raw_input_contents
    if raw and len(raw) != len(message.inputs):
        raise InvalidInferRequest(f"raw_input_contents has {len(raw)} entries for {len(message.inputs)} inputs: "
                                  "send one per input, or none and the values in `contents`")
    inputs: list[InputTensor] = []
    for index, tensor in enumerate(message.inputs):
        name = tensor.name[:64]
        datatype = check_datatype(name, tensor.datatype)
        shape = check_shape(name, list(tensor.shape))
        parameters = _parameters(tensor.parameters)
        if raw:
            inputs.append(tensor_from_binary(name, datatype, shape, raw[index], parameters))
            continue
        field = _CONTENTS_FIELD.get(datatype)
        if field is None:
            raise InvalidInferRequest(f"input {name!r}: {datatype} can only be sent in raw_input_contents")
        values = getattr(tensor.contents, field)
        data = list(values) if datatype == "BYTES" else np.asarray(values)
        inputs.append(tensor_from_values(name, datatype, shape, data, parameters))
    outputs = []
    for output in message.outputs:
        parameters = _parameters(output.parameters)
        classes = parameters.get(CLASSIFICATION, 0)
        if type(classes) is not int:
            raise InvalidInferRequest(f"output {output.name[:64]!r}: {CLASSIFICATION} must be an integer")
        outputs.append(RequestedOutput(output.name, True, classes))
    check_outputs(outputs)
    return InferRequest(check_request_id(message.id or None), inputs, outputs, _parameters(message.parameters))


def encode_response(response: InferResponse) -> pb.ModelInferResponse:
    """The plane's response as a `ModelInferResponse`, every output in `raw_output_contents` (as Triton)."""
    message = pb.ModelInferResponse(model_name=response.model_name, model_version=response.model_version,
                                    id=response.id or "")
    for output in response.outputs:
        message.outputs.add(name=output.name, datatype=output.datatype, shape=list(output.shape))
        data = output.data
        message.raw_output_contents.append(join_bytes(data) if isinstance(data, list) else data.tobytes())
    return message


def _parameters(parameters: Mapping[str, pb.InferParameter]) -> Parameters:
    values: dict[str, Parameter] = {}
    for key, parameter in parameters.items():
        choice = parameter.WhichOneof("parameter_choice")
        if choice is not None:
            values[key] = getattr(parameter, choice)
    return values
