"""The use cases: one module per job kind, run by the worker.

registry.py is the one table of kinds (models.JobKind) to handler, timeout, tries and
concurrency; service.py builds it, worker.py honours it. Jobs reach the database only through
the named verbs of store/ (tests/test_architecture.py checks it).
"""
