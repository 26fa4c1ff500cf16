"""The Open Inference Protocol (KServe "V2", as Triton, KServe and MLServer speak it), next to the native API.

- `tensors`: the protocol's request and response, independent of the transport, and the checks
  that turn a request's tensors into model input;
- `rest_codec`: the HTTP/JSON documents and Triton's binary tensor data extension;
- `plane`: what the endpoints do (metadata, readiness, inference), over the service's data plane;
- `rest`: the `/v2/...` routes; `grpc_server`: `inference.GRPCInferenceService` on its own port;
- `errors`: the protocol's statuses for the service's errors;
- `proto/`: the protocol's vendored .proto and the stubs generated from it.

Both transports share the registry, the limits and the metrics of the native API.
"""
