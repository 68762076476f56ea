"""The month-end close benchmark: one command, JSON on stdout, progress on stderr.

    .venv/bin/python bench/close_bench.py --items 100000 1000000 5000000
    .venv/bin/python bench/close_bench.py --items 1000000 --flow-items 1000000 --salesforce 100000 --oracle 200000

Each size runs in its own child process (so peak RSS is that size's, not the largest so far) and
times the close's stages by calling the pure functions and the runner directly, as the flow calls
them, on the seeded sample company:

- ``extract``: the sample source through ``connectors.factory.build_sources`` (generation included);
- ``validate``: the Great Expectations gate (``expectations.runner.validate_datasets``), Data Docs
  included as the flow builds them (``--no-data-docs`` to leave them out);
- ``compute``: ``billing.close.compute_close`` (billable lines, invoice batch, unbilled aging,
  conservation) and the conservation check;
- ``hand_off``: documents recorded in the store (SQLite in a temp folder) and delivered once each to
  a ``FileDropTarget`` (``billing_cycle.handoff.record_documents`` / ``hand_off``);
- ``record``: quarantine and unbilled snapshot in the store, report files (CSV, Parquet).

In the same child, the billable and unbilled computation runs again in pandas and in the DuckDB SQL
reference (``bench/duckdb_reference.py``) on the same data: totals by currency and reason (and by
aging bucket) must be equal to the cent, and the time ratio is printed. Peak RSS is reported for the
close (VmHWM before the reference runs) and for the reference on its own (the high-water mark is
reset in between).

``--flow-items N`` also runs the real ``month_end_close`` flow once on N items (its own child, Prefect's
ephemeral API) and reports Prefect's overhead: the flow run's duration minus the time covered by its
task runs. ``--salesforce N`` and ``--oracle N`` include the extraction benchmarks of
``bench/bench_salesforce.py`` (REST and Bulk API 2.0 from the local emulator) and
``bench/bench_oracle_extract.py`` (PostgreSQL through the Oracle connector's statements).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: bench/ is not a package
    sys.path.insert(0, str(ROOT))

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

STAGES = ("extract", "validate", "compute", "hand_off", "record")


def log(msg: str) -> None:
    print(f"[close_bench] {msg}", file=sys.stderr, flush=True)


# --- memory ---------------------------------------------------------------------------------------
def peak_rss_mb() -> float:
    """High-water mark of this process's resident set (VmHWM), in MB."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def reset_peak_rss() -> bool:
    """Reset VmHWM to the current RSS (Linux: write 5 to clear_refs); False where not supported."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


class Stages:
    """Wall time, CPU time (this process, all threads) and peak RSS after each stage.

    CPU time is reported beside wall time because this machine is shared: when other jobs run, wall
    time grows while CPU time stays close to the work done.
    """

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.cpu_seconds: dict[str, float] = {}
        self.peak_after: dict[str, float] = {}

    @contextmanager
    def stage(self, name: str):
        log(f"  {name} ...")
        started, cpu = time.perf_counter(), time.process_time()
        yield
        self.seconds[name] = round(time.perf_counter() - started, 3)
        self.cpu_seconds[name] = round(time.process_time() - cpu, 3)
        self.peak_after[name] = round(peak_rss_mb(), 1)
        log(f"  {name}: {self.seconds[name]:.2f} s (cpu {self.cpu_seconds[name]:.2f} s), "
            f"peak RSS {self.peak_after[name]:.0f} MB")


# --- one size ---------------------------------------------------------------------------------------
def run_close(n_items: int, *, seed: int = 20261, period: str = "2026-10", workdir: Path | None = None,
              data_docs: bool = True, duckdb: bool = True, stages: tuple[str, ...] = STAGES,
              by_unit: bool = False, reference_repeat: int = 2, documents: bool = False) -> dict:
    """Run the close's stages on the sample company of `n_items` items; return the figures.

    `stages`: run up to the last stage named (in STAGES order); later ones are left out.
    `documents`: also time the readable documents the flow writes after the close (invoice HTML,
    backup workbooks, billing tracker: ``tasks.record.write_documents``), reported on their own.
    """
    import logging

    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    from billing import columns as col
    from billing.close import compute_close
    from billing.periods import Period
    from billing_cycle import handoff as ho
    from billing_cycle.outputs import write_close_outputs
    from connectors.factory import build_sources
    from connectors.targets import FileDropTarget
    from store import Store

    t0 = time.perf_counter()
    import great_expectations  # noqa: F401  (~4 s, imported outside the timed stages)

    from expectations.runner import validate_datasets
    import_s = time.perf_counter() - t0

    last = max(STAGES.index(s) for s in stages)
    wanted = STAGES[: last + 1]
    p = Period.parse(period)
    tmp = tempfile.TemporaryDirectory(prefix="close_bench_") if workdir is None else None
    work = Path(tmp.name) if tmp else Path(workdir)
    out = work / str(p)
    st = Stages()
    steps: dict[str, float] = {}

    def step(name: str, started: float) -> None:
        steps[name] = round(time.perf_counter() - started, 3)

    try:
        store = Store(f"sqlite:///{work / 'billing.sqlite'}")
        run_id = str(uuid.uuid4())
        store.start_run(run_id, str(p), f"sample:items={n_items},seed={seed}", preparer="bench")

        with st.stage("extract"):
            sources = build_sources(f"sample:items={n_items},seed={seed}")
            data = {name: sources.read(name, p) for name in col.INPUT_DATASETS}
        report = quarantine = result = None
        if "validate" in wanted:
            with st.stage("validate"):
                report = validate_datasets(data, p, data_docs_dir=out / "data_docs" if data_docs else None)
                quarantine = {name: report.quarantined_keys(name) for name in col.INPUT_DATASETS}
                report.raise_for_blocking()
        if "compute" in wanted:
            with st.stage("compute"):
                result = compute_close(data, p, quarantine=quarantine, credit_holds=store.active_holds())
                result.conservation.raise_if_broken()
        delivered: list = []
        if "hand_off" in wanted:
            with st.stage("hand_off"):
                t = time.perf_counter()
                plan = ho.record_documents(store, result.batch, str(p), run_id)
                step("record_documents", t)
                t = time.perf_counter()
                outcome = ho.hand_off(store, FileDropTarget(out / "handoff"), plan.to_deliver, run_id)
                step("deliver_file_drop", t)
                delivered = getattr(outcome, "delivered", outcome)
        if "record" in wanted:
            with st.stage("record"):
                t = time.perf_counter()
                store.record_quarantine(run_id, str(p), report.quarantine)
                step("store_quarantine", t)
                # As the flow does: the snapshot loads while the report files are written.
                with ThreadPoolExecutor(1) as pool:
                    t = time.perf_counter()
                    snapshot = pool.submit(store.replace_unbilled, str(p), run_id, result.unbilled)
                    write_close_outputs(result, out, report.quarantine)
                    step("report_files", t)
                    snapshot.result()
                    step("store_unbilled_snapshot", t)
                store.finish_run(run_id, "completed", {"bench": True})
        close_peak = peak_rss_mb()
        documents_figures = None
        if documents and "record" in wanted:
            from tasks.record import write_documents

            log("  documents (invoice HTML, backup workbooks, tracker) ...")
            t, cpu = time.perf_counter(), time.process_time()
            written = write_documents.fn(store, result, data, out)
            documents_figures = {"seconds": round(time.perf_counter() - t, 3),
                                 "cpu_seconds": round(time.process_time() - cpu, 3), "written": written,
                                 "peak_rss_mb": round(peak_rss_mb(), 1)}
            log(f"  documents: {documents_figures['seconds']:.2f} s, {written}")

        items = len(data["expenditure_items"])
        close_s = sum(st.seconds.values())
        figures = {
            "items": items,
            "items_requested": n_items,
            "seed": seed,
            "period": str(p),
            "stages_seconds": st.seconds,
            "stages_cpu_seconds": st.cpu_seconds,
            "steps_seconds": steps,
            "close_seconds": round(close_s, 3),
            "close_cpu_seconds": round(sum(st.cpu_seconds.values()), 3),
            "items_per_second": round(items / close_s),
            "items_per_second_by_stage": {k: round(items / v) for k, v in st.seconds.items() if v},
            "peak_rss_mb": round(close_peak, 1),
            "peak_rss_mb_after_stage": st.peak_after,
            "import_great_expectations_seconds": round(import_s, 2),
            "data_docs": data_docs,
        }
        if documents_figures is not None:
            figures["documents_after_close"] = documents_figures
        if "validate" in st.seconds:
            figures["validate_share"] = round(st.seconds["validate"] / close_s, 3)
            figures["quarantine_rows"] = len(report.quarantine)
        if result is not None:
            figures |= {"billing_lines": len(result.lines), "documents": len(result.batch.documents),
                        "totals": close_totals(result)}
        if "hand_off" in st.seconds:
            figures["delivered"] = len(delivered)
        if by_unit and result is not None:
            log("  per business unit ...")
            figures["by_business_unit"] = compute_by_unit(data, p, quarantine, result)
        if duckdb and result is not None:
            from bench.duckdb_reference import compare_with_pandas

            del result
            log("  reference: pandas vs DuckDB ...")
            reset_peak_rss()
            figures["reference"] = compare_with_pandas(data, p, quarantine, set(), repeat=reference_repeat)
            figures["reference"]["peak_rss_mb"] = round(peak_rss_mb(), 1)
            log(f"  reference: equal={figures['reference']['equal']}, "
                f"pandas/duckdb={figures['reference']['pandas_over_duckdb']}")
        figures["targets"] = target_check(figures)
        return figures
    finally:
        if tmp is not None:
            tmp.cleanup()


TARGETS = {"close_seconds": 120, "peak_rss_mb": 6 * 1024, "validate_share": 0.25, "pandas_over_duckdb": 2.0}


def target_check(figures: dict) -> dict:
    """The issue's targets (set for 5,000,000 items on a 2-core machine), checked on these figures.

    Only the targets whose figures this run produced; `met` is whether each holds at this size.
    """
    got = {"close_seconds": figures.get("close_seconds") if len(figures.get("stages_seconds", {})) == len(STAGES)
           else None,
           "peak_rss_mb": figures.get("peak_rss_mb"), "validate_share": figures.get("validate_share"),
           "pandas_over_duckdb": (figures.get("reference") or {}).get("pandas_over_duckdb")}
    return {k: {"value": v, "target": TARGETS[k], "met": v <= TARGETS[k]} for k, v in got.items() if v is not None}


def compute_by_unit(data: dict, period, quarantine, whole) -> dict:
    """The compute stage per business unit (billing.partition): time per unit, totals equal to the whole."""
    from billing.close import compute_close
    from billing.partition import combine_results, partition_by_business_unit

    t = time.perf_counter()
    units = partition_by_business_unit(data)
    split_s = time.perf_counter() - t
    seconds, results = {}, {}
    for unit, part in units.items():
        t = time.perf_counter()
        results[unit] = compute_close(part, period, quarantine=quarantine)
        seconds[unit] = round(time.perf_counter() - t, 3)
    combined = combine_results(results, data["expenditure_items"])
    a, b = close_totals(combined), close_totals(whole)
    return {"partition_seconds": round(split_s, 3), "compute_seconds": seconds,
            "items": {u: len(p["expenditure_items"]) for u, p in units.items()},
            "conservation_ok": combined.conservation.ok, "totals_equal_whole": a == b}


def close_totals(result) -> dict:
    """The close's money, per currency, as integer cents (exact)."""
    docs = result.batch.documents
    by_cur: dict[str, dict] = {}
    for cur, d in docs.groupby("currency"):
        by_cur[str(cur)] = {
            "documents": len(d),
            "invoices_net_cents": int(d.loc[d["document_type"] == "invoice", "net_cents"].sum()),
            "credit_memos_net_cents": int(d.loc[d["document_type"] == "credit_memo", "net_cents"].sum()),
            "tax_cents": int(d["tax_cents"].sum()),
            "gross_cents": int(d["gross_cents"].sum()),
        }
    u = result.unbilled
    for cur, g in u.groupby("currency"):
        by_cur.setdefault(str(cur), {})["unbilled_cents"] = int(g["unbilled_cents"].sum())
    c = result.conservation
    return {
        "candidate_cents": c.candidate_cents, "billed_cents": c.billed_cents, "unbilled_cents": c.unbilled_cents,
        "input_cost_cents": c.input_cost_cents, "conservation_ok": c.ok, "by_currency": by_cur,
    }


# --- the real flow, once ------------------------------------------------------------------------------
def union_seconds(intervals: list[tuple[float, float]]) -> float:
    """Length of the union of [start, end] intervals (concurrent task runs count once)."""
    total, cur_s, cur_e = 0.0, None, None
    for s, e in sorted(intervals):
        if cur_e is None or s > cur_e:
            if cur_e is not None:
                total += cur_e - cur_s
            cur_s, cur_e = s, e
        else:
            cur_e = max(cur_e, e)
    if cur_e is not None:
        total += cur_e - cur_s
    return total


def run_flow(n_items: int, *, seed: int = 20261, period: str = "2026-10") -> dict:
    """One real month_end_close run; Prefect's overhead = flow run time - time inside task runs.

    Approvals are deferred (documents needing one stay pending instead of pausing the run) and the
    hand-off goes to the file drop only, so the run measures orchestration, not a person or a gateway.
    Task runs of subflows count as work inside tasks; the subflows' own orchestration does not.
    """
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "CRITICAL")
    t0 = time.perf_counter()
    from prefect import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId, FlowRunFilterParentFlowRunId

    from flows.month_end_close import CloseParameters, month_end_close
    import_s = time.perf_counter() - t0
    with tempfile.TemporaryDirectory(prefix="close_bench_flow_") as tmp:
        wanted = dict(period=period, source=f"sample:items={n_items},seed={seed}", output_dir=tmp,
                      preparer="bench", approvals="defer", targets="file_drop")
        params = CloseParameters(**{k: v for k, v in wanted.items() if k in CloseParameters.model_fields})
        t0 = time.perf_counter()
        state = month_end_close(params, return_state=True)
        call_s = time.perf_counter() - t0
        flow_run_id = state.state_details.flow_run_id
        with get_client(sync_client=True) as client:
            run = client.read_flow_run(flow_run_id)
            children = client.read_flow_runs(flow_run_filter=FlowRunFilter(
                parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[flow_run_id])))
            ids = [flow_run_id, *(c.id for c in children)]
            tasks = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=ids)))
    run_s = (run.end_time - run.start_time).total_seconds()
    # A subflow shows in its parent as a task run standing for the whole subflow: left out, so the
    # subflow's own orchestration counts as overhead and its tasks as work.
    timed = [t for t in tasks if t.start_time and t.end_time
             and not (t.state and t.state.state_details.child_flow_run_id)]
    by_task: dict[str, float] = {}
    for t in timed:
        name = t.task_key.rsplit("-", 1)[0] if t.task_key else t.name
        by_task[name] = round(by_task.get(name, 0) + (t.end_time - t.start_time).total_seconds(), 3)
    inside = union_seconds([(t.start_time.timestamp(), t.end_time.timestamp()) for t in timed])
    return {
        "items_requested": n_items, "state": state.type.value, "import_seconds": round(import_s, 2),
        "call_seconds": round(call_s, 3), "flow_run_seconds": round(run_s, 3),
        "task_runs": len(timed), "subflow_runs": len(children), "inside_tasks_seconds": round(inside, 3),
        "prefect_overhead_seconds": round(run_s - inside, 3),
        "startup_seconds": round(call_s - run_s, 3),
        "task_seconds": dict(sorted(by_task.items(), key=lambda kv: -kv[1])),
    }


# --- extraction benchmarks (existing scripts) --------------------------------------------------------
def run_script(script: str, args: list[str]) -> dict:
    log(f"{script} {' '.join(args)} ...")
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / script), *args], capture_output=True, text=True,
                          cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    if proc.returncode != 0:
        return {"error": proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else f"exit {proc.returncode}"}
    return json.loads(proc.stdout)


def child(argv: list[str]) -> dict:
    """Run one job in a fresh interpreter; its JSON comes back on stdout, its progress on our stderr."""
    proc = subprocess.run([sys.executable, str(Path(__file__).resolve()), *argv], stdout=subprocess.PIPE,
                          text=True, cwd=ROOT)
    if proc.returncode != 0:
        return {"error": f"child exited {proc.returncode}", "argv": argv}
    return json.loads(proc.stdout)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--items", type=int, nargs="*", default=[100_000, 1_000_000],
                    help="sizes in expenditure items (default: 100000 1000000)")
    ap.add_argument("--seed", type=int, default=20261)
    ap.add_argument("--period", default="2026-10")
    ap.add_argument("--no-duckdb", action="store_true", help="skip the DuckDB reference comparison")
    ap.add_argument("--no-data-docs", action="store_true", help="validate without building Data Docs")
    ap.add_argument("--flow-items", type=int, default=None, help="also run the real flow once on N items")
    ap.add_argument("--salesforce", type=int, default=None, metavar="RECORDS",
                    help="also run bench_salesforce.py with this many records")
    ap.add_argument("--oracle", type=int, default=None, metavar="ITEMS",
                    help="also run bench_oracle_extract.py with this many items (needs PostgreSQL)")
    ap.add_argument("--stages", default=",".join(STAGES),
                    help=f"stages to run, up to the last named (default: {','.join(STAGES)})")
    ap.add_argument("--by-unit", action="store_true", help="also compute per business unit (billing.partition)")
    ap.add_argument("--reference-repeat", type=int, default=2,
                    help="pandas and DuckDB run alternately this many times; the fastest of each counts")
    ap.add_argument("--documents", action="store_true",
                    help="also time the documents written after the close (invoice HTML, backups, tracker)")
    ap.add_argument("--in-process", action="store_true", help="run the sizes in this process (tests)")
    ap.add_argument("--_one", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--_flow", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    stages = tuple(x.strip() for x in args.stages.split(",") if x.strip())
    unknown = [x for x in stages if x not in STAGES]
    if unknown:
        ap.error(f"unknown stage(s) {', '.join(unknown)}; stages: {', '.join(STAGES)}")
    options = dict(seed=args.seed, period=args.period, data_docs=not args.no_data_docs, duckdb=not args.no_duckdb,
                   stages=stages, by_unit=args.by_unit, reference_repeat=args.reference_repeat,
                   documents=args.documents)
    if args._one is not None:
        print(json.dumps(run_close(args._one, **options)))
        return 0
    if args._flow is not None:
        print(json.dumps(run_flow(args._flow, seed=args.seed, period=args.period)))
        return 0

    common = ["--seed", str(args.seed), "--period", args.period, "--stages", ",".join(stages)]
    common += ["--no-duckdb"] if args.no_duckdb else []
    common += ["--no-data-docs"] if args.no_data_docs else []
    common += ["--by-unit"] if args.by_unit else []
    common += ["--documents"] if args.documents else []
    common += ["--reference-repeat", str(args.reference_repeat)]
    runs = []
    for n in args.items:
        log(f"close on {n:,} items")
        if args.in_process:
            runs.append(run_close(n, **options))
        else:
            runs.append(child(["--_one", str(n), *common]))
    out: dict = {"benchmark": "month_end_close", "machine": machine(), "runs": runs}
    if args.flow_items:
        log(f"flow on {args.flow_items:,} items")
        out["flow"] = child(["--_flow", str(args.flow_items), "--seed", str(args.seed), "--period", args.period])
        by_size = {r.get("items_requested"): r for r in runs}
        if args.flow_items in by_size and "close_seconds" in by_size[args.flow_items]:
            out["flow"]["bench_close_seconds_same_size"] = by_size[args.flow_items]["close_seconds"]
    if args.salesforce:
        out["salesforce"] = run_script("bench_salesforce.py", ["--records", str(args.salesforce)])
    if args.oracle:
        out["oracle"] = run_script("bench_oracle_extract.py", ["--items", str(args.oracle)])
    print(json.dumps(out, indent=1))
    return 0 if all("error" not in r for r in runs) else 1


def machine() -> dict:
    import pandas as pd

    return {"python": platform.python_version(), "pandas": pd.__version__, "cpus": os.cpu_count(),
            "platform": platform.platform()}


if __name__ == "__main__":
    sys.exit(main())
