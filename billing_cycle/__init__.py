"""Command line, settings and report files of the billing cycle."""
