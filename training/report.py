"""Render the seed's figures and results tables from the model cards and the records beside them.

Everything plotted comes from the store: the cards, each model's stored test predictions
(reliability diagrams), the replicate records (accuracy over seeds) and robustness.json; only the
pixels of the misclassified digits come from the MNIST test set, which is checked against the
SHA-256 recorded in the card before use. The significance, spread and claims are those of
`GET /models/compare` (service/comparison.py): one definition serves both.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from digit_contract.calibration import apply_temperature, reliability_bins, top_confidence
from digit_contract.card import ModelCard
from digit_contract.ranking import best_card, group_by_test_set
from digit_contract.records import RobustnessRecord, read_replicates, read_robustness
from digit_contract.store import CARD_FILE, latest_version, list_models, version_dir
from service.comparison import compare_models
from service.comparison_schemas import SeedClaim, SeedSpread
from service.registry import ServedModel
from service.schemas import ModelComparison
from training.assess import TEST_PREDICTIONS_FILE
from training.data import TEST_IMAGES, TEST_LABELS, DatasetNotFound, load_split, resolve_data_dir
from training.variants import VARIANTS

log = logging.getLogger(__name__)

GRID_COLUMNS = 10
GRID_ROWS = 4


def load_cards(store: Path) -> list[ModelCard]:
    """The latest card of every model, in the variant table's order (unknown names last)."""
    order = {spec.name: i for i, spec in enumerate(VARIANTS)}
    cards = []
    for name in list_models(store):
        version = latest_version(store, name)
        assert version is not None  # list_models only returns models with versions
        cards.append(ModelCard.read(version_dir(store, name, version) / CARD_FILE))
    return sorted(cards, key=lambda c: (order.get(c.name, len(order)), c.name))


def comparison_of(cards: list[ModelCard], store: Path | None = None) -> ModelComparison:
    """What `GET /models/compare` says about these cards (and the store's records, if given)."""
    served = {c.name: ServedModel(name=c.name, version=c.version, state="ready", card=c) for c in cards}
    return compare_models(served, store)


def _spread_text(spread: SeedSpread | None) -> str:
    if spread is None or spread.runs == 1:
        return "1 run"
    assert spread.test_accuracy_std is not None
    return (f"{100 * spread.test_accuracy_mean:.2f} ± {100 * spread.test_accuracy_std:.2f}% "
            f"(n = {spread.runs}, {100 * spread.test_accuracy_min:.2f}-{100 * spread.test_accuracy_max:.2f}%)")


def results_table(cards: list[ModelCard], store: Path | None = None) -> str:
    """Markdown table: accuracy with its 95% interval, errors, loss, macro F1, the accuracy over
    training seeds, calibration, parameters, training time. Bold: the models tied for best."""
    comparison = comparison_of(cards, store)
    rows = {row.name: row for row in comparison.models}
    spreads = {s.variant: s for s in comparison.seed_spread}
    lines = [
        "| model | test accuracy (95% CI) | errors | test loss | macro F1 | over training seeds: mean ± sd (n, range) "
        "| ECE raw → calibrated (T) | parameters | best val accuracy (epoch) | training time |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for c in cards:
        row = rows[c.name]
        peak = c.peak_validation()
        peak_text = "-" if peak is None else f"{100 * (peak.val_accuracy or 0.0):.2f}% ({peak.epoch})"
        name = f"**{c.name}**" if c.name in comparison.tied_for_best else c.name
        calibration = "-"
        if c.calibration is not None:
            calibration = (f"{100 * c.calibration.test_ece_before:.2f}% → {100 * c.calibration.test_ece_after:.2f}% "
                           f"({c.calibration.temperature:.2f})")
        lines.append(
            f"| {name} | {100 * c.test_accuracy:.2f}% ({100 * row.test_accuracy_low:.2f}-{100 * row.test_accuracy_high:.2f}) "
            f"| {c.test_errors} | {c.test_loss:.4f} | {c.macro_avg.f1:.4f} | {_spread_text(spreads.get(c.name))} "
            f"| {calibration} | {c.parameter_count:,} | {peak_text} "
            f"| {c.training_seconds / 60:.1f} min |"
        )
    return "\n".join(lines) + "\n"


def _p(p: float | None) -> str:
    if p is None:
        return "-"
    return f"{p:.2g}" if p < 0.01 else f"{p:.2f}"


def _separated(claim: SeedClaim) -> str:
    if claim.runs == [1, 1]:
        return "-"  # one run against one is always "separated"
    return "yes" if claim.separated else "no"


def significance_tables(comparison: ModelComparison) -> str:
    """Markdown: the tested deltas (one run each, on the test set) and the seed's claims (over seeds)."""
    lines = [
        "| comparison (test set, one run each) | model vs baseline | only model right | only baseline right "
        "| McNemar p | Holm p | verdict |",
        "| --- | --- | ---: | ---: | ---: | ---: | --- |",
    ]
    for t in comparison.significance:
        verdict = f"significant: {t.better} better" if t.significant else "not significant"
        lines.append(f"| {t.question} | {t.model} vs {t.baseline} | {t.only_model_right} | {t.only_baseline_right} "
                     f"| {_p(t.p_value)} | {_p(t.p_holm)} | {verdict} |")
    lines += [
        "",
        "| the seed's claim (over training seeds) | runs (baseline, model) | mean accuracy delta | runs separated "
        "| permutation p | smallest possible p | Holm p | verdict |",
        "| --- | ---: | ---: | --- | ---: | ---: | ---: | --- |",
    ]
    for c in comparison.seed_claims:
        lines.append(f"| {c.claim} ({c.model} vs {c.baseline}) | {c.runs[0]}, {c.runs[1]} "
                     f"| {100 * c.mean_accuracy_delta:+.2f} points | {_separated(c)} "
                     f"| {_p(c.p_value)} | {_p(c.smallest_possible_p)} | {_p(c.p_holm)} | {c.verdict} |")
    return "\n".join(lines) + "\n"


def robustness_table(comparison: ModelComparison) -> str:
    """Markdown: mean accuracy over the corrupted strengths, per corruption and model."""
    if not comparison.robustness:
        return ""
    names = list(comparison.robustness[0].mean_corrupted_accuracy)
    lines = ["| corruption (strengths) | " + " | ".join(names) + " |", "| --- |" + " ---: |" * len(names)]
    for s in comparison.robustness:
        strengths = ", ".join(f"{v:g}" for v in s.strengths[1:])
        cells = [f"**{100 * s.mean_corrupted_accuracy[n]:.1f}%**" if n == s.most_robust
                 else f"{100 * s.mean_corrupted_accuracy[n]:.1f}%" for n in names]
        lines.append(f"| {s.corruption} ({s.unit}: {strengths}) | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot_curves(cards: list[ModelCard], path: Path) -> None:
    import matplotlib.pyplot as plt

    fig, (acc_ax, loss_ax) = plt.subplots(1, 2, figsize=(13, 4.8))
    for c in cards:
        epochs = [e.epoch for e in c.history]
        style = "-" if c.architecture == "cnn" else "--"
        acc_ax.plot(epochs, [e.val_accuracy for e in c.history], style, label=c.name, linewidth=1.3)
        loss_ax.plot(epochs, [e.val_loss for e in c.history], style, label=c.name, linewidth=1.3)
    acc_ax.set(title="Validation accuracy", xlabel="epoch", ylabel="accuracy")
    loss_ax.set(title="Validation loss", xlabel="epoch", ylabel="categorical cross-entropy")
    # The interesting part is the top of the accuracy curve; the first epochs would squash it.
    low = min(
        min(e.val_accuracy for e in c.history[len(c.history) // 10 :] if e.val_accuracy is not None)
        for c in cards
        if any(e.val_accuracy is not None for e in c.history)
    )
    acc_ax.set_ylim(max(low - 0.002, 0.0), 1.0)
    for ax in (acc_ax, loss_ax):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_confusion(card: ModelCard, path: Path) -> None:
    import matplotlib.pyplot as plt

    matrix = np.array(card.confusion_matrix)
    fig, ax = plt.subplots(figsize=(6.4, 5.6))
    # Log colour scale: the diagonal (~1000) would otherwise hide the few off-diagonal errors.
    image = ax.imshow(np.log1p(matrix), cmap="Blues")
    for (row, col), count in np.ndenumerate(matrix):
        colour = "white" if matrix[row, col] > matrix.max() / 3 else "black"
        ax.text(col, row, str(count), ha="center", va="center", fontsize=8, color=colour)
    ax.set(
        xticks=range(10),
        yticks=range(10),
        xlabel="predicted",
        ylabel="true",
        title=f"{card.name} v{card.version}: {card.test_errors} errors in {card.dataset.test_samples:,}",
    )
    fig.colorbar(image, ax=ax, label="log(1 + count)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_misclassified(card: ModelCard, test_images: np.ndarray, path: Path) -> None:
    import matplotlib.pyplot as plt

    shown = card.misclassified[: GRID_COLUMNS * GRID_ROWS]
    rows = max(1, -(-len(shown) // GRID_COLUMNS))
    fig, axes = plt.subplots(rows, GRID_COLUMNS, figsize=(GRID_COLUMNS * 1.2, rows * 1.45), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, error in zip(axes.flat, shown, strict=False):
        ax.imshow(test_images[error.index], cmap="gray")
        ax.set_title(f"#{error.index}\ntrue {error.label} → {error.predicted}", fontsize=7)
    fig.suptitle(f"{card.name}: first {len(shown)} of {card.test_errors} misclassified test digits", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_seed_spread(cards: list[ModelCard], store: Path, path: Path) -> None:
    """Test accuracy of every training run per variant: the served run (star, with its 95% Wilson
    interval), the replicates (dots), and mean ± sample sd (bar) where there is more than one run."""
    import matplotlib.pyplot as plt

    comparison = comparison_of(cards, store)
    rows = {row.name: row for row in comparison.models}
    spreads = {s.variant: s for s in comparison.seed_spread}
    replicates = read_replicates(store)
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.6))
    for ax, architecture in zip(axes, ("mlp", "cnn"), strict=True):
        chosen = [c for c in cards if c.architecture == architecture]
        if not chosen:
            ax.axis("off")
            continue
        for x, card in enumerate(chosen):
            row, spread = rows[card.name], spreads[card.name]
            runs = [r.test_accuracy for r in replicates.get(card.name, []) if r.seed != card.seed
                    and r.epochs == card.hyperparameters.epochs]
            ax.plot([x - 0.12] * 2, [100 * row.test_accuracy_low, 100 * row.test_accuracy_high], color="grey",
                    linewidth=3, alpha=0.5, label="served run, 95% CI" if x == 0 else None)
            ax.plot(x - 0.12, 100 * card.test_accuracy, "*", color="black", markersize=10,
                    label="served run (seed 1234)" if x == 0 else None)
            ax.plot([x + 0.12] * len(runs), [100 * a for a in runs], "o", color="tab:blue", alpha=0.7,
                    label="replicate runs" if x == 0 else None)
            if spread.test_accuracy_std is not None:
                ax.errorbar(x + 0.25, 100 * spread.test_accuracy_mean, yerr=100 * spread.test_accuracy_std, fmt="D",
                            color="tab:red", capsize=4, label="mean ± sd over runs" if x == 0 else None)
        ax.set_xticks(range(len(chosen)), [f"{c.name}\n(n = {spreads[c.name].runs})" for c in chosen], fontsize=8)
        ax.set(title=f"{architecture.upper()} variants: test accuracy per training run", ylabel="test accuracy (%)")
        ax.grid(alpha=0.3, axis="y")
        ax.legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_reliability(cards: list[ModelCard], store: Path, path: Path) -> bool:
    """Reliability diagram per model from its stored test predictions, raw and with its temperature.
    Returns False (and draws nothing) when no model has stored predictions."""
    import matplotlib.pyplot as plt

    found = []
    for card in cards:
        file = version_dir(store, card.name, card.version) / TEST_PREDICTIONS_FILE
        if file.is_file() and card.calibration is not None:
            with np.load(file) as stored:
                found.append((card, stored["probabilities"], stored["labels"]))
    if not found:
        return False
    columns = 4
    rows = -(-len(found) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(3.3 * columns, 3.3 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, (card, probabilities, labels) in zip(axes.flat, found, strict=False):
        calibration = card.calibration
        assert calibration is not None
        ax.axis("on")
        ax.plot([0, 1], [0, 1], ":", color="grey", linewidth=1)
        for label, p, ece in (
            ("raw", probabilities, calibration.test_ece_before),
            (f"T = {calibration.temperature:.2f}", apply_temperature(probabilities, calibration.temperature),
             calibration.test_ece_after),
        ):
            bins = [b for b in reliability_bins(*top_confidence(p, labels), bins=calibration.ece_bins) if b.count]
            ax.plot([b.confidence for b in bins], [b.accuracy for b in bins], "o-", markersize=3,
                    label=f"{label}: ECE {100 * ece:.2f}%")
        ax.set(title=card.name, xlim=(0, 1), ylim=(0, 1), xlabel="confidence", ylabel="accuracy")
        ax.legend(fontsize=7, loc="upper left")
        ax.grid(alpha=0.3)
    fig.suptitle("Reliability on the test set (15 bins); temperature fitted on the validation split", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def plot_robustness(record: RobustnessRecord, cards: list[ModelCard], path: Path) -> None:
    """Accuracy against corruption strength, one panel per corruption, one line per model."""
    import matplotlib.pyplot as plt

    curves = record.curves
    columns = 4
    rows = -(-len(curves) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(4 * columns, 3.3 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    colours = {"none": "tab:blue", "dropout": "tab:orange", "noise": "tab:green"}
    for ax, curve in zip(axes.flat, curves, strict=False):
        ax.axis("on")
        order = np.argsort(curve.strengths)
        for card in cards:
            if card.name not in curve.accuracy:
                continue
            style = "-" if card.architecture == "cnn" else "--"
            augmented = bool(card.hyperparameters.augmentation)
            regularisation = "dropout" if card.hyperparameters.dropout_rate else "noise" if card.hyperparameters.noise_stddev else "none"
            ax.plot(np.array(curve.strengths)[order], 100 * np.array(curve.accuracy[card.name])[order],
                    ":" if augmented else style, color="black" if augmented else colours[regularisation],
                    marker="o", markersize=2.5, linewidth=1.2, label=card.name)
        ax.set(title=curve.corruption, xlabel=curve.unit, ylabel="test accuracy (%)", ylim=(0, 100))
        ax.grid(alpha=0.3)
    axes.flat[0].legend(fontsize=7, loc="lower left")
    fig.suptitle("Accuracy on corrupted MNIST test images (CNN solid, MLP dashed, augmented dotted)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _test_images_matching(card: ModelCard, data_dir: Path | None) -> np.ndarray | None:
    try:
        directory = resolve_data_dir(data_dir, download=False)
        split, hashes = load_split(directory, TEST_IMAGES, TEST_LABELS)
    except (DatasetNotFound, ValueError) as exc:
        log.warning("skipping the misclassified-digit grid: %s", exc)
        return None
    expected = card.dataset.file_sha256.get(TEST_IMAGES)
    if hashes[TEST_IMAGES] != expected:
        log.warning("skipping the misclassified-digit grid: %s is not the test set the card was scored on", directory)
        return None
    return split.images


def render_report(store: Path, out: Path, *, data_dir: Path | None = None) -> list[Path]:
    """Write curves.png, confusion.png, misclassified.png (if MNIST is at hand), seed_spread.png,
    reliability.png (if test predictions are stored), robustness.png (if robustness.json is) and
    results.md (the results table, the tested comparisons and claims, robustness, the findings)."""
    import matplotlib

    matplotlib.use("Agg")
    cards = load_cards(store)
    if not cards:
        raise FileNotFoundError(f"no model cards in {store}")
    out.mkdir(parents=True, exist_ok=True)
    by_name = {c.name: c for c in cards}
    best = best_card(by_name[n] for n in group_by_test_set(by_name)[0])  # of the largest test set
    written = [out / "curves.png", out / "confusion.png"]
    plot_curves(cards, written[0])
    plot_confusion(best, written[1])
    images = _test_images_matching(best, data_dir)
    if images is not None:
        written.append(out / "misclassified.png")
        plot_misclassified(best, images, written[-1])
    spread_path = out / "seed_spread.png"
    plot_seed_spread(cards, store, spread_path)
    written.append(spread_path)
    if plot_reliability(cards, store, out / "reliability.png"):
        written.append(out / "reliability.png")
    robustness = read_robustness(store)
    if robustness is not None:
        written.append(out / "robustness.png")
        plot_robustness(robustness, cards, written[-1])
    comparison = comparison_of(cards, store)
    table = out / "results.md"
    sections = [
        results_table(cards, store),
        significance_tables(comparison),
        robustness_table(comparison),
        "\n".join(f"- {finding}" for finding in comparison.findings) + "\n\n" + comparison.methods + "\n",
    ]
    table.write_text("\n".join(section for section in sections if section), encoding="utf-8")
    written.append(table)
    return written
