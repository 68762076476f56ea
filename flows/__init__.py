"""Prefect flows: the month-end close and its stages."""
