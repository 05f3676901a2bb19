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
import json
import logging
import time
from dataclasses import dataclass, replace

from sqlite_utils import Database

from gateway.config import AssistantSettings
from gateway.mail.addresses import address_key
from gateway.models import NO_AUTOMATION, Job, JobKind
from gateway.pipeline.assistant import (
    ESCALATE,
    REPLY,
    Assistant,
    ConversationView,
    Decision,
    EscalationFacts,
    MessageView,
    OffBackend,
)
from gateway.pipeline.assistant.signals import Signals, analyse
from gateway.pipeline.assistant.summary import extractive_summary
from gateway.store import jobs as jobq
from gateway.store.db import Store, now_iso
from gateway.store.mail import Recorded

log = logging.getLogger(__name__)

ASSISTANT_AUTHOR = "Assistant"


def build_assistant(settings: AssistantSettings) -> Assistant:
    """The assistant with the configured backend (the composition of its parts)."""
    from gateway.pipeline.assistant.knowledge import KnowledgeBackend, KnowledgeBase

    kb = None
    if settings.knowledge_dir is not None and settings.knowledge_dir.is_dir():
        kb = KnowledgeBase.from_folder(settings.knowledge_dir)
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


# --------------------------------------------------------------------------- store verbs


@dataclass(frozen=True)
class AssistState:
    conv: ConversationView
    skip: str  # why nothing is to be done, or ""
    sender_replies: int  # automatic replies to this sender within the rate window


def load_state(
    db: Database, conversation_id: int, message_row_id: int, settings: AssistantSettings
) -> AssistState | None:
    conv = load_view(db, conversation_id)
    if conv is None:
        return None
    escalated_at = db.execute(
        "SELECT escalated_at FROM conversations WHERE id = ?", [conversation_id]
    ).fetchone()[0]
    since = time.time() - settings.rate_window
    sender_replies = db.execute(
        "SELECT COUNT(*) FROM assistant_decisions WHERE sender = ? AND action = ? "
        "AND created_ts >= ?",
        [address_key(conv.customer_email), REPLY, since],
    ).fetchone()[0]
    return AssistState(conv, _skip(conv, message_row_id, escalated_at), sender_replies)


def load_view(db: Database, conversation_id: int) -> ConversationView | None:
    """The conversation as the assistant (and the handoff's facts) read it."""
    row = db.execute(
        "SELECT subject, status, customer_email, customer_name FROM conversations WHERE id = ?",
        [conversation_id],
    ).fetchone()
    if row is None:
        return None
    subject, status, customer_email, customer_name = row
    messages = []
    for r in db.execute(
        "SELECT id, direction, subject, new_text, text, sender_email, sender_name, author, "
        "annotations, attachments, sentiment, sentiment_label, language, created_at "
        "FROM messages WHERE conversation_id = ? ORDER BY id",
        [conversation_id],
    ):
        attachments = tuple(
            a.get("filename") or a.get("content_type", "attachment")
            for a in json.loads(r[9] or "[]")
            if not a.get("inline")
        )
        messages.append(
            MessageView(
                id=r[0],
                direction=r[1],
                subject=r[2] or "",
                text=(r[3] if r[3] and r[3].strip() else r[4]) or "",
                sender_email=r[5] or "",
                sender_name=r[6] or "",
                author=r[7] or "",
                annotations=frozenset(json.loads(r[8] or "[]")),
                attachments=attachments,
                sentiment=r[10],
                sentiment_label=r[11] or "",
                language=r[12] or "",
                created_at=r[13] or "",
            )
        )
    decisions = db.execute(
        "SELECT message_row_id, action, source FROM assistant_decisions "
        "WHERE conversation_id = ? ORDER BY id",
        [conversation_id],
    ).fetchall()
    replies = [d for d in decisions if d[1] == REPLY]
    conv = ConversationView(
        id=conversation_id,
        subject=subject or "",
        status=status,
        customer_email=customer_email or "",
        customer_name=customer_name or "",
        messages=tuple(messages),
        assistant_replies=len(replies),
        assistant_answers=tuple(f"“{d[2]}”" for d in replies if d[2]),
        answered_upto=max((d[0] for d in decisions), default=0),
    )
    return conv


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
    db.execute(
        "UPDATE messages SET sentiment = ?, sentiment_label = ?, language = ? WHERE id = ?",
        [signals.sentiment, signals.sentiment_label, signals.language, message_row_id],
    )


def apply_decision(
    db: Database, conv: ConversationView, message_row_id: int, decision: Decision
) -> bool:
    """Record the decision and enqueue its job, once; False when it was recorded already."""
    if decision.action not in (REPLY, ESCALATE):
        return False
    cur = db.execute(
        "INSERT OR IGNORE INTO assistant_decisions (conversation_id, message_row_id, sender, "
        "action, reasons, confidence, source, markdown, created_at, created_ts) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            conv.id,
            message_row_id,
            address_key(conv.customer_email),
            decision.action,
            json.dumps(list(decision.reasons)),
            decision.confidence,
            decision.source,
            decision.markdown,
            now_iso(),
            time.time(),
        ],
    )
    if cur.rowcount == 0:
        return False
    if decision.action == REPLY:
        db.execute("UPDATE conversations SET summary = ? WHERE id = ?", [decision.summary, conv.id])
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
    db.execute(
        "UPDATE conversations SET escalation_reason = ?, summary = ?, sentiment = ?, "
        "sentiment_label = ?, language = ?, escalated_at = ? WHERE id = ?",
        [
            facts.reason,
            facts.summary,
            facts.sentiment,
            facts.sentiment_label,
            facts.language,
            now_iso(),
            conv.id,
        ],
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
    scored = [m for m in pending if m.sentiment is not None]
    worst = min(scored, key=lambda m: m.sentiment) if scored else None
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
    row = db.execute(
        "SELECT escalation_reason, sentiment, sentiment_label, language, summary "
        "FROM conversations WHERE id = ?",
        [conversation_id],
    ).fetchone()
    if row is None:
        return None
    return EscalationFacts(
        conversation_id=conversation_id,
        reason=row[0] or "",
        sentiment=row[1],
        sentiment_label=row[2] or "",
        language=row[3] or "",
        summary=row[4] or "",
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
            text = await self.store.read(
                lambda db: db.execute(
                    "SELECT COALESCE(NULLIF(TRIM(new_text), ''), text, '') FROM messages "
                    "WHERE id = ?",
                    [row_id],
                ).fetchone()
            )
            if text is None:
                return None
            return await asyncio.to_thread(analyse, text[0] or "")
        except Exception:  # the signals are context, never a reason to lose the decision
            log.exception("message %s: sentiment/language failed", row_id)
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
