"""The transport to a target, the endpoint's requests, exchange readers, pacing and the request log."""
