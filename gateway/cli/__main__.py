"""`python -m gateway.cli` is `mail-gateway` (tests and benchmarks run the daemon this way)."""

from gateway.cli.app import main

if __name__ == "__main__":
    main()
