"""Access to the dashboard: one-time pairing tokens, login sessions, CSRF, roles, the PIN.

No default password anywhere. ``spotter run`` prints a pairing URL with a one-time token;
opening it sets an HttpOnly, SameSite=Strict session cookie (Secure over HTTPS and on
localhost). Every API call needs that session; every write also needs the session's CSRF
token in the ``X-CSRF-Token`` header. Sessions live in the store (hashed), so a restarted
station does not log the spotter's phone out.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from dashboard.limiter import Limiter
from monitor.store import Store

COOKIE = "spotter_session"
CSRF_HEADER = "X-CSRF-Token"
PAIR_TTL = timedelta(minutes=15)
SESSION_TTL = timedelta(days=30)
ROLES = ("viewer", "user", "clinician", "owner")
PIN_KEY = "owner_pin"


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class TooManyTries(Exception):
    """Too many wrong secrets from this client (or from everyone): wait ``wait_s``."""

    def __init__(self, wait_s: float) -> None:
        super().__init__(f"too many wrong attempts: try again in {wait_s:.0f} s")
        self.wait_s = wait_s


class HasherBusy(Exception):
    """The argon2 worker already has a full queue: the caller answers 429 (too many requests
    at once) with Retry-After, it does not wait."""


class Hashing:
    """argon2 off the event loop, in its own small pool: hashing never blocks the loop, never
    takes the threads other work (``asyncio.to_thread``) runs on, and never queues more than
    ``queue`` calls (a flood is refused with :class:`HasherBusy` instead of growing a backlog).

    ``verify(None, secret)`` checks against a dummy hash, so an unknown user costs the same
    time as a known one and a name cannot be told to exist by timing."""

    def __init__(self, workers: int = 1, queue: int = 4) -> None:
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="argon2")
        self._hasher = PasswordHasher()
        self.pin_tries = Limiter()
        """Wrong PINs per client and overall (back-off, see :class:`Limiter`)."""
        self._queue = queue
        self._pending = 0
        self._dummy: str | None = None
        self.verified = 0
        """How many secrets were checked (a known name or not: each costs one argon2)."""

    async def _run(self, fn: Any, *args: Any) -> Any:
        if self._pending >= self._queue:
            raise HasherBusy("the password checker is busy: try again in a moment")
        self._pending += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)
        finally:
            self._pending -= 1

    def _verify(self, stored: str | None, secret: str) -> bool:
        if stored is None:
            if self._dummy is None:
                self._dummy = self._hasher.hash(secrets.token_urlsafe(16))
            stored, real = self._dummy, False
        else:
            real = True
        try:
            return self._hasher.verify(stored, secret) and real
        except (VerificationError, InvalidHashError):
            return False

    async def verify(self, stored: str | None, secret: str) -> bool:
        """Whether ``secret`` matches the argon2 hash ``stored`` (always False for None)."""
        self.verified += 1
        return bool(await self._run(self._verify, stored, secret))

    async def hash(self, secret: str) -> str:
        """An argon2 hash of ``secret``."""
        return str(await self._run(self._hasher.hash, secret))


HASHING = Hashing()
"""The one argon2 pool of the process (the station's PIN and the hub's logins)."""


@dataclass(frozen=True)
class Login:
    """Who is calling."""

    role: str
    name: str
    csrf: str


class Access:
    """Pairing tokens (one-time) and sessions, both kept hashed in the store."""

    def __init__(
        self, store: Store, station: str, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.store = store
        self.station = station
        self.clock = clock
        """The monotonic clock the PIN's back-off is judged on (a test passes its own)."""
        self._hasher = PasswordHasher()
        self.pin_tries = Limiter()
        """Wrong PINs per client and overall (back-off, see :class:`Limiter`)."""

    def new_pairing(self, role: str = "owner", name: str = "owner") -> str:
        """A one-time token to put in a pairing URL (valid for 15 minutes)."""
        if role not in ROLES:
            raise ValueError(f"role must be one of {', '.join(ROLES)}")
        token = secrets.token_urlsafe(24)
        until = (datetime.now().astimezone() + PAIR_TTL).isoformat()
        self.store.add_pairing(_hash(token), role, name, until)
        return token

    def pair(self, token: str) -> tuple[str, Login] | None:
        """Spend a pairing token; returns the new session's cookie value and login."""
        entry = self.store.take_pairing(_hash(token))
        if entry is None:
            return None
        role, name = entry["role"], entry["name"]
        if datetime.now().astimezone() > datetime.fromisoformat(entry["expires_at"]):
            return None
        session = secrets.token_urlsafe(32)
        csrf = secrets.token_urlsafe(24)
        until = (datetime.now().astimezone() + SESSION_TTL).isoformat()
        self.store.add_web_session(_hash(session), role, name, csrf, until)
        self.store.audit(name, "device paired", {"role": role})
        return session, Login(role, name, csrf)

    def login(self, cookie: str | None) -> Login | None:
        """The login a session cookie stands for, if valid."""
        if not cookie:
            return None
        row = self.store.web_session(_hash(cookie))
        if row is None:
            return None
        if datetime.fromisoformat(row["expires_at"]) < datetime.now().astimezone():
            self.store.drop_web_session(_hash(cookie))
            return None
        return Login(row["role"], row["name"], row["csrf"])

    def logout(self, cookie: str) -> None:
        """End a session."""
        self.store.drop_web_session(_hash(cookie))

    @staticmethod
    def csrf_ok(login: Login, header: str | None) -> bool:
        """The write carries the session's CSRF token."""
        return header is not None and hmac.compare_digest(login.csrf, header)

    # -- the owner's PIN -------------------------------------------------------------------

    def set_pin(self, pin: str, by: str) -> None:
        """Set the owner's PIN (4-12 digits), stored as an argon2 hash (the CLI: it blocks)."""
        self.valid_pin(pin)
        self.store.set_setting(self.station, PIN_KEY, self._hasher.hash(pin))
        self.store.audit(by, "owner PIN set", {})

    @staticmethod
    def valid_pin(pin: str) -> None:
        """Refuse a PIN that is not 4-12 digits (ValueError naming the rule)."""
        if not (pin.isascii() and pin.isdigit() and 4 <= len(pin) <= 12):
            raise ValueError("the PIN is 4 to 12 digits")

    def pin_set(self) -> bool:
        """Whether the owner has set a PIN."""
        return isinstance(self.store.setting(self.station, PIN_KEY), str)

    async def check_pin(self, pin: str | None, client: str) -> bool:
        """Whether ``pin`` is the owner's PIN; a wrong or missing one counts against
        ``client``. Raises :class:`TooManyTries` while the client (or everyone) must wait,
        before any hashing is spent."""
        wait_s = self.pin_tries.wait_s(client, self.clock())
        if wait_s > 0:
            raise TooManyTries(wait_s)
        stored: Any = self.store.setting(self.station, PIN_KEY)
        ok = await HASHING.verify(stored if isinstance(stored, str) else None, pin or "")
        if ok:
            self.pin_tries.succeeded(client)
        else:
            self.pin_tries.failed(client, self.clock())
        return ok

    async def change_pin(self, old: str | None, new: str, by: str, client: str) -> bool:
        """Set the PIN (no PIN yet) or change it (``old`` must be the current one); False
        when ``old`` is wrong. The new PIN is hashed off the event loop."""
        self.valid_pin(new)
        if self.pin_set() and not await self.check_pin(old, client):
            return False
        self.store.set_setting(self.station, PIN_KEY, await HASHING.hash(new))
        self.store.audit(by, "owner PIN set", {})
        return True
