"""OAuth 2.0 for mailbox logins (SASL XOAUTH2 on IMAP and SMTP): the providers' libraries
(providers.py) and the stored, renewed token of each login (tokens.py). Used by intake/imap
and relay/sender; below them and above the store (docs/ARCHITECTURE.md)."""
