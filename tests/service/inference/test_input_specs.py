"""Each model is served with its own input spec (its card's, checked against its ONNX signature):
the UCI 8x8 models next to the MNIST ones, for uploads, JSON pixels, the comparison and the V2 protocol.

The models here are tiny ONNX graphs built in the test (Flatten + Gemm + Softmax) in a store of
their own, so the tests need neither the committed store nor a trained 8x8 model.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from digit_frontend import pipeline
from digit_frontend.framing import block_counts, uci_blocks
from service.server.app import create_app
from tests.factories import encode
from tests.service.conftest import make_settings
from tests.service.inference.conftest import (
    WEIGHTS,
    expected_probabilities,
)


@pytest.fixture(scope="module")
def client(zoo: Path) -> Iterator[TestClient]:
    with TestClient(create_app(make_settings(zoo, default_model="mnist_linear"))) as started:
        yield started


def bar_page() -> npt.NDArray[np.uint8]:
    """A black bar 160 px tall and 38 wide on a white 320x320 page: a "1" whose 8x8 counts are known."""
    page = np.full((320, 320), 255, dtype=np.uint8)
    page[80:240, 141:179] = 0
    return page


# The bar's UCI framing by hand: full height (32 rows), width 38 x 32 / 160 = 7.6 -> 8 columns,
# its centre of mass (3.5) put at the bitmap's middle (15.5): columns 12-19. Its stroke (2 x area /
# outline = 31 px at 160 tall) is within the pen's tolerance (0.7-1.6 x 5.5 x 160 / 32 = 27.5 px),
# so it is neither dilated nor eroded. Blocks 3 (columns 12-15) and 4 (16-19) are full: 16 on
# every row, 0 elsewhere.
BAR_COUNTS = np.zeros((8, 8), dtype=np.uint8)
BAR_COUNTS[:, 3] = BAR_COUNTS[:, 4] = 16


def picture(prepared_png: str) -> npt.NDArray[np.uint8]:
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(prepared_png))))


# -- the encoding ------------------------------------------------------------------------------


def test_block_counts_of_a_filled_square() -> None:
    bitmap = np.zeros((32, 32), dtype=np.uint8)
    bitmap[6:26, 10:20] = 1  # rows 6-25, columns 10-19
    counts = block_counts(bitmap)
    rows = np.array([0, 2, 4, 4, 4, 4, 2, 0])  # rows 6-7 in block 1, 8-23 in blocks 2-5, 24-25 in block 6
    cols = np.array([0, 0, 2, 4, 4, 0, 0, 0])  # columns 10-11 in block 2, 12-19 in blocks 3-4
    assert np.array_equal(counts, np.outer(rows, cols))
    assert counts.max() == 16 and counts.sum() == 200


def test_the_bar_is_framed_as_computed_by_hand() -> None:
    assert np.array_equal(uci_blocks(bar_page() < 128), BAR_COUNTS)


def test_an_mnist_digit_fills_the_bitmap_height_as_the_uci_digits_do(mnist_test: Any) -> None:
    for image in mnist_test.images[:20]:
        counts = uci_blocks(image)
        assert counts.shape == (8, 8) and counts.max() <= 16
        assert counts[0].any() and counts[7].any()  # every UCI digit inks its top and bottom rows


# -- load time ---------------------------------------------------------------------------------


def test_a_model_whose_graph_disagrees_with_its_card_fails_to_load_with_the_reason(client: TestClient) -> None:
    models = {m["name"]: m for m in client.get("/models").json()["models"]}
    liar = models["digits8_liar"]
    assert liar["state"] == "failed"
    assert liar["reason"] == (
        "graph input is 'image' tensor(float) [N, 28, 28, 1], expected 'image' tensor(float) [N, 64] with a "
        "dynamic batch dimension, as its card's input says (8x8 flat, values in [0, 1] (17 levels))")
    assert models["digits8_mislabelled"]["state"] == "failed"
    assert models["digits8_mislabelled"]["reason"] == (
        "card.json input: input encoding 'mnist' frames digits in 28x28, but the input is 8x8")


def test_models_shows_each_models_input_spec(client: TestClient) -> None:
    models = {m["name"]: m for m in client.get("/models").json()["models"]}
    assert models["digits8_flat"]["state"] == models["digits8_nhwc"]["state"] == "ready"
    assert models["digits8_flat"]["input"] == {
        "height": 8, "width": 8, "layout": "flat", "shape": [-1, 64], "low": 0.0, "high": 1.0, "levels": 17,
        "encoding": "uci-8x8", "description": "8x8 flat, values in [0, 1] (17 levels)"}
    assert models["digits8_nhwc"]["input"]["shape"] == [-1, 8, 8, 1]
    assert models["mnist_linear"]["input"]["shape"] == [-1, 28, 28, 1]
    assert models["mnist_linear"]["input"]["encoding"] == "mnist"
    assert client.get("/models/digits8_flat").json()["input"]["encoding"] == "uci-8x8"


# -- uploads -----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["digits8_flat", "digits8_nhwc"])
def test_an_upload_to_an_8x8_model_gets_the_uci_framing(client: TestClient, name: str) -> None:
    response = client.post(f"/predict?model={name}&explain=true", content=encode(bar_page()),
                           headers={"content-type": "image/png"})
    assert response.status_code == 200, response.text
    body = response.json()
    seen = picture(body["image"]["prepared_png"])
    assert seen.shape == (8, 8)
    assert np.array_equal(seen, np.rint(BAR_COUNTS * (255 / 16)).astype(np.uint8))
    # The model got the counts / 16 in its own layout: the answer is what the graph gives for them.
    expected = expected_probabilities((BAR_COUNTS / 16.0).reshape(1, -1).astype(np.float32), WEIGHTS[name])
    assert np.allclose(body["probabilities"], expected[0], atol=1e-5)


def test_an_upload_to_the_mnist_model_is_framed_as_before(client: TestClient) -> None:
    data = encode(bar_page())
    body = client.post("/predict?model=mnist_linear&explain=true", content=data,
                       headers={"content-type": "image/png"}).json()
    framed = pipeline.prepare_image(data, max_pixels=10**7).pixels
    assert np.array_equal(picture(body["image"]["prepared_png"]), framed)
    expected = expected_probabilities((framed / 255.0).astype(np.float32)[None], WEIGHTS["mnist_linear"])
    assert np.allclose(body["probabilities"], expected[0], atol=1e-5)


# -- JSON pixels -------------------------------------------------------------------------------


def test_json_8x8_pixels_to_an_8x8_model(client: TestClient) -> None:
    pixels = (BAR_COUNTS / 16.0).tolist()
    response = client.post("/predict?model=digits8_flat", json={"images": [pixels, pixels]})
    assert response.status_code == 200, response.text
    expected = expected_probabilities(np.asarray([pixels], dtype=np.float32), WEIGHTS["digits8_flat"])
    assert [np.allclose(a["probabilities"], expected[0], atol=1e-5) for a in response.json()] == [True, True]


def test_json_28x28_pixels_to_an_8x8_model_is_told_the_shape(client: TestClient, mnist_test: Any) -> None:
    response = client.post("/predict?model=digits8_nhwc", json={"images": [(mnist_test.images[0] / 255.0).tolist()]})
    assert response.status_code == 422
    assert response.json() == {
        "error": "model 'digits8_nhwc' takes 8x8 images (8 rows of 8 values in [0, 1]); image 0 of the request "
                 "is 28x28",
        "model": "digits8_nhwc", "input_shape": [8, 8]}


def test_json_8x8_pixels_to_an_mnist_model_is_told_the_shape(client: TestClient) -> None:
    # The default model (no `model` named) is the MNIST one.
    response = client.post("/predict", json={"images": [(BAR_COUNTS / 16.0).tolist()]})
    assert response.status_code == 422
    assert response.json()["error"] == (
        "model 'mnist_linear' takes 28x28 images (28 rows of 28 values in [0, 1]); image 0 of the request is 8x8")


def test_json_pixels_are_checked_against_the_8x8_range_and_shape(client: TestClient) -> None:
    over = (BAR_COUNTS / 16.0).tolist()
    over[3][3] = 16.0  # a raw count, not count / 16
    response = client.post("/predict?model=digits8_flat", json={"images": [over]})
    assert response.status_code == 422
    assert response.json()["error"] == "invalid request: images.0.3.3: Input should be less than or equal to 1"
    # A malformed 8x8 image (neither shape of a known input) gets the validation error, as MNIST's do.
    response = client.post("/predict?model=digits8_flat", json={"images": [[[0.5] * 8] * 7]})
    assert response.json()["error"] == "invalid request: images.0: List should have at least 8 items after validation, not 7"
    blank = client.post("/predict?model=digits8_flat", json={"images": [[[0.0] * 8] * 8]})
    assert blank.status_code == 422 and blank.json()["error"].startswith("no ink found: image 0 of the request is blank")


# -- the comparison ----------------------------------------------------------------------------


def test_compare_prepares_each_model_its_own_input_once_per_encoding(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = {"mnist": 0, "uci": 0}
    frame, blocks = pipeline.frame_digit, pipeline.uci_blocks

    def counted_frame(strokes: Any) -> Any:
        calls["mnist"] += 1
        return frame(strokes)

    def counted_blocks(strokes: Any) -> Any:
        calls["uci"] += 1
        return blocks(strokes)

    monkeypatch.setattr(pipeline, "frame_digit", counted_frame)
    monkeypatch.setattr(pipeline, "uci_blocks", counted_blocks)
    response = client.post("/models/compare?explain=true", content=encode(bar_page()),
                           headers={"content-type": "image/png"})
    assert response.status_code == 200, response.text
    body = response.json()
    shapes = {p["model"]: picture(p["image"]["prepared_png"]).shape for p in body["predictions"]}
    assert shapes == {"mnist_linear": (28, 28), "digits8_flat": (8, 8), "digits8_nhwc": (8, 8)}
    assert calls == {"mnist": 1, "uci": 1}  # two 8x8 models, one framing
    assert {u["name"] for u in body["unavailable"]} == {"digits8_liar", "digits8_mislabelled"}
    expected = expected_probabilities((BAR_COUNTS / 16.0).reshape(1, -1).astype(np.float32), WEIGHTS["digits8_nhwc"])
    answer = next(p for p in body["predictions"] if p["model"] == "digits8_nhwc")
    assert np.allclose(answer["probabilities"], expected[0], atol=1e-5)


# -- the Open Inference Protocol -----------------------------------------------------------------


@pytest.mark.parametrize(("name", "shape"), [("digits8_flat", [-1, 64]), ("digits8_nhwc", [-1, 8, 8, 1]),
                                             ("mnist_linear", [-1, 28, 28, 1])])
def test_v2_metadata_declares_the_models_input_shape(client: TestClient, name: str, shape: list[int]) -> None:
    inputs = client.get(f"/v2/models/{name}").json()["inputs"]
    assert inputs[0] == {"name": "image", "datatype": "FP32", "shape": shape}
    assert inputs[1]["name"] == "image_file"


def test_v2_tensors_are_checked_against_the_models_spec(client: TestClient) -> None:
    values = (BAR_COUNTS / 16.0).reshape(-1).tolist()
    ok = client.post("/v2/models/digits8_flat/infer",
                     json={"inputs": [{"name": "image", "datatype": "FP32", "shape": [1, 64], "data": values}]})
    assert ok.status_code == 200, ok.text
    expected = expected_probabilities(np.asarray([values], dtype=np.float32), WEIGHTS["digits8_flat"])
    assert np.allclose(ok.json()["outputs"][0]["data"], expected[0], atol=1e-5)
    wrong = client.post("/v2/models/digits8_flat/infer", json={
        "inputs": [{"name": "image", "datatype": "FP32", "shape": [1, 28, 28, 1], "data": [0.0] * 784}]})
    assert wrong.status_code == 400
    assert wrong.json()["error"] == "input 'image' must have shape [-1, 64] (N images), got [1, 28, 28, 1]"
    files = client.post("/v2/models/digits8_nhwc/infer", json={"inputs": [{
        "name": "image_file", "datatype": "BYTES", "shape": [1],
        "data": [base64.b64encode(encode(bar_page())).decode()], "parameters": {"content_type": "base64"}}]})
    assert files.status_code == 200, files.text
    expected = expected_probabilities((BAR_COUNTS / 16.0).reshape(1, -1).astype(np.float32), WEIGHTS["digits8_nhwc"])
    assert np.allclose(files.json()["outputs"][0]["data"], expected[0], atol=1e-5)
