"""Per-client connection limits for the SMTP listener, after Postfix's anvil(8) service.

A client is an IPv4 address or an IPv6 /64 (one customer line or host usually holds a whole
/64; counting single IPv6 addresses would let one host open sessions without bound). An
IPv4-mapped IPv6 address counts as its IPv4 address. Two limits, as Postfix's
`smtpd_client_connection_count_limit` and `smtpd_client_connection_rate_limit`:

- sessions open at once per client;
- connection attempts per client per minute (anvil's `anvil_rate_time_unit`, 60 s): a fixed
  window that starts with the client's first attempt, refused attempts counted too, so a
  client hammering the port stays refused until it slows down.

Clients on the exempt networks (the MTA in front of the gateway) are not counted at all.
Pure bookkeeping: the caller passes the clock and answers the refusal.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field

RATE_WINDOW = 60.0  # seconds, anvil_rate_time_unit's default

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def client_key(host: str) -> str | None:
    """The counted identity of a peer address: "192.0.2.7", "2001:db8:1:2::/64"; None when
    the address does not parse (a UNIX socket, say), which is then not limited."""
    try:
        ip = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


@dataclass
class _Client:
    open: int = 0
    window_start: float = 0.0
    attempts: int = 0
    refused: int = 0  # in this window


@dataclass
class Anvil:
    """Counts per client. `max_open`: sessions at once (0 = no limit); `max_rate`: attempts per
    RATE_WINDOW (0 = no limit); `exempt`: networks never counted."""

    max_open: int
    max_rate: int
    exempt: tuple[Network, ...] = ()
    _clients: dict[str, _Client] = field(default_factory=dict)
    _swept: float = float("-inf")

    @classmethod
    def from_cidrs(cls, max_open: int, max_rate: int, exempt: Iterable[str]) -> Anvil:
        """`exempt` as CIDR strings ("127.0.0.1/32", "2001:db8::/32"), already validated."""
        nets = tuple(ipaddress.ip_network(c, strict=False) for c in exempt)
        return cls(max_open, max_rate, nets)

    def admit(self, host: str, now: float) -> tuple[str | None, str]:
        """Count an attempt from `host`; return (the client key or None if not counted,
        the refusal reason "rate" or "count", or "" when admitted). An admitted client must
        be `leave`d. A refusal's key is returned too (`first_refusal` tells whether to log)."""
        key = client_key(host)
        if key is None or self._is_exempt(host):
            return None, ""
        client = self._clients.get(key)
        if client is None:
            if len(self._clients) > 4096 and now - self._swept >= 1.0:
                self._sweep(now)
            client = self._clients[key] = _Client(window_start=now)
        if now - client.window_start >= RATE_WINDOW:
            client.window_start, client.attempts, client.refused = now, 0, 0
        client.attempts += 1
        why = ""
        if self.max_rate and client.attempts > self.max_rate:
            why = "rate"
        elif self.max_open and client.open >= self.max_open:
            why = "count"
        if why:
            client.refused += 1
        else:
            client.open += 1
        return key, why

    def first_refusal(self, key: str) -> bool:
        """Whether the client's last refusal was its first in this window (log it once)."""
        client = self._clients.get(key)
        return client is not None and client.refused == 1

    def leave(self, key: str | None) -> None:
        """An admitted session from `key` ended."""
        client = self._clients.get(key) if key is not None else None
        if client is not None and client.open > 0:
            client.open -= 1

    def open_sessions(self, host: str) -> int:
        key = client_key(host)
        client = self._clients.get(key) if key is not None else None
        return client.open if client is not None else 0

    def _is_exempt(self, host: str) -> bool:
        try:
            ip = ipaddress.ip_address(host.split("%", 1)[0])
        except ValueError:
            return False
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        return any(ip.version == net.version and ip in net for net in self.exempt)

    def _sweep(self, now: float) -> None:
        """Forget clients with no session whose window has passed (bounds the table)."""
        self._swept = now
        for key in [
            k
            for k, c in self._clients.items()
            if not c.open and now - c.window_start >= RATE_WINDOW
        ]:
            del self._clients[key]
