"""Shared, expensive things for the data-quality tests: GE is imported once, big frames built once."""

from __future__ import annotations

import pytest

from billing.periods import Period
from connectors.sample_company import generate
from tests.expectations.bundle import PERIOD, clean_bundle

SAMPLE_PERIOD = Period(2026, 10)


@pytest.fixture(scope="session")
def clean_report():
    from expectations.runner import validate_datasets

    return validate_datasets(clean_bundle(), PERIOD)


@pytest.fixture(scope="session")
def sample_datasets():
    return generate(SAMPLE_PERIOD, 5000)


@pytest.fixture(scope="session")
def sample_report(sample_datasets):
    from expectations.runner import validate_datasets

    return validate_datasets(sample_datasets, SAMPLE_PERIOD)
