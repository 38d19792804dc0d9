"""Throttling of API-key guesses: at most `limit` different wrong keys per client address in
a sliding window, whether typed in the /app sign-in form or sent in a header.

The count lives in this process's memory: a restart forgets it, and each gunicorn worker
process counts for itself (so the real limit is `limit` x workers). That is enough to make
guessing a 32-character key hopeless; a shared store would add a dependency for nothing.
The address is the TCP peer: behind a reverse proxy every client shares the proxy's.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections import OrderedDict, deque

LIMIT = 5  # different wrong keys per client address...
WINDOW = 60.0  # ...in this many seconds
MAX_ADDRESSES = 10_000  # beyond this, the address that failed longest ago is forgotten


class WrongKeyLimiter:
    """Counts wrong keys per address; `retry_after` says how long an address must wait.

    Only *different* wrong keys count: the same stale key sent again by a forgotten cron job
    guesses nothing, and must not lock out the right key used from the same address.
    Memory is bounded: at most `limit` tries per address and `max_addresses` addresses.
    """

    def __init__(
        self,
        limit: int = LIMIT,
        window: float = WINDOW,
        max_addresses: int = MAX_ADDRESSES,
        clock=time.monotonic,
    ):
        self.limit, self.window, self.max_addresses, self.clock = (
            limit,
            window,
            max_addresses,
            clock,
        )
        # Address -> its last `limit` tries as (time, digest of the key), ordered by each
        # address's latest failure, oldest first: expired or stalest addresses are at the
        # front, so forgetting them never needs a scan.
        self._tries: OrderedDict[str, deque] = OrderedDict()
        self._salt = os.urandom(16)  # digests of wrong keys mean nothing outside this process
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._tries)

    def retry_after(self, address: str) -> int:
        """Seconds until `address` may present a key again; 0 when it may now."""
        with self._lock:
            tries = self._tries.get(address)  # never adds: asking costs no memory
            if not tries or len(tries) < self.limit:
                return 0
            wait = tries[0][0] + self.window - self.clock()
            return max(0, int(wait + 0.999))

    def failed(self, address: str, key: str) -> None:
        """Count the wrong `key` from `address` (a key it already tried is not counted again)."""
        digest = hashlib.blake2b(
            key.encode("utf-8", "surrogateescape"), key=self._salt, digest_size=16
        ).digest()
        with self._lock:
            now = self.clock()
            self._forget_expired(now)
            tries = self._tries.setdefault(address, deque(maxlen=self.limit))
            self._drop_expired(tries, now)
            if all(seen != digest for _, seen in tries):
                tries.append((now, digest))
                self._tries.move_to_end(address)  # its latest failure is now the newest
            while len(self._tries) > self.max_addresses:
                self._tries.popitem(last=False)  # still full of live ones: forget the stalest

    def _forget_expired(self, now: float) -> None:
        # Front to back is oldest failure first: stop at the first address still in its window.
        while self._tries:
            tries = next(iter(self._tries.values()))
            if tries and tries[-1][0] > now - self.window:
                break
            self._tries.popitem(last=False)

    def _drop_expired(self, tries: deque, now: float) -> None:
        while tries and tries[0][0] <= now - self.window:
            tries.popleft()
