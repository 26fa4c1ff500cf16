"""Render the seed's figures and results table from the model cards.

Everything plotted comes from the cards; only the pixels of the misclassified digits come from
the MNIST test set, which is checked against the SHA-256 recorded in the card before use.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from service.card import ModelCard
from service.model_store import CARD_FILE, latest_version, list_models, version_dir
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


def best_card(cards: list[ModelCard]) -> ModelCard:
    """Highest test accuracy; ties go to the lower test loss."""
    return max(cards, key=lambda c: (c.test_accuracy, -c.test_loss))


def results_table(cards: list[ModelCard]) -> str:
    """Markdown table: accuracy, errors, loss, macro F1, parameters, training time."""
    best = best_card(cards).name
    lines = [
        "| model | test accuracy | errors | test loss | macro F1 | parameters | best val accuracy (epoch) | training time |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for c in cards:
        peak = max(c.history, key=lambda e: e.val_accuracy)
        name = f"**{c.name}**" if c.name == best else c.name
        lines.append(
            f"| {name} | {100 * c.test_accuracy:.2f}% | {c.test_errors} | {c.test_loss:.4f} | {c.macro_avg.f1:.4f} "
            f"| {c.parameter_count:,} | {100 * peak.val_accuracy:.2f}% ({peak.epoch}) | {c.training_seconds / 60:.1f} min |"
        )
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
    low = min(min(e.val_accuracy for e in c.history[len(c.history) // 10 :]) for c in cards)
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
    """Write curves.png, confusion.png, misclassified.png (if MNIST is at hand) and results.md."""
    import matplotlib

    matplotlib.use("Agg")
    cards = load_cards(store)
    if not cards:
        raise FileNotFoundError(f"no model cards in {store}")
    out.mkdir(parents=True, exist_ok=True)
    best = best_card(cards)
    written = [out / "curves.png", out / "confusion.png"]
    plot_curves(cards, written[0])
    plot_confusion(best, written[1])
    images = _test_images_matching(best, data_dir)
    if images is not None:
        written.append(out / "misclassified.png")
        plot_misclassified(best, images, written[-1])
    table = out / "results.md"
    table.write_text(results_table(cards), encoding="utf-8")
    written.append(table)
    return written
