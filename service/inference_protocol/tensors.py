"""The protocol's inference request and response, as both transports hand them to the plane.

A request's tensors arrive as JSON data, as binary data (HTTP's binary extension) or as protobuf
contents (gRPC); the codecs turn each into an `InputTensor` whose `data` is a flat numpy array
(numeric datatypes) or a list of byte strings (BYTES), already checked to hold as many elements
as its shape says. What a model accepts is decided here, once, for both transports.

The models take one input, and the protocol offers it in two forms (exactly one per request):

- `image`: FP32, the model's own tensor, shaped as its card's input spec says: [N, 28, 28, 1]
  for the MNIST models (white digit on black, values in [0, 1]), [N, 64] or [N, 8, 8, 1] for the
  UCI 8x8 ones (`model_inputs(spec)`, what the model metadata declares). Values go to the model
  as they are sent, as Triton passes tensors through: the range is what the models were trained
  on, not a check (values outside it, NaN and infinities included, give whatever the model
  computes; load generators such as perf_analyzer send random bytes);
- `image_file`: BYTES [N, 1] (or [N]), encoded image files (PNG, JPEG, ...) that go through the
  same preprocessing as `POST /predict`, so the same files give the same digits.

Both inputs are optional in the model configuration (Triton's `optional`): a request sends one.
A request that sends both is answered from `image` and `image_file` is not decoded: tools that
fill every input of a configuration (perf_analyzer's defaults) then measure the tensor path.

and two outputs: `probabilities` FP32 [N, 10] (what the model computes; returned when a request
asks for no output in particular, as Triton returns a model's outputs), and `digit` INT64 [N], the
predicted class, when asked for by name. The `classification` parameter on `probabilities`
(Triton's classification extension, `InferRequestedOutput(name, class_count=k)`) returns the top
k classes instead, as BYTES "<probability>:<class>" strings of shape [N, k].
"""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from digit_contract.inputs import INPUT_NAME, MNIST_INPUT, NUM_CLASSES, OUTPUT_NAME, InputSpec
from service.inference_protocol.errors import BatchTooLarge, InvalidInferRequest, VersionNotFound

FILE_INPUT = "image_file"
"""The BYTES input: encoded image files, preprocessed as `/predict` does."""

DIGIT_OUTPUT = "digit"
"""The INT64 output: the predicted class of each image."""

CLASSIFICATION = "classification"
"""Output parameter of Triton's classification extension: the number of top classes to return."""

PLATFORM = "onnx_onnxv1"
"""The protocol's platform name for an ONNX model run by ONNX Runtime."""

Parameter = bool | int | float | str
Parameters = dict[str, Parameter]

# Little-endian element types of the numeric datatypes (the binary extension's byte order).
NUMERIC_DTYPES: dict[str, str] = {
    "BOOL": "?", "UINT8": "u1", "UINT16": "<u2", "UINT32": "<u4", "UINT64": "<u8",
    "INT8": "i1", "INT16": "<i2", "INT32": "<i4", "INT64": "<i8",
    "FP16": "<f2", "FP32": "<f4", "FP64": "<f8",
}
DATATYPES = (*NUMERIC_DTYPES, "BYTES", "BF16")

TensorDecl = tuple[str, str, tuple[int, ...]]
"""A tensor as model metadata declares it: name, datatype, shape with -1 for the batch."""


def model_inputs(spec: InputSpec) -> tuple[TensorDecl, ...]:
    """The inputs a model with input `spec` declares in its metadata."""
    # [-1, 1], not [-1]: a tool that drops the batch dimension (perf_analyzer) needs a shape left.
    return ((INPUT_NAME, "FP32", (-1, *spec.sample_shape)), (FILE_INPUT, "BYTES", (-1, 1)))


MODEL_INPUTS = model_inputs(MNIST_INPUT)
"""The inputs of the MNIST models: `image` [-1, 28, 28, 1] and `image_file`."""
MODEL_OUTPUTS: tuple[TensorDecl, ...] = (
    (OUTPUT_NAME, "FP32", (-1, NUM_CLASSES)),
    (DIGIT_OUTPUT, "INT64", (-1,)),
)
_OUTPUT_NAMES = tuple(name for name, _, _ in MODEL_OUTPUTS)

MAX_ELEMENTS = 1 << 40
"""Largest element count a shape may declare (before any data is looked at): far above any limit
the body size allows, small enough that sizes computed from it stay exact in int64."""


MAX_BYTES_ELEMENTS = 1024
"""Most BYTES elements one input may declare: the protocol's batch limit (`plane.MAX_BATCH`), checked
on the declared shape before any element is split or decoded. 8 MiB of binary data holds two
million empty elements, which took a second of the event loop to split before this check."""

MAX_ID_CHARS = 256
"""Longest request `id` accepted. The answer echoes it, so an unbounded one is memory held for every
client that does not read its answer (60 connections with a 7 MiB `id` held 440 MiB)."""

MAX_VERSION_CHARS = 18
"""Longest model version accepted (an int64's digits, as Triton's versions)."""


def check_request_id(request_id: object) -> str | None:
    """The request's `id` (None when not sent), a string of at most `MAX_ID_CHARS` characters."""
    if request_id is None:
        return None
    if not isinstance(request_id, str):
        raise InvalidInferRequest("`id` must be a string")
    if len(request_id) > MAX_ID_CHARS:
        raise InvalidInferRequest(f"`id` has {len(request_id):,} characters; at most {MAX_ID_CHARS} are accepted")
    return request_id


def check_version(version: str | None) -> str | None:
    """A model version as a transport received it: None or empty (the current one), else ASCII and short.

    `str.isdigit` accepts "²" and other Unicode digits that `int` refuses (a 500), and `int` refuses
    more than 4,300 digits: anything but a short ASCII string is "no such version" (404) here, before
    the registry parses it; "1.0" and other ASCII non-numbers get the registry's own answer.
    """
    if not version:
        return None
    if version.isascii() and len(version) <= MAX_VERSION_CHARS:
        return version
    shown = repr(version) if len(version) <= 20 else "with that number"
    raise VersionNotFound(f"model version {shown} is not a version number: versions are ASCII digits, at most "
                          f"{MAX_VERSION_CHARS}")


def check_bytes_count(name: str, shape: tuple[int, ...]) -> int:
    """The element count of a BYTES input's declared shape, refused (413) beyond `MAX_BYTES_ELEMENTS`."""
    count = math.prod(shape)
    if count > MAX_BYTES_ELEMENTS:
        raise BatchTooLarge(f"input {name!r}: shape {list(shape)} declares {count:,} BYTES elements; "
                            f"at most {MAX_BYTES_ELEMENTS:,} per request")
    return count


@dataclass(frozen=True)
class InputTensor:
    """One input of a request, its data flat and checked against its shape."""

    name: str
    datatype: str
    shape: tuple[int, ...]
    data: npt.NDArray[Any] | list[bytes]
    parameters: Parameters = field(default_factory=dict)


@dataclass(frozen=True)
class RequestedOutput:
    """One output a request asks for; `binary` None means "as the request's default says"."""

    name: str
    binary: bool | None = None
    classification: int = 0


@dataclass(frozen=True)
class InferRequest:
    id: str | None
    inputs: list[InputTensor]
    outputs: list[RequestedOutput]
    parameters: Parameters = field(default_factory=dict)

    @property
    def binary_output(self) -> bool:
        """The binary extension's `binary_data_output` request parameter (default for every output)."""
        return self.parameters.get("binary_data_output") is True


@dataclass(frozen=True)
class OutputTensor:
    name: str
    datatype: str
    shape: tuple[int, ...]
    data: npt.NDArray[Any] | list[bytes]
    binary: bool = False


@dataclass(frozen=True)
class InferResponse:
    model_name: str
    model_version: str
    id: str | None
    outputs: list[OutputTensor]


# -- building input tensors (the codecs call these) ------------------------------------------------


def check_shape(name: str, shape: object) -> tuple[int, ...]:
    """A shape as the protocol allows it: a list of non-negative integers (not booleans)."""
    if not isinstance(shape, list | tuple) or not all(type(d) is int and d >= 0 for d in shape):
        raise InvalidInferRequest(f"input {name!r}: shape must be a list of non-negative integers")
    if len(shape) > 8:
        raise InvalidInferRequest(f"input {name!r}: shape has {len(shape)} dimensions; at most 8")
    count = math.prod(shape)
    if count > MAX_ELEMENTS:
        raise InvalidInferRequest(f"input {name!r}: shape {list(shape)} declares too many elements")
    return tuple(shape)


def check_datatype(name: str, datatype: object) -> str:
    if not isinstance(datatype, str) or datatype not in DATATYPES:
        shown = repr(datatype) if isinstance(datatype, str) and len(datatype) <= 16 else "that datatype"
        raise InvalidInferRequest(f"input {name!r}: unknown datatype {shown}; the protocol's are {', '.join(DATATYPES)}")
    return datatype


def tensor_from_binary(name: str, datatype: str, shape: tuple[int, ...], raw: bytes | memoryview,
                       parameters: Parameters) -> InputTensor:
    """An input from its binary data: little-endian elements, or length-prefixed BYTES elements."""
    if datatype == "BYTES":
        return InputTensor(name, datatype, shape, split_bytes(name, raw, check_bytes_count(name, shape)), parameters)
    count = math.prod(shape)
    if datatype == "BF16":
        raise InvalidInferRequest(f"input {name!r}: BF16 is not an input of these models")
    dtype = np.dtype(NUMERIC_DTYPES[datatype])
    if len(raw) != count * dtype.itemsize:
        raise InvalidInferRequest(
            f"input {name!r}: {len(raw)} bytes of data, but shape {list(shape)} of {datatype} needs "
            f"{count * dtype.itemsize} ({count} elements of {dtype.itemsize} bytes)"
        )
    return InputTensor(name, datatype, shape, np.frombuffer(raw, dtype=dtype), parameters)


def tensor_from_values(name: str, datatype: str, shape: tuple[int, ...], values: Sequence[Any] | npt.NDArray[Any],
                       parameters: Parameters) -> InputTensor:
    """An input from explicit values (JSON `data`, flat or nested, or gRPC contents)."""
    count = math.prod(shape)
    if datatype == "BYTES":
        check_bytes_count(name, shape)
        # The count first (len of a list or a protobuf field is free), then the copy.
        if len(values) != count or not all(isinstance(item, bytes) for item in values):
            raise InvalidInferRequest(
                f"input {name!r}: shape {list(shape)} needs {count} BYTES elements, got {len(values)}"
            )
        elements: list[Any] = list(values)
        return InputTensor(name, datatype, shape, elements, parameters)
    if datatype == "BF16":
        raise InvalidInferRequest(f"input {name!r}: BF16 is not an input of these models")
    try:
        array = np.asarray(values, dtype=np.dtype(NUMERIC_DTYPES[datatype]))
    except (ValueError, TypeError, OverflowError) as exc:
        raise InvalidInferRequest(f"input {name!r}: data is not a (nested) list of {datatype} numbers") from exc
    if array.size != count:
        raise InvalidInferRequest(
            f"input {name!r}: shape {list(shape)} needs {count} elements, data has {array.size}"
        )
    return InputTensor(name, datatype, shape, array.reshape(-1), parameters)


def split_bytes(name: str, raw: bytes | memoryview, count: int) -> list[bytes]:
    """BYTES binary data: each element a 4-byte little-endian length, then that many bytes."""
    view = memoryview(raw)
    elements: list[bytes] = []
    offset = 0
    while offset < len(view):
        if len(elements) == count:
            break
        if offset + 4 > len(view):
            raise InvalidInferRequest(f"input {name!r}: BYTES data ends inside an element's 4-byte length")
        (length,) = struct.unpack_from("<I", view, offset)
        offset += 4
        if offset + length > len(view):
            raise InvalidInferRequest(f"input {name!r}: a BYTES element says {length} bytes, "
                                      f"only {len(view) - offset} are left")
        elements.append(bytes(view[offset : offset + length]))
        offset += length
    if len(elements) != count or offset != len(view):
        raise InvalidInferRequest(
            f"input {name!r}: BYTES data holds {len(elements)} element(s) in {offset} of {len(view)} bytes; "
            f"the shape needs exactly {count}"
        )
    return elements


def join_bytes(elements: Sequence[bytes]) -> bytes:
    """BYTES elements as binary data (the inverse of `split_bytes`)."""
    return b"".join(struct.pack("<I", len(item)) + item for item in elements)


def check_outputs(outputs: Sequence[RequestedOutput]) -> None:
    names = [output.name for output in outputs]
    for output in outputs:
        if output.name not in _OUTPUT_NAMES:
            raise InvalidInferRequest(f"unknown output {output.name[:64]!r}; the outputs are {', '.join(_OUTPUT_NAMES)}")
        if output.classification and not (output.name == OUTPUT_NAME and 1 <= output.classification <= NUM_CLASSES):
            raise InvalidInferRequest(
                f"`{CLASSIFICATION}` applies to {OUTPUT_NAME!r} and must be 1 to {NUM_CLASSES}"
            )
    if len(set(names)) != len(names):
        raise InvalidInferRequest("an output is requested twice")


# -- what the models accept -------------------------------------------------------------------------


def model_images(tensor: InputTensor, max_batch: int, spec: InputSpec = MNIST_INPUT) -> npt.NDArray[np.float32]:
    """The FP32 `image` input as input of a model taking `spec` (N, *spec.sample_shape), checked.

    The values are not checked (see the module's docstring): the tensor is the model's own input.

    Raises:
        InvalidInferRequest: another datatype or shape.
        BatchTooLarge: more than `max_batch` images.
    """
    expected = [-1, *spec.sample_shape]
    if tensor.datatype != "FP32":
        raise InvalidInferRequest(f"input {INPUT_NAME!r} must be FP32, got {tensor.datatype}")
    shape = tensor.shape
    if len(shape) != len(expected) or shape[1:] != spec.sample_shape:
        raise InvalidInferRequest(f"input {INPUT_NAME!r} must have shape {expected} (N images), got {list(shape)}")
    check_batch(shape[0], max_batch)
    assert isinstance(tensor.data, np.ndarray)
    return tensor.data.reshape(shape).astype(np.float32, copy=False)


def image_files(tensor: InputTensor, max_batch: int) -> list[bytes]:
    """The BYTES `image_file` input: one encoded image file per element, shape [N] or [N, 1]."""
    if tensor.datatype != "BYTES":
        raise InvalidInferRequest(f"input {FILE_INPUT!r} must be BYTES (encoded image files), got {tensor.datatype}")
    if len(tensor.shape) not in (1, 2) or (len(tensor.shape) == 2 and tensor.shape[1] != 1):
        raise InvalidInferRequest(f"input {FILE_INPUT!r} must have shape [N] or [N, 1], got {list(tensor.shape)}")
    check_batch(tensor.shape[0], max_batch)
    assert isinstance(tensor.data, list)
    return tensor.data


def check_batch(size: int, max_batch: int) -> None:
    if size < 1:
        raise InvalidInferRequest("the batch is empty: send at least one image")
    if size > max_batch:
        raise BatchTooLarge(f"batch of {size} images; the limit is {max_batch} per request")


def single_input(request: InferRequest, spec: InputSpec = MNIST_INPUT) -> InputTensor:
    """The request's input: `image` or `image_file`; `image` when it sends both (see the module's docstring)."""
    names = [tensor.name for tensor in request.inputs]
    if sorted(names) == sorted((INPUT_NAME, FILE_INPUT)):
        return request.inputs[names.index(INPUT_NAME)]
    if len(request.inputs) != 1 or names[0] not in (INPUT_NAME, FILE_INPUT):
        shown = ", ".join(repr(n[:64]) for n in names[:4]) or "none"
        dims = ", ".join(map(str, spec.sample_shape))
        raise InvalidInferRequest(
            f"send exactly one input, {INPUT_NAME!r} (FP32 [N, {dims}]) or {FILE_INPUT!r} "
            f"(BYTES [N], image files); got {shown}"
        )
    return request.inputs[0]


# -- outputs ----------------------------------------------------------------------------------------


def build_outputs(request: InferRequest, probabilities: npt.NDArray[np.float32]) -> list[OutputTensor]:
    """The requested outputs (all of the model's own when none is named) for (N, 10) probabilities."""
    wanted = request.outputs or [RequestedOutput(OUTPUT_NAME)]
    outputs = []
    for output in wanted:
        binary = request.binary_output if output.binary is None else output.binary
        n = len(probabilities)
        if output.name == DIGIT_OUTPUT:
            outputs.append(OutputTensor(DIGIT_OUTPUT, "INT64", (n,), probabilities.argmax(axis=1).astype(np.int64), binary))
        elif output.classification:
            k = output.classification
            top = np.argsort(-probabilities, axis=1, kind="stable")[:, :k]
            labels = [f"{probabilities[i, c]:.6f}:{c}".encode() for i in range(n) for c in top[i]]
            outputs.append(OutputTensor(OUTPUT_NAME, "BYTES", (n, k), labels, binary))
        else:
            outputs.append(OutputTensor(OUTPUT_NAME, "FP32", (n, NUM_CLASSES), probabilities.reshape(-1), binary))
    return outputs
