"""A local Salesforce twin for tests, demos and benchmarks: real HTTP, spoken like Salesforce speaks.

    from connectors.salesforce_emulator import start_emulator
    handle = start_emulator(generate(Period.parse("2026-10"), n_items=2000))
    connector = SalesforceConnector(handle.settings())

or from a shell: ``python -m connectors.salesforce_emulator --items 10000 --period 2026-10``.
"""

from connectors.salesforce_emulator.server import FAULTS, EmulatorHandle, start_emulator

__all__ = ["FAULTS", "EmulatorHandle", "start_emulator"]
