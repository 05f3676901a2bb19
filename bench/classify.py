"""Classification of the labelled machine/human set: precision and recall per class.

    .venv/bin/python bench/classify.py

The set and its evaluation: tests/helpers/labelled.py and tests/data/labelled/README.md. Goals
(issue 14 item 7): bounces recognised >= 99.5 %, no human mail put in a machine class.

The held-out set (tests/data/labelled/holdout, README there) is printed as its own table: mails
the rules were not tuned on, the independent check of those goals.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from helpers.labelled import LABELLED, Result, run

HOLDOUT = LABELLED / "holdout"


def holdout_table() -> str:
    """The held-out set's table, same shape as `table`."""
    return table(run(HOLDOUT))


def table(result: Result) -> str:
    lines = ["| class | mails | precision | recall |", "|---|---|---|---|"]
    for cls in result.classes():
        support, precision, recall = result.rates(cls)
        lines.append(f"| {cls} | {support} | {precision:.1%} | {recall:.1%} |")
    lines.append("")
    ok, total = result.upstream_recall("bounce")
    humans_ok, humans = result.upstream_recall("human")
    lines.append(
        f"From public sets only (the project's own-* mails left out): bounces {ok} of {total} "
        f"recognised, human mails {humans_ok} of {humans} kept human."
    )
    lines.append(
        f"Human mails put in a machine class: {result.lost_humans()}; "
        f"{sum(result.confusion.values())} mails in {result.seconds:.1f} s"
    )
    for rel, expected, got in result.wrong:
        lines.append(f"- `{rel}`: expected {expected}, got {got}")
    return "\n".join(lines)


if __name__ == "__main__":
    print("### Classification (tests/data/labelled)\n")
    print(table(run()))
    print("\n### Classification, held-out set (tests/data/labelled/holdout)\n")
    print(holdout_table())
