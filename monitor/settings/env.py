"""The whole station configuration, ``Settings``: the sections of :mod:`monitor.settings` read
from one TOML file and the environment through pydantic-settings. Its own module so that what
uses only a section does not load pydantic-settings: ``monitor.settings`` imports it on first
use of ``Settings`` (``load_settings``, or the name itself)."""

from __future__ import annotations

from typing import Self

from pydantic import Field, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from monitor.core.sensors import SensorSpec
from monitor.settings import (
    BleConfig,
    DashboardSettings,
    MqttConfig,
    PushConfig,
    SensorConfig,
    SoundConfig,
    StationConfig,
    _default_sensors,
    _toml_path,
)


class Settings(BaseSettings):
    """Everything a station reads at start."""

    model_config = SettingsConfigDict(
        env_prefix="SPOTTER_",
        env_nested_delimiter="__",
        extra="forbid",
        nested_model_default_partial_update=True,
    )

    station: StationConfig = StationConfig()
    ble: BleConfig = BleConfig()
    dashboard: DashboardSettings = DashboardSettings()
    sound: SoundConfig = SoundConfig()
    push: PushConfig = PushConfig()
    mqtt: MqttConfig = MqttConfig()
    sensors: dict[str, SensorConfig] = Field(default_factory=_default_sensors)

    @model_validator(mode="after")
    def _one_of_each(self) -> Self:
        tilts = [n for n, s in self.sensors.items() if s.kind.is_tilt]
        hrs = [n for n, s in self.sensors.items() if not s.kind.is_tilt]
        if len(tilts) > 1 or len(hrs) > 1:
            raise ValueError("sensors: at most one tilt sensor and one heart-rate sensor")
        if not self.sensors:
            raise ValueError("sensors: configure at least one sensor")
        for name, sensor in self.sensors.items():
            try:
                sensor.spec()
            except ValueError as exc:
                raise ValueError(f"sensors.{name}: {exc}") from None
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        path = _toml_path.get()
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if path is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=path))
        return tuple(sources)

    def sensor_specs(self) -> dict[str, SensorSpec]:
        """The core's view of every configured sensor."""
        return {name: s.spec() for name, s in self.sensors.items()}
