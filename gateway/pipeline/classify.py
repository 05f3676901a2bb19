"""Classify first, decide later: a chain of small filters annotates each mail (Zammad-style).

Each filter reads the ParsedMail (and the envelope context) and adds annotation names from
gateway.models; decisions elsewhere only read the annotations. `classify` never raises.
`mail_class` names the one class a mail belongs to (for reports and the labelled-set bench).

Machine mail is recognised by structure first (RFC 3464 DSN and RFC 5965 ARF parts, null reverse
path, X-Failed-Recipients), then by what MTAs and providers write when they send no structure:
their sender names, their subjects and the first lines of their text (Postfix, Exim, Sendmail,
qmail, Exchange/Office 365, Gmail, Yahoo, hosting providers, in several languages). A mail whose
subject says it is a reply or a forward ("Fwd: Undelivered Mail…") is a person's, whatever it
quotes, unless a bounce address sent it. Signs a person's mail can also show (a postmaster@
sender, Exchange's "Undeliverable:" prefix, "Auto-reply" opening a subject) count only together
with another. Measured on tests/data/labelled and on a held-out set the rules were not tuned on
(tests/data/labelled/holdout; `bench/classify.py`).

`envelope_from`: None means "unknown"; "" or "<>" is the null reverse-path of a bounce (aiosmtpd
reports MAIL FROM:<> as ""), so callers that know the envelope should always pass it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from gateway.models import (
    ABUSE_REPORT,
    AUTO_ACKNOWLEDGEMENT,
    AUTO_REPLY,
    BOUNCE,
    CHALLENGE_RESPONSE,
    FORWARDING_CONFIRMATION,
    MAILING_LIST,
    NOREPLY,
    OUT_OF_OFFICE,
    OWN_MAIL,
    ParsedMail,
)

__all__ = [
    "FILTERS",
    "HUMAN",
    "bounced_message_ids",
    "classify",
    "forwarding_confirmation_details",
    "mail_class",
]


@dataclass
class Context:
    envelope_from: str | None
    own_domain: str
    loop_id: str
    annotations: set[str] = field(default_factory=set)


Filter = Callable[[ParsedMail, Context], None]

_RE_PREFIX = r"^\s*(?:(?:re|aw|sv|vs|antw|r|rif|res|ref|fw|fwd|wg|tr)\s*(?:\[\d+\])?\s*:\s*)*"

# Auto-replies' subjects: a label ("Automatic reply: ...", "Autosvar:") followed by its separator
# or nothing ("Auto-reply rules in your app are not working" is a person's sentence), or a
# phrase that says it whole ("Out of office until Monday", "Abwesenheitsnachricht").
_OOO_STRONG = re.compile(
    _RE_PREFIX + r"(?:(?:automatic reply|auto[- ]?reply|autoreply|auto[- ]?response|"
    r"automatische antwort|abwesenheitsnotiz|r[ée]ponse automatique|respuesta autom[áa]tica|"
    r"autosvar|automatisk svar|automatisch antwoord|risposta automatica|"
    r"resposta autom[áa]tica|automaattinen vastaus|odpowied[źz] automatyczna|"
    r"automatick[áa] odpov[ěe][ďd])\s*(?:[:：\-–(\[]|$)|"
    r"out of (?:the )?office|abwesenheitsnachricht|fuera de la oficina|afwezigheidsmelding|"
    r"fuori sede|i am out of the office|i'm out of the office)",
    re.IGNORECASE,
)
_OOO_WEAK = re.compile(
    _RE_PREFIX + r"(?:absence|absent|abwesend|vacation|on leave|urlaub|cong[ée]s|ferie|"
    r"vacaciones|afwezig|fr[åa]nvarande|nieobecno[śs][ćc]|out of office)",
    re.IGNORECASE,
)
# Subjects exactly as MTAs write them (anchored): enough on their own.
_DSN_SUBJECT = re.compile(
    r"^\s*(?:undelivered mail returned to sender\s*$|delivery status notification "
    r"\((?:failure|delay)\)\s*$|mail delivery failed: returning message to sender|"
    r"undeliverable mail\b|undeliverable message\b|undelivered message\b|"
    r"returned mail:|failure notice\s*$|delayed mail \(still being retried\)|"
    r"warning: could not send message for past|delivery notification: delivery has failed|"
    r"mail system error - returned mail|postmaster notify|"
    r"配信(?:不能|エラー)|退信)",
    re.IGNORECASE,
)
# Exchange's prefix in front of the original subject: a person can type it too ("Unzustellbar:
# Paket 88301?"), so it needs one more sign (a bounce phrase or a machine sender).
_DSN_PREFIX = re.compile(
    r"^\s*(?:undeliverable|unzustellbar|nicht zustellbar|non recapitabile|onbestelbaar|"
    r"non remis|no se puede entregar)\s*:",
    re.IGNORECASE,
)
# Subjects a person might also write ("Non remis : colis 4711"): need one more sign.
_DSN_SUBJECT_WEAK = re.compile(
    r"mail delivery failed|undeliverable|returned to sender|mail could not be delivered|"
    r"delivery has failed|mail system error|message delivery (?:has been )?delayed|"
    r"^\s*non remis|^\s*non recapitabile|^\s*no se puede entregar|^\s*onbestelbaar|"
    r"^\s*kan ikke leveres|^\s*olevererbart|^\s*undelivered mail\b|^\s*delivery failure\b|"
    r"^\s*message delivery failure|^\s*n[ãa]o [ée] poss[íi]vel entregar|^\s*failure notice\b|"
    r"delivery status notification|^\s*mail delivery failure|^\s*unable to deliver|"
    r"^\s*message not delivered|^\s*zustellung fehlgeschlagen|"
    r"^\s*[ée]chec de (?:la )?(?:remise|distribution)|^\s*メールエラー|エラー通知\s*$",
    re.IGNORECASE,
)
# A person's reply or forward: "Re:", "Fwd:", "AW:", "WG:", ... in front of the subject.
_REPLY_OR_FORWARD = re.compile(
    r"^\s*(?:\[[^\]]*\]\s*)?(?:re|aw|sv|vs|antw|r|rif|res|ref|fw|fwd|wg|tr|rv|enc|doorst|"
    r"odp|pd|vb|vl)\s*(?:\[\d+\])?\s*:",
    re.IGNORECASE,
)
_FORWARD_SUBJECT = re.compile(
    r"^\s*(?:\[[^\]]*\]\s*)?(?:fw|fwd|wg|tr|rv|enc|doorst|vb|vl|pd|i)\s*:", re.IGNORECASE
)
_MACHINE_NAME = re.compile(
    r"^\s*(?:mail delivery (?:system|subsystem|service)|mail administrator|mailer[- ]?daemon|"
    r"postmaster|microsoft outlook|system administrator|mail system|mail delivery|"
    r"sistema de entrega de (?:correo|e-?mail)|e-?mail delivery (?:system|service)|"
    r"mail-?system|delivery subsystem)\s*$",
    re.IGNORECASE,
)
_MACHINE_LOCAL = re.compile(
    r"^(?:mail[._-]?delivery[._-]?(?:system|subsystem)|microsoftexchange[0-9a-f]{20,}|"
    r"mdaemon|mail[._-]?daemon|bounce[sd]?(?:[+._-].*)?|nondelivery|ndr)$",
    re.IGNORECASE,
)
# What MTAs write at the top of a bounce that has no DSN structure.
_BOUNCE_TEXT = re.compile(
    r"could not be delivered|couldn'?t be delivered|was not delivered|wasn'?t delivered|"
    r"could not deliver|unable to deliver|delivery (?:has )?failed|delivery to the following|"
    r"permanent (?:fatal )?errors?|did not reach the following recipient|mail delivery software|"
    r"this is the mail system at|qmail-send program|returned mail|undeliverable|"
    r"the following address(?:\(es\)|es)? (?:failed|had permanent)|mailbox (?:is )?full|"
    r"user unknown|no such user|recipient address rejected|address not found|"
    r"nicht zugestellt werden|konnte nicht zugestellt|unzustellbar|"
    r"n'a pas pu [êe]tre (?:remis|d[ée]livr[ée]|distribu[ée])|no se pudo entregar|"
    r"non [èe] stato possibile recapitare|kon niet worden bezorgd|"
    r"n[ãa]o foi poss[íi]vel entregar|kunde inte levereras|failure reasons|"
    r"below this line is a copy of the message|original message follows|"
    r"unsent message follows|kopie der nachricht|送信できませんでした|配信できませんでした|"
    r"送信に失敗しました|届きませんでした|не может быть доставлено|не доставлено",
    re.IGNORECASE,
)
_SMTP_STATUS = re.compile(r"\b[245]\d\d[ -][245]\.\d{1,3}\.\d{1,3}\b|\b5\d\d\s+[A-Za-z<]")
_BOUNCE_TEXT_CHARS = 1500
_BOUNCE_LOCALS = frozenset({"mailer-daemon", "mail-daemon", "mailerdaemon"})
# A mailbox a person also reads (the mail admin's): a bounce sign only with one more.
_POSTMASTER_LOCAL = re.compile(r"^post[._-]?master$", re.IGNORECASE)
_NOREPLY_LOCAL = re.compile(
    r"(?:^|[-_.+])(?:no[-_.]?reply|do[-_.]?not[-_.]?reply|dont[-_.]?reply|noreplies|"
    r"no[-_.]?response)(?:$|[-_.+])",
    re.IGNORECASE,
)
_PRECEDENCE_AUTO = frozenset({"bulk", "junk", "list", "auto_reply", "auto-reply"})


def _hdr(mail: ParsedMail, name: str) -> str:
    return (mail.headers or {}).get(name, "").strip()


def _local_domain(email: str) -> tuple[str, str]:
    local, _, domain = (email or "").rpartition("@")
    return local.lower(), domain.lower()


def is_mailbox_rule_forward(mail: ParsedMail) -> bool:
    """Exchange/Microsoft 365 resent this through an inbox rule (a hop, not the original)."""
    source = _hdr(mail, "x-ms-exchange-generated-message-source").lower()
    return "mailbox rules agent" in source or bool(_hdr(mail, "x-ms-exchange-inbox-rules-loop"))


# --------------------------------------------------------------------------- filters


def auto_reply_filter(mail: ParsedMail, ctx: Context) -> None:
    hop_headers_only = is_mailbox_rule_forward(mail)
    auto_submitted = _hdr(mail, "auto-submitted").lower()
    # Microsoft marks rule-forwarded customer mail as auto-generated: judge the original message,
    # so the hop's Auto-Submitted / X-Auto-Response-Suppress do not count for such a forward.
    if auto_submitted and not auto_submitted.startswith("no") and not hop_headers_only:
        ctx.annotations.add(AUTO_REPLY)
    for name in ("x-autoreply", "x-autorespond", "x-autoresponder"):
        value = _hdr(mail, name).lower()
        if value and value not in ("no", "false", "0"):
            ctx.annotations.add(AUTO_REPLY)
    if _hdr(mail, "x-autogenerated").lower() in ("reply", "forward", "yes"):
        ctx.annotations.add(AUTO_REPLY)
    if _hdr(mail, "x-auto-response-suppress") and not hop_headers_only:
        ctx.annotations.add(AUTO_REPLY)
    for name in ("precedence", "x-precedence"):
        if _hdr(mail, name).lower() in _PRECEDENCE_AUTO:
            ctx.annotations.add(AUTO_REPLY)
    ctype = _hdr(mail, "content-type").lower()
    if "multipart/report" in ctype and "disposition-notification" in ctype:
        ctx.annotations.add(AUTO_REPLY)  # read receipts (RFC 8098) are automatic too


def out_of_office_filter(mail: ParsedMail, ctx: Context) -> None:
    """An out-of-office reply by its subject. Under a person's "Re:"/"AW:"/"Fwd:" the words are
    a person answering or forwarding an auto-reply ("Re: Automatic reply: Invoice 118 - who
    else can help?"): then only the auto-reply headers make it one. An inbox rule's own "FW:"
    is the hop's, not a person's: the subject behind it is judged."""
    subject = mail.subject or ""
    if is_mailbox_rule_forward(mail):
        subject = _FORWARD_SUBJECT.sub("", subject, count=1)
    automatic = AUTO_REPLY in ctx.annotations
    if _OOO_STRONG.search(subject) and (automatic or not _REPLY_OR_FORWARD.match(subject)):
        ctx.annotations.update({OUT_OF_OFFICE, AUTO_REPLY})
    elif automatic and _OOO_WEAK.search(subject):
        ctx.annotations.update({OUT_OF_OFFICE, AUTO_REPLY})


def abuse_report_filter(mail: ParsedMail, ctx: Context) -> None:
    """An ARF feedback-loop report (RFC 5965): `multipart/report; report-type=feedback-report`,
    or any `message/feedback-report` part (some reporters omit the report-type)."""
    ctype = _hdr(mail, "content-type").lower()
    if (
        ("multipart/report" in ctype and "feedback-report" in ctype)
        or ctype.startswith("message/feedback-report")
        or any(a.content_type == "message/feedback-report" for a in mail.attachments)
    ):
        ctx.annotations.add(ABUSE_REPORT)


def _person_subject(mail: ParsedMail) -> bool:
    """The subject says a person replies or forwards ("Fwd: Undelivered Mail ...")."""
    return bool(_REPLY_OR_FORWARD.match(mail.subject or ""))


def _machine_sender(mail: ParsedMail) -> tuple[bool, bool, bool]:
    """(a bounce address: MAILER-DAEMON, bounces@, ...; a postmaster address; a machine
    display name other than "Postmaster": "Mail Delivery System", "System Administrator")."""
    if mail.sender is None:
        return False, False, False
    local = _local_domain(mail.sender.email)[0]
    by_address = local in _BOUNCE_LOCALS or bool(_MACHINE_LOCAL.match(local))
    name = (mail.sender.name or "").strip()
    by_name = bool(_MACHINE_NAME.match(name)) and not _POSTMASTER_LOCAL.match(name)
    return by_address, bool(_POSTMASTER_LOCAL.match(local)), by_name


def _bounce_text_evidence(mail: ParsedMail) -> int:
    """How many distinct bounce phrases (and SMTP status replies) the top of the text holds."""
    head = (mail.text or "")[:_BOUNCE_TEXT_CHARS]
    found = {m.group(0).lower() for m in _BOUNCE_TEXT.finditer(head)}
    return len(found) + (1 if _SMTP_STATUS.search(head) else 0)


def bounce_filter(mail: ParsedMail, ctx: Context) -> None:
    """A non-delivery or delay report: RFC 3464 structure, a null reverse path, the MTA's
    headers, or (for the many MTAs and providers that send plain text, often from a non-empty
    envelope sender) their sender, subject and first lines. A "Re:"/"Fwd:" subject is a
    person's reply or forward of such a report, unless it comes from a bounce address
    (MAILER-DAEMON, postmaster, ...). Never for an ARF report (it has its own class)."""
    if ABUSE_REPORT in ctx.annotations:
        return
    env = ctx.envelope_from
    null_sender = env is not None and env.strip() in ("", "<>")
    if null_sender or _hdr(mail, "return-path").replace(" ", "") == "<>":
        # A null sender is also used by read receipts and vacation replies: those are auto-replies
        if not ({AUTO_REPLY, OUT_OF_OFFICE} & ctx.annotations):
            ctx.annotations.add(BOUNCE)
    ctype = _hdr(mail, "content-type").lower()
    if "multipart/report" in ctype and "delivery-status" in ctype:
        ctx.annotations.add(BOUNCE)
    if ctype.startswith("message/delivery-status") or any(
        a.content_type in ("message/delivery-status", "message/global-delivery-status")
        for a in mail.attachments
    ):
        ctx.annotations.add(BOUNCE)
    if _hdr(mail, "x-failed-recipients") or _hdr(mail, "x-ms-exchange-message-is-ndr"):
        ctx.annotations.add(BOUNCE)
    if BOUNCE in ctx.annotations:
        return
    by_address, postmaster, by_name = _machine_sender(mail)
    if by_address:  # MAILER-DAEMON, bounces@, ...: even under "Re:"
        ctx.annotations.add(BOUNCE)
        return
    evidence = _bounce_text_evidence(mail)
    subject_text = mail.subject or ""
    strong = bool(_DSN_SUBJECT.search(subject_text))
    subject = strong or bool(
        _DSN_SUBJECT_WEAK.search(subject_text) or _DSN_PREFIX.match(subject_text)
    )
    # postmaster@ is also a person's mailbox ("Your newsletter lands in our spam folder"): it
    # takes one more sign, a bounce phrase or a bounce subject (then even under "Re:": Verizon),
    # or no readable text at all (a report whose MIME structure the parser could not follow)
    unreadable = not (mail.text or "").strip()
    if postmaster and (evidence >= 1 or subject or unreadable):
        ctx.annotations.add(BOUNCE)
        return
    if _person_subject(mail):
        return
    if strong:
        ctx.annotations.add(BOUNCE)
        return
    noreply = mail.sender is not None and bool(
        _NOREPLY_LOCAL.search(_local_domain(mail.sender.email)[0])
    )
    # Words alone never make a bounce: a person pasting a bounce's text into a new mail is a
    # person. They count with a machine sender name or a noreply sender; with a subject a
    # person could also write ("Mail delivery failed when I reply to you", "Unzustellbar:
    # Paket 88301?") one phrase in the person's own sentence is not enough: two are.
    if (
        (evidence >= 2 and (noreply or subject))
        or (evidence >= 1 and by_name)
        or (subject and by_name)
    ):
        ctx.annotations.add(BOUNCE)


_ACK_TEXT = re.compile(
    r"(?:we|I)(?: have|'ve)? (?:successfully |now )?received your (?:request|message|e-?mail|"
    r"inquiry|enquiry|ticket|support request)|"
    r"your (?:request|ticket|case|inquiry|enquiry|support request|incident)\b[^.\n]{0,80}?"
    r"(?:has been|was) (?:received|created|opened|logged|registered|submitted|recorded)|"
    r"(?:ticket|case|incident|service (?:record|request))(?:\s*#?\s*[A-Z]{0,5}-?\d{3,})? "
    r"(?:has been|was) (?:created|opened|logged|submitted)|"
    r"created (?:a )?(?:ticket|case)|assigned (?:an? )?(?:ticket|id|number)|"
    r"(?:has been|was|been) opened on your behalf|request for support has been created|"
    r"automatically generated in response to the creation of a (?:trouble )?ticket|"
    r"acknowledge (?:that we have )?(?:the )?receiv|this is an automated (?:response|reply|"
    r"message)|"
    r"ihre (?:anfrage|nachricht|e-?mail) ist bei uns eingegangen|wir haben ihre (?:anfrage|"
    r"nachricht) erhalten|eingangsbest[äa]tigung|"
    r"nous avons bien re[çc]u votre (?:demande|message|e-?mail)|accus[ée] de r[ée]ception|"
    r"hemos recibido su (?:solicitud|mensaje|consulta|correo)|"
    r"abbiamo ricevuto la (?:tua|sua) (?:richiesta|email|segnalazione)|"
    r"w(?:e|ij) hebben (?:uw|je) (?:verzoek|vraag|bericht) ontvangen|"
    r"recebemos (?:a )?(?:sua|tua) (?:solicita[çc][ãa]o|mensagem|pedido)|"
    r"^\s*(?:ticket|request|case) (?:received|created|opened)\b",
    re.IGNORECASE | re.MULTILINE,
)
# Said by the machine about itself: lets a "Re:" subject through (Help Scout, OTRS reply so).
_AUTOMATED = re.compile(
    r"this is an automat(?:ed|ic|ically generated) (?:response|reply|message)|"
    r"automatically generated|automated (?:response|reply)|automatisch erstellte nachricht|"
    r"message automatique|mensaje autom[áa]tico|messaggio automatico|"
    r"automatisch (?:gegenereerd|verzonden) bericht|mensagem autom[áa]tica",
    re.IGNORECASE,
)
_TICKET_REF = re.compile(
    r"(?:ticket|case|request|incident|record|anfrage|demande|solicitud|chamado|ticketnummer|"
    r"numéro|number|nummer|id)s?\s*(?:number|nr\.?|no\.?|id)?\s*(?:is\s*|of\s*)?[:#(\[/]*"
    r"\s*#?\s*[A-Z]{0,5}-?\d{3,}|\[[^\]\n]{0,40}#\s*\d{3,}\]|\(#?\d{3,}\)|\bINC\d{4,}",
    re.IGNORECASE,
)
_HELPDESK_MAILER = re.compile(
    r"zendesk|freshdesk|zammad|otrs|znuny|request tracker|help ?scout|kayako|osticket|"
    r"servicenow|jira service|freescout|gorgias|deskpro",
    re.IGNORECASE,
)


def auto_acknowledgement_filter(mail: ParsedMail, ctx: Context) -> None:
    """Another help desk's automatic "we received your request [#12345]": an acknowledgement
    phrase in the subject or the first lines of the new text, with a ticket reference or a help
    desk's X-Mailer. Under a "Re:" subject the mail must also say it is automatic: a person's
    reply that quotes such a mail has its own words on top; the auto-reply headers
    (Auto-Submitted, X-Autoreply, ...) say so too."""
    subject = mail.subject or ""
    head = (mail.new_text or mail.text or "")[:800]
    if not (_ACK_TEXT.search(subject) or _ACK_TEXT.search(head)):
        return
    helpdesk = bool(_HELPDESK_MAILER.search(_hdr(mail, "x-mailer")))
    if _FORWARD_SUBJECT.match(subject):
        return  # a person forwards another help desk's acknowledgement: a person's mail
    automatic = AUTO_REPLY in ctx.annotations
    if _person_subject(mail) and not (helpdesk or automatic or _AUTOMATED.search(head)):
        return
    if helpdesk or _TICKET_REF.search(subject) or _TICKET_REF.search(head):
        ctx.annotations.add(AUTO_ACKNOWLEDGEMENT)


# What a challenge-response system asks; phrases a person asking about such things would not use.
_CHALLENGE_TEXT = re.compile(
    r"protecting myself from (?:receiving )?(?:junk|spam)|verify (?:that )?you are (?:a )?human|"
    r"(?:confirm|prove) (?:that )?you are (?:a )?(?:human|real person)|"
    r"(?:join|add yourself to|added to) my guest list|"
    r"(?:held|waitlisted|quarantined) (?:until|for) (?:you )?(?:verif|confirm|approv)|"
    r"complete the verification process|sender verification (?:is )?required|"
    r"verify your (?:e-?mail )?address to deliver|"
    r"will be delivered (?:as soon as|once|after) you (?:verify|confirm)|has been waitlisted|"
    r"best[äa]tigen, dass sie ein mensch sind|erst zugestellt, wenn sie best[äa]tigen|"
    r"confirmer que vous [êe]tes (?:un )?humain",
    re.IGNORECASE,
)


def challenge_response_filter(mail: ParsedMail, ctx: Context) -> None:
    """A challenge-response anti-spam system asks the sender to prove it is a person (Boxbe,
    SpamArrest, sender verification): its phrases, with the link to click."""
    if _person_subject(mail):
        return
    head = (mail.new_text or mail.text or "")[:1500]
    if (_CHALLENGE_TEXT.search(head) or _CHALLENGE_TEXT.search(mail.subject or "")) and (
        "http://" in head or "https://" in head
    ):
        ctx.annotations.add(CHALLENGE_RESPONSE)


def mailing_list_filter(mail: ParsedMail, ctx: Context) -> None:
    list_id = _hdr(mail, "list-id").lower()
    own = ctx.own_domain.lower().strip(".")
    if own and list_id:
        host = list_id.rsplit("<", 1)[-1].strip(" >")
        if host == own or host.endswith("." + own):
            return  # the support address itself is a group list (Google Groups, M365 groups)
    if list_id or _hdr(mail, "list-unsubscribe"):
        ctx.annotations.add(MAILING_LIST)
    elif _hdr(mail, "precedence").lower() == "list":
        ctx.annotations.add(MAILING_LIST)


def own_mail_filter(mail: ParsedMail, ctx: Context) -> None:
    own = ctx.own_domain.lower().strip(".")
    if own:
        domain = (mail.message_id or "").rpartition("@")[2].lower().strip(">")
        if domain == own or domain.endswith("." + own):
            ctx.annotations.add(OWN_MAIL)
    if ctx.loop_id and ctx.loop_id.lower() in _hdr(mail, "x-loop").lower():
        ctx.annotations.add(OWN_MAIL)


def noreply_filter(mail: ParsedMail, ctx: Context) -> None:
    for addr in (mail.sender, mail.reply_to):
        if addr is not None and _NOREPLY_LOCAL.search(_local_domain(addr.email)[0]):
            ctx.annotations.add(NOREPLY)


def forwarding_confirmation_filter(mail: ParsedMail, ctx: Context) -> None:
    if _forwarding_provider(mail):
        ctx.annotations.add(FORWARDING_CONFIRMATION)


FILTERS: list[Filter] = [
    auto_reply_filter,
    out_of_office_filter,
    abuse_report_filter,
    bounce_filter,
    challenge_response_filter,
    auto_acknowledgement_filter,
    mailing_list_filter,
    own_mail_filter,
    noreply_filter,
    forwarding_confirmation_filter,
]


def classify(
    mail: ParsedMail,
    *,
    envelope_from: str | None = None,
    own_domain: str = "",
    loop_id: str = "",
) -> frozenset[str]:
    """Run the filter chain; returns the set of annotation names (empty for a normal mail)."""
    ctx = Context(envelope_from=envelope_from, own_domain=own_domain or "", loop_id=loop_id or "")
    for filt in FILTERS:
        try:
            filt(mail, ctx)
        except Exception:  # one broken filter must not stop intake
            continue
    return frozenset(ctx.annotations)


HUMAN = "human"
# The one class of a mail, most specific first: a bounce that is also Auto-Submitted is a bounce.
_CLASS_ORDER = (
    (ABUSE_REPORT, ABUSE_REPORT),
    (BOUNCE, BOUNCE),
    (CHALLENGE_RESPONSE, CHALLENGE_RESPONSE),
    (AUTO_ACKNOWLEDGEMENT, AUTO_ACKNOWLEDGEMENT),
    (FORWARDING_CONFIRMATION, FORWARDING_CONFIRMATION),
    (OUT_OF_OFFICE, AUTO_REPLY),
    (AUTO_REPLY, AUTO_REPLY),
    (OWN_MAIL, OWN_MAIL),
    (MAILING_LIST, MAILING_LIST),
    (NOREPLY, NOREPLY),
)


def mail_class(annotations: frozenset[str] | set[str]) -> str:
    """The class of a mail from its annotations: "human" (no machine annotation), or the most
    specific machine class (abuse_report, bounce, challenge_response, auto_acknowledgement,
    forwarding_confirmation, auto_reply (out-of-office included), own_mail, mailing_list,
    noreply)."""
    for annotation, name in _CLASS_ORDER:
        if annotation in annotations:
            return name
    return HUMAN


# --------------------------------------------------------------------------- forwarding confirm

_FWD_SUBJECT = re.compile(
    r"forwarding confirmation|forwarding verification|verify (?:your )?forwarding|"
    r"confirm (?:your )?forwarding|weiterleitungsbest[äa]tigung|best[äa]tigung der weiterleitung|"
    r"confirmation de transfert|confirmaci[óo]n de reenv[íi]o|"
    r"verify (?:your )?(?:e-?mail )?address for forwarding|forwarding address",
    re.IGNORECASE,
)
_PROVIDERS = {
    "google.com": "gmail",
    "googlemail.com": "gmail",
    "gmail.com": "gmail",
    "microsoft.com": "microsoft",
    "outlook.com": "microsoft",
    "office365.com": "microsoft",
    "accountprotection.microsoft.com": "microsoft",
    "fastmail.com": "fastmail",
    "messagingengine.com": "fastmail",
    "zoho.com": "zoho",
    "yahoo.com": "yahoo",
    "icloud.com": "icloud",
    "apple.com": "icloud",
    "proton.me": "proton",
    "protonmail.com": "proton",
}
_CODE = re.compile(
    r"(?:confirmation|verification|security|best[äa]tigungs)[- ]?code\s*(?:is)?\s*[:#]?\s*"
    r"([A-Za-z0-9][A-Za-z0-9-]{3,30})",
    re.IGNORECASE,
)
_SUBJECT_CODE = re.compile(r"\(#\s*([0-9]{4,20})\)")
_URL = re.compile(r"https?://[^\s<>\"')\]]+")


def _forwarding_provider(mail: ParsedMail) -> str:
    sender = mail.sender.email.lower() if mail.sender else ""
    domain = _local_domain(sender)[1]
    provider = ""
    for known, name in _PROVIDERS.items():
        if domain == known or domain.endswith("." + known):
            provider = name
            break
    subject = mail.subject or ""
    if sender == "forwarding-noreply@google.com" or "gmail forwarding confirmation" in (
        subject.lower()
    ):
        return "gmail"
    if _FWD_SUBJECT.search(subject):
        return provider or "unknown"
    return ""


def forwarding_confirmation_details(mail: ParsedMail) -> dict | None:
    """{"provider", "code", "link"} of a mail provider's forwarding confirmation, else None."""
    try:
        provider = _forwarding_provider(mail)
        if not provider:
            return None
        text = mail.text or ""
        code = ""
        match = _SUBJECT_CODE.search(mail.subject or "") or _CODE.search(text)
        if match:
            code = match.group(1)
        links = [u.rstrip(".,;") for u in _URL.findall(text)]
        link = ""
        for url in links:
            low = url.lower()
            if any(k in low for k in ("vf-", "mail-settings.google", "verif", "confirm")):
                link = url
                break
        if not link and links:
            link = links[0]
        return {"provider": provider, "code": code, "link": link}
    except Exception:
        return None


# --------------------------------------------------------------------------- bounce linking

_MESSAGE_ID_LINE = re.compile(
    rb"^(?:message-id|original-message-id|x-original-message-id)[ \t]*:[ \t]*(?:\r?\n[ \t]+)?"
    rb"<([^<>\s]{1,900})>",
    re.IGNORECASE | re.MULTILINE,
)
_EMBEDDED_TYPES = frozenset(
    {"message/rfc822", "text/rfc822-headers", "message/global", "message/global-headers"}
)


def bounced_message_ids(mail: ParsedMail, raw: bytes) -> list[str]:
    """For a bounce: Message-IDs of the original message(s) it reports, newest last.

    Looks in the embedded message/rfc822 or text/rfc822-headers parts first, then in the raw
    body (bounces that quote the original inline); the bounce's own Message-ID is excluded.
    """
    found: list[str] = []
    own = mail.message_id

    def scan(data: bytes) -> None:
        for match in _MESSAGE_ID_LINE.finditer(data[:2_000_000]):
            token = match.group(1).decode("utf-8", "replace").strip()
            if token and token != own and token not in found:
                found.append(token)

    try:
        for att in mail.attachments:
            if att.content_type in _EMBEDDED_TYPES and att.data:
                scan(att.data)
        if not found and raw:
            end = min(
                (p for p in (raw.find(b"\r\n\r\n"), raw.find(b"\n\n")) if p != -1),
                default=len(raw),
            )
            scan(raw[end:])
    except Exception:
        return found[:20]
    return found[:20]
