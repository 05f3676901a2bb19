"""The capture folder (`[relay] mode = "capture"`): written by RelaySender, read by
`mail-gateway outbox`.

Each captured mail is one `<UTC timestamp>-<message id>.eml` file written atomically (a
temporary file, fsync, rename, fsync of the folder); its ID on the command line is the file
name without `.eml`.
"""

from __future__ import annotations

import contextlib
import email
import email.policy
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path

from gateway.config import Settings
from gateway.errors import NotFound


@dataclass(frozen=True)
class OutboxEntry:
    id: str
    path: Path
    size: int
    date: str
    to: str
    subject: str
    message_id: str
    in_reply_to: str
    auto: bool


def capture_dir(settings: Settings) -> Path:
    """The capture folder: [relay] capture_dir, or state_dir/outbox."""
    return settings.relay.capture_dir or settings.gateway.state_dir / "outbox"


def keep(folder: Path, message_id: str, raw: bytes) -> str:
    """Write one mail to the folder durably; returns the file name. Raises OSError.

    A mail whose Message-ID is already there (a retry after a crash between the write and
    recording "sent") is not written twice: the existing file's name is returned.
    """
    folder.mkdir(parents=True, exist_ok=True)
    slug = re.sub(r"[^A-Za-z0-9._-]", "_", message_id.split("@")[0])[:80]
    for existing in folder.glob(f"*-{slug}.eml"):
        return existing.name
    name = time.strftime("%Y%m%dT%H%M%S", time.gmtime()) + f"-{slug}.eml"
    tmp = folder / f".{name}.tmp"
    try:
        with open(tmp, "wb") as f:
            f.write(raw)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, folder / name)
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    return name


def _header(msg: email.message.Message, name: str) -> str:
    try:
        return " ".join(str(msg.get(name, "") or "").split())
    except Exception:  # a header we cannot decode is shown empty, never fatal
        return ""


def _entry(path: Path) -> OutboxEntry:
    with open(path, "rb") as f:
        msg = email.message_from_binary_file(f, policy=email.policy.default)
    return OutboxEntry(
        id=path.stem,
        path=path,
        size=path.stat().st_size,
        date=_header(msg, "Date"),
        to=_header(msg, "To"),
        subject=_header(msg, "Subject"),
        message_id=_header(msg, "Message-ID").strip("<>"),
        in_reply_to=_header(msg, "In-Reply-To").strip("<>"),
        auto=_header(msg, "Auto-Submitted").lower() not in ("", "no"),
    )


def list_outbox(folder: Path) -> list[OutboxEntry]:
    """Captured mails, oldest first (the file names start with the time)."""
    if not folder.is_dir():
        return []
    return [_entry(p) for p in sorted(folder.glob("*.eml")) if not p.name.startswith(".")]


def read_outbox(folder: Path, entry_id: str) -> bytes:
    """The raw bytes of one captured mail; NotFound when there is no such ID."""
    name = Path(entry_id).name.removesuffix(".eml")
    path = folder / f"{name}.eml"
    if not name or name.startswith(".") or not path.is_file():
        raise NotFound(f"outbox: no captured mail {entry_id!r} in {folder}")
    return path.read_bytes()
