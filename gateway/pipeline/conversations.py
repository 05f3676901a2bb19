"""Threading decisions: which lookups can place a mail in an existing conversation, in order.

Pure functions: they turn a parsed mail into an ordered list of `Lookup`s; the store runs them
against its index (store/mail.py) and takes the first hit. The order is DESIGN.md's:
1. a reply token in a recipient (support+TOKEN@), envelope, To, Cc, Delivered-To, X-Original-To;
2. our own Message-IDs in In-Reply-To/References, whose HMAC makes them unforgeable;
3. In-Reply-To, then References newest first, against every Message-ID we stored or sent;
4. a [#TOKEN] in the subject, accepted only when the sender already takes part;
5. otherwise a new conversation. Never the subject alone.

Who the mail is from, for the conversation (`requester`): its sender, except for a web form or
noreply mailer whose customer is the single, different, valid Reply-To address (issue 14
item 3). Who may join a conversation is decided in the store (store/mail.py,
`record_mail`), against the participants: a stranger who found a Message-ID is an outside
sender (issue 16 item 1); the annotations below mark what was decided.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from email import policy
from email.errors import HeaderParseError

from gateway.addresses import address_key
from gateway.mail.ids import SUBJECT_TOKEN_RE, mailbox_and_token, token_from_own_message_id
from gateway.models import OUTSIDE_SENDER, Address, Lookup, ParsedMail

# Annotations stored with a message (beside classify's), shown by `sessions show`; and
# models.OUTSIDE_SENDER, which the store sets.
__all__ = ["OUTSIDE_SENDER", "REQUESTER_REPLY_TO", "SENDER_UNVALIDATED", "requester"]
REQUESTER_REPLY_TO = "requester_reply_to"  # a form mailer's mail: the customer is Reply-To
SENDER_UNVALIDATED = "sender_unvalidated"  # the From did not validate; see Requester.problem

# Local parts of mailers that write on someone else's behalf: noreply kinds, web servers'
# system users, form and notification robots.
_FORM_LOCAL = re.compile(
    r"(?:^|[-_.+])(?:no[-_.]?reply|do[-_.]?not[-_.]?reply|dont[-_.]?reply|no[-_.]?response)"
    r"(?:$|[-_.+])|^(?:www-?data|wordpress|wp|apache|nginx|httpd|nobody|php|webmaster|website|"
    r"web|forms?|webforms?|contact[-_.]?forms?|formmailer|form[-_.]?mailer|mailer|"
    r"mailer[-_.]?daemon|notifications?|notify)$",
    re.IGNORECASE,
)
# X-Mailer / User-Agent values of form plugins and form services.
_FORM_MAILER = re.compile(
    r"wordpress|contact form 7|wpforms|gravity ?forms|ninja ?forms|formidable|elementor|"
    r"typeform|jotform|wufoo|formspree|formstack|cognito ?forms|getform|basin|netlify|"
    r"hubspot forms|google forms|drupal|joomla|webform|phpmailer|form ?mailer",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Requester:
    """Whom a mail belongs to: `address` (None when no address validated) and why.

    `via`: the form mailer's address when the customer is its Reply-To, else "".
    `problem`: what was wrong with the sender's address, for the handoff's internal note
    ("" when nothing was); `shown`: the sender as written when no address validated.
    """

    address: Address | None
    via: str = ""
    problem: str = ""
    shown: str = ""

    @property
    def annotations(self) -> frozenset[str]:
        out = set()
        if self.via:
            out.add(REQUESTER_REPLY_TO)
        if self.problem:
            out.add(SENDER_UNVALIDATED)
        return frozenset(out)


def requester(
    mail: ParsedMail, *, form_senders: Iterable[str] = (), support: Iterable[str] = ()
) -> Requester:
    """The customer of `mail` (issue 14 items 3 and 5).

    A form or noreply mailer (listed in `form_senders` as address or "@domain", or showing
    the usual signs: `_FORM_LOCAL` local parts, `_FORM_MAILER` X-Mailer/User-Agent, an
    X-PHP-Originating-Script header) whose Reply-To is a single, valid address other than the
    sender's and not a support address: the Reply-To person. A sender that did not validate:
    the parser already took the best address left (Sender, Reply-To, envelope, in that
    order); the problem is kept for the handoff's note, with the From as it was written.
    """
    sender, reply_to = mail.sender, mail.reply_to
    problem, shown = "", ""
    raw_from = _shown(mail.headers.get("from", ""))
    dropped = next((d for d in mail.defects if d.startswith("from: invalid address")), "")
    if dropped or (sender is None and raw_from):
        shown = raw_from or "(no From)"
        problem = f"the sender's address does not validate ({shown})"
        if sender is not None:
            problem += f"; {sender.email} taken instead"
        else:
            problem += "; no address to reply to, handed off without a contact"
    if sender is None or reply_to is None:
        return Requester(sender, problem=problem, shown=shown)
    keys = {address_key(a) for a in support}
    if (
        address_key(reply_to.email) == address_key(sender.email)
        or address_key(reply_to.email) in keys
        or _reply_to_count(mail) != 1
        or _FORM_LOCAL.search(reply_to.email.rpartition("@")[0])
        or not is_form_mailer(mail, form_senders)
    ):
        return Requester(sender, problem=problem, shown=shown)
    return Requester(reply_to, via=sender.email, problem=problem, shown=shown)


def is_form_mailer(mail: ParsedMail, form_senders: Iterable[str] = ()) -> bool:
    """Whether the sender writes on someone else's behalf: see `requester`."""
    if mail.sender is None:
        return False
    key = address_key(mail.sender.email)
    listed = set(form_senders)
    if key in listed or "@" + key.rpartition("@")[2] in listed:
        return True
    if _FORM_LOCAL.search(key.rpartition("@")[0]):
        return True
    agent = mail.headers.get("x-mailer", "") + " " + mail.headers.get("user-agent", "")
    return bool(_FORM_MAILER.search(agent)) or "x-php-originating-script" in mail.headers


def _shown(raw: str) -> str:
    """A header as a person reads it: encoded words decoded (RFC 2047), one line, bounded."""
    text = raw
    if "=?" in raw:  # only then: the address parser drops what it cannot read
        try:
            text = str(policy.default.header_factory("from", raw)) or raw
        except (HeaderParseError, ValueError, IndexError, TypeError, AttributeError):
            text = raw
    return " ".join(text.split())[:200]


def _reply_to_count(mail: ParsedMail) -> int:
    """How many addresses the Reply-To header lists (1 when only the parsed one is known)."""
    raw = mail.headers.get("reply-to", "")
    if not raw:
        return 1
    try:
        return len(policy.default.header_factory("reply-to", raw).addresses)
    except (HeaderParseError, ValueError, IndexError, TypeError, AttributeError):
        return 0


def thread_lookups(
    mail: ParsedMail,
    *,
    recipients: Iterable[str],
    secret: bytes,
    hostname: str,
) -> list[Lookup]:
    """The ordered keys that may place this mail in an existing conversation."""
    out: list[Lookup] = []
    seen: set[tuple[str, str]] = set()

    def add(kind: str, value: str, step: str, needs_participant: bool = False) -> None:
        if value and (kind, value) not in seen:
            seen.add((kind, value))
            out.append(Lookup(kind, value, needs_participant, step))

    # 1. reply token in any recipient header or the envelope
    addrs = list(recipients) + [a.email for a in mail.to + mail.cc] + list(mail.delivered_to)
    for addr in addrs:
        _, token = mailbox_and_token(addr)
        if token:
            add("token", token, "recipient token")
    # References are oldest first; newest first is the right order to try
    chain = list(mail.in_reply_to) + list(reversed(mail.references))
    # 2. our own, HMAC-tagged Message-IDs
    for mid in chain:
        token = token_from_own_message_id(secret, hostname, mid)
        if token:
            add("token", token, "our Message-ID")
    # 3. any Message-ID we stored or sent
    for mid in chain:
        add("message_id", mid, "In-Reply-To" if mid in mail.in_reply_to else "References")
    # 4. subject token, only for participants
    for m in SUBJECT_TOKEN_RE.finditer(mail.subject or ""):
        add("token", m.group(1).lower(), "subject token", needs_participant=True)
    return out
