"""A local stand-in for the parts of the SendPilot API that campaign-runner uses.

It serves ``POST /v1/inbox/connect``, ``GET /v1/inbox/senders`` and ``GET /v1/senders/quotas``
with the shapes in ``sendpilot-api.md`` (the **assumed** ones exactly as written there),
``X-API-Key`` auth, per-sender capacity renewed every ``window_seconds``, already-connected
profiles, free senders that drop notes, deterministic faults (:mod:`.faults`) and signed
webhooks (:mod:`.webhooks`). Tests, demos and ``campaign-runner sandbox`` all use it::

    async with SandboxServer(SandboxConfig(senders=(SandboxSender("s1", capacity=3),))) as server:
        ...  # point a client at server.base_url with server.api_key
        assert len(server.state.invitations) == 3

Choices where the real service is unknown:

- A recipient invited a second time is invited again: it spends capacity, is appended to
  ``state.invitations`` and is also counted as ``("connect", "repeat")``, so tests can see
  every duplicate send. ``state.duplicates()`` lists them.
- ``already_connected`` profiles answer 200 ``"already_connected"`` (with a fresh
  ``requestId``), spend no capacity and create no invitation, even when capacity is spent.
- A ``disconnected`` sender answers 400 ``"Sender <id> is disconnected"``; a
  ``rate_limited`` one answers 429 ``"Daily connection limit exceeded"``.
- Notes are limited to 300 characters counted as Python ``len`` (code points); an empty
  note is no note. Free senders' invitations record ``note=None``.
- The senders list reports *message* usage (limit 100, none used); connection capacity is
  in the quotas route only.
"""

from __future__ import annotations

from campaign_runner.sandbox.app import SANDBOX, Sandbox, SandboxServer, create_app
from campaign_runner.sandbox.faults import FAULT_KINDS, FaultPlan, FaultRule, parse_fault_spec
from campaign_runner.sandbox.state import (
    DEMO_SENDERS,
    Invitation,
    SandboxConfig,
    SandboxSender,
    SandboxState,
    senders_from_spec,
)
from campaign_runner.sandbox.webhooks import (
    SIGNATURE_HEADER,
    shown_profile_url,
    sign,
    sign_standard,
    verify_signature,
)

__all__ = [
    "DEMO_SENDERS",
    "FAULT_KINDS",
    "SANDBOX",
    "SIGNATURE_HEADER",
    "FaultPlan",
    "FaultRule",
    "Invitation",
    "Sandbox",
    "SandboxConfig",
    "SandboxSender",
    "SandboxServer",
    "SandboxState",
    "create_app",
    "parse_fault_spec",
    "senders_from_spec",
    "shown_profile_url",
    "sign",
    "sign_standard",
    "verify_signature",
]
