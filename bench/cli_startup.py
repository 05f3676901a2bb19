"""CLI start-up: wall time of `mail-gateway --help`, `status` and `sessions list`, and what
each one imports.

    .venv/bin/python bench/cli_startup.py [--runs 20] [--python PATH] [--compare DIR ...]

Each command runs as its own process, `--runs` times, on a temporary config and store this
script creates (the store is migrated by one untimed run first, and stays empty: `sessions
list` prints "no sessions yet"). The command is started the way the console script starts it,
`gateway.cli.main()`, with `python -c`, so another checkout can be measured with the same
interpreter: `--compare DIR` puts DIR first on PYTHONPATH (e.g. `git worktree add /tmp/before
2603552`, then `--compare /tmp/before`); this checkout is put there too. `--python` picks the
interpreter (another venv's libraries). Runs of all checkouts and commands are interleaved, so
load from other processes on the machine falls on each alike.

Per command and checkout: median and p90 wall time in ms (process start to exit), median CPU
time (user + system, steadier than wall time on a shared machine), the number
of modules imported (lines of `-X importtime`, one extra run), and the 5 largest imports by
cumulative time that the gateway's own modules start (outermost third-party or standard
library packages; the interpreter's own start-up, `site` and `encodings`, included).
Writes bench/results/cli_startup.json.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, markdown, median, pct, save

COMMANDS: dict[str, list[str]] = {
    "--help": ["--help"],
    "status": ["status"],
    "sessions list": ["sessions", "list"],
}

# What the console script does (its wrapper imports main and calls it), as one `python -c`.
LAUNCH = "import sys; sys.argv[0] = 'mail-gateway'; from gateway.cli import main; main()"

CONFIG = """
[gateway]
state_dir = "{state}"
hostname = "gw.example.com"
secret = "bench-secret-not-for-production"

[smtp]
listen = "127.0.0.1:2525"
addresses = ["support@example.com"]

[http]
listen = "127.0.0.1:8025"

[hubspot]
mode = "live"
"""


@dataclass(frozen=True)
class Target:
    """One checkout to measure: its directory, put first on PYTHONPATH (ahead of whatever
    checkout the interpreter has installed), and the interpreter (its libraries)."""

    label: str
    python: str
    path: str

    def env(self) -> dict[str, str]:
        return {**os.environ, "PYTHONPATH": self.path}

    def argv(self, config: Path, args: list[str], *extra: str) -> list[str]:
        """`-P`: the working directory is not put on sys.path (a checkout there would win)."""
        return [self.python, "-P", *extra, "-c", LAUNCH, "--config", str(config), *args]


def commit_of(directory: Path) -> str:
    out = subprocess.run(
        ["git", "-C", str(directory), "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
    )
    dirty = subprocess.run(
        ["git", "-C", str(directory), "status", "--porcelain", "--untracked-files=no"],
        capture_output=True,
        text=True,
    ).stdout.strip()
    return (out.stdout.strip() or "?") + ("+changes" if dirty else "")


def run_once(target: Target, config: Path, args: list[str]) -> tuple[float, float]:
    """(wall ms, CPU ms) of one run; a non-zero exit is an error (the numbers would be wrong).

    CPU is user + system time of the child (getrusage of waited-for children, before and
    after): on a machine shared with other work it moves much less than the wall time.
    """
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    out = subprocess.run(target.argv(config, args), env=target.env(), capture_output=True)
    wall = (time.perf_counter() - t0) * 1000
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime) * 1000
    if out.returncode != 0:
        raise RuntimeError(f"{target.label} {args}: exit {out.returncode}: {out.stderr[-500:]!r}")
    return wall, cpu


def import_profile(target: Target, config: Path, args: list[str]) -> tuple[int, list[list]]:
    """(modules imported, [[package, cumulative ms], ...] the 5 largest) from -X importtime.

    importtime prints one line per module, children before their parent, the depth shown by
    the indent of the name. The packages listed are the outermost non-gateway ones: imported
    directly by a gateway module, by the launcher, or by the interpreter's start-up.
    """
    out = subprocess.run(
        target.argv(config, args, "-X", "importtime"), env=target.env(), capture_output=True
    )
    lines = [ln for ln in out.stderr.decode().splitlines() if ln.startswith("import time:")]
    entries: list[tuple[int, int, str]] = []  # (depth, cumulative us, name)
    for line in lines[1:]:  # the first is the header
        _self, cumulative, name = line.split("|")
        entries.append((len(name) - len(name.lstrip()), int(cumulative), name.strip()))
    # Children come first: walk backwards so each entry's parent is seen before it.
    outermost: list[tuple[str, int]] = []
    stack: list[tuple[int, bool]] = []  # (depth, is a non-gateway package)
    for depth, cumulative, name in reversed(entries):
        while stack and stack[-1][0] >= depth:
            stack.pop()
        external = not name.startswith("gateway")
        if external and not any(ext for _, ext in stack):
            outermost.append((name, cumulative))
        stack.append((depth, external))
    top = sorted(outermost, key=lambda e: -e[1])[:5]
    return len(entries), [[name, round(us / 1000, 1)] for name, us in top]


def this_checkout(python: str = sys.executable) -> Target:
    return Target(f"this checkout ({commit_of(ROOT)})", python, str(ROOT))


def run(runs: int = 20, targets: list[Target] | None = None) -> dict:
    targets = targets or [this_checkout()]
    with tempfile.TemporaryDirectory(prefix="gw-bench-cli-") as tmp:
        configs = {}  # a config and store per checkout: each migrates its own schema
        for i, t in enumerate(targets):
            configs[t.label] = Path(tmp) / f"{i}" / "config.toml"
            configs[t.label].parent.mkdir()
            configs[t.label].write_text(CONFIG.format(state=configs[t.label].parent / "state"))
            for args in COMMANDS.values():  # migrate the store, warm the page cache
                run_once(t, configs[t.label], args)
        times: dict[tuple[str, str], list[tuple[float, float]]] = {}
        for _ in range(runs):
            for t in targets:
                for name, args in COMMANDS.items():
                    times.setdefault((t.label, name), []).append(
                        run_once(t, configs[t.label], args)
                    )
        results = []
        for t in targets:
            commands = {}
            for name, args in COMMANDS.items():
                ms = [wall for wall, _ in times[(t.label, name)]]
                cpu = [cpu for _, cpu in times[(t.label, name)]]
                modules, top = import_profile(t, configs[t.label], args)
                commands[name] = {
                    "runs_ms": [round(v, 1) for v in ms],
                    "median_ms": round(median(ms), 1),
                    "p90_ms": round(pct(ms, 90), 1),
                    "median_cpu_ms": round(median(cpu), 1),
                    "modules": modules,
                    "top_imports_ms": top,
                }
            results.append(
                {"label": t.label, "python": t.python, "path": t.path, "commands": commands}
            )
    return {"runs": runs, "targets": results}


def table(r: dict) -> str:
    rows = []
    for t in r["targets"]:
        for name, c in t["commands"].items():
            top = ", ".join(f"{pkg} {ms:.0f}" for pkg, ms in c["top_imports_ms"])
            rows.append(
                [t["label"], f"`{name}`", f"{c['median_ms']:.0f}", f"{c['p90_ms']:.0f}",
                 f"{c['median_cpu_ms']:.0f}", c["modules"], top]
            )  # fmt: skip
    headers = ["checkout", "command", "median ms", "p90 ms", "median CPU ms", "modules"]
    return markdown([*headers, "largest imports (cumulative ms)"], rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=20, help="runs of each command per checkout")
    ap.add_argument("--python", default=sys.executable, help="the interpreter to run with")
    ap.add_argument(
        "--compare",
        action="append",
        default=[],
        metavar="DIR",
        help="another checkout to measure too (put first on PYTHONPATH); repeatable",
    )
    args = ap.parse_args()
    targets = [
        Target(f"{Path(d).resolve().name} ({commit_of(Path(d))})", args.python, str(d))
        for d in args.compare
    ]
    targets.append(this_checkout(args.python))
    r = run(args.runs, targets)
    print(f"### CLI start-up ({args.runs} runs each, wall time per process)\n")
    print(table(r))
    save("cli_startup", r)


if __name__ == "__main__":
    main()
