"""`python -m service` (console script `digit-serving`): run the service with uvicorn."""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, get_args

from pydantic import ValidationError

from service.observability.metrics import MULTIPROC_ENV
from service.settings import ENV_PREFIX, Device, LogLevel, Settings, describe_errors, unknown_variables


def program_name() -> str:
    """`digit-serving` when run as the console script, else `python -m service` (what the user typed)."""
    return "digit-serving" if Path(sys.argv[0]).name == "digit-serving" else "python -m service"


def package_version() -> str:
    """The installed package's version; pyproject's when run from a source tree without installing."""
    try:
        return version("digit-serving")
    except PackageNotFoundError:
        import tomllib

        pyproject = Path(__file__).resolve().parents[1] / "pyproject.toml"
        return str(tomllib.loads(pyproject.read_text())["project"]["version"]) if pyproject.is_file() else "unknown"


def build_parser() -> argparse.ArgumentParser:
    prog = program_name()
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Serve the digit classifiers of a model store over HTTP. Every option defaults to its "
        f"{ENV_PREFIX}* environment variable (e.g. {ENV_PREFIX}PORT), then to the built-in default. "
        f"`{prog} store --help`: get a model store (an installed package has none).",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {package_version()}")
    parser.add_argument("--host", help="interface to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="TCP port (default 8000)")
    parser.add_argument("--workers", type=int, help="worker processes (default 1)")
    parser.add_argument("--grpc-port", type=int, help="port of the Open Inference Protocol's gRPC service (default: off)")
    parser.add_argument("--model-store", type=Path, help="model store directory (default ./model_store)")
    parser.add_argument("--device", type=str.lower, choices=get_args(Device), help="execution provider (default auto)")
    parser.add_argument("--default-model", help="model for requests that name none (default: best test accuracy)")
    parser.add_argument("--log-level", type=str.lower, choices=get_args(LogLevel), help="log level (default info)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments[:1] == ["store"]:
        from service.models.store_archive import main as store_main

        return store_main(arguments[1:])
    args = build_parser().parse_args(arguments)
    overrides: dict[str, Any] = {key: value for key, value in vars(args).items() if value is not None}
    for warning in unknown_variables(os.environ):
        print(f"warning: {warning}", file=sys.stderr)
    try:
        settings = Settings(**overrides)
    except ValidationError as exc:
        print(f"invalid settings: {describe_errors(exc, given_as_flags=overrides)}", file=sys.stderr)
        return 2
    # Uvicorn builds the app in each worker from the environment: hand the command line on that way.
    for key, value in overrides.items():
        os.environ[f"{ENV_PREFIX}{key.upper()}"] = str(value)
    if settings.workers > 1:
        _prepare_multiprocess_metrics()

    from service.server.http_server import serve

    return serve(settings)


def _prepare_multiprocess_metrics() -> None:
    """Give the workers a fresh directory to share metric values through (see `service.observability.metrics`)."""
    directory = os.environ.get(MULTIPROC_ENV)
    if directory:
        # Values of a previous run would be summed into this one's: start from empty.
        for stale in Path(directory).glob("*.db"):
            stale.unlink()
    else:
        directory = tempfile.mkdtemp(prefix="digits-metrics-")
        os.environ[MULTIPROC_ENV] = directory
        import atexit

        atexit.register(shutil.rmtree, directory, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
