"""``spotter hub``'s configuration: the ``[hub]``, ``[mqtt]`` and ``[escalation]`` tables of its
TOML file, and where they come from (the file, then the environment for secrets). A leaf:
loading settings opens no connection (the store is opened by :meth:`HubSettings.open_store`).
"""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from dashboard.clinic.core import LINK_TIMEOUT_S
from monitor.core import validation
from monitor.settings import MqttConfig

if TYPE_CHECKING:
    from dashboard.clinic.store import HubStore

STATE_RATE_PER_S = 20.0
"""A station's ``state`` (and ``status``, ``cmd/reply``) messages beyond this rate are dropped
before parsing (counted): a station publishes its state on change and every second. Alarm
events are never rate-limited (each one matters, and a reconnecting station sends its
backlog at once)."""


class HubConfigError(ValueError):
    """A hub configuration that cannot be used; names the file and the key."""


class HubSection(BaseModel):
    """The ``[hub]`` table."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(default="clinic", min_length=1)
    data_dir: Path = Path("~/.local/share/spotter-hub")
    host: str = "127.0.0.1"
    port: int = Field(default=8100, ge=0, le=65535)
    link_timeout_s: float = Field(default=LINK_TIMEOUT_S, gt=0, le=60)
    public_url: str | None = None
    """How therapists' phones reach the hub page (put in escalation messages)."""
    state_rate_per_s: float = Field(default=STATE_RATE_PER_S, gt=0, le=10_000)
    """A station's ``state``/``status``/``cmd/reply`` messages beyond this rate (bursts of
    three seconds' worth) are dropped unread, and a station flooding its state is not
    listened to for ``MUTE_S``."""
    database: SecretStr | None = None
    """``postgresql://user:password@host:port/db``: the store every replica shares; None: the
    SQLite file ``data_dir/hub.db`` (one hub)."""
    replica: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_-]{1,32}$")
    """This replica's name among several ``spotter hub`` of one clinic (part of its MQTT
    client id, and of who claimed an escalation step); None: one hub."""
    share: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_-]{1,32}$")
    """Take alarm events through the MQTT v5 shared subscription ``$share/{share}/...``, so
    each is handled by one replica (status and state still reach every replica)."""
    sites: bool = False
    """A clinic group's central hub: also read every site's bridged stations
    (``sites/{site}/spotter/v1/...``) and each bridge's up/down notification."""

    @field_validator("database")
    @classmethod
    def _postgresql_only(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not re.match(r"^postgres(ql)?://", value.get_secret_value()):
            raise ValueError("a postgresql:// URL (leave it out for the SQLite file)")
        return value


class EscalationSection(BaseModel):
    """The ``[escalation]`` table."""

    model_config = ConfigDict(extra="forbid")

    accept_within_s: float = Field(default=30.0, gt=0, le=600)
    repeat_s: float = Field(default=60.0, gt=0, le=600)
    medium_after_s: float = Field(default=30.0, gt=0, le=600)


class HubSettings(BaseModel):
    """Everything ``spotter hub`` reads."""

    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    hub: HubSection = HubSection()
    mqtt: MqttConfig = MqttConfig(enabled=True, username="hub")
    escalation: EscalationSection = EscalationSection()

    @property
    def store_path(self) -> Path:
        """The hub's SQLite file."""
        return self.hub.data_dir.expanduser() / "hub.db"

    def open_store(self) -> HubStore:
        """The store ``[hub] database`` names (PostgreSQL), else the SQLite file."""
        from dashboard.clinic.pg import open_hub_store

        database = self.hub.database
        return open_hub_store(
            None if database is None else database.get_secret_value(), self.store_path
        )


def load_hub_settings(path: str | Path | None) -> HubSettings:
    """The hub's TOML file (None: defaults); errors name the file and every bad key.

    ``$SPOTTER_MQTT__PASSWORD`` gives the broker password when the file does not, and
    ``$SPOTTER_HUB__DATABASE`` the PostgreSQL URL (it may hold a password).
    """
    settings = _load_hub_file(path)
    secret = os.environ.get("SPOTTER_MQTT__PASSWORD")
    if settings.mqtt.password is None and secret:
        settings.mqtt.password = SecretStr(secret)
    database = os.environ.get("SPOTTER_HUB__DATABASE")
    if settings.hub.database is None and database:
        try:
            settings.hub.database = HubSection._postgresql_only(SecretStr(database))
        except ValueError as exc:
            raise HubConfigError(f"$SPOTTER_HUB__DATABASE: {exc}") from None
    return settings


def _load_hub_file(path: str | Path | None) -> HubSettings:
    if path is None:
        return HubSettings()
    file = Path(path).expanduser()
    try:
        data = tomllib.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise HubConfigError(f"{file}: no such file") from None
    except tomllib.TOMLDecodeError as exc:
        raise HubConfigError(f"{file}: not valid TOML: {exc}") from None
    try:
        return HubSettings.model_validate(data)
    except ValidationError as exc:
        found = validation.problems(exc, "")
        raise HubConfigError(f"{file}: " + "; ".join(found)) from None
