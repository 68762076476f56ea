"""Records per second pulled from the local Salesforce emulator by REST (queryMore) and by Bulk API 2.0.

    python bench/bench_salesforce.py --records 100000

The rate card is the pulled object (Bill_Rate__c): the sample company's card, repeated under new contract
numbers until it has `--records` rows. Client, emulator and parsing share this machine's cores, so the
numbers compare the two paths here; they do not predict a real org (network and Salesforce dominate).
Prints one JSON object. Not a test.
"""

from __future__ import annotations

import argparse
import json
import time

import pandas as pd

from billing.periods import Period
from connectors.salesforce import SalesforceConnector
from connectors.salesforce_emulator import start_emulator
from connectors.sample_company import generate


def rate_card_of(records: int) -> pd.DataFrame:
    card = generate(Period(2026, 10), 10_000)["rate_card"]
    copies = -(-records // len(card))
    big = pd.concat([card.assign(contract_id=card["contract_id"] + f"-{k:04d}") for k in range(copies)],
                    ignore_index=True)
    return big.head(records).reset_index(drop=True)


def pull(handle, method: str, records: int) -> dict:
    threshold = records + 1 if method == "rest" else 0
    c = SalesforceConnector(handle.settings(bulk_threshold=threshold, bulk_poll_seconds=0.05))
    c.connect()  # log in outside the timing
    before = dict(handle.counts)
    started = time.perf_counter()
    frame = c.read("rate_card", Period(2026, 10))
    seconds = time.perf_counter() - started
    assert c.last_method == method and len(frame) == records
    calls = {k: v - before.get(k, 0) for k, v in handle.counts.items() if v != before.get(k, 0)}
    return {"seconds": round(seconds, 3), "records_per_second": round(records / seconds),
            "api_calls": calls, "frame": frame}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--records", type=int, default=100_000)
    args = p.parse_args(argv)
    card = rate_card_of(args.records)
    with start_emulator({"rate_card": card}) as handle:
        rest = pull(handle, "rest", args.records)
        bulk = pull(handle, "bulk2", args.records)
    equal = rest.pop("frame").equals(bulk.pop("frame"))
    print(json.dumps({"object": "Bill_Rate__c", "records": args.records, "rest": rest, "bulk2": bulk,
                      "same_rows": equal}, indent=2))


if __name__ == "__main__":
    main()
