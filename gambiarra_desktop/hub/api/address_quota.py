"""A cap in total and per client address: open connections, event streams.

One counter for both, so the rule (check and count with nothing in between; forget an
address once it holds nothing, so the table never grows with addresses long gone) is
written once.
"""

from __future__ import annotations

from typing import Literal

Refusal = Literal["total", "address"]


class AddressQuota:
    def __init__(self, max_total: int, max_per_address: int) -> None:
        self.max_total = max_total
        self.max_per_address = max_per_address
        self.count = 0
        self._per_address: dict[str, int] = {}

    def admit(self, address: str) -> Refusal | None:
        """Count one more for ``address``, or say which cap is full. Synchronous: the
        check and the count happen with nothing in between."""
        if self.count >= self.max_total:
            return "total"
        held = self._per_address.get(address, 0)
        if held >= self.max_per_address:
            return "address"
        self.count += 1
        self._per_address[address] = held + 1
        return None

    def release(self, address: str) -> None:
        self.count -= 1
        remaining = self._per_address.get(address, 1) - 1
        if remaining > 0:
            self._per_address[address] = remaining
        else:
            self._per_address.pop(address, None)

    def held_by(self, address: str) -> int:
        return self._per_address.get(address, 0)
