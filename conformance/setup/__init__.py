"""Settings, the target fixtures file, hypothesis profiles, redaction and packaged data paths."""
