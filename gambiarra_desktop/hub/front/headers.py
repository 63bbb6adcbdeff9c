"""A request's headers as the chat front end read them, looked up without a multidict.

Admission and the proxy read three headers of a chat (``Authorization``, ``Via``,
``X-Request-Id``); building a ``CIMultiDict`` and decoding every header to serve those
lookups cost more than the lookups. Values are decoded when read, the way aiohttp decodes
them (UTF-8, undecodable bytes kept as surrogates).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TypeVar, overload

_D = TypeVar("_D")


def _text(value: bytes) -> str:
    return value.decode("utf-8", "surrogateescape")


class ParsedHeaders(Mapping[str, str]):
    __slots__ = ("_first", "_raw")

    def __init__(self, raw: list[tuple[bytes, bytes]], first: dict[bytes, bytes]) -> None:
        """``raw``: the headers in order, as received; ``first``: each lower-cased name's
        first value (a multidict's ``get`` gives the first too)."""
        self._raw = raw
        self._first = first

    def __getitem__(self, name: str) -> str:
        value = self._first.get(name.lower().encode("latin-1"))
        if value is None:
            raise KeyError(name)
        return _text(value)

    def __iter__(self) -> Iterator[str]:
        return (name.decode("latin-1") for name, _ in self._raw)

    def __len__(self) -> int:
        return len(self._raw)

    @overload
    def get(self, name: str, /) -> str | None: ...
    @overload
    def get(self, name: str, /, default: str | _D) -> str | _D: ...
    def get(self, name: str, default: object = None) -> object:
        value = self._first.get(name.lower().encode("latin-1"))
        return default if value is None else _text(value)

    def getall(self, name: str, default: list[str]) -> list[str]:
        """Every value of ``name``, in order; ``default`` when there is none."""
        wanted = name.lower().encode("latin-1")
        if wanted not in self._first:
            return default
        return [_text(value) for key, value in self._raw if key.lower() == wanted]
