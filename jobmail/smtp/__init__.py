"""SMTP: one client (connect by stages, TLS, login, send, retry), one table of what errors mean, the check."""
