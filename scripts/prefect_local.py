"""A local Prefect stack for the billing cycle: server, work pool, deployments, worker; and tear-down.

    .venv/bin/python scripts/prefect_local.py up      # server on 127.0.0.1:4200, deploy, start a worker
    .venv/bin/python scripts/prefect_local.py down    # stop the worker (and its flow runs), then the server
    .venv/bin/python scripts/prefect_local.py up --database postgresql   # server on the local PostgreSQL
    .venv/bin/python scripts/prefect_local.py serve   # up, wait for Ctrl-C, then down
    .venv/bin/python scripts/prefect_local.py status  # what runs, the UI's address

Everything lives under a home folder (``.prefect-local/`` by default, ``--home`` to change it): the
server's SQLite database, logs, process ids. It never touches a user's own Prefect profile. With
``--database postgresql`` the server keeps its tables in a database of their own on 127.0.0.1:5432
(``prefect_local``, created when missing; ``--pg-database`` to change it), never in the test suite's
``test`` database. Tests use the same class (``LocalPrefect``), e.g. as a context manager::

    with LocalPrefect(home=tmp_path / "prefect", port=free_port()) as stack:   # server, deploy, worker
        stack.wait_for_flow_run(run_id, lambda run: run["state_type"] == "COMPLETED")
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
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
POOL = "billing"
PG_SERVER = "postgres@127.0.0.1:5432"
PG_DATABASE = "prefect_local"


class LocalPrefect:
    def __init__(self, home: Path = ROOT / ".prefect-local", port: int = 4200, database: str = "sqlite",
                 pg_database: str = PG_DATABASE):
        if database not in ("sqlite", "postgresql"):
            raise ValueError(f"database must be 'sqlite' or 'postgresql', not {database!r}")
        self.home, self.port, self.database, self.pg_database = Path(home), port, database, pg_database
        self.url = f"http://127.0.0.1:{port}"
        self.api = f"{self.url}/api"
        self.procs: dict[str, subprocess.Popen] = {}

    # -- a whole stack --------------------------------------------------------------------------------
    def up(self, worker: bool = True) -> LocalPrefect:
        """Server, work pool and deployments, then a worker; everything is stopped again if a step fails."""
        try:
            self.start_server()
            self.deploy()
            if worker:
                self.start_worker()
        except BaseException:
            self.stop(grace=5, only_started=True)  # never a stack that was already running
            raise
        return self

    def __enter__(self) -> LocalPrefect:
        return self.up()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- environment -------------------------------------------------------------------------------
    @property
    def pg_url(self) -> str:
        return f"postgresql+asyncpg://{PG_SERVER}/{self.pg_database}"

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
        env.update({
            "PREFECT_HOME": str(self.home), "PREFECT_API_URL": self.api,
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "PREFECT_SERVER_API_PORT": str(self.port),
            "PREFECT_SERVER_API_HOST": "127.0.0.1", "BILLING_CYCLE_HOME": str(ROOT),
            "PREFECT_RUNNER_POLL_FREQUENCY": "2", "PREFECT_WORKER_QUERY_SECONDS": "2", "COLUMNS": "200",
            # A 503 (retryable) answer is logged with its cause in server.log: the UI only says "Unknown error".
            "PREFECT_API_LOG_RETRYABLE_ERRORS": "true",
            "PATH": f"{BIN}{os.pathsep}{env.get('PATH', '')}",
        })
        if self.database == "postgresql":
            env["PREFECT_API_DATABASE_CONNECTION_URL"] = self.pg_url
        env.update(extra)
        return env

    def prefect(self, *args: str, check: bool = True, timeout: float = 180) -> subprocess.CompletedProcess:
        r = subprocess.run([str(BIN / "prefect"), *args], cwd=ROOT, env=self.env(), capture_output=True, text=True,
                           timeout=timeout)
        if check and r.returncode != 0:
            raise RuntimeError(f"prefect {' '.join(args)} failed ({r.returncode}):\n{r.stdout[-2000:]}\n"
                               f"{r.stderr[-2000:]}")
        return r

    # -- the REST API (what the UI calls) -------------------------------------------------------------
    def request(self, method: str, path: str, body: dict | None = None, timeout: float = 10):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(f"{self.api}{path}", data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=timeout) as r:
            raw = r.read()
        return json.loads(raw) if raw else None

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.api}/health", timeout=2) as r:
                return r.status == 200
        except (OSError, ValueError):
            return False

    def deployments(self) -> list[dict]:
        return self.request("POST", "/deployments/filter", {})

    def deployment(self, name: str) -> dict:
        """A deployment by its name (e.g. ``close-on-demand``)."""
        found = [d for d in self.deployments() if d["name"] == name]
        if not found:
            raise LookupError(f"no deployment named {name!r} on {self.url}")
        return found[0]

    def flow_run(self, run_id: str) -> dict:
        return self.request("GET", f"/flow_runs/{run_id}")

    def wait_for_flow_run(self, run_id: str, done: Callable[[dict], bool], timeout: float = 120,
                          interval: float = 0.5) -> dict:
        """Poll the flow run until ``done(run)`` holds; fail early if it ends in another final state."""
        deadline = time.monotonic() + timeout
        run: dict = {}
        while time.monotonic() < deadline:
            run = self.flow_run(run_id)
            if done(run):
                return run
            if run["state_type"] in ("FAILED", "CRASHED", "CANCELLED"):
                raise RuntimeError(f"flow run {run_id} ended {run['state_name']}: {run['state'].get('message')}")
            time.sleep(interval)
        state = run.get("state_name")
        raise TimeoutError(f"flow run {run_id} still {state} after {timeout:.0f} s (logs in {self.home})")

    # -- processes ----------------------------------------------------------------------------------
    def _start(self, name: str, args: list[str]) -> subprocess.Popen:
        self.home.mkdir(parents=True, exist_ok=True)
        with open(self.home / f"{name}.log", "ab") as log:  # the child keeps its own copy of the descriptor
            proc = subprocess.Popen(args, cwd=ROOT, env=self.env(), stdout=log, stderr=subprocess.STDOUT,
                                    start_new_session=True)
        self.procs[name] = proc
        # With its start time: a stale file (after a reboot or a crash) never names someone else's process.
        (self.home / f"{name}.pid").write_text(f"{proc.pid} {_start_time(proc.pid) or ''}".strip())
        return proc

    def _recorded_pid(self, name: str) -> int | None:
        """The process a pid file names, if it is still that process."""
        try:
            pid, *started = (self.home / f"{name}.pid").read_text().split()
        except OSError:
            return None
        if started and _start_time(int(pid)) != started[0]:
            return None
        return int(pid) if _alive(int(pid), None) else None

    def start_server(self, timeout: float = 180) -> None:
        # Something already answering on the port would take our deployments, and a stack already
        # running from this home would lose track of its processes: refuse instead.
        if self.healthy():
            raise RuntimeError(f"a Prefect server already answers on {self.url}: stop it "
                               f"(scripts/prefect_local.py down) or choose another --port")
        if running := self.running():
            pids = ", ".join(f"{name} pid {pid}" for name, pid in running.items())
            raise RuntimeError(f"a stack from {self.home} is running ({pids}): stop it first "
                               f"(scripts/prefect_local.py down --home {self.home})")
        if self.database == "postgresql":
            self.ensure_pg_database()
        self._start("server", [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port",
                               str(self.port)])
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.healthy():
                return
            if self.procs["server"].poll() is not None:
                break
            time.sleep(0.5)
        raise RuntimeError(f"the Prefect server did not start; see {self.home / 'server.log'}")

    def deploy(self) -> None:
        """The `billing` process work pool, then every deployment of prefect.yaml."""
        try:
            self.request("GET", f"/work_pools/{POOL}")
        except urllib.error.HTTPError as exc:
            if exc.code != 404:
                raise
            self.prefect("work-pool", "create", POOL, "--type", "process")
        self.prefect("--no-prompt", "deploy", "--all")

    def start_worker(self, wait: float = 90) -> None:
        """A process worker on the `billing` pool; waits until the server sees it polling."""
        self._start("worker", [str(BIN / "prefect"), "worker", "start", "--pool", POOL, "--type", "process"])
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            workers = self.request("POST", f"/work_pools/{POOL}/workers/filter", {})
            if any(w.get("status") == "ONLINE" for w in workers):
                return
            if self.procs["worker"].poll() is not None:
                break
            time.sleep(0.5)
        raise RuntimeError(f"the worker did not come online; see {self.home / 'worker.log'}")

    def running(self) -> dict[str, int]:
        """The processes of this home's pid files that are alive: name -> pid."""
        alive = {}
        for name in ("server", "worker"):
            proc = self.procs.get(name)
            pid = (proc.pid if proc.poll() is None else None) if proc else self._recorded_pid(name)
            if pid is not None:
                alive[name] = pid
        return alive

    def stop(self, grace: float = 10, only_started: bool = False) -> None:
        """Worker first (and the flow runs it started), then the server; SIGTERM, then SIGKILL after a
        grace period (a worker can ignore SIGTERM while a run is paused). The processes are found by
        their pid files in the home folder (`down` from another shell), or with ``only_started`` only
        those this object started."""
        for name in ("worker", "server"):
            pid_file = self.home / f"{name}.pid"
            proc = self.procs.pop(name, None)
            if proc is None and only_started:
                continue
            pid = proc.pid if proc else self._recorded_pid(name)
            if pid is None:
                pid_file.unlink(missing_ok=True)
                continue
            # Flow runs may sit in sessions of their own: note them now, while they are still children.
            children = _descendants(pid)
            _signal_group(pid, signal.SIGTERM)
            deadline = time.monotonic() + grace
            while time.monotonic() < deadline and _alive(pid, proc):
                time.sleep(0.2)
            _signal_group(pid, signal.SIGKILL)
            for child, started in children:
                if _start_time(child) == started:  # the same process, not a reused id
                    with contextlib.suppress(ProcessLookupError, PermissionError):
                        os.kill(child, signal.SIGKILL)
            if proc:
                proc.wait(timeout=10)
            pid_file.unlink(missing_ok=True)

    # -- PostgreSQL -----------------------------------------------------------------------------------
    def ensure_pg_database(self) -> None:
        """Create the server's own database on the local PostgreSQL when it is missing."""
        import psycopg2

        conn = psycopg2.connect(f"postgresql://{PG_SERVER}/postgres")
        try:
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (self.pg_database,))
                if cur.fetchone() is None:
                    cur.execute(f'CREATE DATABASE "{self.pg_database}"')
        finally:
            conn.close()

    def drop_pg_database(self) -> None:
        """Drop the server's database (tests use a throw-away one); the server must be stopped."""
        import psycopg2

        conn = psycopg2.connect(f"postgresql://{PG_SERVER}/postgres")
        try:
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute(f'DROP DATABASE IF EXISTS "{self.pg_database}" WITH (FORCE)')
        finally:
            conn.close()


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


def _start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (Linux), to tell it from a later one with its id."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


def _descendants(pid: int) -> list[tuple[int, str]]:
    """Every descendant of ``pid`` with its start time (Linux /proc; empty elsewhere)."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        parents.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], list(parents.get(pid, []))
    while todo:
        child = todo.pop()
        started = _start_time(child)
        if started is not None:
            found.append((child, started))
        todo += parents.get(child, [])
    return found


def _exit_on_sigterm(signum, frame) -> None:
    raise SystemExit(128 + signum)  # `serve` then stops its stack in its `finally`


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("action", choices=["up", "down", "serve", "status"])
    p.add_argument("--port", type=int, default=4200)
    p.add_argument("--home", type=Path, default=ROOT / ".prefect-local",
                   help="Folder for the server's database, logs and process ids (default: .prefect-local).")
    p.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite",
                   help="sqlite (in the home folder) or postgresql (127.0.0.1:5432, its own database).")
    p.add_argument("--pg-database", default=PG_DATABASE, help="PostgreSQL database for the server's tables.")
    p.add_argument("--no-worker", action="store_true", help="Deploy only; start no worker.")
    args = p.parse_args(argv)
    stack = LocalPrefect(home=args.home, port=args.port, database=args.database, pg_database=args.pg_database)
    down = f"{sys.executable} {Path(__file__)} down"
    if args.home != p.get_default("home"):
        down += f" --home {args.home}"
    if args.action == "down":
        stack.stop()
        print("stopped")
        return 0
    if args.action == "status":
        running = stack.running()
        processes = ", ".join(f"{name} (pid {pid})" for name, pid in running.items()) or "none"
        print(f"server: {'up' if stack.healthy() else 'not answering'} on {stack.url}/v2  processes: "
              f"{processes}  home: {stack.home}")
        return 0
    if args.action == "serve":
        signal.signal(signal.SIGTERM, _exit_on_sigterm)
    try:
        stack.up(worker=not args.no_worker)
    except RuntimeError as exc:  # a readable reason, not a traceback; the logs are in the home folder
        print(f"error: {exc}", file=sys.stderr)
        return 1
    names = sorted(d["name"] for d in stack.deployments())
    print(f"Prefect UI: {stack.url}/v2  deployments: {', '.join(names)}  (logs in {stack.home})")
    if args.action == "up":
        print(f"stop with: {down}")
        return 0
    print("Ctrl-C stops everything")
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        stack.stop()
        print("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
