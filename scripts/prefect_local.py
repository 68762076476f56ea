"""A local Prefect stack for the billing cycle: server, work pool, deployments, worker; and tear-down.

    .venv/bin/python scripts/prefect_local.py up      # server on 127.0.0.1:4200, deploy, start a worker
    .venv/bin/python scripts/prefect_local.py down    # stop the worker, then the server
    .venv/bin/python scripts/prefect_local.py up --database postgresql   # server on the local PostgreSQL

Everything lives under ``.prefect-local/`` (the server's SQLite database, logs, process ids), so it
never touches a user's own Prefect profile. Tests use the same functions (``LocalPrefect``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
POOL = "billing"
PG_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"


class LocalPrefect:
    def __init__(self, home: Path = ROOT / ".prefect-local", port: int = 4200, database: str = "sqlite",
                 pg_schema: str | None = None):
        self.home, self.port, self.database = Path(home), port, database
        self.api = f"http://127.0.0.1:{port}/api"
        self.pg_schema = pg_schema
        self.procs: dict[str, subprocess.Popen] = {}

    # -- environment -------------------------------------------------------------------------------
    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
        env.update({
            "PREFECT_HOME": str(self.home), "PREFECT_API_URL": self.api,
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "PREFECT_SERVER_API_PORT": str(self.port),
            "PREFECT_SERVER_API_HOST": "127.0.0.1", "BILLING_CYCLE_HOME": str(ROOT),
            "PREFECT_RUNNER_POLL_FREQUENCY": "2", "PREFECT_WORKER_QUERY_SECONDS": "2", "COLUMNS": "200",
            "PATH": f"{BIN}{os.pathsep}{env.get('PATH', '')}",
        })
        if self.database == "postgresql":
            env["PREFECT_API_DATABASE_CONNECTION_URL"] = PG_URL
        env.update(extra)
        return env

    def prefect(self, *args: str, check: bool = True, timeout: float = 180) -> subprocess.CompletedProcess:
        r = subprocess.run([str(BIN / "prefect"), *args], cwd=ROOT, env=self.env(), capture_output=True, text=True,
                           timeout=timeout)
        if check and r.returncode != 0:
            raise RuntimeError(f"prefect {' '.join(args)} failed ({r.returncode}):\n{r.stdout[-2000:]}\n"
                               f"{r.stderr[-2000:]}")
        return r

    # -- processes ----------------------------------------------------------------------------------
    def _start(self, name: str, args: list[str]) -> subprocess.Popen:
        self.home.mkdir(parents=True, exist_ok=True)
        with open(self.home / f"{name}.log", "ab") as log:  # the child keeps its own copy of the descriptor
            proc = subprocess.Popen(args, cwd=ROOT, env=self.env(), stdout=log, stderr=subprocess.STDOUT,
                                    start_new_session=True)
        self.procs[name] = proc
        (self.home / f"{name}.pid").write_text(str(proc.pid))
        return proc

    def start_server(self, timeout: float = 120) -> None:
        self._start("server", [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port",
                               str(self.port)])
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{self.api}/health", timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            if self.procs["server"].poll() is not None:
                break
            time.sleep(0.5)
        raise RuntimeError(f"the Prefect server did not start; see {self.home / 'server.log'}")

    def deploy(self) -> None:
        if self.prefect("work-pool", "inspect", POOL, check=False).returncode != 0:
            self.prefect("work-pool", "create", POOL, "--type", "process")
        self.prefect("--no-prompt", "deploy", "--all")

    def deployments(self) -> list[dict]:
        req = urllib.request.Request(f"{self.api}/deployments/filter", data=b"{}",
                                     headers={"Content-Type": "application/json"}, method="POST")
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read())

    def start_worker(self) -> None:
        self._start("worker", [str(BIN / "prefect"), "worker", "start", "--pool", POOL, "--type", "process"])

    def stop(self, grace: float = 10) -> None:
        """Worker first, then the server; SIGTERM, then SIGKILL after a grace period (a worker can ignore
        SIGTERM while a run is paused)."""
        for name in ("worker", "server"):
            pid_file = self.home / f"{name}.pid"
            proc = self.procs.pop(name, None)
            pid = proc.pid if proc else (int(pid_file.read_text()) if pid_file.exists() else None)
            if pid is None:
                continue
            _signal_group(pid, signal.SIGTERM)
            deadline = time.monotonic() + grace
            while time.monotonic() < deadline and _alive(pid, proc):
                time.sleep(0.2)
            _signal_group(pid, signal.SIGKILL)
            if proc:
                proc.wait(timeout=10)
            pid_file.unlink(missing_ok=True)


def _signal_group(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


def _alive(pid: int, proc: subprocess.Popen | None) -> bool:
    if proc is not None:
        return proc.poll() is None
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("action", choices=["up", "down"])
    p.add_argument("--port", type=int, default=4200)
    p.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    p.add_argument("--no-worker", action="store_true", help="Deploy only; start no worker.")
    args = p.parse_args(argv)
    stack = LocalPrefect(port=args.port, database=args.database)
    if args.action == "down":
        stack.stop()
        print("stopped")
        return 0
    stack.start_server()
    stack.deploy()
    if not args.no_worker:
        stack.start_worker()
    names = sorted(d["name"] for d in stack.deployments())
    print(f"Prefect UI: http://127.0.0.1:{args.port}/  deployments: {', '.join(names)}  "
          f"(logs in {stack.home}; stop with: {sys.executable} scripts/prefect_local.py down)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
