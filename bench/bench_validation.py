"""Time the data-quality gate on the sample company: `python bench/bench_validation.py --items 1000000`.

Prints one JSON object. Generation is timed separately; `validate_seconds` is the whole gate (validation
frames, all nine suites, quarantine), `frames_seconds` the pandas part of it. Not a test.
"""

from __future__ import annotations

import argparse
import json
import platform
import time

from billing.periods import Period
from connectors.sample_company import generate
from expectations.frames import validation_frames


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--items", type=int, default=1_000_000, help="expenditure items to generate")
    parser.add_argument("--period", default="2026-10", help="period closed (YYYY-MM)")
    parser.add_argument("--seed", type=int, default=20261)
    parser.add_argument("--repeat", type=int, default=1, help="validation runs; the fastest is reported")
    args = parser.parse_args()
    period = Period.parse(args.period)

    t0 = time.perf_counter()
    datasets = generate(period, args.items, args.seed)
    generate_s = time.perf_counter() - t0

    t0 = time.perf_counter()
    import great_expectations  # noqa: F401  (~4 s on first import, timed apart from validation)

    from expectations.runner import validate_datasets
    import_s = time.perf_counter() - t0

    t0 = time.perf_counter()
    validation_frames(datasets, period)
    frames_s = time.perf_counter() - t0

    runs = []
    report = None
    for _ in range(max(1, args.repeat)):
        t0 = time.perf_counter()
        report = validate_datasets(datasets, period)
        runs.append(time.perf_counter() - t0)
    assert report is not None
    print(json.dumps({
        "items": len(datasets["expenditure_items"]),
        "period": str(period),
        "expectations": len(report.results),
        "suites": len(report.suites()),
        "validate_seconds": round(min(runs), 3),
        "validate_runs_seconds": [round(r, 3) for r in runs],
        "frames_seconds": round(frames_s, 3),
        "generate_seconds": round(generate_s, 3),
        "import_great_expectations_seconds": round(import_s, 3),
        "blocking_failures": len(report.blocking_failures),
        "quarantine_rows": len(report.quarantine),
        "quarantine_by_rule": {k: int(v) for k, v in report.quarantine.groupby("expectation").size().items()},
        "python": platform.python_version(),
    }, indent=2))


if __name__ == "__main__":
    main()
