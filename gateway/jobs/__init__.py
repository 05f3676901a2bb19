"""The use cases: one module per job kind, run by the worker."""
