"""Extract tasks: pull each dataset from the configured source."""

import pandas as pd
from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.tasks import exponential_backoff

from billing.periods import Period
from connectors.base import is_transient
from connectors.factory import Sources


def retry_on_transient(task, task_run, state) -> bool:
    """Retry transient source faults (timeouts, 5xx, rate limits); fail fast on permanent ones."""
    try:
        state.result()
    except Exception as exc:  # the state's exception is re-raised by result()
        return is_transient(exc)
    return False


@task(retries=4, retry_delay_seconds=exponential_backoff(backoff_factor=2), retry_jitter_factor=0.5,
      retry_condition_fn=retry_on_transient, cache_policy=NO_CACHE,
      task_run_name="extract-{dataset}")
def extract_dataset(sources: Sources, dataset: str, period: Period) -> pd.DataFrame:
    """Pull one dataset of the period from its source, in the canonical schema.

    No Prefect timeout: in a worker thread it cannot interrupt blocking I/O. Each connector sets its
    own network timeouts (HTTP timeout, database call timeout) and raises TransientSourceError.
    """
    return sources.read(dataset, period)
