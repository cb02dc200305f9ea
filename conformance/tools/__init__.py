"""The katapult-conformance command and its subcommands."""
