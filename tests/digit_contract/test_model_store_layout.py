"""The store layout: integer versions, and versions that appear atomically or not at all."""

from __future__ import annotations

from pathlib import Path

import pytest

from digit_contract.store import (
    CARD_FILE,
    VersionConflict,
    latest_cards,
    latest_version,
    latest_versions,
    list_models,
    list_versions,
    publish_version,
    version_dir,
)
from tests.factories import make_card


def write_files(staging: Path, version: int) -> None:
    (staging / "model.onnx").write_bytes(b"onnx")
    (staging / "card.json").write_text(f'{{"version": {version}}}')


def test_versions_are_numbered_from_one(tmp_path: Path) -> None:
    first = publish_version(tmp_path, "cnn", write_files)
    second = publish_version(tmp_path, "cnn", write_files)
    assert (first, second) == (tmp_path / "cnn" / "1", tmp_path / "cnn" / "2")
    assert (second / "card.json").read_text() == '{"version": 2}'
    assert list_models(tmp_path) == {"cnn": [1, 2]}
    assert latest_version(tmp_path, "cnn") == 2
    assert version_dir(tmp_path, "cnn", 2) == second


def test_failed_build_leaves_no_version_and_no_staging(tmp_path: Path) -> None:
    def half_then_crash(staging: Path, version: int) -> None:
        (staging / "model.onnx").write_bytes(b"half")
        raise RuntimeError("exporter died")

    with pytest.raises(RuntimeError, match="exporter died"):
        publish_version(tmp_path, "mlp", half_then_crash)
    assert list((tmp_path / "mlp").iterdir()) == []
    assert list_models(tmp_path) == {}


def test_interrupted_write_is_invisible_to_readers(tmp_path: Path) -> None:
    publish_version(tmp_path, "mlp", write_files)
    # What a killed trainer leaves behind: a hidden staging directory with partial content.
    leftover = tmp_path / "mlp" / ".incomplete-0123"
    leftover.mkdir()
    (leftover / "model.onnx").write_bytes(b"half")
    (tmp_path / "mlp" / "notes").mkdir()
    assert list_versions(tmp_path, "mlp") == [1]
    assert publish_version(tmp_path, "mlp", write_files).name == "2"


def test_version_seen_during_build_is_the_one_published(tmp_path: Path) -> None:
    seen: list[tuple[int, bool]] = []

    def build(staging: Path, version: int) -> None:
        seen.append((version, version_dir(tmp_path, "cnn", version).exists()))
        write_files(staging, version)

    publish_version(tmp_path, "cnn", build)
    assert seen == [(1, False)]  # not visible until the build has finished


def test_concurrent_writer_taking_the_number_is_a_conflict(tmp_path: Path) -> None:
    def build_while_another_publishes(staging: Path, version: int) -> None:
        write_files(staging, version)
        publish_version(tmp_path, "cnn", write_files)  # takes version 1 first

    with pytest.raises(VersionConflict, match="cnn version 1 was published by another writer meanwhile"):
        publish_version(tmp_path, "cnn", build_while_another_publishes)
    assert list_versions(tmp_path, "cnn") == [1]
    assert [p.name for p in (tmp_path / "cnn").iterdir()] == ["1"]


def test_the_latest_version_of_each_model_is_its_highest_number(tmp_path: Path) -> None:
    for name, versions in {"cnn": (2, 10, 9), "mlp": (1,)}.items():
        for version in versions:
            version_dir(tmp_path, name, version).mkdir(parents=True)
    (tmp_path / "cnn" / ".incomplete-abc").mkdir()  # a writer mid-publish, and stray entries
    (tmp_path / "cnn" / "11.bak").mkdir()
    (tmp_path / "cnn" / "12").write_text("a file, not a version")
    (tmp_path / "empty").mkdir()
    assert latest_versions(tmp_path) == {"cnn": 10, "mlp": 1}
    assert latest_versions(tmp_path / "absent") == {}


def test_latest_cards_reads_each_models_latest_card(tmp_path: Path) -> None:
    for name, version in (("mlp", 1), ("mlp", 2), ("cnn", 1)):
        version_dir(tmp_path, name, version).mkdir(parents=True)
        make_card(name, version).write(version_dir(tmp_path, name, version) / CARD_FILE)
    assert {name: card.version for name, card in latest_cards(tmp_path).items()} == {"cnn": 1, "mlp": 2}
