"""`KEY=VALUE` settings from the command line (`--set`), one parser for every command.

Values are YAML scalars or lists ("3" → 3, "null" → None, "[a, b]" → list, "true" → True), plus
the exponent floats YAML 1.1 leaves as strings ("1e-8" → 1e-08): an optimizer must not receive
the string "1e-8".
"""

from __future__ import annotations

import re
from typing import Any, Iterable

import yaml

from interp.errors import InterpError

_EXPONENT_FLOAT = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)[eE][+-]?\d+")


def parse_value(key: str, raw: str, flag: str = "--set") -> Any:
    """One setting's text → its value (see the module docstring); "" stays ""."""
    if raw == "":
        return ""
    try:
        value = yaml.safe_load(raw)
    except yaml.YAMLError:
        raise InterpError(f"{flag} {key}: cannot parse {raw!r}") from None
    if isinstance(value, str) and _EXPONENT_FLOAT.fullmatch(value.strip()):
        return float(value)
    return value


def parse_settings(settings: Iterable[str], flag: str = "--set") -> dict[str, Any]:
    """["report_to=wandb", "adam_epsilon=1e-8"] → {"report_to": "wandb", "adam_epsilon": 1e-08}.

    Keys keep their dots (finetune.learning_rate) for the caller to route; dashes become
    underscores, as in the option names.
    """
    out: dict[str, Any] = {}
    for item in settings:
        key, sep, raw = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not key:
            raise InterpError(f"{flag} takes KEY=VALUE, not {item!r}")
        out[key] = parse_value(key, raw.strip(), flag)
    return out
