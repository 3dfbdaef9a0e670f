"""The regional deployment on one machine: a real redis-server, three MockBox regions in reverse
mode sharing it, and real varnishd in front as the CDN, with health probes.

    .venv/bin/python deploy/local/run.py            # Ctrl-C stops everything
    curl -i http://127.0.0.1:6081/catalog           # X-Edge-Cache: MISS, then HIT with Age

The container (deploy/Dockerfile) runs the same process for each region: `mockbox run` with
the mode, region and Redis URL from MOCKBOX_* variables, as below.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
VCL_DIR = REPO / "deploy" / "cdn" / "varnish"
ORIGIN = "http://api.edge.test"  # the API the mocks describe; never contacted


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_http(url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"{proc.args[0]} exited with {proc.returncode}:\n{tail}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.2)
    raise TimeoutError(f"{url} did not answer within {timeout:g} s")


@dataclass
class Region:
    name: str
    port: int
    admin_port: int
    proc: subprocess.Popen[bytes] | None = None

    @property
    def admin(self) -> str:
        return f"http://127.0.0.1:{self.admin_port}"


@dataclass
class LocalEdge:
    """Start with start(), stop with stop(); regions can be stopped and started one by one."""

    regions: list[Region]
    workdir: Path
    mocks: Path
    edge_port: int
    redis_port: int
    mockbox: Path = field(default_factory=lambda: Path(sys.executable).parent / "mockbox")
    extra_config: dict[str, Any] = field(default_factory=dict)
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @classmethod
    def create(
        cls,
        names: list[str],
        mocks: Path,
        workdir: Path | None = None,
        edge_port: int | None = None,
        extra_config: dict[str, Any] | None = None,
    ) -> LocalEdge:
        regions = [Region(n, free_port(), free_port()) for n in names]
        work = workdir or Path(tempfile.mkdtemp(prefix="mockbox-edge-"))
        return cls(
            regions,
            work,
            mocks,
            edge_port or free_port(),
            free_port(),
            extra_config=extra_config or {},
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.edge_port}"

    @property
    def redis_url(self) -> str:
        return f"redis://127.0.0.1:{self.redis_port}/0"

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.procs["redis"] = self._spawn(
            "redis",
            [
                "redis-server",
                "--port",
                str(self.redis_port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.workdir),
            ],
        )
        (self.workdir / "mockbox.yaml").write_text(self.config())
        for region in self.regions:
            self.start_region(region)
        self._start_varnish()

    def config(self) -> str:
        """The configuration every region shares: one Redis, the edge (127.0.0.1) trusted to
        say who the client is, the edge purged when mocks change; then `extra_config`."""
        config: dict[str, Any] = {
            "redis_url": self.redis_url,
            "unmatched": "404",
            "rate_limit": {"identity": {"trusted_proxies": ["127.0.0.1/32"]}},
            "cdn": {"varnish": [self.url]},
        }
        _merge(config, self.extra_config)
        return yaml.safe_dump(config, sort_keys=False)

    def start_region(self, region: Region) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("MOCKBOX_")}
        env.update(MOCKBOX_MODE=f"reverse:{ORIGIN}", MOCKBOX_REGION=region.name)
        region.proc = self._spawn(
            f"mockbox-{region.name}",
            [
                str(self.mockbox),
                "run",
                "--config",
                str(self.workdir / "mockbox.yaml"),
                "--mocks",
                str(self.mocks),
                "--host",
                "127.0.0.1",
                "--port",
                str(region.port),
                "--admin-port",
                str(region.admin_port),
                "--set",
                f"confdir={self.workdir / 'ca'}",
            ],
            env,
        )
        wait_http(f"{region.admin}/healthz", region.proc, self._log(f"mockbox-{region.name}"))

    def stop_region(self, region: Region) -> None:
        if region.proc is not None and region.proc.poll() is None:
            region.proc.send_signal(signal.SIGTERM)
            region.proc.wait(timeout=15)
        region.proc = None

    def vcl(self) -> str:
        backends = "\n".join(
            f'backend {r.name} {{ .host = "127.0.0.1"; .port = "{r.port}"; '
            f".probe = mockbox_health; }}"
            for r in self.regions
        )
        adds = "\n".join(f"    mockbox.add_backend({r.name});" for r in self.regions)
        return f"""vcl 4.1;
import directors;

probe mockbox_health {{
    .url = "/__mockbox/healthz";
    .interval = 0.5s;
    .timeout = 0.5s;
    .window = 3;
    .threshold = 2;
}}

{backends}

acl purgers {{ "127.0.0.1"; }}

sub vcl_init {{
    new mockbox = directors.round_robin();
{adds}
}}

sub mockbox_edge_name {{
    set req.http.X-Edge-Region = "local-edge";
}}

include "mockbox-edge.vcl";
"""

    def _start_varnish(self) -> None:
        varnishd = shutil.which("varnishd") or "/usr/sbin/varnishd"
        vcl = self.workdir / "edge.vcl"
        vcl.write_text(self.vcl())
        self.procs["varnish"] = self._spawn(
            "varnish",
            [
                varnishd,
                "-F",
                "-j",
                "none",
                "-n",
                str(self.workdir / "varnish"),
                "-a",
                f"127.0.0.1:{self.edge_port}",
                "-T",
                "none",
                "-f",
                str(vcl),
                "-p",
                f"vcl_path={VCL_DIR}:{self.workdir}",
                "-s",
                "malloc,64m",
            ],
        )
        wait_http(f"{self.url}/__mockbox/healthz", self.procs["varnish"], self._log("varnish"))

    def _log(self, name: str) -> Path:
        return self.workdir / f"{name}.log"

    def _spawn(
        self, name: str, cmd: list[str], env: dict[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        with self._log(name).open("wb") as log:
            return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=REPO)

    def stop(self) -> None:
        for region in self.regions:
            self.stop_region(region)
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> None:
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _merge(base[key], value)
        else:
            base[key] = value


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--regions", default="iad,fra,sin")
    ap.add_argument("--port", type=int, default=6081, help="the edge (Varnish) port")
    ap.add_argument("--mocks", type=Path, default=HERE / "mocks")
    args = ap.parse_args()
    edge = LocalEdge.create(args.regions.split(","), args.mocks, edge_port=args.port)
    print(f"starting in {edge.workdir} ...", flush=True)
    edge.start()
    print(f"edge (Varnish)  {edge.url}")
    for r in edge.regions:
        print(f"region {r.name:<5}    http://127.0.0.1:{r.port}   admin {r.admin}")
    print(f"redis           {edge.redis_url}")
    print(f"try: curl -i {edge.url}/catalog", flush=True)
    try:
        signal.sigwait({signal.SIGINT, signal.SIGTERM})
    finally:
        edge.stop()


if __name__ == "__main__":
    main()
