"""Station configuration: one TOML file plus environment variables (pydantic-settings).

Environment variables override the file: ``SPOTTER_BLE__BACKEND=sim`` sets ``[ble] backend``.
An unknown key or an impossible value is an error that names the key and the file.
"""

from __future__ import annotations

import difflib
import os
import re
import ssl
import tomllib
from contextvars import ContextVar
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from monitor.core import validation
from monitor.core.alarms import Priority
from monitor.core.profiles import (
    BUILTIN,
    DEFAULT_PROFILE,
    Profile,
    ProfileError,
    is_name,
    profile_from_text,
    profile_from_toml,
)
from monitor.core.sensors import AXIS_SYNONYMS, Calibration, SensorKind, SensorSpec

if TYPE_CHECKING:
    from monitor.settings.env import Settings as Settings

ENV_CONFIG = "SPOTTER_CONFIG"
SIM_STORE = "sim.db"
"""Simulated runs (``--sim``, the demo) keep their own store in the data folder, beside
``spotter.db``, so practice never mixes into the station's real history."""
DEFAULT_CONFIG = Path("~/.config/spotter/spotter.toml")
_toml_path: ContextVar[Path | None] = ContextVar("spotter_toml_path", default=None)


DISCOVERY_PREFIX = "homeassistant"
"""Home Assistant's default MQTT discovery prefix."""
HIGH_VOLUME_FLOOR = 0.5
"""The lowest ``min_high_volume`` a configuration may set."""

_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*")
_HOST_PORT = re.compile(r"(?P<host>\[[0-9A-Fa-f:.]+\]|[^:@]*)(?::(?P<port>\d{1,5}))?")
_HOSTNAME = re.compile(
    r"localhost|\d{1,3}(?:\.\d{1,3}){3}|\[[0-9A-Fa-f:.]+\]|(?:[A-Za-z0-9-]+\.)+[A-Za-z]{2,}"
)


def redact(url: str) -> str:
    """A push URL with its secrets hidden: scheme, host and port only.

    Apprise URLs keep tokens in the user, the password, the path, the query and often in the
    "host" itself (``tgram://TOKEN/CHAT``), so anything that does not look like a host name
    or an IP address is replaced by ``***``.
    """
    scheme, sep, rest = url.partition("://")
    if not sep or not _SCHEME.fullmatch(scheme):
        return "***"
    rest = re.split(r"[?#]", rest, maxsplit=1)[0]
    netloc, _, path = rest.partition("/")
    _, at, host_port = netloc.rpartition("@")
    m = _HOST_PORT.fullmatch(host_port)
    if m is not None and _HOSTNAME.fullmatch(m["host"]):
        where = m["host"] + (f":{m['port']}" if m["port"] else "")
    else:
        where = "***"
    return f"{scheme}://{'***@' if at else ''}{where}{'/***' if path.strip('/') else ''}"


class ConfigError(ValueError):
    """A configuration that cannot be used; names the file and every bad key."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class StationConfig(_Section):
    """The station itself."""

    name: str = Field(default="home", min_length=1, pattern=r"^[A-Za-z0-9_-]+$")
    data_dir: Path = Path("~/.local/share/spotter")
    profile: str = DEFAULT_PROFILE
    age: float | None = Field(default=None, gt=0, lt=130)
    trace_retention_days: float | None = Field(default=90, gt=0)
    """Session traces older than this are deleted (None keeps them forever)."""

    @property
    def data_path(self) -> Path:
        """``data_dir`` with ``~`` expanded."""
        return self.data_dir.expanduser()

    @property
    def store_path(self) -> Path:
        """The station's SQLite store."""
        return self.data_path / "spotter.db"

    @property
    def sim_store_path(self) -> Path:
        """The store of simulated runs (``spotter run --sim``, the demo)."""
        return self.data_path / SIM_STORE


class BleConfig(_Section):
    """How the station reaches its sensors."""

    backend: Literal["bleak", "sim"] = "bleak"
    """``bleak``: the platform's Bluetooth (BlueZ on a Raspberry Pi). ``sim``: firmware_sim."""
    sim_hub: str | None = None
    """For ``backend = "sim"``: the virtual radio hub, e.g. ``tcp-client:127.0.0.1:7100``."""
    scan_timeout_s: float = Field(default=5.0, gt=0)
    connect_timeout_s: float = Field(default=10.0, gt=0)
    max_backoff_s: float = Field(default=5.0, gt=0)
    silence_reconnect_s: float = Field(default=5.0, gt=0)
    """A connected sensor silent this long is treated as gone: disconnect and rescan."""

    @model_validator(mode="after")
    def _hub_for_sim(self) -> Self:
        if self.sim_hub is not None and self.backend != "sim":
            raise ValueError("sim_hub is only for backend = 'sim'")
        return self


class CalibrationConfig(_Section):
    """``theta = sign * (sensor_angle - offset_deg)`` on ``axis`` (set by ``spotter calibrate``)."""

    offset_deg: float = Field(default=0.0, ge=-180, le=180)
    sign: Literal[1, -1] = 1
    axis: Literal["x", "y", "z", "pitch"] | None = None


class SensorConfig(_Section):
    """One sensor: its kind and how to find it (address, else name, else its service)."""

    kind: SensorKind
    address: str | None = None
    name: str | None = None
    calibration: CalibrationConfig = CalibrationConfig()

    def spec(self) -> SensorSpec:
        """The core's view of this sensor."""
        if not self.kind.is_tilt:
            return SensorSpec(self.kind)
        c = self.calibration
        axis = c.axis or ("pitch" if self.kind is SensorKind.SPOTTER_TILT else "y")
        if self.kind is SensorKind.SPOTTER_TILT and AXIS_SYNONYMS[axis] != "y":
            raise ValueError("a spotter_tilt sensor has only the pitch axis")
        return SensorSpec(self.kind, Calibration(c.offset_deg, c.sign, axis))


class DashboardSettings(_Section):
    """The web dashboard ``spotter run`` serves."""

    enabled: bool = True
    port: int = Field(default=8000, ge=0, le=65535)
    """0 picks a free port."""
    lan: bool = False
    """False: 127.0.0.1 only. True: every interface, for the phone on the LAN."""
    tls: bool = True
    """With ``lan``: serve HTTPS (the default; the station's own CA unless a certificate is
    given). False: plain HTTP on the LAN, which the log and the page then say at every start."""
    cert_file: Path | None = None
    """A server certificate (PEM, chain included) to serve HTTPS with, on any interface."""
    key_file: Path | None = None
    """The private key of ``cert_file`` (PEM, unencrypted, not readable by others)."""

    @model_validator(mode="after")
    def _cert_with_key(self) -> Self:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("cert_file and key_file go together")
        if self.cert_file is not None and not self.tls:
            raise ValueError("cert_file is set but tls = false")
        return self


class SoundConfig(BaseModel):
    """The ``[sound]`` table: the station's alarm sound."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    """False silences medium and low bursts and the spoken prompts. High-priority bursts still
    sound: high alarms can never be switched off (SPEC section 7)."""
    volume: float = Field(default=0.8, ge=0.0, le=1.0)
    """Loudness of bursts and prompts, as a share of full scale."""
    min_high_volume: float = 0.7
    """High bursts play at ``max(volume, min_high_volume)``; at least ``HIGH_VOLUME_FLOOR``."""
    voice: bool = True
    """Spoken prompts ("Come up slowly", ...) through espeak-ng."""
    device: str | None = Field(default=None, min_length=1)
    """The ALSA device for ``aplay -D`` (e.g. ``plughw:1,0``); None: the default device."""
    command: list[str] = Field(default_factory=lambda: ["aplay", "-q"], min_length=1)
    """The player; the WAV file to play is appended to it."""
    file: Path | None = None
    """Write every burst and prompt into this WAV file (a timeline) instead of playing them."""

    @field_validator("min_high_volume")
    @classmethod
    def _high_floor(cls, value: float) -> float:
        if not HIGH_VOLUME_FLOOR <= value <= 1.0:
            raise ValueError(
                f"must be between {HIGH_VOLUME_FLOOR} and 1: high-priority alarm tones cannot "
                "be turned down further (IEC 60601-1-8)"
            )
        return value

    def volume_of(self, priority: Priority) -> float:
        """The loudness of a burst of ``priority``."""
        if priority is Priority.HIGH:
            return max(self.volume, self.min_high_volume)
        return self.volume


class PushConfig(BaseModel):
    """The ``[push]`` table: where and when alarms are pushed to people's phones."""

    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    enabled: bool = True
    urls: list[SecretStr] = Field(default_factory=list)
    """Apprise URLs (``ntfys://...``, ``tgram://...``, ``json://...``); secrets, never logged."""
    high_repeat_s: float = Field(default=60.0, gt=0, le=60)
    """High alarms are pushed again this often until acknowledged (at most 60 s, SPEC)."""
    medium_after_s: float = Field(default=30.0, ge=0, le=300)
    """A medium alarm is pushed once it has been unacknowledged this long."""
    medium_repeat_s: float = Field(default=60.0, gt=0, le=600)
    """...and again this often while it stays unacknowledged."""
    queue_size: int = Field(default=64, ge=1, le=10_000)
    """Deliveries waiting at most (one per alarm and URL); beyond it the oldest non-high goes."""
    retry_first_s: float = Field(default=2.0, gt=0)
    """The first retry of a failed delivery waits this long; each next one twice as long..."""
    retry_max_s: float = Field(default=60.0, gt=0)
    """...up to this."""

    @field_validator("urls")
    @classmethod
    def _urls_look_like_urls(cls, urls: list[SecretStr]) -> list[SecretStr]:
        for i, url in enumerate(urls):
            if redact(url.get_secret_value()) == "***":
                raise ValueError(f"urls[{i}] is not a URL like ntfys://topic (value hidden)")
        return urls

    def url_values(self) -> list[str]:
        """The URLs themselves (secrets: hand them to apprise only)."""
        return [url.get_secret_value() for url in self.urls]


class MqttConfig(BaseModel):
    """The ``[mqtt]`` table: the clinic broker this station reports to."""

    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    enabled: bool = False
    host: str = Field(default="localhost", min_length=1)
    port: int | None = Field(default=None, ge=1, le=65535)
    """None: 8883 with TLS, 1883 without."""
    username: str | None = None
    """None: the station's name (the broker's ACL gives a station user its own topics)."""
    password: SecretStr | None = None
    """Never logged; ``SPOTTER_MQTT__PASSWORD`` keeps it out of the file."""
    tls: bool = False
    ca_file: Path | None = None
    """The clinic CA (``make-certs.sh`` makes one); None: the system's CAs."""
    cert_file: Path | None = None
    """A client certificate for mutual TLS (optional), with ``key_file``."""
    key_file: Path | None = None
    client_id: str | None = None
    """None: ``spotter-{station}``."""
    keepalive_s: int = Field(default=5, ge=2, le=300)
    """The broker publishes the last will about 1.5 times this after the station goes silent."""
    timeout_s: float = Field(default=5.0, gt=0, le=60)
    """Every network wait (connect, publish acknowledgement, subscribe) ends after this."""
    state_every_s: float = Field(default=1.0, gt=0, le=1.0)
    """The heartbeat: the state is published at least this often (SPEC: every second)."""
    telemetry: bool = True
    telemetry_every_s: float = Field(default=1.0, ge=0.1, le=5.0)
    link_lost_after_s: float = Field(default=5.0, gt=0, le=60)
    """No acknowledgement from the broker this long: the link is lost (SPEC: 5 s)."""
    backoff_min_s: float = Field(default=0.5, gt=0)
    backoff_max_s: float = Field(default=5.0, gt=0)
    discovery: bool = True
    """Home Assistant MQTT discovery for this station."""
    discovery_prefix: str = Field(default=DISCOVERY_PREFIX, min_length=1)

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if not self.tls and any(f is not None for f in (self.ca_file, self.cert_file)):
            raise ValueError("ca_file and cert_file need tls = true")
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("cert_file and key_file go together")
        if self.backoff_max_s < self.backoff_min_s:
            raise ValueError("backoff_max_s must not be below backoff_min_s")
        return self

    @property
    def broker_port(self) -> int:
        """The port to connect to."""
        if self.port is not None:
            return self.port
        return 8883 if self.tls else 1883

    def tls_context(self) -> ssl.SSLContext | None:
        """The TLS context (reads the certificate files), or None without TLS."""
        if not self.tls:
            return None
        context = ssl.create_default_context(cafile=self.ca_file)
        if self.cert_file is not None:
            context.load_cert_chain(self.cert_file, self.key_file)
        return context


def _default_sensors() -> dict[str, SensorConfig]:
    return {
        "tilt": SensorConfig(kind=SensorKind.SPOTTER_TILT),
        "hr": SensorConfig(kind=SensorKind.HEART_RATE),
    }


def config_path(explicit: str | Path | None = None) -> Path | None:
    """The file to read: the one given, else ``$SPOTTER_CONFIG``, else the default if it exists."""
    if explicit is not None:
        return Path(explicit).expanduser()
    env = os.environ.get(ENV_CONFIG)
    if env:
        return Path(env).expanduser()
    default = DEFAULT_CONFIG.expanduser()
    return default if default.exists() else None


def _describe(exc: ValidationError) -> list[str]:
    return validation.problems(exc, "config")


def load_settings(path: str | Path | None = None, **overrides: Any) -> Settings:
    """Read the configuration; raise :class:`ConfigError` listing every bad key."""
    file = config_path(path)
    source = str(file) if file is not None else "defaults and environment"
    if file is not None:
        if not file.exists():
            raise ConfigError(f"{file}: no such configuration file (spotter init writes one)")
        try:
            tomllib.loads(file.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{file}: not valid TOML: {exc}") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{file}: cannot read: {exc}") from None
    from monitor.settings.env import Settings

    token = _toml_path.set(file)
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise ConfigError(f"{source}: " + "; ".join(_describe(exc))) from None
    finally:
        _toml_path.reset(token)


def load_profile(name_or_path: str) -> Profile:
    """A built-in profile by name, or a TOML profile file by path (read here, in the shell;
    :func:`monitor.core.profiles.profile_from_toml` parses it)."""
    if name_or_path in BUILTIN:
        return BUILTIN[name_or_path]
    path = Path(name_or_path)
    if not path.exists():
        known = ", ".join(BUILTIN)
        raise ProfileError(f"{name_or_path}: no such built-in profile ({known}) or file")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ProfileError(f"{path}: cannot read: {exc}") from None
    return profile_from_toml(text, str(path))


def resolve_profile(name_or_path: str, stored: str | None) -> Profile:
    """A built-in profile, a stored one (``stored``: its TOML text), or — only for what is
    not a name, i.e. a path the local command line gave — a TOML file. A name that is
    neither built in nor stored is an error; no file is looked for."""
    if name_or_path in BUILTIN:
        return BUILTIN[name_or_path]
    if stored is not None:
        return profile_from_text(stored, name_or_path)
    if is_name(name_or_path):
        known = ", ".join(BUILTIN)
        raise ProfileError(f"no profile named {name_or_path!r} (built in: {known}, or stored)")
    return load_profile(name_or_path)


def run_problems(settings: Settings) -> list[str]:
    """What ``spotter run`` refuses beyond the keys themselves, each naming its key: the
    profile (a built-in name or a readable profile file), the files the configuration names,
    the data folder. ``spotter config check`` reports the same list."""
    problems: list[str] = []
    profile = settings.station.profile
    try:
        load_profile(profile)
    except ProfileError as exc:
        close = difflib.get_close_matches(profile, list(BUILTIN), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        problems.append(f"station.profile: {exc}{hint}")
    files = {
        "dashboard.cert_file": settings.dashboard.cert_file,
        "dashboard.key_file": settings.dashboard.key_file,
        "mqtt.ca_file": settings.mqtt.ca_file,
        "mqtt.cert_file": settings.mqtt.cert_file,
        "mqtt.key_file": settings.mqtt.key_file,
    }
    for key, file in files.items():
        if file is not None and not file.expanduser().is_file():
            problems.append(f"{key}: {file}: no such file")
    data = settings.station.data_path
    if data.exists() and not data.is_dir():
        problems.append(f"station.data_dir: {data}: not a folder")
    else:
        parent = data
        while not parent.exists() and parent != parent.parent:
            parent = parent.parent
        if not os.access(parent, os.W_OK | os.X_OK):
            problems.append(f"station.data_dir: {parent}: not writable")
    return problems


def __getattr__(name: str) -> Any:
    """``Settings`` is imported on first use: pydantic-settings and the whole file's model
    (about 3 MB) are not needed by what uses only a section (a bench station, the hub link)."""
    if name == "Settings":
        from monitor.settings.env import Settings

        return Settings
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
