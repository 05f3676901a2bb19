"""Reply trimming: accuracy on the labelled replies and time per 5 KB mail, the gateway's
trimmer (gateway/mail/quotes.py) beside mail-parser-reply (the library it replaced), same run.

    .venv/bin/python bench/trimming.py

Accuracy: exact match and starts-with against tests/data/labelled/replies/*.expected.txt
(tests/helpers/labelled.py), and on the held-out replies (tests/data/labelled/holdout/replies,
README there: fixtures the rules were not tuned on) as rows of their own.
Speed: each labelled reply padded with quoted history to 5 KB,
trimmed in a loop; mean ms per mail. Goal (issues 14 item 8, 17 item 3): >= 95 % exact,
<= 1 ms per 5 KB mail.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from gateway.mail.quotes import reply_text

from helpers.labelled import LABELLED, labelled_replies, trimming_rates

HOLDOUT_REPLIES = LABELLED / "holdout" / "replies"

_LANGUAGES = ["en", "de", "fr", "es", "it", "nl", "sv", "da", "pl", "cs"]


def mail_parser_reply():
    """mail-parser-reply as parse.py called it before (its first reply's body)."""
    from mailparser_reply import EmailReplyParser

    parser = EmailReplyParser(languages=list(_LANGUAGES))

    def trim(text: str) -> str:
        message = parser.read(text)
        return (message.replies[0].body or "").strip() if message.replies else text.strip()

    return trim


def five_kb(text: str) -> str:
    pad = "\n".join("> " + "an older line of the quoted history, " * 2 for _ in range(80))
    return (text + "\n" + pad)[:5120]


def ms_per_mail(trim, texts: list[str], rounds: int) -> float:
    started = time.perf_counter()
    for _ in range(rounds):
        for text in texts:
            trim(text)
    return (time.perf_counter() - started) * 1000 / (rounds * len(texts))


def run(rounds: int = 5) -> list[dict]:
    """One row per trimmer and subset: all labelled replies, the upstream ones only (the
    project's own constructed replies left out), and the held-out replies."""
    replies = labelled_replies()
    upstream = [r for r in replies if not r[0].startswith("own-")]
    holdout = labelled_replies(HOLDOUT_REPLIES)
    texts = [five_kb(text) for _, text, _ in replies]
    rows = []
    for name, trim in (("gateway (mail/quotes.py)", reply_text), ("mail-parser-reply", None)):
        if trim is None:
            try:
                trim = mail_parser_reply()
            except ImportError:
                continue
        speed = ms_per_mail(trim, texts, rounds)
        for subset, items in (("all", replies), ("upstream only", upstream), ("holdout", holdout)):
            exact, starts, _wrong = trimming_rates(trim, items)
            rows.append(
                {
                    "trimmer": name,
                    "subset": subset,
                    "replies": len(items),
                    "exact": exact,
                    "starts_with": starts,
                    "ms_per_5kb": speed,
                }
            )
    return rows


def table(rows: list[dict]) -> str:
    lines = [
        "| trimmer | replies | exact match | starts with | ms per 5 KB mail |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['trimmer']} | {r['subset']}: {r['replies']} | {r['exact']:.1%} "
            f"| {r['starts_with']:.1%} | {r['ms_per_5kb']:.3f} |"
        )
    per_trimmer = 3  # rows per trimmer: all, upstream only, holdout
    if len(rows) == 2 * per_trimmer and rows[0]["ms_per_5kb"]:
        lines.append("")
        speed_up = rows[per_trimmer]["ms_per_5kb"] / rows[0]["ms_per_5kb"]
        lines.append(f"Speed-up: {speed_up:.0f}×")
    return "\n".join(lines)


if __name__ == "__main__":
    print("### Reply trimming (tests/data/labelled/replies and holdout/replies)\n")
    print(table(run()))
