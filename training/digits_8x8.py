"""Seed 002: a grid-searched scikit-learn MLPClassifier against a Keras MLP, on the UCI 8x8 digits.

The seed's data and split: scikit-learn's bundled `load_digits` (1,797 digits of 8x8 block counts
0-16, from 43 writers), pixels / 16 in [0, 1], flattened to 64 values, and
`train_test_split(test_size=0.2, random_state=42)` (not stratified, as the seed): 1,437 training
and 360 test digits. The test digits score the published ONNX files only.

- `digits8_sklearn_mlp`: `MLPClassifier(solver="adam", max_iter=200, random_state=42)` tuned by
  `GridSearchCV(cv=3)` over the seed's grid (576 candidates, 1,728 fits) on the training digits,
  the best candidate refitted on all of them. Every candidate is kept as a `SearchTrial` of the
  experiment's record (mean 3-fold accuracy). Exported with skl2onnx: probabilities only.
- `digits8_keras_mlp`: the seed's Dense(112)-Dense(112)-softmax, trained with each of the seed's
  five configurations (validation split, learning rate, batch size, epochs). The seed kept the
  configuration with the best *test* accuracy; here the one with the best validation accuracy
  is published, and the five are recorded as a study.

Options (`--option key=value`): `grid=seed|smoke` (smoke: two candidates, for tests),
`search=grid|halving` (successive halving over the same grid, for slower machines),
`keras=all|<index>` (the seed's configurations to train, 1-based), `threads=N` (default: 1,
or TF_NUM_INTRAOP_THREADS), `search_cache=PATH` (save the search's results there, or reuse them
if the file exists: publishing again does not search again). `--epochs N` caps MLPClassifier's max_iter and the Keras epochs.
"""

from __future__ import annotations

import hashlib
import logging
import math
import tempfile
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from digit_contract.card import DatasetInfo, EpochRecord, Hyperparameters, ModelCard
from digit_contract.inputs import INPUT_NAME, NUM_CLASSES, OUTPUT_NAME, UCI_INPUT, InputSpec
from digit_contract.records import SearchTrial, SensitivityStudy, StudyPoint
from training.experiments import Experiment, ExperimentRun, limit_tensorflow_threads, write_record
from training.export import OPSET, PARITY_MIN_IMAGES, ExportMismatch, ExportReport, verify_onnx
from training.publish import TestSplit, TrainedModel, history_records, publish, publish_keras

if TYPE_CHECKING:
    import keras
    from sklearn.neural_network import MLPClassifier

log = logging.getLogger(__name__)

DATASET_NAME = "uci-digits-8x8"
TEST_SIZE = 0.2
SPLIT_SEED = 42
SKLEARN_SEED = 42
MAX_ITER = 200

SEED_GRID: dict[str, list[Any]] = {
    "hidden_layer_sizes": [(100,), (112, 112), (128,), (104, 100, 104)],
    "activation": ["relu", "tanh"],
    "alpha": [0.0001, 0.001, 0.01],
    "batch_size": [32, 64, 128],
    "learning_rate": ["adaptive", "constant"],
    "learning_rate_init": [0.001, 0.01],
    "early_stopping": [True, False],
}
"""The seed's grid: 4 x 2 x 3 x 3 x 2 x 2 x 2 = 576 candidates, 1,728 fits with cv=3."""

SMOKE_GRID: dict[str, list[Any]] = {"hidden_layer_sizes": [(16,)], "alpha": [0.0001, 0.01]}
"""Two candidates: exercises the search, refit and export in a test."""

CV_FOLDS = 3


@dataclass(frozen=True)
class KerasConfig:
    """One of the seed's five Keras training configurations."""

    validation_split: float
    learning_rate: float
    batch_size: int
    epochs: int

    @property
    def label(self) -> str:
        return f"val {self.validation_split:g}, lr {self.learning_rate:g}, batch {self.batch_size}, {self.epochs} epochs"


SEED_KERAS_CONFIGS = (
    KerasConfig(0.2, 0.001, 64, 50),
    KerasConfig(0.1, 0.005, 32, 75),
    KerasConfig(0.2, 0.01, 128, 100),
    KerasConfig(0.15, 0.001, 32, 50),
    KerasConfig(0.2, 0.005, 64, 75),
)
KERAS_WIDTHS = (112, 112)


@dataclass(frozen=True)
class UciDigits:
    """The seed's split of load_digits, as the 8x8 models take it ([N, 64] float32 in [0, 1])."""

    x_train: npt.NDArray[np.float32]
    y_train: npt.NDArray[np.int64]
    x_test: npt.NDArray[np.float32]
    y_test: npt.NDArray[np.int64]
    x_all: npt.NDArray[np.float32]
    """All 1,797 digits: the export parity check needs 1,000 inputs (it checks the graph, not labels)."""
    sha256: dict[str, str]


def uci_input(images: npt.NDArray[np.floating]) -> npt.NDArray[np.float32]:
    """Block counts 0-16, (N, 8, 8) or (N, 64), as the models' input: float32 / 16, flattened."""
    return (np.asarray(images, dtype=np.float32) / np.float32(16.0)).reshape(len(images), -1)


def load_uci_digits() -> UciDigits:
    """load_digits with the seed's scaling and split (bundled with scikit-learn: no download)."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x = uci_input(digits.images)
    y = digits.target.astype(np.int64)
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=TEST_SIZE, random_state=SPLIT_SEED)
    # The bundled file has no canonical IDX bytes to hash; hash the arrays as loaded instead.
    sha = {
        "load_digits.images.float64": hashlib.sha256(np.ascontiguousarray(digits.images, dtype=np.float64).tobytes()).hexdigest(),
        "load_digits.target.int64": hashlib.sha256(np.ascontiguousarray(digits.target, dtype=np.int64).tobytes()).hexdigest(),
    }
    return UciDigits(x_train, y_train, x_test, y_test, x, sha)






# --- scikit-learn ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class SearchResult:
    best: MLPClassifier
    best_parameters: dict[str, Any]
    best_score: float
    trials: list[SearchTrial]
    seconds: float
    refit_seconds: float
    method: str


def _json_parameters(parameters: Mapping[str, Any]) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in sorted(parameters.items())}


def cached_search(cache: Path | None, search: Callable[[], SearchResult]) -> SearchResult:
    """`search()`, or the result a previous run saved in `cache` (a pickle this trainer wrote: the
    search takes the better part of an hour on one shared core, publishing a minute)."""
    import pickle

    if cache is not None and cache.is_file():
        log.info("search results from %s (not searching again)", cache)
        result: SearchResult = pickle.loads(cache.read_bytes())  # noqa: S301 (our own file)
        return result
    result = search()
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        cache.write_bytes(pickle.dumps(result))
    return result


def search_sklearn(
    data: UciDigits, grid: Mapping[str, Sequence[Any]], *, max_iter: int = MAX_ITER, method: str = "grid", n_jobs: int = 1
) -> SearchResult:
    """The seed's 3-fold search over `grid` on the training digits; the best refitted on all of them."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.model_selection import GridSearchCV
    from sklearn.neural_network import MLPClassifier

    base = MLPClassifier(solver="adam", max_iter=max_iter, random_state=SKLEARN_SEED)
    search: Any
    if method == "grid":
        search = GridSearchCV(base, param_grid=dict(grid), cv=CV_FOLDS, n_jobs=n_jobs, refit=True)
    elif method == "halving":
        from sklearn.experimental import enable_halving_search_cv  # noqa: F401
        from sklearn.model_selection import HalvingGridSearchCV

        search = HalvingGridSearchCV(
            base, param_grid=dict(grid), cv=CV_FOLDS, n_jobs=n_jobs, refit=True, random_state=SKLEARN_SEED
        )
    else:
        raise ValueError(f"search must be 'grid' or 'halving', got {method!r}")
    started = time.perf_counter()
    with warnings.catch_warnings():
        # Candidates that stop at max_iter warn; the seed's grid has many, and the score says enough.
        warnings.simplefilter("ignore", ConvergenceWarning)
        search.fit(data.x_train, data.y_train)
    seconds = time.perf_counter() - started
    results = search.cv_results_
    trials = []
    for i, parameters in enumerate(results["params"]):
        trials.append(
            SearchTrial(
                trial=i,
                parameters=_json_parameters(
                    {**parameters, **({"halving_iteration": int(results["iter"][i]),
                                       "n_resources": int(results["n_resources"][i])} if method == "halving" else {})}
                ),
                validation_accuracy=float(results["mean_test_score"][i]),
                # The candidate's three fold fits (and scoring) together.
                seconds=round(float((results["mean_fit_time"][i] + results["mean_score_time"][i]) * CV_FOLDS), 3),
            )
        )
    log.info(
        "%s search: %d candidates in %.0f s; best %.4f with %s",
        method,
        len(trials),
        seconds,
        search.best_score_,
        search.best_params_,
    )
    return SearchResult(
        best=search.best_estimator_,
        best_parameters=dict(search.best_params_),
        best_score=float(search.best_score_),
        trials=trials,
        seconds=seconds,
        refit_seconds=float(search.refit_time_),
        method=method,
    )


def convert_sklearn_to_onnx(model: MLPClassifier, path: Path, spec: InputSpec = UCI_INPUT) -> None:
    """skl2onnx, no ZipMap, and only the probabilities output, renamed `probabilities`."""
    import onnx
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType

    proto = convert_sklearn(
        model,
        initial_types=[(INPUT_NAME, FloatTensorType([None, *spec.sample_shape]))],
        options={id(model): {"zipmap": False}},
        target_opset={"": OPSET, "ai.onnx.ml": 3},
    )
    names = [o.name for o in proto.graph.output]
    probabilities = next((n for n in names if "prob" in n), None)
    if probabilities is None:
        raise ExportMismatch(f"skl2onnx gave outputs {names}, none of them probabilities")
    # Drop the label output (and the nodes only it needed): the zoo's graphs have one output.
    _keep_only_output(proto.graph, probabilities)
    if probabilities != OUTPUT_NAME:
        for node in proto.graph.node:
            node.output[:] = [OUTPUT_NAME if n == probabilities else n for n in node.output]
        proto.graph.output[0].name = OUTPUT_NAME
    # skl2onnx picks the lowest opset the operators need; pin the zoo's, and drop the ML domain the
    # label's ArgMax/ArrayFeatureExtractor needed.
    used = {node.domain for node in proto.graph.node}
    imports = [o for o in proto.opset_import if o.domain in ("", "ai.onnx") or o.domain in used]
    del proto.opset_import[:]
    proto.opset_import.extend(imports)
    for o in proto.opset_import:
        if o.domain in ("", "ai.onnx"):
            o.version = OPSET
    proto.doc_string = f"scikit-learn MLPClassifier: digit classifier, {INPUT_NAME} ({spec.describe()}) -> {OUTPUT_NAME}"
    onnx.checker.check_model(proto, full_check=True)
    path.write_bytes(proto.SerializeToString())


def _keep_only_output(graph: Any, name: str) -> None:
    """Remove every graph output but `name`, then the nodes and initializers nothing needs any more."""
    kept = [o for o in graph.output if o.name == name]
    del graph.output[:]
    graph.output.extend(kept)
    needed = {name}
    nodes = []
    for node in reversed(graph.node):
        if any(out in needed for out in node.output):
            nodes.append(node)
            needed.update(node.input)
    del graph.node[:]
    graph.node.extend(reversed(nodes))
    initializers = [t for t in graph.initializer if t.name in needed]
    del graph.initializer[:]
    graph.initializer.extend(initializers)


def loss_history(model: MLPClassifier) -> list[EpochRecord]:
    """MLPClassifier's loss_curve_ (training loss per epoch) and, with early stopping, its
    held-out accuracy per epoch (validation_scores_)."""
    scores = getattr(model, "validation_scores_", None)
    return [
        EpochRecord(
            epoch=i + 1,
            loss=float(loss),
            accuracy=None,
            val_loss=None,
            val_accuracy=float(scores[i]) if scores is not None else None,
        )
        for i, loss in enumerate(model.loss_curve_)
    ]


def sklearn_parameter_count(model: MLPClassifier) -> int:
    return int(sum(w.size for w in model.coefs_) + sum(b.size for b in model.intercepts_))


# --- Keras ----------------------------------------------------------------------------------------


def build_keras_mlp(spec: InputSpec = UCI_INPUT) -> keras.Model:
    """The seed's Sequential: Input(64) -> Dense(112, relu) -> Dense(112, relu) -> Dense(10, softmax)."""
    import keras

    return keras.Sequential(
        [keras.Input(spec.sample_shape)]
        + [keras.layers.Dense(w, activation="relu") for w in KERAS_WIDTHS]
        + [keras.layers.Dense(NUM_CLASSES, activation="softmax")],
        name="digits8_keras_mlp",
    )


@dataclass(frozen=True)
class KerasRun:
    config: KerasConfig
    model: keras.Model
    history: list[EpochRecord]
    seconds: float

    @property
    def final_val_accuracy(self) -> float:
        return float(self.history[-1].val_accuracy or 0.0)

    @property
    def final_val_loss(self) -> float:
        return float(self.history[-1].val_loss or 0.0)


def fit_keras(data: UciDigits, config: KerasConfig, seed: int) -> KerasRun:
    """One seed configuration: Adam, sparse categorical cross-entropy, Keras's validation_split
    (the last share of the training digits, as the seed's model.fit did)."""
    import keras

    keras.utils.set_random_seed(seed)
    model = build_keras_mlp()
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=config.learning_rate),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    started = time.perf_counter()
    fitted = model.fit(
        data.x_train,
        data.y_train,
        validation_split=config.validation_split,
        batch_size=config.batch_size,
        epochs=config.epochs,
        verbose=0,
    )
    seconds = time.perf_counter() - started
    history = history_records(fitted.history)
    log.info("keras %s: final val accuracy %.4f in %.1f s", config.label, history[-1].val_accuracy, seconds)
    return KerasRun(config, model, history, seconds)


# --- Publication ----------------------------------------------------------------------------------


def test_split(data: UciDigits, split: str, train_samples: int, validation_samples: int) -> TestSplit:
    return TestSplit(
        inputs=data.x_test,
        labels=data.y_test,
        dataset=DatasetInfo(
            name=DATASET_NAME,
            split=split,
            file_sha256=data.sha256,
            train_samples=train_samples,
            validation_samples=validation_samples,
            test_samples=len(data.y_test),
        ),
    )


def parity_inputs(data: UciDigits) -> npt.NDArray[np.float32]:
    if len(data.x_all) < PARITY_MIN_IMAGES:
        raise ValueError(f"export parity needs {PARITY_MIN_IMAGES} inputs, the dataset has {len(data.x_all)}")
    return data.x_all


def publish_sklearn(
    experiment: Experiment, result: SearchResult, data: UciDigits, store: Path, seed: int, max_iter: int, workdir: Path
) -> ModelCard:
    model = result.best
    onnx_path = workdir / "digits8_sklearn_mlp.onnx"
    convert_sklearn_to_onnx(model, onnx_path)
    report: ExportReport = verify_onnx(onnx_path, model.predict_proba, parity_inputs(data), UCI_INPUT)
    p = result.best_parameters
    widths = list(p.get("hidden_layer_sizes", model.hidden_layer_sizes))
    early = bool(p.get("early_stopping", model.early_stopping))
    trained = TrainedModel(
        name="digits8_sklearn_mlp",
        experiment=experiment.id,
        architecture="mlp",
        framework="scikit-learn",
        input=UCI_INPUT,
        description=f"scikit-learn MLPClassifier {'-'.join(map(str, widths))} ({model.activation}), the best of a "
        f"{CV_FOLDS}-fold {result.method} search over the seed's grid ({len(result.trials)} candidates), "
        "refitted on the 1,437 training digits",
        hyperparameters=Hyperparameters(
            hidden_units=widths[0],
            dropout_rate=0.0,
            noise_stddev=0.0,
            optimizer="adam",
            learning_rate=float(model.learning_rate_init),
            loss="log_loss",
            # "auto" is scikit-learn's min(200, n_samples).
            batch_size=int(model.batch_size) if model.batch_size != "auto" else min(200, len(data.y_train)),
            # With early stopping the card's epochs are the budget (max_iter) and the history may stop
            # short; without it scikit-learn still stops once the training loss stops improving by tol
            # for n_iter_no_change epochs, and the card records the epochs it ran (max_iter in settings).
            epochs=max_iter if early else int(model.n_iter_),
            validation_fraction=float(model.validation_fraction) if early else 0.0,
            early_stopping=early,
            settings={
                "hidden_layer_sizes": widths,
                "activation": model.activation,
                "alpha": float(model.alpha),
                "learning_rate_schedule": model.learning_rate,
                "max_iter": max_iter,
                "epochs_run": int(model.n_iter_),
                "stopped": "max_iter" if int(model.n_iter_) >= max_iter else (
                    "validation score stopped improving" if early else "training loss stopped improving (tol)"),
                "tol": float(model.tol),
                "n_iter_no_change": int(model.n_iter_no_change),
                "random_state": SKLEARN_SEED,
                "search": result.method,
                "cv_folds": CV_FOLDS,
                "candidates": len(result.trials),
                "cv_accuracy": round(result.best_score, 6),
            },
        ),
        parameter_count=sklearn_parameter_count(model),
        seed=seed,
        history=loss_history(model),
        training_seconds=result.refit_seconds,
        onnx_file=onnx_path,
        export=report,
    )
    split = (
        f"{experiment.split}; the search's {CV_FOLDS}-fold cross-validation ran inside the training digits, "
        "and the best candidate was refitted on all of them"
        + (" (its early stopping held out 10% of them)" if early else "")
        + ". load_digits is bundled with scikit-learn: the hashes are of its arrays as loaded (images float64, "
        "target int64), not of a file"
    )
    return publish(trained, test_split(data, split, len(data.y_train), 0), store)


def publish_keras_mlp(experiment: Experiment, chosen: KerasRun, data: UciDigits, store: Path, seed: int) -> ModelCard:
    config = chosen.config
    # Keras's validation_split keeps the first floor(N * (1 - split)) samples for training.
    n_val = len(data.y_train) - math.floor(len(data.y_train) * (1.0 - config.validation_split))
    split = (
        f"{experiment.split}; Keras validation_split={config.validation_split:g}: the last {n_val} training digits "
        "validate (choice among the seed's five configurations), the other "
        f"{len(data.y_train) - n_val} train. load_digits is bundled with scikit-learn: the hashes are of its "
        "arrays as loaded (images float64, target int64), not of a file"
    )
    return publish_keras(
        chosen.model,
        name="digits8_keras_mlp",
        experiment=experiment.id,
        architecture="mlp",
        description=f"Keras MLP Dense(112)-Dense(112) on the 8x8 digits, the seed's configuration with the best "
        f"validation accuracy of its five ({config.label})",
        hyperparameters=Hyperparameters(
            hidden_units=KERAS_WIDTHS[0],
            dropout_rate=0.0,
            noise_stddev=0.0,
            optimizer="adam",
            learning_rate=config.learning_rate,
            loss="sparse_categorical_crossentropy",
            batch_size=config.batch_size,
            epochs=config.epochs,
            validation_fraction=config.validation_split,
            settings={"hidden_layer_sizes": list(KERAS_WIDTHS), "activation": "relu"},
        ),
        history=chosen.history,
        seconds=chosen.seconds,
        seed=seed,
        parity_inputs=parity_inputs(data),
        test=test_split(data, split, len(data.y_train) - n_val, n_val),
        store=store,
        spec=UCI_INPUT,
    )


def keras_study(runs: Sequence[KerasRun], test_accuracy: Mapping[int, float], seconds: float) -> SensitivityStudy:
    return SensitivityStudy(
        name="keras-configurations",
        title="The seed's five Keras configurations (validation split, learning rate, batch size, epochs); "
        "the best final validation accuracy is published",
        parameter="configuration",
        model="digits8_keras_mlp",
        fixed={"hidden_layer_sizes": list(KERAS_WIDTHS), "optimizer": "adam"},
        points=[
            StudyPoint(
                value=run.config.label,
                validation_accuracy=run.final_val_accuracy,
                test_accuracy=test_accuracy.get(i),
                train_accuracy=run.history[-1].accuracy,
                seconds=round(run.seconds, 2),
            )
            for i, run in enumerate(runs)
        ],
        seconds=round(seconds, 2),
    )


def _keras_configs(run: ExperimentRun) -> list[KerasConfig]:
    choice = run.options.get("keras", "all")
    configs = list(SEED_KERAS_CONFIGS) if choice == "all" else [SEED_KERAS_CONFIGS[int(i) - 1] for i in choice.split(",")]
    if run.epochs is not None:
        configs = [KerasConfig(c.validation_split, c.learning_rate, c.batch_size, run.epochs) for c in configs]
    return configs


def train(experiment: Experiment, run: ExperimentRun) -> list[ModelCard]:
    """Train, export, verify and publish the variants asked for; write the experiment's record."""
    data = load_uci_digits()
    log.info("load_digits: %d train, %d test", len(data.y_train), len(data.y_test))
    variants = run.variants or experiment.variants
    grid = {"seed": SEED_GRID, "smoke": SMOKE_GRID}[run.options.get("grid", "seed")]
    method = run.options.get("search", "grid")
    max_iter = run.epochs if run.epochs is not None else MAX_ITER
    cards: list[ModelCard] = []
    trials: list[SearchTrial] = []
    studies: list[SensitivityStudy] = []
    notes = list(experiment.notes)
    with tempfile.TemporaryDirectory(prefix="seed002-") as tmp:
        workdir = Path(tmp)
        if "digits8_sklearn_mlp" in variants:
            cache = Path(run.options["search_cache"]) if "search_cache" in run.options else None
            result = cached_search(cache, lambda: search_sklearn(data, grid, max_iter=max_iter, method=method))
            trials = result.trials
            notes.append(
                f"scikit-learn: {result.method} search ({'GridSearchCV' if method == 'grid' else 'HalvingGridSearchCV'}, "
                f"cv={CV_FOLDS}) over {len(result.trials)} candidates took {result.seconds:.0f} s on one core "
                f"(n_jobs=1, another training sharing the 2-core machine); best mean CV accuracy "
                f"{result.best_score:.4f} with {_json_parameters(result.best_parameters)}"
            )
            cards.append(publish_sklearn(experiment, result, data, run.store, run.seed, max_iter, workdir))
        if "digits8_keras_mlp" in variants:
            limit_tensorflow_threads(run.threads())
            started = time.perf_counter()
            runs = [fit_keras(data, config, run.seed) for config in _keras_configs(run)]
            seconds = time.perf_counter() - started
            # Validation chooses (ties: the lower validation loss); the test digits never do.
            best = max(range(len(runs)), key=lambda i: (runs[i].final_val_accuracy, -runs[i].final_val_loss))
            test_accuracy = {
                i: float(np.mean(np.argmax(r.model.predict(data.x_test, verbose=0), axis=1) == data.y_test))
                for i, r in enumerate(runs)
            }
            studies.append(keras_study(runs, test_accuracy, seconds))
            notes.append(
                "Keras: the seed kept the configuration with the best test accuracy; this run publishes the one "
                f"with the best final validation accuracy ({runs[best].config.label}). The study's test "
                "accuracies are reported for comparison with the seed's table only, never used to choose."
            )
            cards.append(publish_keras_mlp(experiment, runs[best], data, run.store, run.seed))
    write_record(experiment, run.store, trials=trials, studies=studies, notes=notes)
    return cards
