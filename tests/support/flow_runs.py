"""Following a flow run that the test started in another process: its store row, its pauses, resuming it."""

from __future__ import annotations

import time

from store import Store


def started_flow_run_id(store: Store, process: str, timeout: float = 180) -> str:
    """The Prefect flow run id of the newest started run of ``process`` in the store, once it is there."""
    end = time.time() + timeout
    while time.time() < end:
        runs = store.runs()
        runs = runs[(runs["process"] == process) & (runs["status"] == "started")]
        if len(runs) and runs["flow_run_id"].notna().any():
            return runs["flow_run_id"].dropna().iloc[-1]
        time.sleep(0.3)
    raise AssertionError(f"no {process} run started")


def wait_paused(flow_run_id: str, pause_number: int, timeout: float = 180):
    """Wait until the run waits at its ``pause_number``-th pause; returns the flow run."""
    from prefect.client.orchestration import get_client

    end = time.time() + timeout
    with get_client(sync_client=True) as client:
        while time.time() < end:
            fr = client.read_flow_run(flow_run_id)
            st = fr.state
            if st and st.is_paused() and str(st.state_details.pause_key) == str(pause_number):
                return fr
            if st and st.is_final():
                raise AssertionError(f"run ended while waiting for pause {pause_number}: {st.name} {st.message}")
            time.sleep(0.3)
    raise AssertionError(f"pause {pause_number} never came")


def resume(flow_run_id: str, run_input: dict) -> None:
    from prefect.flow_runs import resume_flow_run

    resume_flow_run(flow_run_id, run_input=run_input)
