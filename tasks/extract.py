"""Extract tasks: pull each dataset from the configured source."""

import pandas as pd
from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.concurrency.sync import concurrency
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
      retry_condition_fn=retry_on_transient, cache_policy=NO_CACHE, timeout_seconds=3600,
      task_run_name="extract-{dataset}")
def extract_dataset(sources: Sources, dataset: str, period: Period) -> pd.DataFrame:
    """Pull one dataset of the period from its source, in the canonical schema.

    The task timeout is a backstop: in a worker thread it cannot interrupt blocking I/O, so each
    connector also sets its own network timeouts (HTTP, database call) and raises TransientSourceError.
    A connector that names an ``api_concurrency_limit`` (Salesforce: ``salesforce-api``) holds a slot
    of that Prefect global concurrency limit while it pulls, so parallel extracts (and parallel runs)
    stay under the org's API budget; without the limit on the server the pull just goes ahead.
    """
    limit = getattr(sources.by_dataset.get(dataset), "api_concurrency_limit", None)
    if limit:
        with concurrency(limit, occupy=1, strict=False):
            return sources.read(dataset, period)
    return sources.read(dataset, period)
