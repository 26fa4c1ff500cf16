"""Evaluate the service's preprocessing and every stored model on user-style uploads.

    .venv/bin/python -m evaluation --split validation --data-dir DIR      # tune on this one
    .venv/bin/python -m evaluation --split test --data-dir DIR --grid     # final figures

Builds the set (MNIST digits of the split x every condition of `render.CONDITIONS`, plus the UCI
8x8 digits and handwriting-font digits drawn as a scan, a desk photo and a canvas), sends every
upload's bytes through `service.inference.preparation.prepare_file` exactly as the service would, runs
every model of the store with ONNX Runtime (no HTTP: this measures reading, not serving), and
writes report.md and report.json under --out. An upload that preprocessing refuses (NoInk, ...)
counts as a wrong answer and is counted apart. See evaluation/README.md.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from digit_contract.card import ModelCard
from digit_contract.errors import ServiceError
from digit_contract.inputs import InputSpec
from digit_contract.ranking import rank_cards
from digit_contract.store import (
    CARD_FILE,
    MODEL_FILE,
    UPLOAD_EVALUATION_FILE,
    latest_versions,
    pack_correct,
    read_upload_accuracy,
    version_dir,
)
from digit_frontend.model_input import frame, model_input
from digit_frontend.pipeline import PreparedImage, use_front_end
from digit_frontend.segmenter import InkSegmenter
from evaluation.render import CONDITIONS, Upload, render_upload
from evaluation.sources import SourceUnavailable, font_digits, mnist_split, uci_digits
from service.inference.preparation import prepare_file
from service.settings import Settings

REPO = Path(__file__).resolve().parents[1]

OTHER_WRITER_CONDITIONS = ("scan_grey", "photo_desk", "canvas_black")
"""How the UCI and font digits are drawn: one scan, one photo and one canvas style."""

HEAVY_CONDITIONS = {"photo_12mp": 40}
"""Conditions capped below --per-condition: a 12 MP upload takes ~1 s to render and decode, and
40 of them already show whether the path works."""

CONFIDENT = 0.9
"""A wrong answer given with at least this probability is a confident mistake (issue 8)."""

DEFAULT_MAX_PIXELS: int = Settings.model_fields["max_image_pixels"].default
"""Pixel limit passed to prepare_file: the service's own default (`Settings.max_image_pixels`), so
an upload the service would refuse counts as refused here too."""

SOURCE_SEEDS = {"mnist": 0, "uci": 1, "fonts": 2}
"""Each source gets its own seed stream, so adding one source does not change another's uploads."""


@dataclass(frozen=True)
class Job:
    """One upload to render and prepare: which digit, how drawn, with which seed."""

    source: str
    condition: str
    index: int
    label: int
    ink: NDArray[np.uint8]
    seed: tuple[int, ...]


@dataclass
class Outcome:
    """What preprocessing made of one upload."""

    source: str
    condition: str
    label: int
    prepared: PreparedImage | None
    """What the model sees (`.pixels`, 28x28 white on black); None when preprocessing refused."""
    error: str | None
    prepare_ms: float
    size_bytes: int
    upload: Upload | None = None
    """Kept only for the picture grid's samples (the bytes of thousands of photos are not)."""


@dataclass
class Results:
    """Predictions per model, aligned with the outcomes."""

    outcomes: list[Outcome]
    models: list[str]
    default_model: str
    predictions: dict[str, NDArray[np.int64]] = field(default_factory=dict)
    confidences: dict[str, NDArray[np.float32]] = field(default_factory=dict)
    onnx_sha256: dict[str, str] = field(default_factory=dict)
    """Per model, the hash of the ONNX file that answered (its card's)."""


# -- building and preparing ---------------------------------------------------------------------


def build_jobs(args: argparse.Namespace) -> tuple[list[Job], list[str]]:
    """Every upload of the run, and notes on sources that were skipped."""
    jobs: list[Job] = []
    notes: list[str] = []
    base = args.seed
    for c, condition in enumerate(CONDITIONS):
        count = min(args.per_condition, HEAVY_CONDITIONS.get(condition, args.per_condition))
        # A different draw of digits per condition: the per-condition figures are then
        # independent samples, not the same 200 digits again.
        images, labels = mnist_split(args.data_dir, args.split, count, seed=base * 1000 + c)
        for i, (ink, label) in enumerate(zip(images, labels, strict=True)):
            jobs.append(Job("mnist", condition, i, int(label), ink, (base, SOURCE_SEEDS["mnist"], c, i)))
    others: list[tuple[str, Any]] = [("uci", lambda: uci_digits(args.per_source, seed=base))]
    others.append(("fonts", font_digits))
    for source, load in others:
        try:
            images, labels = load()
        except SourceUnavailable as exc:
            notes.append(f"{source} skipped: {exc}")
            print(f"note: {source} skipped: {exc}", file=sys.stderr)
            continue
        if len(images) > args.per_source:
            keep = np.sort(np.random.default_rng(base).choice(len(images), size=args.per_source, replace=False))
            images, labels = [images[k] for k in keep], labels[keep]
        for i, (ink, label) in enumerate(zip(images, labels, strict=True)):
            # Each digit drawn in one of the styles, in turn, so every style gets a third.
            c = i % len(OTHER_WRITER_CONDITIONS)
            condition = OTHER_WRITER_CONDITIONS[c]
            jobs.append(Job(source, condition, i, int(label), ink, (base, SOURCE_SEEDS[source], c, i)))
    return jobs, notes


def prepare_job(job: Job, max_pixels: int, keep_upload: bool) -> Outcome:
    """Render one upload and prepare it the way the service does; time the preparation only."""
    upload = render_upload(job.ink, job.condition, np.random.default_rng(list(job.seed)))
    start = time.perf_counter()
    prepared: PreparedImage | None = None
    error: str | None = None
    try:
        prepared = prepare_file(upload.data, {"mnist"}, max_pixels=max_pixels).image
    except ServiceError as exc:
        error = type(exc).__name__
    elapsed = (time.perf_counter() - start) * 1000.0
    return Outcome(job.source, job.condition, job.label, prepared, error, elapsed, len(upload.data), upload if keep_upload else None)


def _prepare_star(task: tuple[Job, int, bool]) -> Outcome:
    return prepare_job(*task)


def prepare_all(jobs: Sequence[Job], *, max_pixels: int, workers: int, front_end: FrontEndChoice) -> list[Outcome]:
    """Prepare every upload, in up to `workers` processes (order kept); the first of each
    (source, condition) keeps its upload for the picture grid."""
    seen: set[tuple[str, str]] = set()
    tasks = []
    for job in jobs:
        key = (job.source, job.condition)
        tasks.append((job, max_pixels, key not in seen))
        seen.add(key)
    outcomes: list[Outcome] = []
    started = time.monotonic()
    for k, outcome in enumerate(_map(tasks, workers, front_end)):
        outcomes.append(outcome)
        if (k + 1) % 500 == 0:
            print(f"  {k + 1}/{len(tasks)} uploads prepared ({time.monotonic() - started:.0f} s)", file=sys.stderr)
    return outcomes


def _map(tasks: list[tuple[Job, int, bool]], workers: int, front_end: FrontEndChoice) -> Iterator[Outcome]:
    if workers <= 1:
        _init_worker(front_end)
        yield from map(_prepare_star, tasks)
        return
    # Each process keeps OpenCV to one thread: the machine's cores are the pool's, not cv2's.
    with multiprocessing.get_context("spawn").Pool(workers, initializer=_init_worker, initargs=(front_end,)) as pool:
        yield from pool.imap(_prepare_star, tasks, chunksize=8)


FrontEndChoice = tuple[str, Path]
"""("learned" or "classical", the store whose segmenter `learned` uses)."""


def _init_worker(front_end: FrontEndChoice) -> None:
    """One thread for OpenCV, and the front end the service would use (`service.models.front_end`)."""
    import cv2

    cv2.setNumThreads(1)
    kind, store = front_end
    segmenter = InkSegmenter.from_store(store) if kind == "learned" else None
    if kind == "learned" and segmenter is None:
        raise SystemExit(f"--front-end learned: no ink segmenter in {store}/frontend")
    use_front_end(segmenter)


# -- models -------------------------------------------------------------------------------------


def store_models(store: Path) -> dict[str, Path]:
    """The latest version's ONNX file of every model in the store."""
    return {name: version_dir(store, name, version) / "model.onnx" for name, version in latest_versions(store).items()}


def default_model(store: Path, names: Sequence[str]) -> str:
    """The model the service gives image uploads that name none (`digit_contract.ranking.rank_cards` over the
    store's cards and its recorded validation-upload accuracy, as the registry does)."""
    latest = latest_versions(store)
    cards = {name: ModelCard.read(version_dir(store, name, latest[name]) / CARD_FILE) for name in names if name in latest}
    uploads = {name: value for name, value in read_upload_accuracy(store).items() if name in cards}
    return rank_cards(cards, uploads)[0]


def record_upload_accuracy(report: dict[str, Any], store: Path, results: Results | None = None) -> Path:
    """Write the validation run's accuracy on the MNIST-digit uploads into the store, where the
    service reads it to choose the model for image uploads (`digit_contract.store.UPLOAD_EVALUATION_FILE`).

    With `results`, the record also keeps which uploads each model read right (one bit per upload,
    the same uploads in the same order for every model) and the hash of each scored ONNX file, so
    that the comparison can test two models' difference on these uploads pair by pair.

    Only the validation split may rank models: the test split is for the final figures alone.
    """
    if report["split"] != "validation":
        raise ValueError("only a validation run may be recorded: the test split is for the final figures")
    mnist = report["sources"]["mnist"]
    record: dict[str, Any] = {
        "split": "validation",
        "what": "accuracy on user-style uploads rendered from the MNIST validation split, every condition",
        "command": "python -m evaluation --split validation --record",
        "seed": report["seed"],
        "per_condition": report["per_condition"],
        "uploads": mnist["count"],
        "created": report["created"],
        "accuracy": {name: round(float(value), 5) for name, value in sorted(mnist["accuracy"].items())},
    }
    if results is not None:
        mnist_uploads = np.array([o.source == "mnist" for o in results.outcomes], dtype=bool)
        right = correct_answers(results)
        record["onnx_sha256"] = {name: results.onnx_sha256[name] for name in sorted(right)}
        record["correct"] = {name: pack_correct(right[name][mnist_uploads]) for name in sorted(right)}
    path = store / UPLOAD_EVALUATION_FILE
    path.write_text(json.dumps(record, indent=1) + "\n")
    return path


def model_inputs(outcomes: Sequence[Outcome], spec: InputSpec) -> tuple[NDArray[np.float32], NDArray[np.bool_]]:
    """Every upload as `spec`'s model takes it, framed and batched as the service does
    (`digit_frontend.model_input`), and which uploads could be framed for it.

    An upload that preprocessing refused, or that the model's encoding cannot frame (a digit too
    small for the 8x8 blocks), gets a blank input and is marked unframed.
    """
    batch = np.zeros((len(outcomes), *spec.sample_shape), np.float32)
    framed = np.zeros(len(outcomes), dtype=bool)
    frames = []
    for k, outcome in enumerate(outcomes):
        if outcome.prepared is None:
            continue
        try:
            frames.append(frame(outcome.prepared, spec.encoding))
        except ServiceError:
            continue
        framed[k] = True
    if frames:
        batch[framed] = model_input(frames, spec)
    return batch, framed


def predict_all(results: Results, store: Path, threads: int) -> None:
    """Run every model of the store on every prepared image (ONNX Runtime on the CPU, batches of
    1,024), each fed as its card's input spec says: MNIST's 28x28 framing, flat or not, or the UCI
    8x8 block counts. Every model sees the same uploads, so their answers can be compared pair by pair.
    """
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    latest = latest_versions(store)
    for name in results.models:
        directory = version_dir(store, name, latest[name])
        card = ModelCard.read(directory / CARD_FILE)
        batch, framed = model_inputs(results.outcomes, card.input)
        session = ort.InferenceSession(str(directory / MODEL_FILE), options, providers=["CPUExecutionProvider"])
        probabilities = np.concatenate(
            [session.run(["probabilities"], {"image": batch[k : k + 1024]})[0] for k in range(0, len(batch), 1024)]
        )
        # An upload the model never saw has no answer: -1 matches no label, so it is never right.
        results.predictions[name] = np.where(framed, probabilities.argmax(axis=1), -1).astype(np.int64)
        results.confidences[name] = np.where(framed, probabilities.max(axis=1), 0.0).astype(np.float32)
        results.onnx_sha256[name] = card.onnx.sha256


def correct_answers(results: Results) -> dict[str, NDArray[np.bool_]]:
    """Per model, which uploads it read right, aligned with the outcomes; a refused upload is never right."""
    labels = np.array([o.label for o in results.outcomes])
    refused = np.array([o.error is not None for o in results.outcomes], dtype=bool)
    return {name: (results.predictions[name] == labels) & ~refused for name in results.models}


# -- scoring and the report ---------------------------------------------------------------------


def score(results: Results) -> dict[str, Any]:
    """All the figures of the report, as plain data (report.json)."""
    outcomes = results.outcomes
    labels = np.array([o.label for o in outcomes])
    failed = np.array([o.error is not None for o in outcomes])
    right = correct_answers(results)
    groups: dict[tuple[str, str], list[int]] = defaultdict(list)
    for k, o in enumerate(outcomes):
        groups[(o.source, o.condition)].append(k)
    by_source: dict[str, list[int]] = defaultdict(list)
    for k, o in enumerate(outcomes):
        by_source[o.source].append(k)

    def accuracy(index: Sequence[int], model: str) -> float:
        i = np.asarray(index)
        return float(right[model][i].mean()) if len(i) else float("nan")

    def confident_mistakes(index: Sequence[int], model: str) -> float:
        i = np.asarray(index)
        wrong = (results.predictions[model][i] != labels[i]) & ~failed[i]
        return float((wrong & (results.confidences[model][i] >= CONFIDENT)).mean()) if len(i) else float("nan")

    conditions = []
    for condition in CONDITIONS:
        index = groups.get(("mnist", condition), [])
        if not index:
            continue
        errors = Counter(outcomes[k].error for k in index if outcomes[k].error)
        conditions.append(
            {
                "condition": condition,
                "count": len(index),
                "accuracy": {m: accuracy(index, m) for m in results.models},
                "confident_mistakes": {m: confident_mistakes(index, m) for m in results.models},
                "refused": dict(errors),
                "prepare_ms_median": float(np.median([outcomes[k].prepare_ms for k in index])),
                "prepare_ms_p90": float(np.percentile([outcomes[k].prepare_ms for k in index], 90)),
                "file_kb_median": float(np.median([outcomes[k].size_bytes for k in index]) / 1000),
            }
        )
    sources = {}
    for source, index in by_source.items():
        sources[source] = {
            "count": len(index),
            "accuracy": {m: accuracy(index, m) for m in results.models},
            "confident_mistakes": {m: confident_mistakes(index, m) for m in results.models},
            "refused": int(failed[np.asarray(index)].sum()),
            "by_condition": {
                condition: {m: accuracy(groups[(source, condition)], m) for m in results.models}
                for condition in CONDITIONS
                if groups.get((source, condition))
            },
        }
    return {"conditions": conditions, "sources": sources}


def _pct(value: float) -> str:
    return "n/a" if value != value else f"{100 * value:.1f}%"


def render_markdown(report: dict[str, Any]) -> str:
    """report.md: the tables a reader wants first."""
    models: list[str] = report["models"]
    default = report["default_model"]
    head = "| condition | n | " + " | ".join(f"**{m}**" if m == default else m for m in models) + " | refused | prepare ms (median) |"
    rule = "| --- | ---: | " + " | ".join("---:" for _ in models) + " | ---: | ---: |"
    lines = [
        f"# User-style evaluation: {report['split']} split",
        "",
        f"{report['created']}, seed {report['seed']}, {report['per_condition']} MNIST digits per condition "
        f"(photo_12mp: {HEAVY_CONDITIONS['photo_12mp']}), pipeline `service.inference.preparation.prepare_file` "
        f"with the {report.get('front_end', 'classical')} front end (max_pixels {report['max_pixels']:,}), models from `{report['store']}`; default model **{default}**. "
        "A refused upload (NoInk, ...) counts as wrong.",
        "",
        "## Accuracy per condition (MNIST digits)",
        "",
        head,
        rule,
    ]
    for row in report["conditions"]:
        refused = sum(row["refused"].values())
        cells = " | ".join(_pct(row["accuracy"][m]) for m in models)
        lines.append(f"| {row['condition']} | {row['count']} | {cells} | {refused} | {row['prepare_ms_median']:.1f} |")
    lines += ["", "## Overall", "", "| set | n | " + " | ".join(models) + " |", "| --- | ---: | " + " | ".join("---:" for _ in models) + " |"]
    names = {"mnist": "MNIST digits, all conditions", "uci": "UCI 8x8 digits (43 writers)", "fonts": "handwriting fonts"}
    for source, row in report["sources"].items():
        cells = " | ".join(_pct(row["accuracy"][m]) for m in models)
        lines.append(f"| {names.get(source, source)} | {row['count']} | {cells} |")
    for source, row in report["sources"].items():
        cells = " | ".join(_pct(row["confident_mistakes"][m]) for m in models)
        lines.append(f"| confident mistakes (p >= {CONFIDENT}, wrong), {source} | {row['count']} | {cells} |")
    lines += ["", "## Other writers by style", "", "| source | style | " + " | ".join(models) + " |", "| --- | --- | " + " | ".join("---:" for _ in models) + " |"]
    for source, row in report["sources"].items():
        if source == "mnist":
            continue
        for condition, acc in row["by_condition"].items():
            lines.append(f"| {source} | {condition} | " + " | ".join(_pct(acc[m]) for m in models) + " |")
    lines += ["", "## Preprocessing", "", "| condition | refused (why) | prepare ms median | p90 | file KB median |", "| --- | --- | ---: | ---: | ---: |"]
    for row in report["conditions"]:
        why = ", ".join(f"{k} {v}" for k, v in sorted(row["refused"].items())) or "-"
        lines.append(f"| {row['condition']} | {why} | {row['prepare_ms_median']:.1f} | {row['prepare_ms_p90']:.1f} | {row['file_kb_median']:.0f} |")
    if report["notes"]:
        lines += ["", "## Notes", "", *[f"- {note}" for note in report["notes"]]]
    lines += ["", f"Machine: {report['machine']}. Wall time {report['seconds']:.0f} s.", ""]
    return "\n".join(lines)


# -- the command --------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m evaluation", description=__doc__.split("\n\n")[0])
    parser.add_argument("--split", choices=("validation", "test"), default="validation")
    parser.add_argument("--per-condition", type=int, default=200, help="MNIST digits per condition (200)")
    parser.add_argument("--per-source", type=int, default=600, help="UCI digits and font digits, each (600)")
    parser.add_argument("--data-dir", type=Path, default=None, help="MNIST directory (else MNIST_DIR, then the cache)")
    parser.add_argument("--store", type=Path, default=REPO / "model_store")
    parser.add_argument("--out", type=Path, default=None, help="bench/results/realworld[-validation]")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=2, help="processes for render + prepare (at most 2)")
    parser.add_argument("--max-pixels", type=int, default=DEFAULT_MAX_PIXELS)
    parser.add_argument("--front-end", choices=("learned", "classical"), default="learned",
                        help="find digits with the store's ink segmenter (the service's default) or the classical rules")
    parser.add_argument("--mistakes", type=Path, default=None, metavar="PNG",
                        help="also draw the default model's mistakes (up to 3 per condition) into this PNG")
    parser.add_argument("--record", action="store_true",
                        help="write each model's accuracy into the store (uploads-validation.json), where the "
                        "service reads it to choose the model for image uploads; validation split only")
    parser.add_argument("--grid", nargs="?", type=Path, const=REPO / "docs/realworld/grid.png", default=None,
                        help="also draw the picture grid (default path docs/realworld/grid.png)")
    args = parser.parse_args(argv)
    args.workers = max(1, min(2, args.workers))
    if args.out is None:
        args.out = REPO / ("bench/results/realworld" if args.split == "test" else "bench/results/realworld-validation")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.monotonic()
    paths = store_models(args.store)
    if not paths:
        print(f"no models in {args.store}", file=sys.stderr)
        return 2
    jobs, notes = build_jobs(args)
    print(f"{len(jobs)} uploads ({args.split} split), {args.workers} processes", file=sys.stderr)
    outcomes = prepare_all(jobs, max_pixels=args.max_pixels, workers=args.workers, front_end=(args.front_end, args.store))
    results = Results(outcomes, list(paths), default_model(args.store, list(paths)))
    predict_all(results, args.store, threads=args.workers)
    report: dict[str, Any] = {
        "split": args.split,
        "seed": args.seed,
        "per_condition": args.per_condition,
        "per_source": args.per_source,
        "max_pixels": args.max_pixels,
        "front_end": args.front_end,
        "store": os.path.relpath(args.store, REPO) if args.store.is_relative_to(REPO) else str(args.store),
        "models": results.models,
        "default_model": results.default_model,
        "created": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}",
        "notes": notes,
        **score(results),
    }
    report["seconds"] = time.monotonic() - started
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "report.json").write_text(json.dumps(report, indent=1) + "\n")
    markdown = render_markdown(report)
    (args.out / "report.md").write_text(markdown)
    print(markdown)
    if args.record:
        print(f"recorded: {record_upload_accuracy(report, args.store, results)}", file=sys.stderr)
    if args.grid is not None:
        from evaluation.grid import draw_grid

        draw_grid(results, args.grid, title=f"{args.split} split, seed {args.seed}: ")
        print(f"grid: {args.grid}", file=sys.stderr)
    if args.mistakes is not None:
        from evaluation.grid import draw_grid

        draw_grid(mistakes(results, jobs), args.mistakes, title=f"{args.split} split, mistakes: ")
        print(f"mistakes: {args.mistakes}", file=sys.stderr)
    return 0


def mistakes(results: Results, jobs: Sequence[Job], per_condition: int = 3) -> Results:
    """The default model's wrong answers, up to `per_condition` per (source, condition), with their
    uploads rendered again (the seeds make them the same bytes) for the picture grid."""
    model = results.default_model
    chosen: list[int] = []
    counts: Counter[tuple[str, str]] = Counter()
    for k, outcome in enumerate(results.outcomes):
        key = (outcome.source, outcome.condition)
        wrong = outcome.error is not None or results.predictions[model][k] != outcome.label
        if wrong and counts[key] < per_condition:
            counts[key] += 1
            chosen.append(k)
    outcomes = []
    for k in chosen:
        job, outcome = jobs[k], results.outcomes[k]
        upload = render_upload(job.ink, job.condition, np.random.default_rng(list(job.seed)))
        outcomes.append(Outcome(outcome.source, outcome.condition, outcome.label, outcome.prepared, outcome.error,
                                outcome.prepare_ms, outcome.size_bytes, upload))
    subset = Results(outcomes, results.models, model)
    subset.predictions = {m: p[chosen] for m, p in results.predictions.items()}
    subset.confidences = {m: c[chosen] for m, c in results.confidences.items()}
    return subset

