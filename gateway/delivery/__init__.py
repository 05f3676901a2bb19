"""Outgoing mail: composition (pure), signatures, rendering, and delivery through the relay."""
