"""Writes holdout/replies/talon-tq-*.eml and their .expected.txt (deterministic).

Source: github.com/mailgun/talon tests/text_quotations_test.py (Apache-2.0), read at commit
03d6b00db86ba0a3283d1f35a206c6dd435edd3b. Each case is a message body and the reply talon's own
test expects from `quotations.extract_from_plain`; the body is wrapped here in minimal headers.
Left out: `test_too_many_lines` (depends on a patched talon limit), `test_dont_parse_quotations_
for_forwarded_messages` (talon keeps a forward with a note above it whole; this project defines
the note as the new text: see tests/test_trim.py), and the tests of talon's internals
(mark_message_lines, preprocess, split_emails). The byte escapes of
`test_pattern_date_email_with_unicode` are written as the UTF-8 text they encode.
"""

from __future__ import annotations

from pathlib import Path

OUT = Path(__file__).resolve().parent / "replies"

ROMAN = "\n\n>\n> Test\n>\n> Roman"
LOREM = (
    "Veniam laborum mlkshk kale chips authentic. Normcore mumblecore laboris, fanny pack "
    "readymade eu blog chia pop-up freegan enim master cleanse.\n"
)
FROM_BLOCK = "Blah-blah-blah\n"
CASES: dict[str, tuple[str, str]] = {
    "on-date-somebody-wrote": (
        "Test reply\n\nOn 11-Apr-2011, at 6:54 PM, Roman Tkachenko <romant@example.com> wrote:"
        + ROMAN,
        "Test reply",
    ),
    "sent-from-samsung-wrote": (
        "Test reply\n\nSent from Samsung MobileName <address@example.com> wrote:" + ROMAN,
        "Test reply",
    ),
    "dutch-op-schreef": (
        "Lorem\n\nOp 13-02-2014 3:18 schreef Julius Caesar <pantheon@rome.com>:\n    \n" + LOREM,
        "Lorem",
    ),
    "date-with-slashes": (
        "Test reply\n\nOn 04/19/2011 07:10 AM, Roman Tkachenko wrote:\n\n>\n> Test.\n>\n> Roman",
        "Test reply",
    ),
    "date-time-email-splitter": (
        "Test reply\n\n2014-10-17 11:28 GMT+03:00 Postmaster <\n"
        "postmaster@sandboxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx.mailgun.org>:\n\n> First from site\n>\n",
        "Test reply",
    ),
    "space-in-front": (
        'Thanks Thanmai\n On Mar 8, 2012 9:59 AM, "Example.com" <\n'
        "r+7f1b094ceb90e18cca93d53d3703feae@example.com> wrote:\n\n\n>**\n>  Blah-blah-blah",
        "Thanks Thanmai",
    ),
    "on-date-somebody-sent": (
        "Test reply\n\nOn 11-Apr-2011, at 6:54 PM, Roman Tkachenko <romant@example.com> sent:"
        + ROMAN,
        "Test reply",
    ),
    "line-starts-with-on": (
        "Blah-blah-blah\nOn blah-blah-blah",
        "Blah-blah-blah\nOn blah-blah-blah",
    ),
    "splitter-shares-line": (
        "reply On Wed, Apr 4, 2012 at 3:59 PM, bob@example.com wrote:\n> Hi",
        "reply",
    ),
    "splitter-shares-line-dashes": (
        "reply--- On Wed, Apr 4, 2012 at 3:59 PM, me@domain.com wrote:\n> Hi",
        "reply",
    ),
    "splitter-shares-line-hyphen-text": (
        "reply\nbla-bla - bla--- On Wed, Apr 4, 2012 at 3:59 PM, me@domain.com wrote:\n> Hi",
        "reply\nbla-bla - bla",
    ),
    "original-message-en": ("Test reply\n\n-----Original Message-----\n\nTest", "Test reply"),
    "reply-message-en": ("Test reply\n\n-----Reply Message-----\n\nTest", "Test reply"),
    "original-message-de": (
        "Test reply\n\n-----Ursprüngliche Nachricht-----\n\nTest",
        "Test reply",
    ),
    "antwort-nachricht-de": ("Test reply\n\n-----Antwort Nachricht-----\n\nTest", "Test reply"),
    "original-message-da": (
        "Test reply\n\n-----Oprindelig meddelelse-----\n\nTest",
        "Test reply",
    ),
    "reply-after-quotations": (
        "On 04/19/2011 07:10 AM, Roman Tkachenko wrote:\n\n>\n> Test\nTest reply",
        "Test reply",
    ),
    "reply-wraps-quotations": (
        "Test reply\n\nOn 04/19/2011 07:10 AM, Roman Tkachenko wrote:\n\n>\n> Test\n\n"
        "Regards, Roman",
        "Test reply\n\nRegards, Roman",
    ),
    "reply-wraps-nested-quotations": (
        "Test reply\nOn 04/19/2011 07:10 AM, Roman Tkachenko wrote:\n\n>Test test\n"
        ">On 04/19/2011 07:10 AM, Roman Tkachenko wrote:\n>\n>>\n>> Test.\n>>\n>> Roman\n\n"
        "Regards, Roman",
        "Test reply\nRegards, Roman",
    ),
    "separator-takes-2-lines": (
        "Test reply\n\nOn Fri, May 6, 2011 at 6:03 PM, Roman Tkachenko from Hacker News\n"
        "<roman@definebox.com> wrote:\n\n> Test.\n>\n> Roman\n\nRegards, Roman",
        "Test reply\n\nRegards, Roman",
    ),
    "separator-takes-3-lines": (
        "Test reply\n\nOn Nov 30, 2011, at 12:47 PM, Somebody <\n"
        "416ffd3258d4d2fa4c85cfa4c44e1721d66e3e8f4@somebody.domain.com>\nwrote:\n\n"
        "Test message\n",
        "Test reply",
    ),
    "short-quotation": (
        "Hi\n\nOn 04/19/2011 07:10 AM, Roman Tkachenko wrote:\n\n> Hello",
        "Hi",
    ),
    "with-indent": (
        "YOLO salvia cillum kogi typewriter mumblecore cardigan skateboard Austin.\n\n"
        "------On 12/29/1987 17:32 PM, Julius Caesar wrote-----\n\nBrunch mumblecore pug Marfa "
        "tofu, irure taxidermy hoodie readymade pariatur. \n    ",
        "YOLO salvia cillum kogi typewriter mumblecore cardigan skateboard Austin.",
    ),
    "short-quotation-with-newline": (
        'Btw blah blah...\n\nOn Tue, Jan 27, 2015 at 12:42 PM -0800, "Company" '
        "<christine.XXX@XXX.com> wrote:\n\nHi Mark,\nBlah blah? \nThanks,Christine \n\n"
        "On Jan 27, 2015, at 11:55 AM, Mark XXX <mark@XXX.com> wrote:\n\nLorem ipsum?\nMark\n\n"
        "Sent from Acompli",
        "Btw blah blah...",
    ),
    "date-email-with-unicode": (
        "Replying ok\n2011/4/7 Nathan иova <support@example.com>\n\n>  Cool beans, scro",
        "Replying ok",
    ),
    "english-from-block": (
        "Allo! Follow up MIME!\n\nFrom: somebody@example.com\nSent: March-19-11 5:42 PM\n"
        "To: Somebody\nSubject: The manager has commented on your Loop\n\n" + FROM_BLOCK,
        "Allo! Follow up MIME!",
    ),
    "german-from-block": (
        "Allo! Follow up MIME!\n\nVon: somebody@example.com\nGesendet: Dienstag, 25. November "
        "2014 14:59\nAn: Somebody\nBetreff: The manager has commented on your Loop\n\n"
        + FROM_BLOCK,
        "Allo! Follow up MIME!",
    ),
    "french-multiline-from-block": (
        "Lorem ipsum\n\nDe : Brendan xxx [mailto:brendan.xxx@xxx.com]\nEnvoyé : vendredi 23 "
        "janvier 2015 16:39\nÀ : Camille XXX\nObjet : Follow Up\n\n" + FROM_BLOCK,
        "Lorem ipsum",
    ),
    "french-from-line": (
        "Lorem ipsum\n\nLe 23 janv. 2015 à 22:03, Brendan xxx <brendan.xxx@xxx.com<mailto:"
        "brendan.xxx@xxx.com>> a écrit:\n\nBonjour!",
        "Lorem ipsum",
    ),
    "polish-from-line": (
        "Lorem ipsum\n\nW dniu 28 stycznia 2015 01:53 użytkownik Zoe xxx <zoe.xxx@xxx.com>\n"
        "napisał:\n\nBlah!\n",
        "Lorem ipsum",
    ),
    "danish-from-block": (
        "Allo! Follow up MIME!\n\nFra: somebody@example.com\nSendt: 19. march 2011 12:10\n"
        "Til: Somebody\nEmne: The manager has commented on your Loop\n\n" + FROM_BLOCK,
        "Allo! Follow up MIME!",
    ),
    "swedish-from-block": (
        "Allo! Follow up MIME!\nFrån: Anno Sportel [mailto:anno.spoel@hsbcssad.com]\n"
        "Skickat: den 26 augusti 2015 14:45\nTill: Isacson Leiff\nÄmne: RE: Week 36\n\n"
        + FROM_BLOCK,
        "Allo! Follow up MIME!",
    ),
    "swedish-from-line": (
        "Lorem\nDen 14 september, 2015 02:23:18, Valentino Rudy (valentino@rudy.be) skrev:\n\n"
        + LOREM,
        "Lorem",
    ),
    "norwegian-from-line": (
        "Lorem\nPå 14 september 2015 på 02:23:18, Valentino Rudy (valentino@rudy.be) skrev:\n\n"
        + LOREM,
        "Lorem",
    ),
    "dutch-from-line": (
        "Gluten-free culpa lo-fi et nesciunt nostrud. \n\nOp 17-feb.-2015, om 13:18 heeft "
        "Julius Caesar <pantheon@rome.com> het volgende geschreven:\n    \nSmall batch beard "
        "laboris tempor, non listicle hella Tumblr heirloom. \n",
        "Gluten-free culpa lo-fi et nesciunt nostrud.",
    ),
    "quotation-marker-false-positive": (
        "Visit us now for assistance...\n>>> >>>  http://www.domain.com <<<\n"
        "Visit our site by clicking the link above",
        "Visit us now for assistance...\n>>> >>>  http://www.domain.com <<<\n"
        "Visit our site by clicking the link above",
    ),
    "link-closed-on-new-line": (
        "8.45am-1pm\n\nFrom: somebody@example.com\n\n<http://email.example.com/c/dHJhY2tpbmdf"
        "Y29kZT1mMDdjYzBmNzM1ZjYzMGIxNT\n>  <bob@example.com <mailto:bob@example.com> >\n\n"
        "Requester: ",
        "8.45am-1pm",
    ),
    "link-breaks-markers-same-line": (
        "Blah\n\nOn Thursday, October 25, 2012 at 3:03 PM, life is short. on Bob wrote:\n\n>\n"
        "> Post a response by replying to this email\n>\n (http://example.com/c/YzOTYzMmE) >\n"
        "> life is short. (http://example.com/c/YzMmE)\n>\n",
        "Blah",
    ),
    "link-breaks-markers-two-lines": (
        "Blah\n\nOn Monday, 24 September, 2012 at 3:46 PM, bob wrote:\n\n"
        "> [Ticket #50] test from bob\n>\n> View ticket (http://example.com/action\n"
        "_nonce=3dd518)\n>\n",
        "Blah",
    ),
    "from-block-starts-with-date": (
        "Blah\n\nDate: Wed, 16 May 2012 00:15:02 -0600\nTo: klizhentas@example.com",
        "Blah",
    ),
    "bold-from-block": (
        "Hi\n\n  *From:* bob@example.com [mailto:\n  bob@example.com]\n  *Sent:* Wednesday, June "
        "27, 2012 3:05 PM\n  *To:* travis@example.com\n  *Subject:* Hello\n\n",
        "Hi",
    ),
    "weird-date-format": (
        "Blah\nDate: Fri=2C 28 Sep 2012 10:55:48 +0000\nFrom: tickets@example.com\n"
        "To: bob@example.com\nSubject: [Ticket #8] Test\n\n",
        "Blah",
    ),
    "forwarded-message-in-quotations": (
        "Blah\n\n-----Original Message-----\n\nFYI\n\n---------- Forwarded message ----------\n"
        "From: bob@example.com\nDate: Tue, Sep 4, 2012 at 1:35 PM\nSubject: Two\nline subject\n"
        "To: rob@example.com\n\n",
        "Blah",
    ),
    "two-links": ("<http://link1> <http://link2>", "<http://link1> <http://link2>"),
}


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for n, (name, (body, expected)) in enumerate(sorted(CASES.items())):
        head = (
            "From: Customer <customer@example.net>\nTo: support@acme-support.test\n"
            f"Subject: Re: case {n}\nDate: Fri, 4 Sep 2026 09:{n:02d}:00 +0000\n"
            f"Message-ID: <talon-tq-{n}@example.net>\nMIME-Version: 1.0\n"
            "Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\n"
        )
        (OUT / f"talon-tq-{name}.eml").write_text(head + body + "\n", encoding="utf-8")
        (OUT / f"talon-tq-{name}.expected.txt").write_text(expected + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
