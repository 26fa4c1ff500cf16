"""bench.toolkit: a server process is waited for, its output kept, and stopped with all its children."""

from __future__ import annotations

import os
import re
import sys
import time
from pathlib import Path

import pytest

from bench.toolkit import (
    ServerFailed,
    ServerProcess,
    free_port,
    http_request,
    process_tree,
    service_env,
    tree_rss_bytes,
)

# A tiny HTTP server that starts a sleeping child first (as a supervisor starts its workers).
SERVER = """
import http.server, subprocess, sys
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
print("child", child.pid, flush=True)
class Ready(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200); self.send_header("Content-Length", "2"); self.end_headers(); self.wfile.write(b"ok")
    def log_message(self, *args): pass
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), Ready).serve_forever()
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    return state != "Z"  # a zombie has stopped, its parent has not reaped it yet


def test_a_server_is_ready_then_stopped_with_its_children(tmp_path: Path) -> None:
    port = free_port()
    server = ServerProcess([sys.executable, "-c", SERVER, str(port)], port=port, log_path=tmp_path / "s.log",
                           ready_path="/", stop_grace_s=5)
    with server:
        assert server.ready_s is not None and server.ready_s > 0
        assert http_request(server.base_url + "/") == (200, b"ok")
        started = re.search(r"^child (\d+)$", server.output(), re.MULTILINE)
        assert started is not None, server.output()
        child = int(started.group(1))
        assert process_tree(server.pid) == [server.pid, child]
        assert tree_rss_bytes(server.pid) > server.rss_bytes() > 0
    assert server.process is not None and server.process.returncode is not None
    deadline = time.monotonic() + 10
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(child), "the child outlived its server"
    assert server.output().startswith(f"$ {sys.executable} -c")  # readable after the stop; a named log has the command
    server.close()


def test_a_server_that_exits_fails_with_its_output() -> None:
    server = ServerProcess([sys.executable, "-c", "print('no model store'); raise SystemExit(3)"], port=free_port())
    with pytest.raises(ServerFailed, match=r"exited with 3: no model store"):
        server.__enter__()
    server.close()


def test_the_service_environment_holds_only_the_given_settings() -> None:
    env = service_env({"workers": "2"}, base={"PATH": "/bin", "DIGITS_DEVICE": "cuda", "PROMETHEUS_MULTIPROC_DIR": "/x"})
    assert env == {"PATH": "/bin", "DIGITS_WORKERS": "2"}
