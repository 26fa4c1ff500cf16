"""The CPU image built for real with buildah (no Docker daemon) on a Debian base made here, then run.

It takes about 1.5 minutes on 2 cores (92 s measured; the steps: debootstrap 50 s, base image 8 s,
build 22 s, start and predict 15 s) and needs root, Debian's buildah and debootstrap, and the
package registries (debootstrap fetches Debian's packages from the mirror apt uses; pip in the build
fetches the serving wheels). CI installs both tools and sets `DIGITS_TEST_IMAGE_BUILD=1`, which also
turns a missing tool into a failure; elsewhere the tests skip unless that variable is set:

    DIGITS_TEST_IMAGE_BUILD=1 .venv/bin/python -m pytest tests/deploy/test_image.py
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.service.conftest import REPO

REQUIRE_ENV = "DIGITS_TEST_IMAGE_BUILD"


def _missing() -> str | None:
    """Why the image cannot be built here, or None."""
    tools = [tool for tool in ("buildah", "debootstrap") if shutil.which(tool) is None]
    if tools:
        return f"{' and '.join(tools)} not installed (apt-get install -y buildah debootstrap)"
    if os.geteuid() != 0:
        return "building a root filesystem with debootstrap needs root"
    return None


@pytest.fixture(scope="module", autouse=True)
def _image_build_wanted() -> None:
    if os.environ.get(REQUIRE_ENV) != "1":
        pytest.skip(f"opt-in image build: {REQUIRE_ENV}=1, as root, with buildah and debootstrap")
    reason = _missing()
    if reason is not None:
        pytest.fail(f"{reason}, and {REQUIRE_ENV}=1 says the image must be built")


def debian_mirror(sources: tuple[Path, ...] = (Path("/etc/apt/sources.list.d/debian.sources"),
                                               Path("/etc/apt/sources.list"))) -> str:
    """The Debian mirror this machine's apt uses (deb822 `URIs:` or a one-line `deb URL bookworm`)."""
    for source in sources:
        if not source.is_file():
            continue
        for line in source.read_text().splitlines():
            words = line.split()
            if len(words) >= 2 and words[0] == "URIs:" and not words[1].endswith("-security"):
                return words[1]
            if len(words) >= 3 and words[0] == "deb" and not words[1].startswith("[") and "security" not in words[1]:
                return words[1]
    return "http://deb.debian.org/debian"


BUILDAH = ["buildah", "--storage-driver", "vfs"]
BASE, IMAGE = "localhost/digits-test-debian-python:3.11", "localhost/digit-serving:test"
HOST_CA = Path("/etc/ssl/certs/ca-certificates.crt")
BAR = [[1.0 if 12 <= x <= 15 and 4 <= y <= 23 else 0.0 for x in range(28)] for y in range(28)]


def run(*args: str, timeout: float = 600) -> str:
    result = subprocess.run(args, capture_output=True, text=True, timeout=timeout, check=False)  # noqa: S603
    assert result.returncode == 0, f"{' '.join(args)}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result.stdout


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A minimal Debian bookworm (its python3.11 in a venv on PATH) and the project's image on it."""
    rootfs = tmp_path_factory.mktemp("rootfs") / "bookworm"
    run("debootstrap", "--variant=minbase", "--include=python3,python3-venv", "bookworm", str(rootfs),
        debian_mirror())
    # The Dockerfile calls `python` and `pip`: a venv first on PATH gives both without Debian's
    # "externally managed" refusal of pip.
    run("chroot", str(rootfs), "python3", "-m", "venv", "/opt/venv")
    shutil.rmtree(rootfs / "var/lib/apt/lists", ignore_errors=True)
    container = run(*BUILDAH, "from", "scratch").strip()
    run(*BUILDAH, "copy", container, str(rootfs), "/")
    run(*BUILDAH, "config", "--env", "PATH=/opt/venv/bin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", container)
    run(*BUILDAH, "commit", "-q", "--rm", container, BASE)
    ca_args = ["-v", f"{HOST_CA}:/run/build-ca.crt:ro", "--build-arg", "PIP_CERT=/run/build-ca.crt"] if HOST_CA.exists() else []
    # --format docker: an OCI image has no HEALTHCHECK field, and buildah drops it without this.
    run(*BUILDAH, "bud", "--isolation", "chroot", "--format", "docker", "--build-arg", f"PYTHON_IMAGE={BASE}",
        *ca_args, "-t", IMAGE, str(REPO))
    yield IMAGE
    subprocess.run([*BUILDAH, "rmi", "-f", IMAGE, BASE], capture_output=True, check=False)  # noqa: S603


def test_image_keeps_its_healthcheck_user_and_ports(image: str) -> None:
    config = json.loads(run(*BUILDAH, "inspect", "--type", "image", image))["Docker"]["config"]
    assert config["Healthcheck"]["Test"] == ["CMD", "python", "-m", "service.server.healthcheck"]
    assert config["User"] == "10001:10001"
    assert set(config["ExposedPorts"]) == {"8000/tcp", "8001/tcp"}


def test_the_host_ca_bundle_is_not_baked_in(image: str) -> None:
    container = run(*BUILDAH, "from", image).strip()
    try:
        # The mount point may remain as an empty file; the certificates must not.
        out = run(*BUILDAH, "run", "--isolation", "chroot", container, "--",
                  "sh", "-c", "wc -c < /run/build-ca.crt 2>/dev/null || echo 0; echo ${PIP_CERT-unset}")
        size, pip_cert = out.split()
        assert int(size) == 0
        assert pip_cert == "unset"
    finally:
        run(*BUILDAH, "rm", container)


def test_the_built_image_predicts_as_its_unprivileged_user_with_a_read_only_store(image: str) -> None:
    container = run(*BUILDAH, "from", image).strip()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    chroot_run = [*BUILDAH, "run", "--isolation", "chroot", "--env", f"DIGITS_PORT={port}", container, "--"]
    server = subprocess.Popen([*chroot_run, "python", "-m", "service"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # noqa: S603
    try:
        checks = run(*chroot_run, "sh", "-c", "id -u; touch /app/model_store/x 2>/dev/null && echo writable || echo read-only")
        assert checks.split() == ["10001", "read-only"]
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health/ready", timeout=2):
                    break
            except OSError:
                assert time.monotonic() < deadline, "the image's service never became ready"
                time.sleep(1)
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/predict?model=cnn", data=json.dumps({"images": [BAR]}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            (answer,) = json.load(response)
        assert answer["digit"] == 1
        run(*chroot_run, "python", "-m", "service.server.healthcheck")  # the HEALTHCHECK's own command passes
    finally:
        server.terminate()
        server.wait(timeout=30)
        run(*BUILDAH, "rm", container)
