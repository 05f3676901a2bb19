"""Mailboxes as they are named at Microsoft 365 and Google Workspace, read from a real Dovecot
with "/" as hierarchy separator (as Exchange and Gmail have): folder names with non-ASCII
characters in modified UTF-7 (RFC 3501 §5.1.3); and a mail skipped as too big is read once the
size limit is raised."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from test_oauth_imap import EditedDovecot

from gateway.cli import cli
from gateway.intake.imap_client import mutf7, quote
from gateway.service import Gateway

from conftest import make_mail, wait_processed
from dovecot import account, imap_config, imap_settings, rows, wait_count

# the names as a person sees them, and as RFC 3501 §5.1.3 spells them on the wire: written out
# by hand, so the test does not check the encoder against itself
FOLDERS = {
    "Entwürfe": "Entw&APw-rfe",
    "Éléments envoyés": "&AMk-l&AOk-ments envoy&AOk-s",
    "Anfragen/Kundenservice": "Anfragen/Kundenservice",
}
DONE = ("Erledigt/Geprüft", "Erledigt/Gepr&APw-ft")


class SlashDovecot(EditedDovecot):
    def edit(self, conf: str) -> str:
        return conf + "namespace inbox {\n  inbox = yes\n  separator = /\n}\n"


@pytest.fixture(scope="module")
def slash_dovecot():
    d = SlashDovecot()
    try:
        d.start()
        yield d
    finally:
        d.cleanup()


def test_modified_utf7_vectors():
    assert mutf7("~peter/mail/台北/日本語") == "~peter/mail/&U,BTFw-/&ZeVnLIqe-"  # RFC 3501
    assert mutf7("A&B") == "A&-B" and mutf7("INBOX") == "INBOX"
    assert all(mutf7(name) == wire for name, wire in FOLDERS.items())
    assert quote("Entwürfe", utf8=True) == '"Entwürfe"'  # after ENABLE UTF8=ACCEPT (RFC 6855)


async def test_non_ascii_folders_are_read_and_moved(slash_dovecot, tmp_path):
    d, user = slash_dovecot, "folders"
    for i, wire in enumerate(FOLDERS.values()):
        mail = make_mail(message_id=f"f{i}@customer.test", subject=f"Q {i}")
        d.append(user, mail, f'"{wire}"')  # imaplib sends the name as given
    a = account(d, user, folders=list(FOLDERS), after="move", move_to=DONE[0])
    gw = Gateway(imap_settings(tmp_path, [a]))
    await gw.start()
    try:
        await wait_processed(gw, 3)
        ids = await rows(gw, "SELECT message_id FROM raw_mails ORDER BY message_id")
        assert ids == [(f"f{i}@customer.test",) for i in range(3)]
        await wait_count(gw, "SELECT COUNT(*) FROM imap_state WHERE state = 'idle'", 3)
    finally:
        await gw.stop(drain_seconds=5)
    assert all(d.uids(user, wire) == [] for wire in FOLDERS.values())  # moved out
    assert len(d.uids(user, DONE[1])) == 3  # into the folder created by its encoded name
    with d.client(user) as c:
        _typ, listed = c.list()
    names = b"\n".join(x for x in listed if isinstance(x, bytes)).decode()
    assert "Entw&APw-rfe" in names and "Entwürfe" not in names


async def test_a_mail_skipped_as_too_big_is_read_once_the_limit_is_raised(slash_dovecot, tmp_path):
    d, user = slash_dovecot, "sizes-raised"
    big = make_mail(message_id="big@customer.test", body="x" * 76 + ("\r\n" + "y" * 76) * 15000)
    d.append(user, big)  # 1.2 MB, over the test config's 1 MiB max_message_size
    d.append(user, make_mail(message_id="small@customer.test"))
    accounts = [account(d, user)]
    gw = Gateway(imap_settings(tmp_path, accounts))
    await gw.start()
    try:
        await wait_processed(gw, 1)
        await wait_count(gw, "SELECT COUNT(*) FROM imap_skipped", 1)
    finally:
        await gw.stop(drain_seconds=5)

    raised = {"max_message_size = 1048576": "max_message_size = 4194304"}
    gw = Gateway(imap_settings(tmp_path, accounts, **raised))
    await gw.start()
    try:
        await wait_processed(gw, 2)
        await wait_count(gw, "SELECT COUNT(*) FROM imap_skipped", 0)
        ids = await rows(gw, "SELECT message_id FROM raw_mails ORDER BY id")
        assert ids == [("small@customer.test",), ("big@customer.test",)]
    finally:
        await gw.stop(drain_seconds=5)
    path = imap_config(tmp_path, accounts, **raised)
    result = CliRunner().invoke(cli, ["--config", str(path), "status", "--json"])
    folder = json.loads(result.stdout)["imap"][f"{user}@127.0.0.1:{d.imap_port} INBOX"]
    assert folder["done"] == folder["total"] == 2 and folder["skipped"] == []
    assert all("\\Seen" in f for f in d.flags(user).values())  # both marked, once read

    # and a third start reads nothing again
    gw = Gateway(imap_settings(tmp_path, accounts, **raised))
    await gw.start()
    try:
        await wait_count(gw, "SELECT COUNT(*) FROM imap_state WHERE state = 'idle'", 1)
        assert len(await rows(gw, "SELECT id FROM raw_mails")) == 2
    finally:
        await gw.stop(drain_seconds=5)
