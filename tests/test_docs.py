"""The configuration table in docs/operations.md against the schema it documents.

config/schema.py is the one source of the settings: every `section.key` with its default and,
when it has one, its `python -m hub` flag. This test reads the table under the header
`| key | default | flag | meaning |` and asserts that it lists exactly the schema's keys, each
with the schema's default (written as a TOML value) and the command-line flag that sets it.
"""
from __future__ import annotations

import json
import re
from dataclasses import MISSING, fields, is_dataclass
from pathlib import Path

import pytest

from config.schema import Config, sections
from hub.__main__ import build_parser

OPERATIONS = Path(__file__).resolve().parents[1] / "docs" / "operations.md"
HEADER = "| key | default | flag | meaning |"
NO_FLAG = "-"


def toml_value(value: object) -> str:
    """A default as the TOML file would spell it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)  # a TOML basic string: "...", with \n for a newline
    return str(value)


def schema_rows() -> dict[str, tuple[str, str]]:
    """key -> (default, flag) for every fixed setting, the flag as `python -m hub` takes it."""
    parser_flags: dict[str, list[str]] = {}
    for action in build_parser()._actions:
        if "." in action.dest:
            parser_flags.setdefault(action.dest, []).extend(action.option_strings)
    rows = {}
    for section, cls in sections():
        for f in fields(cls):
            key = f"{section}.{f.name}"
            flag = f.metadata.get("flag")
            flags = [flag] if flag else parser_flags.get(key, [])  # e.g. --no-flood-control
            rows[key] = (toml_value(f.default), ", ".join(f"`{x}`" for x in flags) or NO_FLAG)
    return rows


def table_sections() -> set[str]:
    """Config fields that are tables of names rather than fixed settings ([operators])."""
    return {f"[{f.name}]" for f in fields(Config) if not is_dataclass(f.default_factory)
            and f.default_factory is not MISSING}


def docs_rows() -> dict[str, tuple[str, str]]:
    lines = OPERATIONS.read_text(encoding="utf-8").splitlines()
    assert HEADER in lines, f"{OPERATIONS} has no configuration table (header {HEADER!r})"
    start = lines.index(HEADER) + 2  # the header, then the |---| line
    rows: dict[str, tuple[str, str]] = {}
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        assert len(cells) == 4, f"a row of the configuration table does not have 4 cells: {line}"
        key = re.fullmatch(r"`([^`]+)`", cells[0])
        assert key, f"the key cell must be one `key`: {line}"
        default = re.fullmatch(r"`(.*)`", cells[1])
        assert key.group(1) not in rows, f"{key.group(1)} is in the table twice"
        rows[key.group(1)] = (default.group(1) if default else cells[1], cells[2])
    return rows


def test_the_table_lists_every_setting_and_nothing_else():
    documented = set(docs_rows())
    expected = set(schema_rows()) | table_sections()
    missing, unknown = sorted(expected - documented), sorted(documented - expected)
    assert not (missing or unknown), (f"settings missing from docs/operations.md: {missing}; "
                                      f"keys in it that the schema lacks: {unknown}")


@pytest.mark.parametrize("key", sorted(schema_rows()))
def test_each_row_has_the_schema_default_and_flag(key):
    documented = docs_rows()
    assert key in documented, f"{key} is missing from the table in docs/operations.md"
    default, flag = schema_rows()[key]
    assert documented[key][0] == default, f"{key}: the table says {documented[key][0]}, the schema {default}"
    assert documented[key][1] == flag, f"{key}: the table's flag is {documented[key][1]}, the schema's {flag}"
