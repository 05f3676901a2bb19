"""Run every benchmark, print one Markdown table per benchmark, write bench/results/*.json.

    .venv/bin/python bench/run_all.py [--quick] [--only NAME,...]

NAME: ingest, memory, processing, handoff, burst, webhook, cli, classify, trimming (default:
all).

--quick shrinks every benchmark (fewer mails, a 100,000-mail store, a 200-handoff burst) for a
smoke run; the README's numbers come from a full run (`make bench`, about 20 minutes on 2 cores).
The sustained processing load runs 60 s here (20 s with --quick); the issue's 5 minutes:
`bench/processing.py --seconds 300`.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import burst
import classify
import cli_startup
import handoff
import ingest
import memory
import processing
import trimming
import webhook
from common import machine, save


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument(
        "--only",
        default="ingest,memory,processing,handoff,burst,webhook,cli,classify,trimming",
    )
    args = ap.parse_args()
    only = set(args.only.split(","))
    q = args.quick
    started = time.perf_counter()
    m = machine()
    print(
        f"Machine: {m['nproc']} × {m['cpu']}, Python {m['python']}, Linux {m['kernel']}, "
        f"disk {m['disk']}\n"
    )
    if "ingest" in only:
        r = asyncio.run(ingest.run([1, 10, 50], [5120, 102400], 100_000 if q else 1_000_000, q))
        ingest.print_tables(r)
        save("ingest", r)
        print()
    if "memory" in only:
        r = asyncio.run(memory.run(20, 10 * 1024 * 1024))
        print("### Memory\n")
        print(memory.table(r))
        save("memory", r)
        print()
    if "processing" in only:
        r = asyncio.run(processing.run(1000 if q else 3000, 20 if q else 60, 10, 5120, None))
        processing.print_tables(r)
        save("processing", r)
        print()
    if "handoff" in only:
        r = asyncio.run(handoff.run(5 if q else 15, 200 if q else 1000))
        handoff.print_tables(r)
        save("handoff", r)
        print()
    if "burst" in only:
        r = asyncio.run(burst.run(200 if q else 800, 5 if q else 20))
        burst.print_tables(r)
        save("burst", r)
        print()
    if "webhook" in only:
        r = asyncio.run(webhook.run(10 if q else 50))
        print("### Rep reply: webhook → relay\n")
        print(webhook.table(r))
        save("webhook", r)
        print()
    if "cli" in only:
        r = cli_startup.run(5 if q else 20)
        print("### CLI start-up\n")
        print(cli_startup.table(r))
        print("\nGoal (issue 17): `--help` and `status` at most 300 ms wall time (median).")
        save("cli_startup", r)
        print()
    if "classify" in only:
        r = classify.run()
        print("### Classification (tests/data/labelled)\n")
        print(classify.table(r))
        print("\n### Classification, held-out set (tests/data/labelled/holdout)\n")
        print(classify.holdout_table())
        print()
    if "trimming" in only:
        r = trimming.run(1 if q else 5)
        print("### Reply trimming (tests/data/labelled/replies and holdout/replies)\n")
        print(trimming.table(r))
        save("trimming", r)
        print()
    print(f"(all benchmarks: {time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
