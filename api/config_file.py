"""The configuration file: every `CITYGRID_*` setting as a TOML key, the environment winning.

The file named by `CITYGRID_CONFIG` holds flat keys named like the variables without their
prefix (`CITYGRID_DATABASE_URL` is `database_url`). Every settings class derives from
`CitygridSettings`, which reads the file when the class is constructed; the commented file that
`citygrid init` writes is generated from the same classes.
"""

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, SecretStr
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from layers.errors import ConfigError

CONFIG_ENV = "CITYGRID_CONFIG"
PREFIX = "citygrid_"


def config_path() -> Path | None:
    """The configuration file named by CITYGRID_CONFIG, if any."""
    named = os.environ.get(CONFIG_ENV)
    return Path(named) if named else None


def config_key(settings_cls: type[BaseSettings], name: str, field: FieldInfo) -> str:
    """The file's key of a field: its environment variable, lower case, without `CITYGRID_`."""
    alias = field.validation_alias
    prefix = str(settings_cls.model_config.get("env_prefix", ""))
    full = alias if isinstance(alias, str) else prefix + name
    return full.lower().removeprefix(PREFIX)


def settings_classes() -> list[type[CitygridSettings]]:
    """Every settings class, in the order they were defined."""
    found: list[type[CitygridSettings]] = []

    def walk(cls: type[CitygridSettings]) -> None:
        for sub in cls.__subclasses__():
            if sub not in found:
                found.append(sub)
            walk(sub)

    walk(CitygridSettings)
    return found


def _fields(cls: type[BaseSettings]) -> Iterator[tuple[str, str, FieldInfo]]:
    for name, field in cls.model_fields.items():
        yield config_key(cls, name, field), name, field


def known_keys() -> set[str]:
    """The keys a configuration file may hold."""
    return {key for cls in settings_classes() for key, _, _ in _fields(cls)}


def read_config(path: Path) -> dict[str, Any]:
    """The keys of a configuration file, refusing a missing or unreadable file and unknown keys."""
    try:
        values = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(
            f"The configuration file {path} does not exist (named by {CONFIG_ENV} or --config).",
            f"配置文件 {path} 不存在（由 {CONFIG_ENV} 或 --config 指定）。",
        ) from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(
            f"The configuration file {path} cannot be read: {exc}",
            f"无法读取配置文件 {path}：{exc}",
        ) from None
    lowered = {str(k).lower(): v for k, v in values.items()}
    unknown = sorted(set(lowered) - known_keys())
    if unknown:
        names = ", ".join(unknown)
        raise ConfigError(
            f"The configuration file {path} has unknown settings: {names}",
            f"配置文件 {path} 含有未知的设置项：{names}",
            unknown=unknown,
        )
    return lowered


class ConfigFileSource(PydanticBaseSettingsSource):
    """The fields of one settings class found in the configuration file."""

    def __init__(self, settings_cls: type[BaseSettings], values: Mapping[str, Any]) -> None:
        super().__init__(settings_cls)
        self.values = values

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        """Unused: the whole class is read at once by `__call__`."""
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        """The class's values from the file, keyed as the class validates them."""
        found: dict[str, Any] = {}
        for key, name, field in _fields(self.settings_cls):
            if key in self.values:
                alias = field.validation_alias
                found[alias if isinstance(alias, str) else name] = self.values[key]
        return found


class CitygridSettings(BaseSettings):
    """Base of every settings class: `CITYGRID_*` variables first, then the configuration file."""

    model_config = SettingsConfigDict(env_prefix="CITYGRID_", extra="ignore")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Arguments, then the environment, then the file named by CITYGRID_CONFIG."""
        named = config_path()
        values = read_config(named) if named else {}
        return (
            init_settings,
            env_settings,
            dotenv_settings,
            ConfigFileSource(settings_cls, values),
            file_secret_settings,
        )


def _toml_value(value: object) -> str:
    if isinstance(value, SecretStr):
        value = value.get_secret_value()
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    # A JSON string is a valid TOML basic string (the same escapes).
    return json.dumps(str(value), ensure_ascii=False)


def _describe(field: FieldInfo) -> str:
    if field.description:
        return field.description
    kind = field.annotation
    return getattr(kind, "__name__", None) or str(kind)


HEADER = """\
# citygrid configuration. Every key is a CITYGRID_* environment variable without its prefix
# (CITYGRID_DATABASE_URL is database_url); a variable set in the environment wins over the file.
# Commands read this file when CITYGRID_CONFIG names it, or when given --config.
# A commented key shows its default; remove the "# " to change it. Unknown keys are refused.
# Keep this file readable by the service's user only: it holds the token signing key.
"""


def render_config(filled: Mapping[str, object]) -> str:
    """The commented configuration file: every setting with its default, `filled` ones set."""
    lines = [HEADER]
    seen: set[str] = set()
    for cls in settings_classes():
        fields = [f for f in _fields(cls) if f[0] not in seen]
        if not fields:
            continue
        doc = (cls.__doc__ or cls.__name__).strip().splitlines()[0]
        lines.append(f"\n# ---- {doc} ----")
        for key, _, field in fields:
            seen.add(key)
            lines.append(f"\n# {_describe(field)}")
            lines.append(f"# (CITYGRID_{key.upper()})")
            if key in filled:
                lines.append(f"{key} = {_toml_value(filled[key])}")
                continue
            default = field.get_default(call_default_factory=True)
            if default is None or default is PydanticUndefined:
                lines.append(f"# {key} =   (unset)")
            elif isinstance(default, BaseModel):
                lines.append(f"# {key} = {_toml_value(default.model_dump_json())}")
            else:
                lines.append(f"# {key} = {_toml_value(default)}")
    return "\n".join(lines) + "\n"


def write_private(path: Path, content: str) -> None:
    """Write `content` to a new file readable and writable by its owner only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(content)
