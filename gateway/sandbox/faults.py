"""Faults on demand: make chosen calls fail the ways HubSpot and networks fail.

A rule matches a method and a path (glob, or regex with ``regex: true``) and fires either for
the next ``count`` matching calls or with probability ``rate`` from a seeded generator, so a
flaky run is reproducible.
"""

from __future__ import annotations

import asyncio
import fnmatch
import itertools
import random
import re
import socket
import struct
from dataclasses import asdict, dataclass, field
from typing import Any

from aiohttp import web

from .errors import ApiError, bad_request, rate_limited

# lose_response: the call is carried out, then the connection drops before the answer, the
# case that makes a client wonder whether its create happened (idempotency tests need it).
ACTIONS = ("status", "latency", "hang", "reset", "lose_response")
STATUSES = (429, 500, 502, 503)
_ids = itertools.count(1)


@dataclass
class FaultRule:
    path: str = "*"
    method: str = "*"
    action: str = "status"
    status: int = 503
    latency_ms: int = 0
    hang_seconds: float | None = None
    regex: bool = False
    count: int | None = None
    rate: float | None = None
    seed: int | None = None
    policy: str = "TEN_SECONDLY_ROLLING"
    id: int = field(default_factory=lambda: next(_ids))
    fired: int = 0
    _random: random.Random = field(default_factory=random.Random, repr=False)

    @classmethod
    def from_dict(cls, spec: dict[str, Any]) -> FaultRule:
        known = {k: v for k, v in spec.items() if k in cls.__dataclass_fields__ and k[0] != "_"}
        known.pop("id", None)
        known.pop("fired", None)
        try:
            rule = cls(**known)
        except TypeError as exc:
            raise bad_request(f"invalid fault: {exc}") from exc
        if rule.action not in ACTIONS:
            raise bad_request(f"action must be one of {', '.join(ACTIONS)}")
        if rule.action == "status" and rule.status not in STATUSES:
            raise bad_request(f"status must be one of {STATUSES}")
        if rule.regex:
            try:
                re.compile(rule.path)
            except re.error as exc:
                raise bad_request(f"invalid regex: {exc}") from exc
        if rule.count is None and rule.rate is None:
            rule.rate = 1.0
        rule._random = random.Random(rule.seed)
        return rule

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if not k.startswith("_")}

    def matches(self, method: str, path: str) -> bool:
        if self.method not in ("*", method.upper()):
            return False
        if self.regex:
            return re.search(self.path, path) is not None
        return fnmatch.fnmatchcase(path, self.path)

    def fires(self) -> bool:
        """Decide (and account) whether this matching call gets the fault."""
        if self.count is not None:
            if self.count <= 0:
                return False
            self.count -= 1
        elif self.rate is not None and self._random.random() >= self.rate:
            return False
        self.fired += 1
        return True


class FaultInjector:
    def __init__(self, closing: asyncio.Event, hang_seconds: float) -> None:
        self.rules: list[FaultRule] = []
        self.closing = closing
        self.hang_seconds = hang_seconds

    def add(self, spec: dict[str, Any]) -> FaultRule:
        rule = FaultRule.from_dict(spec)
        self.rules.append(rule)
        return rule

    def remove(self, rule_id: int) -> bool:
        before = len(self.rules)
        self.rules = [r for r in self.rules if r.id != rule_id]
        return len(self.rules) != before

    def clear(self) -> None:
        self.rules.clear()

    def pick(self, method: str, path: str) -> FaultRule | None:
        for rule in self.rules:
            if rule.matches(method, path) and rule.fires():
                return rule
        return None

    async def apply(self, rule: FaultRule, request: web.Request) -> None:
        """Carry out the fault. Returns normally only for latency (the call then proceeds)."""
        if rule.latency_ms:
            await asyncio.sleep(rule.latency_ms / 1000)
        if rule.action in ("latency", "lose_response"):
            return
        if rule.action == "status":
            raise _status_error(rule)
        if rule.action == "hang":
            seconds = rule.hang_seconds if rule.hang_seconds is not None else self.hang_seconds
            # Wake early when the server shuts down, so a hung call never delays close().
            try:
                await asyncio.wait_for(self.closing.wait(), seconds)
            except TimeoutError:
                pass
            raise ApiError(504, "The request timed out in the sandbox (hang fault).", "TIMEOUT")
        if rule.action == "reset":
            raise ConnectionResetFault()


class ConnectionResetFault(Exception):
    """Raised to make the middleware drop the connection with a TCP RST."""


def reset_connection(request: web.Request) -> None:
    transport = request.transport
    if transport is None:
        return
    sock = transport.get_extra_info("socket")
    if sock is not None:
        # SO_LINGER 0 turns close() into a RST, which clients see as "connection reset".
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()


def _status_error(rule: FaultRule) -> ApiError:
    if rule.status == 429:
        return rate_limited(f"You have reached your {rule.policy.lower()} limit.", rule.policy)
    messages = {
        500: ("internal error", "INTERNAL_ERROR"),
        502: ("Bad Gateway", "BAD_GATEWAY"),
        503: ("Service Unavailable", "SERVICE_UNAVAILABLE"),
    }
    message, category = messages[rule.status]
    return ApiError(rule.status, message, category)
