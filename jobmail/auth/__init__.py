"""Sign-in secrets: the OS keyring (and nothing else holds a password)."""
