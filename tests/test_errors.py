"""The error hierarchy: one home per class, the builtin each one means, NotFound for misses."""

from __future__ import annotations

import importlib
import inspect
from pathlib import Path

import pytest

from gateway.errors import (
    ComposeError,
    GatewayError,
    NotFound,
    PermanentError,
    TransientError,
)
from gateway.hubspot.errors import (
    BadWebhook,
    HubSpotAuthError,
    HubSpotError,
    HubSpotNotFound,
    HubSpotPermanentError,
)
from gateway.intake.imap_client import ImapError
from gateway.pipeline.assistant.llm import MalformedAnswer
from gateway.store import deliveries

GATEWAY = Path(__file__).resolve().parents[1] / "gateway"
# The modules that may define exception classes (see gateway/errors.py for why each).
HOMES = {
    "errors.py",
    "hubspot/errors.py",
    "jobs/send_reply.py",
    "intake/imap_client.py",
    "pipeline/assistant/llm.py",
    "config.py",  # _BadItem: private to the config parser, never escapes it
}


def test_errors_inherit_the_builtin_they_mean():
    assert issubclass(NotFound, LookupError) and issubclass(NotFound, GatewayError)
    assert issubclass(ComposeError, ValueError) and issubclass(ComposeError, PermanentError)
    assert issubclass(BadWebhook, ValueError) and issubclass(BadWebhook, GatewayError)
    assert issubclass(ImapError, ConnectionError) and issubclass(ImapError, TransientError)
    assert issubclass(MalformedAnswer, ValueError) and issubclass(MalformedAnswer, GatewayError)
    auth = HubSpotError.from_response(401, {"message": "expired"}, "GET", "/x")
    assert isinstance(auth, HubSpotAuthError) and isinstance(auth, PermissionError)
    assert str(auth) == "HubSpot 401: GET /x: expired"  # not OSError's "[Errno …]" form
    # raised before any HTTP call (not connected): no status code that HubSpot never sent
    assert str(HubSpotAuthError(0, "not connected")) == "HubSpot: not connected"
    missing = HubSpotError.from_response(404, {"message": "no contact"}, "GET", "/c")
    assert isinstance(missing, HubSpotNotFound) and isinstance(missing, NotFound)
    assert isinstance(missing, HubSpotPermanentError)  # still a dead letter, not a retry


def test_exception_classes_live_in_their_homes_only():
    """Import every module and find each class that is an exception, whatever its base is
    called (`class X(Deferred)`, `class X(errors.TransientError)`), by issubclass."""
    found = []
    for path in sorted(GATEWAY.rglob("*.py")):
        rel = path.relative_to(GATEWAY).as_posix()
        if rel.startswith("sandbox/") or rel.endswith("__main__.py"):
            continue  # the sandbox is its own package and imports nothing of the gateway
        name = "gateway." + rel.removesuffix(".py").replace("/", ".").removesuffix(".__init__")
        module = importlib.import_module(name)
        for obj in vars(module).values():
            if (
                inspect.isclass(obj)
                and issubclass(obj, BaseException)
                and obj.__module__ == module.__name__
            ):
                found.append((rel, obj.__name__))
    assert found and {rel for rel, _ in found} <= HOMES, found
    names = [name for _, name in found]
    assert len(names) == len(set(names)), "an error class defined twice"


def test_nothing_raises_a_bare_lookup_error():
    for path in GATEWAY.rglob("*.py"):
        if "sandbox" in path.parts:
            continue
        assert "raise LookupError" not in path.read_text(), path


async def test_store_misses_raise_not_found(store):
    with pytest.raises(NotFound, match="delivery 99"):
        await store.write(lambda db: deliveries.record_sent(db, 99, code=250, reply="ok"))
    with pytest.raises(NotFound, match="conversation 98"):
        await store.read(lambda db: deliveries.thread_context(db, 98))
