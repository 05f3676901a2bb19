"""Which HubSpot messages reach the customer: public replies by people, nothing else, once.

Pure: the reply job (jobs/rep_reply.py) fetches and records; this decides.
"""

from __future__ import annotations

from typing import Any

# Actor prefixes (HUBSPOT.md): A- agent, B- bot, L- LLM may answer a customer; I- is an
# integration (ourselves, when we publish), S- system, V- the visitor.
_ANSWERING_ACTORS = ("A-", "B-", "L-")


def why_not_deliver(message: dict[str, Any], *, ours: bool) -> str | None:
    """None when the message must be mailed to the customer, else the reason it is not."""
    if ours:
        return "published by the gateway itself"
    kind = message.get("type")
    if kind != "MESSAGE":
        return f"type {kind} is never delivered"  # COMMENT, ASSIGNMENT, status changes…
    if message.get("direction") != "OUTGOING":
        return f"direction {message.get('direction')} is not a reply"
    actor = author_actor(message)
    if not actor.startswith(_ANSWERING_ACTORS):
        return f"written by {actor or 'nobody known'}, not by a person or bot"
    return None


def author_actor(message: dict[str, Any]) -> str:
    senders = message.get("senders") or []
    actor = message.get("createdBy") or (senders[0].get("actorId") if senders else "") or ""
    return str(actor)


def author_name(message: dict[str, Any]) -> str:
    senders = message.get("senders") or []
    return str((senders[0].get("name") if senders else "") or "Support")


def is_truncated(message: dict[str, Any]) -> bool:
    return (message.get("truncationStatus") or "NOT_TRUNCATED") != "NOT_TRUNCATED"
