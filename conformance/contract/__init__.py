"""The promises, the checks that speak for them, and the findings they record."""
