"""A small, pure rate limiter with back-off for secrets tried over HTTP (the owner's PIN,
hub logins). Time arrives as an argument (``now``, in seconds on any monotonic clock), so the
tests drive it with plain numbers.

Each client may fail ``free`` times; every failure after that locks the client for
``base_s`` doubled per extra failure (capped at ``max_s``). Across all clients at most
``global_per_window`` failures count per ``window_s``; past that everyone waits until the
oldest leaves the window — so many addresses cannot share the work of a guess either.
A success clears the client's failures. The table of clients is bounded (oldest dropped).
"""

from __future__ import annotations

from collections import OrderedDict, deque
from dataclasses import dataclass, field


@dataclass
class Limiter:
    """Failures per client and overall; :meth:`wait_s` says how long a client must wait."""

    free: int = 5
    base_s: float = 1.0
    max_s: float = 300.0
    global_per_window: int = 30
    window_s: float = 60.0
    max_clients: int = 10_000
    _clients: OrderedDict[str, tuple[int, float]] = field(default_factory=OrderedDict)
    _recent: deque[float] = field(default_factory=deque)

    def wait_s(self, client: str, now: float) -> float:
        """Seconds before ``client`` may try again (0: now)."""
        while self._recent and self._recent[0] <= now - self.window_s:
            self._recent.popleft()
        overall = 0.0
        if len(self._recent) >= self.global_per_window:
            overall = self._recent[0] + self.window_s - now
        _, until = self._clients.get(client, (0, 0.0))
        return max(0.0, overall, until - now)

    def failed(self, client: str, now: float) -> None:
        """A wrong secret from ``client``."""
        count, _ = self._clients.pop(client, (0, 0.0))
        count += 1
        until = now
        if count > self.free:
            until = now + min(self.max_s, self.base_s * 2 ** min(count - self.free - 1, 30))
        self._clients[client] = (count, until)
        while len(self._clients) > self.max_clients:
            self._clients.popitem(last=False)
        self._recent.append(now)

    def succeeded(self, client: str) -> None:
        """The right secret: the client starts afresh (the global window keeps its count)."""
        self._clients.pop(client, None)
