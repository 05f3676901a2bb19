"""Code the tests and the benchmarks share (never a test module: tests do not import each other).

- `waiting`: wait for a condition or for the worker to be idle, never a fixed sleep;
- `daemon`: `mail-gateway serve` as a separate process (tests and bench/ use the same launcher);
- `mailconf`: Postfix and Dovecot configurations for private test/bench instances;
- `corpora`: where the shared mail corpora are, and which of their files are mails.

Nothing here imports pytest at module level except `corpora` (it skips or fails a test), so
bench/ can import `daemon` and `mailconf` with tests/ on sys.path.
"""
