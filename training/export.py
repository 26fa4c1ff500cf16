"""Export a trained Keras model to ONNX, and refuse exports that do not match their framework.

The exported graph has one input `image` (float32 [N, *input spec], N dynamic: [N, 28, 28, 1] for
MNIST) and one output `probabilities` (float32 [N, 10]), at a pinned opset. Before a file is
accepted it must reproduce its framework's inference-mode outputs within `PARITY_TOLERANCE` at
batch 1 and at a large batch, and contain no random operator (Dropout and GaussianNoise must
have vanished). `verify_onnx` is the check for every framework (Keras, scikit-learn, NumPy).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from digit_contract.inputs import INPUT_NAME, MNIST_INPUT, NUM_CLASSES, OUTPUT_NAME, InputSpec

if TYPE_CHECKING:
    import keras

log = logging.getLogger(__name__)

OPSET = 17
PARITY_TOLERANCE = 1e-5
PARITY_MIN_IMAGES = 1000
RANDOM_OPS = frozenset(
    {"RandomNormal", "RandomNormalLike", "RandomUniform", "RandomUniformLike", "Multinomial", "Bernoulli", "Dropout"}
)


class ExportMismatch(RuntimeError):
    """The ONNX graph does not behave like the Keras model it came from."""


@dataclass(frozen=True)
class ExportReport:
    opset: int
    max_abs_diff: float
    images_checked: int


def convert_to_onnx(model: keras.Model, path: Path, spec: InputSpec = MNIST_INPUT) -> None:
    """Trace `model(x, training=False)` with tf2onnx and write the ONNX file with our I/O names.

    The graph input is `[N, *spec.sample_shape]` (MNIST's [N, 28, 28, 1] unless told otherwise).

    `tf2onnx.convert.from_keras` does not handle Keras 3 models; tracing a tf.function works
    and lets us fix the signature ourselves.
    """
    import onnx
    import tensorflow as tf
    import tf2onnx

    signature = [tf.TensorSpec((None, *spec.sample_shape), tf.float32, name=INPUT_NAME)]

    @tf.function(input_signature=signature)  # type: ignore[untyped-decorator]
    def infer(image: tf.Tensor) -> tf.Tensor:
        return model(image, training=False)

    proto, _ = tf2onnx.convert.from_function(infer, input_signature=signature, opset=OPSET)
    _rename_output(proto, OUTPUT_NAME)
    proto.doc_string = f"{model.name}: digit classifier, {INPUT_NAME} ({spec.describe()}) -> {OUTPUT_NAME}"
    onnx.checker.check_model(proto, full_check=True)
    path.write_bytes(proto.SerializeToString())


def _rename_output(proto: object, new_name: str) -> None:
    graph = proto.graph  # type: ignore[attr-defined]
    if len(graph.output) != 1 or len(graph.input) != 1:
        raise ExportMismatch(f"expected one input and one output, got {len(graph.input)} and {len(graph.output)}")
    old_name = graph.output[0].name
    if old_name == new_name:
        return
    for node in graph.node:
        node.output[:] = [new_name if name == old_name else name for name in node.output]
        node.input[:] = [new_name if name == old_name else name for name in node.input]
    graph.output[0].name = new_name


def verify_export(
    model: keras.Model, path: Path, images: npt.NDArray[np.float32], spec: InputSpec = MNIST_INPUT
) -> ExportReport:
    """Compare the ONNX file with Keras (training=False) on `images`, shaped as `spec` says (MNIST's
    unless told otherwise); raise ExportMismatch if off."""

    def keras_probabilities(batch: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        return np.concatenate([model(batch[i : i + 500], training=False).numpy() for i in range(0, len(batch), 500)])

    return verify_onnx(path, keras_probabilities, images, spec)


def verify_onnx(
    path: Path,
    reference: Callable[[npt.NDArray[np.float32]], npt.NDArray[np.floating]],
    images: npt.NDArray[np.float32],
    spec: InputSpec,
) -> ExportReport:
    """Compare an ONNX file with the framework that trained it; raise ExportMismatch if off.

    `reference` is the framework's own forward pass (Keras at training=False, scikit-learn's
    predict_proba, a NumPy forward pass) on inputs shaped as `spec` says. Checks the I/O
    signature against `spec`, the absence of random operators, determinism (two runs give
    identical bits), and parity at batch 1 and at batch len(images).
    """
    import onnx
    import onnxruntime as ort

    if len(images) < PARITY_MIN_IMAGES:
        raise ValueError(f"parity needs at least {PARITY_MIN_IMAGES} images, got {len(images)}")
    proto = onnx.load(str(path))
    random_ops = sorted({node.op_type for node in proto.graph.node} & RANDOM_OPS)
    if random_ops:
        raise ExportMismatch(f"{path.name}: graph contains random operators {random_ops}")
    opset = next(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx"))

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (inp,), (out,) = session.get_inputs(), session.get_outputs()
    if (inp.name, out.name) != (INPUT_NAME, OUTPUT_NAME) or inp.type != "tensor(float)":
        raise ExportMismatch(f"signature {inp.name}:{inp.type} -> {out.name}, expected {INPUT_NAME} -> {OUTPUT_NAME}")
    if isinstance(inp.shape[0], int) or list(inp.shape[1:]) != list(spec.sample_shape):
        raise ExportMismatch(f"input shape {inp.shape}, expected [N, {', '.join(map(str, spec.sample_shape))}] "
                             "with a dynamic N")
    if images.shape[1:] != spec.sample_shape:
        raise ValueError(f"parity images have shape {images.shape[1:]}, the input spec says {spec.sample_shape}")

    expected = np.asarray(reference(images), dtype=np.float32)
    large_batch = session.run([OUTPUT_NAME], {INPUT_NAME: images})[0]
    again = session.run([OUTPUT_NAME], {INPUT_NAME: images})[0]
    if not np.array_equal(large_batch, again):
        raise ExportMismatch(f"{path.name}: two runs on the same input differ; the graph is not deterministic")
    batch_one = np.concatenate(
        [session.run([OUTPUT_NAME], {INPUT_NAME: images[i : i + 1]})[0] for i in range(len(images))]
    )
    if large_batch.shape != (len(images), NUM_CLASSES):
        raise ExportMismatch(f"{path.name}: output shape {large_batch.shape}, expected (N, {NUM_CLASSES})")

    diff = float(max(np.abs(large_batch - expected).max(), np.abs(batch_one - expected).max()))
    if not diff <= PARITY_TOLERANCE:  # also catches NaN
        raise ExportMismatch(f"{path.name}: ONNX differs from its framework by {diff:.3g} > {PARITY_TOLERANCE:g}")
    log.info(
        "export parity: max |onnx - framework| = %.3g over %d images at batch 1 and %d", diff, len(images), len(images)
    )
    return ExportReport(opset=opset, max_abs_diff=diff, images_checked=len(images))
