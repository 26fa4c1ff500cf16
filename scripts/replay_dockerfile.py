"""Replay a Dockerfile's steps in a fresh virtual environment and get a prediction, without Docker.

The development and CI machines have no Docker engine, so this proves the image recipe instead:
it reads the Dockerfile and performs its instructions in a temporary directory standing in for the
image's filesystem:

- `FROM`: a fresh virtual environment of this interpreter stands in for the base image's Python
  (the script says so when the minor versions differ);
- `ARG`, `ENV`: recorded, with `${VAR}` expanded; absolute paths under a `WORKDIR` are mapped into
  the temporary root;
- `WORKDIR`, `COPY`: performed from the build context, honouring `.dockerignore`'s allow-list;
- `RUN`: run with bash in the working directory, with the venv first on PATH. System set-up that
  needs root in a real image (`useradd`, `groupadd`, `apt-get`) is reported and skipped;
- `USER`, `EXPOSE`: reported; `HEALTHCHECK CMD` is run against the started service;
- `CMD`: started with the image's environment (only `DIGITS_PORT` is changed, to a free port), then
  the health check must pass, `POST /predict` must answer a drawn "1" with the digit 1, and SIGTERM
  must stop the server cleanly.

The GPU image (Dockerfile.gpu) needs a CUDA base and a GPU; it is linted (hadolint), not replayed.

Usage: python scripts/replay_dockerfile.py [--dockerfile Dockerfile] [--keep]
Exit status 0 when every step and the final prediction succeeded.
"""

from __future__ import annotations

import argparse
import fnmatch
import io
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path

CONTEXT = Path(__file__).resolve().parents[1]
# Run as `python scripts/replay_dockerfile.py`, only scripts/ is on sys.path. The script always runs
# from the checkout whose Dockerfile it replays, and bench.toolkit needs the standard library only,
# so it can share the test harness's free_port under any interpreter, the project's venv or not.
if str(CONTEXT) not in sys.path:
    sys.path.insert(0, str(CONTEXT))
from bench.toolkit import free_port  # noqa: E402

SKIPPED_COMMANDS = ("useradd", "groupadd", "apt-get", "chown")


@dataclass(frozen=True)
class Instruction:
    keyword: str
    argument: str
    line: int


def parse_dockerfile(text: str) -> list[Instruction]:
    """Instructions with continuation lines joined; comments and parser directives dropped."""
    instructions: list[Instruction] = []
    pending, start = "", 0
    for number, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if pending and stripped.startswith("#"):
            continue  # a comment inside a continued instruction
        if not pending:
            start = number
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        full = (pending + stripped).strip()
        pending = ""
        keyword, _, argument = full.partition(" ")
        instructions.append(Instruction(keyword.upper(), argument.strip(), start))
    return instructions


def parse_assignments(argument: str) -> dict[str, str]:
    """`ENV A=1 B="two words"` (or the legacy `ENV A 1`) as a dict."""
    tokens = shlex.split(argument)
    if tokens and "=" not in tokens[0]:
        return {tokens[0]: " ".join(tokens[1:])}
    return dict(token.split("=", 1) for token in tokens)


def exec_form(argument: str) -> list[str]:
    """The JSON array of an exec-form CMD / HEALTHCHECK CMD."""
    value = json.loads(argument)
    if not isinstance(value, list) or not all(isinstance(part, str) for part in value):
        raise ValueError(f"expected an exec-form JSON array, got {argument!r}")
    return value


def healthcheck_command(argument: str) -> list[str]:
    """The command of `HEALTHCHECK [--options] CMD [...]`."""
    _, _, command = argument.partition("CMD ")
    return exec_form(command.strip())


class DockerIgnore:
    """The subset of .dockerignore the context needs: patterns, `!` exceptions, `**/` prefixes."""

    def __init__(self, text: str) -> None:
        self.rules = [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]

    def ignored(self, relative: str) -> bool:
        result = False
        for rule in self.rules:
            negate, pattern = rule.startswith("!"), rule.lstrip("!").rstrip("/")
            candidates = [pattern, pattern[3:]] if pattern.startswith("**/") else [pattern]
            parts = relative.split("/")
            # A pattern matches the path or any parent directory of it, or (for **/) any component.
            prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
            matched = any(fnmatch.fnmatch(p, c) for c in candidates for p in prefixes)
            if pattern.startswith("**/"):
                matched = matched or any(fnmatch.fnmatch(part, candidates[1]) for part in parts)
            if matched:
                result = not negate
        return result


class Replay:
    def __init__(self, dockerfile: Path, root: Path, model_store: Path | None = None) -> None:
        self.dockerfile = dockerfile
        self.model_store = model_store
        self.root = root
        self.venv = root / "venv"
        self.env: dict[str, str] = {}
        self.workdirs: list[str] = []
        self.cwd = root
        self.user = "root"
        self.healthcheck: list[str] | None = None
        self.cmd: list[str] | None = None
        ignore_file = CONTEXT / ".dockerignore"
        self.ignore = DockerIgnore(ignore_file.read_text() if ignore_file.exists() else "")

    def say(self, message: str) -> None:
        print(f"[replay] {message}", flush=True)

    def expand(self, text: str) -> str:
        return re.sub(r"\$\{?(\w+)\}?", lambda m: self.env.get(m.group(1), os.environ.get(m.group(1), "")), text)

    def map_path(self, value: str) -> str:
        """An absolute image path under a WORKDIR, as a path under the temporary root."""
        for workdir in self.workdirs:
            if value == workdir or value.startswith(workdir.rstrip("/") + "/"):
                return str(self.root / value.lstrip("/"))
        return value

    def process_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DIGITS_", "VIRTUAL_ENV", "PYTHON"))}
        env.update({key: self.map_path(value) for key, value in self.env.items()})
        env["PATH"] = f"{self.venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
        env["VIRTUAL_ENV"] = str(self.venv)
        return env

    # -- instructions --------------------------------------------------------------------------

    def run(self) -> None:
        for instruction in parse_dockerfile(self.dockerfile.read_text()):
            handler = getattr(self, f"do_{instruction.keyword.lower()}", None)
            if handler is None:
                raise SystemExit(f"line {instruction.line}: {instruction.keyword} is not supported by the replay")
            handler(self.expand(instruction.argument) if instruction.keyword not in ("CMD", "HEALTHCHECK")
                    else instruction.argument)

    def do_arg(self, argument: str) -> None:
        name, has_default, default = argument.partition("=")
        if has_default:  # an ARG with no default and no --build-arg is unset in a real build, not ""
            self.env.setdefault(name, default)
        self.say(f"ARG {name}={default}")

    def do_from(self, argument: str) -> None:
        image = argument.split()[0]
        match = re.search(r"python:(\d+\.\d+)", image)
        here = f"{sys.version_info.major}.{sys.version_info.minor}"
        note = "" if not match or match.group(1) == here else f" (the image has Python {match.group(1)}: versions differ)"
        self.say(f"FROM {image}: a fresh venv of Python {here} stands in for it{note}")
        subprocess.run([sys.executable, "-m", "venv", str(self.venv)], check=True)  # noqa: S603

    def do_env(self, argument: str) -> None:
        for key, value in parse_assignments(argument).items():
            self.env[key] = value
            self.say(f"ENV {key}={value}")

    def do_workdir(self, argument: str) -> None:
        self.workdirs.append(argument)
        self.cwd = self.root / argument.lstrip("/")
        self.cwd.mkdir(parents=True, exist_ok=True)
        self.say(f"WORKDIR {argument} -> {self.cwd}")

    def do_copy(self, argument: str) -> None:
        *sources, destination = shlex.split(argument)
        target = Path(self.map_path(destination)) if destination.startswith("/") else self.cwd / destination
        for source in sources:
            origin = CONTEXT / source
            if self.model_store is not None and source.rstrip("/") == "model_store":
                origin = self.model_store
                self.say(f"COPY {source}: taking the model store from {origin} (--model-store)")
            if origin.is_dir():
                for path in sorted(origin.rglob("*")):
                    relative = (Path(source) / path.relative_to(origin)).as_posix()
                    if path.is_file() and not self.ignore.ignored(relative):
                        copied = target / path.relative_to(origin)
                        copied.parent.mkdir(parents=True, exist_ok=True)
                        shutil.copy2(path, copied)
            else:
                if self.ignore.ignored(source):
                    raise SystemExit(f"COPY {source}: excluded by .dockerignore, the build would fail")
                copied = target if not destination.endswith("/") else target / origin.name
                copied.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(origin, copied)
            self.say(f"COPY {source} -> {target}")

    def do_run(self, argument: str) -> None:
        commands = [part.strip() for part in argument.split("&&")]
        runnable = [c for c in commands if not c.startswith(SKIPPED_COMMANDS)]
        for skipped in set(commands) - set(runnable):
            self.say(f"RUN {skipped}: skipped (system set-up that needs root in a real image)")
        if not runnable:
            return
        command = " && ".join(runnable)
        self.say(f"RUN {command}")
        subprocess.run(["bash", "-euo", "pipefail", "-c", command], cwd=self.cwd, env=self.process_env(), check=True)  # noqa: S603, S607

    def do_user(self, argument: str) -> None:
        self.user = argument
        self.say(f"USER {argument}: noted (the replay runs as the current user)")

    def do_expose(self, argument: str) -> None:
        self.say(f"EXPOSE {argument}")

    def do_healthcheck(self, argument: str) -> None:
        self.healthcheck = healthcheck_command(argument)
        self.say(f"HEALTHCHECK {' '.join(self.healthcheck)}")

    def do_cmd(self, argument: str) -> None:
        self.cmd = exec_form(argument)
        self.say(f"CMD {' '.join(self.cmd)}")

    # -- the container, started ----------------------------------------------------------------

    def start_and_predict(self) -> None:
        if self.cmd is None:
            raise SystemExit("the Dockerfile has no CMD")
        if self.user in ("", "root", "0", "0:0"):
            raise SystemExit("the image runs as root: add a USER")
        env = self.process_env()
        env["DIGITS_PORT"] = str(free_port())
        env["DIGITS_HOST"] = "127.0.0.1"  # the image listens on 0.0.0.0; loopback is enough here
        self.say(f"starting CMD on port {env['DIGITS_PORT']}")
        server = subprocess.Popen(self.cmd, cwd=self.cwd, env=env)  # noqa: S603
        try:
            self.wait_healthy(server, env)
            self.predict(int(env["DIGITS_PORT"]))
        finally:
            server.send_signal(signal.SIGTERM)
            code = server.wait(timeout=60)
        # Uvicorn shuts down gracefully, then re-raises the signal so that its exit status says so.
        if code not in (0, -signal.SIGTERM):
            raise SystemExit(f"the server exited with status {code} on SIGTERM")
        self.say(f"SIGTERM: the server shut down gracefully (exit status {code})")

    def wait_healthy(self, server: subprocess.Popen[bytes], env: dict[str, str]) -> None:
        check = self.healthcheck or [sys.executable, "-c", "raise SystemExit(0)"]
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            if server.poll() is not None:
                raise SystemExit(f"the server exited with status {server.returncode} before becoming healthy")
            if subprocess.run(check, cwd=self.cwd, env=env, capture_output=True).returncode == 0:  # noqa: S603
                self.say("HEALTHCHECK passed")
                return
            time.sleep(1)
        raise SystemExit("the HEALTHCHECK did not pass within 180 s")

    def predict(self, port: int) -> None:
        body, boundary = multipart_png(drawn_one()), uuid.uuid4().hex
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/predict", data=body.replace(b"BOUNDARY", boundary.encode()), method="POST",
            headers={"content-type": f"multipart/form-data; boundary={boundary}"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            answer = json.loads(response.read())
        self.say(f"POST /predict -> {response.status}: model {answer['model']} v{answer['version']} says "
                 f"{answer['digit']} ({answer['confidence']:.3f}) on {', '.join(answer['providers'])}")
        if answer["digit"] != 1:
            raise SystemExit(f"expected the digit 1, got {answer['digit']}")


def drawn_one() -> bytes:
    """A PNG of a dark vertical stroke on white paper (a "1"), made with the venv-free stdlib only."""
    import struct
    import zlib

    size = 200
    rows = []
    for y in range(size):
        row = bytearray([255] * size)
        if 40 <= y < 160:
            row[90:110] = bytes(20)
        rows.append(b"\0" + bytes(row))
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    header = struct.pack(">IIBBBBB", size, size, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"".join(rows))) + chunk(b"IEND", b"")


def multipart_png(png: bytes) -> bytes:
    out = io.BytesIO()
    out.write(b'--BOUNDARY\r\nContent-Disposition: form-data; name="file"; filename="one.png"\r\n')
    out.write(b"Content-Type: image/png\r\n\r\n" + png + b"\r\n--BOUNDARY--\r\n")
    return out.getvalue()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dockerfile", type=Path, default=CONTEXT / "Dockerfile")
    parser.add_argument("--keep", action="store_true", help="keep the temporary root for inspection")
    parser.add_argument("--model-store", type=Path, default=None,
                        help="copy this store instead of the context's model_store/ (before models are committed)")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="dockerfile-replay-"))
    try:
        replay = Replay(args.dockerfile, root, args.model_store)
        replay.run()
        replay.start_and_predict()
        print(f"[replay] OK: {args.dockerfile.name} builds and serves (replayed in {root})")
        return 0
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
