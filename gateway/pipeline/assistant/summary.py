"""The ticket description when no model writes one: extractive, in the customer's own words.

Subject, the first sentences of the customer's request, identifiers such as order numbers, and
what the assistant already answered; at most about 1,000 characters.
"""

from __future__ import annotations

import re

from gateway.pipeline.assistant.decision import ConversationView

MAX_CHARS = 1000

_SENTENCE = re.compile(r"(?<=[.!?…])\s+|\n{2,}")
_GREETING = re.compile(
    r"^(?:hi|hello|hey|dear|good (?:morning|afternoon|evening)|hallo|guten tag|"
    r"sehr geehrte\w*|liebe\w*|bonjour|salut|madame|monsieur|hola|buenos d[ií]as|estimad\w*)"
    r"\b[^.!?\n]{0,40}[,!.\n]?\s*",
    re.IGNORECASE,
)
_IDENTIFIERS = [
    # a keyword, then the identifier: "order 12345", "Invoice no. INV-2024-0042", "Bestellung #77"
    re.compile(
        r"\b(order|invoice|ticket|tracking|account|customer|case|reference|ref|contract|"
        r"subscription|bestellung|rechnung|kundennummer|auftrag|commande|facture|pedido|factura)"
        r"\s*(?:no\.?|nr\.?|number|num[ée]ro|id|#)?\s*[:#]?\s*([A-Z0-9][A-Z0-9-]{3,30})\b",
        re.IGNORECASE,
    ),
    re.compile(r"(#)\s?(\d{4,12})\b"),
    re.compile(r"\b()([A-Z]{2,6}-\d{3,12}(?:-\d{1,12})?)\b"),
]


def sentences(text: str, count: int) -> list[str]:
    """The first `count` sentences of the text, without a greeting line."""
    text = _GREETING.sub("", (text or "").strip(), count=1).strip()
    parts = [_one_line(p) for p in _SENTENCE.split(text)]
    return [p for p in parts if p][:count]


def identifiers(text: str) -> list[str]:
    found: list[str] = []
    for pattern in _IDENTIFIERS:
        for match in pattern.finditer(text or ""):
            ident = match.group(2)
            if not any(ch.isdigit() for ch in ident):
                continue
            kind = match.group(1).lower()
            shown = f"{kind} {ident}" if kind and kind != "#" else f"#{ident}" if kind else ident
            if ident not in " ".join(found):
                found.append(shown)
    return found[:10]


def _one_line(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def extractive_summary(conv: ConversationView, *, limit: int = MAX_CHARS) -> str:
    customer = conv.customer_messages
    lines = [f"Subject: {_one_line(conv.subject) or '(no subject)'}"]
    if customer:
        first = customer[0]
        request = " ".join(sentences(first.text, 3))
        if request:
            lines.append(f"Request: {request}")
        for later in customer[1:][-3:]:
            said = " ".join(sentences(later.text, 1))
            if said:
                lines.append(f"Later: {said}")
    idents = identifiers("\n".join(f"{m.subject}\n{m.text}" for m in customer))
    if idents:
        lines.append("Identifiers: " + ", ".join(idents))
    if conv.assistant_answers:
        lines.append("Assistant already answered: " + "; ".join(conv.assistant_answers[-3:]))
    out = "\n".join(lines)
    if len(out) > limit:
        out = out[: limit - 1].rstrip() + "…"
    return out
