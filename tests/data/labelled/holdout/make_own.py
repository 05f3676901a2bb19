"""Writes the holdout's own-* mails (deterministic; run from anywhere to regenerate).

Written by the session that checked issue 14 items 7 and 8, after the rules were tuned and
without changing them first: auto-acknowledgements in the words of help desks the labelled set
does not model (Jira Service Management, Kayako, HappyFox, Freshservice, GLPI, Spiceworks,
Front, Gorgias, Zoho Desk, SysAid, Italian and Dutch help desks) and people's mails that look
machine-ish (a forwarded bounce, a quoted auto-reply, "Undelivered" or "Auto-Reply" in a
subject, a reply to a ticket acknowledgement, a postmaster's own question). Every name and
domain is invented.
"""

from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).resolve().parent

ACKS = {
    "jira-sm": (
        "Jira Service Management <jira@acme-desk.atlassian.test>",
        "[JIRA] (SUP-4821) Printer on floor 3 is offline",
        "Auto-Submitted: auto-generated\n",
        'Hi Laura,\n\nYour request SUP-4821 "Printer on floor 3 is offline" has been received.\n'
        "You can view and comment on it here: https://acme-desk.atlassian.test/servicedesk/"
        "customer/portal/1/SUP-4821\n\nReply above this line to add a comment.\n\n"
        "Powered by Jira Service Management\n",
    ),
    "kayako": (
        "Northwind Support <support@northwind.test>",
        "[#ABC-123-45678]: Refund for order 7781",
        "",
        "Thank you for contacting Northwind Support. This is an automated message to let you "
        "know that we have received your ticket and a member of our team will respond shortly.\n"
        "\nTicket ID: ABC-123-45678\nSubject: Refund for order 7781\nDepartment: Billing\n"
        "Status: Open\n\nYou can check the status of your ticket at any time at "
        "https://support.northwind.test/Tickets/Ticket/View/ABC-123-45678\n",
    ),
    "happyfox": (
        "Contoso Help Desk <help@contoso-help.test>",
        "Your ticket #CT00412 has been created",
        "X-Auto-Response-Suppress: All\n",
        "Dear Customer,\n\nThank you for writing to us. Your ticket has been created with the "
        "ticket number #CT00412. Our support team will get back to you at the earliest.\n\n"
        "Please do not change the subject line when replying to this email.\n\n"
        "Regards,\nContoso Help Desk\n",
    ),
    "freshservice": (
        "IT Service Desk <it@fabrikam.test>",
        "Ticket Received - [#INC-2231] VPN drops every hour",
        "",
        "Hi Tom,\n\nWe would like to acknowledge that we have received your request and a "
        "ticket has been created with Ticket ID - #INC-2231.\nA support agent will be reviewing "
        "your request and will send you a personal response (usually within 24 hours).\n\n"
        "To view the status of the ticket or add comments, please visit\n"
        "https://fabrikam.freshservice.test/helpdesk/tickets/2231\n\nThank you for your "
        "patience.\n\nSincerely,\nIT Service Desk\n",
    ),
    "glpi": (
        "GLPI <glpi@helpdesk.univ.test>",
        "[GLPI #0004711] New ticket Salle B12 projecteur",
        "Auto-Submitted: auto-replied\n",
        "URL : https://helpdesk.univ.test/front/ticket.form.php?id=4711\n\nTicket: "
        "Description\n\nTitle : Salle B12 projecteur\nRequester : m.durand\nOpening date : "
        "2026-09-03 10:12\nStatus : New\nUrgency : Medium\n\nYour request has been registered "
        "under number 4711. Please quote this number in any further correspondence.\n",
    ),
    "spiceworks": (
        "Help Desk <helpdesk@tailspin.test>",
        "[Ticket #1187] Outlook keeps asking for password",
        "",
        "Your ticket has been submitted and will be reviewed by the IT team. Ticket #1187.\n\n"
        "You can reply to this email to add a comment to the ticket.\n\n"
        "##- Please type your reply above this line -##\n",
    ),
    "front": (
        "Wingtip Toys <hello@wingtiptoys.test>",
        "We got your message!",
        "Auto-Submitted: auto-replied\n",
        "Hi there,\n\nThanks for reaching out to Wingtip Toys! This is a quick note to let you "
        "know we received your email and one of us will get back to you within one business "
        "day.\n\nIn the meantime, many answers are in our help center: "
        "https://help.wingtiptoys.test\n\nThe Wingtip team\n",
    ),
    "gorgias": (
        "Lamna Shop <support@lamna-shop.test>",
        "Re: Where is my order?",
        "X-Autoreply: yes\n",
        "Hi,\n\nThank you for contacting Lamna Shop! We have received your request (#88213) "
        "and our team will reply within 48 hours.\n\nYou can track your order here: "
        "https://lamna-shop.test/track\n",
    ),
    "zoho-desk": (
        "Adatum Support <support@adatum.zohodesk.test>",
        "[##34019##] Request received: Cannot log in",
        "",
        "Dear Anna,\n\nThank you for contacting Adatum Support. Your request has been received "
        "and is being reviewed by our support staff.\n\nTo add additional comments, reply to "
        "this email.\n\nTicket ID: 34019\n\nAdatum Support\n",
    ),
    "sysaid": (
        "SysAid <sysaid@proseware.test>",
        "Service Record #5527 has been opened",
        "Precedence: auto_reply\n",
        'Hello,\n\nService Record #5527 was opened on your behalf: "Laptop battery swollen".\n'
        "You will be notified when its status changes.\n\nThis is an automatic notification, "
        "please do not reply.\n",
    ),
    "it-helpdesk": (
        "Assistenza Clienti <assistenza@negozio-esempio.test>",
        "Abbiamo ricevuto la tua richiesta [#IT-90412]",
        "Auto-Submitted: auto-replied\n",
        "Gentile cliente,\n\nabbiamo ricevuto la tua richiesta e le abbiamo assegnato il numero "
        "di ticket #IT-90412. Un operatore ti risponderà al più presto.\n\nQuesto è un messaggio "
        "automatico, ti preghiamo di non rispondere.\n\nAssistenza Clienti\n",
    ),
    "nl-helpdesk": (
        "Klantenservice <klantenservice@winkel-voorbeeld.test>",
        "Uw vraag is ontvangen (ticketnummer 220815)",
        "",
        "Beste klant,\n\nBedankt voor uw bericht. Wij hebben uw vraag ontvangen onder "
        "ticketnummer 220815 en nemen binnen twee werkdagen contact met u op.\n\nDit is een "
        "automatisch gegenereerd bericht.\n\nMet vriendelijke groet,\nKlantenservice\n",
    ),
}

HUMANS = {
    "fwd-bounce-gmail": (
        "Maria Lopez <maria.lopez@mailbox.test>",
        "Fwd: Delivery Status Notification (Failure)",
        "Hi, I tried to write to billing@ but got this back. Can you check the address on your "
        "invoice page?\n\nMaria\n\n---------- Forwarded message ---------\nFrom: Mail Delivery "
        "Subsystem <mailer-daemon@googlemail.com>\nDate: Tue, 1 Sep 2026 at 10:02\nSubject: "
        "Delivery Status Notification (Failure)\nTo: <maria.lopez@mailbox.test>\n\n"
        "Address not found\nYour message wasn't delivered to billing@acme-shop.test because the "
        "address couldn't be found, or is unable to receive mail.\n\nThe response was:\n"
        "550 5.1.1 The email account that you tried to reach does not exist.\n",
    ),
    "undelivered-subject": (
        "Peter Hall <peter.hall@example-home.test>",
        "Undelivered parcel - order 55120",
        "Hello,\n\nthe courier says the parcel for order 55120 was undelivered and went back to "
        "your warehouse. Could you send it again to the same address?\n\nThanks,\nPeter\n",
    ),
    "quoted-ooo": (
        "Sven Berg <sven.berg@foretag.test>",
        "Re: Automatic reply: Invoice 2026-118",
        "Hi,\n\nI got an out-of-office from your colleague - who else can help me with invoice "
        "2026-118? The amount is wrong.\n\nSven\n\n> Automatic reply: Invoice 2026-118\n> I am "
        "out of the office until 14 September with no access to email.\n",
    ),
    "auto-reply-word": (
        "Julia Novak <julia.novak@company.test>",
        "Auto-reply rules in your app are not working",
        "Hi team,\n\nthe auto-reply rules I set up in your app last week never fire. I "
        'created a rule "out of office" with the text "I am away" but customers get '
        "nothing. Could you look at account 8812?\n\nBest,\nJulia\n",
    ),
    "reply-to-ticket-ack": (
        "Laura Chen <laura.chen@clientco.test>",
        "Re: [#ABC-123-45678]: Refund for order 7781",
        "Hi,\n\nthanks - one more detail: the order was paid with PayPal, not card.\n\nLaura\n\n"
        "On Wed, 2 Sep 2026 at 09:10, Northwind Support <support@northwind.test> wrote:\n> "
        "Thank you for contacting Northwind Support. This is an automated message to let you "
        "know that we have received your ticket.\n",
    ),
    "postmaster-person": (
        "Postmaster <postmaster@small-firm.test>",
        "Your newsletter is going to our spam folder",
        "Hello,\n\nI run the mail server for our office. Your newsletter keeps landing in spam "
        "because your SPF record does not include your sending service. Could you fix that? "
        "Happy to send headers.\n\nRegards,\nKlaus (IT, Small Firm)\n",
    ),
    "mailer-daemon-question": (
        "Ana Souza <ana.souza@exemplo.test>",
        "Mail delivery failed when I reply to you",
        'Olá,\n\nwhenever I reply to your emails I get a "Mail delivery failed: returning message '
        'to sender" from MAILER-DAEMON. My address is ana.souza@exemplo.test. Is my domain '
        "blocked?\n\nObrigada,\nAna\n",
    ),
    "abuse-complaint-person": (
        "Robert King <robert.king@isp-customer.test>",
        "Abuse report: you keep emailing me",
        "I unsubscribed three times and still receive your promotions. This is my formal "
        "abuse report: remove robert.king@isp-customer.test from every list now.\n\nRobert\n",
    ),
    "delivery-status-de": (
        "Heike Wolf <heike.wolf@beispiel.test>",
        "Unzustellbar: Paket 88301?",
        "Guten Tag,\n\nlaut Sendungsverfolgung ist mein Paket 88301 unzustellbar. Ich war aber "
        "den ganzen Tag zu Hause. Bitte veranlassen Sie eine neue Zustellung.\n\n"
        "Mit freundlichen Grüßen\nHeike Wolf\n",
    ),
    "fwd-ticket-ack": (
        "Omar Haddad <omar.haddad@partner.test>",
        "Fwd: Your ticket #CT00412 has been created",
        "Hi, forwarding this - I opened the ticket on the wrong portal. Can you take it over "
        "here?\n\nOmar\n\nBegin forwarded message:\n\n> From: Contoso Help Desk "
        "<help@contoso-help.test>\n> Subject: Your ticket #CT00412 has been created\n>\n> "
        "Thank you for writing to us. Your ticket has been created with the ticket number "
        "#CT00412.\n",
    ),
    "returned-mail-fr": (
        "Claire Martin <claire.martin@exemple.test>",
        "Message non remis",
        "Bonjour,\n\nmon message à votre service comptable m'est revenu avec « message non remis "
        "». Pouvez-vous me donner la bonne adresse ?\n\nCordialement,\nClaire\n",
    ),
    "confirm-request": (
        "Dmitri Ivanov <d.ivanov@client.test>",
        "Please confirm you received my request",
        "Hello,\n\nplease confirm you received my request from Monday about the broken hinge "
        "(order 40022). I have not heard back yet.\n\nDmitri\n",
    ),
}


def mail(sender: str, subject: str, extra: str, body: str, n: int, domain: str) -> str:
    return (
        f"Return-Path: <{sender.split('<')[1].rstrip('>')}>\nFrom: {sender}\n"
        f"To: support@acme-support.test\nSubject: {subject}\n"
        f"Date: Thu, 3 Sep 2026 10:{n:02d}:00 +0000\nMessage-ID: <own-{n}@{domain}>\n"
        f"MIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\n"
        f"Content-Transfer-Encoding: 8bit\n{extra}\n{body}"
    )


def main() -> None:
    for n, (name, (sender, subject, extra, body)) in enumerate(sorted(ACKS.items())):
        path = HERE / "machine" / "auto_acknowledgement" / f"own-{name}.eml"
        path.write_text(mail(sender, subject, extra, body, n, "desk.test"), encoding="utf-8")
    for n, (name, (sender, subject, body)) in enumerate(sorted(HUMANS.items()), start=30):
        path = HERE / "human" / f"own-{name}.eml"
        path.write_text(mail(sender, subject, "", body, n, "mail.test"), encoding="utf-8")


if __name__ == "__main__":
    main()
