"""`python -m service.server.healthcheck`: exit 0 when the local service is ready (the image's HEALTHCHECK).

Standard library only, so it runs in the slim image without curl. The port is the service's own
setting: the management listener's (`DIGITS_MANAGEMENT_PORT`) when there is one, where a flood of the
data port cannot starve the check, else `DIGITS_PORT`. The service may listen on 0.0.0.0, but the
check always asks loopback.
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request


def check_ready(port: int, timeout: float = 4.0) -> bool:
    """Whether GET /health/ready on 127.0.0.1:`port` answers 200."""
    url = f"http://127.0.0.1:{port}/health/ready"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return int(response.status) == 200
    except (urllib.error.URLError, OSError):
        return False


def main() -> int:
    port = int(os.environ.get("DIGITS_MANAGEMENT_PORT") or os.environ.get("DIGITS_PORT", "8000"))
    ready = check_ready(port)
    if not ready:
        print(f"service on port {port} is not ready", file=sys.stderr)
    return 0 if ready else 1


if __name__ == "__main__":
    raise SystemExit(main())
