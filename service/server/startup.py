"""Checks run before any model loads, so that a start-up that cannot succeed fails at once, with one
line that says why: the store path (missing, a file, one model's directory, empty), the device, and
the listening port. `python -m service` and `service.server.ray_serve` run them in the parent process, once,
before starting workers or replicas (each of which would otherwise fail the same way, with a
traceback, after loading every model).
"""

from __future__ import annotations

import errno
import socket
from pathlib import Path

from digit_contract.store import CARD_FILE, MODEL_FILE, list_versions, scan_store
from service.settings import Settings

STORE_HINT = "set DIGITS_MODEL_STORE (or --model-store) to a store, or get one with `python -m service store fetch`"


class StartupFailure(Exception):
    """The service cannot start; `str()` is the one line to print."""


def check_store(store: Path) -> None:
    """Refuse a store path that cannot serve, saying which mistake it is.

    Raises:
        StartupFailure: the path does not exist, is a file, is one model's (or one version's)
            directory rather than the store above it, cannot be listed, or holds no model.
    """
    shown = store.resolve()
    if not store.exists():
        raise StartupFailure(f"the model store {shown} does not exist; {STORE_HINT}")
    if not store.is_dir():
        hint = " (an archive? unpack it with `python -m service store fetch --from FILE --sha256 DIGEST --to DIR`)" \
            if store.name.endswith((".tar.gz", ".tgz")) else ""
        raise StartupFailure(f"the model store {shown} is a file, not a directory{hint}; {STORE_HINT}")
    if (store / MODEL_FILE).exists() or (store / CARD_FILE).exists():
        raise StartupFailure(
            f"{shown} is one version of a model (it holds {MODEL_FILE}/{CARD_FILE}), not a model store: "
            f"give the store above it, {shown.parent.parent}"
        )
    try:
        versions = list_versions(store.parent, store.name)
        listing = scan_store(store)
    except OSError as exc:
        raise StartupFailure(f"the model store {shown} cannot be read ({exc.strerror or type(exc).__name__})") from exc
    if versions and not listing.versions and not listing.unreadable:
        raise StartupFailure(
            f"{shown} is one model's directory (versions {', '.join(map(str, versions))}), not a model store: "
            f"give the store above it, {shown.parent}"
        )
    if not listing.versions and not listing.unreadable:
        raise StartupFailure(
            f"no models in the model store {shown}: expected <name>/<version>/{{{MODEL_FILE},{CARD_FILE}}}; {STORE_HINT}"
        )


def check_device(settings: Settings) -> None:
    """Refuse an explicit GPU device that the installed onnxruntime does not offer (the check each
    worker would make after importing every model's session code).

    Raises:
        StartupFailure: `cuda` or `tensorrt` without its execution provider.
    """
    if settings.device in ("auto", "cpu"):
        return  # always possible: auto falls back to the CPU, and the CPU provider is always there
    import onnxruntime as ort

    from service.errors import DeviceUnavailable
    from service.models.sessions import plan_providers

    try:
        plan_providers(settings.device, ort.get_available_providers())
    except DeviceUnavailable as exc:
        raise StartupFailure(str(exc)) from exc


def bind_port(settings: Settings) -> socket.socket:
    """Bind the listening socket now, before any model loads (uvicorn would bind after loading them
    all, and only then find the port taken). Listening starts when uvicorn serves on it: until then a
    client's connection is refused, as before.

    Raises:
        StartupFailure: the address is in use or cannot be bound.
    """
    family = socket.AF_INET6 if ":" in settings.host else socket.AF_INET
    sock = socket.socket(family=family)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
    try:
        sock.bind((settings.host, settings.port))
    except OSError as exc:
        sock.close()
        reason = "it is in use (another server is listening there)" if exc.errno == errno.EADDRINUSE else exc.strerror
        raise StartupFailure(
            f"cannot listen on {settings.host}:{settings.port}: {reason}; choose another with --port or DIGITS_PORT"
        ) from exc
    sock.set_inheritable(True)
    return sock


def preflight(settings: Settings) -> None:
    """The checks that need no socket: the store and the device."""
    check_store(settings.model_store)
    check_device(settings)
