"""Issue 24: flat numeric JSON `data` is read by simdjson into a buffer, everything else by orjson.

Every case decodes one body twice, through `decode_request` as it is and with the buffer path turned
off (orjson for every request, the codec before the issue), and asserts the same tensors (dtype and
bytes) or the same error, word for word.
"""

from __future__ import annotations

import json
import warnings
from typing import Any

import numpy as np
import orjson
import pytest
import simdjson

from service.inference_protocol import rest_codec
from service.inference_protocol.errors import InvalidInferRequest
from service.inference_protocol.tensors import NUMERIC_DTYPES, InferRequest

Outcome = tuple[str, Any]


def request(data: Any, datatype: str = "FP32", shape: list[int] | None = None, **extra: Any) -> bytes:
    """A JSON infer request with one input `image` holding `data` (json: orjson refuses ints past 64 bits)."""
    entry = {"name": "image", "datatype": datatype, "shape": [len(data)] if shape is None else shape, "data": data}
    return json.dumps({"inputs": [entry], **extra}, separators=(",", ":")).encode()


def summary(decoded: InferRequest) -> list[tuple[Any, ...]]:
    """What a decoded request holds, comparable bit for bit (NaN and -0.0 included)."""
    return [(t.name, t.datatype, t.shape, t.parameters,
             (t.data.dtype.str, t.data.shape, t.data.tobytes()) if isinstance(t.data, np.ndarray) else t.data)
            for t in decoded.inputs] + [(decoded.id, decoded.outputs, decoded.parameters)]


def outcome(body: bytes, header_length: int | None = None) -> Outcome:
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            decoded = rest_codec.decode_request(body, header_length)
    except InvalidInferRequest as exc:
        return ("error", f"{type(exc).__name__}: {exc}")
    # numpy warns once per element casting a list, once per array casting an array: the same warnings.
    return ("request", (summary(decoded), sorted({str(w.message) for w in caught})))


def both_paths(body: bytes, monkeypatch: pytest.MonkeyPatch, header_length: int | None = None) -> tuple[Outcome, Outcome]:
    """The outcome with the buffer path, then with orjson alone."""
    fast = outcome(body, header_length)
    with monkeypatch.context() as patch:
        patch.setattr(rest_codec, "parse_numeric_data", lambda document, lists: None)
        orjson_only = outcome(body, header_length)
    return fast, orjson_only


def takes_buffer_path(body: bytes) -> bool:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the overflow cases' cast warning
        parsed = rest_codec.parse_numeric_data(body, body.count(b"["))
    return parsed is not None and any(isinstance(entry.get("data"), np.ndarray) for entry in parsed["inputs"])


RNG = np.random.default_rng(24)

# Values each datatype holds (the unsigned ones no negatives), as JSON numbers orjson writes.
VALUES: dict[str, list[Any]] = {
    "FP16": [0.0, -0.0, 1.5, -2, 65504, 1e-8, 0.1], "FP32": [0.0, -0.0, 0.1, 1 / 3, -7, 3.4e38, 1e-45],
    "FP64": [0.0, -0.0, 0.1, 1 / 3, -7, 1.7976931348623157e308, 5e-324],
    "INT8": [-128, 127, 0], "INT16": [-32768, 32767, 1], "INT32": [-(2**31), 2**31 - 1, 2],
    "INT64": [-(2**63), 2**63 - 1, 3], "UINT8": [0, 255], "UINT16": [0, 65535], "UINT32": [0, 2**32 - 1],
    "UINT64": [0, 2**64 - 1, 2**63], "BOOL": [0, 1, 2],
}


@pytest.mark.parametrize("datatype", sorted(NUMERIC_DTYPES))
def test_each_numeric_datatype_decodes_the_same_on_both_paths(datatype: str, monkeypatch: pytest.MonkeyPatch) -> None:
    body = request(VALUES[datatype], datatype)
    fast, orjson_only = both_paths(body, monkeypatch)
    assert fast[0] == "request"
    assert fast == orjson_only
    # BOOL is numpy's truth of each number: left to orjson; every other datatype takes the buffer.
    assert takes_buffer_path(body) is (datatype != "BOOL")


CASES: dict[str, bytes] = {
    "mnist image, flat": request([float(v) for v in np.linspace(0, 1, 784, dtype=np.float32)], shape=[1, 28, 28, 1]),
    "ints and floats in FP32": request([1, 2.5, -3, 0, 1e-7, 123456789]),
    "zeros and exponents": b'{"inputs":[{"name":"image","datatype":"FP32","shape":[7],"data":'
                           b'[-0,-0.0,0,1E2,1e-2,-1.5E+3,2.5e0]}]}',
    # More than 19 significant digits (simdjson's slow path), halfway cases, subnormals: both parsers
    # round each decimal to the nearest double.
    "long decimals in FP64": b'{"inputs":[{"name":"image","datatype":"FP64","shape":[5],"data":'
                             b'[0.1000000000000000055511151231257827021181583404541015625,'
                             b'9007199254740993.0,2.4703282292062328e-324,1.00000000000000011102230246251565404,'
                             b'123456789012345678901234567890e-20]}]}',
    "random doubles, 17 digits": request([float(f"{v:.17g}") for v in RNG.standard_normal(500) * 10.0 ** RNG.integers(
        -40, 40, 500)], "FP64"),
    "random doubles to FP32": request([float(f"{v:.9g}") for v in RNG.standard_normal(500)], "FP32"),
    "random doubles to FP16": request([float(f"{v:.6g}") for v in RNG.standard_normal(500) * 1000], "FP16"),
    # Integers past 2**53 become a double first, then float32 (numpy's order): 2**60 + 2**36 + 1 rounds
    # down that way, up if cast straight to float32.
    "huge ints in FP32": request([2**60 + 2**36 + 1, 2**63 - 1, 2**64 - 1, -(2**63)]),
    "huge ints in FP16": request([2**60, 65519, 65520], "FP16"),
    "huge ints in FP64": request([2**53 + 1, 2**64 - 1], "FP64"),
    "an int past 64 bits (orjson: a float)": request([1, 99999999999999999999999]),
    "a negative int past 64 bits": request([1, -9223372036854775809]),
    "past FP32's range (inf, numpy's warning)": request([3.5e38, -1e300]),
    "past FP16's range": request([1e6], "FP16"),
    "underflow to zero": b'{"inputs":[{"name":"image","datatype":"FP32","shape":[2],"data":[1e-400,-1e-400]}]}',
    "a number past double's range": b'{"inputs":[{"name":"image","datatype":"FP32","shape":[1],"data":[1e400]}]}',
    "NaN": b'{"inputs":[{"name":"image","datatype":"FP32","shape":[2],"data":[1,NaN]}]}',
    "Infinity": b'{"inputs":[{"name":"image","datatype":"FP32","shape":[2],"data":[1,Infinity]}]}',
    "-Infinity": b'{"inputs":[{"name":"image","datatype":"FP32","shape":[2],"data":[1,-Infinity]}]}',
    "too few elements": request([0.5] * 3, shape=[1, 2, 2, 1]),
    "too many elements": request([0.5] * 5, shape=[1, 2, 2, 1]),
    "nested rows": request(np.arange(8, dtype=float).reshape(2, 2, 2, 1).tolist(), shape=[2, 2, 2, 1]),
    "nested, wrong count": request([[1.0, 2.0], [3.0, 4.0]], shape=[3]),
    "nested, ragged": request([[1.0, 2.0], []], shape=[2]),
    "nested, ragged, count of the direct children": request([[1.0], 2.0], shape=[2]),
    "nested ints": request([[1, 2], [3, 4]], "INT32", shape=[2, 2]),
    "an int out of INT8's range": request([1, 128], "INT8"),
    "a negative UINT8": request([1, -1], "UINT8"),
    "a negative UINT64": request([1, -1], "UINT64"),
    "a float in INT32 data": request([1, 2.7], "INT32"),
    "an integral float in INT32 data": request([1, 2.0, 1e2], "INT32"),
    "null in FP32 data (numpy: NaN)": request([1.0, None]),
    "null in INT32 data": request([1, None], "INT32"),
    "true in FP32 data": request([1.0, True]),
    "a string in FP32 data (numpy parses it)": request([1.0, "2.5"]),
    "a word in FP32 data": request([1.0, "two"]),
    "an object in FP32 data": request([1.0, {"a": 1}]),
    "empty data, shape [0]": request([], shape=[0, 28, 28, 1]),
    "empty data, shape [1]": request([], shape=[1]),
    "BYTES strings": request(["a", "b"], "BYTES", shape=[2, 1]),
    "BYTES base64, nested": orjson.dumps({"inputs": [{"name": "image_file", "datatype": "BYTES", "shape": [2, 1],
                                                      "parameters": {"content_type": "base64"},
                                                      "data": [["aGk="], ["eW8="]]}]}),
    "BF16 data": request([1.0], "BF16"),
    "an unknown datatype": request([1.0], "FP8"),
    "datatype not a string": request([1.0], 32),  # type: ignore[arg-type]
    "data a number": orjson.dumps({"inputs": [{"name": "image", "datatype": "FP32", "shape": [1], "data": 1.0}]}),
    "data an object": orjson.dumps({"inputs": [{"name": "image", "datatype": "FP32", "shape": [1], "data": {}}]}),
    "data null": orjson.dumps({"inputs": [{"name": "image", "datatype": "FP32", "shape": [1], "data": None}]}),
    "no data": orjson.dumps({"inputs": [{"name": "image", "datatype": "FP32", "shape": [1]}]}),
    "a bad shape": request([1.0], shape=[-1]),
    "two inputs": orjson.dumps({"inputs": [{"name": "image", "datatype": "FP32", "shape": [1], "data": [0.5]},
                                           {"name": "digits", "datatype": "INT64", "shape": [2], "data": [1, 2]}]}),
    "an id, outputs and parameters": request([0.5], id="r-1", parameters={"binary_data_output": True},
                                             outputs=[{"name": "digit", "parameters": {"binary_data": False}}]),
    "a bracket inside the id": request([0.5], id="[x]"),
    "an id too long": request([0.5], id="x" * 300),
    "an id not a string": request([0.5], id=[1]),
    "an unknown output": request([0.5], outputs=[{"name": "logits"}]),
    "a list as a parameter": request([0.5], parameters={"p": [1]}),
    "another top-level key with arrays": request([0.5], extra=[[1], [2]]),
    "inputs empty": b'{"inputs":[]}',
    "inputs an object": b'{"inputs":{"data":[1]}}',
    "an input not an object": b'{"inputs":[[1.0]]}',
    "a list, not an object": b"[1.0, 2.0]",
    "a repeated key (orjson keeps the last)": b'{"inputs":[{"name":"image","datatype":"INT8","shape":[1],'
                                              b'"data":[1],"data":[1000]}]}',
    "a repeated top-level key": request([0.5]).replace(b"{", b'{"inputs":[],', 1),
    "a repeated datatype": request([0.1], "FP32").replace(b'"datatype"', b'"datatype":"FP64","datatype"'),
    "a repeated id": request([0.5], id="last").replace(b'"id"', b'"id":"first","id"'),
    "an escaped key": b'{"inputs":[{"name":"image","datatype":"FP32","shape":[1],"d\\u0061ta":[0.5]}]}',
    "a byte order mark": b"\xef\xbb\xbf" + request([0.5]),
    "invalid UTF-8 in a string": request([0.5], id="x").replace(b'"x"', b'"\xff"'),
    "a lone surrogate escape": request([0.5], id="x").replace(b'"x"', b'"\\ud800"'),
    "trailing garbage": request([0.5]) + b"x",
    "an empty body": b"",
    "whitespace around": b" \n\t" + request([0.5]) + b" \r\n",
    "deep nesting": b'{"inputs":[{"name":"image","datatype":"FP32","shape":[1],"data":' + b"[" * 1100 + b"]" * 1100
                    + b"}]}",
}


@pytest.mark.parametrize("body", CASES.values(), ids=CASES.keys())
def test_the_buffer_path_and_orjson_give_the_same_answer(body: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
    fast, orjson_only = both_paths(body, monkeypatch)
    assert fast == orjson_only


def test_the_cases_cover_both_paths_and_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    """The case table is not all fallbacks nor all successes: the comparison above means something."""
    buffered = [name for name, body in CASES.items() if takes_buffer_path(body)]
    errors = [name for name, body in CASES.items() if outcome(body)[0] == "error"]
    assert {"mnist image, flat", "huge ints in FP32", "too few elements", "two inputs", "long decimals in FP64",
            "random doubles to FP32", "random doubles to FP16"} <= set(buffered)
    assert not {"nested rows", "nested, ragged", "a bracket inside the id", "a byte order mark",
                "a repeated key (orjson keeps the last)", "an int out of INT8's range"} & set(buffered)
    assert {"NaN", "Infinity", "too few elements", "nested, ragged", "a number past double's range"} <= set(errors)


def test_a_wrong_count_gets_todays_message() -> None:
    assert outcome(CASES["too few elements"]) == (
        "error", "InvalidInferRequest: input 'image': shape [1, 2, 2, 1] needs 4 elements, data has 3")


def test_nan_and_infinity_are_not_json() -> None:
    """As before: JSON has no NaN or Infinity (send them as binary data); orjson words the refusal."""
    kind, message = outcome(CASES["NaN"])
    assert kind == "error"
    assert message.startswith("InvalidInferRequest: the body: not a JSON inference request (")


def test_huge_ints_round_through_a_double_as_numpy_does() -> None:
    decoded = rest_codec.decode_request(CASES["huge ints in FP32"], None)
    data = decoded.inputs[0].data
    assert isinstance(data, np.ndarray) and data.dtype == np.float32
    assert float(data[0]) == 2.0**60  # straight to float32 it would be 2**60 + 2**37
    assert data.tolist() == [2.0**60, 2.0**63, 2.0**64, -(2.0**63)]


def test_flat_float_data_is_read_without_orjson(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(orjson, "loads", lambda data: pytest.fail("orjson parsed flat numeric data"))
    body = CASES["mnist image, flat"]
    decoded = rest_codec.decode_request(body, None)
    expected = np.linspace(0, 1, 784, dtype=np.float32)
    assert isinstance(decoded.inputs[0].data, np.ndarray)
    np.testing.assert_array_equal(decoded.inputs[0].data, expected)


def test_data_nested_by_rows_goes_to_orjson_unparsed_by_simdjson(monkeypatch: pytest.MonkeyPatch) -> None:
    """Thousands of row arrays cannot be flat data: no simdjson parse is spent on them before orjson's."""
    rows = np.arange(200 * 4, dtype=np.float32).reshape(200, 4)
    body = request(rows.tolist(), shape=[200, 4])
    monkeypatch.setattr(simdjson, "Parser", lambda: pytest.fail("simdjson parsed nested data"))
    decoded = rest_codec.decode_request(body, None)
    assert isinstance(decoded.inputs[0].data, np.ndarray)
    np.testing.assert_array_equal(decoded.inputs[0].data, rows.reshape(-1))


def test_binary_data_bodies_decode_the_same(monkeypatch: pytest.MonkeyPatch) -> None:
    """The binary extension: a JSON header with `binary_data_size`, one input as JSON data beside it."""
    header = orjson.dumps({"inputs": [
        {"name": "image", "datatype": "FP32", "shape": [2], "parameters": {"binary_data_size": 8}},
        {"name": "other", "datatype": "INT16", "shape": [2], "data": [1, -2]}]})
    body = header + np.array([0.25, -1.5], np.float32).tobytes()
    fast, orjson_only = both_paths(body, monkeypatch, header_length=len(header))
    assert fast[0] == "request"
    assert fast == orjson_only
    short = header + b"\x00" * 4
    assert both_paths(short, monkeypatch, header_length=len(header))[0][0] == "error"
    assert both_paths(short, monkeypatch, header_length=len(header))[0] == \
        both_paths(short, monkeypatch, header_length=len(header))[1]


def test_too_many_arrays_are_refused_before_either_parser(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(simdjson, "Parser", lambda: pytest.fail("simdjson parsed the body"))
    monkeypatch.setattr(orjson, "loads", lambda data: pytest.fail("orjson parsed the body"))
    arrays = rest_codec.MAX_JSON_LISTS + 1
    body = request([[0.5]] * arrays, shape=[arrays])
    with pytest.raises(InvalidInferRequest, match=f"the JSON request has {arrays + 3:,} arrays"):
        rest_codec.decode_request(body, None)


def test_json_cost_counts_as_bytes_count_did() -> None:
    document = b'{"a":["[", "]"], "b": [[1], [2]]} "'
    assert rest_codec.check_json_cost(document) == document.count(b"[")
    assert rest_codec.check_json_cost(b"") == 0
