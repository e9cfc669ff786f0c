"""Every hubchat setting: one schema (schema.py), loaded from defaults < TOML < env < CLI (loader.py)."""
from config.loader import ConfigError, load
from config.schema import Config

__all__ = ["Config", "ConfigError", "load"]
