"""Pure billing rules: pandas in, pandas out. No Prefect, no I/O, no clock, no environment."""
