"""Which signature a reply carries: chosen by the sender's (the rep's) email domain.

An exact domain beats a wildcard pattern, which beats the default. `*.example.com` matches
`eu.example.com` and `a.eu.example.com`, never `example.com` itself; of several matching
wildcards the most specific (longest) wins. Pure: reads only the settings it is given.
"""

from __future__ import annotations

from typing import NamedTuple

from gateway.addresses import address_key
from gateway.config import SignatureSettings
from gateway.mail.htmltext import html_to_text, text_to_html
from gateway.mail.render import sanitise_html


class Signature(NamedTuple):
    """Unpacks as (text, html, why)."""

    text: str
    html: str
    why: str  # 'exact domain "example.com"', 'wildcard "*.example.com"', "default", "none …"


def _pick(domain: str, patterns: set[str]) -> tuple[str, str] | None:
    """(pattern, kind) of the best pattern for domain, or None."""
    if domain in patterns:
        return domain, "exact"
    best = ""
    for p in patterns:
        if p.startswith("*.") and domain.endswith(p[1:]) and len(p) > len(best):
            best = p
    return (best, "wildcard") if best else None


def choose_signature(sender_email: str, sigs: SignatureSettings) -> Signature:
    """The signature for a reply sent by sender_email (text, sanitised HTML and why)."""
    domain = address_key(sender_email).rpartition("@")[2].rstrip(".")
    patterns = set(sigs.domains) | set(sigs.html)
    found = _pick(domain, patterns) if domain else None
    if found:
        pattern, kind = found
        text, html = sigs.domains.get(pattern, ""), sigs.html.get(pattern, "")
        why = f'exact domain "{pattern}"' if kind == "exact" else f'wildcard "{pattern}"'
    else:
        text, html = sigs.default, sigs.default_html
        why = "default" if (text or html) else "none (no default signature configured)"
    text = text.strip("\n")
    if html:
        html = sanitise_html(html)
        text = text or html_to_text(html)
    else:
        html = text_to_html(text)
    return Signature(text=text, html=html, why=why)
