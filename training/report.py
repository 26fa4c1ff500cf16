"""Render the seed's figures and results tables from the model cards and the records beside them.

Everything plotted comes from the store: the cards, each model's stored test predictions
(reliability diagrams), the replicate records (accuracy over seeds) and robustness.json; only the
pixels of the misclassified digits come from the MNIST test set, which is checked against the
SHA-256 recorded in the card before use. The significance, spread and claims are those of
`GET /models/compare`: both call the contract's `compare_cards` (digit_contract/comparison.py).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from digit_contract.calibration import apply_temperature, reliability_bins, top_confidence
from digit_contract.card import EpochRecord, ModelCard
from digit_contract.comparison import SEED_000_EXPERIMENTS, compare_cards
from digit_contract.comparison_schemas import ExperimentComparison, ModelComparison, PairedTest, SeedClaim, SeedSpread
from digit_contract.ranking import best_card, group_by_test_set
from digit_contract.records import (
    ExperimentRecord,
    RobustnessRecord,
    SensitivityStudy,
    read_experiments,
    read_replicates,
    read_robustness,
)
from digit_contract.store import latest_cards, version_dir
from training.assess import TEST_PREDICTIONS_FILE
from training.data import TEST_IMAGES, TEST_LABELS, DatasetNotFound, load_split, resolve_data_dir
from training.experiments import EXPERIMENTS
from training.variants import VARIANTS

log = logging.getLogger(__name__)

GRID_COLUMNS = 10
GRID_ROWS = 4


def load_cards(store: Path) -> list[ModelCard]:
    """The latest card of every model, in the variant table's order (unknown names last)."""
    order = {spec.name: i for i, spec in enumerate(VARIANTS)}
    return sorted(latest_cards(store).values(), key=lambda c: (order.get(c.name, len(order)), c.name))


def comparison_of(cards: list[ModelCard], store: Path | None = None) -> ModelComparison:
    """What `GET /models/compare` says about these cards (and the store's records, if given)."""
    return compare_cards({c.name: c for c in cards}, store)


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
            f"| {_minutes(c.training_seconds)} |"
        )
    return "\n".join(lines) + "\n"


def _minutes(seconds: float | None) -> str:
    """Training time for the table; an imported model's is not known."""
    return "not known" if seconds is None else f"{seconds / 60:.1f} min"


def _p(p: float | None) -> str:
    if p is None:
        return "-"
    if p == 0.0:
        return "< 1e-300"  # below the smallest double: the exact p-value underflowed
    return f"{p:.2g}" if p < 0.01 else f"{p:.2f}"


def _separated(claim: SeedClaim) -> str:
    if claim.runs == [1, 1]:
        return "-"  # one run against one is always "separated"
    return "yes" if claim.separated else "no"


def significance_tables(comparison: ModelComparison) -> str:
    """Markdown: the tested deltas (one run each, on the test set) and the seed's claims (over seeds)."""
    lines = [
        pairs_table(comparison.significance),
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


def uploads_table(comparison: ModelComparison) -> str:
    """Markdown: accuracy on the user-style validation uploads, each model tested against the leader."""
    if not comparison.uploads:
        return ""
    lines = ["| model | accuracy on the uploads (95% CI) | only the leader right | only this model right "
             "| McNemar p | Holm p | verdict |", "| --- | ---: | ---: | ---: | ---: | ---: | --- |"]
    for row in comparison.uploads:
        test = row.against_leader
        interval = f"{100 * row.accuracy:.2f}% ({100 * row.low:.2f}-{100 * row.high:.2f})"
        if test is None:
            lines.append(f"| {row.name} | {interval} | - | - | - | - | "
                         f"{'the leader' if row is comparison.uploads[0] else 'no per-upload results'} |")
            continue
        lines.append(f"| {row.name} | {interval} | {test.only_baseline_right} | {test.only_model_right} "
                     f"| {_p(test.p_value)} | {_p(test.p_holm)} | {_verdict(test)} |")
    return (f"{comparison.uploads[0].uploads:,} user-style uploads rendered from the validation split "
            "(`model_store/uploads-validation.json`, `python -m evaluation --split validation --record`); "
            "they choose the default model for image uploads, so this tests whether the leader's lead is real. "
            "Every model is fed as its card says (the 8x8 models the UCI block counts).\n\n"
            + "\n".join(lines) + "\n")


def plot_curves(cards: list[ModelCard], path: Path) -> None:
    import matplotlib.pyplot as plt

    fig, (acc_ax, loss_ax) = plt.subplots(1, 2, figsize=(13, 4.8))
    for c in cards:
        style = "-" if c.architecture == "cnn" else "--"
        accuracy = [(e.epoch, e.val_accuracy) for e in c.history if e.val_accuracy is not None]
        loss = [(e.epoch, e.val_loss) for e in c.history if e.val_loss is not None]
        if accuracy:
            acc_ax.plot(*zip(*accuracy, strict=True), style, label=c.name, linewidth=1.3)
        if loss:
            loss_ax.plot(*zip(*loss, strict=True), style, label=c.name, linewidth=1.3)
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

    fig, ax = plt.subplots(figsize=(6.4, 5.6))
    _draw_confusion(ax, card)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _draw_confusion(ax: Any, card: ModelCard) -> None:
    matrix = np.array(card.confusion_matrix)
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
    ax.figure.colorbar(image, ax=ax, label="log(1 + count)")


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
            epochs = card.hyperparameters.epochs if card.hyperparameters is not None else None
            runs = [r.test_accuracy for r in replicates.get(card.name, []) if r.seed != card.seed
                    and r.epochs == epochs]
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
    # One legend under both panels: inside a panel it hid runs (mlp's 96.10% sat under it).
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=4, fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
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
        for label, p in (("raw softmax", probabilities),
                         ("temperature-scaled", apply_temperature(probabilities, calibration.temperature))):
            bins = [b for b in reliability_bins(*top_confidence(p, labels), bins=calibration.ece_bins) if b.count]
            ax.plot([b.confidence for b in bins], [b.accuracy for b in bins], "o-", markersize=3, label=label)
        # The figures go in the title and the key under the panels: a legend inside a panel hid bins
        # in whichever corner it took.
        ax.set_title(f"{card.name}\nECE {100 * calibration.test_ece_before:.2f}% → {100 * calibration.test_ece_after:.2f}% "
                     f"(T = {calibration.temperature:.2f})", fontsize=9)
        ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="confidence", ylabel="accuracy")
        ax.grid(alpha=0.3)
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=2, fontsize=9, frameon=False)
    fig.suptitle("Reliability on the test set (15 bins); temperature fitted on the validation split", fontsize=10)
    fig.tight_layout(rect=(0, 0.03, 1, 1))
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
    # Seed 000's six: colour by regularisation, CNN solid, MLP dashed; the rest of the zoo: a colour
    # each, CNN dotted, MLP dash-dot.
    colours = {"none": "tab:blue", "dropout": "tab:orange", "noise": "tab:green", "unknown": "tab:grey"}
    palette = ("black", "tab:red", "tab:purple", "tab:brown", "tab:pink", "tab:olive", "tab:cyan", "tab:grey")
    others = [c.name for c in cards if c.experiment != "regularisation" and any(c.name in k.accuracy for k in curves)]
    for ax, curve in zip(axes.flat, curves, strict=False):
        ax.axis("on")
        order = np.argsort(curve.strengths)
        for card in cards:
            if card.name not in curve.accuracy:
                continue
            if card.name in others:
                style = ":" if card.architecture == "cnn" else "-."
                colour = palette[others.index(card.name) % len(palette)]
            else:
                style = "-" if card.architecture == "cnn" else "--"
                settings = card.hyperparameters
                regularisation = ("unknown" if settings is None else "dropout" if settings.dropout_rate
                                  else "noise" if settings.noise_stddev else "none")
                colour = colours[regularisation]
            ax.plot(np.array(curve.strengths)[order], 100 * np.array(curve.accuracy[card.name])[order], style,
                    color=colour, marker="o", markersize=2.5, linewidth=1.2, label=card.name)
        ax.set(title=curve.corruption, xlabel=curve.unit, ylabel="test accuracy (%)", ylim=(0, 100))
        ax.grid(alpha=0.3)
    handles, labels = axes.flat[0].get_legend_handles_labels()
    if len(curves) < len(axes.flat):  # a free panel holds the legend
        axes.flat[-1].legend(handles, labels, fontsize=7, loc="center", ncol=2)
    else:
        axes.flat[0].legend(fontsize=7, loc="lower left")
    fig.suptitle("Accuracy on corrupted MNIST test images (seed 000's variants: CNN solid, MLP dashed; "
                 "the rest of the zoo: CNN dotted, MLP dash-dot)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# -- the zoo and its experiments -------------------------------------------------------------

TRIALS_SHOWN = 15
"""Rows of a search's trials table (the best by validation accuracy); the count says how many ran."""


def _dataset_text(card: ModelCard) -> str:
    name = "MNIST" if card.dataset.name == "mnist" else card.dataset.name
    return f"{name} ({card.dataset.test_samples:,})"


def zoo_table(comparison: ModelComparison) -> str:
    """Markdown: one row per model of the zoo, grouped by test set; bold: tied for best on its test set."""
    tied = {name for d in comparison.datasets for name in d.tied_for_best}
    lines = [
        "| model | experiment | dataset (test images) | family | framework | parameters | test accuracy (95% CI) "
        "| errors | rank on its test set |",
        "| --- | --- | --- | --- | --- | ---: | ---: | ---: | ---: |",
    ]
    for row in comparison.models:
        name = f"**{row.name}**" if row.name in tied else row.name
        dataset = "MNIST" if row.dataset == "mnist" else row.dataset
        lines.append(
            f"| {name} | {row.experiment} | {dataset} ({row.test_samples:,}) | {row.architecture.upper()} "
            f"| {row.framework} | {row.parameter_count:,} | {100 * row.test_accuracy:.2f}% "
            f"({100 * row.test_accuracy_low:.2f}-{100 * row.test_accuracy_high:.2f}) | {row.test_errors} | {row.rank} |"
        )
    return "\n".join(lines) + "\n"


def family_table(comparison: ModelComparison) -> str:
    """Markdown: the best model of each family per test set, and the best CNN against the best MLP."""
    lines = [
        "| dataset (test images) | family | best model | experiment | test accuracy (95% CI) | errors | parameters "
        "| not significantly worse in the family | best CNN vs best MLP |",
        "| --- | --- | --- | --- | ---: | ---: | ---: | --- | --- |",
    ]
    for d in comparison.datasets:
        gap = "-"
        if d.family_gap is not None:
            g = d.family_gap
            verdict = f"significant, {g.better} better" if g.significant else "not significant"
            gap = f"{g.only_model_right} vs {g.only_baseline_right} discordant, McNemar p = {_p(g.p_value)}: {verdict}"
        for i, f in enumerate(d.families):
            dataset = "MNIST" if d.dataset == "mnist" else d.dataset
            tied = ", ".join(m for m in f.tied_in_family if m != f.model) or "none"
            lines.append(
                f"| {dataset} ({d.test_samples:,}) | {f.family.upper()} | {f.model} | {f.experiment} "
                f"| {100 * f.test_accuracy:.2f}% ({100 * f.test_accuracy_low:.2f}-{100 * f.test_accuracy_high:.2f}) "
                f"| {f.test_errors} | {f.parameter_count:,} | {tied} | {gap if i == 0 else ''} |"
            )
    return "\n".join(lines) + "\n"


def overfitting_table(cards: list[ModelCard]) -> str:
    """Markdown: where each model's validation loss was lowest (where overfitting starts), against the end."""
    lines = [
        "| model | epochs run | lowest validation loss (epoch) | final validation loss | best validation accuracy (epoch) "
        "| final validation accuracy |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for c in cards:
        turn = overfitting_epoch(c)
        measured = [e for e in c.history if e.val_loss is not None]
        last = measured[-1] if measured else None
        peak = c.peak_validation()
        lines.append(
            f"| {c.name} | {len(c.history)} "
            f"| {'-' if turn is None else f'{turn.val_loss:.4f} ({turn.epoch})'} "
            f"| {'-' if last is None else f'{last.val_loss:.4f}'} "
            f"| {'-' if peak is None else f'{100 * (peak.val_accuracy or 0.0):.2f}% ({peak.epoch})'} "
            f"| {'-' if last is None or last.val_accuracy is None else f'{100 * last.val_accuracy:.2f}%'} |"
        )
    return "\n".join(lines) + "\n"


def overfitting_epoch(card: ModelCard) -> EpochRecord | None:
    """The epoch of minimum validation loss (the first of equals): after it the model fits the training
    images better and the validation images worse. None without validation figures."""
    measured = [e for e in card.history if e.val_loss is not None]
    return min(measured, key=lambda e: e.val_loss or 0.0) if measured else None


def trials_table(record: ExperimentRecord) -> str:
    """Markdown: a search's best trials by validation accuracy (every parameter a column)."""
    trials = sorted(record.trials, key=lambda t: (-t.validation_accuracy, t.trial))
    keys = list(dict.fromkeys(k for t in trials for k in t.parameters))
    shown = trials[:TRIALS_SHOWN]
    lines = [
        f"{len(trials):,} trial{'' if len(trials) == 1 else 's'}, {sum(t.seconds for t in trials) / 60:.1f} min in all"
        + (f"; the best {len(shown)} by validation accuracy:" if len(trials) > len(shown) else ":"),
        "",
        "| trial | " + " | ".join(keys) + " | validation accuracy | validation loss | epochs run | seconds |",
        "| ---: |" + " --- |" * len(keys) + " ---: | ---: | ---: | ---: |",
    ]
    for t in shown:
        cells = [_cell(t.parameters.get(k)) for k in keys]
        loss = "-" if t.validation_loss is None else f"{t.validation_loss:.4f}"
        lines.append(f"| {t.trial} | " + " | ".join(cells) + f" | {100 * t.validation_accuracy:.2f}% | {loss} "
                     f"| {t.epochs_run or '-'} | {t.seconds:.1f} |")
    return "\n".join(lines) + "\n"


def _cell(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, list):
        return "(" + ", ".join(str(v) for v in value) + ")"
    return str(value)


def per_class_table(card: ModelCard) -> str:
    """Markdown: one model's precision, recall and F1 per digit on its test set."""
    lines = ["| digit | precision | recall | F1 | support |", "| ---: | ---: | ---: | ---: | ---: |"]
    for c in card.per_class:
        lines.append(f"| {c.digit} | {c.precision:.4f} | {c.recall:.4f} | {c.f1:.4f} | {c.support} |")
    m = card.macro_avg
    lines.append(f"| macro | {m.precision:.4f} | {m.recall:.4f} | {m.f1:.4f} | {card.dataset.test_samples} |")
    return "\n".join(lines) + "\n"


def studies_table(record: ExperimentRecord) -> str:
    """Markdown: every sensitivity study, its points (value: validation / test accuracy) and time."""
    lines = ["| study | model | points (value: validation accuracy; training and test accuracy where measured) | time |",
             "| --- | --- | --- | ---: |"]
    for s in record.studies:
        points = "; ".join(
            f"{_cell(p.value)}: {_percent(p.validation_accuracy)}"
            + (f" (train {_percent(p.train_accuracy)})" if p.train_accuracy is not None else "")
            + (f" (test {_percent(p.test_accuracy)})" if p.test_accuracy is not None else "")
            for p in s.points)
        lines.append(f"| {s.title} | {s.model} | {points} | {s.seconds / 60:.1f} min |")
    return "\n".join(lines) + "\n"


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.2f}%"


def plot_side_by_side(cards: list[ModelCard], path: Path) -> None:
    """One column per model: training and validation loss (top), accuracy (bottom), with the epoch of
    minimum validation loss marked (where overfitting starts). Missing figures (scikit-learn) are left out."""
    import matplotlib.pyplot as plt

    columns = len(cards)
    fig, axes = plt.subplots(2, columns, figsize=(4.3 * columns, 6.4), squeeze=False)
    for column, card in enumerate(cards):
        loss_ax, acc_ax = axes[0][column], axes[1][column]
        for ax, train_field, val_field, label in ((loss_ax, "loss", "val_loss", "loss"),
                                                  (acc_ax, "accuracy", "val_accuracy", "accuracy")):
            for field, name, style in ((train_field, "training", "--"), (val_field, "validation", "-")):
                points = [(e.epoch, getattr(e, field)) for e in card.history if getattr(e, field) is not None]
                if points:
                    ax.plot(*zip(*points, strict=True), style, label=f"{name} {label}", linewidth=1.3)
            ax.set(xlabel="epoch", ylabel=label)
            ax.grid(alpha=0.3)
        turn = overfitting_epoch(card)
        if turn is not None:
            for ax in (loss_ax, acc_ax):
                ax.axvline(turn.epoch, color="tab:red", linestyle=":", linewidth=1.2,
                           label=f"lowest validation loss (epoch {turn.epoch})")
        loss_ax.set_title(f"{card.name}: {card.parameter_count:,} parameters", fontsize=10)
        for ax in (loss_ax, acc_ax):
            if ax.get_legend_handles_labels()[0]:
                ax.legend(fontsize=7)
        if not any(e.accuracy is not None or e.val_accuracy is not None for e in card.history):
            acc_ax.text(0.5, 0.5, "no accuracy recorded per epoch", ha="center", va="center", transform=acc_ax.transAxes)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_confusions(cards: list[ModelCard], path: Path) -> None:
    """Confusion matrices side by side, one per model."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(cards), figsize=(5.4 * len(cards), 5.0), squeeze=False)
    for ax, card in zip(axes[0], cards, strict=True):
        _draw_confusion(ax, card)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_studies(studies: list[SensitivityStudy], path: Path, title: str) -> None:
    """One study's accuracy against its parameter, one line per model that ran it (the training-set
    size study: MLP against CNN); categorical values are spaced evenly."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.8, 4.4))
    numeric = all(isinstance(p.value, int | float) and not isinstance(p.value, bool) for s in studies for p in s.points)
    labels: list[str] = []
    if not numeric:
        labels = list(dict.fromkeys(_cell(p.value) for s in studies for p in s.points))
    for colour, study in enumerate(studies):  # one colour per model, one line style per figure
        for field, style in (("validation_accuracy", "-"), ("test_accuracy", ":"), ("train_accuracy", "--")):
            points = [(p.value, getattr(p, field)) for p in study.points if getattr(p, field) is not None]
            if not points:
                continue
            xs = [float(v) if numeric else labels.index(_cell(v)) for v, _ in points]  # type: ignore[arg-type]
            ax.plot(xs, [100 * y for _, y in points], style, color=f"C{colour}", marker="o", markersize=3,
                    label=f"{study.model}: {field.replace('_', ' ')} ({study.seconds / 60:.1f} min)")
    if numeric:
        values = [float(p.value) for s in studies for p in s.points]  # type: ignore[arg-type]
        if min(values) > 0 and max(values) / min(values) >= 50:
            ax.set_xscale("log")
    else:
        ax.set_xticks(range(len(labels)), labels, rotation=20, fontsize=8)
    ax.set(title=title, xlabel=studies[0].parameter, ylabel="accuracy (%)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _study_groups(record: ExperimentRecord) -> list[list[SensitivityStudy]]:
    """Studies of the same parameter drawn together (MLP against CNN), else one each."""
    groups: dict[str, list[SensitivityStudy]] = {}
    for study in record.studies:
        groups.setdefault(study.parameter, []).append(study)
    return list(groups.values())


def experiment_section(
    experiment: ExperimentComparison,
    cards: list[ModelCard],
    record: ExperimentRecord | None,
    store: Path,
    out: Path,
) -> tuple[str, list[Path]]:
    """Markdown and figures of one experiment: its results table (ranked among its models), its paired
    tests, its curves with where overfitting starts, confusion matrices, a search's trials with the
    winner's per-class figures, sensitivity studies."""
    declared = EXPERIMENTS.get(experiment.id)
    if declared is not None and experiment.title is None:  # no record stored yet: the declaration says it
        experiment = experiment.model_copy(update={
            "title": declared.title, "seed_document": declared.seed_document, "question": declared.question,
            "split": declared.split, "protocol": declared.protocol, "seed_claims": list(declared.seed_claims)})
    title = experiment.title or experiment.id
    seed = f" (seed {experiment.seed_document})" if experiment.seed_document else ""
    seed_000 = experiment.id in SEED_000_EXPERIMENTS  # its tests and claims have a section of their own
    parts = [f"## {title}{seed}\n", f"Experiment `{experiment.id}`: " +
             f"{len(cards)} model{'s' if len(cards) > 1 else ''} on the {_dataset_text(cards[0])} test images.\n"]
    if experiment.question:
        parts.append(f"Question: {experiment.question}\n")
    facts = [("Split", experiment.split), ("Protocol", experiment.protocol)]
    parts.append("".join(f"- {k}: {v}\n" for k, v in facts if v)
                 + "".join(f"- The seed reports: {claim}\n" for claim in experiment.seed_claims)
                 + "".join(f"- Note: {note}\n" for note in experiment.notes))
    parts.append(results_table(cards, store))
    if experiment.significance and not seed_000:
        parts.append(pairs_table(experiment.significance))
    written: list[Path] = []
    if experiment.id != "regularisation":  # seed 000's six have curves.png and the sections below
        curves = out / f"{experiment.id}-curves.png"
        order = list(declared.variants) if declared is not None else []
        plot_side_by_side(sorted(cards, key=lambda c: order.index(c.name) if c.name in order else len(order)), curves)
        written.append(curves)
        parts.append(overfitting_table(cards))
        parts.append(f"![Training and validation curves of {title}, lowest validation loss marked]({curves.name})\n")
        shown = cards if len(cards) <= 3 else [cards[0]]
        confusion = out / f"{experiment.id}-confusion.png"
        plot_confusions(shown, confusion)
        written.append(confusion)
        parts.append(f"![Confusion matrices]({confusion.name})\n")
    if record is not None and record.trials:
        parts.append("### The search\n")
        parts.append(trials_table(record))
        best = cards[0]
        parts.append(f"Per-class figures of the best model, {best.name}, on its test set:\n")
        parts.append(per_class_table(best))
    if record is not None and record.studies:
        parts.append("### Sensitivity studies\n")
        parts.append(studies_table(record))
        for group in _study_groups(record):
            slug = re.sub(r"[^a-z0-9]+", "-", group[0].parameter.lower()).strip("-") or group[0].name
            path = out / f"{experiment.id}-study-{slug}.png"
            study_title = group[0].title if len(group) == 1 else f"{group[0].parameter}: " + " against ".join(
                s.model for s in group)
            plot_studies(group, path, study_title)
            written.append(path)
            parts.append(f"![{study_title}]({path.name})\n")
    findings = experiment.findings[:1] if seed_000 else experiment.findings
    parts.append("".join(f"- {finding}\n" for finding in findings))
    return "\n".join(parts), written


def _section_order(experiment: ExperimentComparison) -> tuple[str, int, str]:
    """Seed 000's experiments first, then by seed document (the record's, else the declaration's)."""
    declared = EXPERIMENTS.get(experiment.id)
    seed = experiment.seed_document or (declared.seed_document if declared is not None else "999")
    first = SEED_000_EXPERIMENTS.index(experiment.id) if experiment.id in SEED_000_EXPERIMENTS else len(SEED_000_EXPERIMENTS)
    return seed, first, experiment.id


def pairs_table(tests: Sequence[PairedTest]) -> str:
    lines = [
        "| comparison (test set, one run each) | model vs baseline | only model right | only baseline right "
        "| McNemar p | Holm p | verdict |",
        "| --- | --- | ---: | ---: | ---: | ---: | --- |",
    ]
    for t in tests:
        lines.append(f"| {t.question} | {t.model} vs {t.baseline} | {t.only_model_right} | {t.only_baseline_right} "
                     f"| {_p(t.p_value)} | {_p(t.p_holm)} | {_verdict(t)} |")
    return "\n".join(lines) + "\n"


def _verdict(test: PairedTest) -> str:
    return f"significant: {test.better} better" if test.significant else "not significant"


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
    """Write results.md: the zoo table and the best of each family per test set, then one section per
    experiment (its results table ranked among its own models, paired tests, curves with where
    overfitting starts, confusion matrices, a search's trials, sensitivity studies), then seed 000's
    tested comparisons and claims, calibration, robustness and the findings. Figures: curves.png
    (seed 000's six), confusion.png and misclassified.png (the best MNIST model; the grid only if
    MNIST is at hand), seed_spread.png, reliability.png (if test predictions are stored),
    robustness.png (if robustness.json is), and <experiment>-*.png per experiment."""
    import matplotlib

    matplotlib.use("Agg")
    cards = load_cards(store)
    if not cards:
        raise FileNotFoundError(f"no model cards in {store}")
    out.mkdir(parents=True, exist_ok=True)
    by_name = {c.name: c for c in cards}
    best = best_card(by_name[n] for n in group_by_test_set(by_name)[0])  # of the largest test set
    seed_000 = [c for c in cards if c.experiment == "regularisation"] or cards
    written = [out / "curves.png", out / "confusion.png"]
    plot_curves(seed_000, written[0])
    plot_confusion(best, written[1])
    images = _test_images_matching(best, data_dir)
    if images is not None:
        written.append(out / "misclassified.png")
        plot_misclassified(best, images, written[-1])
    spread_path = out / "seed_spread.png"
    plot_seed_spread([c for c in cards if c.experiment in SEED_000_EXPERIMENTS] or cards, store, spread_path)
    written.append(spread_path)
    if plot_reliability(cards, store, out / "reliability.png"):
        written.append(out / "reliability.png")
    robustness = read_robustness(store)
    if robustness is not None:
        written.append(out / "robustness.png")
        plot_robustness(robustness, cards, written[-1])
    comparison = comparison_of(cards, store)
    records = read_experiments(store)

    sections = [
        "# Results\n",
        "## The zoo\n",
        comparison.zoo_note + " Bold: tied for best on its test set (no model of that test set significantly "
        "more accurate). Rank: 1 + the number of models of the same test set significantly more accurate.\n",
        zoo_table(comparison),
        "Best of each family per test set:\n",
        family_table(comparison),
    ]
    for experiment in sorted(comparison.experiments, key=_section_order):
        members = [by_name[row.name] for row in experiment.models]
        text, figures = experiment_section(experiment, members, records.get(experiment.id), store, out)
        sections.append(text)
        written += figures
    sections += [
        "## Seed 000 in detail: every variant, tested comparisons and claims\n",
        results_table(seed_000 + [c for c in cards if c.experiment == "uploads"], store),
        significance_tables(comparison),
        "## Robustness\n" if comparison.robustness else "",
        robustness_table(comparison),
        "## User-style uploads\n" if comparison.uploads else "",
        uploads_table(comparison),
        "## Findings\n",
        "\n".join(f"- {finding}" for finding in comparison.findings) + "\n\n" + comparison.methods + "\n",
    ]
    table = out / "results.md"
    table.write_text("\n".join(section for section in sections if section), encoding="utf-8")
    written.append(table)
    return written
