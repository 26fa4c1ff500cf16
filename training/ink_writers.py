"""Writers who are not MNIST's: handwriting fonts from Debian's packages and the UCI digits' 43 writers.

Renderer A (`training.ink_scenes`) draws its scenes with them, and the user-style evaluation
(`evaluation.sources`) with their held-out parts: one list of fonts, one UCI split.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray


@dataclass(frozen=True)
class HandwritingFont:
    """A handwriting-style font that a Debian package installs."""

    package: str
    path: str


HANDWRITING_FONTS = (
    HandwritingFont("fonts-dkg-handwriting", "/usr/share/fonts/truetype/fifthhorseman/dkg.ttf"),
    HandwritingFont("fonts-dkg-handwriting", "/usr/share/fonts/truetype/fifthhorseman/dkgIt.ttf"),
    HandwritingFont("fonts-breip", "/usr/share/fonts/truetype/breip/Breip.ttf"),
    HandwritingFont("fonts-humor-sans", "/usr/share/fonts/truetype/humor-sans/Humor-Sans.ttf"),
    HandwritingFont("fonts-kristi", "/usr/share/fonts/truetype/kristi/Kristi.ttf"),
    HandwritingFont("fonts-comic-neue", "/usr/share/fonts/opentype/comic-neue/ComicNeue-Regular.otf"),
    HandwritingFont("fonts-dancingscript", "/usr/share/fonts/opentype/dancingscript/DancingScript-Regular.otf"),
    *(
        HandwritingFont("fonts-bwht", f"/usr/share/fonts/opentype/bwht/BecauseWe{name}-Regular.otf")
        for name in ("Build", "Connect", "Create", "Learn", "Mentor", "Organize")
    ),
)
"""Fonts whose digits look written by hand (checked by eye: fonts-femkeklaver is an outline font
and fonts-ecolier-court draws faint double strokes, so both are left out)."""

FONT_PACKAGES = tuple(sorted({font.package for font in HANDWRITING_FONTS}))
"""`apt-get install -y` these for the font digits (CI included)."""

UCI_TEST_SIZE, UCI_SPLIT_SEED = 0.2, 42
"""The 8x8 models' split of `load_digits` (seed 002's): 1,437 training digits, 360 test digits."""


def uci_split(part: str) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    """The UCI digits' `train` or `test` part as (N, 8, 8) block counts 0-16 and labels."""
    from sklearn.datasets import load_digits  # scikit-learn is heavy: only import it when used
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    train_x, test_x, train_y, test_y = train_test_split(
        digits.images, digits.target, test_size=UCI_TEST_SIZE, random_state=UCI_SPLIT_SEED
    )
    return (train_x, train_y.astype(np.int64)) if part == "train" else (test_x, test_y.astype(np.int64))
