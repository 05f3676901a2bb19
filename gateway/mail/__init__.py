"""Pure mail codecs: bytes and text in, data out; no I/O, no store."""
