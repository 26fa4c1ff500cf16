"""The `python -m training` command line: flags, and errors a user can act on."""

from __future__ import annotations

from pathlib import Path

import pytest

from training.__main__ import build_parser, main
from training.experiments import EXPERIMENTS
from training.trainer import TrainingConfig, config_for
from training.variants import VARIANTS_BY_NAME


def test_defaults_follow_the_seed_protocol() -> None:
    args = build_parser().parse_args(["train"])
    # No --epochs: each variant trains for its own protocol's count, the seed's 100 for these six.
    assert (args.epochs, args.batch_size, args.seed, args.store) == (None, 128, 1234, Path("model_store"))
    assert (args.variants, args.experiment) == (None, None)  # the six seed variants, below
    six = EXPERIMENTS["regularisation"].variants
    assert six == ("mlp", "mlp_dropout", "mlp_noise", "cnn", "cnn_dropout", "cnn_noise")
    assert {config_for(VARIANTS_BY_NAME[n], TrainingConfig(), args.epochs).epochs for n in six} == {100}


def test_the_augmented_variant_is_trained_only_when_named() -> None:
    args = build_parser().parse_args(["train", "--variants", "cnn_augmented"])
    assert args.variants == ["cnn_augmented"]
    assert config_for(VARIANTS_BY_NAME["cnn_augmented"], TrainingConfig(), args.epochs).epochs == 40


def test_flags_override_variants_epochs_seed_and_store() -> None:
    args = build_parser().parse_args(
        ["train", "--variants", "cnn_noise,mlp", "--epochs", "3", "--seed", "9", "--store", "stores/a"]
    )
    assert (args.variants, args.epochs, args.seed, args.store) == (["cnn_noise", "mlp"], 3, 9, Path("stores/a"))


def test_unknown_variant_is_refused_with_the_choices(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as excinfo:
        build_parser().parse_args(["train", "--variants", "cnn,resnet"])
    assert excinfo.value.code == 2
    assert "unknown variant(s) ['resnet']; choose from mlp, mlp_dropout" in capsys.readouterr().err


def test_missing_data_is_a_clear_error_not_a_traceback(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["train", "--data-dir", str(tmp_path), "--store", str(tmp_path / "store"), "--epochs", "1"])
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {tmp_path} lacks train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte[.gz]")
    assert not (tmp_path / "store").exists()


def test_training_one_epoch_from_the_command_line(sample_dir: Path, tmp_path: Path) -> None:
    store = tmp_path / "store"
    assert (
        main(["train", "--variants", "mlp", "--epochs", "1", "--data-dir", str(sample_dir), "--store", str(store)]) == 0
    )
    assert (store / "mlp" / "1" / "model.onnx").is_file()
    assert (
        main(["report", "--store", str(store), "--out", str(tmp_path / "report"), "--data-dir", str(sample_dir)]) == 0
    )
    assert sorted(p.name for p in (tmp_path / "report").iterdir()) == [
        "confusion.png",
        "curves.png",
        "misclassified.png",
        "results.md",
        "seed_spread.png",
    ]
