"""Receivables: pure rules for collections, cash application and provisions (no Prefect, no I/O)."""
