"""Benchmark: rows/second extracting expenditure items through the Oracle connector from PostgreSQL.

Not a test. Loads the sample company into a fresh schema (dropped afterwards) with the connector's own
EBS metadata, then times `OracleConnector.read("expenditure_items", period)`: the real statement,
streamed in chunks, converted to canonical cents exactly. Prints one JSON object.

    .venv/bin/python bench/bench_oracle_extract.py --items 200000 --chunk-size 50000
"""

from __future__ import annotations

import argparse
import json
import time
import uuid

import sqlalchemy as sa

from billing.periods import Period
from connectors import oracle as ebs
from connectors.sample_company import generate


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--items", type=int, default=200_000)
    ap.add_argument("--chunk-size", type=int, default=50_000)
    ap.add_argument("--repeat", type=int, default=3, help="timed reads; the best is reported")
    ap.add_argument("--period", default="2026-10")
    ap.add_argument("--url", default="postgresql+psycopg2://postgres@127.0.0.1:5432/test")
    args = ap.parse_args()

    period = Period.parse(args.period)
    t0 = time.perf_counter()
    data = generate(period, n_items=args.items, seed=20261)
    gen_s = time.perf_counter() - t0

    base = sa.create_engine(args.url)
    schema = f"bench_oracle_{uuid.uuid4().hex[:10]}"
    with base.begin() as conn:
        conn.execute(sa.schema.CreateSchema(schema))
    engine = base.execution_options(schema_translate_map={None: schema})
    try:
        ebs.create_schema(engine)
        t0 = time.perf_counter()
        counts = ebs.load_sample(engine, {k: data[k] for k in ("projects", "expenditure_items")})
        load_s = time.perf_counter() - t0
        with base.begin() as conn:
            conn.execute(sa.text(f'ANALYZE "{schema}".pa_expenditure_items_all'))
        source = ebs.OracleConnector(engine=engine, chunk_size=args.chunk_size)
        runs = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            items = source.read("expenditure_items", period)
            runs.append(time.perf_counter() - t0)
        best = min(runs)
        expected = int((data["expenditure_items"]["expenditure_date"] <= period.end_ts).sum())
        assert len(items) == expected, (len(items), expected)
    finally:
        with base.begin() as conn:
            conn.execute(sa.schema.DropSchema(schema, cascade=True))
        base.dispose()

    print(json.dumps({
        "benchmark": "oracle_extract_expenditure_items", "backend": "postgresql+psycopg2",
        "items_loaded": counts["expenditure_items"], "rows_read": len(items), "chunk_size": args.chunk_size,
        "best_seconds": round(best, 3), "all_seconds": [round(r, 3) for r in runs],
        "rows_per_second": round(len(items) / best), "generate_seconds": round(gen_s, 2),
        "load_seconds": round(load_s, 2),
    }, indent=2))


if __name__ == "__main__":
    main()
