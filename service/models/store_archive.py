"""`python -m service store pack|fetch|verify|add`: a model store as one archive, for installed users
(`add`, your own ONNX model into a store, is `service.models.store_add`).

`pip install 'digit-serving[serve]'` installs the code, not the models: the store (`model_store/`,
21 MB) lives in the repository, beside the package. This command moves a store as one `.tar.gz`:

- `pack` (maintainers, from a checkout) writes a reproducible archive of a store (sorted members,
  no owners, no timestamps: the same store gives the same bytes, so its SHA-256 can be checked
  against a checkout) and prints its SHA-256, to be published beside it;
- `fetch` (users) takes that archive from a path or a URL (`https://`, `file://`), refuses it
  unless its SHA-256 is the one given, unpacks it safely (no absolute paths, links or `..`), checks
  every model file against the SHA-256 on its card, and only then moves the store into place;
- `verify` checks a store's model files against their cards.

The repository publishes no archive of its own yet: until a release carries one, `pack` it from a
checkout (README, "Deploying").
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import shutil
import sys
import tarfile
import tempfile
import urllib.parse
import urllib.request
from collections.abc import Sequence
from pathlib import Path

from digit_contract.store import CARD_FILE, MODEL_FILE, scan_store, version_dir

MAX_ARCHIVE_BYTES = 1024 * 1024 * 1024
"""Largest archive `fetch` reads (the store is 21 MB; this bounds a wrong URL, not a real store)."""

_STAGING_PREFIX = ".incomplete-"


class ArchiveError(Exception):
    """The archive or the store cannot be used; `str()` says why."""


def _members(store: Path) -> list[Path]:
    """Every file of the store, sorted, without half-written versions or caches."""
    files = []
    for path in sorted(store.rglob("*")):
        relative = path.relative_to(store)
        if any(part.startswith((_STAGING_PREFIX, ".")) or part == "__pycache__" for part in relative.parts):
            continue
        if path.is_file():
            files.append(relative)
    return files


def pack(store: Path, out: Path) -> str:
    """Write `store` as a reproducible `.tar.gz` at `out`; its SHA-256 (hex).

    Raises:
        ArchiveError: `store` holds no model, or one of its models does not match its card.
    """
    problems = verify(store)
    if problems:
        raise ArchiveError(f"the store {store} does not verify: {'; '.join(problems)}")
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for relative in _members(store):
            data = (store / relative).read_bytes()
            info = tarfile.TarInfo(relative.as_posix())
            info.size, info.mode, info.mtime = len(data), 0o644, 0
            archive.addfile(info, io.BytesIO(data))
    compressed = gzip.compress(buffer.getvalue(), compresslevel=9, mtime=0)
    out.write_bytes(compressed)
    return hashlib.sha256(compressed).hexdigest()


def verify(store: Path) -> list[str]:
    """What is wrong with the store's model files against their cards (empty: all match)."""
    listing = scan_store(store)
    if not listing.versions:
        return [f"no models in {store}"]
    problems = [f"{name}: its directory cannot be read ({why})" for name, why in listing.unreadable.items()]
    for name, versions in listing.versions.items():
        for version in versions:
            directory = version_dir(store, name, version)
            try:
                recorded = json.loads((directory / CARD_FILE).read_text())["onnx"]
                data = (directory / MODEL_FILE).read_bytes()
            except (OSError, ValueError, KeyError, TypeError) as exc:
                problems.append(f"{name} v{version}: {MODEL_FILE} or {CARD_FILE} unreadable ({type(exc).__name__})")
                continue
            if hashlib.sha256(data).hexdigest() != recorded.get("sha256"):
                problems.append(f"{name} v{version}: {MODEL_FILE} does not match the SHA-256 on its card")
    return problems


def _read_source(source: str) -> bytes:
    """The archive's bytes from a path, a `file://` URL or an `http(s)://` URL (bounded in size)."""
    scheme = urllib.parse.urlsplit(source).scheme
    if scheme in ("", "file") or len(scheme) == 1:  # a path (a one-letter scheme is a Windows drive)
        path = Path(urllib.request.url2pathname(urllib.parse.urlsplit(source).path)) if scheme == "file" else Path(source)
        try:
            if path.stat().st_size > MAX_ARCHIVE_BYTES:
                raise ArchiveError(f"{path} is over {MAX_ARCHIVE_BYTES:,} bytes: not a model store archive")
            return path.read_bytes()
        except OSError as exc:
            raise ArchiveError(f"cannot read {path} ({exc.strerror or type(exc).__name__})") from exc
    if scheme not in ("http", "https"):
        raise ArchiveError(f"unsupported source {source!r}: give a path, a file:// or an https:// URL")
    try:
        with urllib.request.urlopen(source, timeout=60) as response:  # noqa: S310 (scheme checked above)
            data: bytes = response.read(MAX_ARCHIVE_BYTES + 1)
    except OSError as exc:
        raise ArchiveError(f"cannot download {source} ({exc})") from exc
    if len(data) > MAX_ARCHIVE_BYTES:
        raise ArchiveError(f"{source} is over {MAX_ARCHIVE_BYTES:,} bytes: not a model store archive")
    return data


def fetch(source: str, sha256: str, to: Path) -> list[str]:
    """Unpack the archive at `source` into a new store at `to`, once it and every model check out.

    Returns:
        The names of the models in the new store.

    Raises:
        ArchiveError: the archive's SHA-256 differs from `sha256`, it is not a safe tar.gz, a model
            does not match its card, or `to` exists and is not empty. Nothing is left at `to` then.
    """
    if to.exists() and (not to.is_dir() or any(to.iterdir())):
        raise ArchiveError(f"{to} already exists and is not an empty directory: give a new one")
    data = _read_source(source)
    digest = hashlib.sha256(data).hexdigest()
    if digest != sha256.strip().lower():
        raise ArchiveError(f"the archive's SHA-256 is {digest}, not the expected {sha256.strip()}: refused")
    to.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=_STAGING_PREFIX, dir=to.parent))
    try:
        try:
            with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as archive:
                # The "data" filter refuses absolute paths, `..`, links out of the tree and devices.
                archive.extractall(staging, filter="data")
        except (tarfile.TarError, OSError, EOFError) as exc:
            raise ArchiveError(f"the archive cannot be unpacked safely ({exc})") from exc
        problems = verify(staging)
        if problems:
            raise ArchiveError(f"the archive's store does not verify: {'; '.join(problems)}")
        if to.exists():
            to.rmdir()  # empty, checked above
        staging.rename(to)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return sorted(scan_store(to).versions)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m service store", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    fetch_cmd = commands.add_parser("fetch", help="unpack a store archive, checked by its SHA-256 and its cards")
    fetch_cmd.add_argument("--from", dest="source", required=True, help="archive path, or file:// or https:// URL")
    fetch_cmd.add_argument("--sha256", required=True, help="the archive's SHA-256, as published beside it")
    fetch_cmd.add_argument("--to", type=Path, required=True, help="new directory for the store")
    pack_cmd = commands.add_parser("pack", help="write a store as a reproducible .tar.gz and print its SHA-256")
    pack_cmd.add_argument("--store", type=Path, default=Path("model_store"), help="store to pack (default ./model_store)")
    pack_cmd.add_argument("--out", type=Path, required=True, help="archive to write (.tar.gz)")
    verify_cmd = commands.add_parser("verify", help="check every model file of a store against its card")
    verify_cmd.add_argument("store", type=Path)
    from service.models.store_add import add_arguments

    add_arguments(commands.add_parser("add", help="add your own ONNX digit classifier: checked, evaluated on the "
                                      "matching test set, with a card and config.pbtxt (needs .venv)"))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from service.models.store_add import AddError, run

    args = build_parser().parse_args(argv)
    try:
        if args.command == "add":
            print(run(args))
        elif args.command == "pack":
            digest = pack(args.store, args.out)
            print(f"{digest}  {args.out}")
        elif args.command == "fetch":
            names = fetch(args.source, args.sha256, args.to)
            print(f"{len(names)} models in {args.to} ({', '.join(names)}), each checked against its card; "
                  f"serve them with: python -m service --model-store {args.to}")
        else:
            problems = verify(args.store)
            if problems:
                raise ArchiveError("; ".join(problems))
            print(f"{args.store}: every model file matches its card")
    except (ArchiveError, AddError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
