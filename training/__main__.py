"""Command line: `python -m training train|replicate|report ...`."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from training.data import DATA_DIR_ENV, DatasetNotFound, IdxFormatError
from training.experiments import EXPERIMENTS, REPLICATE_SEEDS, ExperimentRun
from training.variants import VARIANTS, VARIANTS_BY_NAME

DEFAULT_STORE = Path("model_store")


def _known_variants() -> list[str]:
    names = list(VARIANTS_BY_NAME)
    names += [n for e in EXPERIMENTS.values() for n in e.variants if n not in names]
    return names


def _variant_names(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    known = _known_variants()
    unknown = [n for n in names if n not in known]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"unknown variant(s) {unknown}; choose from {', '.join(known)}")
    return names


def _seeds(text: str) -> list[int]:
    try:
        seeds = [int(n) for n in text.split(",") if n.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"seeds must be comma-separated integers, got {text!r}") from None
    if not seeds:
        raise argparse.ArgumentTypeError("give at least one seed")
    return seeds


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m training", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    train = commands.add_parser("train", help="train an experiment (or variants) and publish it to the model store")
    train.add_argument(
        "--experiment",
        choices=sorted(EXPERIMENTS),
        default=None,
        help="train every variant of one experiment with its own protocol and data, and write its record "
        "(experiments: " + "; ".join(f"{e.id}: seed {e.seed_document}, {', '.join(e.variants)}" for e in EXPERIMENTS.values()) + ")",
    )
    train.add_argument(
        "--option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="an experiment-specific setting (repeatable); each experiment's trainer documents its own",
    )
    train.add_argument(
        "--variants",
        type=_variant_names,
        default=None,
        help="comma-separated subset of the experiment's variants; without --experiment, of: "
        + ", ".join(VARIANTS_BY_NAME)
        + " (default: the six seed variants)",
    )
    train.add_argument(
        "--epochs",
        type=int,
        default=None,
        help="epochs per variant (default: the variant's protocol; seed: 100, cnn_augmented: its own)",
    )
    train.add_argument("--batch-size", type=int, default=128, help="mini-batch size (seed: 128)")
    train.add_argument("--seed", type=int, default=1234, help="random seed, recorded in each card")
    train.add_argument("--store", type=Path, default=DEFAULT_STORE, help="model store to publish into")
    train.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help=f"directory with the four MNIST IDX files (else ${DATA_DIR_ENV}, the cache, a download)",
    )
    train.add_argument("--no-download", action="store_true", help="fail instead of downloading MNIST")

    replicate = commands.add_parser(
        "replicate",
        help="retrain variants with other seeds and record their test figures beside the served models",
    )
    replicate.add_argument(
        "--variants",
        type=_variant_names,
        default=[s.name for s in VARIANTS],
        help="comma-separated subset of: " + ", ".join(VARIANTS_BY_NAME) + " (default: the six seed variants)",
    )
    replicate.add_argument(
        "--seeds",
        type=_seeds,
        default=list(REPLICATE_SEEDS),
        help="comma-separated seeds (default: " + ",".join(map(str, REPLICATE_SEEDS)) + "); recorded runs are skipped",
    )
    replicate.add_argument("--epochs", type=int, default=None, help="epochs per run (default: the variant's protocol)")
    replicate.add_argument("--batch-size", type=int, default=128)
    replicate.add_argument("--store", type=Path, default=DEFAULT_STORE, help="store whose replicates/ gets the records")
    replicate.add_argument("--data-dir", type=Path, default=None, help="directory with the four MNIST IDX files")
    replicate.add_argument("--no-download", action="store_true", help="fail instead of downloading MNIST")

    assess = commands.add_parser(
        "assess",
        help="calibrate the served models (temperature on the validation split), store their test predictions, "
        "and with --robustness score them on corrupted test images",
    )
    assess.add_argument("--store", type=Path, default=DEFAULT_STORE)
    assess.add_argument("--data-dir", type=Path, default=None, help="directory with the four MNIST IDX files")
    assess.add_argument("--no-download", action="store_true", help="fail instead of downloading MNIST")
    assess.add_argument("--robustness", action="store_true", help="also write robustness.json (a few minutes)")
    assess.add_argument("--no-calibration", action="store_true", help="skip the calibration step")
    assess.add_argument("--again", action="store_true", help="recalibrate models already calibrated")

    report = commands.add_parser("report", help="render figures and a results table from the cards")
    report.add_argument("--store", type=Path, default=DEFAULT_STORE)
    report.add_argument("--out", type=Path, default=Path("docs/report"), help="output directory")
    report.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="MNIST directory, for the misclassified-digit grid (skipped if absent)",
    )
    return parser


def run_train(args: argparse.Namespace) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if args.experiment is not None:
        return run_experiment(args)
    from training.data import load_mnist
    from training.trainer import TrainingConfig, config_for, train_and_publish

    data = load_mnist(args.data_dir, download=not args.no_download)
    logging.info(
        "MNIST from %s: %d train, %d validation, %d test",
        data.source,
        len(data.train),
        len(data.validation),
        len(data.test),
    )
    names = args.variants or [s.name for s in VARIANTS]
    unknown = [n for n in names if n not in VARIANTS_BY_NAME]
    if unknown:
        print(f"error: unknown variant(s) {unknown}; choose from {', '.join(VARIANTS_BY_NAME)} "
              "or train an experiment with --experiment", file=sys.stderr)
        return 2
    config = TrainingConfig(batch_size=args.batch_size, seed=args.seed)
    for name in names:
        spec = VARIANTS_BY_NAME[name]
        train_and_publish(spec, data, config_for(spec, config, args.epochs), args.store)
    return 0


def run_experiment(args: argparse.Namespace) -> int:
    experiment = EXPERIMENTS[args.experiment]
    options = dict(option.partition("=")[::2] for option in args.option)
    unknown = [n for n in args.variants or () if n not in experiment.variants]
    if unknown:
        print(f"error: {', '.join(unknown)} not in experiment {experiment.id} ({', '.join(experiment.variants)})", file=sys.stderr)
        return 2
    run = ExperimentRun(
        store=args.store,
        data_dir=args.data_dir,
        download=not args.no_download,
        seed=args.seed,
        epochs=args.epochs,
        variants=tuple(args.variants) if args.variants else None,
        options=options,
    )
    for card in experiment.load_trainer()(experiment, run):
        print(f"{card.name} v{card.version}: test accuracy {card.test_accuracy:.4f} ({card.test_errors} errors)")
    return 0


def run_replicate(args: argparse.Namespace) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from training.data import load_mnist
    from training.replicates import train_replicates
    from training.trainer import TrainingConfig

    data = load_mnist(args.data_dir, download=not args.no_download)
    specs = [VARIANTS_BY_NAME[name] for name in args.variants]
    written = train_replicates(
        specs, args.seeds, data, TrainingConfig(batch_size=args.batch_size), args.store, epochs=args.epochs
    )
    for path in written:
        print(path)
    return 0


def run_assess(args: argparse.Namespace) -> int:
    from training.assess import assess_calibration, assess_robustness
    from training.data import load_mnist

    data = load_mnist(args.data_dir, download=not args.no_download)
    if not args.no_calibration:
        for name, c in assess_calibration(args.store, data, again=args.again).items():
            print(f"{name}: T={c.temperature:.3f} applied={c.applied} "
                  f"test ECE {c.test_ece_before:.4f} -> {c.test_ece_after:.4f}")
    if args.robustness:
        assess_robustness(args.store, data)
        print(args.store / "robustness.json")
    return 0


def run_report(args: argparse.Namespace) -> int:
    from training.report import render_report

    written = render_report(args.store, args.out, data_dir=args.data_dir)
    for path in written:
        print(path)
    return 0


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    try:
        commands = {"train": run_train, "replicate": run_replicate, "assess": run_assess, "report": run_report}
        return commands[args.command](args)
    except (DatasetNotFound, IdxFormatError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except ModuleNotFoundError as exc:
        # `digit-training` is installed with the package, its dependencies only with the extra.
        if (exc.name or "").partition(".")[0] in ("training", "service", "digit_contract"):
            raise  # one of our own modules: a broken install, not a missing extra
        print(f"error: the training commands need the `train` extra ({exc.name} is not installed): "
              "pip install 'digit-serving[train]'", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
