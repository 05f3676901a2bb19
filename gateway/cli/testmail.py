"""`mail-gateway send-test ADDRESS` and `mail-gateway receive-test`: the two proofs an admin
runs once the gateway is installed.

send-test sends one mail through the configured relay (`[relay]`: host, port, TLS, AUTH,
DKIM) and prints the SMTP conversation as it happens (RFC 5321 commands and replies; the
AUTH exchange and the message itself are not shown). receive-test sends one mail into the
running daemon's SMTP listener, waits until it is stored as a conversation, and removes it
again; it carries `Auto-Submitted: auto-generated` (RFC 3834), so the assistant never
answers it and it never reaches HubSpot.
"""

from __future__ import annotations

import contextlib
import smtplib
import ssl
import time
import uuid
from email.message import EmailMessage
from email.utils import formatdate
from typing import TYPE_CHECKING

import click

from gateway.cli.common import Context, credentials_dir_option, friendly_errors, pass_ctx

if TYPE_CHECKING:
    from collections.abc import Iterator

    from typing_extensions import Buffer

    from gateway.config import Settings


class TranscriptSMTP(smtplib.SMTP):
    """smtplib's client that reports each command and reply to `echo` as it happens: "C:"
    for ours, "S:" for the server's. AUTH's arguments and responses and the message body
    are replaced by a note, so no secret and no content is printed."""

    echo = staticmethod(click.echo)
    _in_auth = False
    _in_data = False

    def send(self, s: Buffer | str) -> None:
        text = s if isinstance(s, str) else bytes(s).decode("utf-8", "replace")
        if self._in_data and not text.lower().startswith("data"):
            self.echo(f"C: <the message, {len(text)} bytes, then <CRLF>.<CRLF>>")
        elif text.upper().startswith("AUTH "):
            self._in_auth = True
            self.echo(
                "C: " + " ".join(text.split()[:2]) + (" ***" if len(text.split()) > 2 else "")
            )
        elif self._in_auth:
            self.echo("C: ***")
        else:
            self.echo("C: " + text.rstrip("\r\n"))
        super().send(s)

    def getreply(self) -> tuple[int, bytes]:
        code, message = super().getreply()
        lines = message.decode("utf-8", "replace").splitlines() or [""]
        if self._in_auth and code == 334:
            lines = ["***"]
        if code != 334:
            self._in_auth = False
        for i, line in enumerate(lines):
            sep = "-" if i < len(lines) - 1 else " "
            self.echo(f"S: {code}{sep}{line}")
        return code, message

    def data(self, msg: Buffer | str) -> tuple[int, bytes]:
        self._in_data = True
        try:
            return super().data(msg)
        finally:
            self._in_data = False


class TranscriptSMTPSSL(TranscriptSMTP, smtplib.SMTP_SSL):
    """The same over implicit TLS (port 465, RFC 8314)."""


@click.command("send-test")
@click.argument("address")
@click.option(
    "--from", "sender", metavar="ADDRESS", help="From; default the first support address."
)
@credentials_dir_option
@pass_ctx
@friendly_errors
def send_test(ctx: Context, address: str, sender: str | None) -> None:
    """Send a test mail to ADDRESS through the configured relay, showing the SMTP dialogue.

    The mail is built as replies are (From a support address, our Message-ID, DKIM-signed when
    [relay] dkim_selector is set). Exit 0 when the relay accepted it (250 after DATA).
    """
    from gateway.addresses import checked_email

    s = ctx.settings
    r = s.relay
    if r.mode != "smtp":
        raise click.ClickException(
            f'relay.mode is "{r.mode}": nothing goes out; set relay.mode = "smtp" and '
            "relay.host to test the relay"
        )
    to = checked_email(address)
    frm = checked_email(sender or (s.smtp.addresses[0] if s.smtp.addresses else ""))
    if to is None:
        raise click.BadParameter(f"{address!r} is not an email address", param_hint="ADDRESS")
    if frm is None:
        raise click.BadParameter("give --from (no smtp.addresses configured)", param_hint="--from")
    raw = _test_message(frm, to, s)
    click.echo(f"relay {r.host}:{r.port} (tls {r.tls}), from {frm} to {to}")
    context = ssl.create_default_context()
    otherwise = f"relay {r.host}:{r.port}: {{exc}} (check relay.host, relay.port and relay.tls)"
    with _refusals("the relay", otherwise):
        if r.tls == "implicit":
            client: TranscriptSMTP = TranscriptSMTPSSL(timeout=r.timeout, context=context)
        else:
            client = TranscriptSMTP(timeout=r.timeout)
        client.connect(r.host, r.port)
        client.ehlo(s.gateway.hostname)
        if r.tls == "starttls":
            client.starttls(context=context)
            client.ehlo(s.gateway.hostname)
        if r.username and not client.has_extn("auth"):
            raise click.ClickException(
                f"relay {r.host}:{r.port} offers no AUTH but relay.username is set "
                f"({r.username!r}): most relays offer AUTH only after STARTTLS (relay.tls = "
                '"starttls" on port 587, "implicit" on 465); a relay that trusts this host '
                'needs relay.username = ""'
            )
        if r.username:
            client.login(r.username, str(r.password))
        client.sendmail(frm, [to], raw)
        client.quit()
    click.echo(f"sent: the relay accepted the mail for {to}")


def _test_message(frm: str, to: str, settings: Settings) -> bytes:
    """The test mail's bytes, headers only from validated values, DKIM-signed when set."""
    r = settings.relay
    msg = EmailMessage()
    msg["From"] = frm
    msg["To"] = to
    msg["Subject"] = "mail-gateway send-test"
    msg["Date"] = formatdate(usegmt=True)
    msg["Message-ID"] = f"<send-test.{uuid.uuid4().hex}@{settings.gateway.hostname}>"
    msg["Auto-Submitted"] = "auto-generated"
    msg.set_content(
        f"This is a test mail from mail-gateway on {settings.gateway.hostname}, sent through "
        f"{r.host}:{r.port}.\nIf it arrived, the relay works; check its headers for SPF, DKIM "
        "and DMARC (Authentication-Results).\n"
    )
    raw = msg.as_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    if r.dkim_selector:
        from gateway.mail.dkim import dkim_sign

        raw = dkim_sign(raw, selector=r.dkim_selector, domain=r.dkim_domain, key_pem=r.dkim_key)
    return raw


@click.command("receive-test")
@click.option("--server", metavar="HOST:PORT", help="Default: smtp.listen (a wildcard: loopback).")
@click.option("--to", "rcpt", metavar="ADDRESS", help="Default: the first support address.")
@click.option("--keep", is_flag=True, help="Leave the conversation in the store.")
@click.option("--wait", "within", default=30.0, show_default=True, help="Seconds to wait.")
@pass_ctx
@friendly_errors
def receive_test(
    ctx: Context, server: str | None, rcpt: str | None, keep: bool, within: float
) -> None:
    """Send a mail into the running daemon and see it become a conversation, then remove it.

    Proves the listener, the store and the worker together. The mail is marked
    Auto-Submitted: the assistant does not answer it and it is never handed to HubSpot.
    """
    s = ctx.settings
    host, port = _server(server, str(s.smtp.listen))
    to = rcpt or (s.smtp.addresses[0] if s.smtp.addresses else f"support@{s.smtp.domains[0]}")
    message_id = f"receive-test.{uuid.uuid4().hex}@mail-gateway.invalid"
    msg = EmailMessage()
    msg["From"] = "mail-gateway receive-test <receive-test@mail-gateway.invalid>"
    msg["To"] = to
    msg["Subject"] = "mail-gateway receive-test"
    msg["Date"] = formatdate(usegmt=True)
    msg["Message-ID"] = f"<{message_id}>"
    msg["Auto-Submitted"] = "auto-generated"
    msg.set_content("A probe of mail-gateway receive-test; it removes itself.\n")
    otherwise = f"nothing takes mail on {host}:{port} ({{exc}}): is the daemon running?"
    with _refusals(f"{host}:{port}", otherwise), smtplib.SMTP(host, port, timeout=30) as client:
        client.sendmail("receive-test@mail-gateway.invalid", [to], msg.as_bytes())
    click.echo(f"accepted by {host}:{port} for {to} (Message-ID <{message_id}>)")

    db = ctx.db()  # before the store's verbs: see common.py
    from gateway.store import probe
    from gateway.store.db import write_transaction

    deadline = time.monotonic() + within
    found = probe.find_received(db, message_id)
    while not (found and not found["busy"] and found["state"] in ("processed", "quarantined")):
        if time.monotonic() > deadline:
            where = "stored, not processed yet" if found else "not in the store"
            raise click.ClickException(
                f"after {within:g} s the mail is {where}: is the daemon's worker running, on "
                f"this store ({s.db_path})?"
            )
        time.sleep(0.2)  # a person waits here, not a test: the daemon is another process
        found = probe.find_received(db, message_id)
    if found["state"] == "quarantined":
        raise click.ClickException(
            f"raw mail {found['raw_id']} was quarantined (`mail-gateway quarantine list`)"
        )
    click.echo(f"stored as raw mail {found['raw_id']} in conversation {found['conversation_id']}")
    if keep:
        return
    with write_transaction(db):
        deleted = probe.remove_probe(db, found["raw_id"], found["conversation_id"])
    rows = ", ".join(f"{t} {n}" for t, n in sorted(deleted.items()))
    click.echo(f"removed again ({rows})")


@contextlib.contextmanager
def _refusals(who: str, otherwise: str) -> Iterator[None]:
    """SMTP failures as one line: "WHO refused: CODE TEXT" for a server's reply, else
    `otherwise` with {exc} filled in (connection refused, timeouts, TLS errors)."""
    try:
        yield
    except smtplib.SMTPRecipientsRefused as exc:
        code, reply = next(iter(exc.recipients.values()))
        raise click.ClickException(f"{who} refused: {code} {_text(reply)}") from None
    except smtplib.SMTPResponseException as exc:
        raise click.ClickException(
            f"{who} refused: {exc.smtp_code} {_text(exc.smtp_error)}"
        ) from None
    except (smtplib.SMTPException, OSError) as exc:
        raise click.ClickException(otherwise.format(exc=f"{type(exc).__name__}: {exc}")) from None


def _text(reply: bytes | str) -> str:
    return reply.decode("utf-8", "replace") if isinstance(reply, bytes) else reply


def _server(given: str | None, listen: str) -> tuple[str, int]:
    host, _, port = (given or listen).rpartition(":")
    host = host.strip("[]")
    if host in ("", "0.0.0.0", "::"):
        host = "127.0.0.1"
    if not port.isdigit() or int(port) == 0:
        raise click.BadParameter(
            f"{given or listen!r}: no port to connect to (smtp.listen has port 0?)",
            param_hint="--server",
        )
    return host, int(port)


COMMANDS = (send_test, receive_test)
