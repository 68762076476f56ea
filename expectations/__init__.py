"""Data-quality gates of the close: one Great Expectations suite per dataset and the runner.

Suites: ``expectations/gx/expectations/<dataset>.json`` (see README.md). Runner:
``expectations.runner.validate_datasets``. Importing this package does not import Great Expectations.
"""
