"""python -m bench.renderer_c {render,evaluate,sheet} ..."""

from __future__ import annotations

import argparse
from pathlib import Path


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m bench.renderer_c", description=__doc__)
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("render", help="render the uploads and labels.jsonl")
    r.add_argument("--out", type=Path, required=True)
    r.add_argument("--seed", type=int, default=20240)
    r.add_argument("--limit", type=int, default=None, help="at most N uploads per condition (smoke runs)")
    r.add_argument("--only", nargs="*", default=None, help="condition names")
    e = sub.add_parser("evaluate", help="send the uploads to the service and write the report")
    e.add_argument("--uploads", type=Path, required=True)
    e.add_argument("--url", required=True)
    e.add_argument("--out", type=Path, default=Path("bench/results/renderer_c"))
    e.add_argument("--limit", type=int, default=None, help="send only the first N uploads (smoke runs)")
    e.add_argument("--concurrency", type=int, default=4)
    e.add_argument("--model", default=None, help="?model=NAME (default: the service's default)")
    e.add_argument("--timeout", type=float, default=60.0)
    s = sub.add_parser("sheet", help="contact sheet of rendered uploads")
    s.add_argument("--uploads", type=Path, required=True)
    s.add_argument("--out", type=Path, required=True)
    s.add_argument("--per", type=int, default=2, help="tiles per condition")
    a = p.parse_args(argv)
    if a.cmd == "render":
        from .render import render_all

        render_all(a.out, a.seed, a.limit, a.only)
    elif a.cmd == "evaluate":
        from .evaluate import evaluate

        evaluate(a.uploads, a.url, a.out, a.limit, a.concurrency, a.model, a.timeout)
    else:
        from .sheet import contact_sheet

        contact_sheet(a.uploads, a.out, a.per)


if __name__ == "__main__":
    main()
