"""Validate task: the Great Expectations gate over the extracted datasets."""

from pathlib import Path

from prefect import task
from prefect.artifacts import create_link_artifact, create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from billing.periods import Period


@task(cache_policy=NO_CACHE)
def validate_data(data: dict, period: Period, data_docs_dir: Path | None):
    """Run every suite and publish its report; the flow decides what blocks."""
    from expectations.runner import validate_datasets

    report = validate_datasets(data, period, data_docs_dir=data_docs_dir)
    create_markdown_artifact(report.summary_markdown(), key="data-quality", description="Data-quality gate")
    if report.data_docs_index is not None:
        create_link_artifact(Path(report.data_docs_index).resolve().as_uri(), key="data-docs",
                             link_text="Data Docs", description="Great Expectations Data Docs of this run")
    return report


def validation_counts(report) -> dict:
    """Figures for the close summary."""
    q = report.quarantine
    return {
        "quarantined_records": int(q[["dataset", "record_key"]].drop_duplicates().shape[0]) if len(q) else 0,
        "warnings": sum(1 for r in report.results if not r.success and not r.blocking),
        "blocking": len(report.blocking_failures),
        "seconds": round(report.seconds, 2),
    }


def blocking_message(report) -> str:
    from expectations.runner import BlockingValidationError

    return str(BlockingValidationError(report.blocking_failures))
