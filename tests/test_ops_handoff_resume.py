"""A handoff that failed after its messages were published, before it recorded their thread
(a timeout in a later call, a kill), resumes: the thread is in the publish records.

Found by the soak campaign (tests/test_soak.py): such a handoff retried for ever with
"HubSpot returned no conversationsThreadId yet", since every message was already published
and no publish answered with the thread again.
"""

from __future__ import annotations

from gateway.store import hubspot as hs_store

from conftest import make_mail
from hubspot_helpers import conversation_of, hand_off, send


async def test_a_handoff_resumes_with_the_thread_of_its_published_messages(hub):
    await send(hub, make_mail(message_id="resume@customer.test"), 1)
    conv = await conversation_of(hub, "resume@customer.test")
    done = await hand_off(hub, conv)
    # as the crash left it: messages published (recorded with their thread), the handoff's
    # own thread_id and the later steps not recorded
    await hub.store.write(
        lambda db: hs_store.record_step(db, conv, state="pending", thread_id=None, comment_id=None)
    )
    await hub.handoff.run(conv)
    after = await hub.store.read(lambda db: hs_store.get_handoff(db, conv))
    assert after["state"] == "done"
    assert after["thread_id"] == done["thread_id"]
