"""`python -m bench.renderer_d render|evaluate`: render the set once, or score a running service on it."""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

TMP = Path(tempfile.gettempdir())


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and run the chosen step."""
    parser = argparse.ArgumentParser(prog="python -m bench.renderer_d", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    r = sub.add_parser("render", help="render the evaluation set into a folder")
    r.add_argument("--out", type=Path, default=TMP / "rd_full")
    r.add_argument("--per-condition", type=int, default=None, help="render only the first N of each condition")
    r.add_argument("--only", nargs="*", default=None, help="condition names to render")
    e = sub.add_parser("evaluate", help="post a rendered set to a running service and write the report")
    e.add_argument("--data", type=Path, default=TMP / "rd_full")
    e.add_argument("--out", type=Path, default=TMP / "rd_eval")
    e.add_argument("--url", default="http://127.0.0.1:18299")
    e.add_argument("--limit", type=int, default=None, help="evaluate N uploads spread evenly over the set")
    e.add_argument("--model", default=None, help="?model= for every request (default: the service's default)")
    e.add_argument("--timeout", type=float, default=60.0)
    args = parser.parse_args(argv)
    if args.command == "render":
        from bench.renderer_d.render import render_all

        stats = render_all(args.out, args.per_condition, set(args.only) if args.only else None)
        print(json.dumps({k: v for k, v in stats.items() if k != "per_condition"}))
        return 0
    from bench.renderer_d.evaluate import evaluate

    summary = evaluate(args.data, args.out, args.url, args.limit, args.model, args.timeout)
    print(json.dumps(summary["headline"], indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
