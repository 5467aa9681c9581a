"""`check`: not written yet (placeholder so the CLI imports)."""


def register(subparsers, common) -> None:
    return None
