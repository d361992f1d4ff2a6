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

from dashboard import pairing_store
from dashboard.limiter import Limiter
from monitor.store.station_store import Store
from monitor.store.writer import InlineWriter, Writer

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
    """Pairing tokens (one-time) and sessions, both kept hashed in the store.

    Reads (is this cookie a session?) use ``store``, the caller's connection (WAL: never
    waiting on the writer); every write goes through ``writer``, on a running station the
    writer thread, so a login waits on a slow disk but the safety loop does not."""

    def __init__(
        self,
        store: Store,
        station: str,
        clock: Callable[[], float] = time.monotonic,
        writer: Writer | None = None,
    ) -> None:
        self.store = store
        self.station = station
        self.clock = clock
        """The monotonic clock the PIN's back-off is judged on (a test passes its own)."""
        self.writer: Writer = writer if writer is not None else InlineWriter(store)
        self._hasher = PasswordHasher()
        self.pin_tries = Limiter()
        """Wrong PINs per client and overall (back-off, see :class:`Limiter`)."""

    def _pairing(self, role: str, name: str) -> tuple[str, Callable[[Store], None]]:
        """A new one-time token and the write that keeps its hash (valid for 15 minutes)."""
        if role not in ROLES:
            raise ValueError(f"role must be one of {', '.join(ROLES)}")
        token = secrets.token_urlsafe(24)
        until = (datetime.now().astimezone() + PAIR_TTL).isoformat()
        hashed = _hash(token)
        return token, lambda store: pairing_store.add_pairing(store, hashed, role, name, until)

    def new_pairing(self, role: str = "owner", name: str = "owner") -> str:
        """A one-time token to put in a pairing URL, its row queued for the writer and not
        waited for (the URL ``spotter run`` prints): :meth:`pair` spends it in a later job of
        the same writer, so it finds it; a failed write is the writer's (logged, a station
        problem)."""
        token, job = self._pairing(role, name)
        self.writer.submit(job)
        return token

    async def pairing(self, role: str = "owner", name: str = "owner") -> str:
        """A one-time token, returned once its row is committed (the dashboard's "pair another
        device": a full disk is the caller's error, not a URL that cannot work)."""
        token, job = self._pairing(role, name)
        await self.writer.run(job)
        return token

    async def pair(self, token: str) -> tuple[str, Login] | None:
        """Spend a pairing token; returns the new session's cookie value and login (once the
        session is committed, so the cookie works at once)."""
        hashed = _hash(token)
        session = secrets.token_urlsafe(32)
        csrf = secrets.token_urlsafe(24)

        def job(store: Store) -> Login | None:
            entry = pairing_store.take_pairing(store, hashed)
            if entry is None:
                return None
            role, name = entry["role"], entry["name"]
            now = datetime.now().astimezone()
            if now > datetime.fromisoformat(entry["expires_at"]):
                return None
            until = (now + SESSION_TTL).isoformat()
            pairing_store.add_web_session(store, _hash(session), role, name, csrf, until)
            store.audit(name, "device paired", {"role": role})
            return Login(role, name, csrf)

        login = await self.writer.run(job)
        return None if login is None else (session, login)

    def login(self, cookie: str | None) -> Login | None:
        """The login a session cookie stands for, if valid (an expired one is deleted: queued,
        not waited for)."""
        if not cookie:
            return None
        row = pairing_store.web_session(self.store, _hash(cookie))
        if row is None:
            return None
        if datetime.fromisoformat(row["expires_at"]) < datetime.now().astimezone():
            hashed = _hash(cookie)
            self.writer.submit(lambda store: pairing_store.drop_web_session(store, hashed))
            return None
        return Login(row["role"], row["name"], row["csrf"])

    async def logout(self, cookie: str) -> None:
        """End a session (once its deletion is committed)."""
        hashed = _hash(cookie)
        await self.writer.run(lambda store: pairing_store.drop_web_session(store, hashed))

    @staticmethod
    def csrf_ok(login: Login, header: str | None) -> bool:
        """The write carries the session's CSRF token."""
        return header is not None and hmac.compare_digest(login.csrf, header)

    # -- the owner's PIN -------------------------------------------------------------------

    def set_pin(self, pin: str, by: str) -> None:
        """Set the owner's PIN (4-12 digits), stored as an argon2 hash (the CLI: it blocks)."""
        self.valid_pin(pin)
        hashed = self._hasher.hash(pin)
        self.writer.submit(lambda store: self._pin_job(store, hashed, by))

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
        hashed = await HASHING.hash(new)
        await self.writer.run(lambda store: self._pin_job(store, hashed, by))
        return True

    def _pin_job(self, store: Store, hashed: str, by: str) -> None:
        """Write: the PIN's new hash and its audit line, together."""
        store.set_setting(self.station, PIN_KEY, hashed)
        store.audit(by, "owner PIN set", {})
