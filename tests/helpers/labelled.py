"""The labelled machine/human set (tests/data/labelled, README there) and its evaluation.

Shared by tests/test_classify.py (the rates as floors) and bench/classify.py (the table in
`make bench`). Imports neither pytest nor a test. The class of a mail is its folder
(`machine/<class>/`, `human/`; `replies/` are people's too); the predicted class is
`gateway.pipeline.classify.mail_class` of what `classify` annotates, with the envelope sender
as tests/data/cases/README.md fixes it (Return-Path, else From).
"""

from __future__ import annotations

import re
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from gateway.mail.parse import parse_mail
from gateway.models import ParsedMail
from gateway.pipeline.classify import HUMAN, classify, mail_class

LABELLED = Path(__file__).resolve().parents[1] / "data" / "labelled"
OWN_DOMAIN = "acme-support.test"  # the gateway's own domain in this evaluation: no mail uses it
_RETURN_PATH = re.compile(rb"^Return-Path:[ \t]*<?([^>\r\n]*)>?", re.IGNORECASE | re.MULTILINE)


def envelope_sender(raw: bytes, mail: ParsedMail) -> str | None:
    """Return-Path if present (<> is the null sender ""), else the From address, else None
    (unknown: not the null sender)."""
    head = re.split(rb"\r?\n\r?\n", raw, maxsplit=1)[0]
    match = _RETURN_PATH.search(head)
    if match:
        return match.group(1).decode("latin-1").strip()
    return mail.sender.email if mail.sender else None


def labelled_files(root: Path = LABELLED) -> list[tuple[Path, str]]:
    """(path, expected class) of every labelled mail, sorted."""
    out: list[tuple[Path, str]] = []
    for path in sorted(root.rglob("*.eml")):
        rel = path.relative_to(root).parts
        if rel[0] == "machine":
            out.append((path, rel[1]))
        elif rel[0] in ("human", "replies"):
            out.append((path, HUMAN))
    return out


def predict(raw: bytes) -> str:
    mail = parse_mail(raw)
    annotations = classify(
        mail, envelope_from=envelope_sender(raw, mail), own_domain=OWN_DOMAIN, loop_id="gw"
    )
    return mail_class(annotations)


@dataclass
class Result:
    # (expected, predicted) -> count
    confusion: Counter[tuple[str, str]] = field(default_factory=Counter)
    wrong: list[tuple[str, str, str]] = field(default_factory=list)
    rows: list[tuple[str, str, str]] = field(default_factory=list)  # (file, expected, got)
    seconds: float = 0.0

    def classes(self) -> list[str]:
        return sorted({e for e, _ in self.confusion} | {p for _, p in self.confusion})

    def upstream_recall(self, cls: str) -> tuple[int, int]:
        """(recognised, labelled) mails of cls from public sets (the own-* files left out)."""
        mine = [
            got == cls
            for rel, expected, got in self.rows
            if expected == cls and not rel.rsplit("/", 1)[-1].startswith("own-")
        ]
        return sum(mine), len(mine)

    def lost_humans(self) -> int:
        """Human mails put in a machine class."""
        return sum(n for (e, p), n in self.confusion.items() if e == HUMAN and p != HUMAN)

    def rates(self, cls: str) -> tuple[int, float, float]:
        """(mails labelled cls, precision, recall)."""
        tp = self.confusion[(cls, cls)]
        support = sum(n for (e, _), n in self.confusion.items() if e == cls)
        predicted = sum(n for (_, p), n in self.confusion.items() if p == cls)
        precision = tp / predicted if predicted else 1.0
        recall = tp / support if support else 1.0
        return support, precision, recall


def run(root: Path = LABELLED) -> Result:
    result = Result()
    started = time.perf_counter()
    for path, expected in labelled_files(root):
        got = predict(path.read_bytes())
        result.confusion[(expected, got)] += 1
        result.rows.append((str(path.relative_to(root)), expected, got))
        if got != expected:
            result.wrong.append((str(path.relative_to(root)), expected, got))
    result.seconds = time.perf_counter() - started
    return result


# --------------------------------------------------------------------------- replies (trimming)

REPLIES = LABELLED / "replies"


def labelled_replies(root: Path = REPLIES) -> list[tuple[str, str, str]]:
    """(name, the mail's full text as the parser gives it, the expected new text), sorted."""
    out: list[tuple[str, str, str]] = []
    for path in sorted(root.glob("*.eml")):
        expected = path.with_suffix(".expected.txt").read_text(encoding="utf-8")
        out.append((path.stem, parse_mail(path.read_bytes()).text, expected.strip()))
    return out


def trimming_rates(trim, replies: list[tuple[str, str, str]]) -> tuple[float, float, list[str]]:
    """(exact-match rate, starts-with rate, names that do not match exactly) of `trim(text)`
    against the expected new texts; both compared with surrounding whitespace stripped.
    starts-with: the expected text is the start of what trim returned (nothing the customer
    wrote was cut, some history may be left)."""
    exact = starts = 0
    wrong: list[str] = []
    for name, text, expected in replies:
        got = (trim(text) or "").strip()
        if got == expected:
            exact += 1
        else:
            wrong.append(name)
        if got.startswith(expected):
            starts += 1
    total = len(replies) or 1
    return exact / total, starts / total, wrong
