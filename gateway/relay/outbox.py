"""Reading the capture folder (`[relay] mode = "capture"`) for `mail-gateway outbox`.

Each captured mail is one `<UTC timestamp>-<message id>.eml` file written atomically by
RelaySender; its ID on the command line is the file name without `.eml`.
"""

from __future__ import annotations

import email
import email.policy
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
