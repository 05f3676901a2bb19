"""The held-out machine/human set (tests/data/labelled/holdout, README there) as floors.

The classifier was tuned on tests/data/labelled; these mails were gathered afterwards from
sources it did not use. Goals of issue 14 item 7: >= 99.5 % of bounces recognised, no human
mail put in a machine class.
"""

from __future__ import annotations

import pytest

from gateway.models import ABUSE_REPORT, BOUNCE

from helpers.labelled import LABELLED, run

HOLDOUT = LABELLED / "holdout"


@pytest.fixture(scope="module")
def holdout():
    return run(HOLDOUT)


def test_holdout_is_large_enough(holdout) -> None:
    support, _precision, _recall = holdout.rates(BOUNCE)
    humans = sum(n for (e, _), n in holdout.confusion.items() if e == "human")
    assert support >= 60 and humans >= 60, (support, humans)


def test_holdout_bounces_recognised(holdout) -> None:
    _support, _precision, recall = holdout.rates(BOUNCE)
    assert recall >= 0.995, holdout.wrong


def test_holdout_no_human_mail_lost(holdout) -> None:
    assert holdout.lost_humans() == 0, holdout.wrong


def test_holdout_abuse_reports_are_their_own_class(holdout) -> None:
    support, precision, recall = holdout.rates(ABUSE_REPORT)
    assert support >= 3 and precision == 1.0 and recall == 1.0, holdout.wrong
