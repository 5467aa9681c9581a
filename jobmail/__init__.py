"""jobmail: send a polite withdrawal or offer decline through your own SMTP account, and keep a log."""

__version__ = "0.1.0"
