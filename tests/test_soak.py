"""The reliability campaign, short: SIGKILLs, 20% HubSpot faults, a failing relay; invariants.

The full-length run is `make soak` (bench/soak.py); this one keeps `make test` under budget.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

from soak import run_campaign, table


@pytest.mark.slow
@pytest.mark.timeout(240)
async def test_short_campaign_keeps_every_invariant(tmp_path: Path):
    report = await run_campaign(40, 3, seed=3, workdir=tmp_path, drain_seconds=60)
    print(table(report))
    assert len(report["kills"]) == 3
    assert report["mails_250"] > 20 and report["rep_replies_posted"] > 5
    failed = {k: v["detail"] for k, v in report["invariants"].items() if not v["ok"]}
    log = (tmp_path / "daemon.log").read_text(errors="replace")[-3000:]
    assert not failed, f"{failed}\n--- daemon log tail ---\n{log}"
