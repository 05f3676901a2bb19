"""Which recipients the gateway accepts: the configured support addresses and domains only.

Everything else gets 550 5.1.1, so the gateway can never be used as an open relay.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.addresses import checked_email
from gateway.mail.ids import mailbox_and_token


@dataclass(frozen=True)
class Routes:
    addresses: frozenset[str]
    domains: frozenset[str]

    def mailbox_for(self, address: str) -> str | None:
        """The support mailbox an envelope recipient stands for, or None if it is not ours."""
        if checked_email(address) is None:  # the one address rule (gateway/addresses.py)
            return None
        mailbox, _token = mailbox_and_token(address)
        if mailbox in self.addresses:
            return mailbox
        _, _, domain = mailbox.rpartition("@")
        if domain in self.domains:
            return mailbox
        return None
