"""The six variants of the seed experiment and the extra ones, declared as data; one builder per architecture.

A rate of 0 means "no such layer", so each regularised variant is its baseline plus one layer.
`VARIANTS` is the seed's table and what `python -m training train` trains by default; the extra
variants (`EXTRA_VARIANTS`) follow their own protocol and are trained only when named.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from digit_contract.inputs import INPUT_NAME, INPUT_SHAPE, NUM_CLASSES, OUTPUT_NAME

if TYPE_CHECKING:
    import keras

Architecture = Literal["mlp", "cnn"]

MLP_HIDDEN_UNITS = 44
"""The seed compared the architectures at a similar size: with H = 44 the MLP has 34,990
parameters against the CNN's 34,826 (+0.47%); `hidden_units_matching(34_826)` derives it."""


@dataclass(frozen=True)
class VariantSpec:
    """One row of the experiment: an architecture and its regularisation."""

    name: str
    architecture: Architecture
    dropout_rate: float = 0.0
    noise_stddev: float = 0.0
    hidden_units: int | None = None
    augmentation: str | None = None
    """Name of a recipe in `training.augment.RECIPES` applied to the training images; None: clean MNIST."""
    epochs: int | None = None
    """This variant's own epoch count; None: the seed's protocol (100)."""

    @property
    def description(self) -> str:
        text = {"mlp": f"MLP, one hidden layer of {self.hidden_units} units", "cnn": "CNN, 2x(Conv3x3+MaxPool2)"}[
            self.architecture
        ]
        if self.dropout_rate:
            text += f" + Dropout({self.dropout_rate:g})"
        elif self.noise_stddev:
            text += f" + GaussianNoise({self.noise_stddev:g})"
        if self.augmentation:
            text += f", trained on '{self.augmentation}' augmentations"
        return text


VARIANTS: tuple[VariantSpec, ...] = (
    VariantSpec("mlp", "mlp", hidden_units=MLP_HIDDEN_UNITS),
    VariantSpec("mlp_dropout", "mlp", dropout_rate=0.5, hidden_units=MLP_HIDDEN_UNITS),
    VariantSpec("mlp_noise", "mlp", noise_stddev=0.2, hidden_units=MLP_HIDDEN_UNITS),
    VariantSpec("cnn", "cnn"),
    VariantSpec("cnn_dropout", "cnn", dropout_rate=0.5),
    VariantSpec("cnn_noise", "cnn", noise_stddev=0.2),
)

EXTRA_VARIANTS: tuple[VariantSpec, ...] = (
    # cnn_dropout's network, trained on digits distorted and re-framed the way the service frames
    # real uploads (issue 8). Fresh augmentations every epoch make each epoch harder and slower
    # (generation included), so it runs 40 epochs rather than the seed's 100.
    VariantSpec("cnn_augmented", "cnn", dropout_rate=0.5, augmentation="uploads", epochs=40),
)
ALL_VARIANTS = VARIANTS + EXTRA_VARIANTS
VARIANTS_BY_NAME = {spec.name: spec for spec in ALL_VARIANTS}


def mlp_parameter_count(hidden_units: int) -> int:
    """Weights and biases of Flatten -> Dense(H) -> Dense(10) on 28x28 inputs."""
    inputs = INPUT_SHAPE[0] * INPUT_SHAPE[1] * INPUT_SHAPE[2]
    return (inputs + 1) * hidden_units + (hidden_units + 1) * NUM_CLASSES


def hidden_units_matching(parameter_count: int) -> int:
    """The hidden width whose MLP parameter count is closest to `parameter_count`."""
    per_unit = mlp_parameter_count(1) - mlp_parameter_count(0)
    guess = round((parameter_count - mlp_parameter_count(0)) / per_unit)
    return min((guess - 1, guess, guess + 1), key=lambda h: abs(mlp_parameter_count(h) - parameter_count))


def _regularise(x: keras.KerasTensor, spec: VariantSpec) -> keras.KerasTensor:
    from keras import layers

    # Both layers are identities at inference (training=False), so the export has no random op.
    if spec.dropout_rate > 0:
        x = layers.Dropout(spec.dropout_rate, name="dropout")(x)
    if spec.noise_stddev > 0:
        x = layers.GaussianNoise(spec.noise_stddev, name="gaussian_noise")(x)
    return x


def build_mlp(spec: VariantSpec) -> keras.Model:
    """Flatten -> Dense(H, relu) -> [Dropout | GaussianNoise] -> Dense(10, softmax)."""
    import keras
    from keras import layers

    if spec.hidden_units is None:
        raise ValueError(f"{spec.name}: an MLP needs hidden_units")
    inputs = keras.Input(INPUT_SHAPE, name=INPUT_NAME)
    x = layers.Flatten(name="flatten")(inputs)
    x = layers.Dense(spec.hidden_units, activation="relu", name="hidden")(x)
    x = _regularise(x, spec)
    outputs = layers.Dense(NUM_CLASSES, activation="softmax", name=OUTPUT_NAME)(x)
    return keras.Model(inputs, outputs, name=spec.name)


def build_cnn(spec: VariantSpec) -> keras.Model:
    """Conv(32) -> Pool -> Conv(64) -> Pool -> Flatten(1600) -> [Dropout | GaussianNoise] -> Dense(10)."""
    import keras
    from keras import layers

    inputs = keras.Input(INPUT_SHAPE, name=INPUT_NAME)
    x = layers.Conv2D(32, 3, activation="relu", name="conv1")(inputs)
    x = layers.MaxPooling2D(2, name="pool1")(x)
    x = layers.Conv2D(64, 3, activation="relu", name="conv2")(x)
    x = layers.MaxPooling2D(2, name="pool2")(x)
    x = layers.Flatten(name="flatten")(x)
    x = _regularise(x, spec)
    outputs = layers.Dense(NUM_CLASSES, activation="softmax", name=OUTPUT_NAME)(x)
    return keras.Model(inputs, outputs, name=spec.name)


BUILDERS = {"mlp": build_mlp, "cnn": build_cnn}


def build_model(spec: VariantSpec) -> keras.Model:
    """Build the (uncompiled) Keras model of a variant."""
    return BUILDERS[spec.architecture](spec)
