"""HubSpot's rate limits: a rolling burst window per app, a daily quota, search per second.

The gateway's client must read the headers and back off on 429; the sandbox makes that
observable with small, configurable limits.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field

from .errors import ApiError, rate_limited


@dataclass
class Limits:
    burst: int = 100
    interval_ms: int = 10_000
    search_per_second: int = 5
    daily: int = 250_000


@dataclass
class RateLimiter:
    """Counts calls per app; search calls have their own secondly window and no headers."""

    limits: Limits
    _burst: dict[str, deque[float]] = field(default_factory=dict)
    _search: dict[str, deque[float]] = field(default_factory=dict)
    _daily: dict[str, tuple[str, int]] = field(default_factory=dict)

    def reset(self) -> None:
        self._burst.clear()
        self._search.clear()
        self._daily.clear()

    @staticmethod
    def _prune(window: deque[float], now: float, span: float) -> None:
        while window and window[0] <= now - span:
            window.popleft()

    def _daily_used(self, key: str) -> int:
        day = time.strftime("%Y-%m-%d", time.gmtime())
        stored_day, used = self._daily.get(key, (day, 0))
        return used if stored_day == day else 0

    def check(self, key: str, *, search: bool) -> dict[str, str]:
        """Count one call; return the headers to add, or raise HubSpot's 429."""
        now = time.monotonic()
        used_today = self._daily_used(key)
        if used_today >= self.limits.daily:
            raise rate_limited(
                "You have reached your daily limit.", "DAILY", self._headers(key, now, used_today)
            )
        if search:
            window = self._search.setdefault(key, deque())
            self._prune(window, now, 1.0)
            if len(window) >= self.limits.search_per_second:
                raise rate_limited("You have reached your secondly limit.", "SECONDLY")
            window.append(now)
            self._count_daily(key, used_today)
            return {}
        window = self._burst.setdefault(key, deque())
        self._prune(window, now, self.limits.interval_ms / 1000)
        if len(window) >= self.limits.burst:
            raise rate_limited(
                "You have reached your ten_secondly_rolling limit.",
                "TEN_SECONDLY_ROLLING",
                self._headers(key, now, used_today),
            )
        window.append(now)
        self._count_daily(key, used_today)
        return self._headers(key, now, used_today + 1)

    def _count_daily(self, key: str, used_today: int) -> None:
        self._daily[key] = (time.strftime("%Y-%m-%d", time.gmtime()), used_today + 1)

    def _headers(self, key: str, now: float, used_today: int) -> dict[str, str]:
        window = self._burst.get(key, deque())
        return {
            "X-HubSpot-RateLimit-Max": str(self.limits.burst),
            "X-HubSpot-RateLimit-Remaining": str(max(0, self.limits.burst - len(window))),
            "X-HubSpot-RateLimit-Interval-Milliseconds": str(self.limits.interval_ms),
            "X-HubSpot-RateLimit-Daily": str(self.limits.daily),
            "X-HubSpot-RateLimit-Daily-Remaining": str(max(0, self.limits.daily - used_today)),
        }


__all__ = ["ApiError", "Limits", "RateLimiter"]
