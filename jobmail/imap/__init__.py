"""IMAP: the Sent folder copy and the reply search (see client.py)."""
