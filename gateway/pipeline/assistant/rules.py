"""Escalation rules that apply whatever the backend: each returns a reason a rep understands.

They read only the customer's pending mails (the burst since the last outgoing mail), so a
keyword from a conversation already answered does not escalate every later question.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

from gateway.config import AssistantSettings
from gateway.pipeline.assistant.decision import ConversationView, MessageView
from gateway.pipeline.assistant.signals import sentiment_reliable

_SPACE = re.compile(r"\s+")


def normalise(text: str) -> str:
    """Lower-case, NFC, straight apostrophes and single spaces: what phrases are matched on."""
    text = unicodedata.normalize("NFC", text or "").casefold()
    text = text.replace("\u2019", "'").replace("\u2018", "'").replace("\u00a0", " ")
    return _SPACE.sub(" ", text)


def _text(messages: Iterable[MessageView]) -> str:
    return normalise("\n".join(f"{m.subject}\n{m.text}" for m in messages))


def asks_for_person(text: str, phrases: Iterable[str]) -> str:
    """The first configured phrase the text contains (whole words), or ""."""
    norm = normalise(text)
    for phrase in phrases:
        p = normalise(phrase).strip()
        if p and re.search(r"(?<!\w)" + re.escape(p) + r"(?!\w)", norm):
            return phrase
    return ""


def keywords_in(text: str, keywords: Iterable[str]) -> list[str]:
    """Configured keywords found at a word start (cancel matches cancellation)."""
    norm = normalise(text)
    found = []
    for kw in keywords:
        k = normalise(kw).strip()
        if k and re.search(r"(?<!\w)" + re.escape(k), norm) and kw not in found:
            found.append(kw)
    return found


def escalation_reasons(conv: ConversationView, settings: AssistantSettings) -> list[str]:
    """Every rule that says "a person should take this", as readable reasons."""
    pending = conv.pending
    if not pending:
        return []
    reasons: list[str] = []
    text = _text(pending)
    phrase = asks_for_person(text, settings.human_phrases)
    if phrase:
        reasons.append(f'the customer asks for a person ("{phrase}")')
    found = keywords_in(text, settings.escalate_keywords)
    if found:
        shown = ", ".join(f'"{k}"' for k in found)
        reasons.append(f"escalation keyword {shown}")
    # VADER's score means something only for the languages its lexicon has (signals.py): a
    # neutral German question reads as negative ("die"), so other languages never escalate on it
    scores = [
        m.sentiment for m in pending if m.sentiment is not None and sentiment_reliable(m.language)
    ]
    if scores:
        score = min(scores)
        if score <= settings.negative_sentiment:
            reasons.append(
                f"negative sentiment ({score:+.2f}, threshold {settings.negative_sentiment:+.2f})"
            )
    if conv.assistant_replies >= settings.max_replies:
        reasons.append(
            f"the assistant already replied {conv.assistant_replies} time(s) in this "
            f"conversation (limit {settings.max_replies})"
        )
    if settings.escalate_attachments:
        names = [n for m in pending for n in m.attachments]
        if names:
            reasons.append("the customer sent attachments: " + ", ".join(names[:5]))
    return reasons
