"""Judging recorded traffic against the fragment, sending nothing: go-vcr cassettes, HAR files and the suite's JSON recordings."""
