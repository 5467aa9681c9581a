"""`Record`: `typing.NamedTuple`'s class syntax without importing typing (~9 ms of every start).

    class Query(Record):
        to: str = ""
        since: datetime | None = None

builds an immutable named tuple with those fields and defaults, exactly as NamedTuple does; the type
checker sees `typing.NamedTuple` itself (modules import it as
`if TYPE_CHECKING: from typing import NamedTuple as Record` / `else: from jobmail.frozen import Record`).
"""

from __future__ import annotations

from collections import namedtuple


class _RecordMeta(type):
    def __new__(mcls, name: str, bases: tuple[type, ...], namespace: dict):  # noqa: N804
        if not bases:  # Record itself
            return super().__new__(mcls, name, bases, namespace)
        fields = list(namespace.get("__annotations__", {}))
        defaults = [namespace.pop(field) for field in fields if field in namespace]
        base = namedtuple(name, fields, defaults=defaults, module=namespace.get("__module__"))  # type: ignore[misc]
        namespace.pop("__annotations__", None)
        namespace.setdefault("__slots__", ())
        return type(name, (base,), namespace)


class Record(metaclass=_RecordMeta):
    """Base of the package's immutable records (see the module docstring)."""
