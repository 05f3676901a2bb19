"""Ingest benchmark: the real daemon against a bare aiosmtpd server that discards, same run.

Both servers run as separate processes on loopback; one asyncio load generator drives N
concurrent SMTP sessions (aiosmtplib), each sending 5 KB mails back to back. Reported per
server: messages per second and the latency of the DATA phase (from the DATA command to the
250 after the final dot: for the gateway that includes the fsynced group commit), p50 and p99,
and the gateway/baseline ratio.

    .venv/bin/python bench/ingest.py [--clients 1,10,50] [--messages 2000] [--size 5120]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import aiosmtplib

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"

BARE_SERVER = textwrap.dedent(
    """
    import asyncio, sys
    from aiosmtpd.smtp import SMTP

    class Discard:
        async def handle_DATA(self, server, session, envelope):
            return "250 2.0.0 OK discarded"

    async def main(port):
        loop = asyncio.get_running_loop()
        factory = lambda: SMTP(Discard(), data_size_limit=26214400, enable_SMTPUTF8=True,
                               hostname="bare", loop=loop)
        server = await loop.create_server(factory, "127.0.0.1", port)
        await server.serve_forever()

    asyncio.run(main(int(sys.argv[1])))
    """
)

CONFIG = """
[gateway]
state_dir = "{state}"
hostname = "bench.example.com"
secret = "bench"
log_level = "warning"
[smtp]
listen = "127.0.0.1:{smtp}"
addresses = ["support@example.com"]
max_sessions = 500
[http]
listen = "127.0.0.1:{http}"
[hubspot]
mode = "live"
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_mail(i: int, size: int) -> bytes:
    head = (
        f"From: Customer {i} <c{i}@customer.test>\r\nTo: support@example.com\r\n"
        f"Subject: Benchmark mail {i}\r\nMessage-ID: <bench-{i}-{time.time_ns()}@customer.test>\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n\r\n"
    ).encode()
    line = b"The quick brown fox jumps over the lazy dog, order 12345 is late.\r\n"
    body = (line * (size // len(line) + 1))[: max(0, size - len(head))]
    return head + body


async def wait_port(port: int, proc: asyncio.subprocess.Process, within: float = 20) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if proc.returncode is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            _r, w = await asyncio.open_connection("127.0.0.1", port)
            w.close()
            return
        except OSError:
            await asyncio.sleep(0.1)
    raise RuntimeError("server did not start")


async def load(port: int, clients: int, messages: int, size: int) -> dict:
    per_client = max(1, messages // clients)
    latencies: list[float] = []
    errors = 0

    async def client(n: int) -> None:
        nonlocal errors
        smtp = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, timeout=60)
        await smtp.connect()
        await smtp.ehlo()
        for i in range(per_client):
            msg = make_mail(n * per_client + i, size)
            await smtp.mail("c@customer.test")
            await smtp.rcpt("support@example.com")
            t0 = time.perf_counter()
            try:
                await smtp.data(msg)
            except aiosmtplib.SMTPException:
                errors += 1
                continue
            latencies.append(time.perf_counter() - t0)
        await smtp.quit()

    t0 = time.perf_counter()
    await asyncio.gather(*(client(n) for n in range(clients)))
    elapsed = time.perf_counter() - t0
    latencies.sort()
    return {
        "messages": len(latencies),
        "errors": errors,
        "seconds": round(elapsed, 3),
        "msg_per_s": round(len(latencies) / elapsed, 1),
        "p50_ms": round(statistics.median(latencies) * 1000, 2),
        "p99_ms": round(latencies[int(len(latencies) * 0.99) - 1] * 1000, 2),
    }


async def run_server(kind: str, tmp: Path, clients: int, messages: int, size: int) -> dict:
    port = free_port()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    if kind == "bare aiosmtpd (discard)":
        cmd = [sys.executable, "-c", BARE_SERVER, str(port)]
    else:
        state = tmp / f"state-{clients}"
        cfg = tmp / f"config-{clients}.toml"
        cfg.write_text(CONFIG.format(state=state, smtp=port, http=free_port()))
        cmd = [sys.executable, "-m", "gateway.cli", "--config", str(cfg), "serve"]
    proc = await asyncio.create_subprocess_exec(
        *cmd, env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL
    )
    try:
        await wait_port(port, proc)
        result = await load(port, clients, messages, size)
    finally:
        proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), 30)
        except TimeoutError:
            proc.kill()
    return {"server": kind, "clients": clients, "size": size, **result}


def table(rows: list[dict]) -> str:
    out = [
        "| server | clients | size | msg/s | p50 DATA→250 ms | p99 DATA→250 ms | errors | ratio |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    base = {(r["clients"], r["size"]): r for r in rows if r["server"].startswith("bare")}
    for r in rows:
        b = base.get((r["clients"], r["size"]))
        ratio = f"{r['msg_per_s'] / b['msg_per_s']:.2f}" if b else "-"
        out.append(
            f"| {r['server']} | {r['clients']} | {r['size']} | {r['msg_per_s']} | "
            f"{r['p50_ms']} | {r['p99_ms']} | {r['errors']} | {ratio} |"
        )
    return "\n".join(out)


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clients", default="1,10,50")
    ap.add_argument("--messages", type=int, default=2000)
    ap.add_argument("--size", type=int, default=5120)
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for clients in [int(c) for c in args.clients.split(",")]:
            for kind in ("bare aiosmtpd (discard)", "mail-gateway"):
                print(f"running {kind}, {clients} clients ...", file=sys.stderr)
                rows.append(await run_server(kind, Path(tmp), clients, args.messages, args.size))
    print(table(rows))
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "ingest.json").write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
