"""The variant table: six models, the right layers, shapes and parameter counts."""

from __future__ import annotations

import numpy as np
import pytest

from training.variants import (
    MLP_HIDDEN_UNITS,
    VARIANTS,
    VariantSpec,
    build_model,
    hidden_units_matching,
    mlp_parameter_count,
)

CNN_PARAMETERS = 34_826  # 320 + 18,496 (convolutions) + 16,010 (Dense 1600 -> 10)


def test_table_holds_the_six_seed_variants() -> None:
    assert [(s.name, s.architecture, s.dropout_rate, s.noise_stddev) for s in VARIANTS] == [
        ("mlp", "mlp", 0.0, 0.0),
        ("mlp_dropout", "mlp", 0.5, 0.0),
        ("mlp_noise", "mlp", 0.0, 0.2),
        ("cnn", "cnn", 0.0, 0.0),
        ("cnn_dropout", "cnn", 0.5, 0.0),
        ("cnn_noise", "cnn", 0.0, 0.2),
    ]


def test_hidden_width_matches_the_cnn_within_one_percent() -> None:
    assert hidden_units_matching(CNN_PARAMETERS) == MLP_HIDDEN_UNITS == 44
    assert abs(mlp_parameter_count(44) - CNN_PARAMETERS) / CNN_PARAMETERS < 0.01


@pytest.mark.parametrize("spec", VARIANTS, ids=lambda s: s.name)
def test_variant_builds_with_expected_shape_and_size(spec: VariantSpec) -> None:
    model = build_model(spec)
    expected = CNN_PARAMETERS if spec.architecture == "cnn" else mlp_parameter_count(MLP_HIDDEN_UNITS)
    assert model.count_params() == expected
    assert model.input_shape == (None, 28, 28, 1)
    out = model(np.zeros((3, 28, 28, 1), np.float32), training=False).numpy()
    assert out.shape == (3, 10)
    np.testing.assert_allclose(out.sum(axis=1), 1.0, rtol=1e-6)


@pytest.mark.parametrize("spec", VARIANTS, ids=lambda s: s.name)
def test_regularisation_layer_sits_before_the_output(spec: VariantSpec) -> None:
    layers = [type(layer).__name__ for layer in build_model(spec).layers]
    extra = {"Dropout": spec.dropout_rate > 0, "GaussianNoise": spec.noise_stddev > 0}
    for layer_type, present in extra.items():
        assert (layer_type in layers) is present
        if present:
            # After the hidden layer (MLP) or after Flatten (CNN): immediately before the output.
            assert layers[-2] == layer_type
    if spec.architecture == "cnn":
        assert layers[1:6] == ["Conv2D", "MaxPooling2D", "Conv2D", "MaxPooling2D", "Flatten"]
        assert build_model(spec).get_layer("flatten").output.shape == (None, 1600)
