"""`python -m service store add FILE.onnx --name NAME`: bring your own ONNX digit classifier.

The zoo's models are published by their trainers (`training/publish.py`) with a card of how they
were trained. A model trained elsewhere has no such history; this command gives it what the
service needs to serve and rank it like the zoo's own:

1. the graph's signature: one float32 input with a dynamic batch axis, shaped as one of the input
   specs the service can prepare uploads for (inferred from the shape, or told with `--input`),
   and one float32 [N, 10] output; the tensors are renamed `image` / `probabilities` if need be
   (and a Softmax appended with `--add-softmax` when the graph ends in logits);
2. the evaluation on the test set its input matches (MNIST's 10,000 test images, or the UCI 8x8
   split's 360): accuracy, per-class metrics, confusion matrix, every error, and calibration
   where a validation split exists (MNIST's last 6,000 training images);
3. the version directory: `model.onnx`, `card.json` (framework and architecture `imported`, the
   training fields null, `not_measured` saying why) with the file's SHA-256, and `config.pbtxt`.

A running server serves it after `POST /v2/repository/models/NAME/load` (admin token) or a reload.
Needs the training environment (`.venv`: onnx, and scikit-learn for the 8x8 test set), not the
serving one: it reads a dataset and rewrites a graph, which serving never does.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import shutil
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from digit_contract.card import (
    AveragedMetrics,
    Calibration,
    ClassMetrics,
    DatasetInfo,
    Misclassification,
    ModelCard,
    OnnxArtifact,
)
from digit_contract.inputs import (
    IMAGE_SIDE,
    INPUT_NAME,
    MNIST_INPUT,
    NUM_CLASSES,
    OUTPUT_NAME,
    UCI_INPUT,
    InputSpec,
)
from digit_contract.store import CARD_FILE, MODEL_FILE, latest_version, version_dir

IMPORTED = "imported"
"""The card's experiment, framework and architecture of every model added by this command."""

INPUT_SPECS: dict[str, InputSpec] = {
    "mnist": MNIST_INPUT,
    "mnist-flat": MNIST_INPUT.model_copy(update={"layout": "flat"}),
    "uci-8x8": UCI_INPUT,
    "uci-8x8-nhwc": UCI_INPUT.model_copy(update={"layout": "nhwc"}),
}
"""`--input` choices: the inputs the service can prepare uploads for, by the name a user gives."""

_STAGING_PREFIX = ".incomplete-"  # as digit_contract.store's: readers skip such directories


class AddError(Exception):
    """The model cannot be added; `str()` says why and, where it can, what to do."""


@dataclass(frozen=True)
class Prepared:
    """The graph as it will be stored, and what was changed to get there."""

    payload: bytes
    spec: InputSpec
    opset: int
    parameter_count: int
    changes: list[str]


@dataclass(frozen=True)
class TestSet:
    """Test (and, where the zoo has one, validation) inputs shaped for the model, with the dataset."""

    inputs: npt.NDArray[np.float32]
    labels: npt.NDArray[np.int64]
    validation: tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]] | None
    dataset: DatasetInfo


def _onnx() -> Any:
    try:
        import onnx
    except ImportError as exc:  # the serving environment has onnxruntime only
        raise AddError("store add needs the onnx package: run it with the training environment (.venv)") from exc
    return onnx


def infer_spec(shape: Sequence[int | str | None]) -> InputSpec:
    """The input spec of a graph input of this shape (batch axis first), or AddError."""
    sample = tuple(shape[1:])
    for spec in INPUT_SPECS.values():
        if sample == spec.sample_shape:
            return spec
    accepted = ", ".join(f"{name} [N, {', '.join(map(str, s.sample_shape))}]" for name, s in INPUT_SPECS.items())
    raise AddError(f"cannot tell which digits the input [{', '.join(map(str, shape))}] takes; "
                   f"the service prepares {accepted}")


def _dims(value_info: Any) -> list[int | str | None]:
    dims = value_info.type.tensor_type.shape.dim
    return [d.dim_value if d.HasField("dim_value") else (d.dim_param or None) for d in dims]


def prepare_graph(data: bytes, spec: InputSpec | None, add_softmax: bool) -> Prepared:
    """Check the graph's signature, infer its input spec (unless given), rename its tensors to the
    service's names and append a Softmax if asked; AddError says what does not fit."""
    onnx = _onnx()
    try:
        model = onnx.load_from_string(data)
        onnx.checker.check_model(model)
    except Exception as exc:  # onnx raises DecodeError, ValidationError, ...
        raise AddError(f"not a valid ONNX model: {str(exc).strip().splitlines()[0][:200]}") from exc
    graph = model.graph
    initializers = {t.name for t in graph.initializer}
    inputs = [i for i in graph.input if i.name not in initializers]  # old exporters list weights as inputs
    if len(inputs) != 1 or len(graph.output) != 1:
        raise AddError(f"the graph has {len(inputs)} inputs and {len(graph.output)} outputs; "
                       "a digit classifier takes one image tensor and gives one tensor of 10 scores")
    source, target = inputs[0], graph.output[0]
    float32 = onnx.TensorProto.FLOAT
    for role, tensor in (("input", source), ("output", target)):
        if tensor.type.tensor_type.elem_type != float32:
            raise AddError(f"the graph's {role} {tensor.name!r} is not float32")
    shape = _dims(source)
    if not shape or isinstance(shape[0], int):
        # A fixed batch axis would make batching (and Triton's max_batch_size) impossible.
        raise AddError(f"the input {source.name!r} [{', '.join(map(str, shape))}] has no dynamic batch axis; "
                       "export it with a symbolic first dimension")
    if spec is None:
        spec = infer_spec(shape)
    elif tuple(shape[1:]) != spec.sample_shape:
        raise AddError(f"the input {source.name!r} is [{', '.join(map(str, shape))}], but --input says "
                       f"[N, {', '.join(map(str, spec.sample_shape))}]")
    out_shape = _dims(target)
    if len(out_shape) != 2 or out_shape[1] != NUM_CLASSES:
        raise AddError(f"the output {target.name!r} is [{', '.join(map(str, out_shape))}], expected [N, 10]")

    changes = []
    # The service, the cards and Triton's config all name the tensors `image` and `probabilities`.
    renames = {source.name: INPUT_NAME}
    if add_softmax:
        scores = f"{target.name}__scores" if target.name != OUTPUT_NAME else "scores"
        renames[target.name] = scores
    else:
        renames[target.name] = OUTPUT_NAME
    changes += [f"{old!r} renamed {new!r}" for old, new in renames.items() if new in (INPUT_NAME, OUTPUT_NAME) and old != new]
    for node in graph.node:
        node.input[:] = [renames.get(n, n) for n in node.input]
        node.output[:] = [renames.get(n, n) for n in node.output]
    source.name = INPUT_NAME
    if add_softmax:
        graph.node.append(onnx.helper.make_node("Softmax", [renames[target.name]], [OUTPUT_NAME], axis=-1))
        changes.append(f"a Softmax appended after {target.name!r}")
    target.name = OUTPUT_NAME
    try:
        onnx.checker.check_model(model)
    except Exception as exc:
        raise AddError(f"the renamed graph is invalid: {str(exc).strip().splitlines()[0][:200]}") from exc
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    parameters = sum(int(np.prod(t.dims)) for t in graph.initializer)
    return Prepared(model.SerializeToString(), spec, opset, max(parameters, 1), changes)


def _scaled(unit: npt.NDArray[np.float32], spec: InputSpec) -> npt.NDArray[np.float32]:
    """Inputs in [0, 1] mapped to the spec's [low, high], as the service maps uploads."""
    if (spec.low, spec.high) == (0.0, 1.0):
        return unit
    return (np.float32(spec.low) + unit * np.float32(spec.high - spec.low)).astype(np.float32)


def load_test_set(spec: InputSpec, data_dir: Path | None) -> TestSet:
    """The zoo's test set for this input, shaped as the model takes it; AddError when unavailable."""
    # The trainers' loaders: the same files, split and hashes as the zoo's cards record, so the
    # ranking (which groups models by test set) puts the imported model beside them.
    from training.data import DatasetNotFound, IdxFormatError, as_model_input, load_mnist

    shape = (-1, *spec.sample_shape)
    if spec.encoding == "uci-8x8":
        try:
            from training.digits_8x8 import load_uci_digits
            from training.experiments import DIGITS_8X8

            uci = load_uci_digits()
        except ImportError as exc:
            raise AddError("the 8x8 test set needs scikit-learn: run with the training environment (.venv)") from exc
        split = (f"test: the 360 test digits of the UCI 8x8 split ({DIGITS_8X8.split}); the imported model's "
                 "training data is not known")
        dataset = DatasetInfo(name="uci-digits-8x8", split=split, file_sha256=uci.sha256, test_samples=len(uci.y_test))
        return TestSet(_scaled(uci.x_test.reshape(shape), spec), uci.y_test, None, dataset)
    try:
        mnist = load_mnist(data_dir, download=data_dir is None and not os.environ.get("MNIST_DIR"))
    except (DatasetNotFound, IdxFormatError, OSError) as exc:
        raise AddError(f"the MNIST test set is not available: {exc}") from exc
    split = ("test: MNIST's 10,000 test images; validation (calibration only): the last 6,000 training images, "
             "the zoo's validation split; the imported model's training data is not known")
    dataset = DatasetInfo(name="mnist", split=split, file_sha256=mnist.file_sha256,
                          validation_samples=len(mnist.validation), test_samples=len(mnist.test))

    def shaped(images: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        return _scaled(images.reshape(shape), spec)

    return TestSet(shaped(as_model_input(mnist.test)), mnist.test.labels.astype(np.int64),
                   (shaped(as_model_input(mnist.validation)), mnist.validation.labels.astype(np.int64)), dataset)


def predict(payload: bytes, inputs: npt.NDArray[np.float32], batch: int = 1000) -> npt.NDArray[np.float32]:
    """The graph's outputs on `inputs`, on the CPU; AddError when they are not probabilities."""
    import onnxruntime as ort

    try:
        session = ort.InferenceSession(payload, providers=["CPUExecutionProvider"])
        out = np.concatenate([session.run([OUTPUT_NAME], {INPUT_NAME: inputs[i:i + batch]})[0]
                              for i in range(0, len(inputs), batch)])
    except Exception as exc:  # ONNX Runtime raises its own Fail/InvalidArgument types
        raise AddError(f"ONNX Runtime cannot run the graph: {str(exc).strip().splitlines()[0][:200]}") from exc
    sums = out.sum(axis=1)
    if not np.all(np.isfinite(out)) or out.min() < 0 or not np.allclose(sums, 1.0, atol=1e-3):
        raise AddError(f"the outputs are not probabilities (row sums {sums.min():.3g}..{sums.max():.3g}); "
                       "if the graph ends in logits, pass --add-softmax")
    return np.asarray(out, dtype=np.float32)


def _calibration(payload: bytes, test: TestSet, probabilities: npt.NDArray[np.float32],
                 apply: bool) -> Calibration | None:
    if test.validation is None:
        return None
    from training.assess import calibrate

    fitted = calibrate((predict(payload, test.validation[0]), test.validation[1]), (probabilities, test.labels))
    # Fitted on images the imported model may have trained on: applied only if its owner says it did not.
    return fitted.model_copy(update={"applied": fitted.applied and apply})


def build_card(name: str, version: int, prepared: Prepared, test: TestSet, *, source: str,
               description: str | None, apply_temperature: bool) -> ModelCard:
    """The card of the imported model: its evaluation on `test`, its training marked not measured."""
    from training.evaluate import classification_metrics
    from training.publish import library_versions

    probabilities = predict(prepared.payload, test.inputs)
    metrics = classification_metrics(test.labels, probabilities)
    calibration = _calibration(prepared.payload, test, probabilities, apply_temperature)
    unknown = "not known: the model was trained elsewhere and added with `store add`"
    not_measured = {field: unknown for field in ("hyperparameters", "seed", "history", "training_seconds",
                                                  "dataset.train_samples")}
    not_measured["onnx.max_abs_diff_vs_keras"] = "no framework object to compare the ONNX file with"
    if calibration is None:
        not_measured["calibration"] = "this test set has no validation split to fit a temperature on"
    elif not calibration.applied:
        not_measured["calibration.applied"] = ("fitted on MNIST's last 6,000 training images, which the model may "
                                               "have trained on: not applied (pass --apply-temperature if it did not)")
    changes = f" ({'; '.join(prepared.changes)})" if prepared.changes else ""
    return ModelCard.model_validate({
        "name": name,
        "version": version,
        "experiment": IMPORTED,
        "architecture": IMPORTED,
        "framework": IMPORTED,
        "input": prepared.spec,
        "description": description or f"imported from {source}{changes}",
        "parameter_count": prepared.parameter_count,
        "test_accuracy": metrics.accuracy,
        "test_loss": metrics.loss,
        "test_errors": metrics.errors,
        "per_class": [ClassMetrics(digit=d, precision=metrics.precision[d], recall=metrics.recall[d],
                                   f1=metrics.f1[d], support=metrics.support[d]) for d in range(NUM_CLASSES)],
        "macro_avg": AveragedMetrics(precision=metrics.macro_precision, recall=metrics.macro_recall,
                                     f1=metrics.macro_f1),
        "confusion_matrix": metrics.confusion_matrix,
        "misclassified": [Misclassification(index=i, label=t, predicted=p, confidence=c) for i, t, p, c in zip(
            metrics.misclassified_indices, metrics.misclassified_labels, metrics.misclassified_predicted,
            metrics.misclassified_confidence, strict=True)],
        "onnx": OnnxArtifact(file=MODEL_FILE, sha256=hashlib.sha256(prepared.payload).hexdigest(),
                             size_bytes=len(prepared.payload), opset=prepared.opset, input_name=INPUT_NAME,
                             output_name=OUTPUT_NAME),
        "dataset": test.dataset,
        "library_versions": library_versions(),
        "created_at": datetime.now(UTC).replace(microsecond=0),
        "calibration": calibration,
        "not_measured": not_measured,
    })


def add_model(file: Path, store: Path, name: str, *, version: int | None = None, spec: InputSpec | None = None,
              add_softmax: bool = False, data_dir: Path | None = None, description: str | None = None,
              apply_temperature: bool = False, value_range: tuple[float, float] | None = None) -> ModelCard:
    """Check, evaluate and publish `file` as `name` (version `version`, default the next) in `store`.

    Raises:
        AddError: the file, the name, the version or the test set does not allow it; nothing is written.
    """
    if not re.fullmatch(r"[a-z0-9_]+", name):  # the card's pattern, checked before the evaluation
        raise AddError(f"--name {name!r}: use lowercase letters, digits and _ only")
    try:
        data = file.read_bytes()
    except OSError as exc:
        raise AddError(f"cannot read {file}: {exc.strerror or exc}") from exc
    prepared = prepare_graph(data, spec, add_softmax)
    if value_range is not None:
        try:
            prepared = replace(prepared, spec=InputSpec.model_validate(
                {**prepared.spec.model_dump(), "low": value_range[0], "high": value_range[1]}))
        except ValueError as exc:
            raise AddError(f"--range {value_range[0]:g} {value_range[1]:g}: low must be below high") from exc
    chosen = version if version is not None else (latest_version(store, name) or 0) + 1
    if chosen < 1:
        raise AddError(f"--version must be 1 or more, got {chosen}")
    target = version_dir(store, name, chosen)
    if target.exists():
        raise AddError(f"{name} version {chosen} already exists in {store}; pick another --version")
    test = load_test_set(prepared.spec, data_dir)
    try:
        card = build_card(name, chosen, prepared, test, source=file.name, description=description,
                          apply_temperature=apply_temperature)
    except ValueError as exc:  # pydantic's ValidationError: a bad --name, mostly
        raise AddError(f"the card does not validate: {exc}") from exc
    _publish(store, name, target, prepared.payload, card)
    return card


def _publish(store: Path, name: str, target: Path, payload: bytes, card: ModelCard) -> None:
    """Write the version in a hidden staging directory and rename it into place (readers never see a
    half-written version), then Triton's config.pbtxt beside the versions."""
    from service.inference_protocol.triton_config import CONFIG_FILE, render_config

    model_dir = store / name
    model_dir.mkdir(parents=True, exist_ok=True)
    staging = model_dir / f"{_STAGING_PREFIX}{uuid.uuid4().hex}"
    staging.mkdir()
    try:
        (staging / MODEL_FILE).write_bytes(payload)
        card.write(staging / CARD_FILE)
        if target.exists():
            raise AddError(f"{name} version {card.version} was published by another writer meanwhile")
        os.rename(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    # The config declares the latest version's input: rewritten when this one is the latest.
    if latest_version(store, name) == card.version:
        (model_dir / CONFIG_FILE).write_text(render_config(name, spec=card.input))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The `store add` sub-command's arguments."""
    parser.add_argument("file", type=Path, help="the ONNX file: one float32 image input (batch axis dynamic), "
                                                "one float32 [N, 10] output")
    parser.add_argument("--name", required=True, help="model name in the store (lowercase letters, digits, _)")
    parser.add_argument("--version", type=int, help="version number (default: the next one)")
    parser.add_argument("--store", type=Path, default=Path("model_store"), help="store directory (default ./model_store)")
    parser.add_argument("--input", choices=sorted(INPUT_SPECS), help="the input it takes (default: inferred "
                        f"from the input's shape: [N, {IMAGE_SIDE}, {IMAGE_SIDE}, 1] or [N, 784] MNIST, [N, 64] "
                        "or [N, 8, 8, 1] UCI 8x8)")
    parser.add_argument("--range", nargs=2, type=float, metavar=("LOW", "HIGH"),
                        help="the values white-on-black pixels 0 and 1 become (default 0 1; e.g. -0.4242 2.8215 "
                        "for a model trained on (x - 0.1307) / 0.3081)")
    parser.add_argument("--add-softmax", action="store_true", help="append a Softmax (the graph gives logits)")
    parser.add_argument("--data-dir", type=Path, help="MNIST's four IDX files (default $MNIST_DIR, else the cache)")
    parser.add_argument("--description", help="one line for the card (default: where it came from)")
    parser.add_argument("--apply-temperature", action="store_true",
                        help="serve calibrated probabilities by default (MNIST: only if the model never trained "
                        "on MNIST's last 6,000 training images, where the temperature is fitted)")


def run(args: argparse.Namespace) -> str:
    """Run `store add` from parsed arguments; the line to print. Raises AddError."""
    card = add_model(args.file, args.store, args.name, version=args.version,
                     spec=INPUT_SPECS[args.input] if args.input else None, add_softmax=args.add_softmax,
                     data_dir=args.data_dir, description=args.description, apply_temperature=args.apply_temperature,
                     value_range=tuple(args.range) if args.range else None)
    return (f"{card.name} v{card.version}: {card.dataset.name} test accuracy {card.test_accuracy:.4f} "
            f"({card.test_errors} errors of {card.dataset.test_samples}), sha256 {card.onnx.sha256[:12]}... in "
            f"{args.store / card.name / str(card.version)}; a running server serves it after "
            f"POST /v2/repository/models/{card.name}/load (admin token) or a reload")
