"""The shared mail corpora (../shared/corpora next to the checkout): where, and which files are
mails.

The corpora are real-world mails from other projects' test suites (see their README.md); the
tests in tests/test_corpora_*.py run every one through parsing and intake. Without them a
run skips those tests with a message, as the corpora's README asks (CI runs a clean clone of
this repository, without ../shared). A job that must not go green without them sets
GATEWAY_REQUIRE_CORPORA=1: then a missing folder fails the tests. GATEWAY_CORPORA names another
folder (e.g. from a git worktree, whose parent is not the main checkout's).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CORPORA = Path(os.environ.get("GATEWAY_CORPORA") or ROOT.parent / "shared" / "corpora")

CODE_SUFFIXES = {
    ".rb",
    ".py",
    ".go",
    ".js",
    ".ts",
    ".php",
    ".java",
    ".json",
    ".yml",
    ".yaml",
    ".md",
    ".html",
    ".sh",
    ".toml",
    ".cfg",
    ".ini",
}
NOT_MAIL_NAMES = {"SOURCES.txt", "README.md", "LICENSE", "LICENSE.txt"}
MAIL_FOLDERS = re.compile(r"(?:^|/)(?:e?mails?|emails|fixtures|test_files|messages)(?:/|$)", re.I)
HEADER_LINE = re.compile(rb"^[!-9;-~]+:[ \t]")


def corpora_required() -> bool:
    return os.environ.get("GATEWAY_REQUIRE_CORPORA", "").strip().lower() not in (
        "", "0", "false", "no"
    )  # fmt: skip


def require_corpora() -> Path:
    """The corpora folder; skips the test without it, or fails it when they are required."""
    if not CORPORA.is_dir():
        message = (
            f"shared corpora not present at {CORPORA} (clone them there, or set "
            "GATEWAY_CORPORA)"
        )
        if corpora_required():
            pytest.fail(message + ": GATEWAY_REQUIRE_CORPORA is set", pytrace=False)
        pytest.skip(message)
    return CORPORA


def looks_like_mail(path: Path) -> bool:
    """A file of the corpora that holds one mail: by suffix, folder name or first lines."""
    if path.name in NOT_MAIL_NAMES or path.suffix.lower() in CODE_SUFFIXES:
        return False
    if path.suffix.lower() in {".eml", ".msg", ".raw"}:
        return True
    rel = path.relative_to(CORPORA).as_posix()
    if MAIL_FOLDERS.search(rel.rsplit("/", 1)[0] if "/" in rel else ""):
        return True
    with path.open("rb") as fh:
        head = fh.read(2048)
    return any(HEADER_LINE.match(line) for line in head.splitlines()[:5])


def mail_files() -> list[Path]:
    """Every mail file of the corpora, sorted (see require_corpora when they are missing)."""
    root = require_corpora()
    return sorted(p for p in root.rglob("*") if p.is_file() and looks_like_mail(p))
