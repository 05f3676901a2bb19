"""Whom a mail belongs to (pipeline.conversations.requester), as pure decisions over parsed
mail, and the [senders] settings that feed it and the outside-sender rule.

The end-to-end cases (SMTP, HubSpot, replies) are in tests/test_hostile_senders.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.config import ConfigError, load_settings
from gateway.mail.parse import parse_mail
from gateway.pipeline.conversations import requester

from conftest import make_mail, write_config

JANE = "Jane Roe <jane.roe@customer.test>"


def _mail(sender: str, extra: str = "", envelope: str = "") -> object:
    raw = make_mail(sender=sender, extra_headers=extra)
    return parse_mail(raw, envelope_from=envelope, envelope_rcpts=("support@example.com",))


@pytest.mark.parametrize(
    ("sender", "headers", "listed", "customer", "via"),
    [
        # the usual signs of a form or noreply mailer, with the customer in Reply-To
        ("Shop <www-data@shop.example>", f"Reply-To: {JANE}", (), "jane.roe@customer.test", True),
        ("noreply@shop.example", f"Reply-To: {JANE}", (), "jane.roe@customer.test", True),
        ("do-not-reply@forms.test", f"Reply-To: {JANE}", (), "jane.roe@customer.test", True),
        (
            "Shop <shop@shop.example>",
            f"Reply-To: {JANE}\r\nX-Mailer: WordPress/6.4; Contact Form 7",
            (),
            "jane.roe@customer.test",
            True,
        ),
        (
            "shop@shop.example",
            f"Reply-To: {JANE}\r\nX-PHP-Originating-Script: 33:contact.php",
            (),
            "jane.roe@customer.test",
            True,
        ),
        # listed in [senders] form_senders, by address or by domain
        (
            "forms@acme.test",
            f"Reply-To: {JANE}",
            ("forms@acme.test",),
            "jane.roe@customer.test",
            True,
        ),
        ("hello@acme.test", f"Reply-To: {JANE}", ("@acme.test",), "jane.roe@customer.test", True),
        # a person with a Reply-To of their own stays the customer
        (
            "alice@customer.test",
            "Reply-To: alice.home@customer.test",
            (),
            "alice@customer.test",
            False,
        ),
        # a Reply-To that is not one other valid person: the sender stays
        (
            "www-data@shop.example",
            f"Reply-To: {JANE}, bob@customer.test",
            (),
            "www-data@shop.example",
            False,
        ),
        (
            "www-data@shop.example",
            "Reply-To: noreply@shop.example",
            (),
            "www-data@shop.example",
            False,
        ),
        (
            "www-data@shop.example",
            "Reply-To: support@example.com",
            (),
            "www-data@shop.example",
            False,
        ),
        (
            "www-data@shop.example",
            "Reply-To: WWW-Data@Shop.example",
            (),
            "www-data@shop.example",
            False,
        ),
        ("www-data@shop.example", "Reply-To: not an address", (), "www-data@shop.example", False),
    ],
)
def test_requester(sender, headers, listed, customer, via):
    who = requester(_mail(sender, headers), form_senders=listed, support=("support@example.com",))
    assert who.address is not None and who.address.email.lower() == customer
    assert bool(who.via) == via
    assert not who.problem
    if via:
        assert who.address.name in ("Jane Roe", "")
        assert "requester_reply_to" in who.annotations


def test_a_sender_that_does_not_validate_takes_the_best_address_left():
    local = "Webshop <webshop@shop-server.internal.local>"
    with_reply_to = requester(_mail(local, f"Reply-To: {JANE}"))
    assert with_reply_to.address is not None
    assert with_reply_to.address.email == "jane.roe@customer.test"
    assert "does not validate" in with_reply_to.problem and "taken instead" in with_reply_to.problem
    assert "sender_unvalidated" in with_reply_to.annotations

    from_envelope = requester(_mail(local, envelope="bounce@shop.example"))
    assert from_envelope.address is not None
    assert from_envelope.address.email == "bounce@shop.example"

    nothing = requester(_mail("user@redacted", envelope="webshop@shop-server.internal.local"))
    assert nothing.address is None
    assert nothing.shown == "user@redacted"
    assert "without a contact" in nothing.problem


def test_senders_settings_are_checked(tmp_path: Path):
    good = write_config(
        tmp_path,
        '\n[senders]\ntrusted_domains = ["Example.COM"]\n'
        'form_senders = ["Forms@Shop.example", "@typeform.test"]\n',
    )
    s = load_settings(good).senders
    assert s.trusted_domains == ["example.com"]
    assert s.form_senders == ["forms@shop.example", "@typeform.test"]

    for key, value, says in (
        ("trusted_domains", '["bob@example.com"]', "senders.trusted_domains"),
        ("form_senders", '["not an address"]', "senders.form_senders"),
        ("form_senders", '["@"]', "senders.form_senders"),
        ("form_senders", '"forms@shop.example"', "senders.form_senders"),
    ):
        bad = write_config(tmp_path, f"\n[senders]\n{key} = {value}\n")
        with pytest.raises(ConfigError) as err:
            load_settings(bad)
        assert says in str(err.value), str(err.value)


def test_an_unvalidated_sender_is_shown_as_a_person_reads_it():
    encoded = "=?utf-8?q?W=C3=A9bshop?= <webshop@shop-server.internal.local>"
    assert requester(_mail(encoded)).shown == "Wébshop <webshop@shop-server.internal.local>"
    assert requester(_mail("Shop <<broken@")).shown == "Shop <<broken@"
