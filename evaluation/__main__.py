"""`python -m evaluation`: the user-style evaluation (see evaluation/evaluate.py)."""

import sys

from evaluation.evaluate import main

if __name__ == "__main__":
    sys.exit(main())
