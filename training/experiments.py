"""The zoo's experiments, declared as data: `python -m training train --experiment <id>` trains one.

An experiment follows one seed document (../shared/seeds/NNN_*.txt): its dataset and split, its
protocol, and the variants it compares. Each declaration names the function that trains it as an
import string, so listing experiments (the command line's help, the tests) imports no framework.
A trainer takes an `ExperimentRun` and returns the cards it published; it also writes the
experiment's record (`digit_contract.records.ExperimentRecord`) with what it found beyond the
models: a search's trials, sensitivity studies.
"""

from __future__ import annotations

import importlib
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from digit_contract.card import ModelCard

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ExperimentRun:
    """What one `train --experiment` invocation asks for."""

    store: Path
    data_dir: Path | None = None
    download: bool = True
    seed: int = 1234
    epochs: int | None = None
    """Override of every variant's epoch count (a quick check); None: the experiment's protocol."""
    variants: tuple[str, ...] | None = None
    """Subset of the experiment's variants; None: all of them."""
    options: dict[str, str] = field(default_factory=dict)

    def threads(self) -> int:
        """Threads a trainer may use: option `threads`, else TF_NUM_INTRAOP_THREADS, else 1 (the
        machines are shared: two single-threaded trainings use two cores without fighting)."""
        return int(self.options.get("threads", os.environ.get("TF_NUM_INTRAOP_THREADS", "1")))


@dataclass(frozen=True)
class Experiment:
    id: str
    title: str
    seed_document: str
    question: str
    dataset: str
    split: str
    protocol: str
    variants: tuple[str, ...]
    """Names of the served models it trains."""
    trainer: str
    """"module:function" taking an ExperimentRun and returning the published cards."""
    seed_claims: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()

    def load_trainer(self) -> Callable[[Experiment, ExperimentRun], list[ModelCard]]:
        module, _, function = self.trainer.partition(":")
        trainer: Callable[[Experiment, ExperimentRun], list[ModelCard]] = getattr(importlib.import_module(module), function)
        return trainer


REPLICATE_SEEDS = (1, 2, 3, 4, 5)
"""Training seeds of the replicate runs (`python -m training replicate`), declared before any ran;
the served models used the seed protocol's 1234."""

MNIST_SEED_SPLIT = (
    "train: the first 54,000 of MNIST's 60,000 training images; validation: the last 6,000 "
    "(Keras validation_split=0.1); test: the 10,000 test images, for the final evaluation only"
)

REGULARISATION = Experiment(
    id="regularisation",
    title="MLP against CNN, each plain, with Dropout and with Gaussian noise",
    seed_document="000",
    question="How do architecture (MLP or CNN at ~35k parameters) and regularisation (Dropout 0.5, "
    "GaussianNoise 0.2) change test accuracy?",
    dataset="mnist",
    split=MNIST_SEED_SPLIT,
    protocol="Adam (lr 0.001), categorical cross-entropy, batch 128, 100 epochs, no early stopping, seed 1234",
    variants=("mlp", "mlp_dropout", "mlp_noise", "cnn", "cnn_dropout", "cnn_noise"),
    trainer="training.trainer:train_experiment",
    seed_claims=("Best: CNN + Gaussian noise, 99.2% test accuracy (81 errors of 10,000)",),
)

UPLOADS = Experiment(
    id="uploads",
    title="cnn_dropout's network trained on digits framed the way the service frames real uploads",
    seed_document="000",
    question="Does training on distorted, re-framed digits make photos and drawings read right?",
    dataset="mnist",
    split=MNIST_SEED_SPLIT,
    protocol="Adam (lr 0.001), batch 128, 40 epochs, a fresh 'uploads' augmentation of the training "
    "images every epoch, validated on the clean validation images",
    variants=("cnn_augmented",),
    trainer="training.trainer:train_experiment",
)

WRITERS = Experiment(
    id="writers",
    title="The upload model taught a second population of writers",
    seed_document="000",
    question="Does a model that has seen the UCI digits' 43 writers besides MNIST's read other people's "
    "digits better, and MNIST's as well?",
    dataset="mnist",
    split=MNIST_SEED_SPLIT + "; plus the UCI digits' training split (scikit-learn's, seed 42): four fifths "
    "trained on, one fifth held out for validation; their test split is never seen",
    protocol="cnn_augmented's weights, then Adam (lr 0.0003), batch 128, 8 epochs of a fresh 'uploads' "
    "augmentation of MNIST's training digits and the UCI training digits (x6), framed as the service "
    "frames an upload of each (training/more_writers.py)",
    variants=("cnn_writers",),
    trainer="training.more_writers:train",
)

# The other seeds' experiments. Each trainer module owns its protocol's details; the texts here
# are what /models/compare, the report and the README show.

SEED_50K_SPLIT = (
    "train: the first 50,000 of MNIST's 60,000 training images; validation: the last 10,000 "
    "(every choice of architecture, epochs and hyperparameters); test: the 10,000 test images, "
    "for the final evaluation only"
)

UNIVERSAL_WORKFLOW = Experiment(
    id="universal-workflow",
    title="The universal workflow of machine learning, dense layers only",
    seed_document="001",
    question="From a baseline, through a model that overfits on purpose, to a regularised and tuned "
    "dense network: can Dense and Dropout layers alone pass 99% test accuracy?",
    dataset="mnist",
    split=SEED_50K_SPLIT,
    protocol="Dense and Dropout layers only, categorical cross-entropy, seed 1234. dense_baseline: "
    "Dense(64, relu), RMSprop (lr 0.001), batch 128, 20 epochs; dense_large: Dense(256)-Dense(256), "
    "the same, 20 epochs, no regularisation; dense_tuned: 2 x Dense(1024, relu) + Dropout, Adam with "
    "the learning rate decaying geometrically from 0.001 to 0.00003, batch 128, 70 epochs, each epoch "
    "on a fresh elastic (alpha 34, sigma 4, Simard et al. 2003) and affine distortion of the training "
    "digits, validated on the clean validation digits; its dropout is chosen by the mean validation "
    "accuracy of the last 5 epochs among the candidate rates (training/universal_workflow.py)",
    variants=("dense_baseline", "dense_large", "dense_tuned"),
    trainer="training.universal_workflow:train",
    seed_claims=(
        "baseline Dense(64): ~97.4% validation accuracy (97.6% at its 20th epoch)",
        "Dense(256)-Dense(256): 98.29% validation, 99.96% training accuracy after 20 epochs",
        "target: > 99% test accuracy (the seed stopped before its regularisation step)",
    ),
    notes=(
        "the seed flattens 784-vectors; here a Flatten layer takes MNIST's [N, 28, 28, 1] input so the "
        "models serve like the others",
        "where overfitting starts is read from each card's history: the epoch of lowest validation loss",
        "dense_tuned's training accuracy is measured on distorted digits with dropout active, so it sits "
        "below its validation accuracy; wall times were measured with other trainings sharing the 2 cores",
    ),
)

DENSE_SEARCH = Experiment(
    id="dense-search",
    title="Dense network with BatchNormalization and Dropout, early stopping, random search",
    seed_document="003",
    question="Which depth, width, optimizer, dropout rate and batch size does a random search pick "
    "for a Dense + BatchNormalization + Dropout network, and does it beat the seed's 97.93%?",
    dataset="mnist",
    split=SEED_50K_SPLIT,
    protocol="a seeded random search (our own; the seed used RandomizedSearchCV over scikeras) over hidden "
    "layers (1-3), neurons per layer (64-512), optimizer (adam lr 0.001, sgd lr 0.01), dropout (0-0.5) and "
    "batch size (64-256); each trial Dense -> BatchNormalization -> ReLU -> Dropout per layer, at most 30 "
    "epochs with EarlyStopping(val_loss, patience 4, restore_best_weights), scored by the restored weights' "
    "validation accuracy; no new trial after 1,500 s; the best trial's model is published "
    "(training/dense_search.py)",
    variants=("dense_bn_search",),
    trainer="training.dense_search:train",
    seed_claims=(
        "best model of the seed's RandomizedSearchCV: 98.18% validation accuracy (epoch 15), 97.93% test, "
        "test loss 0.0740",
        "seed's per-class F1 0.97-0.99, macro F1 0.98",
    ),
)

DIGITS_8X8 = Experiment(
    id="digits-8x8",
    title="scikit-learn MLPClassifier with a grid search against a Keras MLP, on the UCI 8x8 digits",
    seed_document="002",
    question="On 1,797 8x8 digits, does a grid-searched scikit-learn MLP reach 96% test accuracy, and how "
    "does a Keras MLP on the same split compare?",
    dataset="uci-digits-8x8",
    split="scikit-learn's load_digits (1,797 images of 8x8 block counts 0-16 from 43 writers), pixels / 16; "
    "train_test_split(test_size=0.2, random_state=42), not stratified, as the seed: 1,437 train, 360 test "
    "(the test digits score the published ONNX files only)",
    protocol="MLPClassifier(solver=adam, max_iter=200, random_state=42) tuned with GridSearchCV(cv=3) over the "
    "seed's grid (hidden_layer_sizes (100,), (112, 112), (128,), (104, 100, 104); activation relu, tanh; alpha "
    "1e-4, 1e-3, 1e-2; batch_size 32, 64, 128; learning_rate adaptive, constant; learning_rate_init 1e-3, 1e-2; "
    "early_stopping True, False: 576 candidates, 1,728 fits), the best refitted on the 1,437 training digits; "
    "a Keras MLP Dense(112)-Dense(112)-softmax (Adam, sparse categorical cross-entropy) trained with each of the "
    "seed's five configurations of validation split, learning rate, batch size and epochs, the best final "
    "validation accuracy published (training/digits_8x8.py)",
    variants=("digits8_sklearn_mlp", "digits8_keras_mlp"),
    trainer="training.digits_8x8:train",
    seed_claims=(
        "goal: >= 96% test accuracy",
        "grid search best: relu, alpha 0.01, batch 64, no early stopping, (112, 112), adaptive, lr 0.001; "
        "mean CV accuracy 97.63%",
        "Keras: best of five configurations 98.06% test accuracy (val split 0.1, lr 0.005, batch 32, 75 epochs), "
        "chosen on the test set; the five ranged 96.11% - 98.06%",
    ),
    notes=(
        "The seed chose its Keras configuration by test accuracy; here the validation split chooses and the test "
        "digits only score the result.",
        "Accuracies on these 360 8x8 test digits are not comparable with accuracies on MNIST's 10,000 test images.",
    ),
)

NUMPY_MLP = Experiment(
    id="numpy-mlp",
    title="An MLP written from scratch in NumPy against a Keras CNN, with sensitivity studies",
    seed_document="004",
    question="How close does a hand-written NumPy MLP come to a CNN, and how do depth, width, activation, "
    "L2, batch size and training-set size move it (and filters and training-set size the CNN)?",
    dataset="mnist",
    split="train: the first 54,000 of MNIST's 60,000 training images; validation: the last 6,000 (every study "
    "point); test: the 10,000 test images, for the final evaluation only (the seed used Kuzushiji-MNIST, which "
    "cannot be fetched here: `--option dataset=kmnist` or KMNIST_DIR trains on it where present)",
    protocol="NumPy MLP (training/numpy_mlp.py): standardised inputs, 256 ReLU units, softmax cross-entropy, "
    "mini-batch gradient descent (lr 0.01, momentum 0.9, batch 64), 20 epochs, backpropagation verified by a "
    "gradient check, ONNX built with onnx.helper; Keras CNN: 3 x (Conv3x3 32 filters + MaxPool), Dense(256), "
    "Dropout 0.5, softmax, Adam 0.001, batch 128, 5 epochs. Studies vary one knob from those baselines with "
    "10 epochs (MLP) or 2 (CNN), on the validation images (training/numpy_mlp_study.py)",
    variants=("numpy_mlp", "cnn3"),
    trainer="training.numpy_mlp_study:train",
    seed_claims=(
        "KMNIST, not MNIST: the seed's figures are on Kuzushiji-MNIST, a harder set; compare trends, not levels",
        "one hidden layer of 256 units best (85.3%); two layers slightly worse; no hidden layer ~69%",
        "ReLU 85.17%, Leaky ReLU 84.62%, sigmoid 23.91%",
        "L2 lowers accuracy as lambda grows (best without: 83.01%); lambda >= 0.1 underfits badly",
        "CNN beats the MLP and is more sample-efficient (~50% with 1,000 training images)",
        "MLP most sensitive to batch size (best 16); more CNN filters help, diminishing beyond 32",
    ),
    notes=(
        "Trained on MNIST, not the seed's Kuzushiji-MNIST (no network access to codh.rois.ac.jp here); the "
        "loader (training/kmnist.py) is ready for the files.",
        "Study budgets were cut to fit one thread of a shared 2-core machine: 10 (MLP) and 2 (CNN) epochs per "
        "point; in the training-size studies each size sees at least that many epochs of 10,000 images; the "
        "filter study trains on the first 10,000 training images.",
    ),
)

EXPERIMENTS: dict[str, Experiment] = {
    e.id: e for e in (REGULARISATION, UPLOADS, WRITERS, UNIVERSAL_WORKFLOW, DENSE_SEARCH, DIGITS_8X8, NUMPY_MLP)
}
"""Every experiment of the zoo, by id."""


def experiment_of(model: str) -> Experiment | None:
    """The experiment that trains the served model `model`, if any declares it."""
    return next((e for e in EXPERIMENTS.values() if model in e.variants), None)


def limit_tensorflow_threads(threads: int) -> None:
    """Keep TensorFlow to `threads` threads; call before building models."""
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    except RuntimeError:
        # TensorFlow was already initialised in this process (a test session); keep its setting.
        log.debug("TensorFlow threads already fixed")


def write_record(experiment: Experiment, store: Path, **found: object) -> Path:
    """Write the experiment's record into the store; `found` adds trials, studies or notes."""
    from datetime import UTC, datetime

    from digit_contract.records import ExperimentRecord

    record = ExperimentRecord.model_validate(
        {
            "id": experiment.id,
            "title": experiment.title,
            "seed_document": experiment.seed_document,
            "question": experiment.question,
            "dataset": experiment.dataset,
            "split": experiment.split,
            "protocol": experiment.protocol,
            "models": list(experiment.variants),
            "seed_claims": list(experiment.seed_claims),
            "notes": list(experiment.notes),
            "created_at": datetime.now(UTC).replace(microsecond=0),
            **found,
        }
    )
    return record.write(store)
