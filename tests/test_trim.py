"""The customer's own words (gateway/mail/quotes.py): the labelled replies as floors, the
German Outlook case, and the shapes the trimmer must keep or cut. Speed is in bench/trimming.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.mail.parse import parse_mail
from gateway.mail.quotes import reply_text
from gateway.pipeline.assistant.signals import analyse, sentiment_reliable

from helpers.labelled import labelled_replies, trimming_rates

CASE = Path(__file__).resolve().parent / "data" / "cases" / "trimming-german-outlook-quote.eml"
GERMAN_NEW_TEXT = (
    "Hallo,\n\ndanke, die Rechnung ist angekommen. Eine Frage noch:\n\n"
    "- Gilt der Rabatt auch für die zweite Lieferung?\n- Kann ich per Lastschrift zahlen?\n\n"
    "Viele Grüße\nKai"
)


def test_labelled_replies_floor() -> None:
    replies = labelled_replies()
    assert len(replies) >= 150
    exact, starts, wrong = trimming_rates(reply_text, replies)
    assert exact >= 0.95, wrong
    assert starts >= 0.97, wrong


def test_german_outlook_case_keeps_the_list_and_cuts_the_header_block() -> None:
    mail = parse_mail(CASE.read_bytes())
    assert mail.new_text == GERMAN_NEW_TEXT


def test_german_outlook_case_is_not_escalated_for_sentiment() -> None:
    from gateway.config import AssistantSettings
    from gateway.pipeline.assistant.decision import ConversationView, MessageView
    from gateway.pipeline.assistant.rules import escalation_reasons

    mail = parse_mail(CASE.read_bytes())
    sig = analyse(mail.new_text)
    assert sig.language == "de" and not sentiment_reliable(sig.language)
    message = MessageView(
        id=1,
        direction="in",
        subject=mail.subject,
        text=mail.new_text,
        sentiment=sig.sentiment,
        sentiment_label=sig.sentiment_label,
        language=sig.language,
    )
    conv = ConversationView(
        id=1, subject=mail.subject, status="open", customer_email="kai.berger@kunde.test",
        messages=(message,),
    )  # fmt: skip
    settings = AssistantSettings(negative_sentiment=1.0)  # any score would escalate
    assert not any("sentiment" in r for r in escalation_reasons(conv, settings))
    english = MessageView(
        id=2, direction="in", subject="x", text="This is terrible.", sentiment=-0.5,
        sentiment_label="negative", language="en",
    )  # fmt: skip
    conv_en = ConversationView(
        id=2, subject="x", status="open", customer_email="a@b.test", messages=(english,)
    )
    assert any("sentiment" in r for r in escalation_reasons(conv_en, settings))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Thanks!\n\nSent from my iPhone\n\nOn Mon, Bob <b@x.test> wrote:\n> hi", "Thanks!"),
        ("Merci\n\nLe lun. 2 sept. 2024 à 16:01, Bob <b@x.test> a écrit :\n\nold", "Merci"),
        ("ok\n\n-----Original Message-----\nFrom: Bob\nSent: Monday", "ok"),
        ("ok\n\nVon: Bob <b@x.test>\nGesendet: Montag\nAn: Kai\nBetreff: x\n\nalt", "ok"),
        ("はい\n\n2024年9月2日(月) 16:01 Bob <b@x.test>:\n> 古い", "はい"),
        ("好的\n\n在 2024年9月2日 16:01，Bob <b@x.test> 写道：\n> 旧", "好的"),
        ("On Mon, Bob wrote:\n> q1\n\na1\n\n> q2\n\na2\n", "a1\n\na2"),
        ("1. one\n2. two\n\n\nthree", "1. one\n2. two\n\n\nthree"),
        ("fwd below\n\n---------- Forwarded message ---------\nFrom: x", "fwd below"),
        # a customer's own words that look like a header's, with no date or address: kept
        ("Hi,\n\nOn Monday I wrote:\n\n- one\n- two", "Hi,\n\nOn Monday I wrote:\n\n- one\n- two"),
        ("Am Montag schrieb ich Ihnen:\n\nbitte", "Am Montag schrieb ich Ihnen:\n\nbitte"),
        ("Change it\nFrom: old@x.test\nTo: new@x.test\n\nThanks", None),
        # kinds the held-out talon replies showed
        ("ok\n\n-----Reply Message-----\n\nold", "ok"),  # a dashed separator's other words
        ("ok\n\n-----Antwort Nachricht-----\n\nold", "ok"),
        ("ok\n\n------On 12/29/1987 17:32 PM, Bob wrote-----\n\nold", "ok"),
        ("ok\n\nSent from Samsung Mobile Bob <b@x.test> wrote:\n\n> old", "ok"),
        ("ok\n2011/4/7 Bob Smith <b@x.test>\n\n> old", "ok"),  # date, name, address: no verb
        ("ok\n\n2014-10-17 11:28 GMT+03:00 Bob <\nb@x.test>:\n\n> old", "ok"),
        (
            "ok\n\nOp 17-feb.-2015, om 13:18 heeft Bob <b@x.test> het volgende geschreven:\n\nold",
            "ok",
        ),
        ("ok\n\nDate: Wed, 16 May 2012 00:15:02 -0600\nTo: b@x.test", "ok"),
        ("ok On Wed, Apr 4, 2012 at 3:59 PM, b@x.test wrote:\n> old", "ok"),  # on one line
        ("a\nb - c--- On Wed, Apr 4, 2012 at 3:59 PM, b@x.test wrote:\n> old", "a\nb - c"),
        ("ok\n\nOn Mon, Bob wrote:\n\n> see (http://x.test/a\n_b=1)\n>\n", "ok"),  # wrapped link
        ("ok\n\nOn Mon, Bob wrote:\n\n> a\n (http://x.test/a) >\n> b\n", "ok"),
        ("Visit us\n>>> http://x.test <<<\nthanks", None),  # an arrow banner is not a quote
        ("ok\n\n> On Mon, 4 May 2026, Bob Smith <\n> b@x.test> wrote:\n> old", "ok"),
        # what stays the customer's: a date in their sentence, "On" without a quote below
        ("We met On Monday, 4 May and I wrote:\n\n- one\n- two", None),
        ("Date: Monday\nTo: all staff\n\nparty at 5", None),
    ],
)
def test_shapes(text: str, expected: str | None) -> None:
    assert reply_text(text) == (text if expected is None else expected)


def test_a_forward_without_own_words_keeps_the_whole_text() -> None:
    text = "---------- Forwarded message ---------\nFrom: Bob <b@x.test>\n\nthe content"
    assert reply_text(text) == text
    assert reply_text("") == "" and reply_text("  \n") == ""


def test_the_html_structure_marks_the_quote_where_the_words_are_unknown() -> None:
    # a Greek quote header (not among the text rules' languages) in both parts
    header = "Στις Δευ 15 Σεπ 2026 ο χρήστης Destek <support@example.com> έγραψε:"
    text = f"Merhaba,\n\nfatura hâlâ yanlış.\n\n{header}\n\nEski mesaj.\n"
    html = (
        '<div dir="ltr">Merhaba,<br><br>fatura hâlâ yanlış.</div><br>'
        f'<div class="gmail_quote"><div class="gmail_attr">{header}</div>'
        "<blockquote>Eski mesaj.</blockquote></div>"
    )
    assert reply_text(text) == text.strip()  # the text rules alone find no history
    assert reply_text(text, html) == "Merhaba,\n\nfatura hâlâ yanlış."
    outlook = '<p>Tamam.</p><div id="divRplyFwdMsg"><b>Kimden:</b> Destek</div><p>eski</p>'
    assert reply_text("Tamam.\n\nKimden: Destek\n\neski", outlook) == "Tamam."


def test_sentiment_counts_only_for_a_confidently_english_text() -> None:
    from gateway.pipeline.assistant.signals import language

    assert language("This is terrible, I want my money back.") == "en"
    assert language("refund now") == ""  # py3langid: en at 0.21, a guess
    assert language("Wo ist mein Paket? Die Lieferung ist nicht angekommen.") == "de"
    assert sentiment_reliable("en")
    assert not sentiment_reliable("de") and not sentiment_reliable("")


def test_a_huge_quoted_line_is_trimmed_in_linear_time() -> None:
    # github/email_reply_parser's email_long_quote: a quoted line of 700 KB of ">" only. A
    # pattern that backtracked on it took 30 s per mail and timed out intake; the trimmer must
    # stay linear (no timing asserted: a quadratic pass would not end within pytest's timeout).
    text = "Hi\n\n" + ">" * 300_000 + "\n" + "> x <" * 50_000 + "\n"
    assert reply_text(text) == "Hi"
