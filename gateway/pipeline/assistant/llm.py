"""The openai backend: any OpenAI-compatible chat-completions endpoint, asked for strict JSON.

Pure parts here (the request body, the answer's validation); the HTTP call lives in
gateway/openai_client.py behind the small `ChatClient` protocol, so tests and other
transports can stand in. A timeout, an HTTP error or an answer that is not the agreed JSON
escalates with the reason: nothing unchecked ever reaches the customer.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Protocol

from gateway.errors import GatewayError
from gateway.pipeline.assistant.decision import ConversationView, Decision
from gateway.pipeline.assistant.knowledge import KnowledgeBase, question_text
from gateway.pipeline.assistant.summary import MAX_CHARS

log = logging.getLogger(__name__)

MAX_REPLY_CHARS = 8000

SYSTEM_PROMPT = """\
You are the first-line assistant of a company's email support. You read one support
conversation and decide whether you can answer the customer's latest mail yourself or whether
a person must take over.

Answer with ONE JSON object and nothing else:
{"action": "reply" or "escalate",
 "reply_markdown": "the answer to the customer in Markdown (empty when escalating)",
 "reason": "for escalate: one sentence that tells a support rep why a person is needed",
 "summary": "ticket description, at most 1000 characters: subject, the customer's request,
             identifiers such as order numbers, what was already answered"}

Rules:
- Reply only when the knowledge excerpts answer the question completely and correctly.
  Never invent policies, prices, dates or promises. When in doubt, escalate.
- Escalate when the customer asks for a person, is upset, wants a refund, cancellation or
  legal action, or when the question needs access to their account or order.
- Write the reply in the customer's language, friendly and short, without a signature.
"""


class BackendError(GatewayError):
    """The endpoint could not be reached or answered with an error."""


class MalformedAnswer(GatewayError, ValueError):
    """The model's answer is not the agreed JSON decision."""


class ChatClient(Protocol):
    async def complete(self, payload: dict) -> dict:
        """POST the chat-completions request; the decoded JSON response. Raises TimeoutError
        or BackendError."""
        ...


def _transcript(conv: ConversationView, limit: int = 12) -> str:
    lines = [f"Subject: {conv.subject}", f"Customer: {conv.customer_name} <{conv.customer_email}>"]
    for m in conv.messages[-limit:]:
        who = "Customer" if m.direction == "in" else (m.author or "Support")
        lines.append(f"\n--- {who} ({m.created_at}) ---\n{m.text.strip()[:4000]}")
    return "\n".join(lines)


def build_request(
    conv: ConversationView, *, model: str, kb: KnowledgeBase | None = None, excerpts: int = 3
) -> dict:
    """The chat-completions body: system rules, knowledge excerpts, the conversation."""
    parts = []
    if kb is not None:
        hits = kb.search(question_text(conv), k=excerpts)
        if hits:
            parts.append("Knowledge excerpts:")
            for h in hits:
                link = f" ({h.section.url})" if h.section.url else ""
                parts.append(f"\n## {h.section.title}{link}\n{h.section.body}")
            parts.append("")
    parts.append("Conversation (newest last):\n" + _transcript(conv))
    return {
        "model": model,
        "temperature": 0,
        "response_format": {"type": "json_object"},
        "messages": [
            {"role": "system", "content": SYSTEM_PROMPT},
            {"role": "user", "content": "\n".join(parts)},
        ],
    }


_FENCE = re.compile(r"\A```(?:json)?\s*\n(.*)\n```\s*\Z", re.DOTALL)


def parse_answer(body: dict) -> Decision:
    """Validate a chat-completions response carrying the JSON decision."""
    try:
        content = body["choices"][0]["message"]["content"]
    except (KeyError, IndexError, TypeError):
        raise MalformedAnswer("no choices[0].message.content in the response") from None
    if not isinstance(content, str) or not content.strip():
        raise MalformedAnswer("empty answer")
    text = content.strip()
    fenced = _FENCE.match(text)
    if fenced:
        text = fenced.group(1)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise MalformedAnswer(f"not JSON ({exc.msg} at char {exc.pos})") from None
    if not isinstance(data, dict):
        raise MalformedAnswer("not a JSON object")
    action = data.get("action")
    reply = data.get("reply_markdown", "")
    reason = data.get("reason", "")
    summary = data.get("summary", "")
    for key, value in (("reply_markdown", reply), ("reason", reason), ("summary", summary)):
        if not isinstance(value, str):
            raise MalformedAnswer(f"{key} is not a string")
    summary = summary.strip()[:MAX_CHARS]
    if action == "reply":
        if not reply.strip():
            raise MalformedAnswer("action reply without reply_markdown")
        if len(reply) > MAX_REPLY_CHARS:
            raise MalformedAnswer(f"reply_markdown longer than {MAX_REPLY_CHARS} characters")
        return Decision.reply(reply.strip(), summary=summary, source="openai")
    if action == "escalate":
        return Decision.escalate(
            f"assistant: {reason.strip() or 'the model chose a person'}",
            summary=summary,
            source="openai",
        )
    raise MalformedAnswer(f"action is {action!r}, expected reply or escalate")


class OpenAIBackend:
    name = "openai"

    def __init__(self, client: ChatClient, *, model: str, kb: KnowledgeBase | None = None):
        self.client = client
        self.model = model
        self.kb = kb

    async def decide(self, conv: ConversationView) -> Decision:
        payload = build_request(conv, model=self.model, kb=self.kb)
        try:
            body = await self.client.complete(payload)
        except TimeoutError:
            log.warning("conversation %s: assistant backend timed out", conv.id)
            return Decision.escalate("assistant backend timed out", source=self.name)
        except BackendError as exc:
            log.warning("conversation %s: assistant backend failed: %s", conv.id, exc)
            return Decision.escalate(f"assistant backend failed ({exc})", source=self.name)
        try:
            return parse_answer(body)
        except MalformedAnswer as exc:
            log.warning("conversation %s: assistant answer unusable: %s", conv.id, exc)
            return Decision.escalate(f"assistant answer unusable ({exc})", source=self.name)
