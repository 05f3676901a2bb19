"""The held-out replies (tests/data/labelled/holdout/replies, README there) as floors: talon's
own text_quotations_test cases with talon's expected replies, which the trimmer was not tuned
on. Goal of issue 14 item 8: the new text is what the customer wrote in >= 95 % of replies."""

from __future__ import annotations

from gateway.mail.quotes import reply_text

from helpers.labelled import LABELLED, labelled_replies, trimming_rates

HOLDOUT_REPLIES = LABELLED / "holdout" / "replies"


def test_holdout_replies_floor() -> None:
    replies = labelled_replies(HOLDOUT_REPLIES)
    assert len(replies) >= 40
    exact, starts, wrong = trimming_rates(reply_text, replies)
    assert exact >= 0.95, wrong
    assert starts >= 0.97, wrong
