"""Scenario rows, generation strategies and the identities requests are made from."""
