"""The app's own settings (model folder, device, theme), stored in the database as versioned JSON."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from desktop.database import Database
from desktop.paths import BUNDLED_MODEL

# the runtime choices are the engine's, offered as they are
from engine.api import BACKENDS, DEVICES, MEMORY_MODES, PRECISIONS, RuntimeRequest

SETTINGS_KEY = "app_settings"
SETTINGS_VERSION = 1

THEMES = ("system", "light", "dark")


@dataclass(frozen=True)
class AppSettings:
    model_dir: str = str(BUNDLED_MODEL)  # the folder loaded at start
    device: str = "auto"  # see engine.api.RuntimeRequest
    precision: str = "auto"
    backend: str = RuntimeRequest.backend  # "auto": compiled on CUDA, else eager
    memory: str = RuntimeRequest.memory  # "auto": the engine picks what fits the device
    theme: str = "system"  # "system" follows the desktop's light/dark setting

    def __post_init__(self) -> None:
        for name, allowed in (
            ("device", DEVICES),
            ("precision", PRECISIONS),
            ("backend", BACKENDS),
            ("memory", MEMORY_MODES),
            ("theme", THEMES),
        ):
            value = getattr(self, name)
            if value not in allowed and not (name == "device" and value.startswith("cuda:")):
                raise ValueError(f"{name} must be one of {allowed}, not {value!r}")

    def runtime(self) -> RuntimeRequest:
        return RuntimeRequest(self.device, self.precision, self.backend, self.memory)

    def replace(self, **changes: Any) -> AppSettings:
        return replace(self, **changes)

    @classmethod
    def load(cls, db: Database) -> AppSettings:
        """The stored settings; defaults for anything missing or no longer valid."""
        data = db.setting(SETTINGS_KEY) or {}
        data = migrate(data)
        known = {f.name for f in fields(cls)}
        settings = cls()
        for key, value in data.items():
            if key in known:
                try:
                    settings = settings.replace(**{key: value})
                except (TypeError, ValueError):
                    continue
        return settings

    def save(self, db: Database) -> None:
        db.set_setting(SETTINGS_KEY, {"version": SETTINGS_VERSION, **asdict(self)})


def migrate(data: dict[str, Any]) -> dict[str, Any]:
    """Bring stored settings to `SETTINGS_VERSION` (version 1 is the first)."""
    data = dict(data)
    data.pop("version", None)
    return data
