"""What the assistant sees of a conversation, and what it decides about it: plain data."""

from __future__ import annotations

from dataclasses import dataclass, field

from gateway.models import NO_AUTOMATION

REPLY = "reply"
ESCALATE = "escalate"
NOTHING = "nothing"


@dataclass(frozen=True)
class MessageView:
    id: int  # messages.id
    direction: str  # in | out
    subject: str
    text: str  # the new part of the mail (no quoted history, no signature)
    sender_email: str = ""
    sender_name: str = ""
    author: str = ""  # outgoing: who wrote it
    annotations: frozenset[str] = frozenset()
    attachments: tuple[str, ...] = ()  # file names of real (not inline) attachments
    sentiment: float | None = None
    sentiment_label: str = ""
    language: str = ""
    created_at: str = ""


@dataclass(frozen=True)
class ConversationView:
    id: int
    subject: str
    status: str
    customer_email: str
    customer_name: str = ""
    messages: tuple[MessageView, ...] = ()
    assistant_replies: int = 0  # automatic replies already sent in this conversation
    assistant_answers: tuple[str, ...] = ()  # what they were about (article titles, first lines)
    answered_upto: int = 0  # messages.id of the newest customer mail the assistant decided on

    @property
    def pending(self) -> tuple[MessageView, ...]:
        """The customer's mails since the last outgoing one: the burst to decide on.

        Mails annotated as automatic (auto-reply, bounce, list, …) are left out: they are
        stored and visible, but never answered.
        """
        out: list[MessageView] = []
        for m in reversed(self.messages):
            if m.direction == "out" or m.id <= self.answered_upto:
                break
            if not _automatic(m):
                out.append(m)
        return tuple(reversed(out))

    @property
    def customer_messages(self) -> tuple[MessageView, ...]:
        return tuple(m for m in self.messages if m.direction == "in" and not _automatic(m))


def _automatic(m: MessageView) -> bool:
    return bool(m.annotations & NO_AUTOMATION)


@dataclass(frozen=True)
class Decision:
    """reply (with Markdown), escalate (with reasons a rep understands), or do nothing."""

    action: str
    markdown: str = ""
    reasons: tuple[str, ...] = ()
    summary: str = ""  # ticket description; empty = build the extractive one
    confidence: float | None = None
    source: str = ""  # the article (title) or backend that produced the answer
    details: dict = field(default_factory=dict)

    @property
    def reason(self) -> str:
        return "; ".join(self.reasons)

    @classmethod
    def reply(cls, markdown: str, **kw) -> Decision:
        return cls(REPLY, markdown=markdown, **kw)

    @classmethod
    def escalate(cls, *reasons: str, **kw) -> Decision:
        return cls(ESCALATE, reasons=tuple(r for r in reasons if r), **kw)

    @classmethod
    def nothing(cls, why: str = "") -> Decision:
        return cls(NOTHING, reasons=(why,) if why else ())
