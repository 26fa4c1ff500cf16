"""The zoo's one ranking rule: which model is best, and which are tied with it.

Two questions, answered here once for the service, the report and the bench:

- an order, for picking one model (the default model, the "best" of a list): higher test accuracy,
  then lower test loss, then name, so the order never depends on a mapping's; where accuracy on the
  user-style validation uploads is given, it comes first;
- ranks, for saying who is better: models are ranked only against models scored on the same test
  images (`same_test_set`), by an exact McNemar test on each pair's per-image correctness (the
  `misclassified` lists of their cards), Holm-adjusted over every pair of the group. A model's rank
  is 1 + the number of models significantly more accurate than it, so models whose difference is
  not significant share a rank: `tied_with` names them. An accuracy on 360 8x8 test images and one
  on 10,000 MNIST test images are different measurements: such models are never ranked together.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from digit_contract.card import ModelCard
from digit_contract.statistics import ALPHA, McNemarResult, compare_paired, holm_adjust

TestSet = tuple[str, int, tuple[tuple[str, str], ...]]
"""(dataset name, number of test images, the dataset files' SHA-256): what `same_test_set` compares."""


def test_set_of(card: ModelCard) -> TestSet:
    """The test images a card's figures were measured on (the files they came from, and how many)."""
    return card.dataset.name, card.dataset.test_samples, tuple(sorted(card.dataset.file_sha256.items()))


def same_test_set(a: ModelCard, b: ModelCard) -> bool:
    """Whether two cards were scored on the same test images, so that a paired test applies."""
    return test_set_of(a) == test_set_of(b)


def order_key(card: ModelCard) -> tuple[float, float, str]:
    """Sort key, best first: higher test accuracy, then lower test loss, then name."""
    return -card.test_accuracy, card.test_loss, card.name


def rank_cards(cards: Mapping[str, ModelCard], uploads: Mapping[str, float] | None = None) -> list[str]:
    """Names, best first: by accuracy on the validation uploads when given (models without one
    last), then test set (the largest first: an accuracy on 360 8x8 images does not outrank one on
    10,000 MNIST images, so the default model is one of the largest test set's), then `order_key`."""
    scores = uploads or {}
    sets = sorted({test_set_of(c) for c in cards.values()}, key=_test_set_order)
    return sorted(cards, key=lambda name: (-scores.get(name, 0.0), sets.index(test_set_of(cards[name])),
                                           -cards[name].test_accuracy, cards[name].test_loss, name))


def _test_set_order(key: TestSet) -> tuple[int, str, tuple[tuple[str, str], ...]]:
    return -key[1], key[0], key[2]


def group_by_test_set(cards: Mapping[str, ModelCard]) -> list[list[str]]:
    """Names grouped by test set, each group in `rank_cards` order; the group with the most test
    images first (MNIST's 10,000 before UCI's 360), then by dataset name."""
    groups: dict[TestSet, list[str]] = {}
    for name in rank_cards(cards):
        groups.setdefault(test_set_of(cards[name]), []).append(name)
    return [groups[key] for key in sorted(groups, key=_test_set_order)]


@dataclass(frozen=True)
class PairedTests:
    """Exact McNemar tests of pairs of models on the same test set, Holm-adjusted together."""

    tests: dict[tuple[str, str], McNemarResult]
    adjusted: dict[tuple[str, str], float]

    def _key(self, a: str, b: str) -> tuple[str, str] | None:
        return (a, b) if (a, b) in self.tests else (b, a) if (b, a) in self.tests else None

    def significant(self, a: str, b: str) -> bool:
        key = self._key(a, b)
        return key is not None and self.adjusted[key] < ALPHA

    def errors_delta(self, a: str, b: str) -> int:
        """(errors of a) - (errors of b), counted on the images exactly one of them got right."""
        key = self._key(a, b)
        if key is None:
            raise KeyError(f"{a} and {b} were not compared")
        test = self.tests[key]
        return test.only_b - test.only_a if key == (a, b) else test.only_a - test.only_b


def paired_tests(cards: Mapping[str, ModelCard], pairs: Iterable[tuple[str, str]]) -> PairedTests:
    """McNemar on every pair scored on the same test set (other pairs are left out), Holm over them."""
    tests = {
        (a, b): compare_paired([m.index for m in cards[a].misclassified], [m.index for m in cards[b].misclassified])
        for a, b in pairs
        if same_test_set(cards[a], cards[b])
    }
    keys = list(tests)
    adjusted = dict(zip(keys, holm_adjust([tests[k].p_value for k in keys]), strict=True))
    return PairedTests(tests, adjusted)


@dataclass(frozen=True)
class Rank:
    name: str
    rank: int
    """1 + the number of models of the same test set significantly more accurate than this one."""
    tied_with: tuple[str, ...]
    """Models of the same test set whose accuracy is not significantly different."""


@dataclass(frozen=True)
class Ranking:
    """Ranks within noise, per test set."""

    groups: list[list[str]]
    """Names per test set, each in `rank_cards` order (see `group_by_test_set`)."""
    ranks: dict[str, Rank]
    pairs: PairedTests
    """Every within-group pair; Holm-adjusted per group."""

    def best(self, group: int = 0) -> str | None:
        """The first of a group by the order (the one to pick); None for an empty ranking."""
        return self.groups[group][0] if len(self.groups) > group else None

    def tied_for_best(self, group: int = 0) -> list[str]:
        """The group's models at rank 1, in order: the best and those not significantly worse."""
        if len(self.groups) <= group:
            return []
        return [name for name in self.groups[group] if self.ranks[name].rank == 1]


def rank_within_noise(cards: Mapping[str, ModelCard]) -> Ranking:
    """Rank `cards` per test set: McNemar over every pair of a group, Holm over that group's pairs."""
    groups = group_by_test_set(cards)
    tests: dict[tuple[str, str], McNemarResult] = {}
    adjusted: dict[tuple[str, str], float] = {}
    ranks: dict[str, Rank] = {}
    for group in groups:
        pairs = paired_tests(cards, itertools.combinations(group, 2))
        tests.update(pairs.tests)
        adjusted.update(pairs.adjusted)
        for name in group:
            others = [o for o in group if o != name]
            better = [o for o in others if pairs.significant(o, name) and pairs.errors_delta(o, name) < 0]
            ranks[name] = Rank(name, 1 + len(better), tuple(o for o in others if not pairs.significant(o, name)))
    return Ranking(groups, ranks, PairedTests(tests, adjusted))


def best_card(cards: Iterable[ModelCard]) -> ModelCard:
    """The model to show as best among cards of one test set: the first by `order_key`."""
    chosen = list(cards)
    if not chosen:
        raise ValueError("no cards to choose from")
    if len({test_set_of(c) for c in chosen}) > 1:
        raise ValueError("accuracies on different test sets are not comparable: choose within one test set")
    return min(chosen, key=order_key)
