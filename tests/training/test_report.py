"""The report: results table and best-model choice from cards, figures written as PNG."""

from __future__ import annotations

from pathlib import Path

import pytest

from digit_contract.ranking import best_card
from tests.factories import make_card
from training.report import render_report, results_table


def test_best_model_is_the_most_accurate_ties_broken_by_loss() -> None:
    a = make_card("cnn", errors=((1, 2, 3),), test_loss=0.05)
    b = make_card("cnn_noise", errors=((1, 2, 3),), test_loss=0.04)
    c = make_card("mlp", errors=((1, 2, 3), (4, 5, 6)))
    assert best_card([a, b, c]).name == "cnn_noise"


def test_results_table_has_one_row_per_model_with_card_figures() -> None:
    cards = [make_card("mlp", errors=((1, 2, 3), (4, 5, 6))), make_card("cnn", errors=((1, 2, 3),))]
    lines = results_table(cards).splitlines()
    # 998 of 1,000 right: Wilson 95% interval 99.27-99.95%; no replicates, no calibration in these cards.
    # 2 errors against 1 is within noise: both are tied for best, so both are bold.
    assert lines[2] == ("| **mlp** | 99.80% (99.27-99.95) | 2 | 0.0300 | 0.9900 | 1 run | - | 34,826 | 95.00% (1) "
                        "| 0.2 min |")
    assert lines[3].startswith("| **cnn** | 99.90% (99.44-99.98) | 1 |")
    assert len(lines) == 4


def test_models_within_noise_are_all_bold_and_a_clear_winner_alone() -> None:
    close = [make_card("mlp", errors=((1, 2, 3), (4, 5, 6))), make_card("cnn", errors=((1, 2, 3),))]
    assert [line.split(" |")[0] for line in results_table(close).splitlines()[2:]] == ["| **mlp**", "| **cnn**"]
    apart = [make_card("mlp", errors=tuple((i, 1, 7) for i in range(40))), make_card("cnn", errors=((1, 2, 3),))]
    assert [line.split(" |")[0] for line in results_table(apart).splitlines()[2:]] == ["| mlp", "| **cnn**"]


def test_report_without_mnist_skips_only_the_digit_grid(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sample_dir: Path
) -> None:
    store = tmp_path / "store"
    for card in (make_card("cnn"), make_card("mlp", errors=((1, 2, 3), (4, 5, 6)))):
        directory = store / card.name / "1"
        directory.mkdir(parents=True)
        card.write(directory / "card.json")
    # The sample's test images are not the ones these cards were scored on (hash differs).
    written = render_report(store, tmp_path / "out", data_dir=sample_dir)
    assert [p.name for p in written] == ["curves.png", "confusion.png", "seed_spread.png", "results.md"]
    results = (tmp_path / "out" / "results.md").read_text()
    assert "| CNN vs MLP, unregularised | cnn vs mlp | 2 | 1 | 1.00 | 1.00 | not significant |" in results


def test_report_on_an_empty_store_says_so(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no model cards in"):
        render_report(tmp_path, tmp_path / "out")
