"""Serve the sample company as a Salesforce org: python -m connectors.salesforce_emulator --items 10000."""

from __future__ import annotations

import argparse
import signal
import threading

from billing.periods import Period
from connectors.salesforce_emulator.server import start_emulator
from connectors.sample_company import generate


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--items", type=int, default=10_000, help="expenditure items of the sample company")
    p.add_argument("--period", default="2026-10", help="period the sample company closes (YYYY-MM)")
    p.add_argument("--seed", type=int, default=20261)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0, help="0 picks a free port")
    args = p.parse_args(argv)
    data = generate(Period.parse(args.period), args.items, args.seed)
    handle = start_emulator(data, host=args.host, port=args.port)
    st = handle.state
    print(f"Salesforce emulator on {handle.url}")
    for t in st.tables.values():
        print(f"  {t.name}: {len(t.records)} records")
    # The emulator's own made-up credentials, printed so SalesforceSettings.from_env() can point at it.
    print(f"  export SALESFORCE_INSTANCE_URL={handle.url} SALESFORCE_USERNAME={st.username} "
          f"SALESFORCE_PASSWORD={st.password} SALESFORCE_SECURITY_TOKEN={st.security_token}")
    print(f"  faults: POST {handle.url}/_emulator/fault {{\"fault\": \"503\", \"times\": 2}}", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    finally:
        handle.stop()


if __name__ == "__main__":
    main()
