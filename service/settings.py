"""The service's one settings object, read from `DIGITS_*` environment variables.

Every knob of the service lives here, with its documentation under it. Elsewhere the environment
is only passed on or checked: `__main__` writes the command-line overrides and the Prometheus
multiprocess directory for its workers, `metrics` reads that directory, `healthcheck` (a process
of its own) reads `DIGITS_PORT`, and `__main__` and `ray_serve` warn about unknown `DIGITS_*` names.
`python -m service --help` shows the command-line overrides.
"""

from __future__ import annotations

import difflib
import reprlib
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from service.models.versions import parse_policies

ENV_PREFIX = "DIGITS_"

Device = Literal["auto", "cpu", "cuda", "tensorrt"]
LogLevel = Literal["critical", "error", "warning", "info", "debug"]

MiB = 1024 * 1024


class Settings(BaseSettings):
    """Configuration of the serving process; each field is read from `DIGITS_<FIELD NAME>`."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, extra="ignore", frozen=True, use_attribute_docstrings=True
    )

    model_store: Path = Path("model_store")
    """Model store to serve (`<name>/<version>/{model.onnx,card.json}`). A relative path is taken
    from the working directory at start-up, as the training CLI's `--store` is: run from the
    repository root (or the image's /app) and the committed `model_store/` is found."""

    device: Device = "auto"
    """Execution provider: `auto` (CUDA when onnxruntime-gpu and a working GPU are present, else
    CPU), `cpu`, `cuda` or `tensorrt`. An explicit GPU device that cannot be used is a start-up
    error, never a silent CPU fallback."""

    host: str = "127.0.0.1"
    """Interface to listen on (the container image sets 0.0.0.0)."""

    port: int = Field(default=8000, ge=1, le=65535)
    """TCP port to listen on."""

    grpc_port: int | None = Field(default=None, ge=1, le=65535)
    """TCP port of the Open Inference Protocol's gRPC service (`inference.GRPCInferenceService`,
    on `host`; Triton's default is 8001). Unset, the default: no gRPC server is started. The REST
    side of the protocol (`/v2/...`) is always served on `port`."""

    workers: int = Field(default=1, ge=1, le=64)
    """Uvicorn worker processes. Each loads every model; metrics are aggregated across workers
    through `PROMETHEUS_MULTIPROC_DIR`, which `python -m service` sets up when workers > 1."""

    max_upload_bytes: int = Field(default=8 * MiB, ge=1024)
    """Largest request body accepted, in bytes (all files of a multipart request together). A 12 MP
    phone photo is 2-5 MB as JPEG.
    Enforced while the body streams in: a larger body is refused with 413 before it is buffered."""

    max_large_uploads: int = Field(default=4, ge=1, le=1024)
    """Requests with a body over 1 MiB (phone photos) that one worker reads and decodes at a time;
    the others wait with their bodies unread in the socket (TCP flow control holds them back), so
    a burst of 12 MP photos costs a bounded amount of memory instead of a body per connection."""

    max_image_pixels: int = Field(default=16_777_216, ge=28 * 28)
    """Largest image accepted, in pixels (width x height; the default is 4096 x 4096, room for the
    12-16 MP photos phones take), checked from the header before the image is decoded, so a
    decompression bomb is refused without being expanded. JPEGs this large are decoded at 1/8 scale."""

    max_files_per_request: int = Field(default=16, ge=1, le=1024)
    """Most images in one request (multipart `file` parts or JSON images)."""

    default_model: str | None = None
    """Model that answers when a request names none. Unset: the ready model with the highest
    test accuracy on its card (ties broken by lower test loss, then by name)."""

    default_upload_model: str | None = None
    """Model that answers image uploads (files, not JSON pixels) when a request names none. Unset:
    the ready model with the best accuracy on the user-style validation uploads recorded in the
    store (`uploads-validation.json`, written by `python -m evaluation --record`), else the
    default model."""

    log_level: LogLevel = "info"
    """Log level of the service and of uvicorn."""

    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    """Origins allowed to call the API from a browser, comma-separated (`*` for any). Empty, the
    default: no CORS headers are sent, so browsers refuse cross-origin calls."""

    admin_token: SecretStr | None = None
    """Bearer token for the admin endpoints (`POST /admin/reload`). Unset or empty: the admin
    endpoints do not exist (404). Kept as a secret so it never appears in logs or reprs."""

    intra_op_threads: int = Field(default=1, ge=0, le=256)
    """Threads ONNX Runtime may use inside one inference (0 = one per core). The models are tiny,
    so one thread per call keeps latency low under concurrency without oversubscribing cores."""

    work_threads: int = Field(default=2, ge=1, le=256)
    """Threads per worker that decode, prepare and run models for requests too large to answer on
    the event loop. CPU-bound work: about the cores one worker may use; more only raises memory."""

    inline_max_pixels: int = Field(default=128 * 128, ge=0)
    """Requests whose images declare at most this many pixels in all (from their headers) are
    decoded and inferred on the event loop: sub-millisecond work, cheaper than a hop to a worker
    thread. Larger ones run in a worker thread. 0: always use a worker thread."""

    header_timeout: float = Field(default=10.0, gt=0, le=600)
    """Seconds a connection has to send a request's line and headers, counted from when it opens
    (or from the first byte of its next request). A connection that sends nothing is closed; one
    that has sent part of its headers gets 408. The keep-alive timeout (5 s) covers the wait
    between requests."""

    body_timeout: float = Field(default=60.0, gt=0, le=3600)
    """Seconds a request body may take to arrive in full; slower gets 408 and the connection closed.
    An 8 MiB photo at 1 Mbit/s takes about 67 s: raise this for clients on slow links."""

    body_idle_timeout: float = Field(default=10.0, gt=0, le=600)
    """Longest pause, in seconds, between two pieces of a request body (including a body that is
    shorter than its `Content-Length`) before the request gets 408."""

    max_header_bytes: int = Field(default=16 * 1024, ge=1024, le=1024 * 1024)
    """Largest request line plus headers, in bytes; more gets 431 and the connection closed."""

    max_headers: int = Field(default=100, ge=8, le=10_000)
    """Most header fields in one request; more gets 431."""

    max_connections: int = Field(default=2048, ge=8, le=1_000_000)
    """Open client connections one worker keeps. At the limit, the connection that has waited
    longest without a request in progress is closed to make room, so idle sockets can neither
    exhaust the file descriptors nor lock out health probes. Kept below the process's
    descriptor limit (raised to its hard limit at start-up)."""

    max_inflight_body_bytes: int = Field(default=32 * MiB, ge=64 * 1024)
    """Request body bytes one worker holds at once, over REST and gRPC: a request reserves its body's
    size before reading it and waits, its body unread in the socket, while the rest are held. Bodies
    cost ~3x their size while parsed and decoded, so the default keeps a worker near 100 MiB of them."""

    min_upload_rate: float = Field(default=4096.0, ge=0.0)
    """Slowest average rate, in bytes per second, a request body may arrive at once `upload_rate_grace`
    seconds have passed (408 below it); 0: no minimum. Stops a few connections that send a byte every
    few seconds from holding every upload slot."""

    upload_rate_grace: float = Field(default=5.0, ge=0.0, le=600)
    """Seconds a request body may take before `min_upload_rate` applies (TCP slow start, a phone waking)."""

    send_timeout: float = Field(default=30.0, gt=0, le=3600)
    """Longest a client may leave an answer unread (the socket's send buffer full) before the connection is
    closed: a client that never reads would otherwise keep its answer in memory until it disconnects."""

    allowed_hosts: Annotated[list[str], NoDecode] = Field(default_factory=list)
    """Host names the service answers to, comma-separated (`digits.example.com,localhost`); a request
    with another `Host` gets 400. IP addresses are always accepted (a DNS-rebinding page can only send
    a host *name*). Empty, the default: any host (set it wherever a browser can reach the service)."""

    management_port: int | None = Field(default=None, ge=1, le=65535)
    """TCP port of the management listener: `/health/*`, `/metrics`, `/admin/*` and the protocol's
    `/v2/health/*`, held by a small process of each worker's own (`service.server.probes`) with its own
    connection budget (`management_max_connections`) and header limits, so that no load on the data
    port, not even on the worker's interpreter lock, can starve a probe. Unset: served on `port` only.
    With several workers each binds it (SO_REUSEPORT)."""

    management_max_connections: int = Field(default=32, ge=2, le=4096)
    """Open connections the management port keeps (probes, scrapers, an operator)."""

    grpc_max_concurrent_rpcs: int = Field(default=8, ge=1, le=100_000)
    """gRPC calls one worker runs at once; more are refused with RESOURCE_EXHAUSTED (and one connection
    may have at most 4 open; its further calls wait in the client). Each call's message (up to
    `max_upload_bytes`) is held in memory, about twice, while it waits and runs."""

    saturation_seconds: float = Field(default=10.0, gt=0, le=3600)
    """Readiness reports "not ready" (503) once work has waited for a worker thread, an upload slot or body
    budget continuously this long (a probe period), so that a load balancer routes around a saturated
    worker; it reports ready again as soon as the queue empties."""

    metrics_token: SecretStr | None = None
    """Bearer token that `GET /metrics` requires when set (Prometheus: `authorization` in the
    scrape config). Unset or empty: the metrics are open to anyone who can reach the port."""

    calibrated_probabilities: bool = True
    """Answer with temperature-scaled probabilities where the model's card has a temperature that
    lowered its validation NLL (`calibration.applied`); false: the models' raw softmax outputs.
    The digit is the same either way; each answer says which it got (`calibrated`)."""

    front_end: Literal["learned", "classical"] = "learned"
    """How the digit is found in an opaque upload: `learned`, the ink segmenter of the store's
    `frontend/ink_segmenter/` (the classical rules when the store has none); `classical`, the
    hand-written rules (polarity, illumination, Hough lines, components) whatever the store holds.
    A transparent canvas's alpha channel is its ink either way."""

    warmup_runs: int = Field(default=20, ge=1, le=10_000)
    """Single-image inferences run per model at start-up; their latency is what /models/compare
    reports as measured on this server."""

    version_policy: str = "latest:1"
    """Which versions of each model to load: `latest:N`, `all` or `specific:V,V,...`, for every
    model, with per-model entries after `;` (`latest:1; cnn=all; mlp=specific:1,3`). `/predict`,
    `/models` and requests without a version use each model's latest loaded version; the others
    are reached with `/v2/models/{name}/versions/{v}` (`service.models.versions`)."""

    batching: bool = False
    """Adaptive batching of the Open Inference Protocol's tensor requests (`/v2/.../infer` and
    gRPC `ModelInfer` with the FP32 `image` input): concurrent requests for one model are merged
    into one model run (`service.inference_protocol.batching`). Off by default; the README says when it pays."""

    batch_max_size: int = Field(default=256, ge=1, le=4096)
    """Most images in one merged batch (a single request larger than this still runs, alone)."""

    batch_max_delay_ms: float = Field(default=0.0, ge=0.0, le=1000.0)
    """Longest a batch waits for more requests before it runs, in milliseconds. 0: never wait; a
    batch takes whatever queued while the previous one ran (no added latency at low load)."""

    batch_queue_limit: int = Field(default=4096, ge=1, le=1_000_000)
    """Most images waiting for a batch per model; a request beyond it gets 503 at once."""

    otlp_endpoint: str | None = Field(default=None, pattern=r"^https?://[^\s/]+(/\S*)?$")
    """OpenTelemetry tracing (`service.observability.tracing`): a collector's OTLP/HTTP base URL, e.g.
    `http://otel-collector:4318`; spans go to its `/v1/traces`. Unset, the default: no tracing.
    Needs the `otel` extra (`pip install 'digit-serving[otel]'`), which the serving image lacks."""

    @field_validator("otlp_endpoint", mode="before")
    @classmethod
    def _empty_endpoint_is_none(cls, value: object) -> object:
        # `DIGITS_OTLP_ENDPOINT=` (empty) means tracing off, as an empty token means no token.
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("device", "log_level", mode="before")
    @classmethod
    def _case_insensitive_choice(cls, value: object) -> object:
        # `DIGITS_LOG_LEVEL=INFO` is what operators write (uvicorn's and Python's own spelling).
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("admin_token", "metrics_token", mode="before")
    @classmethod
    def _empty_token_is_none(cls, value: object) -> object:
        # `DIGITS_ADMIN_TOKEN=` (empty) must mean "off", never "the empty string is the token".
        if isinstance(value, str) and not value.strip():
            return None
        return value

    @field_validator("version_policy")
    @classmethod
    def _valid_version_policy(cls, value: str) -> str:
        parse_policies(value)  # raises ValueError with the reason: refused at start-up
        return value

    @field_validator("allowed_hosts", mode="before")
    @classmethod
    def _split_hosts(cls, value: object) -> object:
        if isinstance(value, str):
            return [host.strip().lower() for host in value.split(",") if host.strip()]
        return value

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        # Environment variables are plain strings: accept "a,b" as well as a JSON-free list.
        if isinstance(value, str):
            return [origin.strip() for origin in value.split(",") if origin.strip()]
        return value


NOT_SETTINGS_PREFIXES = ("DIGITS_TEST_",)
NOT_SETTINGS = frozenset({"DIGITS_REQUIRE_BROWSER", "DIGITS_FUZZ_EXAMPLES"})
"""`DIGITS_*` variables that are not the service's settings: the test suite's own knobs."""


def variable_name(field: str) -> str:
    """The environment variable a settings field is read from (`device` -> `DIGITS_DEVICE`)."""
    return f"{ENV_PREFIX}{field.upper()}"


def unknown_variables(environ: Mapping[str, str]) -> list[str]:
    """One warning per `DIGITS_*` variable that is no setting (a typo is otherwise silently ignored),
    naming the closest valid variable when there is one."""
    valid = [variable_name(field) for field in Settings.model_fields]
    warnings = []
    for key in sorted(environ):
        if not key.startswith(ENV_PREFIX) or key in valid or key in NOT_SETTINGS or key.startswith(NOT_SETTINGS_PREFIXES):
            continue
        close = difflib.get_close_matches(key, valid, n=1, cutoff=0.7)
        hint = f"did you mean {close[0]}?" if close else "the settings are listed by `python -m service --help`"
        warnings.append(f"{key} is not a setting and is ignored: {hint}")
    return warnings


def describe_errors(exc: ValidationError, given_as_flags: Collection[str] = ()) -> str:
    """The settings' validation errors, each named by the variable it came from (`DIGITS_DEVICE`), or
    by its flag (`--device`) for the fields in `given_as_flags`, with the value that was refused."""
    lines = []
    for error in exc.errors():
        field = str(error["loc"][0]) if error["loc"] else ""
        name = f"--{field.replace('_', '-')}" if field in given_as_flags else variable_name(field)
        value = error.get("input")
        shown = "" if value is None or "token" in field else f" (got {reprlib.repr(value)})"
        lines.append(f"{name}: {error['msg']}{shown}")
    return "; ".join(lines)
