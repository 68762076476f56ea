"""Thin Prefect tasks over the billing rules, connectors, gates, store and targets."""
