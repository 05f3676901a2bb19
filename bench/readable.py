"""How readable the gateway's parse is, and what it costs against the email package alone.

    .venv/bin/python bench/readable.py [--rounds 3]

Over the shared corpora (../shared/corpora, about 435 mails; skipped when absent) and the
field cases (tests/data/cases): mails whose subject, text, names or file names hold U+FFFD,
raw ISO-2022-JP escapes or `[cid:…]` stand-ins, and mails left without a subject or a sender.
Speed is a ratio in the same run: parse_mail against the baseline of the email package
reading the same bytes (policy.default, every part's content), best of --rounds.
"""

from __future__ import annotations

import argparse
import re
import time
from email import policy
from email.parser import BytesParser

from common import ROOT

from gateway.mail.parse import parse_mail
from gateway.models import ParsedMail

CORPORA = ROOT.parent / "shared" / "corpora"
CASES = ROOT / "tests" / "data" / "cases"


def mails() -> list[bytes]:
    paths = sorted(CASES.glob("*.eml"))
    if CORPORA.is_dir():
        from helpers.corpora import mail_files

        paths += mail_files()
    return [re.sub(rb"\r\n|\r|\n", b"\r\n", p.read_bytes()) for p in paths]


def baseline(raw: bytes) -> None:
    try:  # the email package alone raises on some mails (a broken RFC 2231 parameter)
        msg = BytesParser(policy=policy.default).parsebytes(raw)
        str(msg.get("subject", ""))
        parts = list(msg.walk())
    except Exception:
        return
    for part in parts:
        try:
            part.get_content()
        except Exception:  # the baseline reads what it can, as a naive reader would
            pass


def shown(mail: ParsedMail) -> str:
    people = [mail.sender] if mail.sender else []
    return "".join(
        [mail.subject, mail.text, *(a.filename for a in mail.attachments)]
        + [p.name for p in people + mail.to]
    )


def best_of(rounds: int, fn, raws: list[bytes]) -> float:
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        for raw in raws:
            fn(raw)
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    raws = mails()
    parsed = [parse_mail(raw) for raw in raws]  # also warms the lazy imports
    counts = {
        "U+FFFD shown": sum("\ufffd" in shown(m) for m in parsed),
        "raw JIS escapes": sum("\x1b$" in shown(m) for m in parsed),
        "[cid:…] in the text": sum("[cid:" in m.text for m in parsed),
        "no subject": sum(not m.subject for m in parsed),
        "no sender": sum(m.sender is None for m in parsed),
    }
    ours = best_of(args.rounds, parse_mail, raws)
    base = best_of(args.rounds, baseline, raws)
    print(f"| {len(raws)} mails | count |\n|---|---|")
    for name, value in counts.items():
        print(f"| {name} | {value} |")
    print(
        f"\nparse_mail {ours:.2f} s, email package alone {base:.2f} s: "
        f"ratio {ours / base:.2f} (best of {args.rounds})"
    )


if __name__ == "__main__":
    main()
