"""Write the project's own labelled mails (the `own-*.eml` files beside this script).

    .venv/bin/python tests/data/labelled/make_own.py

Deterministic: the same files every run, so the committed set and the script agree. Each style
is modelled on the text the named MTA, provider or help desk sends (see README.md); every name,
address and domain is invented. The hard cases are on purpose: bounces with a non-empty envelope
sender and no multipart/report, quoted originals full of escalation words, and human mails that
forward, quote or talk about a bounce, an abuse report or a ticket number.
"""

from __future__ import annotations

import itertools
import zlib
from pathlib import Path

HERE = Path(__file__).resolve().parent

ORIGINALS = [
    (
        "Re: Your refund request",
        "Your refund has been issued. We are sorry for the terrible delay.",
    ),
    ("Re: Order 4711", "I want to speak to a person about cancelling my contract."),
    ("Re: Invoice 2026-118", "The invoice is attached. Please call me back, this is urgent!"),
    ("Re: Ihre Anfrage", "Vielen Dank, die Rechnung kommt morgen. Kündigung bestätigt."),
]
RECIPIENTS = ["former.customer@closed-shop.test", "anna.berg@kunde.test", "j.smith@mailbox.test"]


def original_block(i: int) -> str:
    subject, body = ORIGINALS[i % len(ORIGINALS)]
    rcpt = RECIPIENTS[i % len(RECIPIENTS)]
    return (
        f"From: Support <support@example.com>\nTo: {rcpt}\nSubject: {subject}\n"
        f"Date: Sat, 28 Nov 2026 17:05:00 +0000\nMessage-ID: <reply-{7000 + i}@example.com>\n\n"
        f"{body}\n"
    )


def headers(
    i: int, *, sender: str, subject: str, return_path: str, ctype: str = "text/plain; charset=utf-8"
) -> str:
    rp = f"Return-Path: <{return_path}>\n"
    return (
        f"{rp}From: {sender}\nTo: support@example.com\nSubject: {subject}\n"
        f"Date: Sun, 29 Nov 2026 09:{i % 60:02d}:00 +0000\n"
        f"Message-ID: <own-{i}-{zlib.crc32(subject.encode()) % 10**8}@machine.test>\n"
        f"MIME-Version: 1.0\nContent-Type: {ctype}\n"
    )


def report(
    i: int, human_text: str, rcpt: str, status: str, code: str, *, report_type: bool
) -> tuple[str, str]:
    rt = "; report-type=delivery-status" if report_type else ""
    return (
        f'multipart/report{rt}; boundary="b{i}"',
        f"--b{i}\nContent-Type: text/plain; charset=utf-8\n\n{human_text}\n"
        f"--b{i}\nContent-Type: message/delivery-status\n\n"
        f"Reporting-MTA: dns; mx{i}.mailhost.test\n\nFinal-Recipient: rfc822; {rcpt}\n"
        f"Action: failed\nStatus: {status}\nDiagnostic-Code: smtp; {code}\n\n"
        f"--b{i}\nContent-Type: message/rfc822\n\n{original_block(i)}\n--b{i}--\n",
    )


# --------------------------------------------------------------------------- bounce styles
# each: (sender, subject template, body template); {rcpt} {host} {code} {orig} {subject}


def postfix(i, rcpt, host, code, subject):
    return (
        f"Mail Delivery System <MAILER-DAEMON@{host}>",
        "Undelivered Mail Returned to Sender",
        f"This is the mail system at host {host}.\n\nI'm sorry to have to inform you that your "
        "message could not\nbe delivered to one or more recipients. It's attached below.\n\n"
        "For further assistance, please send mail to postmaster.\n\nIf you do so, please include "
        "this problem report. You can\ndelete your own text from the attached returned message.\n\n"
        f"                   The mail system\n\n<{rcpt}>: host mx.{rcpt.split('@')[1]} said: "
        f"{code} (in reply to RCPT TO command)\n",
    )


def postfix_delay(i, rcpt, host, code, subject):
    return (
        f"Mail Delivery System <MAILER-DAEMON@{host}>",
        "Delayed Mail (still being retried)",
        f"This is the mail system at host {host}.\n\n####################################"
        "################################\n# THIS IS A WARNING ONLY.  YOU DO NOT NEED TO RESEND "
        "YOUR MESSAGE. #\n#####################################################################"
        f"\n\nYour message could not be delivered for more than 4 hour(s).\nIt will be retried "
        f"until it is 5 day(s) old.\n\n<{rcpt}>: connect to mx.{rcpt.split('@')[1]}: "
        "Connection timed out\n",
    )


def exim(i, rcpt, host, code, subject):
    return (
        f"Mail Delivery System <Mailer-Daemon@{host}>",
        "Mail delivery failed: returning message to sender",
        "This message was created automatically by mail delivery software.\n\nA message that you "
        "sent could not be delivered to one or more of its\nrecipients. This is a permanent error. "
        f"The following address(es) failed:\n\n  {rcpt}\n    host mx.{rcpt.split('@')[1]}: "
        f"{code}\n\n------ This is a copy of the message, including all the headers. ------\n",
    )


def cpanel(i, rcpt, host, code, subject):
    return (
        f"Mail Delivery System <mailer-daemon@server{i}.{host}>",
        "Mail delivery failed: returning message to sender",
        "This message was created automatically by mail delivery software.\n\nA message that you "
        "sent could not be delivered to one or more of its recipients. This is a permanent error. "
        f"The following address(es) failed:\n\n{rcpt}\nDomain {rcpt.split('@')[1]} has exceeded "
        "the max emails per hour (100/100 (100%)) allowed.  Message discarded.\n",
    )


def sendmail(i, rcpt, host, code, subject):
    return (
        f"Mail Delivery Subsystem <MAILER-DAEMON@{host}>",
        "Returned mail: see transcript for details",
        f"The original message was received at Sun, 29 Nov 2026 08:59:01 GMT\nfrom "
        f"localhost [127.0.0.1]\n\n   ----- The following addresses had permanent fatal errors "
        f"-----\n<{rcpt}>\n    (reason: {code})\n\n   ----- Transcript of session follows -----\n"
        f"... while talking to mx.{rcpt.split('@')[1]}.:\n>>> RCPT To:<{rcpt}>\n<<< {code}\n"
        f"550 5.1.1 <{rcpt}>... User unknown\n",
    )


def qmail(i, rcpt, host, code, subject):
    return (
        f"MAILER-DAEMON@{host}",
        "failure notice",
        f"Hi. This is the qmail-send program at {host}.\nI'm afraid I wasn't able to deliver your "
        "message to the following addresses.\nThis is a permanent error; I've given up. Sorry it "
        f"didn't work out.\n\n<{rcpt}>:\nRemote host said: {code}\nGiving up on 192.0.2.{i % 250}."
        "\n\n--- Below this line is a copy of the message.\n",
    )


def exchange(i, rcpt, host, code, subject):
    return (
        f"Microsoft Outlook <postmaster@{host}>",
        f"Undeliverable: {subject}",
        "Delivery has failed to these recipients or groups:\n\n"
        f"{rcpt}\nThe email address you entered couldn't be found. Please check the recipient's "
        "email address and try to resend the message. If the problem continues, please contact "
        "your helpdesk.\n\nDiagnostic information for administrators:\n\nGenerating server: "
        f"{host}\n\n{rcpt}\nRemote Server returned '{code}'\n\nOriginal message headers:\n",
    )


def office365(i, rcpt, host, code, subject):
    return (
        "Microsoft Outlook <MicrosoftExchange329e71ec88ae4615bbc36ab6ce41109e@contoso.test>",
        f"Undeliverable: {subject}",
        "Your message to " + rcpt + " couldn't be delivered.\n\n"
        f"{rcpt.split('@')[0]} wasn't found at {rcpt.split('@')[1]}.\n\nAction Required\n"
        "Unknown To address\n\nHow to Fix It\nThe address may be misspelled or may not exist. "
        "Try one or more of the following:\n\nMore Info for Email Admins\nStatus code: "
        f"{code}\n",
    )


def gmail(i, rcpt, host, code, subject):
    return (
        "Mail Delivery Subsystem <mailer-daemon@googlemail.com>",
        "Delivery Status Notification (Failure)",
        f"** Address not found **\n\nYour message wasn't delivered to {rcpt} because the address "
        "couldn't be found, or is unable to receive mail.\n\nLearn more here: "
        "https://support.google.com/mail/?p=NoSuchUser\n\nThe response from the remote server "
        f"was:\n{code}\n",
    )


def gmail_delay(i, rcpt, host, code, subject):
    return (
        "Mail Delivery Subsystem <mailer-daemon@googlemail.com>",
        "Delivery Status Notification (Delay)",
        f"** Message not delivered yet **\n\nThere was a temporary problem delivering your "
        f"message to {rcpt}. Gmail will retry for 46 more hours. You'll be notified if the "
        "delivery fails permanently.\n\nThe response was:\n"
        "DNS Error: DNS server returned general failure\n",
    )


def yahoo(i, rcpt, host, code, subject):
    return (
        "MAILER-DAEMON@yahoo.test",
        "Failure Notice",
        "Sorry, we were unable to deliver your message to the following address.\n\n"
        f"<{rcpt}>:\n{code}\n\n--- Below this line is a copy of the message.\n",
    )


def hosting_plain(i, rcpt, host, code, subject):
    return (
        f"Mail Delivery System <Mail.Delivery.System@relay.{host}>",
        f"Undelivered Mail: {subject}",
        "Hello,\n\nwe are sorry to tell you that your message to the following address could not "
        f"be delivered because the mailbox is full:\n\n    {rcpt}\n\nThe original message "
        "follows.\n\n------ Original message ------\n",
    )


def strato_de(i, rcpt, host, code, subject):
    return (
        f"Mail Delivery System <MAILER-DAEMON@smtp.{host}>",
        f"Unzustellbar: {subject}",
        "Dies ist eine automatisch erstellte Nachricht des Mailsystems.\n\nIhre Nachricht konnte "
        f"an folgende Empfänger nicht zugestellt werden:\n\n{rcpt}\n    {code}\n\n"
        "--- Kopie der Nachricht ---\n",
    )


def ovh_fr(i, rcpt, host, code, subject):
    return (
        f"Mail Delivery System <MAILER-DAEMON@mo{i}.mail-out.{host}>",
        f"Non remis : {subject}",
        f"Votre message n'a pas pu être remis aux destinataires suivants :\n\n{rcpt}\n"
        f"Raison : {code}\n\nCeci est un message automatique, merci de ne pas y répondre.\n",
    )


def es_provider(i, rcpt, host, code, subject):
    return (
        f"Sistema de entrega de correo <postmaster@{host}>",
        f"No se puede entregar: {subject}",
        "No se pudo entregar el mensaje a los siguientes destinatarios:\n\n"
        f"{rcpt}\nEl servidor remoto respondió: {code}\n",
    )


def it_provider(i, rcpt, host, code, subject):
    return (
        f"Mail Delivery System <mailer-daemon@{host}>",
        f"Non recapitabile: {subject}",
        "Non è stato possibile recapitare il messaggio ai seguenti destinatari:\n\n"
        f"{rcpt}\nErrore permanente: {code}\n",
    )


def nl_provider(i, rcpt, host, code, subject):
    return (
        f"Mail Delivery System <postmaster@{host}>",
        f"Onbestelbaar: {subject}",
        f"Uw bericht kon niet worden bezorgd bij de volgende ontvangers:\n\n{rcpt}\n{code}\n",
    )


def pt_provider(i, rcpt, host, code, subject):
    return (
        f"Sistema de Entrega de Email <mailer-daemon@{host}>",
        f"Não é possível entregar: {subject}",
        f"Não foi possível entregar a mensagem aos seguintes destinatários:\n\n{rcpt}\n{code}\n",
    )


def icloud(i, rcpt, host, code, subject):
    return (
        "Mail Delivery System <MAILER-DAEMON@icloud.test>",
        "Delivery Status Notification (Failure)",
        f"Your message to {rcpt} could not be delivered.\nThe recipient's mailbox is full and "
        f"can't accept messages now.\n\nRemote server said: {code}\n",
    )


def mimecast(i, rcpt, host, code, subject):
    return (
        f"Postmaster <postmaster@{host}>",
        f"Message Delivery Failure - {subject}",
        f"Your message could not be delivered to {rcpt}.\n\nThe message has been rejected by the "
        f"recipient's mail server for the following reason:\n{code}\n\nThis is an automated "
        "message; please do not reply.\n",
    )


def zoho(i, rcpt, host, code, subject):
    return (
        "Mail Delivery Subsystem <mailer-daemon@zoho.test>",
        "Undelivered Mail Returned to Sender",
        f"This message was created automatically by mail delivery software.\nA message that you "
        f"sent could not be delivered to one or more of its recipients.\n\n{rcpt}, "
        f"ERROR CODE :{code}\n",
    )


def barracuda(i, rcpt, host, code, subject):
    return (
        f"Mail Delivery Service <noreply-dmarc-support@{host}>",
        f"Delivery failure: {subject}",
        f"Your message to {rcpt} was not delivered.\nReason: {code}\n\nThe original message "
        "is attached.\n",
    )


STYLES = [
    postfix,
    postfix_delay,
    exim,
    cpanel,
    sendmail,
    qmail,
    exchange,
    office365,
    gmail,
    gmail_delay,
    yahoo,
    hosting_plain,
    strato_de,
    ovh_fr,
    es_provider,
    it_provider,
    nl_provider,
    pt_provider,
    icloud,
    mimecast,
    zoho,
    barracuda,
]
CODES = [
    ("5.1.1", "550 5.1.1 <{rcpt}>: Recipient address rejected: User unknown"),
    ("5.2.2", "552 5.2.2 Mailbox full"),
    ("5.7.1", "550 5.7.1 Message rejected as spam by Content Filtering"),
    ("4.4.1", "451 4.4.1 No answer from host"),
]
HOSTS = ["mailhost.test", "hosting-company.test", "isp-mail.test", "provider.test"]


def bounces() -> dict[str, str]:
    out: dict[str, str] = {}
    n = 0
    for style, variant in itertools.product(STYLES, range(4)):
        n += 1
        rcpt = RECIPIENTS[n % len(RECIPIENTS)]
        host = HOSTS[(n + variant) % len(HOSTS)]
        status, code = CODES[(n + variant) % len(CODES)]
        code = code.format(rcpt=rcpt)
        orig_subject = ORIGINALS[n % len(ORIGINALS)][0]
        sender, subject, text = style(n, rcpt, host, code, orig_subject)
        # variants: 0 null sender + report, 1 null sender plain, 2 non-empty sender + report,
        # 3 non-empty sender plain (the hardest: only words say it is a bounce)
        null_sender = variant in (0, 1)
        with_report = variant in (0, 2)
        return_path = "" if null_sender else f"bounces+{n}@{host}"
        if with_report:
            ctype, body = report(
                n, text, rcpt, status, code, report_type=variant == 0 or n % 2 == 0
            )
        else:
            ctype, body = "text/plain; charset=utf-8", text + "\n" + original_block(n)
        raw = headers(n, sender=sender, subject=subject, return_path=return_path, ctype=ctype)
        out[f"machine/bounce/own-{style.__name__}-{variant}.eml"] = raw + "\n" + body
    return out


# --------------------------------------------------------------------------- ARF

ARF_SOURCES = [
    ("Yahoo! Mail AntiSpam Feedback <feedback@arf.mail.yahoo.test>", "Email Feedback Report"),
    ("AOL Feedback Loop <scomp@aol.test>", "Email Feedback Report for IP 192.0.2.25"),
    ("Microsoft JMRP <staff@hotmail.test>", "complaint about message from 192.0.2.25"),
    ("abuse@provider.test", "Abuse report"),
    ("FBL <fbl@comcast.test>", "Spam complaint"),
    ("Feedback Loop <fbl@gmx.test>", "FW: Re: Your order"),
]


def arf() -> dict[str, str]:
    out: dict[str, str] = {}
    for n, ((sender, subject), ftype) in enumerate(
        itertools.product(ARF_SOURCES, ["abuse", "fraud", "not-spam"])
    ):
        i = 500 + n
        with_report_type = n % 3 != 2  # some reporters omit report-type (RFC 5965 §3 needs it)
        rt = "; report-type=feedback-report" if with_report_type else ""
        body = (
            f"--a{i}\nContent-Type: text/plain; charset=us-ascii\n\nThis is an email abuse report "
            "for an email message received from IP 192.0.2.25 on Sun, 29 Nov 2026.\nA recipient "
            f"marked it as {ftype}.\n\n--a{i}\nContent-Type: message/feedback-report\n\n"
            f"Feedback-Type: {ftype}\nUser-Agent: FBL/1.0\nVersion: 1\n"
            "Original-Mail-From: <support@example.com>\nArrival-Date: Sun, 29 Nov 2026 08:55:00 "
            f"+0000\nSource-IP: 192.0.2.25\n\n--a{i}\nContent-Type: message/rfc822\n\n"
            f"{original_block(i)}\n--a{i}--\n"
        )
        raw = headers(
            i,
            sender=sender,
            subject=subject,
            return_path=sender.split("<")[-1].strip(">"),
            ctype=f'multipart/report{rt}; boundary="a{i}"',
        )
        out[f"machine/abuse_report/own-arf-{n}.eml"] = raw + "\n" + body
    return out


# --------------------------------------------------------------------------- auto-acknowledgements

ACKS = [
    (
        "Zendesk",
        "Acme Support <support@acme-vendor.test>",
        "[Acme] Re: {subject}",
        "##- Please type your reply above this line -##\n\nYour request (#{n}) has been received "
        "and is being reviewed by our support staff.\n\nTo add additional comments, reply to "
        "this email.\n",
        "X-Mailer: Zendesk Mailer\nX-Zendesk-From-Account-Id: 1a2b3c\n",
    ),
    (
        "Freshdesk",
        "Globex Helpdesk <help@globex.test>",
        "Ticket Received - {subject}",
        "Dear customer,\n\nWe would like to acknowledge that we have received your request and a "
        "ticket has been created.\nA support representative will be reviewing your request and "
        "will send you a personal response (usually within 24 hours).\n\nTo view the status of "
        "the ticket or add comments, please visit https://globex.freshdesk.test/helpdesk/"
        "tickets/{n}\n\nThank you for your patience.\n",
        "X-FD-Email: 1\n",
    ),
    (
        "Zammad",
        "Initech Service <service@initech.test>",
        "Thanks for your inquiry ({subject})",
        "Your request (Ticket#{n}) has been received and will be reviewed by our support staff."
        "\n\nTo provide additional information, please reply to this email or click on the "
        "following link:\nhttps://helpdesk.initech.test/#ticket/zoom/{n}\n\nYour Initech Team\n",
        "X-Zammad-Ticket-Id: 77\n",
    ),
    (
        "RT",
        "Umbrella RT <rt@umbrella.test>",
        "[umbrella.test #{n}] AutoReply: {subject}",
        "Greetings,\n\nThis message has been automatically generated in response to the "
        'creation of a trouble ticket regarding:\n\t"{subject}",\na summary of which appears '
        "below.\n\nThere is no need to reply to this message right now.  Your ticket has been "
        "assigned an ID of [umbrella.test #{n}].\n",
        "RT-Ticket: umbrella.test #{n}\nRT-Originator: support@example.com\n",
    ),
    (
        "osTicket",
        "Hooli Support <support@hooli.test>",
        "Support Ticket Opened [#{n}]",
        "Dear Support,\n\nA request for support has been created and assigned ticket #{n}. A "
        "representative will follow-up with you as soon as possible.\n\nYou can view this "
        "ticket's progress online here: https://hooli.test/support/view.php\n",
        "",
    ),
    (
        "OTRS",
        "Vandelay Industries <service@vandelay.test>",
        "[Ticket#2026112910000{n}] RE: {subject}",
        "This is an automatically generated message.\n\nYour request has been received; a "
        "ticket with the number 2026112910000{n} has been created for you. Please keep the "
        "ticket number in the subject of any reply.\n",
        "X-OTRS-Loop: false\n",
    ),
    (
        "ServiceNow",
        "IT Service Desk <servicedesk@massive.test>",
        "INC00{n} has been opened on your behalf",
        "Your incident INC00{n} has been opened on your behalf. We will contact you shortly."
        "\n\nShort description: {subject}\n\nThank you,\nIT Service Desk\n",
        "",
    ),
    (
        "Salesforce",
        "Stark Customer Care <care@stark.test>",
        "Case #000{n}: {subject} [ ref:_00D1a._500{n}:ref ]",
        "Thank you for contacting Stark Customer Care. This is an automated response to let you "
        "know that we have received your email and created case #000{n}. One of our agents will "
        "respond within 2 business days.\n",
        "",
    ),
    (
        "HelpScout",
        "Wayne Enterprises <hello@wayne.test>",
        "Re: {subject}",
        "Thanks for reaching out! We've received your message and will get back to you within "
        "one business day.\n\nIn the meantime, our help center has answers to common "
        "questions: https://help.wayne.test\n\nThis is an automated reply. Your ticket number "
        "is #{n}.\n",
        "",
    ),
    (
        "German",
        "Kundenservice Muster GmbH <service@muster.test>",
        "Eingangsbestätigung: {subject} [Ticket#{n}]",
        "Sehr geehrte Damen und Herren,\n\nvielen Dank für Ihre Nachricht. Ihre Anfrage ist bei "
        "uns eingegangen und wurde unter der Ticketnummer {n} erfasst. Wir melden uns "
        "schnellstmöglich bei Ihnen.\n\nDies ist eine automatisch erstellte Nachricht.\n",
        "",
    ),
    (
        "French",
        "Service client <service@exemple-boutique.test>",
        "Accusé de réception [#{n}] {subject}",
        "Bonjour,\n\nNous avons bien reçu votre demande, enregistrée sous le numéro {n}. Notre "
        "équipe vous répondra dans les meilleurs délais.\n\nCeci est un message automatique.\n",
        "",
    ),
    (
        "Spanish",
        "Atención al cliente <soporte@tienda.test>",
        "Hemos recibido su solicitud [#{n}]",
        "Hola,\n\nHemos recibido su solicitud con el número de ticket #{n}. Nuestro equipo le "
        "responderá lo antes posible.\n\nEste es un mensaje automático.\n",
        "",
    ),
]


def acks() -> dict[str, str]:
    out: dict[str, str] = {}
    for n, ((name, sender, subj, body, extra), orig) in enumerate(
        itertools.product(ACKS, ORIGINALS[:2])
    ):
        i = 800 + n
        ticket = 12345 + n
        subject = subj.format(subject=orig[0].removeprefix("Re: "), n=ticket)
        raw = headers(
            i, sender=sender, subject=subject, return_path=sender.split("<")[-1].strip(">")
        ) + extra.format(n=ticket)
        out[f"machine/auto_acknowledgement/own-{name.lower()}-{n}.eml"] = (
            raw + "\n" + body.format(n=ticket, subject=orig[0])
        )
    return out


# --------------------------------------------------------------------------- challenge-response

CHALLENGES = [
    (
        "Boxbe <notify@boxbe.test>",
        "Request to join my Guest List (action required)",
        'Hello support@example.com,\n\nYour message about "{subject}" to {rcpt} has been '
        "waitlisted. Please add yourself to my Guest List so your messages will be delivered to "
        "my Inbox. Use the link below.\n\nClick to approve: https://www.boxbe.test/anno?tc={n}\n",
        "X-Boxbe-Authentication: 1\n",
    ),
    (
        "{rcpt}",
        "Please confirm your message",
        "Hi,\n\nI am protecting myself from receiving junk mail. Please click the link below to "
        "complete the verification process. You have to do this only once.\n\n"
        "https://verify.spamarrest.test/verify?id={n}\n\nYour original message will be "
        "delivered as soon as you verify.\n",
        "X-Spam-Arrest: challenge\n",
    ),
    (
        "Sender Verification <verify@mailchannels.test>",
        "[Action Required] Verify your email address to deliver your message",
        "Your message to {rcpt} is being held until you verify that you are a human sender. "
        "Please confirm by visiting the following link within 7 days:\n\n"
        "https://challenge.mailchannels.test/confirm/{n}\n\nThis is an automated message.\n",
        "",
    ),
    (
        "{rcpt}",
        "Bestätigung erforderlich: Ihre Nachricht an {rcpt}",
        "Guten Tag,\n\nzum Schutz vor Spam wird Ihre Nachricht erst zugestellt, wenn Sie "
        "bestätigen, dass Sie ein Mensch sind. Bitte klicken Sie auf den folgenden Link:\n\n"
        "https://antispam.provider.test/bestaetigen?id={n}\n\nDies ist eine automatische "
        "Nachricht.\n",
        "",
    ),
]


def challenges() -> dict[str, str]:
    out: dict[str, str] = {}
    for n, ((sender, subj, body, extra), rcpt) in enumerate(
        itertools.product(CHALLENGES, RECIPIENTS)
    ):
        i = 900 + n
        orig = ORIGINALS[n % len(ORIGINALS)][0]
        sender_f = sender.format(rcpt=rcpt)
        raw = (
            headers(
                i,
                sender=sender_f,
                subject=subj.format(rcpt=rcpt),
                return_path=sender_f.split("<")[-1].strip(">"),
            )
            + extra
        )
        out[f"machine/challenge_response/own-challenge-{n}.eml"] = (
            raw + "\n" + body.format(n=4242 + n, rcpt=rcpt, subject=orig)
        )
    return out


# --------------------------------------------------------------------------- human hard negatives

HUMAN = [
    (
        "Fwd: Undelivered Mail Returned to Sender",
        "Hi,\n\nI tried to send you my invoice but got this back. Is your address still right?"
        "\n\nThanks,\nPeter\n\n---------- Forwarded message ---------\nFrom: Mail Delivery "
        "System <MAILER-DAEMON@mail.customer.test>\nDate: Sat, 28 Nov 2026\nSubject: Undelivered "
        "Mail Returned to Sender\n\nThis is the mail system at host mail.customer.test.\n\nI'm "
        "sorry to have to inform you that your message could not\nbe delivered to one or more "
        "recipients.\n\n<billing@example.com>: host mx.example.com said: 550 5.1.1 User unknown\n",
    ),
    (
        "WG: Unzustellbar: Rechnung",
        "Hallo,\n\nmeine Mail an Ihre Buchhaltung kam zurück, siehe unten. Können Sie mir eine "
        "Adresse nennen, die funktioniert?\n\nGruß\nSabine\n\n-----Ursprüngliche Nachricht-----\n"
        "Von: Microsoft Outlook <postmaster@kunde.test>\nGesendet: Samstag, 28. November 2026\n"
        "Betreff: Unzustellbar: Rechnung\n\nDie Nachricht konnte nicht zugestellt werden.\n",
    ),
    (
        "Re: Delivery failure on my order",
        "Hello,\n\nthe parcel delivery failed twice because nobody was home. Could you send it "
        "to my office instead?\n\nBest,\nMaria\n",
    ),
    (
        "Question about an abuse report we got",
        "Hi team,\n\nour mail provider says they received an abuse report about a newsletter we "
        "sent through your platform. Can you check the feedback loop settings for our account?"
        "\n\nRegards,\nTom\n",
    ),
    (
        "We received your request for the quote",
        "Hello,\n\nthank you, we received your request for the quote #4471 and will sign it "
        "tomorrow. One question: is shipping included?\n\nKind regards,\nLinda\n",
    ),
    (
        "Mail delivery problem",
        "Hi,\n\nsince yesterday none of my emails reach your shop. I get a message saying my "
        "mail could not be delivered. Is something wrong on your side?\n\nJohn\n",
    ),
    (
        "Ticket #55123 still open",
        "Hello,\n\nmy ticket #55123 is still open and nobody answered. Please have a look.\n\n"
        "Ahmed\n",
    ),
    (
        "Re: Your request (#12345) has been received",
        "Thanks, but I need an answer today: the invoice total is wrong by 40 EUR.\n\nKlaus\n\n"
        "On Sat, 28 Nov 2026 at 17:05, Support <support@example.com> wrote:\n> Your request "
        "(#12345) has been received and is being reviewed by our support staff.\n",
    ),
    (
        "Verify my account",
        "Hello,\n\nI cannot verify my email address: the confirmation link says it expired. Can "
        "you send me a new one?\n\nThanks,\nYuki\n",
    ),
    (
        "Returned goods",
        "Hi,\n\nI returned the goods to sender last week (tracking 00340434). When will I get "
        "the refund?\n\nBest regards,\nOlga\n",
    ),
    (
        "Non remis : colis 4711",
        "Bonjour,\n\nmon colis n'a pas été remis, le transporteur dit que l'adresse est "
        "incomplète. Pouvez-vous vérifier ?\n\nCordialement,\nÉlodie\n",
    ),
    (
        "Postmaster question",
        "Hi,\n\nI'm the postmaster of our small company. Your emails to us are rejected with 550 "
        "5.7.1 because of SPF. Could you check your DNS records?\n\nCheers,\nRavi\n",
    ),
    (
        "Automatic renewal",
        "Hello,\n\nplease switch off the automatic renewal of my subscription. I did not ask "
        "for an automatic reply, I want a person to confirm.\n\nThanks,\nGrace\n",
    ),
    (
        "Out of stock?",
        "Hi, is the blue model out of stock? I'm out of office next week, so please answer "
        "soon.\n\nPaolo\n",
    ),
    (
        "Bestätigung meiner Bestellung",
        "Guten Tag,\n\nich habe keine Bestätigung meiner Bestellung 88812 erhalten. Ist sie "
        "angekommen?\n\nViele Grüße\nJürgen\n",
    ),
    (
        "Re: Delivery Status Notification (Failure)",
        "Hi support,\n\nGmail keeps telling me my message to you wasn't delivered, see below. "
        "Please help.\n\nNina\n\nOn Sat, 28 Nov 2026, Mail Delivery Subsystem wrote:\n> ** "
        "Address not found **\n> Your message wasn't delivered to help@example.com\n",
    ),
]
HUMAN_SENDERS = [
    "Peter Novak <peter.novak@customer.test>",
    "Sabine Keller <s.keller@kunde.test>",
    "Maria Lopez <maria.lopez@cliente.test>",
    "Tom Baker <tom@startup.test>",
]


def humans() -> dict[str, str]:
    out: dict[str, str] = {}
    for n, (subject, body) in enumerate(HUMAN):
        for k, sender in enumerate(HUMAN_SENDERS[:2]):
            i = 1000 + n * 2 + k
            addr = sender.split("<")[-1].strip(">")
            raw = headers(i, sender=sender, subject=subject, return_path=addr)
            out[f"human/own-hard-{n}-{k}.eml"] = raw + "\n" + body
    return out


def main() -> None:
    files = {**bounces(), **arf(), **acks(), **challenges(), **humans()}
    for rel, text in files.items():
        path = HERE / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    print(f"{len(files)} files written")


if __name__ == "__main__":
    main()
