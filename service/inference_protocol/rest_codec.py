"""The protocol's HTTP documents, with Triton's binary tensor data extension.

A request body is a JSON inference request, optionally followed by binary tensor data: then the
`Inference-Header-Content-Length` header gives the JSON's length, and each input sent as binary
data says how many of the bytes after it are its own (`"parameters": {"binary_data_size": n}`),
in the order of the inputs. tritonclient's HTTP client sends every input this way by default and
asks for every output as binary data (`binary_data_output`, or `binary_data` per output), so
without the extension the most common client fails. Whatever does not add up is a 400.

A JSON batch of 1,024 images holds 802,816 numbers. Flat numeric `data` is read by simdjson straight
into a C buffer (no Python object per number, as Triton reads it with rapidjson); every other request
is parsed by orjson, and both give the checks below the same document, so the answers are the same.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import orjson
import simdjson

from service.inference_protocol.errors import InvalidInferRequest
from service.inference_protocol.tensors import (
    CLASSIFICATION,
    MAX_BYTES_ELEMENTS,
    NUMERIC_DTYPES,
    InferRequest,
    InferResponse,
    InputTensor,
    Parameters,
    RequestedOutput,
    check_bytes_count,
    check_datatype,
    check_outputs,
    check_request_id,
    check_shape,
    join_bytes,
    tensor_from_binary,
    tensor_from_values,
)

HEADER_LENGTH = "inference-header-content-length"
"""The binary extension's header: how many bytes of the body are the JSON document."""

MAX_COUNT_DIGITS = 18
"""Longest byte count accepted in a header (any body this server takes has at most 9 digits)."""

MAX_JSON_LISTS = 65_536
"""Most JSON arrays in an inference request's JSON. Flat data needs one per input, data nested by
rows ([1024, 28, 28]) about 30,000; 1.6 million nested `[""]` in 8 MiB cost 1.7 s and 205 MiB to
parse. Send data flat (tritonclient does), or as binary data, beyond it."""

MAX_JSON_STRINGS = 2 * MAX_BYTES_ELEMENTS + 1024
"""Most JSON strings: one per BYTES element, and the keys and names around them."""

BINARY_SIZE = "binary_data_size"
BINARY_OUTPUT = "binary_data"
JSON_TYPE = "application/json"
BINARY_TYPE = "application/octet-stream"


def parse_header_length(value: str | None, body_length: int) -> int | None:
    """The JSON part's length from `Inference-Header-Content-Length`, or None when absent."""
    if value is None:
        return None
    # ASCII digits only, and few of them: `str.isdigit` accepts "²", which `int` refuses (a 500), and
    # `int` refuses 5,000 digits (Python's limit on digits: another 500).
    text = value.strip()
    if not (text.isascii() and text.isdigit() and len(text) <= MAX_COUNT_DIGITS):
        raise InvalidInferRequest(f"{HEADER_LENGTH} must be a byte count, got {value[:32]!r}")
    length = int(text)
    if length > body_length:
        raise InvalidInferRequest(f"{HEADER_LENGTH} is {length} but the body has only {body_length} bytes")
    if length == 0:
        # The extension's "raw binary request" (a body of tensor data and no JSON) fits models whose
        # one input's shape follows from the byte count; these models take two kinds of input.
        raise InvalidInferRequest(f"{HEADER_LENGTH}: 0 (a body without a JSON request) is not supported: "
                                  "send the JSON inference request before the binary data")
    return length


def check_json_cost(document: bytes) -> int:
    """Refuse JSON whose value count would cost far more to parse than any request needs.

    Counted in C before the parser builds a Python object per value. Brackets and quotes inside
    strings count too, which only overestimates: base64 has neither.

    Returns:
        The number of `[` in the document (at least its number of arrays).
    """
    # numpy's vectorised comparison counts a 5 MB body in 0.5 ms, `bytes.count` in 2.5 ms.
    octets = np.frombuffer(document, dtype=np.uint8)
    lists = int(np.count_nonzero(octets == ord("[")))
    if lists > MAX_JSON_LISTS:
        raise InvalidInferRequest(f"the JSON request has {lists:,} arrays; at most {MAX_JSON_LISTS:,} are "
                                  "accepted: send tensor data flat, or as binary data")
    strings = int(np.count_nonzero(octets == ord('"'))) // 2
    if strings > MAX_JSON_STRINGS:
        raise InvalidInferRequest(f"the JSON request has {strings:,} strings; at most {MAX_JSON_STRINGS:,} are "
                                  "accepted: send BYTES data as binary data")
    return lists


def decode_request(body: bytes, header_length: int | None) -> InferRequest:
    """Parse an inference request body (JSON, then binary data when `header_length` is given)."""
    document_bytes = body if header_length is None else body[:header_length]
    binary = memoryview(body)[len(document_bytes):]
    lists = check_json_cost(document_bytes)
    document = parse_numeric_data(document_bytes, lists)
    if document is None:
        try:
            document = orjson.loads(document_bytes)
        except orjson.JSONDecodeError as exc:
            where = "the body" if header_length is None else f"the first {header_length} bytes of the body"
            raise InvalidInferRequest(f"{where}: not a JSON inference request ({exc.msg})") from exc
    if not isinstance(document, dict):
        raise InvalidInferRequest("the inference request must be a JSON object with `inputs`")
    request_id = check_request_id(document.get("id"))
    parameters = _parameters(document.get("parameters"), "the request")
    raw_inputs = document.get("inputs")
    if not isinstance(raw_inputs, list) or not raw_inputs:
        raise InvalidInferRequest("`inputs` must be a non-empty list of input tensors")
    inputs, offset = [], 0
    for index, raw in enumerate(raw_inputs):
        tensor, used = _input(raw, index, binary[offset:])
        inputs.append(tensor)
        offset += used
    if offset != len(binary):
        raise InvalidInferRequest(
            f"the body has {len(binary)} bytes of binary data after the JSON, but the inputs' "
            f"{BINARY_SIZE} add up to {offset}"
        )
    raw_outputs = document.get("outputs", [])
    if not isinstance(raw_outputs, list):
        raise InvalidInferRequest("`outputs` must be a list of requested outputs")
    outputs = [_output(raw, index) for index, raw in enumerate(raw_outputs)]
    check_outputs(outputs)
    return InferRequest(request_id, inputs, outputs, parameters)


# simdjson's buffer type for each numeric datatype's JSON data ('d' double, 'i' int64, 'u' uint64). A
# number becomes what orjson and numpy make of it: a double (an integer too) cast to FP16/FP32, or an
# integer checked against the datatype's range. BOOL is left to orjson (JSON's true and false).
_BUFFER_TYPES: dict[str, Literal["d", "i", "u"]] = {**dict.fromkeys(("FP16", "FP32", "FP64"), "d"),
                 **dict.fromkeys(("INT8", "INT16", "INT32", "INT64", "UINT8", "UINT16", "UINT32"), "i"),
                 "UINT64": "u"}
_BUFFER_DTYPES = {"d": np.float64, "i": np.int64, "u": np.uint64}
_UTF8_BOM = b"\xef\xbb\xbf"
_MAX_FLAT_LISTS = 64
"""Most `[` in a request the buffer path parses: flat data needs about two per input (shape, data),
data nested by rows thousands, and those go to orjson without a simdjson parse first."""


def parse_numeric_data(document: bytes, lists: int) -> dict[str, Any] | None:
    """The JSON request with each input's flat numeric `data` as a numpy array, or None for orjson.

    None (orjson parses it, as before) for anything else: JSON that simdjson refuses (orjson words the
    error), a UTF-8 byte order mark (simdjson skips it, orjson refuses it), BYTES or BOOL data, data
    with a non-number, an integer out of its datatype's range or a nested list (numpy's answer to
    those is orjson's path), and brackets inside strings. `lists` is `check_json_cost`'s count.
    """
    if lists > _MAX_FLAT_LISTS or document.startswith(_UTF8_BOM):
        return None
    try:
        # A parser per document: one kept for reuse would hold ~4x the largest body it has read.
        root = simdjson.Parser().parse(document)
        if not isinstance(root, simdjson.Object):
            return None
        fields = _fields(root)
        raw_inputs = fields.pop("inputs", None) if fields is not None else None
        if fields is None or not isinstance(raw_inputs, simdjson.Array):
            return None
        result: dict[str, Any] = {key: _plain(value) for key, value in fields.items()}
        inputs = []
        for raw in raw_inputs:
            entry = _input_with_buffer(raw)
            if entry is None:
                return None
            inputs.append(entry)
    except (ValueError, RuntimeError, TypeError):  # simdjson's errors, and its buffers' type checks
        return None
    # A `[` for every array seen (the inputs' list among them) proves no `data` nested a list: simdjson
    # flattens nested data, where numpy refuses ragged lists.
    buffers = sum(isinstance(entry.get("data"), np.ndarray) for entry in inputs)
    if buffers + _count_lists(result) + _count_lists(inputs) != lists:
        return None
    result["inputs"] = inputs
    return result


def _input_with_buffer(raw: object) -> dict[str, Any] | None:
    """One input object, its numeric `data` a numpy array of the datatype's dtype; None for orjson."""
    entry = _fields(raw) if isinstance(raw, simdjson.Object) else None
    if entry is None:
        return None
    data = entry.get("data")
    for key, value in entry.items():
        if key != "data" or not isinstance(value, simdjson.Array):
            entry[key] = _plain(value)
    if not isinstance(data, simdjson.Array):
        return entry
    datatype = entry.get("datatype")
    if not isinstance(datatype, str) or datatype not in _BUFFER_TYPES:
        return None
    buffer_type = _BUFFER_TYPES[datatype]
    values = np.frombuffer(data.as_buffer(of_type=buffer_type), dtype=_BUFFER_DTYPES[buffer_type])
    array = _cast(values, np.dtype(NUMERIC_DTYPES[datatype]))
    if array is None:
        return None
    entry["data"] = array
    return entry


def _cast(values: npt.NDArray[Any], dtype: np.dtype[Any]) -> npt.NDArray[Any] | None:
    """`values` as `dtype`, or None where numpy refuses the conversion from Python numbers (out of range)."""
    if dtype.kind in "iu" and values.size:
        info = np.iinfo(dtype)
        if values.min() < info.min or values.max() > info.max:
            return None
    # Past FP16/FP32's range a number becomes inf, with numpy's overflow warning, as np.asarray(list) does.
    return values.astype(dtype, copy=False)


def _fields(value: simdjson.Object) -> dict[str, Any] | None:
    """An object's fields as simdjson values (lazy arrays), None when a key repeats.

    simdjson finds the first of repeated keys, orjson keeps the last: leave those documents to orjson.
    """
    keys = list(value)
    if len(set(keys)) != len(keys):
        return None
    return {key: value[key] for key in keys}


def _plain(value: object) -> Any:
    """A simdjson value as the Python object orjson would have made of it."""
    if isinstance(value, simdjson.Object):
        return value.as_dict()
    if isinstance(value, simdjson.Array):
        return value.as_list()
    return value


def _count_lists(value: object) -> int:
    if isinstance(value, dict):
        return sum(_count_lists(item) for item in value.values())
    if isinstance(value, list):
        return 1 + sum(_count_lists(item) for item in value)
    return 0


def _input(raw: object, index: int, binary: memoryview) -> tuple[InputTensor, int]:
    """One input and the number of binary bytes it took."""
    if not isinstance(raw, dict):
        raise InvalidInferRequest(f"inputs[{index}] must be an object with name, shape, datatype and data")
    name = raw.get("name")
    if not isinstance(name, str):
        raise InvalidInferRequest(f"inputs[{index}]: `name` must be a string")
    shown = name[:64]
    datatype = check_datatype(shown, raw.get("datatype"))
    shape = check_shape(shown, raw.get("shape"))
    parameters = _parameters(raw.get("parameters"), f"input {shown!r}")
    size = parameters.get(BINARY_SIZE)
    if size is not None:
        if type(size) is not int or size < 0:
            raise InvalidInferRequest(f"input {shown!r}: {BINARY_SIZE} must be a non-negative integer")
        if "data" in raw:
            raise InvalidInferRequest(f"input {shown!r} has both `data` and {BINARY_SIZE}: send one")
        if size > len(binary):
            raise InvalidInferRequest(
                f"input {shown!r}: {BINARY_SIZE} is {size} but only {len(binary)} bytes of binary data are left"
            )
        return tensor_from_binary(shown, datatype, shape, binary[:size], parameters), size
    if "data" not in raw:
        raise InvalidInferRequest(f"input {shown!r} has no `data` (nor a {BINARY_SIZE} for binary data)")
    data = raw["data"]
    if not isinstance(data, list | np.ndarray):  # an array: flat numeric data read by `parse_numeric_data`
        raise InvalidInferRequest(f"input {shown!r}: `data` must be a list")
    if datatype == "BYTES":
        assert isinstance(data, list)  # `parse_numeric_data` reads numeric data only
        check_bytes_count(shown, shape)  # before a single element is flattened or decoded
        return tensor_from_values(shown, datatype, shape, _json_bytes(shown, data, parameters), parameters), 0
    return tensor_from_values(shown, datatype, shape, data, parameters), 0


def _json_bytes(name: str, data: list[Any], parameters: Parameters) -> list[bytes]:
    """BYTES elements given as JSON strings (nested lists flattened).

    A string is its UTF-8 bytes, as Triton reads it. Image files are not text: send them as binary
    data (tritonclient does by default), or as base64 strings with the input parameter
    `"content_type": "base64"` (MLServer's convention for BYTES in JSON).
    """
    base64_strings = parameters.get("content_type") == "base64"
    flat: list[bytes] = []
    stack: list[Any] = [iter(data)]
    while stack:
        item = next(stack[-1], _END)
        if item is _END:
            stack.pop()
        elif isinstance(item, list):
            if len(stack) > 8:
                raise InvalidInferRequest(f"input {name!r}: `data` is nested too deeply")
            stack.append(iter(item))
        elif not isinstance(item, str):
            raise InvalidInferRequest(f"input {name!r}: BYTES data must be strings")
        elif base64_strings:
            try:
                flat.append(base64.b64decode(item, validate=True))
            except binascii.Error as exc:
                raise InvalidInferRequest(f"input {name!r}: element {len(flat)} is not valid base64") from exc
        else:
            flat.append(item.encode())
    return flat


_END = object()


def _output(raw: object, index: int) -> RequestedOutput:
    if not isinstance(raw, dict) or not isinstance(raw.get("name"), str):
        raise InvalidInferRequest(f"outputs[{index}] must be an object with a string `name`")
    name: str = raw["name"]
    parameters = _parameters(raw.get("parameters"), f"output {name[:64]!r}")
    binary = parameters.get(BINARY_OUTPUT)
    if binary is not None and not isinstance(binary, bool):
        raise InvalidInferRequest(f"output {name[:64]!r}: {BINARY_OUTPUT} must be true or false")
    classes = parameters.get(CLASSIFICATION, 0)
    if type(classes) is not int:
        raise InvalidInferRequest(f"output {name[:64]!r}: {CLASSIFICATION} must be an integer")
    return RequestedOutput(name, binary, classes)


def _parameters(raw: object, where: str) -> Parameters:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise InvalidInferRequest(f"{where}: `parameters` must be an object")
    for key, value in raw.items():
        if not isinstance(value, bool | int | float | str):
            raise InvalidInferRequest(f"{where}: parameter {key[:64]!r} must be a string, number or boolean")
    return raw


def encode_response(response: InferResponse) -> tuple[bytes, dict[str, str]]:
    """The response body and its headers: JSON alone, or JSON then binary data (binary extension)."""
    document: dict[str, Any] = {"model_name": response.model_name, "model_version": response.model_version}
    if response.id is not None:
        document["id"] = response.id
    outputs, chunks = [], []
    for output in response.outputs:
        entry: dict[str, Any] = {"name": output.name, "datatype": output.datatype, "shape": list(output.shape)}
        if output.binary:
            raw = join_bytes(output.data) if isinstance(output.data, list) else output.data.tobytes()
            entry["parameters"] = {BINARY_SIZE: len(raw)}
            chunks.append(raw)
        elif isinstance(output.data, list):
            entry["data"] = [item.decode() for item in output.data]
        else:
            entry["data"] = output.data
        outputs.append(entry)
    document["outputs"] = outputs
    header = orjson.dumps(document, option=orjson.OPT_SERIALIZE_NUMPY)
    if not chunks:
        return header, {"content-type": JSON_TYPE}
    return b"".join([header, *chunks]), {"content-type": BINARY_TYPE, HEADER_LENGTH: str(len(header))}
