"""Triton's model configuration (`config.pbtxt`) for each model of the store, so that Triton can serve
the store as it is:

    python -m service.inference_protocol.triton_config --store model_store   # (re)write them

The store already has Triton's layout (`<name>/<version>/model.onnx`); Triton ignores the cards
beside the ONNX files (this script reads them for each model's input spec). A config declares
what the service's own metadata declares for the model's tensor (`image` FP32 [-1, 28, 28, 1] in
for the MNIST models, [-1, 64] or [-1, 8, 8, 1] for the UCI 8x8 ones; `probabilities` FP32 [-1, 10]
out; Triton writes the batch dimension as `max_batch_size` instead of -1), Triton's dynamic batcher, and a version policy of the
latest version. The `image_file` input and the `digit` output are this service's (the preprocessing
is Python); Triton serves the tensor only. `tests/oip/test_triton_config.py` parses every committed
config with Triton's own `ModelConfig` message and checks it against the model's ONNX signature.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from digit_contract.card import ModelCard
from digit_contract.inputs import INPUT_NAME, MNIST_INPUT, NUM_CLASSES, OUTPUT_NAME, InputSpec
from digit_contract.store import CARD_FILE, latest_version, list_models, version_dir
from service.inference_protocol.plane import MAX_BATCH
from service.inference_protocol.tensors import FILE_INPUT

CONFIG_FILE = "config.pbtxt"

MAX_QUEUE_DELAY_US = 500
"""Triton's dynamic batcher waits at most this long to fill a batch (a CNN answers one image in
~0.1 ms on a CPU core; on a GPU the batch is what makes the device worth having)."""


def render_config(name: str, max_batch: int = MAX_BATCH, spec: InputSpec = MNIST_INPUT) -> str:
    """The `config.pbtxt` text of one model of the store, whose card's input is `spec`."""
    dims = ", ".join(map(str, spec.sample_shape))
    return f"""\
# Triton model configuration, written by `python -m service.inference_protocol.triton_config`.
name: "{name}"
platform: "onnxruntime_onnx"
max_batch_size: {max_batch}
version_policy: {{ latest: {{ num_versions: 1 }} }}
input [
  {{
    name: "{INPUT_NAME}"
    data_type: TYPE_FP32
    dims: [ {dims} ]
  }}
]
output [
  {{
    name: "{OUTPUT_NAME}"
    data_type: TYPE_FP32
    dims: [ {NUM_CLASSES} ]
  }}
]
dynamic_batching {{
  max_queue_delay_microseconds: {MAX_QUEUE_DELAY_US}
}}
"""


def model_config(name: str, spec: InputSpec = MNIST_INPUT, max_batch: int = MAX_BATCH, *,
                 served: bool = False) -> dict[str, Any]:
    """Triton's `ModelConfig` of one model, as Triton's model-configuration extension answers it (JSON).

    The same declaration as `render_config` writes into the store (the test parses both with
    Triton's own message and compares them). With `served`, the configuration of this server
    rather than of a Triton serving the store: the `image_file` input is added, and both inputs are
    `optional`, as Triton marks inputs a request may leave out: each request sends one of them
    (a request that sends both is answered from `image`; see `tensors.single_input`).
    `image_file` is declared with dims [1] (a request's shape [N, 1]) so that tools that build
    inputs from the configuration (perf_analyzer) have a shape to send.
    """
    inputs: list[dict[str, Any]] = [{"name": INPUT_NAME, "data_type": "TYPE_FP32", "dims": list(spec.sample_shape)}]
    if served:
        inputs[0]["optional"] = True
        inputs.append({"name": FILE_INPUT, "data_type": "TYPE_STRING", "dims": [1], "optional": True})
    return {
        "name": name,
        "platform": "onnxruntime_onnx",
        "max_batch_size": max_batch,
        "version_policy": {"latest": {"num_versions": 1}},
        "input": inputs,
        "output": [{"name": OUTPUT_NAME, "data_type": "TYPE_FP32", "dims": [NUM_CLASSES]}],
        "dynamic_batching": {"max_queue_delay_microseconds": MAX_QUEUE_DELAY_US},
    }


def model_spec(store: Path, name: str) -> InputSpec:
    """The input spec of the latest version of `name` in the store, from its card."""
    version = latest_version(store, name)
    if version is None:
        raise FileNotFoundError(f"no version of {name} in {store}")
    return ModelCard.read(version_dir(store, name, version) / CARD_FILE).input


def write_configs(store: Path) -> list[Path]:
    """Write `<store>/<name>/config.pbtxt` for every model of the store."""
    written = []
    for name in list_models(store):
        path = store / name / CONFIG_FILE
        path.write_text(render_config(name, spec=model_spec(store, name)))
        written.append(path)
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description="Write Triton's config.pbtxt for every model of a store.")
    parser.add_argument("--store", type=Path, default=Path("model_store"))
    for path in write_configs(parser.parse_args().store):
        print(path)


if __name__ == "__main__":
    main()
