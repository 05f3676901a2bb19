"""The assistant: given a conversation, reply with Markdown, escalate with a reason, or do nothing.

One interface, three backends chosen in `[assistant] backend`:
- `off`: never answers; every conversation that is not automatic mail goes to a person.
- `knowledge`: Markdown articles ranked with BM25 (knowledge.py).
- `openai`: an OpenAI-compatible chat-completions endpoint asked for strict JSON (llm.py).

Whatever the backend, the escalation rules (rules.py) run first: a customer who asks for a
person, negative sentiment, configured keywords, too many automatic replies, attachments.
Everything here is pure (the openai backend's HTTP call is injected); gateway/jobs/assist.py is the
job that loads a conversation, applies debounce and rate limits, and enqueues what follows.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from gateway.config import AssistantSettings
from gateway.pipeline.assistant.decision import (
    ESCALATE,
    NOTHING,
    REPLY,
    ConversationView,
    Decision,
    MessageView,
)
from gateway.pipeline.assistant.rules import escalation_reasons
from gateway.pipeline.assistant.signals import language_name, sentiment_reliable
from gateway.pipeline.assistant.summary import extractive_summary

__all__ = [
    "ESCALATE",
    "NOTHING",
    "OFF_REASON",
    "REPLY",
    "Assistant",
    "Backend",
    "ConversationView",
    "Decision",
    "EscalationFacts",
    "MessageView",
    "OffBackend",
    "handoff_comment",
]

OFF_REASON = "assistant off: every conversation goes to a person"
CLOSED_STATUSES = frozenset({"handed_off", "closed"})


class Backend(Protocol):
    name: str

    async def decide(self, conv: ConversationView) -> Decision: ...


class OffBackend:
    name = "off"

    async def decide(self, conv: ConversationView) -> Decision:
        return Decision.escalate(OFF_REASON, source=self.name)


class Assistant:
    def __init__(self, settings: AssistantSettings, backend: Backend):
        self.settings = settings
        self.backend = backend

    async def decide(self, conv: ConversationView) -> Decision:
        if conv.status in CLOSED_STATUSES:
            return Decision.nothing(f"conversation is {conv.status}")
        if not conv.pending:
            return Decision.nothing("no customer mail waiting for an answer")
        if isinstance(self.backend, OffBackend):
            return Decision.escalate(OFF_REASON, summary=extractive_summary(conv), source="off")
        reasons = escalation_reasons(conv, self.settings)
        if reasons:
            summary = ""
            if self.backend.name == "openai":  # its summary is better than ours
                summary = (await self.backend.decide(conv)).summary
            return Decision.escalate(
                *reasons, summary=summary or extractive_summary(conv), source="rules"
            )
        decision = await self.backend.decide(conv)
        return dataclasses.replace(decision, summary=decision.summary or extractive_summary(conv))


# --------------------------------------------------------------------------- handoff comment


@dataclass(frozen=True)
class EscalationFacts:
    """What the handoff needs to explain an escalation (stored on the conversation row)."""

    conversation_id: int
    reason: str
    sentiment: float | None = None
    sentiment_label: str = ""
    language: str = ""
    summary: str = ""


def handoff_comment(facts: EscalationFacts | Mapping[str, Any]) -> str:
    """The internal comment a rep reads first: why, how the customer feels, in which language."""
    if isinstance(facts, Mapping):
        fields = {f.name for f in dataclasses.fields(EscalationFacts)}
        data = {k: v for k, v in facts.items() if k in fields}
        if "conversation_id" not in data and "id" in facts:
            data["conversation_id"] = facts["id"]
        data.setdefault("reason", facts.get("escalation_reason") or "")
        for key in ("sentiment_label", "language", "summary"):
            data[key] = data.get(key) or ""
        facts = EscalationFacts(**data)
    lines = [f"Escalated: {facts.reason or 'handed to a person'}"]
    if facts.sentiment is None:
        lines.append("Sentiment: not measured")
    elif not sentiment_reliable(facts.language):
        lines.append(
            f"Sentiment: not assessed ({facts.language or 'language unknown'}: the sentiment "
            "lexicon, VADER, is English only; no escalation on it)"
        )
    else:
        lines.append(f"Sentiment: {facts.sentiment_label or 'neutral'} ({facts.sentiment:+.2f})")
    if facts.language:
        lines.append(f"Language: {facts.language} ({language_name(facts.language)})")
    else:
        lines.append("Language: unknown (too little text)")
    lines.append(f"Session: mail-gateway sessions show {facts.conversation_id}")
    return "\n".join(lines)
