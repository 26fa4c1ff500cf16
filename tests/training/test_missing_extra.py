"""`digit-training` installed without the `train` extra (`pip install 'digit-serving[serve]'`): the
console script is there, its dependencies are not. It must say which extra to install."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

# Run the CLI as if TensorFlow and Keras were not installed (None in sys.modules: import fails).
WITHOUT_TENSORFLOW = """
import sys
for name in ("tensorflow", "keras", "tf2onnx"):
    sys.modules[name] = None
from training.__main__ import main
raise SystemExit(main(sys.argv[1:]))
"""


def test_a_missing_training_dependency_names_the_extra(tmp_path: Path) -> None:
    result = subprocess.run(  # noqa: S603 (our own interpreter and fixed arguments)
        [sys.executable, "-c", WITHOUT_TENSORFLOW, "train", "--variants", "mlp", "--epochs", "1",
         "--data-dir", str(REPO / "tests" / "data" / "mnist-sample"), "--store", str(tmp_path / "store")],
        cwd=REPO, capture_output=True, text=True, timeout=120, check=False,
    )
    assert result.returncode == 2, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: the training commands need the `train` extra (")
    assert last.endswith("is not installed): pip install 'digit-serving[train]'")
    assert "Traceback" not in result.stderr
