"""The `assist` job: the assistant's decision on a conversation, and the jobs that follow it.

After a customer mail is recorded, `AssistJob.after_record` stores the mail's sentiment and
language and enqueues an `assist` job due `debounce` seconds later. When it runs, the job does
nothing if a newer customer mail arrived meanwhile (that mail's job covers the whole burst), if
the mail is automatic (auto-reply, bounce, list, own mail, noreply), or if the conversation is
already with a person. Otherwise it asks the assistant and records the decision, in the same
transaction as the job that carries it out:

- reply:    `send_reply` {"conversation_id", "markdown", "author": "Assistant",
            "source": "assistant", "auto": true}, key `assistant-reply:{conversation}:{message}`
- escalate: the facts on the conversation row (escalation_reason, summary, sentiment,
            sentiment_label, language, escalated_at), then `handoff` {"conversation_id",
            "reason", "trigger": "assistant"}, key `handoff:{conversation}`

A reply beyond `rate_limit` per sender and `rate_window` becomes an escalation instead.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, replace
from typing import Any

from gateway.addresses import address_key
from gateway.config import AssistantSettings
from gateway.models import NO_AUTOMATION, Job, JobKind
from gateway.pipeline.assistant import (
    ESCALATE,
    REPLY,
    Assistant,
    Backend,
    ConversationView,
    Decision,
    EscalationFacts,
    MessageView,
    OffBackend,
)
from gateway.pipeline.assistant.signals import Signals, analyse
from gateway.pipeline.assistant.summary import extractive_summary
from gateway.store import assistant as st
from gateway.store import jobs as jobq
from gateway.store.db import Database, Store
from gateway.store.mail import Recorded

log = logging.getLogger(__name__)

ASSISTANT_AUTHOR = "Assistant"


def build_assistant(settings: AssistantSettings) -> Assistant:
    """The assistant with the configured backend (the composition of its parts)."""
    from gateway.jobs.knowledge import knowledge_base
    from gateway.pipeline.assistant.knowledge import KnowledgeBackend, KnowledgeBase

    kb = None
    backend: Backend
    if settings.knowledge_dir is not None and settings.knowledge_dir.is_dir():
        kb = knowledge_base(settings.knowledge_dir)
    if settings.backend == "knowledge":
        backend = KnowledgeBackend(kb or KnowledgeBase([]), settings.confidence)
    elif settings.backend == "openai":
        from gateway.openai_client import OpenAIChatClient
        from gateway.pipeline.assistant.llm import OpenAIBackend

        client = OpenAIChatClient(settings.base_url, settings.api_key, timeout=settings.timeout)
        backend = OpenAIBackend(client, model=settings.model, kb=kb)
    else:
        backend = OffBackend()
    return Assistant(settings, backend)


# ------------------------------------------------------- reading and writing the decision


@dataclass(frozen=True)
class AssistState:
    conv: ConversationView
    skip: str  # why nothing is to be done, or ""
    sender_replies: int  # automatic replies to this sender within the rate window


def load_state(
    db: Database, conversation_id: int, message_row_id: int, settings: AssistantSettings
) -> AssistState | None:
    row = st.conversation(db, conversation_id)
    if row is None:
        return None
    conv = _view(db, conversation_id, row)
    since = time.time() - settings.rate_window
    sender_replies = st.decisions_since(db, address_key(conv.customer_email), REPLY, since)
    return AssistState(conv, _skip(conv, message_row_id, row["escalated_at"]), sender_replies)


def load_view(db: Database, conversation_id: int) -> ConversationView | None:
    """The conversation as the assistant (and the handoff's facts) read it."""
    row = st.conversation(db, conversation_id)
    return None if row is None else _view(db, conversation_id, row)


def _view(db: Database, conversation_id: int, row: dict[str, Any]) -> ConversationView:
    messages = tuple(
        MessageView(
            id=m["id"],
            direction=m["direction"],
            subject=m["subject"] or "",
            text=(m["new_text"] if m["new_text"] and m["new_text"].strip() else m["text"]) or "",
            sender_email=m["sender_email"] or "",
            sender_name=m["sender_name"] or "",
            author=m["author"] or "",
            annotations=frozenset(m["annotations"]),
            attachments=tuple(
                a.get("filename") or a.get("content_type", "attachment")
                for a in m["attachments"]
                if not a.get("inline")
            ),
            sentiment=m["sentiment"],
            sentiment_label=m["sentiment_label"] or "",
            language=m["language"] or "",
            created_at=m["created_at"] or "",
        )
        for m in st.messages(db, conversation_id)
    )
    decisions = st.decisions(db, conversation_id)
    replies = [d for d in decisions if d[1] == REPLY]
    return ConversationView(
        id=conversation_id,
        subject=row["subject"] or "",
        status=row["status"],
        customer_email=row["customer_email"] or "",
        customer_name=row["customer_name"] or "",
        messages=messages,
        assistant_replies=len(replies),
        assistant_answers=tuple(f"“{d[2]}”" for d in replies if d[2]),
        answered_upto=max((d[0] for d in decisions), default=0),
    )


def _skip(conv: ConversationView, message_row_id: int, escalated_at: str | None) -> str:
    if conv.status in ("handed_off", "closed"):
        return f"conversation is {conv.status}"
    if escalated_at:
        return "conversation already escalated to a person"
    target = next((m for m in conv.messages if m.id == message_row_id), None)
    if target is None or target.direction != "in":
        return "no such customer mail"
    if target.annotations & NO_AUTOMATION:
        return "automatic mail (" + ", ".join(sorted(target.annotations & NO_AUTOMATION)) + ")"
    if message_row_id <= conv.answered_upto:
        return "already decided"
    for m in conv.messages:
        if m.id > message_row_id and m.direction == "out":
            return "already answered"
        if m.id > message_row_id and not (m.annotations & NO_AUTOMATION):
            return "a newer customer mail follows (its job answers the burst)"
    return ""


def store_signals(db: Database, message_row_id: int, signals: Signals) -> None:
    st.store_signals(
        db,
        message_row_id,
        sentiment=signals.sentiment,
        sentiment_label=signals.sentiment_label,
        language=signals.language,
    )


def apply_decision(
    db: Database, conv: ConversationView, message_row_id: int, decision: Decision
) -> bool:
    """Record the decision and enqueue its job, once; False when it was recorded already."""
    if decision.action not in (REPLY, ESCALATE):
        return False
    kept = st.record_decision(
        db,
        conversation_id=conv.id,
        message_row_id=message_row_id,
        sender=address_key(conv.customer_email),
        action=decision.action,
        reasons=list(decision.reasons),
        confidence=decision.confidence,
        source=decision.source,
        markdown=decision.markdown,
    )
    if not kept:
        return False
    if decision.action == REPLY:
        st.set_summary(db, conv.id, decision.summary)
        jobq.enqueue(
            db,
            JobKind.SEND_REPLY,
            {
                "conversation_id": conv.id,
                "markdown": decision.markdown,
                "author": ASSISTANT_AUTHOR,
                "source": "assistant",
                "auto": True,
            },
            dedupe_key=f"assistant-reply:{conv.id}:{message_row_id}",
        )
        return True
    facts = escalation_facts_for(conv, decision)
    st.record_escalation(
        db,
        conv.id,
        reason=facts.reason,
        summary=facts.summary,
        sentiment=facts.sentiment,
        sentiment_label=facts.sentiment_label,
        language=facts.language,
    )
    jobq.enqueue(
        db,
        JobKind.HANDOFF,
        {"conversation_id": conv.id, "reason": facts.reason, "trigger": "assistant"},
        dedupe_key=f"handoff:{conv.id}",
    )
    return True


def escalation_facts_for(conv: ConversationView, decision: Decision) -> EscalationFacts:
    """The burst's most negative sentiment, and the language of its longest mail."""
    pending = conv.pending or conv.customer_messages
    scored = [(m.sentiment, m) for m in pending if m.sentiment is not None]
    worst = min(scored, key=lambda pair: pair[0])[1] if scored else None
    languages = [m for m in pending if m.language]
    longest = max(languages, key=lambda m: len(m.text)) if languages else None
    return EscalationFacts(
        conversation_id=conv.id,
        reason=decision.reason or "handed to a person",
        sentiment=worst.sentiment if worst else None,
        sentiment_label=worst.sentiment_label if worst else "",
        language=longest.language if longest else "",
        summary=decision.summary,
    )


def handoff_facts(db: Database, conversation_id: int, reason: str) -> EscalationFacts:
    """Facts for any handoff, also one a person asked for: stored ones first, else measured.

    An escalation by the assistant stored its reason, sentiment, language and summary on the
    conversation; a person's handoff has none, so they are taken from the messages.
    """
    stored = escalation_facts(db, conversation_id)
    conv = load_view(db, conversation_id)
    if conv is None or stored is None:
        return EscalationFacts(conversation_id=conversation_id, reason=reason)
    measured = escalation_facts_for(conv, Decision.escalate(reason))
    if measured.sentiment is None or not measured.language:
        # a handoff can run before the after-record hook stored the signals: measure now
        text = "\n".join(m.text for m in conv.customer_messages)
        now = analyse(text)
        measured = replace(
            measured,
            sentiment=measured.sentiment if measured.sentiment is not None else now.sentiment,
            sentiment_label=measured.sentiment_label or now.sentiment_label,
            language=measured.language or now.language,
        )
    return EscalationFacts(
        conversation_id=conversation_id,
        reason=stored.reason or reason,
        sentiment=stored.sentiment if stored.sentiment is not None else measured.sentiment,
        sentiment_label=stored.sentiment_label or measured.sentiment_label,
        language=stored.language or measured.language,
        summary=stored.summary or extractive_summary(conv),
    )


def escalation_facts(db: Database, conversation_id: int) -> EscalationFacts | None:
    """The stored escalation facts of a conversation (for the handoff's comment and ticket)."""
    row = st.conversation(db, conversation_id)
    if row is None:
        return None
    return EscalationFacts(
        conversation_id=conversation_id,
        reason=row["escalation_reason"] or "",
        sentiment=row["sentiment"],
        sentiment_label=row["sentiment_label"] or "",
        language=row["language"] or "",
        summary=row["summary"] or "",
    )


# --------------------------------------------------------------------------- the job


class AssistJob:
    def __init__(self, store: Store, settings: AssistantSettings, assistant: Assistant):
        self.store = store
        self.settings = settings
        self.assistant = assistant

    @classmethod
    def from_settings(cls, store: Store, settings: AssistantSettings) -> AssistJob:
        return cls(store, settings, build_assistant(settings))

    async def after_record(self, recorded: Recorded, annotations: frozenset[str]) -> None:
        """MailProcessor hook: a customer mail was stored; measure it, schedule the decision."""
        if annotations & NO_AUTOMATION:
            return  # stored and visible, never answered, never handed off on its own
        row_id, cid = recorded.message_row_id, recorded.conversation_id
        signals = await self._signals(row_id)
        due = time.time() + self.settings.debounce

        def write(db: Database) -> None:
            if signals is not None:
                store_signals(db, row_id, signals)
            jobq.enqueue(
                db,
                JobKind.ASSIST,
                {"conversation_id": cid, "message_row_id": row_id},
                dedupe_key=f"assist:{cid}:{row_id}",
                run_after=due,
            )

        await self.store.write(write)

    async def _signals(self, row_id: int) -> Signals | None:
        try:
            text = await self.store.read(lambda db: st.customer_text(db, row_id))
            if text is None:
                return None
            return await asyncio.to_thread(analyse, text)
        except Exception:  # the signals are context, never a reason to lose the decision
            log.exception("mail %s: sentiment/language failed", row_id)
            return None

    async def __call__(self, job: Job) -> None:
        cid = int(job.payload["conversation_id"])
        row_id = int(job.payload["message_row_id"])
        state = await self.store.read(lambda db: load_state(db, cid, row_id, self.settings))
        if state is None:
            return
        if state.skip:
            log.info("assist conversation %s mail %s: nothing to do (%s)", cid, row_id, state.skip)
            return
        conv = await self._backfill(state.conv)
        decision = await self.assistant.decide(conv)
        if decision.action == REPLY and state.sender_replies >= self.settings.rate_limit:
            decision = Decision.escalate(
                f"rate limit: {state.sender_replies} automatic replies to {conv.customer_email} "
                f"within {self.settings.rate_window} s (limit {self.settings.rate_limit})",
                summary=decision.summary,
                source="rules",
            )
        done = await self.store.write(lambda db: apply_decision(db, conv, row_id, decision))
        log.info(
            "assist conversation %s mail %s: %s%s",
            cid,
            row_id,
            decision.action,
            f" ({decision.reason})" if decision.reasons else "",
        )
        if not done:
            log.debug("assist conversation %s mail %s: decided before", cid, row_id)

    async def _backfill(self, conv: ConversationView) -> ConversationView:
        """Measure pending mails the hook could not (it failed, or they predate the assistant)."""
        missing = [m for m in conv.pending if m.sentiment is None]
        if not missing:
            return conv
        measured = {}
        for m in missing:
            measured[m.id] = await asyncio.to_thread(analyse, m.text)

        def write(db: Database) -> None:
            for mid, sig in measured.items():
                store_signals(db, mid, sig)

        await self.store.write(write)

        return replace(
            conv,
            messages=tuple(
                replace(
                    m,
                    sentiment=measured[m.id].sentiment,
                    sentiment_label=measured[m.id].sentiment_label,
                    language=measured[m.id].language,
                )
                if m.id in measured
                else m
                for m in conv.messages
            ),
        )
