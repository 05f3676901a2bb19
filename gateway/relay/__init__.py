"""Sending a composed mail: an SMTP relay or the capture folder."""
