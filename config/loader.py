"""Build a `Config` from defaults, a TOML file, environment variables and CLI flags, in that order.

Every value is type-checked and validated by the schema; the first bad one raises
`ConfigError` naming the key, so the server refuses to start instead of half-working.
"""
from __future__ import annotations

import os
import tomllib
from dataclasses import fields, replace
from typing import Any, Mapping

from config.passwords import is_hash
from config.schema import Config, sections

ENV_PREFIX = "HUBCHAT_"


class ConfigError(Exception):
    pass


def _coerce(key: str, kind: type, value: Any, from_text: bool) -> Any:
    if kind is bool:
        if isinstance(value, bool):
            return value
        if from_text and str(value).lower() in ("1", "true", "yes", "on", "0", "false", "no", "off"):
            return str(value).lower() in ("1", "true", "yes", "on")
        raise ConfigError(f"{key}: expected true or false, got {value!r}")
    if kind is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if from_text:
            try:
                return int(str(value))
            except ValueError:
                pass
        raise ConfigError(f"{key}: expected an integer, got {value!r}")
    if kind is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if from_text:
            try:
                return float(str(value))
            except ValueError:
                pass
        raise ConfigError(f"{key}: expected a number, got {value!r}")
    if isinstance(value, str):
        return value
    raise ConfigError(f"{key}: expected a string, got {value!r}")


def _operators(values: Any, origin: str) -> dict[str, str]:
    if not isinstance(values, Mapping):
        raise ConfigError(f"operators: expected a table of name = \"scrypt$...\" in {origin}")
    for name, hashed in values.items():
        if not isinstance(hashed, str) or not is_hash(hashed):
            raise ConfigError(f"operators.{name}: must be a password hash made with "
                              f"'python -m hub --hash-password', never the password itself ({origin})")
    return dict(values)


def _apply(config: Config, values: Mapping[str, Mapping[str, Any]], origin: str, from_text: bool) -> Config:
    known = dict(sections())
    for section_name, section_values in values.items():
        if section_name == "operators":
            config = replace(config, operators=_operators(section_values, origin))
            continue
        if section_name not in known:
            raise ConfigError(f"{section_name}: unknown section in {origin}")
        if not isinstance(section_values, Mapping):
            raise ConfigError(f"{section_name}: expected a table in {origin}")
        section = getattr(config, section_name)
        types = {f.name: f for f in fields(section)}
        changes = {}
        for key, value in section_values.items():
            if key not in types:
                raise ConfigError(f"{section_name}.{key}: unknown setting in {origin}")
            f = types[key]
            full = f"{section_name}.{key}"
            value = _coerce(full, type(f.default), value, from_text)
            problem = f.metadata["check"](value) if f.metadata["check"] else None
            if problem:
                raise ConfigError(f"{full}: {problem} (got {value!r} from {origin})")
            changes[key] = value
        config = replace(config, **{section_name: replace(section, **changes)})
    return config


def env_name(section: str, key: str) -> str:
    return f"{ENV_PREFIX}{section}_{key}".upper()


def load(path: str | None = None, env: Mapping[str, str] | None = None,
         overrides: Mapping[str, Mapping[str, Any]] | None = None) -> Config:
    """Defaults, then the TOML file at `path`, then HUBCHAT_* variables, then CLI `overrides`."""
    config = Config()
    if path:
        try:
            with open(path, "rb") as fh:
                data = tomllib.load(fh)
        except OSError as exc:
            raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: not valid TOML: {exc}") from None
        config = _apply(config, data, path, from_text=False)
    env = os.environ if env is None else env
    from_env: dict[str, dict[str, str]] = {}
    for section_name, cls in sections():
        for f in fields(cls):
            name = env_name(section_name, f.name)
            if name in env:
                from_env.setdefault(section_name, {})[f.name] = env[name]
    config = _apply(config, from_env, "the environment", from_text=True)
    if overrides:
        config = _apply(config, overrides, "the command line", from_text=False)
    return config
