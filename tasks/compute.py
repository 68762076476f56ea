"""Compute tasks: the pure close computation, for the whole company or one business unit."""

from prefect import task
from prefect.cache_policies import NO_CACHE

from billing.close import CloseResult, compute_close
from billing.periods import Period


@task(cache_policy=NO_CACHE)
def compute_billing(data: dict, period: Period, quarantine: dict[str, set[str]],
                    credit_holds: set[str]) -> CloseResult:
    """Billable lines, invoice batch, unbilled aging, exceptions and conservation."""
    result = compute_close(data, period, quarantine=quarantine, credit_holds=credit_holds)
    result.conservation.raise_if_broken()
    return result


@task(cache_policy=NO_CACHE, task_run_name="compute-{unit}")
def compute_unit(unit: str, data: dict, period: Period, quarantine: dict[str, set[str]],
                 credit_holds: set[str]) -> CloseResult:
    """One business unit's close: its lines, batch, unbilled and conservation (checked)."""
    result = compute_close(data, period, quarantine=quarantine, credit_holds=credit_holds)
    result.conservation.raise_if_broken()
    return result
