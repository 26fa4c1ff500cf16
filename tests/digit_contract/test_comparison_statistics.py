"""The statistics behind /models/compare, against values computed by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from digit_contract.calibration import (
    apply_temperature,
    expected_calibration_error,
    fit_temperature,
    negative_log_likelihood,
    reliability_bins,
    served_probabilities,
    top_confidence,
)
from digit_contract.card import Calibration, ModelCard
from digit_contract.statistics import (
    compare_paired,
    holm_adjust,
    mcnemar_exact,
    permutation_test,
    spread_of,
    wilson_interval,
)
from tests.factories import make_card

# -- McNemar -------------------------------------------------------------------------------------


def test_mcnemar_is_the_two_sided_binomial_tail_of_the_discordant_pairs() -> None:
    # 1 vs 9 discordant: n = 10, P[X <= 1] = (C(10,0) + C(10,1)) / 2^10 = 11/1024; two-sided 22/1024.
    assert mcnemar_exact(1, 9) == 22 / 1024 == 0.021484375
    assert mcnemar_exact(9, 1) == 22 / 1024
    # 0 vs 6: 2 * 1/64.
    assert mcnemar_exact(0, 6) == 2 / 64
    # 3 vs 5: 2 * (1 + 8 + 28 + 56) / 256 = 186/256.
    assert mcnemar_exact(3, 5) == pytest.approx(186 / 256, abs=0)


def test_mcnemar_without_difference_is_one() -> None:
    assert mcnemar_exact(0, 0) == 1.0
    assert mcnemar_exact(7, 7) == 1.0  # 2 * P[X <= 7] > 1 is capped


def test_mcnemar_stays_exact_at_large_counts() -> None:
    # 200 vs 300 discordant images: far in the tail, but no underflow to 0 and no overflow.
    p = mcnemar_exact(200, 300)
    assert 0 < p < 1e-5
    assert mcnemar_exact(250, 250) == 1.0


def test_mcnemar_refuses_negative_counts() -> None:
    with pytest.raises(ValueError, match="discordant counts must be >= 0"):
        mcnemar_exact(-1, 3)


def test_paired_comparison_counts_the_images_only_one_model_got_right() -> None:
    # A wrong on {1, 2, 3}, B wrong on {3, 4, 5, 6, 7}: A alone right on 4..7, B alone right on 1, 2.
    result = compare_paired([1, 2, 3], [3, 4, 5, 6, 7])
    assert (result.only_a, result.only_b) == (4, 2)
    assert result.p_value == mcnemar_exact(4, 2)


# -- Holm, Wilson, spread, permutation -------------------------------------------------------------


def test_holm_multiplies_by_the_remaining_count_and_keeps_the_order() -> None:
    # Sorted: 0.01*4 = 0.04, 0.03*3 = 0.09, 0.04*2 = 0.08 -> raised to 0.09, 0.2*1 = 0.2.
    assert holm_adjust([0.01, 0.04, 0.03, 0.2]) == pytest.approx([0.04, 0.09, 0.09, 0.2])
    assert holm_adjust([0.5, 0.6]) == [1.0, 1.0]
    assert holm_adjust([]) == []


def test_wilson_interval_matches_the_textbook_values() -> None:
    # 0 of 10: [0, z^2 / (n + z^2)] = [0, 0.2775]; 5 of 10: 0.5 -/+ 0.2634.
    low, high = wilson_interval(0, 10)
    assert (low, round(high, 4)) == (0.0, 0.2775)
    assert [round(v, 4) for v in wilson_interval(5, 10)] == [0.2366, 0.7634]
    # 9,925 of 10,000 (cnn_dropout's 75 errors): not symmetric about 0.9925.
    low, high = wilson_interval(9925, 10_000)
    assert (round(low, 4), round(high, 4)) == (0.9906, 0.994)
    assert wilson_interval(10, 10)[1] == 1.0


def test_wilson_interval_refuses_impossible_counts() -> None:
    with pytest.raises(ValueError):
        wilson_interval(11, 10)
    with pytest.raises(ValueError):
        wilson_interval(0, 0)


def test_spread_is_mean_sample_std_and_range() -> None:
    spread = spread_of([1.0, 2.0, 3.0, 4.0])
    assert (spread.n, spread.mean, spread.low, spread.high) == (4, 2.5, 1.0, 4.0)
    assert spread.std == pytest.approx(math.sqrt(5 / 3))
    assert spread_of([0.99]).std is None


def test_permutation_test_enumerates_every_relabelling() -> None:
    # 4 against 4, fully separated: only this split and its mirror are as extreme, 2 of C(8,4) = 70.
    assert permutation_test([5, 6, 7, 8], [1, 2, 3, 4]) == pytest.approx(2 / 70)
    assert permutation_test([1, 2, 3], [1, 2, 3]) == 1.0
    # 2 against 2 can never be significant: the smallest p is 2/6.
    assert permutation_test([10, 11], [0, 1]) == pytest.approx(1 / 3)


# -- calibration ---------------------------------------------------------------------------------


def test_ece_of_a_constructed_example() -> None:
    # Three answers at 0.9 (two right) fall in bin (0.867, 0.933]: |2/3 - 0.9| * 3/4 = 0.175;
    # one at 0.3 (wrong) in bin (0.267, 0.333]: |0 - 0.3| * 1/4 = 0.075. ECE = 0.25.
    assert expected_calibration_error([0.9, 0.9, 0.9, 0.3], [True, True, False, False]) == pytest.approx(0.25)
    # Perfectly calibrated: half right at 0.5, all right at 1.0.
    assert expected_calibration_error([0.5, 0.5, 1.0], [True, False, True]) == pytest.approx(0.0)


def test_reliability_bins_are_closed_on_the_right() -> None:
    bins = reliability_bins([1 / 15, 1.0, 0.0, 0.5], [True, True, False, True])
    assert len(bins) == 15
    assert bins[0].count == 2  # 1/15 belongs to (0, 1/15], and 0 is put in the first bin
    assert bins[14].count == 1 and bins[14].accuracy == 1.0
    assert bins[7].count == 1  # 0.5 is in (7/15, 8/15]


def test_temperature_two_takes_the_square_root_of_the_odds() -> None:
    # softmax(log p / 2): odds 0.8/0.2 = 4 become 2, so (2/3, 1/3).
    scaled = apply_temperature(np.array([[0.8, 0.2]], dtype=np.float32), 2.0)
    assert scaled.dtype == np.float32
    assert scaled[0] == pytest.approx([2 / 3, 1 / 3], abs=1e-6)


def test_temperature_keeps_the_digit_and_one_is_the_identity() -> None:
    rng = np.random.default_rng(3)
    p = rng.dirichlet(np.full(10, 0.3), size=200).astype(np.float32)
    assert np.array_equal(apply_temperature(p, 1.0), p)
    for t in (0.5, 3.0):
        scaled = apply_temperature(p, t)
        assert np.array_equal(scaled.argmax(axis=1), p.argmax(axis=1))
        assert np.allclose(scaled.sum(axis=1), 1.0, atol=1e-5)


def test_temperature_is_safe_with_zero_probabilities() -> None:
    scaled = apply_temperature(np.array([[1.0, 0.0, 0.0] + [0.0] * 7]), 10.0)
    assert np.isfinite(scaled).all() and scaled[0].argmax() == 0
    assert scaled.sum() == pytest.approx(1.0)


@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan"), float("inf")])
def test_temperature_must_be_positive_and_finite(bad: float) -> None:
    with pytest.raises(ValueError, match="temperature must be a finite number > 0"):
        apply_temperature(np.array([[0.5, 0.5]]), bad)


def test_fitted_temperature_recovers_the_one_that_made_the_labels() -> None:
    # Labels drawn from softmax(z / 2) while the model says softmax(z): the model is over-confident
    # by a temperature of 2, and the NLL fit should find about that.
    rng = np.random.default_rng(0)
    z = rng.normal(0.0, 4.0, size=(20_000, 10))
    truth = np.exp(z / 2)
    truth /= truth.sum(axis=1, keepdims=True)
    labels = np.array([rng.choice(10, p=row) for row in truth])
    model = np.exp(z)
    model /= model.sum(axis=1, keepdims=True)
    t = fit_temperature(model, labels)
    assert t == pytest.approx(2.0, abs=0.1)
    assert negative_log_likelihood(apply_temperature(model, t), labels) < negative_log_likelihood(model, labels)
    conf, right = top_confidence(apply_temperature(model, t), labels)
    raw_conf, raw_right = top_confidence(model, labels)
    assert expected_calibration_error(conf, right) < expected_calibration_error(raw_conf, raw_right)


def _calibrated_card(temperature: float, applied: bool) -> ModelCard:
    calibration = Calibration(
        temperature=temperature, applied=applied, validation_samples=6000, validation_nll_before=0.1,
        validation_nll_after=0.05, ece_bins=15, test_ece_before=0.01, test_ece_after=0.005, test_nll_before=0.1,
        test_nll_after=0.05,
    )
    return make_card().model_copy(update={"calibration": calibration})


def test_served_probabilities_are_scaled_only_where_the_card_says_so() -> None:
    raw = np.array([[0.8, 0.2] + [0.0] * 8], dtype=np.float32)
    scaled, calibrated = served_probabilities(_calibrated_card(2.0, applied=True), raw)
    assert calibrated is True and scaled[0, :2] == pytest.approx([2 / 3, 1 / 3], abs=1e-6)
    # Not applied by the card (the fit did not lower the validation NLL), switched off, or no card section.
    for card, enabled in ((_calibrated_card(2.0, applied=False), True), (_calibrated_card(2.0, True), False),
                          (make_card(), True), (None, True)):
        same, calibrated = served_probabilities(card, raw, enabled=enabled)
        assert calibrated is False and same is raw
