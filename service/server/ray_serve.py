"""`python -m service.server.ray_serve`: the same FastAPI app, scaled out on Ray Serve (the `ray` extra).

Each Ray Serve replica builds the service's own app (`service.server.app.create_app`) and runs its lifespan,
so each loads the whole model store, as each uvicorn worker does; Ray's HTTP proxy spreads requests
over the replicas (round robin on the least loaded). Everything the app answers is the same: the
routes, the error bodies, the limits on bodies and images. What differs from `python -m service`:

- the HTTP server is Ray's proxy (uvicorn inside Ray), not `service.server.http_server`: the connection
  guards of issue 9 (header deadline and size caps, connection cap, lossless drain) do not apply,
  and SIGHUP does not reload (reload with `POST /admin/reload`, which reaches one replica: redeploy
  to reload all, `serve.run` again);
- `/metrics` is one replica's (a scrape through the proxy hits any replica): scrape Ray's own
  metrics, or each replica, for totals;
- the gRPC port of the Open Inference Protocol is not served (the REST `/v2` routes are).

Ray is heavy (~760 MB installed): it is in no lock but its own (`requirements/ray.lock`), never in
the serving image, and its test runs only with `make test-ray`.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, get_args

from service.server.startup import StartupFailure, bind_port, preflight
from service.settings import Device, Settings, describe_errors, unknown_variables

APP_NAME = "digits"
DEPLOYMENT_NAME = "DigitService"


def build_application(settings: Settings, replicas: int, *, cpus_per_replica: float = 1.0,
                      access_log: bool = True, max_ongoing_requests: int | None = None) -> Any:
    """The Ray Serve application: `replicas` copies of the service's app, each loading the store.

    `access_log`: Ray Serve's line per request in each replica's log; `max_ongoing_requests`: the
    requests one replica takes at once, the others queue at the proxy (None: Ray's default, 5).
    The store path is made absolute: replicas run in Ray's worker processes, whose working
    directory is not the caller's.
    """
    from ray import serve

    settings = settings.model_copy(update={"model_store": settings.model_store.resolve()})
    options: dict[str, Any] = {"logging_config": {"enable_access_log": access_log}}
    if max_ongoing_requests is not None:
        options["max_ongoing_requests"] = max_ongoing_requests

    @serve.deployment(name=DEPLOYMENT_NAME, num_replicas=replicas, ray_actor_options={"num_cpus": cpus_per_replica},
                      **options)
    @serve.ingress()
    class DigitService:
        """One replica: the service's FastAPI app, built (and its models loaded) in the replica."""

        def __init__(self, settings: Settings) -> None:
            self.settings = settings

        def __serve_build_asgi_app__(self) -> Any:
            from service.server.app import create_app

            return create_app(self.settings)

    deployment: Any = DigitService  # what the decorators made of it: a Ray Serve Deployment
    return deployment.bind(settings)


def start(settings: Settings, replicas: int, **options: Any) -> str:
    """Deploy on the Ray cluster this process is connected to (`ray.init` first) and wait until every
    replica has loaded the store; the base URL of Ray's HTTP proxy. `options`: `build_application`'s."""
    from ray import serve

    serve.start(http_options={"host": settings.host, "port": settings.port})
    serve.run(build_application(settings, replicas, **options), name=APP_NAME, route_prefix="/")
    return f"http://{settings.host}:{settings.port}"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m service.server.ray_serve",
        description="Serve the model store with Ray Serve: N replicas of the service's app behind Ray's HTTP "
        "proxy. Options default to the DIGITS_* environment variables, as for `python -m service`.",
    )
    parser.add_argument("--replicas", type=int, default=2, help="replicas, each loading the store (default 2)")
    parser.add_argument("--cpus-per-replica", type=float, default=1.0, help="Ray CPUs each replica reserves (default 1)")
    parser.add_argument("--max-ongoing-requests", type=int, default=32,
                        help="requests one replica takes at once, the rest queue at the proxy (default 32: with "
                        "Ray's own default, 5, one replica served a third as many requests, bench/results/ray.md)")
    parser.add_argument("--no-access-log", action="store_true", help="no log line per request in the replicas' logs")
    parser.add_argument("--address", help="Ray cluster to join (e.g. auto); default: start a local one")
    parser.add_argument("--num-cpus", type=int, help="CPUs of the local cluster (default: all)")
    parser.add_argument("--host", help="interface of Ray's HTTP proxy (default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port of Ray's HTTP proxy (default 8000)")
    parser.add_argument("--model-store", type=Path, help="model store directory (default ./model_store)")
    parser.add_argument("--device", type=str.lower, choices=get_args(Device), help="execution provider (default auto)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    overrides = {key: getattr(args, key) for key in ("host", "port", "model_store", "device")
                 if getattr(args, key) is not None}
    for warning in unknown_variables(os.environ):
        print(f"warning: {warning}", file=sys.stderr)
    try:
        settings = Settings(**overrides)
        preflight(settings)  # once here, rather than once per replica after Ray has started
        bind_port(settings).close()  # Ray's proxy binds it later, after the replicas are placed
    except StartupFailure as exc:
        print(f"cannot start: {exc}", file=sys.stderr)
        return 3
    except ValueError as exc:  # pydantic's ValidationError
        from pydantic import ValidationError

        message = describe_errors(exc, given_as_flags=overrides) if isinstance(exc, ValidationError) else str(exc)
        print(f"invalid settings: {message}", file=sys.stderr)
        return 2
    try:
        import ray
        from ray import serve
    except ImportError as exc:  # ModuleNotFoundError, or a stray `ray/` directory on the path
        print(f"cannot start: Ray Serve is not installed ({exc}): pip install 'digit-serving[serve,ray]' "
              "(or make test-ray's environment: requirements/ray.lock)", file=sys.stderr)
        return 3
    ray.init(address=args.address, num_cpus=args.num_cpus, include_dashboard=False)
    stop = []
    signal.signal(signal.SIGTERM, lambda signum, frame: stop.append(signum))
    try:
        base = start(settings, args.replicas, cpus_per_replica=args.cpus_per_replica,
                     access_log=not args.no_access_log, max_ongoing_requests=args.max_ongoing_requests)
        print(f"{args.replicas} replicas serving on {base} (Ctrl-C stops)", file=sys.stderr)
        while not stop:
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        serve.shutdown()
        ray.shutdown()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
