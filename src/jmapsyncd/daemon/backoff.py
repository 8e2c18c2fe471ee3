"""Retry delays for the daemon: exponential, capped, with jitter.

Jitter keeps many clients that failed together (a server restart) from retrying together.
"""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True)
class Backoff:
    """Delays grow as ``base * 2**(failures-1)`` up to ``cap``; each is drawn from [ceiling/2,
    ceiling]. A server's ``Retry-After`` is honoured (within ``cap``)."""

    base: float = 5.0
    cap: float = 900.0

    def delay(self, failures: int, retry_after: float | None = None) -> float:
        ceiling = min(self.cap, self.base * 2 ** max(0, failures - 1))
        delay = random.uniform(ceiling / 2, ceiling)  # jitter, not cryptography
        if retry_after is not None:
            delay = max(delay, min(retry_after, self.cap))
        return delay
