"""The pytest plugin: wiring, preflight, ledger, reporting, baseline and xdist."""
