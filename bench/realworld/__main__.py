"""`python -m bench.realworld`: the user-style evaluation (see bench/realworld/evaluate.py)."""

import sys

from bench.realworld.evaluate import main

if __name__ == "__main__":
    sys.exit(main())
