"""Renderer B's command line.

    python -m bench.renderer_b render --out /tmp/renderer_b [--per-condition 40] [--seed 0] [--only COND ...]
    python -m bench.renderer_b evaluate --uploads /tmp/renderer_b --url http://127.0.0.1:8000 \
        [--model NAME ...] [--out bench/results/renderer_b] [--limit N]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from pathlib import Path

from bench.renderer_b.dataset import DEFAULT_PER_CONDITION, render_all

# Outside git on purpose: the rendered set is about 550 MB of files nobody should commit.
DEFAULT_DIR = Path("/tmp/renderer_b")  # noqa: S108


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.renderer_b", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    sub = parser.add_subparsers(dest="command", required=True)
    r = sub.add_parser("render", help="render the uploads and manifest.json")
    r.add_argument("--out", type=Path, default=DEFAULT_DIR, help="output folder (default /tmp/renderer_b)")
    r.add_argument("--per-condition", type=int, default=DEFAULT_PER_CONDITION,
                   help="MNIST digits per photo condition (default 40); the other families scale with it")  # fmt: skip
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--only", nargs="+", metavar="COND", help="render only these conditions (same bytes as a full run)")
    e = sub.add_parser("evaluate", help="send the uploads to /predict and write the report")
    e.add_argument("--uploads", type=Path, default=DEFAULT_DIR)
    e.add_argument("--url", required=True, help="the service, e.g. http://127.0.0.1:8000")
    e.add_argument("--model", nargs="+", default=None, help="models to ask (default: the service's upload default)")
    e.add_argument("--out", type=Path, default=Path("bench/results/renderer_b"))
    e.add_argument("--limit", type=int, default=None, help="only N uploads, spread over the conditions (smoke test)")
    e.add_argument("--concurrency", type=int, default=2, help="requests in flight (at most 2)")
    e.add_argument("--note", default=None, help="a line printed at the top of report.md")
    args = parser.parse_args(argv)

    if args.command == "render":
        t0 = time.perf_counter()
        manifest = render_all(args.out, args.per_condition, args.seed, args.only,
                              progress=lambda m: print(f"renderer_b: {m}", file=sys.stderr))  # fmt: skip
        counts = Counter(u["condition"] for u in manifest["uploads"])
        for cond, n in counts.items():
            print(f"{cond:24s} {n}")
        print(f"{manifest['files']} files in {time.perf_counter() - t0:.0f} s -> {args.out}")
        return 0

    from bench.renderer_b import evaluate

    t0 = time.perf_counter()
    models: list[str | None] = list(args.model) if args.model else [None]
    result = evaluate.run(args.uploads, args.url, models, args.limit, args.concurrency)
    if result["records"] and all(r["status"] == 0 for r in result["records"]):
        print(f"renderer_b: no answer from {args.url} (is the service running?); no report written", file=sys.stderr)
        return 2
    evaluate.write_report(result, args.uploads, args.out, args.url, time.perf_counter() - t0, args.note)
    print((args.out / "report.md").read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
