"""The window's remembered connection: server, port, TLS, nickname and account (never a
password), in `$XDG_CONFIG_HOME/hubchat/client.json` (`~/.config/...` when the variable is not
set), as the XDG base directory specification asks."""
from __future__ import annotations

import json
import os
from pathlib import Path

FIELDS = {"host": str, "port": int, "tls": bool, "nick": str, "account": str}


def settings_path(env: dict | None = None) -> Path:
    env = os.environ if env is None else env
    base = env.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / "hubchat" / "client.json"


def load(path: Path) -> dict:
    """What was saved, the fields of the right type only; {} when there is nothing (or it is not
    ours to read: a broken file is ignored, not fatal)."""
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(saved, dict):
        return {}
    return {k: v for k, v in saved.items() if k in FIELDS and type(v) is FIELDS[k]}


def save(path: Path, values: dict) -> None:
    """Written whole or not at all (a temporary file renamed over the old one), readable by its
    owner only: it says who you are on which server."""
    path.parent.mkdir(parents=True, exist_ok=True)
    kept = {k: values[k] for k in FIELDS if k in values}
    temporary = path.with_suffix(".tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        json.dump(kept, out, indent=1)
    os.replace(temporary, path)
