"""Profiles of real sensor models, written from public evidence (one TOML file per model).

A profile says what a device is as a central sees it: the name it advertises and the
services in its advertisement, its whole GATT table (services, characteristics with their
properties, descriptors and static values), how often it notifies, and its quirks. Each file
cites its sources in its header comment. The simulated peripherals
(:mod:`firmware_sim.peripherals`) are built from these profiles, and ``spotter scan``
recognises models by them; ``spotter sensors capture`` writes a real device's table in the
same format (:func:`render_profile`), so a user can contribute a profile for a new device.

This package imports nothing from ``monitor``: a simulated device must be a copy of a real
one, never of the product's own constants (a test checks it).
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEVICES_DIR = Path(__file__).parent
PROPERTIES = frozenset(
    {
        "broadcast",
        "read",
        "write-without-response",
        "write",
        "notify",
        "indicate",
        "authenticated-signed-writes",
        "extended-properties",
    }
)
"""Characteristic properties, spelled as bleak (and BlueZ) spell them."""
CCCD = "00002902-0000-1000-8000-00805f9b34fb"
STACK_SERVICES = frozenset(
    {"00001800-0000-1000-8000-00805f9b34fb", "00001801-0000-1000-8000-00805f9b34fb"}
)
"""Generic Access and Generic Attribute: the Bluetooth stack owns them, not the device's
firmware, so profiles leave them out and the simulator's stack provides its own."""
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_PROFILE_KEYS = {
    "model",
    "vendor",
    "kind",
    "default_name",
    "name_pattern",
    "advertised_services",
    "stream",
    "notify_rate_hz",
    "max_centrals",
    "quirks",
    "services",
}


class ProfileError(ValueError):
    """A profile file that breaks the format; the message names the file and the field."""


def _uuid(text: object, where: str) -> str:
    if not isinstance(text, str) or not _UUID.match(text.lower()):
        raise ProfileError(f"{where}: {text!r} is not a 128-bit UUID string")
    return text.lower()


@dataclass(frozen=True, slots=True)
class CharacteristicProfile:
    """One characteristic: its UUID, properties, descriptors and static value (if any)."""

    uuid: str
    properties: tuple[str, ...]
    descriptors: tuple[str, ...] = ()
    value: bytes | None = None
    """The value a read returns when it is fixed (Device Information strings and the like)."""


@dataclass(frozen=True, slots=True)
class ServiceProfile:
    """One primary service and its characteristics, in the device's order."""

    uuid: str
    characteristics: tuple[CharacteristicProfile, ...]


@dataclass(frozen=True, slots=True)
class DeviceProfile:
    """A real device model as a central sees it."""

    model: str
    services: tuple[ServiceProfile, ...]
    vendor: str = ""
    kind: str | None = None
    """The Spotter protocol it speaks (``heart_rate``, ``spotter_tilt``, ``witmotion``)."""
    default_name: str = ""
    name_pattern: str | None = None
    advertised_services: tuple[str, ...] = ()
    stream: str | None = None
    """The characteristic whose notifications carry the readings."""
    notify_rate_hz: float | None = None
    max_centrals: int = 1
    quirks: Mapping[str, Any] = field(default_factory=dict)
    source: str = ""
    """The file the profile came from."""

    def characteristic(self, uuid: str) -> CharacteristicProfile | None:
        """The characteristic with this UUID, if the device has it."""
        uuid = uuid.lower()
        for service in self.services:
            for char in service.characteristics:
                if char.uuid == uuid:
                    return char
        return None

    def has_service(self, uuid: str) -> bool:
        """True when the device serves this service."""
        return any(s.uuid == uuid.lower() for s in self.services)

    def matches(self, name: str | None, service_uuids: Iterable[str]) -> bool:
        """True when an advertisement (local name, service UUIDs) is this model's.

        The name pattern decides when the profile has one and the device sent a name;
        otherwise every advertised service of the profile must be in the advertisement.
        """
        if self.name_pattern is not None and name:
            return re.search(self.name_pattern, name) is not None
        advertised = {u.lower() for u in service_uuids}
        return bool(self.advertised_services) and set(self.advertised_services) <= advertised

    def table(self) -> list[tuple[str, list[tuple[str, tuple[str, ...], tuple[str, ...]]]]]:
        """The GATT table without values: (service, [(characteristic, properties,
        descriptors)]), the part a capture of a simulated device must reproduce exactly."""
        return [
            (
                s.uuid,
                [(c.uuid, tuple(sorted(c.properties)), c.descriptors) for c in s.characteristics],
            )
            for s in self.services
        ]


def _characteristic(raw: object, where: str) -> CharacteristicProfile:
    if not isinstance(raw, dict):
        raise ProfileError(f"{where}: a characteristic must be a table")
    unknown = set(raw) - {"uuid", "properties", "descriptors", "value", "value_hex"}
    if unknown:
        raise ProfileError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
    uuid = _uuid(raw.get("uuid"), f"{where}.uuid")
    properties = raw.get("properties", [])
    if not isinstance(properties, list) or not properties:
        raise ProfileError(f"{where}.properties: a non-empty list of properties is required")
    bad = [p for p in properties if p not in PROPERTIES]
    if bad:
        raise ProfileError(f"{where}.properties: unknown {bad} (known: {sorted(PROPERTIES)})")
    descriptors = tuple(_uuid(d, f"{where}.descriptors") for d in raw.get("descriptors", []))
    if ("notify" in properties or "indicate" in properties) and CCCD not in descriptors:
        raise ProfileError(f"{where}: a notify/indicate characteristic has a CCCD (0x2902)")
    value: bytes | None = None
    if "value" in raw and "value_hex" in raw:
        raise ProfileError(f"{where}: give value or value_hex, not both")
    if "value" in raw:
        if not isinstance(raw["value"], str):
            raise ProfileError(f"{where}.value: a string (UTF-8) is required")
        value = raw["value"].encode()
    elif "value_hex" in raw:
        try:
            value = bytes.fromhex(str(raw["value_hex"]))
        except ValueError:
            raise ProfileError(f"{where}.value_hex: {raw['value_hex']!r} is not hex") from None
    return CharacteristicProfile(uuid, tuple(properties), descriptors, value)


def parse_profile(raw: Mapping[str, Any], source: str = "<profile>") -> DeviceProfile:
    """A profile from its TOML data; errors name ``source`` and the field."""
    unknown = set(raw) - _PROFILE_KEYS
    if unknown:
        raise ProfileError(f"{source}: unknown key(s) {', '.join(sorted(unknown))}")
    model = raw.get("model")
    if not isinstance(model, str) or not model:
        raise ProfileError(f"{source}: model (a non-empty string) is required")
    services_raw = raw.get("services", [])
    if not isinstance(services_raw, list):
        raise ProfileError(f"{source}: services must be an array of tables")
    services = []
    for i, s in enumerate(services_raw):
        where = f"{source}: services[{i}]"
        if not isinstance(s, dict):
            raise ProfileError(f"{where}: a service must be a table")
        chars = tuple(
            _characteristic(c, f"{where}.characteristics[{j}]")
            for j, c in enumerate(s.get("characteristics", []))
        )
        services.append(ServiceProfile(_uuid(s.get("uuid"), f"{where}.uuid"), chars))
    pattern = raw.get("name_pattern")
    if pattern is not None:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ProfileError(f"{source}: name_pattern {pattern!r}: {exc}") from None
    profile = DeviceProfile(
        model=model,
        services=tuple(services),
        vendor=str(raw.get("vendor", "")),
        kind=raw.get("kind"),
        default_name=str(raw.get("default_name", "")),
        name_pattern=pattern,
        advertised_services=tuple(
            _uuid(u, f"{source}: advertised_services") for u in raw.get("advertised_services", [])
        ),
        stream=None if raw.get("stream") is None else _uuid(raw["stream"], f"{source}: stream"),
        notify_rate_hz=raw.get("notify_rate_hz"),
        max_centrals=int(raw.get("max_centrals", 1)),
        quirks=dict(raw.get("quirks", {})),
        source=source,
    )
    if profile.stream is not None and profile.characteristic(profile.stream) is None:
        raise ProfileError(f"{source}: stream {profile.stream} is not in the GATT table")
    missing = [u for u in profile.advertised_services if not profile.has_service(u)]
    if missing:
        raise ProfileError(f"{source}: advertised service(s) {missing} not in the GATT table")
    return profile


def load_profile(path: str | Path) -> DeviceProfile:
    """Read one profile file."""
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            raw = tomllib.load(fh)
    except OSError as exc:
        raise ProfileError(f"{path}: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ProfileError(f"{path}: {exc}") from None
    return parse_profile(raw, str(path))


def builtin_names() -> list[str]:
    """The shipped profiles' names (file stems), sorted."""
    return sorted(p.stem for p in DEVICES_DIR.glob("*.toml"))


def builtin(name: str) -> DeviceProfile:
    """A shipped profile by name (``polar_h10``, ``witmotion_bwt901ble5``, ...)."""
    path = DEVICES_DIR / f"{name}.toml"
    if not path.is_file():
        raise ProfileError(f"no device profile {name!r} (known: {', '.join(builtin_names())})")
    return load_profile(path)


def builtin_profiles() -> dict[str, DeviceProfile]:
    """Every shipped profile, by name."""
    return {name: builtin(name) for name in builtin_names()}


DEFAULT_FOR_KIND = {
    "heart_rate": "polar_h10",
    "spotter_tilt": "spotter_tilt",
    "witmotion": "witmotion_bwt901ble5",
}
"""The profile a simulated sensor of each Spotter kind uses unless told otherwise."""


def recognise(
    name: str | None, service_uuids: Sequence[str], profiles: Mapping[str, DeviceProfile]
) -> tuple[str, DeviceProfile] | None:
    """Which shipped profile an advertisement belongs to (first by name, then by services)."""
    named = [(n, p) for n, p in profiles.items() if p.name_pattern and name]
    for n, p in named:
        if p.matches(name, service_uuids):
            return n, p
    for n, p in profiles.items():
        if p.advertised_services and set(p.advertised_services) <= {
            u.lower() for u in service_uuids
        }:
            return n, p
    return None


def _toml_str(text: str) -> str:
    out = text.replace("\\", "\\\\").replace('"', '\\"')
    out = "".join(c if c.isprintable() else f"\\u{ord(c):04x}" for c in out)
    return f'"{out}"'


def _value_line(value: bytes) -> str:
    try:
        text = value.decode()
    except UnicodeDecodeError:
        text = None
    if text is not None and text and text.isprintable():
        return f"value = {_toml_str(text)}"
    return f'value_hex = "{value.hex()}"'


def render_profile(profile: DeviceProfile, header: Sequence[str] = ()) -> str:
    """The profile as a TOML file (the format this package reads), with ``header`` lines as
    its opening comment (a capture says where and when it was taken)."""
    lines = [f"# {h}" if h else "#" for h in header]
    if lines:
        lines.append("")
    lines.append(f"model = {_toml_str(profile.model)}")
    if profile.vendor:
        lines.append(f"vendor = {_toml_str(profile.vendor)}")
    if profile.kind:
        lines.append(f"kind = {_toml_str(profile.kind)}")
    if profile.default_name:
        lines.append(f"default_name = {_toml_str(profile.default_name)}")
    if profile.name_pattern:
        lines.append(f"name_pattern = {_toml_str(profile.name_pattern)}")
    if profile.advertised_services:
        listed = ", ".join(_toml_str(u) for u in profile.advertised_services)
        lines.append(f"advertised_services = [{listed}]")
    if profile.stream:
        lines.append(f"stream = {_toml_str(profile.stream)}")
    if profile.notify_rate_hz is not None:
        lines.append(f"notify_rate_hz = {profile.notify_rate_hz}")
    for service in profile.services:
        lines += ["", "[[services]]", f"uuid = {_toml_str(service.uuid)}"]
        for char in service.characteristics:
            lines += ["", "[[services.characteristics]]", f"uuid = {_toml_str(char.uuid)}"]
            lines.append(f"properties = [{', '.join(_toml_str(p) for p in char.properties)}]")
            if char.descriptors:
                lines.append(f"descriptors = [{', '.join(_toml_str(d) for d in char.descriptors)}]")
            if char.value is not None:
                lines.append(_value_line(char.value))
    return "\n".join(lines) + "\n"


__all__ = [
    "CCCD",
    "DEFAULT_FOR_KIND",
    "STACK_SERVICES",
    "CharacteristicProfile",
    "DeviceProfile",
    "ProfileError",
    "ServiceProfile",
    "builtin",
    "builtin_names",
    "builtin_profiles",
    "load_profile",
    "parse_profile",
    "recognise",
    "render_profile",
]
