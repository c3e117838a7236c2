"""API Gateway's stage throttling: a token bucket of `burst` requests refilled at `rate` per
second, shared by every route of the stage. A request finding the bucket empty is answered
429 (the THROTTLED Gateway Response) before any authorizer or function runs."""

from __future__ import annotations

import threading
import time


class TokenBucket:
    def __init__(self, rate: float, burst: float) -> None:
        self.rate = max(rate, 0.0)
        self.burst = max(burst, 0.0)
        self._tokens = self.burst
        self._updated = time.monotonic()
        self._lock = threading.Lock()

    def take(self) -> bool:
        """True if the request may pass (one token spent), False if it is throttled."""
        with self._lock:
            now = time.monotonic()
            self._tokens = min(self.burst, self._tokens + (now - self._updated) * self.rate)
            self._updated = now
            if self._tokens < 1:
                return False
            self._tokens -= 1
            return True
