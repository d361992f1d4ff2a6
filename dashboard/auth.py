"""Access to the dashboard: one-time pairing tokens, login sessions, CSRF, roles, the PIN.

No default password anywhere. ``spotter run`` prints a pairing URL with a one-time token;
opening it sets an HttpOnly, SameSite=Strict session cookie (Secure over HTTPS and on
localhost). Every API call needs that session; every write also needs the session's CSRF
token in the ``X-CSRF-Token`` header. Sessions live in the store (hashed), so a restarted
station does not log the spotter's phone out.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from monitor.store import Store

COOKIE = "spotter_session"
CSRF_HEADER = "X-CSRF-Token"
PAIR_TTL = timedelta(minutes=15)
SESSION_TTL = timedelta(days=30)
ROLES = ("viewer", "user", "clinician", "owner")
PIN_KEY = "owner_pin"


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class Login:
    """Who is calling."""

    role: str
    name: str
    csrf: str


class Access:
    """Pairing tokens (one-time) and sessions, both kept hashed in the store."""

    def __init__(self, store: Store, station: str) -> None:
        self.store = store
        self.station = station
        self._hasher = PasswordHasher()

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
        """Set the owner's PIN (4-12 digits), stored as an argon2 hash."""
        if not (pin.isdigit() and 4 <= len(pin) <= 12):
            raise ValueError("the PIN is 4 to 12 digits")
        self.store.set_setting(self.station, PIN_KEY, self._hasher.hash(pin))
        self.store.audit(by, "owner PIN set", {})

    def pin_ok(self, pin: str | None) -> bool:
        """Whether ``pin`` is the owner's PIN (False when none is set)."""
        stored: Any = self.store.setting(self.station, PIN_KEY)
        if not pin or not isinstance(stored, str):
            return False
        try:
            return self._hasher.verify(stored, pin)
        except (VerificationError, InvalidHashError):
            return False
