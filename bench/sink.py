"""A fast vendor sink for benchmarks: nginx on 127.0.0.1, answering from C.

A Python sink would be slower than what it measures; nginx answers tens of thousands of
requests per second on one core. Each request is logged as its status, so the sink's own
count of what arrived is exact. ``fail_percent`` answers that share of requests with 503.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

CONFIG = """
daemon off;
master_process off;
worker_processes 1;
error_log {dir}/error.log warn;
pid {dir}/nginx.pid;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    client_max_body_size 64m;
    client_body_buffer_size 1m;
    keepalive_requests 1000000;
    keepalive_timeout 120s;
    log_format status '$status';
    split_clients "${{request_id}}" $fail {{
        {fail_rule}
        * 0;
    }}
    server {{
        listen 127.0.0.1:{port} backlog=4096;
        access_log {dir}/access.log status buffer=256k flush=100ms;
        location / {{
            if ($fail) {{ return 503 '{{"error":"unavailable"}}'; }}
            default_type application/json;
            return 200 '{{"ok":true}}';
        }}
    }}
}}
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class NginxSink:
    def __init__(self, *, fail_percent: int = 0, cpu: int | None = 1) -> None:
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="sluice-sink-"))
        self.fail_percent = fail_percent
        self.cpu = cpu
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> NginxSink:
        nginx = shutil.which("nginx") or "/usr/sbin/nginx"
        conf = self.dir / "nginx.conf"
        conf.write_text(
            CONFIG.format(
                dir=self.dir,
                port=self.port,
                fail_rule=f"{self.fail_percent}% 1;" if self.fail_percent > 0 else "",
            )
        )
        argv = [nginx, "-c", str(conf), "-p", str(self.dir)]
        if self.cpu is not None:
            argv = ["taskset", "-c", str(self.cpu), *argv]
        self.proc = subprocess.Popen(argv, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("nginx did not start")

    def counts(self) -> tuple[int, int]:
        """(2xx answered, others answered) so far."""
        path = self.dir / "access.log"
        if not path.exists():
            return 0, 0
        data = path.read_bytes()
        ok = data.count(b"200\n")
        return ok, data.count(b"\n") - ok

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)
        shutil.rmtree(self.dir, ignore_errors=True)
