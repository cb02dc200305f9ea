"""Contract-conformance suite for Katapult's allocate_ip operation."""
