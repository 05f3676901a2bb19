"""classify: each annotation on a realistic mail, the Microsoft false positive, real corpora."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from gateway.mail.parse import parse_mail
from gateway.models import (
    AUTO_REPLY,
    BOUNCE,
    FORWARDING_CONFIRMATION,
    MAILING_LIST,
    NOREPLY,
    OUT_OF_OFFICE,
    OWN_MAIL,
)
from gateway.pipeline.classify import (
    bounced_message_ids,
    classify,
    forwarding_confirmation_details,
)

CORPORA = Path(__file__).resolve().parents[2] / "shared" / "corpora"


def crlf(text: str | bytes) -> bytes:
    data = text.encode("utf-8") if isinstance(text, str) else text
    return re.sub(rb"\r\n|\r|\n", b"\r\n", data)


def mail_of(
    headers: str, body: str = "Hello,\n\nmy order 4711 has not arrived.\n\nJohn\n"
) -> bytes:
    return crlf(headers.rstrip("\n") + "\n\n" + body)


CUSTOMER = """\
From: John Doe <john.doe@customer.example>
To: support@acme.example
Subject: Order 4711 missing
Date: Thu, 5 Sep 2024 09:00:00 +0200
Message-ID: <CAF1234@mail.gmail.com>
Content-Type: text/plain; charset=utf-8
"""


def test_normal_customer_mail_has_no_annotation() -> None:
    mail = parse_mail(mail_of(CUSTOMER))
    assert (
        classify(
            mail,
            envelope_from="john.doe@customer.example",
            own_domain="acme.example",
            loop_id="gw1",
        )
        == frozenset()
    )


@pytest.mark.parametrize(
    "header",
    [
        "Auto-Submitted: auto-replied",
        "Auto-Submitted: auto-generated",
        "X-Autoreply: yes",
        "X-Autorespond: Thanks",
        "X-Auto-Response-Suppress: All",
        "Precedence: bulk",
        "Precedence: junk",
        "X-Precedence: auto_reply",
    ],
)
def test_auto_reply_headers(header: str) -> None:
    mail = parse_mail(mail_of(CUSTOMER + header + "\n"))
    assert AUTO_REPLY in classify(mail)


def test_auto_submitted_no_is_not_auto_reply() -> None:
    mail = parse_mail(mail_of(CUSTOMER + "Auto-Submitted: no\n"))
    assert classify(mail) == frozenset()


@pytest.mark.parametrize(
    "subject",
    [
        "Out of Office: Order 4711 missing",
        "Automatic reply: Order 4711 missing",
        "Automatische Antwort: Order 4711 missing",
        "Abwesenheitsnotiz: Order 4711 missing",
        "Réponse automatique : Order 4711 missing",
        "Respuesta automática: Order 4711 missing",
        "Autosvar: Order 4711 missing",
        "Automatic reply",
        "Out of office until Monday",
    ],
)
def test_out_of_office_subjects(subject: str) -> None:
    raw = mail_of(CUSTOMER.replace("Subject: Order 4711 missing", f"Subject: {subject}"))
    annotations = classify(parse_mail(raw))
    assert OUT_OF_OFFICE in annotations and AUTO_REPLY in annotations


@pytest.mark.parametrize(
    "subject",
    [
        "AW: Automatic reply: Order 4711",  # a person answers a colleague's out-of-office
        "Re: Automatic reply: Invoice 2026-118",
        "Auto-reply rules in your app are not working",  # the words open a sentence
        "Automatische Antwort funktioniert nicht",
    ],
)
def test_people_replying_to_or_writing_about_auto_replies(subject: str) -> None:
    raw = mail_of(CUSTOMER.replace("Subject: Order 4711 missing", f"Subject: {subject}"))
    assert classify(parse_mail(raw)) == frozenset()
    # the same subject with an auto-reply's headers is an auto-reply (an auto-reply to an
    # auto-reply keeps the first one's subject behind its own prefix)
    auto = mail_of(
        CUSTOMER.replace("Subject: Order 4711 missing", f"Subject: {subject}")
        + "Auto-Submitted: auto-replied\n"
    )
    assert AUTO_REPLY in classify(parse_mail(auto))


def test_weak_absence_subject_needs_auto_reply_headers() -> None:
    plain = mail_of(CUSTOMER.replace("Order 4711 missing", "Absence of invoice in my account"))
    assert classify(parse_mail(plain)) == frozenset()
    auto = mail_of(
        CUSTOMER.replace("Order 4711 missing", "Absence du bureau")
        + "Auto-Submitted: auto-replied\n"
    )
    assert OUT_OF_OFFICE in classify(parse_mail(auto))


def test_microsoft_rule_forward_is_not_auto_reply() -> None:
    raw = mail_of(
        """\
From: Maria Schulz <maria.schulz@contoso.example>
To: support@acme.example
Subject: FW: Order 4711 missing
Message-ID: <AM9PR04MB8000@AM9PR04MB8000.eurprd04.prod.outlook.com>
Auto-Submitted: auto-generated
X-MS-Exchange-Inbox-Rules-Loop: maria.schulz@contoso.example
X-MS-Exchange-Generated-Message-Source: Mailbox Rules Agent
Content-Type: text/plain; charset=utf-8
""",
        "________________________________\nFrom: John Doe <john.doe@customer.example>\n"
        "Sent: Thursday, September 5, 2024 9:00 AM\nSubject: Order 4711 missing\n\n"
        "my order has not arrived\n",
    )
    mail = parse_mail(raw)
    assert classify(mail, envelope_from="maria.schulz@contoso.example") == frozenset()
    # while the same hop forwarding an out-of-office reply is still judged by that original
    ooo = raw.replace(b"Subject: FW: Order", b"Subject: FW: Automatic reply: Order")
    assert OUT_OF_OFFICE in classify(parse_mail(ooo))


BOUNCE_DSN = """\
Return-Path: <>
From: Mail Delivery System <MAILER-DAEMON@mx.acme.example>
To: support@acme.example
Subject: Undelivered Mail Returned to Sender
Message-Id: <20240905070002.9C1@mx.acme.example>
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="9C1.1725519602/mx"

--9C1.1725519602/mx
Content-Type: text/plain; charset=us-ascii

I'm sorry to have to inform you that your message could not be delivered.

--9C1.1725519602/mx
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.acme.example

Final-Recipient: rfc822; john.doe@customer.example
Action: failed
Status: 5.1.1

--9C1.1725519602/mx
Content-Type: text/rfc822-headers

From: ACME Support <support@acme.example>
To: john.doe@customer.example
Subject: Re: Order 4711 missing
Message-ID: <gw.42.abcdef@acme.example>

--9C1.1725519602/mx--
"""


def test_bounce_with_original_message_id() -> None:
    raw = crlf(BOUNCE_DSN)
    mail = parse_mail(raw)
    annotations = classify(mail, envelope_from="")
    assert BOUNCE in annotations
    assert bounced_message_ids(mail, raw) == ["gw.42.abcdef@acme.example"]


@pytest.mark.parametrize(
    ("extra", "subject"),
    [
        ("X-Failed-Recipients: john@customer.example\n", "Order"),
        ("", "Delivery Status Notification (Failure)"),
        ("", "Mail delivery failed: returning message to sender"),
    ],
)
def test_bounce_headers_and_subjects(extra: str, subject: str) -> None:
    headers = CUSTOMER.replace("Subject: Order 4711 missing", f"Subject: {subject}") + extra
    assert BOUNCE in classify(parse_mail(mail_of(headers)))


@pytest.mark.parametrize(
    ("sender", "subject", "body"),
    [
        # postmaster@ is a mailbox the mail admin reads: a person's question stays a person's
        (
            "Postmaster <postmaster@small-firm.example>",
            "Your newsletter is going to our spam folder",
            "Hello,\n\nyour SPF record misses your sending service. Please fix it.\n\nKlaus\n",
        ),
        ("Bob <postmaster@example.com>", "Please enjoy this link", "http://x.example/a\n"),
        # Exchange's subject prefix, typed by a person about a parcel
        (
            "Heike Wolf <heike.wolf@beispiel.example>",
            "Unzustellbar: Paket 88301?",
            "Guten Tag,\n\nmein Paket ist laut Tracking unzustellbar. Bitte neu zustellen.\n",
        ),
        # a weak subject and one bounce phrase in the person's own sentence
        (
            "Ana Souza <ana.souza@exemplo.example>",
            "Mail delivery failed when I reply to you",
            'Whenever I reply I get "Mail delivery failed" back. Is my domain blocked?\n',
        ),
    ],
)
def test_people_with_a_machine_looking_sender_or_subject_are_people(
    sender: str, subject: str, body: str
) -> None:
    from gateway.pipeline.classify import HUMAN, mail_class

    headers = CUSTOMER.replace("John Doe <john.doe@customer.example>", sender).replace(
        "Subject: Order 4711 missing", f"Subject: {subject}"
    )
    envelope = sender.rsplit("<", 1)[1].rstrip(">")
    annotations = classify(parse_mail(mail_of(headers, body)), envelope_from=envelope)
    assert mail_class(annotations) == HUMAN


@pytest.mark.parametrize(
    ("sender", "subject", "body"),
    [
        # the same signs with one more: a bounce phrase, a bounce subject, a machine name
        (
            "Postmaster <postmaster@mx.example>",
            "Undeliverable Mail",
            "Invalid final delivery userid: john@customer.example\n",
        ),
        (
            "post_master@vtext.example",
            "Re:Test message",
            "Error: Invalid user address\n550 - Requested action not taken: no such user here\n",
        ),
        (
            "System Administrator <admin@mx.example>",
            "Unzustellbar: Order 4711",
            "Ihre Nachricht hat einige oder alle Empfänger nicht erreicht.\n",
        ),
        (
            "Mail Admin <mail@host.example>",
            "Mail delivery failed",
            "Your message could not be delivered. 550 5.1.1 User unknown\n",
        ),
        # a postmaster's report whose MIME structure left no readable text
        ("post_master@vtext.example", "Re:Test message", ""),
    ],
)
def test_machine_signs_together_still_make_a_bounce(sender: str, subject: str, body: str) -> None:
    headers = CUSTOMER.replace("John Doe <john.doe@customer.example>", sender).replace(
        "Subject: Order 4711 missing", f"Subject: {subject}"
    )
    envelope = sender.rsplit("<", 1)[-1].rstrip(">")
    assert BOUNCE in classify(parse_mail(mail_of(headers, body)), envelope_from=envelope)


def test_null_envelope_sender_is_bounce_but_unknown_is_not() -> None:
    mail = parse_mail(mail_of(CUSTOMER))
    assert BOUNCE in classify(mail, envelope_from="")
    assert BOUNCE in classify(mail, envelope_from="<>")
    assert BOUNCE not in classify(mail)  # envelope unknown


def test_mailing_list_and_own_group_list() -> None:
    listed = mail_of(
        CUSTOMER
        + "List-Id: Product news <news.shop.example>\n"
        + "List-Unsubscribe: <mailto:unsub@shop.example>\n"
    )
    assert MAILING_LIST in classify(parse_mail(listed), own_domain="acme.example")
    group = mail_of(CUSTOMER + "List-Id: <support.acme.example>\n")
    assert MAILING_LIST not in classify(parse_mail(group), own_domain="acme.example")


def test_own_mail_by_message_id_and_loop() -> None:
    own = mail_of(CUSTOMER.replace("<CAF1234@mail.gmail.com>", "<gw.1.x@Acme.Example>"))
    assert OWN_MAIL in classify(parse_mail(own), own_domain="acme.example")
    loop = mail_of(CUSTOMER + "X-Loop: gateway-7f3a\n")
    assert OWN_MAIL in classify(parse_mail(loop), loop_id="gateway-7f3a")
    assert OWN_MAIL not in classify(parse_mail(loop), loop_id="other", own_domain="acme.example")


@pytest.mark.parametrize(
    "sender",
    [
        "noreply@shop.example",
        "no-reply@shop.example",
        "do-not-reply@shop.example",
        "DoNotReply@shop.example",
        "orders-noreply@shop.example",
    ],
)
def test_noreply_senders(sender: str) -> None:
    raw = mail_of(CUSTOMER.replace("john.doe@customer.example", sender))
    assert NOREPLY in classify(parse_mail(raw))


def test_noreply_lookalike_is_not_noreply() -> None:
    raw = mail_of(CUSTOMER.replace("john.doe@customer.example", "noreen.replyson@customer.example"))
    assert NOREPLY not in classify(parse_mail(raw))


GMAIL_CONFIRMATION = """\
From: Gmail Team <forwarding-noreply@google.com>
To: support@acme.example
Subject: (#612345987) Gmail Forwarding Confirmation - Receive Mail from helpdesk.acme@gmail.com
Message-ID: <0000000000001a2b3c@google.com>
Content-Type: text/plain; charset="UTF-8"
"""
GMAIL_CONFIRMATION_BODY = """\
helpdesk.acme@gmail.com has requested to automatically forward mail to your email
address support@acme.example.
Confirmation code: 612345987

To allow helpdesk.acme@gmail.com to automatically forward mail to your address,
please click the link below to confirm the request:

https://mail-settings.google.com/mail/vf-%5BANGjdJ8abc%5D-0xYz12

If you click the link and it appears to be broken, please copy and paste it
into a new browser window.
"""


def test_forwarding_confirmation_code_and_link() -> None:
    mail = parse_mail(mail_of(GMAIL_CONFIRMATION, GMAIL_CONFIRMATION_BODY))
    annotations = classify(mail)
    assert FORWARDING_CONFIRMATION in annotations and NOREPLY in annotations
    assert forwarding_confirmation_details(mail) == {
        "provider": "gmail",
        "code": "612345987",
        "link": "https://mail-settings.google.com/mail/vf-%5BANGjdJ8abc%5D-0xYz12",
    }
    assert forwarding_confirmation_details(parse_mail(mail_of(CUSTOMER))) is None


def test_outlook_forwarding_verification() -> None:
    raw = mail_of(
        """\
From: Microsoft Outlook <no-reply@outlook.com>
To: support@acme.example
Subject: Verify your email address for forwarding
Content-Type: text/plain
""",
        "Use this verification code: 4827-1190\nOr open https://outlook.live.com/verify?t=abc\n",
    )
    mail = parse_mail(raw)
    assert FORWARDING_CONFIRMATION in classify(mail)
    details = forwarding_confirmation_details(mail)
    assert details == {
        "provider": "microsoft",
        "code": "4827-1190",
        "link": "https://outlook.live.com/verify?t=abc",
    }


def _corpus(*parts: str) -> Path:
    path = CORPORA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"shared corpora not present at {path}")
    return path


def test_flanker_real_bounces_are_bounces() -> None:
    folder = _corpus("flanker", "tests", "fixtures", "messages", "bounce")
    files = sorted(folder.glob("*.eml"))
    assert len(files) == 9
    for path in files:
        mail = parse_mail(crlf(path.read_bytes()))
        assert BOUNCE in classify(mail), path.name
    office = folder / "office365.eml"
    raw = crlf(office.read_bytes())
    ids = bounced_message_ids(parse_mail(raw), raw)
    assert ids == ["20171013111011.20866.254C2F3A4D7AA526@ninomail.com"]


@pytest.mark.parametrize("name", ["auto_reply.eml", "auto_reply_with_auto_submitted.eml"])
def test_chatwoot_auto_replies(name: str) -> None:
    path = _corpus("chatwoot", "spec", "fixtures", "files", name)
    mail = parse_mail(crlf(path.read_bytes()))
    assert AUTO_REPLY in classify(mail)


def test_chatwoot_bounces_and_plain_mail() -> None:
    folder = _corpus("chatwoot", "spec", "fixtures", "files")
    for name in ("bounced_gmail.eml", "bounced_with_no_from.eml"):
        assert BOUNCE in classify(parse_mail(crlf((folder / name).read_bytes()))), name
    plain = parse_mail(crlf((folder / "only_text.eml").read_bytes()))
    assert classify(plain) == frozenset()


# --------------------------------------------------------------------------- labelled set and cases

CASES = Path(__file__).resolve().parent / "data" / "cases"


@pytest.fixture(scope="module")
def labelled():
    from helpers.labelled import run

    return run()


def test_labelled_set_is_large_enough(labelled) -> None:
    from gateway.pipeline.classify import HUMAN

    machine = sum(n for (e, _), n in labelled.confusion.items() if e != HUMAN)
    human = sum(n for (e, _), n in labelled.confusion.items() if e == HUMAN)
    assert machine >= 150 and human >= 150, (machine, human)


def test_labelled_bounces_recognised(labelled) -> None:
    support, _precision, recall = labelled.rates(BOUNCE)
    assert support >= 100
    assert recall >= 0.995, labelled.wrong
    recognised, public = labelled.upstream_recall(BOUNCE)  # the public sets alone
    assert public >= 40 and recognised / public >= 0.995, labelled.wrong


def test_labelled_no_human_mail_lost_to_a_machine_class(labelled) -> None:
    assert labelled.lost_humans() == 0, labelled.wrong


@pytest.mark.parametrize(
    "cls", ["abuse_report", "auto_acknowledgement", "challenge_response", "auto_reply"]
)
def test_labelled_machine_classes(labelled, cls: str) -> None:
    support, precision, recall = labelled.rates(cls)
    assert support >= 4
    assert recall >= 0.95 and precision >= 0.95, labelled.wrong


def _case(name: str) -> tuple[frozenset[str], str]:
    from gateway.pipeline.classify import mail_class

    from helpers.labelled import envelope_sender

    raw = (CASES / name).read_bytes()
    mail = parse_mail(raw)
    annotations = classify(
        mail, envelope_from=envelope_sender(raw, mail), own_domain="example.com", loop_id="gw"
    )
    return annotations, mail_class(annotations)


@pytest.mark.parametrize(
    "name", ["machine-ndr-plain-text.eml", "machine-dsn-without-report-type.eml"]
)
def test_case_bounces(name: str) -> None:
    annotations, cls = _case(name)
    assert cls == BOUNCE and BOUNCE in annotations


def test_case_arf_is_its_own_class() -> None:
    from gateway.models import ABUSE_REPORT

    annotations, cls = _case("machine-arf-abuse-report.eml")
    assert cls == ABUSE_REPORT
    assert BOUNCE not in annotations and AUTO_REPLY not in annotations


@pytest.mark.parametrize(
    ("subject", "body"),
    [
        ("Fwd: Undelivered Mail Returned to Sender", "I got this back, is your address right?"),
        ("Re: Delivery failure on my order", "The parcel delivery failed twice."),
        ("Non remis : colis 4711", "Bonjour, mon colis n'a pas été remis."),
        ("Ticket #55123 still open", "My ticket #55123 is still open, please have a look."),
        ("Package returned to sender", "My parcel 4711 was returned to sender. Resend it?"),
        ("Mail delivery failed", "Hi, my mail to billing failed. Which address is right?"),
    ],
)
def test_people_writing_about_machine_mail_are_people(subject: str, body: str) -> None:
    from gateway.pipeline.classify import HUMAN, mail_class

    raw = mail_of(CUSTOMER.replace("Subject: Order 4711 missing", f"Subject: {subject}"), body)
    mail = parse_mail(raw)
    assert mail_class(classify(mail, envelope_from="john.doe@customer.example")) == HUMAN


def test_a_forwarded_auto_acknowledgement_is_a_persons_mail() -> None:
    from gateway.pipeline.classify import HUMAN, mail_class

    body = (
        "---------- Forwarded message ---------\nFrom: Acme Support <support@vendor.test>\n"
        "Subject: Ticket Received - Refund\n\nThis is an automated response: we have received "
        "your request and a ticket has been created (ticket #55123).\n"
    )
    raw = mail_of(CUSTOMER.replace("Order 4711 missing", "Fwd: Ticket Received - Refund"), body)
    assert mail_class(classify(parse_mail(raw), envelope_from="john.doe@customer.example")) == HUMAN
    unforwarded = mail_of(
        CUSTOMER.replace("Order 4711 missing", "Ticket Received - Refund"),
        body.split("\n\n", 1)[1],
    )
    annotations = classify(parse_mail(unforwarded), envelope_from="support@vendor.test")
    assert mail_class(annotations) == "auto_acknowledgement"


@pytest.mark.parametrize(
    ("sender", "subject", "extra", "body"),
    [
        (
            "Klantenservice <klantenservice@winkel.example>",
            "Uw vraag is ontvangen (ticketnummer 220815)",
            "",
            "Beste klant,\n\nWij hebben uw vraag ontvangen onder ticketnummer 220815.\n",
        ),
        (
            "Help Desk <helpdesk@tailspin.example>",
            "[Ticket #1187] Outlook keeps asking for password",
            "",
            "Your ticket has been submitted and will be reviewed by the IT team. Ticket #1187.\n",
        ),
        (
            "SysAid <sysaid@proseware.example>",
            "Service Record #5527 has been opened",
            "",
            "Service Record #5527 was opened on your behalf.\n",
        ),
        (
            "Jira <jira@desk.example>",
            "[JIRA] (SUP-4821) Printer offline",
            "",
            'Your request SUP-4821 "Printer on floor 3 is offline" has been received.\n',
        ),
        # under "Re:" the auto-reply header says it is automatic
        (
            "Lamna Shop <support@lamna.example>",
            "Re: Where is my order?",
            "X-Autoreply: yes\n",
            "We have received your request (#88213) and will reply within 48 hours.\n",
        ),
    ],
)
def test_auto_acknowledgement_kinds(sender: str, subject: str, extra: str, body: str) -> None:
    from gateway.pipeline.classify import mail_class

    headers = CUSTOMER.replace("John Doe <john.doe@customer.example>", sender).replace(
        "Subject: Order 4711 missing", f"Subject: {subject}"
    )
    envelope = sender.rsplit("<", 1)[1].rstrip(">")
    annotations = classify(parse_mail(mail_of(headers + extra, body)), envelope_from=envelope)
    assert mail_class(annotations) == "auto_acknowledgement"


@pytest.mark.parametrize(
    "body",
    [
        "Can you add me to the guest list for Friday? https://events.example/42",
        "Our sender verification in your dashboard fails: https://app.example/settings",
        "We received your request for a quote #4471 and will sign it tomorrow.",
    ],
)
def test_people_using_machine_words_are_people(body: str) -> None:
    from gateway.pipeline.classify import HUMAN, mail_class

    raw = mail_of(CUSTOMER, f"Hello,\n\n{body}\n\nJohn\n")
    assert mail_class(classify(parse_mail(raw), envelope_from="john.doe@customer.example")) == HUMAN


def test_a_person_pasting_a_bounce_text_is_a_person() -> None:
    from gateway.pipeline.classify import HUMAN, mail_class

    body = (
        "Hi,\n\nsince yesterday I get this when I write to you:\n\nYour message could not be "
        "delivered. This is a permanent error. 550 5.1.1 User unknown. Below this line is a "
        "copy of the message.\n\nPlease fix it!\nJohn\n"
    )
    raw = mail_of(CUSTOMER.replace("Order 4711 missing", "My mails bounce"), body)
    assert mail_class(classify(parse_mail(raw), envelope_from="john.doe@customer.example")) == HUMAN
