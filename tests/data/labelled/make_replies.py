"""Write the labelled replies (`replies/own-*.eml` + `.expected.txt`) beside this script.

    .venv/bin/python tests/data/labelled/make_replies.py

Each reply is built from what the customer writes (the expected new text, by construction) and
the history a mail client adds under it, in the styles of the clients and languages the trimmer
must know (issue 14 item 8): "On … wrote:" in en/de/fr/es/it/nl/pt/sv/ja/zh, Gmail's wrapped
header, Outlook header blocks (From:/Sent:/To:, Von:/Gesendet:/An:/Betreff:, …), "Original
Message" and "Forwarded message" separators, mobile signatures (removed), and interleaved `>`
replies with text between and below the quotes (kept). Deterministic; names invented.
"""

from __future__ import annotations

import itertools
from pathlib import Path

HERE = Path(__file__).resolve().parent / "replies"

NEW_TEXTS = [
    "Hi,\n\nthe invoice is still wrong: 120 EUR instead of 100 EUR.\n\nThanks,\nAnna",
    "Hallo,\n\ndanke, die Rechnung ist angekommen. Eine Frage noch:\n\n- Gilt der Rabatt auch "
    "für die zweite Lieferung?\n- Kann ich per Lastschrift zahlen?\n\nViele Grüße\nKai",
    "Bonjour,\n\nvoici les informations demandées :\n\n1. numéro de commande : 4711\n2. date : "
    "28 novembre\n\nCordialement,\nÉlodie",
    "Hola,\n\nsigo sin recibir el paquete.\n\n   Número de seguimiento: DHL-99887766\n\n"
    "Saludos,\nMaría",
    "Ciao,\n\ngrazie per la risposta.\nPosso pagare con bonifico?\n\nMarco",
    "Hoi,\n\nDe levering is nog niet aangekomen.\nKunnen jullie dit controleren?\n\n"
    "Groeten,\nSanne",
    "Olá,\n\nobrigado! Só mais uma pergunta: o frete está incluído?\n\nAbraços,\nJoão",
    "Hej,\n\ntack för svaret.\n* Fungerar rabattkoden även online?\n* Hur länge gäller den?\n\n"
    "Mvh\nErik",
    "お世話になっております。\n\n請求書を受け取りました。支払い方法について教えてください。\n\nよろしくお願いします。\n田中",
    "您好，\n\n发票已经收到。请问可以开具增值税专用发票吗？\n\n谢谢\n王伟",
    "Thanks, that worked!",
    "Please cancel order 4711.\n\n\nI do not need it any more.",
]
HEADERS = {
    "en": "On Sat, 28 Nov 2026 at 17:05, ACME Support <support@example.com> wrote:",
    "en-gmail-wrapped": "On Sat, Nov 28, 2026 at 5:05 PM ACME Support "
    "<support@example.com>\nwrote:",
    "de": "Am Sa., 28. Nov. 2026 um 17:05 Uhr schrieb ACME Support <support@example.com>:",
    "fr": "Le sam. 28 nov. 2026 à 17:05, ACME Support <support@example.com> a écrit :",
    "es": "El sáb, 28 nov 2026 a las 17:05, ACME Support (<support@example.com>) escribió:",
    "it": "Il giorno sab 28 nov 2026 alle ore 17:05 ACME Support <support@example.com> ha scritto:",
    "nl": "Op za 28 nov. 2026 om 17:05 schreef ACME Support <support@example.com>:",
    "pt": "Em sáb., 28 de nov. de 2026 às 17:05, ACME Support <support@example.com> escreveu:",
    "sv": "Den lör 28 nov. 2026 kl 17:05 skrev ACME Support <support@example.com>:",
    "ja": "2026年11月28日(土) 17:05 ACME Support <support@example.com>:",
    "zh": "在 2026年11月28日 17:05，ACME Support <support@example.com> 写道：",
    "outlook-en": "From: ACME Support <support@example.com>\nSent: Saturday, November 28, 2026 "
    "5:05 PM\nTo: Customer <customer@customer.test>\nSubject: RE: Your request",
    "outlook-underscores": "________________________________\nFrom: ACME Support "
    "<support@example.com>\nSent: Saturday, November 28, 2026 5:05 PM\nTo: Customer\n"
    "Subject: Your request",
    "outlook-de": "Von: ACME Support <support@example.com>\nGesendet: Samstag, 28. November 2026 "
    "17:05\nAn: Kunde <kunde@kunde.test>\nBetreff: Ihre Anfrage",
    "outlook-fr": "De : ACME Support <support@example.com>\nEnvoyé : samedi 28 novembre 2026 "
    "17:05\nÀ : Client <client@client.test>\nObjet : Votre demande",
    "outlook-es": "De: ACME Support <support@example.com>\nEnviado: sábado, 28 de noviembre de "
    "2026 17:05\nPara: Cliente\nAsunto: Su solicitud",
    "outlook-ja": "差出人: ACME Support <support@example.com>\n送信日時: 2026年11月28日 17:05\n"
    "宛先: 田中\n件名: お問い合わせ",
    "outlook-zh": "发件人: ACME Support <support@example.com>\n发送时间: 2026年11月28日 17:05\n"
    "收件人: 王伟\n主题: 您的请求",
    "original-en": "-----Original Message-----\nFrom: ACME Support [mailto:support@example.com]"
    "\nSent: Saturday, November 28, 2026 5:05 PM",
    "original-de": "-----Ursprüngliche Nachricht-----\nVon: ACME Support "
    "<support@example.com>\nGesendet: Samstag, 28. November 2026 17:05",
    "forwarded": "---------- Forwarded message ---------\nFrom: ACME Support "
    "<support@example.com>\nDate: Sat, Nov 28, 2026 at 5:05 PM",
}
HISTORY = "Hello,\n\nthank you for your message. Your refund was issued today.\n\nACME Support"
MOBILE = ["", "Sent from my iPhone", "Von meinem iPhone gesendet", "Envoyé de mon iPhone"]


def quoted(text: str) -> str:
    return "\n".join("> " + line if line else ">" for line in text.split("\n"))


def build() -> dict[str, tuple[str, str]]:
    """name -> (body, expected new text)."""
    out: dict[str, tuple[str, str]] = {}
    for n, (style, (k, new)) in enumerate(itertools.product(HEADERS, enumerate(NEW_TEXTS))):
        if (n * 7) % 12 >= 7:  # a spread of every style over the texts, not the full product
            continue
        mobile = MOBILE[n % len(MOBILE)]
        top = new + ("\n\n" + mobile if mobile else "")
        history = (
            HISTORY
            if style.startswith(("outlook", "original", "forwarded"))
            else (quoted(HISTORY) if n % 2 else HISTORY)
        )
        out[f"own-{style}-{k}"] = (f"{top}\n\n{HEADERS[style]}\n\n{history}\n", new)
    for k, new in enumerate(NEW_TEXTS[:8]):  # interleaved: text between and below the quotes
        answer = "Yes, the second one.\n\n- and a list item\n- kept"
        body = (
            f"{HEADERS['en']}\n> Which delivery do you mean?\n> The first or the second?\n\n"
            f"{answer}\n\n> Anything else?\n\n{new}\n"
        )
        out[f"own-interleaved-{k}"] = (body, f"{answer}\n\n{new}")
    return out


def main() -> None:
    HERE.mkdir(exist_ok=True)
    files = build()
    for i, (name, (body, expected)) in enumerate(sorted(files.items())):
        raw = (
            f"From: Customer <customer{i}@customer.test>\nTo: support@example.com\n"
            f"Subject: Re: Your request\nDate: Sun, 29 Nov 2026 10:20:00 +0100\n"
            f"Message-ID: <{name}@customer.test>\nIn-Reply-To: <reply-{i}@example.com>\n"
            "MIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\n"
            f"Content-Transfer-Encoding: 8bit\n\n{body}"
        )
        (HERE / f"{name}.eml").write_text(raw, encoding="utf-8")
        (HERE / f"{name}.expected.txt").write_text(expected + "\n", encoding="utf-8")
    print(f"{len(files)} replies written")


if __name__ == "__main__":
    main()
